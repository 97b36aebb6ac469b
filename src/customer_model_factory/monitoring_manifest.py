"""Monitoring and retraining evidence for customer runtime packages.

Implements reference-behaviour.md section 10. Recommendations (threshold breaches) never make
the manifest not ready; only findings do, exactly as in the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any, Self

from ._fields import (
    reject_unknown,
    req_bool,
    req_findings,
    req_float,
    req_int,
    req_obj,
    req_str,
    req_str_dict,
)
from ._frozen import frozen
from ._hashing import check_self_hash
from ._manifest import SelfHashedManifest, check_schema_and_ready
from .runtime_package import CustomerRuntimePackage

__all__ = [
    "HEALTH_STATUSES",
    "SCHEMA_VERSION",
    "CustomerMonitoringManifest",
    "MonitoringMetrics",
    "MonitoringThresholds",
    "build_monitoring_manifest",
]

SCHEMA_VERSION = "1.0.0"
HEALTH_STATUSES = ("within_control", "review_required", "evidence_blocked")


# (metric field, threshold field, recommendation code), in the order of reference section 10.2.
_BREACH_RULES = (
    ("input_drift_score", "max_input_drift_score", "input_drift_threshold_breached"),
    (
        "source_corpus_drift_score",
        "max_source_corpus_drift_score",
        "source_corpus_drift_threshold_breached",
    ),
    (
        "false_negative_incident_count",
        "max_false_negative_incidents",
        "false_negative_incident_threshold_breached",
    ),
    ("abstention_rate", "max_abstention_rate", "abstention_threshold_breached"),
    ("escalation_rate", "max_escalation_rate", "escalation_threshold_breached"),
    ("latency_p95_ms", "max_latency_p95_ms", "latency_threshold_breached"),
    ("cost_per_1k_decisions", "max_cost_per_1k_decisions", "cost_threshold_breached"),
)

# Identity fields the runtime package repeats inside runtime_config (section 10.2 item 3).
_CONFIG_BOUNDARY_FIELDS = (
    ("customer_id", "customer_boundary_mismatch"),
    ("workspace_id", "workspace_boundary_mismatch"),
    ("tenant_id", "tenant_boundary_mismatch"),
    ("deployment_id", "deployment_boundary_mismatch"),
)


@frozen
class MonitoringMetrics:
    """Observed runtime metrics for one customer monitoring window."""

    total_decisions: int
    input_drift_score: float
    source_corpus_drift_score: float
    false_positive_review_count: int
    false_negative_incident_count: int
    abstention_rate: float
    escalation_rate: float
    latency_p95_ms: float
    cost_per_1k_decisions: float

    def to_dict(self) -> dict[str, Any]:
        """Serialise metrics to JSON-safe data."""
        return {name: getattr(self, name) for name in _METRIC_FIELDS}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild metrics from JSON-safe data (strict; ValueError names the bad field)."""
        return cls._read(payload, "")

    @classmethod
    def _read(cls, payload: Mapping[str, Any], where: str) -> Self:
        """Strictly read metrics, prefixing error messages with ``where``."""
        reject_unknown(payload, _METRIC_FIELDS, where)
        return cls(
            total_decisions=req_int(payload, "total_decisions", where),
            input_drift_score=req_float(payload, "input_drift_score", where),
            source_corpus_drift_score=req_float(payload, "source_corpus_drift_score", where),
            false_positive_review_count=req_int(payload, "false_positive_review_count", where),
            false_negative_incident_count=req_int(payload, "false_negative_incident_count", where),
            abstention_rate=req_float(payload, "abstention_rate", where),
            escalation_rate=req_float(payload, "escalation_rate", where),
            latency_p95_ms=req_float(payload, "latency_p95_ms", where),
            cost_per_1k_decisions=req_float(payload, "cost_per_1k_decisions", where),
        )


_METRIC_FIELDS = tuple(field.name for field in fields(MonitoringMetrics))


@frozen
class MonitoringThresholds:
    """Customer monitoring thresholds that trigger review or retraining."""

    max_input_drift_score: float
    max_source_corpus_drift_score: float
    max_false_negative_incidents: int
    max_abstention_rate: float
    max_escalation_rate: float
    max_latency_p95_ms: float
    max_cost_per_1k_decisions: float

    def to_dict(self) -> dict[str, Any]:
        """Serialise thresholds to JSON-safe data."""
        return {name: getattr(self, name) for name in _THRESHOLD_FIELDS}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild thresholds from JSON-safe data (strict; ValueError names the bad field)."""
        return cls._read(payload, "")

    @classmethod
    def _read(cls, payload: Mapping[str, Any], where: str) -> Self:
        """Strictly read thresholds, prefixing error messages with ``where``."""
        reject_unknown(payload, _THRESHOLD_FIELDS, where)
        return cls(
            max_input_drift_score=req_float(payload, "max_input_drift_score", where),
            max_source_corpus_drift_score=req_float(
                payload, "max_source_corpus_drift_score", where
            ),
            max_false_negative_incidents=req_int(payload, "max_false_negative_incidents", where),
            max_abstention_rate=req_float(payload, "max_abstention_rate", where),
            max_escalation_rate=req_float(payload, "max_escalation_rate", where),
            max_latency_p95_ms=req_float(payload, "max_latency_p95_ms", where),
            max_cost_per_1k_decisions=req_float(payload, "max_cost_per_1k_decisions", where),
        )


_THRESHOLD_FIELDS = tuple(field.name for field in fields(MonitoringThresholds))


@frozen
class CustomerMonitoringManifest(SelfHashedManifest):
    """Monitoring manifest for customer runtime evidence and retraining decisions."""

    schema_version: str
    monitoring_id: str
    ready: bool
    health_status: str
    customer_id: str
    workspace_id: str
    tenant_id: str
    runtime_id: str
    deployment_id: str
    evidence_hash: str
    decision_log_uri: str
    review_queue_uri: str
    incident_queue_uri: str
    observation_window: str
    monitored_at: str
    metrics: MonitoringMetrics
    thresholds: MonitoringThresholds
    package_version: dict[str, str]
    retraining_recommended: bool
    recommendations: tuple[dict[str, str], ...]
    findings: tuple[dict[str, str], ...]
    monitoring_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise the monitoring manifest to stable JSON-safe data."""
        return {
            "schema_version": self.schema_version,
            "monitoring_id": self.monitoring_id,
            "ready": self.ready,
            "health_status": self.health_status,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "runtime_id": self.runtime_id,
            "deployment_id": self.deployment_id,
            "evidence_hash": self.evidence_hash,
            "decision_log_uri": self.decision_log_uri,
            "review_queue_uri": self.review_queue_uri,
            "incident_queue_uri": self.incident_queue_uri,
            "observation_window": self.observation_window,
            "monitored_at": self.monitored_at,
            "metrics": self.metrics.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "package_version": dict(sorted(self.package_version.items())),
            "retraining_recommended": self.retraining_recommended,
            "recommendations": [dict(item) for item in self.recommendations],
            "findings": [dict(finding) for finding in self.findings],
            "monitoring_hash": self.monitoring_hash,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a monitoring manifest from JSON-safe data.

        Strict: a missing or unknown key, or a value of the wrong type, raises ValueError naming
        the field. The stored hash is not checked here; use ``from_dict_verified`` for that.
        """
        reject_unknown(payload, _MANIFEST_FIELDS)
        return cls(
            schema_version=req_str(payload, "schema_version"),
            monitoring_id=req_str(payload, "monitoring_id"),
            ready=req_bool(payload, "ready"),
            health_status=req_str(payload, "health_status"),
            customer_id=req_str(payload, "customer_id"),
            workspace_id=req_str(payload, "workspace_id"),
            tenant_id=req_str(payload, "tenant_id"),
            runtime_id=req_str(payload, "runtime_id"),
            deployment_id=req_str(payload, "deployment_id"),
            evidence_hash=req_str(payload, "evidence_hash"),
            decision_log_uri=req_str(payload, "decision_log_uri"),
            review_queue_uri=req_str(payload, "review_queue_uri"),
            incident_queue_uri=req_str(payload, "incident_queue_uri"),
            observation_window=req_str(payload, "observation_window"),
            monitored_at=req_str(payload, "monitored_at"),
            metrics=MonitoringMetrics._read(req_obj(payload, "metrics"), "metrics."),
            thresholds=MonitoringThresholds._read(req_obj(payload, "thresholds"), "thresholds."),
            package_version=req_str_dict(payload, "package_version"),
            retraining_recommended=req_bool(payload, "retraining_recommended"),
            recommendations=req_findings(payload, "recommendations"),
            findings=req_findings(payload, "findings"),
            monitoring_hash=req_str(payload, "monitoring_hash"),
        )

    def _hash_payload(self) -> dict[str, Any]:
        """Return the ``monitoring_hash`` payload of reference section 10.2 (the only copy)."""
        return {
            "monitoring_id": self.monitoring_id,
            "health_status": self.health_status,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "runtime_id": self.runtime_id,
            "deployment_id": self.deployment_id,
            "evidence_hash": self.evidence_hash,
            "decision_log_uri": self.decision_log_uri,
            "review_queue_uri": self.review_queue_uri,
            "incident_queue_uri": self.incident_queue_uri,
            "observation_window": self.observation_window,
            "monitored_at": self.monitored_at,
            "metrics": self.metrics.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "package_version": self.package_version,
            "recommendations": list(self.recommendations),
            "findings": list(self.findings),
        }

    def verify_hash(self) -> None:
        """Raise HashMismatchError if ``monitoring_hash`` is stale, ValueError on any lie.

        ``ready``, ``retraining_recommended`` and ``schema_version`` are not hashed, so they are
        checked against the rules that derive them; ``health_status`` is checked the same way.
        """
        kind = "CustomerMonitoringManifest"
        check_self_hash(kind, "monitoring_hash", self.monitoring_hash, self.recompute_hash())
        check_schema_and_ready(
            kind,
            self.schema_version,
            SCHEMA_VERSION,
            self.ready,
            not self.findings,
            len(self.findings),
        )
        if self.retraining_recommended != bool(self.recommendations):
            raise ValueError(
                f"{kind}.retraining_recommended: stored {self.retraining_recommended} but there "
                f"are {len(self.recommendations)} recommendations"
            )
        expected = _health_status(self.findings, self.recommendations)
        if self.health_status != expected:
            raise ValueError(
                f"{kind}.health_status: stored {self.health_status!r} but the findings and "
                f"recommendations give {expected!r}"
            )


_MANIFEST_FIELDS = tuple(field.name for field in fields(CustomerMonitoringManifest))


def build_monitoring_manifest(
    *,
    monitoring_id: str,
    runtime_package: CustomerRuntimePackage,
    metrics: MonitoringMetrics,
    thresholds: MonitoringThresholds,
    observation_window: str,
    monitored_at: str,
    review_queue_uri: str,
    incident_queue_uri: str,
) -> CustomerMonitoringManifest:
    """Build a monitoring manifest and retraining recommendation set (reference section 10.2)."""
    config = runtime_package.runtime_config
    # str() as in the reference, so that hashes match. build_customer_runtime_package always
    # stores a str here; anything else means the package was edited after it was hashed, which
    # CustomerRuntimePackage.verify_hash detects.
    decision_log_uri = str(config.get("audit_log_uri", ""))
    findings = _collect_findings(
        monitoring_id=monitoring_id,
        runtime_package=runtime_package,
        decision_log_uri=decision_log_uri,
        observation_window=observation_window,
        monitored_at=monitored_at,
        review_queue_uri=review_queue_uri,
        incident_queue_uri=incident_queue_uri,
    )
    recommendations = _recommendations(metrics, thresholds)
    draft = CustomerMonitoringManifest(
        schema_version=SCHEMA_VERSION,
        monitoring_id=monitoring_id,
        ready=not findings,
        health_status=_health_status(findings, recommendations),
        customer_id=runtime_package.customer_id,
        workspace_id=runtime_package.workspace_id,
        tenant_id=runtime_package.tenant_id,
        runtime_id=runtime_package.runtime_id,
        deployment_id=runtime_package.deployment_id,
        evidence_hash=runtime_package.evidence_hash,
        decision_log_uri=decision_log_uri,
        review_queue_uri=review_queue_uri,
        incident_queue_uri=incident_queue_uri,
        observation_window=observation_window,
        monitored_at=monitored_at,
        metrics=metrics,
        thresholds=thresholds,
        package_version=_package_version(runtime_package),
        retraining_recommended=bool(recommendations),
        recommendations=recommendations,
        findings=findings,
        monitoring_hash="",
    )
    return replace(draft, monitoring_hash=draft.recompute_hash())


def _package_version(runtime_package: CustomerRuntimePackage) -> dict[str, str]:
    """Return the six-key package version that binds the runtime (section 10.2)."""
    config = runtime_package.runtime_config
    return {
        "runtime_id": runtime_package.runtime_id,
        "runtime_hash": runtime_package.runtime_hash,
        "deployment_id": runtime_package.deployment_id,
        "deployment_hash": str(config.get("deployment_hash", "")),
        "evidence_hash": runtime_package.evidence_hash,
        "selected_model_artifact_uri": str(config.get("selected_model_artifact_uri", "")),
    }


def _collect_findings(
    *,
    monitoring_id: str,
    runtime_package: CustomerRuntimePackage,
    decision_log_uri: str,
    observation_window: str,
    monitored_at: str,
    review_queue_uri: str,
    incident_queue_uri: str,
) -> tuple[dict[str, str], ...]:
    """Return the findings of reference section 10.2, in order. All are blank checks."""
    findings: list[dict[str, str]] = []
    if not monitoring_id.strip():
        findings.append(_finding("monitoring_id_missing", "monitoring_id is required"))
    if not runtime_package.ready:
        findings.append(_finding("runtime_package_not_ready", "runtime package is not ready"))
    for field, code in _CONFIG_BOUNDARY_FIELDS:
        if runtime_package.runtime_config.get(field) != getattr(runtime_package, field):
            findings.append(_finding(code, f"{field} differs inside runtime config"))
    blank_checks = (
        (
            decision_log_uri,
            "decision_log_missing",
            "decision_log_uri is required before health status",
        ),
        (observation_window, "observation_window_missing", "observation_window is required"),
        (monitored_at, "monitored_at_missing", "monitored_at is required"),
        (review_queue_uri, "review_queue_missing", "review_queue_uri is required"),
        (incident_queue_uri, "incident_queue_missing", "incident_queue_uri is required"),
    )
    for value, code, message in blank_checks:
        if not value.strip():
            findings.append(_finding(code, message))
    return tuple(findings)


def _recommendations(
    metrics: MonitoringMetrics, thresholds: MonitoringThresholds
) -> tuple[dict[str, str], ...]:
    """Return one review recommendation per metric strictly above its threshold, in order."""
    return tuple(
        _recommendation(code)
        for metric, limit, code in _BREACH_RULES
        if getattr(metrics, metric) > getattr(thresholds, limit)
    )


def _health_status(
    findings: tuple[dict[str, str], ...], recommendations: tuple[dict[str, str], ...]
) -> str:
    """Return evidence_blocked if any finding, else review_required if any breach, else ok."""
    if findings:
        return "evidence_blocked"
    if recommendations:
        return "review_required"
    return "within_control"


def _finding(code: str, message: str) -> dict[str, str]:
    """Return a later-stage finding record (reference section 1.2): always severity error."""
    return {"code": code, "severity": "error", "message": message}


def _recommendation(code: str) -> dict[str, str]:
    """Return a recommendation record: severity review, message = code with spaces."""
    return {"code": code, "severity": "review", "message": code.replace("_", " ")}
