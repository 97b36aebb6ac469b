"""Customer-reviewable evidence package manifest for model factory exports (section 8)."""

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
    req_str_tuple_dict,
)
from ._frozen import frozen
from ._hashing import check_self_hash
from ._manifest import SelfHashedManifest, check_schema_and_ready
from .deployment_manifest import CustomerDeploymentManifest
from .sector_extension import SectorEvidenceMapping

SCHEMA_VERSION = "1.0.0"
ALLOWED_CLASSIFICATIONS = frozenset({"internal", "confidential", "restricted"})

# The ten artefact keys of section 8.2, sorted.
ARTEFACT_KEYS = (
    "audit_log_uri",
    "deployment_hash",
    "deployment_package_uri",
    "evidence_pack_uri",
    "regulation_mapping_hash",
    "rollback_package_uri",
    "selected_benchmark_id",
    "selected_model_artifact_uri",
    "selection_hash",
    "telemetry_mode",
)


@frozen
class CustomerEvidencePackManifest(SelfHashedManifest):
    """Deterministic manifest for customer evidence-room exports."""

    schema_version: str
    package_id: str
    ready: bool
    customer_id: str
    workspace_id: str
    tenant_id: str
    deployment_id: str
    environment: str
    classification: str
    export_uri: str
    external_callbacks_allowed: bool
    callback_endpoints: tuple[str, ...]
    artefacts: dict[str, str]
    control_evidence: dict[str, tuple[str, ...]]
    findings: tuple[dict[str, str], ...]
    evidence_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise the evidence pack manifest to stable JSON-safe data."""
        return {
            "schema_version": self.schema_version,
            "package_id": self.package_id,
            "ready": self.ready,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "deployment_id": self.deployment_id,
            "environment": self.environment,
            "classification": self.classification,
            "export_uri": self.export_uri,
            "external_callbacks_allowed": self.external_callbacks_allowed,
            "callback_endpoints": list(self.callback_endpoints),
            "artefacts": dict(sorted(self.artefacts.items())),
            "control_evidence": {
                control: list(evidence)
                for control, evidence in sorted(self.control_evidence.items())
            },
            "findings": [dict(finding) for finding in self.findings],
            "evidence_hash": self.evidence_hash,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild an evidence pack manifest from serialised data; strict, names the field."""
        manifest = cls(
            schema_version=req_str(payload, "schema_version"),
            package_id=req_str(payload, "package_id"),
            ready=req_bool(payload, "ready"),
            customer_id=req_str(payload, "customer_id"),
            workspace_id=req_str(payload, "workspace_id"),
            tenant_id=req_str(payload, "tenant_id"),
            deployment_id=req_str(payload, "deployment_id"),
            environment=req_str(payload, "environment"),
            classification=req_str(payload, "classification"),
            export_uri=req_str(payload, "export_uri"),
            external_callbacks_allowed=req_bool(payload, "external_callbacks_allowed"),
            callback_endpoints=req_str_tuple(payload, "callback_endpoints"),
            artefacts=req_str_dict(payload, "artefacts"),
            control_evidence=req_str_tuple_dict(payload, "control_evidence"),
            findings=req_findings(payload, "findings"),
            evidence_hash=req_str(payload, "evidence_hash"),
        )
        reject_unknown(payload, _FIELD_NAMES)
        return manifest

    def verify_hash(self) -> None:
        """Raise HashMismatchError on a stale ``evidence_hash``, ValueError on inconsistent flags.

        Inconsistent means a foreign ``schema_version`` or ``ready != not findings`` (1.3).

        Also raises ValueError when ``artefacts`` does not hold exactly the ten section 8.2
        keys, since downstream stages look bindings up by those names.
        """
        check_self_hash(
            "CustomerEvidencePackManifest",
            "evidence_hash",
            self.evidence_hash,
            self.recompute_hash(),
        )
        check_schema_and_ready(
            "CustomerEvidencePackManifest",
            self.schema_version,
            SCHEMA_VERSION,
            self.ready,
            not self.findings,
            len(self.findings),
        )
        if tuple(sorted(self.artefacts)) != ARTEFACT_KEYS:
            raise ValueError(
                "CustomerEvidencePackManifest.artefacts: expected exactly the keys "
                f"{', '.join(ARTEFACT_KEYS)}; got {', '.join(sorted(self.artefacts))}"
            )

    def _hash_payload(self) -> dict[str, Any]:
        """Return the section 8.2 hash payload."""
        return {
            "package_id": self.package_id,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "deployment_id": self.deployment_id,
            "environment": self.environment,
            "classification": self.classification,
            "export_uri": self.export_uri,
            "external_callbacks_allowed": self.external_callbacks_allowed,
            "callback_endpoints": list(self.callback_endpoints),
            "artefacts": self.artefacts,
            "control_evidence": {
                control: list(evidence) for control, evidence in self.control_evidence.items()
            },
            "findings": list(self.findings),
        }


_FIELD_NAMES = tuple(f.name for f in fields(CustomerEvidencePackManifest))


def build_customer_evidence_pack(
    *,
    package_id: str,
    deployment_manifest: CustomerDeploymentManifest,
    regulation_mapping: SectorEvidenceMapping,
    classification: str,
    export_uri: str,
    external_callbacks_allowed: bool = False,
    callback_endpoints: tuple[str, ...] = (),
) -> CustomerEvidencePackManifest:
    """Build and validate a customer evidence-pack manifest (reference section 8.2)."""
    callback_endpoints = tuple(callback_endpoints)
    findings = _collect_findings(
        package_id=package_id,
        deployment_manifest=deployment_manifest,
        mapping_uri=regulation_mapping.evidence_pack_uri,
        classification=classification,
        export_uri=export_uri,
        external_callbacks_allowed=external_callbacks_allowed,
        callback_endpoints=callback_endpoints,
    )
    draft = CustomerEvidencePackManifest(
        schema_version=SCHEMA_VERSION,
        package_id=package_id,
        ready=not findings,
        customer_id=deployment_manifest.customer_id,
        workspace_id=deployment_manifest.workspace_id,
        tenant_id=deployment_manifest.tenant_id,
        deployment_id=deployment_manifest.deployment_id,
        environment=deployment_manifest.environment,
        classification=classification,
        export_uri=export_uri,
        external_callbacks_allowed=external_callbacks_allowed,
        callback_endpoints=callback_endpoints,
        artefacts=_artefacts(deployment_manifest, regulation_mapping.mapping_hash),
        # A private copy (values are tuples), so later edits to the mapping cannot drift it.
        control_evidence={
            control: tuple(evidence)
            for control, evidence in regulation_mapping.control_evidence.items()
        },
        findings=tuple(findings),
        evidence_hash="",
    )
    return replace(draft, evidence_hash=draft.recompute_hash())


def _artefacts(deployment: CustomerDeploymentManifest, mapping_hash: str) -> dict[str, str]:
    """Return the ten section 8.2 artefact bindings, keys sorted."""
    return {
        "audit_log_uri": deployment.policy.audit_log_uri,
        "deployment_hash": deployment.deployment_hash,
        "deployment_package_uri": deployment.package_uri,
        "evidence_pack_uri": deployment.policy.evidence_pack_uri,
        "regulation_mapping_hash": mapping_hash,
        "rollback_package_uri": deployment.policy.rollback_package_uri,
        "selected_benchmark_id": deployment.selected_benchmark_id,
        "selected_model_artifact_uri": deployment.selected_model_artifact_uri,
        "selection_hash": deployment.selection_hash,
        "telemetry_mode": deployment.policy.telemetry_mode,
    }


def _collect_findings(
    *,
    package_id: str,
    deployment_manifest: CustomerDeploymentManifest,
    mapping_uri: str,
    classification: str,
    export_uri: str,
    external_callbacks_allowed: bool,
    callback_endpoints: tuple[str, ...],
) -> list[dict[str, str]]:
    """Return the section 8.2 findings, in the reference's order."""
    findings: list[dict[str, str]] = []
    if not package_id.strip():
        findings.append(_finding("package_id_missing", "package_id is required"))
    if not deployment_manifest.ready:
        findings.append(_finding("deployment_not_ready", "deployment manifest is not ready"))
    if classification not in ALLOWED_CLASSIFICATIONS:
        findings.append(
            _finding(
                "classification_unknown", f"classification {classification!r} is not supported"
            )
        )
    if not export_uri.strip():
        findings.append(_finding("export_uri_missing", "export_uri is required"))
    # The two URI checks fire for any non-empty export_uri, even whitespace, as in the reference.
    if export_uri and export_uri != deployment_manifest.policy.evidence_pack_uri:
        findings.append(
            _finding(
                "evidence_uri_mismatch", "export_uri must match deployment policy evidence_pack_uri"
            )
        )
    if export_uri and export_uri != mapping_uri:
        findings.append(
            _finding(
                "regulation_mapping_uri_mismatch",
                "export_uri must match regulation mapping evidence_pack_uri",
            )
        )
    if callback_endpoints and not external_callbacks_allowed:
        findings.append(
            _finding(
                "external_callback_not_allowed",
                "external callbacks require explicit customer export approval",
            )
        )
    return findings


def _finding(code: str, message: str) -> dict[str, str]:
    """Return a section 1.2 finding record (severity is always ``error`` at this stage)."""
    return {"code": code, "severity": "error", "message": message}
