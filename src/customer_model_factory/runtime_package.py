"""Runtime package configuration for customer-owned model deployments.

Implements reference-behaviour.md section 9, plus one new finding code,
``evidence_deployment_hash_mismatch``, that binds the evidence pack to the exact deployment
revision it describes (reference weak point 19.3).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any, Self

from ._fields import (
    reject_unknown,
    req_bool,
    req_dict,
    req_findings,
    req_str,
)
from ._frozen import frozen
from ._hashing import check_self_hash
from ._manifest import SelfHashedManifest, check_schema_and_ready
from .deployment_manifest import CustomerDeploymentManifest
from .evidence_pack import CustomerEvidencePackManifest

__all__ = [
    "RUNTIME_MODES",
    "SCHEMA_VERSION",
    "CustomerRuntimePackage",
    "build_customer_runtime_package",
]

SCHEMA_VERSION = "1.0.0"
RUNTIME_MODES = frozenset({"offline_private", "customer_cloud_private", "on_prem"})

# Identity fields that must agree between the deployment and the evidence pack (section 9.2 item 5).
_BOUNDARY_FIELDS = (
    ("customer_id", "customer_boundary_mismatch"),
    ("workspace_id", "workspace_boundary_mismatch"),
    ("tenant_id", "tenant_boundary_mismatch"),
    ("deployment_id", "deployment_boundary_mismatch"),
)


@frozen
class CustomerRuntimePackage(SelfHashedManifest):
    """Customer-implementable runtime configuration package.

    ``runtime_config`` is a plain dict on purpose: the reference's tests mutate it in place to
    forge inconsistent packages, and ``verify_hash`` then detects the change.
    """

    schema_version: str
    runtime_id: str
    ready: bool
    customer_id: str
    workspace_id: str
    tenant_id: str
    deployment_id: str
    evidence_hash: str
    runtime_mode: str
    runtime_config: dict[str, Any]
    findings: tuple[dict[str, str], ...]
    runtime_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise the runtime package to stable JSON-safe data."""
        return {
            "schema_version": self.schema_version,
            "runtime_id": self.runtime_id,
            "ready": self.ready,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "deployment_id": self.deployment_id,
            "evidence_hash": self.evidence_hash,
            "runtime_mode": self.runtime_mode,
            # A deep copy, so that editing the returned data cannot change this object.
            "runtime_config": copy.deepcopy(self.runtime_config),
            "findings": [dict(finding) for finding in self.findings],
            "runtime_hash": self.runtime_hash,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a runtime package from serialised data.

        Strict: a missing or unknown key, or a value of the wrong type, raises ValueError naming
        the field. The stored hash is not checked here; use ``from_dict_verified`` for that.
        """
        reject_unknown(payload, _FIELD_NAMES)
        return cls(
            schema_version=req_str(payload, "schema_version"),
            runtime_id=req_str(payload, "runtime_id"),
            ready=req_bool(payload, "ready"),
            customer_id=req_str(payload, "customer_id"),
            workspace_id=req_str(payload, "workspace_id"),
            tenant_id=req_str(payload, "tenant_id"),
            deployment_id=req_str(payload, "deployment_id"),
            evidence_hash=req_str(payload, "evidence_hash"),
            runtime_mode=req_str(payload, "runtime_mode"),
            runtime_config=copy.deepcopy(req_dict(payload, "runtime_config")),
            findings=req_findings(payload, "findings"),
            runtime_hash=req_str(payload, "runtime_hash"),
        )

    @staticmethod
    def evidence_pack_from_dict(payload: Mapping[str, Any]) -> CustomerEvidencePackManifest:
        """Rebuild an evidence pack for boundary-mismatch tests and tooling."""
        return CustomerEvidencePackManifest.from_dict(payload)

    def _hash_payload(self) -> dict[str, Any]:
        """Return the ``runtime_hash`` payload of reference section 9.2 (the only copy)."""
        return {
            "runtime_id": self.runtime_id,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "deployment_id": self.deployment_id,
            "evidence_hash": self.evidence_hash,
            "runtime_mode": self.runtime_mode,
            "runtime_config": self.runtime_config,
            "findings": list(self.findings),
        }

    def verify_hash(self) -> None:
        """Raise HashMismatchError if ``runtime_hash`` is stale, ValueError if ``ready`` lies.

        Also refuses a ``schema_version`` other than this module's, since it is not hashed.
        """
        kind = "CustomerRuntimePackage"
        check_self_hash(kind, "runtime_hash", self.runtime_hash, self.recompute_hash())
        check_schema_and_ready(
            kind,
            self.schema_version,
            SCHEMA_VERSION,
            self.ready,
            not self.findings,
            len(self.findings),
        )


_FIELD_NAMES = tuple(field.name for field in fields(CustomerRuntimePackage))


def build_customer_runtime_package(
    *,
    runtime_id: str,
    deployment_manifest: CustomerDeploymentManifest,
    evidence_pack: CustomerEvidencePackManifest,
    runtime_mode: str,
) -> CustomerRuntimePackage:
    """Build a customer runtime configuration package (reference section 9.2).

    Identity comes from the deployment, ``evidence_hash`` from the evidence pack.
    """
    findings = _collect_findings(
        runtime_id=runtime_id,
        deployment_manifest=deployment_manifest,
        evidence_pack=evidence_pack,
        runtime_mode=runtime_mode,
    )
    draft = CustomerRuntimePackage(
        schema_version=SCHEMA_VERSION,
        runtime_id=runtime_id,
        ready=not findings,
        customer_id=deployment_manifest.customer_id,
        workspace_id=deployment_manifest.workspace_id,
        tenant_id=deployment_manifest.tenant_id,
        deployment_id=deployment_manifest.deployment_id,
        evidence_hash=evidence_pack.evidence_hash,
        runtime_mode=runtime_mode,
        runtime_config=_runtime_config(deployment_manifest, evidence_pack),
        findings=findings,
        runtime_hash="",
    )
    return replace(draft, runtime_hash=draft.recompute_hash())


def _runtime_config(
    deployment_manifest: CustomerDeploymentManifest,
    evidence_pack: CustomerEvidencePackManifest,
) -> dict[str, Any]:
    """Return the 19-key runtime configuration of reference section 9.2."""
    policy = deployment_manifest.policy
    return {
        "customer_id": deployment_manifest.customer_id,
        "workspace_id": deployment_manifest.workspace_id,
        "tenant_id": deployment_manifest.tenant_id,
        "deployment_id": deployment_manifest.deployment_id,
        "deployment_hash": deployment_manifest.deployment_hash,
        "evidence_hash": evidence_pack.evidence_hash,
        "selected_benchmark_id": deployment_manifest.selected_benchmark_id,
        "selected_model_artifact_uri": deployment_manifest.selected_model_artifact_uri,
        "threshold": policy.threshold,
        "abstention_threshold": policy.abstention_threshold,
        "escalation_threshold": policy.escalation_threshold,
        "require_citations": policy.require_citations,
        "audit_log_uri": policy.audit_log_uri,
        "evidence_pack_uri": policy.evidence_pack_uri,
        "rollback_package_uri": policy.rollback_package_uri,
        "retention_days": policy.retention_days,
        "telemetry_mode": policy.telemetry_mode,
        "external_callbacks_allowed": evidence_pack.external_callbacks_allowed,
        "callback_endpoints": list(evidence_pack.callback_endpoints),
    }


def _collect_findings(
    *,
    runtime_id: str,
    deployment_manifest: CustomerDeploymentManifest,
    evidence_pack: CustomerEvidencePackManifest,
    runtime_mode: str,
) -> tuple[dict[str, str], ...]:
    """Return the findings of reference section 9.2 in order, then the new binding check."""
    findings: list[dict[str, str]] = []
    if not runtime_id.strip():
        findings.append(_finding("runtime_id_missing", "runtime_id is required"))
    if runtime_mode not in RUNTIME_MODES:
        findings.append(
            _finding("runtime_mode_unknown", f"runtime_mode {runtime_mode!r} is unsupported")
        )
    if not deployment_manifest.ready:
        findings.append(_finding("deployment_not_ready", "deployment manifest is not ready"))
    if not evidence_pack.ready:
        findings.append(_finding("evidence_pack_not_ready", "evidence pack is not ready"))
    for field, code in _BOUNDARY_FIELDS:
        if getattr(deployment_manifest, field) != getattr(evidence_pack, field):
            findings.append(_finding(code, f"{field} differs between artefacts"))
    # New: the pack must describe this deployment revision, not just this deployment id.
    if evidence_pack.artefacts.get("deployment_hash") != deployment_manifest.deployment_hash:
        findings.append(
            _finding(
                "evidence_deployment_hash_mismatch",
                "evidence pack deployment_hash differs from deployment manifest",
            )
        )
    return tuple(findings)


def _finding(code: str, message: str) -> dict[str, str]:
    """Return a later-stage finding record (reference section 1.2): always severity error."""
    return {"code": code, "severity": "error", "message": message}
