"""Final promotion gate for Customer Model Factory packages.

Implements reference-behaviour.md sections 13.1, 13.4 and 13.5 for the seed API, which takes no
evidence-domain records. One new blocker, ``monitoring_runtime_hash_mismatch``, closes the gap
of reference weak point 19.3: monitoring must describe this exact runtime build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any, Self

from ._fields import (
    reject_unknown,
    req_bool,
    req_findings,
    req_str,
    req_str_dict,
    req_str_tuple,
)
from ._frozen import frozen
from ._hashing import check_self_hash
from ._manifest import SelfHashedManifest, check_schema_and_ready
from .evidence_pack import CustomerEvidencePackManifest
from .monitoring_manifest import CustomerMonitoringManifest
from .risk_register import CustomerRiskRegister
from .runtime_package import CustomerRuntimePackage

__all__ = [
    "SCHEMA_VERSION",
    "CustomerReleaseGateManifest",
    "build_release_gate_manifest",
]

SCHEMA_VERSION = "1.0.0"

# Identity fields that must be single-valued across the four release artefacts (13.4 item 6).
_BOUNDARY_FIELDS = (
    ("customer_id", "customer_boundary_mismatch"),
    ("workspace_id", "workspace_boundary_mismatch"),
    ("tenant_id", "tenant_boundary_mismatch"),
    ("deployment_id", "deployment_boundary_mismatch"),
)


@frozen
class CustomerReleaseGateManifest(SelfHashedManifest):
    """Release-promotion gate across factory readiness artefacts."""

    schema_version: str
    release_id: str
    ready: bool
    promotion_allowed: bool
    customer_id: str
    workspace_id: str
    tenant_id: str
    deployment_id: str
    generated_at: str
    enterprise_ready: bool
    enterprise_blocking_debt_ids: tuple[str, ...]
    artifact_hashes: dict[str, str]
    blockers: tuple[dict[str, str], ...]
    release_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise the release gate to stable JSON-safe data."""
        return {
            "schema_version": self.schema_version,
            "release_id": self.release_id,
            "ready": self.ready,
            "promotion_allowed": self.promotion_allowed,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "deployment_id": self.deployment_id,
            "generated_at": self.generated_at,
            "enterprise_ready": self.enterprise_ready,
            "enterprise_blocking_debt_ids": list(self.enterprise_blocking_debt_ids),
            "artifact_hashes": dict(sorted(self.artifact_hashes.items())),
            "blockers": [dict(blocker) for blocker in self.blockers],
            "release_hash": self.release_hash,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a release gate from JSON-safe data (the reference has no such method).

        Strict: a missing or unknown key, or a value of the wrong type, raises ValueError naming
        the field. The stored hash is not checked here; use ``from_dict_verified`` for that.
        """
        reject_unknown(payload, _FIELD_NAMES)
        return cls(
            schema_version=req_str(payload, "schema_version"),
            release_id=req_str(payload, "release_id"),
            ready=req_bool(payload, "ready"),
            promotion_allowed=req_bool(payload, "promotion_allowed"),
            customer_id=req_str(payload, "customer_id"),
            workspace_id=req_str(payload, "workspace_id"),
            tenant_id=req_str(payload, "tenant_id"),
            deployment_id=req_str(payload, "deployment_id"),
            generated_at=req_str(payload, "generated_at"),
            enterprise_ready=req_bool(payload, "enterprise_ready"),
            enterprise_blocking_debt_ids=req_str_tuple(payload, "enterprise_blocking_debt_ids"),
            artifact_hashes=req_str_dict(payload, "artifact_hashes"),
            blockers=req_findings(payload, "blockers"),
            release_hash=req_str(payload, "release_hash"),
        )

    def _hash_payload(self) -> dict[str, Any]:
        """Return the ``release_hash`` payload of reference 13.4 without evidence records."""
        return {
            "release_id": self.release_id,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "deployment_id": self.deployment_id,
            "generated_at": self.generated_at,
            "enterprise_ready": self.enterprise_ready,
            "enterprise_blocking_debt_ids": list(self.enterprise_blocking_debt_ids),
            "artifact_hashes": self.artifact_hashes,
            "blockers": list(self.blockers),
        }

    def verify_hash(self) -> None:
        """Raise HashMismatchError if ``release_hash`` is stale, ValueError if a flag lies.

        ``ready``, ``promotion_allowed`` and ``schema_version`` are not hashed, so both flags
        must equal 'no blockers' and the version must be this module's.
        """
        kind = "CustomerReleaseGateManifest"
        check_self_hash(kind, "release_hash", self.release_hash, self.recompute_hash())
        check_schema_and_ready(
            kind,
            self.schema_version,
            SCHEMA_VERSION,
            self.ready,
            not self.blockers,
            len(self.blockers),
        )
        if self.promotion_allowed != self.ready:
            raise ValueError(
                f"{kind}.promotion_allowed: stored {self.promotion_allowed} but there are "
                f"{len(self.blockers)} blockers (it must equal 'no blockers')"
            )


_FIELD_NAMES = tuple(field.name for field in fields(CustomerReleaseGateManifest))


def build_release_gate_manifest(
    *,
    release_id: str,
    enterprise_ready: bool,
    enterprise_blocking_debt_ids: tuple[str, ...],
    runtime_package: CustomerRuntimePackage,
    evidence_pack: CustomerEvidencePackManifest,
    monitoring_manifest: CustomerMonitoringManifest,
    risk_register: CustomerRiskRegister,
    generated_at: str,
) -> CustomerReleaseGateManifest:
    """Build the final Customer Model Factory release-promotion gate (reference 13.4).

    Identity is copied from the runtime package. Raises TypeError when ``enterprise_ready`` is
    not a real bool or a debt id is not a str: ``"false"`` must never read as ready.
    """
    debt_ids = _checked_debt_ids(enterprise_ready, enterprise_blocking_debt_ids)
    blockers = _collect_blockers(
        release_id=release_id,
        enterprise_ready=enterprise_ready,
        debt_ids=debt_ids,
        runtime_package=runtime_package,
        evidence_pack=evidence_pack,
        monitoring_manifest=monitoring_manifest,
        risk_register=risk_register,
        generated_at=generated_at,
    )
    draft = CustomerReleaseGateManifest(
        schema_version=SCHEMA_VERSION,
        release_id=release_id,
        ready=not blockers,
        promotion_allowed=not blockers,
        customer_id=runtime_package.customer_id,
        workspace_id=runtime_package.workspace_id,
        tenant_id=runtime_package.tenant_id,
        deployment_id=runtime_package.deployment_id,
        generated_at=generated_at,
        enterprise_ready=enterprise_ready,
        enterprise_blocking_debt_ids=debt_ids,
        artifact_hashes={
            "runtime_hash": runtime_package.runtime_hash,
            "evidence_hash": evidence_pack.evidence_hash,
            "monitoring_hash": monitoring_manifest.monitoring_hash,
            "risk_register_hash": risk_register.register_hash,
        },
        blockers=blockers,
        release_hash="",
    )
    return replace(draft, release_hash=draft.recompute_hash())


def _checked_debt_ids(enterprise_ready: object, debt_ids: object) -> tuple[str, ...]:
    """Return the debt ids as a tuple; raise TypeError on a non-bool flag or non-str id."""
    if not isinstance(enterprise_ready, bool):
        raise TypeError(f"enterprise_ready: expected a bool, got {type(enterprise_ready).__name__}")
    if not isinstance(debt_ids, tuple | list):
        raise TypeError(
            f"enterprise_blocking_debt_ids: expected a tuple of str, got {type(debt_ids).__name__}"
        )
    for index, item in enumerate(debt_ids):
        if not isinstance(item, str):
            raise TypeError(
                f"enterprise_blocking_debt_ids[{index}]: expected a str, got {type(item).__name__}"
            )
    return tuple(debt_ids)


def _collect_blockers(
    *,
    release_id: str,
    enterprise_ready: bool,
    debt_ids: tuple[str, ...],
    runtime_package: CustomerRuntimePackage,
    evidence_pack: CustomerEvidencePackManifest,
    monitoring_manifest: CustomerMonitoringManifest,
    risk_register: CustomerRiskRegister,
    generated_at: str,
) -> tuple[dict[str, str], ...]:
    """Return the blockers in reference 13.4 order (no evidence domains), then the new one."""
    blockers: list[dict[str, str]] = []
    if not release_id.strip():
        blockers.append(_blocker("release_id_missing", "release_id is required"))
    if not generated_at.strip():
        blockers.append(_blocker("generated_at_missing", "generated_at is required"))
    if not enterprise_ready or debt_ids:
        blockers.append(
            _blocker(
                "enterprise_trust_not_ready",
                "enterprise-trust readiness has blocking debt",
                debt_ids=",".join(debt_ids),
            )
        )
    blockers.extend(
        _readiness_blockers(runtime_package, evidence_pack, monitoring_manifest, risk_register)
    )
    blockers.extend(
        _boundary_blockers(runtime_package, evidence_pack, monitoring_manifest, risk_register)
    )
    # New: monitoring must have observed this runtime build, not another with the same ids.
    if monitoring_manifest.package_version.get("runtime_hash") != runtime_package.runtime_hash:
        blockers.append(
            _blocker(
                "monitoring_runtime_hash_mismatch",
                "monitoring runtime hash differs from runtime package",
            )
        )
    return tuple(blockers)


def _readiness_blockers(
    runtime_package: CustomerRuntimePackage,
    evidence_pack: CustomerEvidencePackManifest,
    monitoring_manifest: CustomerMonitoringManifest,
    risk_register: CustomerRiskRegister,
) -> list[dict[str, str]]:
    """Return one blocker per artefact whose stored ``ready`` is False (13.4 item 4)."""
    checks = (
        (runtime_package.ready, "runtime_package_not_ready", "runtime package is not ready"),
        (evidence_pack.ready, "evidence_pack_not_ready", "evidence pack is not ready"),
        (
            monitoring_manifest.ready,
            "monitoring_manifest_not_ready",
            "monitoring manifest is not ready",
        ),
        (risk_register.ready, "risk_register_not_ready", "risk register is not ready"),
    )
    return [_blocker(code, message) for ready, code, message in checks if not ready]


def _boundary_blockers(
    runtime_package: CustomerRuntimePackage,
    evidence_pack: CustomerEvidencePackManifest,
    monitoring_manifest: CustomerMonitoringManifest,
    risk_register: CustomerRiskRegister,
) -> list[dict[str, str]]:
    """Return the identity and hash-equality blockers of reference 13.4 item 6, in order."""
    artefacts = (runtime_package, evidence_pack, monitoring_manifest, risk_register)
    blockers = [
        _blocker(code, f"{field} differs between release artefacts")
        for field, code in _BOUNDARY_FIELDS
        if len({getattr(artefact, field) for artefact in artefacts}) != 1
    ]
    evidence_hash = evidence_pack.evidence_hash
    equalities = (
        (
            runtime_package.evidence_hash == evidence_hash,
            "runtime_evidence_hash_mismatch",
            "runtime evidence hash differs from evidence pack",
        ),
        (
            monitoring_manifest.evidence_hash == evidence_hash,
            "monitoring_evidence_hash_mismatch",
            "monitoring evidence hash differs from evidence pack",
        ),
        (
            risk_register.evidence_hash == evidence_hash,
            "risk_evidence_hash_mismatch",
            "risk register evidence hash differs from evidence pack",
        ),
        (
            risk_register.monitoring_hash == monitoring_manifest.monitoring_hash,
            "risk_monitoring_hash_mismatch",
            "risk register monitoring hash differs from monitoring manifest",
        ),
    )
    blockers.extend(_blocker(code, message) for equal, code, message in equalities if not equal)
    return blockers


def _blocker(code: str, message: str, **extra: str) -> dict[str, str]:
    """Return a blocker record (reference 13.1): severity error, extra keys only when non-empty."""
    return {
        "code": code,
        "severity": "error",
        "message": message,
        **{key: value for key, value in extra.items() if value},
    }
