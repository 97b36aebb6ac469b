"""Deployment package manifest for customer-selected guardrail models (reference section 7)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields, replace
from typing import Any, Self

from ._fields import (
    reject_unknown,
    req_bool,
    req_findings,
    req_float,
    req_int,
    req_obj,
    req_str,
)
from ._frozen import frozen
from ._hashing import check_self_hash
from ._manifest import SelfHashedManifest, check_schema_and_ready
from .benchmark_selection import CustomerBenchmarkResult, CustomerModelSelectionReport

SCHEMA_VERSION = "1.0.0"
TELEMETRY_MODES = frozenset({"disabled", "customer_controlled", "internal_only"})
ENVIRONMENTS = frozenset({"development", "staging", "production"})


@frozen
class DeploymentPolicy:
    """Runtime policy bound to a customer deployment package.

    ``threshold`` is the approve cut, ``abstention_threshold`` the abstain cut and
    ``escalation_threshold`` the escalate cut; they must be strictly descending.
    """

    threshold: float
    abstention_threshold: float
    escalation_threshold: float
    require_citations: bool
    audit_log_uri: str
    evidence_pack_uri: str
    rollback_package_uri: str
    retention_days: int
    telemetry_mode: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise policy to JSON-safe data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild policy from JSON-safe data; strict, ValueError names the field."""
        return cls._from_mapping(payload, "")

    @classmethod
    def _from_mapping(cls, payload: Mapping[str, Any], where: str) -> Self:
        """Strictly parse ``payload``; errors are prefixed with ``where`` (the nesting path)."""
        policy = cls(
            threshold=req_float(payload, "threshold", where),
            abstention_threshold=req_float(payload, "abstention_threshold", where),
            escalation_threshold=req_float(payload, "escalation_threshold", where),
            require_citations=req_bool(payload, "require_citations", where),
            audit_log_uri=req_str(payload, "audit_log_uri", where),
            evidence_pack_uri=req_str(payload, "evidence_pack_uri", where),
            rollback_package_uri=req_str(payload, "rollback_package_uri", where),
            retention_days=req_int(payload, "retention_days", where),
            telemetry_mode=req_str(payload, "telemetry_mode", where),
        )
        reject_unknown(payload, _POLICY_FIELD_NAMES, where)
        return policy


_POLICY_FIELD_NAMES = tuple(f.name for f in fields(DeploymentPolicy))


@frozen
class CustomerDeploymentManifest(SelfHashedManifest):
    """Export-ready deployment package manifest."""

    schema_version: str
    deployment_id: str
    ready: bool
    customer_id: str
    workspace_id: str
    tenant_id: str
    selection_hash: str
    selected_benchmark_id: str
    selected_model_artifact_uri: str
    policy: DeploymentPolicy
    environment: str
    package_uri: str
    findings: tuple[dict[str, str], ...]
    deployment_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise deployment manifest to stable JSON-safe data."""
        return {
            "schema_version": self.schema_version,
            "deployment_id": self.deployment_id,
            "ready": self.ready,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "selection_hash": self.selection_hash,
            "selected_benchmark_id": self.selected_benchmark_id,
            "selected_model_artifact_uri": self.selected_model_artifact_uri,
            "policy": self.policy.to_dict(),
            "environment": self.environment,
            "package_uri": self.package_uri,
            "findings": [dict(finding) for finding in self.findings],
            "deployment_hash": self.deployment_hash,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild deployment manifest from serialised data; strict, ValueError names the field."""
        manifest = cls(
            schema_version=req_str(payload, "schema_version"),
            deployment_id=req_str(payload, "deployment_id"),
            ready=req_bool(payload, "ready"),
            customer_id=req_str(payload, "customer_id"),
            workspace_id=req_str(payload, "workspace_id"),
            tenant_id=req_str(payload, "tenant_id"),
            selection_hash=req_str(payload, "selection_hash"),
            selected_benchmark_id=req_str(payload, "selected_benchmark_id"),
            selected_model_artifact_uri=req_str(payload, "selected_model_artifact_uri"),
            policy=DeploymentPolicy._from_mapping(req_obj(payload, "policy"), "policy."),
            environment=req_str(payload, "environment"),
            package_uri=req_str(payload, "package_uri"),
            findings=req_findings(payload, "findings"),
            deployment_hash=req_str(payload, "deployment_hash"),
        )
        reject_unknown(payload, _DEPLOYMENT_FIELD_NAMES)
        return manifest

    def verify_hash(self) -> None:
        """Raise HashMismatchError on a stale ``deployment_hash``, ValueError on inconsistent flags.

        Inconsistent means a foreign ``schema_version`` or ``ready != not findings`` (1.3).

        The identity fields are outside the reference's hash recipe; the chain verifier checks
        them against the selected candidate.
        """
        check_self_hash(
            "CustomerDeploymentManifest",
            "deployment_hash",
            self.deployment_hash,
            self.recompute_hash(),
        )
        check_schema_and_ready(
            "CustomerDeploymentManifest",
            self.schema_version,
            SCHEMA_VERSION,
            self.ready,
            not self.findings,
            len(self.findings),
        )

    def _hash_payload(self) -> dict[str, Any]:
        """Return the section 7.3 hash payload (identity fields are not part of it)."""
        return {
            "deployment_id": self.deployment_id,
            "selection_hash": self.selection_hash,
            "selected_benchmark_id": self.selected_benchmark_id,
            "selected_model_artifact_uri": self.selected_model_artifact_uri,
            "policy": self.policy.to_dict(),
            "environment": self.environment,
            "package_uri": self.package_uri,
            "findings": list(self.findings),
        }


_DEPLOYMENT_FIELD_NAMES = tuple(f.name for f in fields(CustomerDeploymentManifest))


def build_deployment_manifest(
    *,
    deployment_id: str,
    selection_report: CustomerModelSelectionReport,
    policy: DeploymentPolicy,
    environment: str,
    package_uri: str,
) -> CustomerDeploymentManifest:
    """Build and validate a customer deployment package manifest (reference section 7.3).

    Deliberate difference: customer, workspace and tenant come from the *selected* candidate
    (the first whose benchmark_id equals ``selected_benchmark_id``), and are ``""`` when nothing
    was selected; the reference copied them from ``candidates[0]``.
    """
    findings = _collect_findings(
        deployment_id=deployment_id,
        selection_report=selection_report,
        policy=policy,
        environment=environment,
        package_uri=package_uri,
    )
    selected = selected_candidate(selection_report)
    draft = CustomerDeploymentManifest(
        schema_version=SCHEMA_VERSION,
        deployment_id=deployment_id,
        ready=not findings,
        customer_id=selected.customer_id if selected else "",
        workspace_id=selected.workspace_id if selected else "",
        tenant_id=selected.tenant_id if selected else "",
        selection_hash=selection_report.selection_hash,
        selected_benchmark_id=selection_report.selected_benchmark_id,
        selected_model_artifact_uri=selection_report.selected_model_artifact_uri,
        policy=policy,
        environment=environment,
        package_uri=package_uri,
        findings=tuple(findings),
        deployment_hash="",
    )
    return replace(draft, deployment_hash=draft.recompute_hash())


def selected_candidate(
    selection_report: CustomerModelSelectionReport,
) -> CustomerBenchmarkResult | None:
    """Return the first candidate whose benchmark_id is the selected one; None if none is."""
    if not selection_report.selected_benchmark_id:
        return None
    for candidate in selection_report.candidates:
        if candidate.benchmark_id == selection_report.selected_benchmark_id:
            return candidate
    return None


def _collect_findings(
    *,
    deployment_id: str,
    selection_report: CustomerModelSelectionReport,
    policy: DeploymentPolicy,
    environment: str,
    package_uri: str,
) -> list[dict[str, str]]:
    """Return the section 7.3 findings, in the reference's order."""
    findings: list[dict[str, str]] = []
    if not deployment_id.strip():
        findings.append(_finding("deployment_id_missing", "deployment_id is required"))
    if not selection_report.ready:
        findings.append(_finding("selection_not_ready", "selection report is not ready"))
    # Not stripped, as in the reference: only an empty URI counts as missing here.
    if not selection_report.selected_model_artifact_uri:
        findings.append(
            _finding("selected_model_missing", "selected model artefact URI is required")
        )
    if environment not in ENVIRONMENTS:
        findings.append(
            _finding("environment_unknown", f"environment {environment!r} is not supported")
        )
    if not package_uri.strip():
        findings.append(_finding("package_uri_missing", "package_uri is required"))
    findings.extend(_policy_findings(policy, environment))
    return findings


def _policy_findings(policy: DeploymentPolicy, environment: str) -> list[dict[str, str]]:
    """Return the policy part of the section 7.3 findings (items 6 to 12), in order."""
    findings: list[dict[str, str]] = []
    for name in ("threshold", "abstention_threshold", "escalation_threshold"):
        # A negated range test, so NaN is out of range, as in the reference.
        if not 0.0 <= getattr(policy, name) <= 1.0:
            findings.append(_finding("threshold_out_of_range", f"{name} must be between 0 and 1"))
    if not policy.threshold > policy.abstention_threshold > policy.escalation_threshold:
        findings.append(
            _finding(
                "threshold_order_invalid",
                "threshold must be greater than abstention threshold, "
                "which must be greater than escalation threshold",
            )
        )
    if not policy.audit_log_uri.strip():
        findings.append(_finding("audit_log_missing", "audit_log_uri is required"))
    if not policy.evidence_pack_uri.strip():
        findings.append(_finding("evidence_pack_missing", "evidence_pack_uri is required"))
    if environment == "production" and not policy.rollback_package_uri.strip():
        findings.append(
            _finding("rollback_missing", "production deployments require rollback_package_uri")
        )
    if policy.retention_days < 1:
        findings.append(_finding("retention_invalid", "retention_days must be positive"))
    if policy.telemetry_mode not in TELEMETRY_MODES:
        findings.append(
            _finding(
                "telemetry_mode_unknown",
                f"telemetry_mode {policy.telemetry_mode!r} is not supported",
            )
        )
    return findings


def _finding(code: str, message: str) -> dict[str, str]:
    """Return a section 1.2 finding record (severity is always ``error`` at this stage)."""
    return {"code": code, "severity": "error", "message": message}
