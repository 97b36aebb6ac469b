"""Risk and exception register for customer model factory evidence gates.

Implements reference-behaviour.md section 11, with these new codes (old codes keep their
meaning and position):

- ``generated_at_invalid``: ``generated_at`` is non-blank but not an RFC 3339 instant;
- ``accepted_risk_expiry_invalid``: an accepted risk's ``expires_at`` is non-blank but not an
  instant (the reference compared such strings lexicographically);
- ``duplicate_risk_id``: a risk reuses an earlier risk's ``risk_id``.

``accepted_risk_expired`` compares parsed instants instead of strings (reference weak point
19.7), and is skipped when ``generated_at`` cannot be parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import datetime
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
from .timestamps import parse_instant

__all__ = [
    "ACCEPTED_STATUSES",
    "SCHEMA_VERSION",
    "CustomerRiskException",
    "CustomerRiskRegister",
    "build_risk_register",
]

SCHEMA_VERSION = "1.0.0"
# The reference's name; it is the set of *known* statuses, of which only "accepted" needs evidence.
ACCEPTED_STATUSES = frozenset({"accepted", "mitigated", "rejected"})


# Identity fields that must agree between the evidence pack and monitoring (section 11.3 item 5).
_BOUNDARY_FIELDS = (
    ("customer_id", "customer_boundary_mismatch"),
    ("workspace_id", "workspace_boundary_mismatch"),
    ("tenant_id", "tenant_boundary_mismatch"),
    ("deployment_id", "deployment_boundary_mismatch"),
)


@frozen
class CustomerRiskException:
    """One customer factory risk or exception decision."""

    risk_id: str
    status: str
    severity: str
    owner: str
    accepted_at: str
    expires_at: str
    compensating_controls: tuple[str, ...]
    linked_artifact_hashes: dict[str, str]
    rationale: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise the risk exception to JSON-safe data (controls as a list, hashes sorted)."""
        return {
            "risk_id": self.risk_id,
            "status": self.status,
            "severity": self.severity,
            "owner": self.owner,
            "accepted_at": self.accepted_at,
            "expires_at": self.expires_at,
            "compensating_controls": list(self.compensating_controls),
            "linked_artifact_hashes": dict(sorted(self.linked_artifact_hashes.items())),
            "rationale": self.rationale,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a risk exception from JSON-safe data (strict; ValueError names the field)."""
        return cls._read(payload, "")

    @classmethod
    def _read(cls, payload: Mapping[str, Any], where: str) -> Self:
        """Strictly read one risk, prefixing error messages with ``where``."""
        reject_unknown(payload, _RISK_FIELDS, where)
        return cls(
            risk_id=req_str(payload, "risk_id", where),
            status=req_str(payload, "status", where),
            severity=req_str(payload, "severity", where),
            owner=req_str(payload, "owner", where),
            accepted_at=req_str(payload, "accepted_at", where),
            expires_at=req_str(payload, "expires_at", where),
            compensating_controls=req_str_tuple(payload, "compensating_controls", where),
            linked_artifact_hashes=req_str_dict(payload, "linked_artifact_hashes", where),
            rationale=req_str(payload, "rationale", where),
        )


_RISK_FIELDS = tuple(field.name for field in fields(CustomerRiskException))


@frozen
class CustomerRiskRegister(SelfHashedManifest):
    """Risk register gate bound to evidence and monitoring artefacts."""

    schema_version: str
    register_id: str
    ready: bool
    customer_id: str
    workspace_id: str
    tenant_id: str
    deployment_id: str
    evidence_hash: str
    monitoring_hash: str
    generated_at: str
    risks: tuple[CustomerRiskException, ...]
    findings: tuple[dict[str, str], ...]
    register_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise the risk register to stable JSON-safe data."""
        return {
            "schema_version": self.schema_version,
            "register_id": self.register_id,
            "ready": self.ready,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "deployment_id": self.deployment_id,
            "evidence_hash": self.evidence_hash,
            "monitoring_hash": self.monitoring_hash,
            "generated_at": self.generated_at,
            "risks": [risk.to_dict() for risk in self.risks],
            "findings": [dict(finding) for finding in self.findings],
            "register_hash": self.register_hash,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a risk register from JSON-safe data.

        Strict: a missing or unknown key, or a value of the wrong type, raises ValueError naming
        the field. The stored hash is not checked here; use ``from_dict_verified`` for that.
        """
        reject_unknown(payload, _REGISTER_FIELDS)
        return cls(
            schema_version=req_str(payload, "schema_version"),
            register_id=req_str(payload, "register_id"),
            ready=req_bool(payload, "ready"),
            customer_id=req_str(payload, "customer_id"),
            workspace_id=req_str(payload, "workspace_id"),
            tenant_id=req_str(payload, "tenant_id"),
            deployment_id=req_str(payload, "deployment_id"),
            evidence_hash=req_str(payload, "evidence_hash"),
            monitoring_hash=req_str(payload, "monitoring_hash"),
            generated_at=req_str(payload, "generated_at"),
            risks=_read_risks(payload),
            findings=req_findings(payload, "findings"),
            register_hash=req_str(payload, "register_hash"),
        )

    def _hash_payload(self) -> dict[str, Any]:
        """Return the ``register_hash`` payload of reference section 11.3 (the only copy)."""
        return {
            "register_id": self.register_id,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "deployment_id": self.deployment_id,
            "evidence_hash": self.evidence_hash,
            "monitoring_hash": self.monitoring_hash,
            "generated_at": self.generated_at,
            "risks": [risk.to_dict() for risk in self.risks],
            "findings": list(self.findings),
        }

    def verify_hash(self) -> None:
        """Raise HashMismatchError if ``register_hash`` is stale, ValueError if ``ready`` lies.

        Also refuses a ``schema_version`` other than this module's, since it is not hashed.
        """
        kind = "CustomerRiskRegister"
        check_self_hash(kind, "register_hash", self.register_hash, self.recompute_hash())
        check_schema_and_ready(
            kind,
            self.schema_version,
            SCHEMA_VERSION,
            self.ready,
            not self.findings,
            len(self.findings),
        )


_REGISTER_FIELDS = tuple(field.name for field in fields(CustomerRiskRegister))


def build_risk_register(
    *,
    register_id: str,
    evidence_pack: CustomerEvidencePackManifest,
    monitoring_manifest: CustomerMonitoringManifest,
    risks: tuple[CustomerRiskException, ...],
    generated_at: str,
) -> CustomerRiskRegister:
    """Build a risk register and readiness gate for customer factory promotion (section 11.3).

    Identity and ``evidence_hash`` come from the evidence pack, ``monitoring_hash`` from the
    monitoring manifest.
    """
    risks = tuple(risks)
    findings = _register_findings(register_id, generated_at, evidence_pack, monitoring_manifest)
    findings += _all_risk_findings(
        risks,
        evidence_hash=evidence_pack.evidence_hash,
        monitoring_hash=monitoring_manifest.monitoring_hash,
        generated=_instant_or_none(generated_at),
    )
    draft = CustomerRiskRegister(
        schema_version=SCHEMA_VERSION,
        register_id=register_id,
        ready=not findings,
        customer_id=evidence_pack.customer_id,
        workspace_id=evidence_pack.workspace_id,
        tenant_id=evidence_pack.tenant_id,
        deployment_id=evidence_pack.deployment_id,
        evidence_hash=evidence_pack.evidence_hash,
        monitoring_hash=monitoring_manifest.monitoring_hash,
        generated_at=generated_at,
        risks=risks,
        findings=findings,
        register_hash="",
    )
    return replace(draft, register_hash=draft.recompute_hash())


def _register_findings(
    register_id: str,
    generated_at: str,
    evidence_pack: CustomerEvidencePackManifest,
    monitoring_manifest: CustomerMonitoringManifest,
) -> tuple[dict[str, str], ...]:
    """Return the register-level findings of section 11.3 items 1-6, plus generated_at_invalid."""
    findings: list[dict[str, str]] = []
    if not register_id.strip():
        findings.append(_finding("register_id_missing", "register_id is required"))
    if not generated_at.strip():
        findings.append(_finding("generated_at_missing", "generated_at is required"))
    elif _instant_or_none(generated_at) is None:
        findings.append(
            _finding("generated_at_invalid", "generated_at must be an RFC 3339 instant")
        )
    if not evidence_pack.ready:
        findings.append(_finding("evidence_pack_not_ready", "evidence pack is not ready"))
    if not monitoring_manifest.ready:
        findings.append(
            _finding("monitoring_manifest_not_ready", "monitoring manifest is not ready")
        )
    for field, code in _BOUNDARY_FIELDS:
        if getattr(evidence_pack, field) != getattr(monitoring_manifest, field):
            findings.append(_finding(code, f"{field} differs between artefacts"))
    if evidence_pack.evidence_hash != monitoring_manifest.evidence_hash:
        findings.append(
            _finding(
                "evidence_hash_mismatch", "monitoring evidence_hash differs from evidence pack"
            )
        )
    return tuple(findings)


def _all_risk_findings(
    risks: tuple[CustomerRiskException, ...],
    *,
    evidence_hash: str,
    monitoring_hash: str,
    generated: datetime | None,
) -> tuple[dict[str, str], ...]:
    """Return every risk's findings in tuple order, each risk's duplicate_risk_id last."""
    findings: list[dict[str, str]] = []
    seen: set[str] = set()
    for risk in risks:
        findings.extend(_risk_findings(risk, evidence_hash, monitoring_hash, generated))
        if risk.risk_id in seen:
            findings.append(
                _risk_finding(risk, "duplicate_risk_id", "risk_id already appears in the register")
            )
        seen.add(risk.risk_id)
    return tuple(findings)


def _risk_findings(
    risk: CustomerRiskException,
    evidence_hash: str,
    monitoring_hash: str,
    generated: datetime | None,
) -> list[dict[str, str]]:
    """Return one risk's findings (section 11.3 per-risk items 1-7, with parsed expiry)."""
    findings: list[dict[str, str]] = []
    if risk.status not in ACCEPTED_STATUSES:
        findings.append(_risk_finding(risk, "risk_status_unknown", "risk status is unsupported"))
    if risk.status != "accepted":
        # Mitigated and rejected risks need no owner, expiry or controls (reference rule).
        return findings
    if not risk.owner.strip():
        findings.append(
            _risk_finding(risk, "accepted_risk_owner_missing", "accepted risk requires an owner")
        )
    expiry_finding = _expiry_finding(risk, generated)
    if expiry_finding is not None:
        findings.append(expiry_finding)
    if not risk.compensating_controls:
        findings.append(
            _risk_finding(
                risk,
                "accepted_risk_controls_missing",
                "accepted risk requires compensating controls",
            )
        )
    if risk.linked_artifact_hashes.get("evidence_hash") != evidence_hash:
        findings.append(
            _risk_finding(
                risk, "risk_evidence_hash_mismatch", "risk is not linked to evidence hash"
            )
        )
    if risk.linked_artifact_hashes.get("monitoring_hash") != monitoring_hash:
        findings.append(
            _risk_finding(
                risk, "risk_monitoring_hash_mismatch", "risk is not linked to monitoring hash"
            )
        )
    return findings


def _expiry_finding(
    risk: CustomerRiskException, generated: datetime | None
) -> dict[str, str] | None:
    """Return the accepted risk's expiry finding: missing, invalid, expired, or None.

    Expired means the expiry instant is strictly before ``generated``; with no parseable
    ``generated`` there is nothing to compare against (generated_at_* already blocks).
    """
    if not risk.expires_at.strip():
        return _risk_finding(risk, "accepted_risk_expiry_missing", "accepted risk requires expiry")
    expires = _instant_or_none(risk.expires_at)
    if expires is None:
        return _risk_finding(
            risk, "accepted_risk_expiry_invalid", "expires_at must be an RFC 3339 instant"
        )
    if generated is not None and expires < generated:
        return _risk_finding(risk, "accepted_risk_expired", "accepted risk is expired")
    return None


def _instant_or_none(value: str) -> datetime | None:
    """Return ``value`` parsed as an RFC 3339 instant, or None when it is not one."""
    try:
        return parse_instant(value, field="instant")
    except ValueError:
        return None


def _read_risks(payload: Mapping[str, Any]) -> tuple[CustomerRiskException, ...]:
    """Strictly read ``payload["risks"]``: a list of risk objects, errors naming the index."""
    if "risks" not in payload:
        raise ValueError("risks: required field is missing")
    items = payload["risks"]
    if not isinstance(items, list | tuple):
        raise ValueError(f"risks: expected a list of objects, got {type(items).__name__}")
    risks: list[CustomerRiskException] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"risks[{index}]: expected an object, got {type(item).__name__}")
        risks.append(CustomerRiskException._read(item, f"risks[{index}]."))
    return tuple(risks)


def _finding(code: str, message: str) -> dict[str, str]:
    """Return a register-level finding record (reference section 1.2): severity error."""
    return {"code": code, "severity": "error", "message": message}


def _risk_finding(risk: CustomerRiskException, code: str, message: str) -> dict[str, str]:
    """Return a per-risk finding record: a register-level finding plus ``risk_id``."""
    return {**_finding(code, message), "risk_id": risk.risk_id}
