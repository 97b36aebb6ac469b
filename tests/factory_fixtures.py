"""Reusable builders for valid example inputs of the stage modules, shared by the test modules.

Every builder returns a fresh object, so a test may mutate what it gets. Keyword overrides
replace fields of the valid default, which keeps each test's deviation visible at the call site.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from customer_model_factory.benchmark_selection import (
    BenchmarkMetrics,
    CustomerBenchmarkResult,
    CustomerModelSelectionReport,
    select_customer_model,
)
from customer_model_factory.dataset_contract import (
    CustomerDatasetValidationReport,
    CustomerWorkspace,
    validate_customer_trace_dataset,
)
from customer_model_factory.deployment_manifest import (
    CustomerDeploymentManifest,
    DeploymentPolicy,
    build_deployment_manifest,
)
from customer_model_factory.evidence_pack import (
    CustomerEvidencePackManifest,
    build_customer_evidence_pack,
)
from customer_model_factory.monitoring_manifest import (
    CustomerMonitoringManifest,
    MonitoringMetrics,
    MonitoringThresholds,
    build_monitoring_manifest,
)
from customer_model_factory.release_gate import (
    CustomerReleaseGateManifest,
    build_release_gate_manifest,
)
from customer_model_factory.risk_register import (
    CustomerRiskException,
    CustomerRiskRegister,
    build_risk_register,
)
from customer_model_factory.runtime_package import (
    CustomerRuntimePackage,
    build_customer_runtime_package,
)
from customer_model_factory.sector_extension import (
    SectorEvidenceMapping,
    build_sector_evidence_mapping,
)
from customer_model_factory.training_manifest import (
    CustomerTrainingManifest,
    TrainingLane,
    build_training_manifest,
)

CUSTOMER_ID = "cust-001"
WORKSPACE_ID = "ws-guardrails"
TENANT_ID = "tenant-eu-1"
SECTOR_PROFILE = "regulated-sector"
SPLITS = ("train", "eval", "test")


def workspace(**overrides: Any) -> CustomerWorkspace:
    """Return a valid workspace with the three standard splits; ``overrides`` replace fields."""
    fields: dict[str, Any] = {
        "customer_id": CUSTOMER_ID,
        "workspace_id": WORKSPACE_ID,
        "tenant_id": TENANT_ID,
        "data_classification": "confidential",
        "allowed_splits": SPLITS,
        "regulation_mappings": ("ISO42001",),
    }
    fields.update(overrides)
    return CustomerWorkspace(**fields)


def sector_metadata(**overrides: Any) -> dict[str, Any]:
    """Return metadata that satisfies every sector-profile control; ``overrides`` replace keys."""
    metadata: dict[str, Any] = {
        "sector_class": "retail",
        "knowledge_class": "product_terms",
        "jurisdiction": "CH",
        "requires_citation": True,
        "evidence_refs": ["kb://evidence/terms-2025#s3"],
        "requires_escalation": False,
    }
    metadata.update(overrides)
    return metadata


def trace_row(trace_id: str = "trace-001", **overrides: Any) -> dict[str, Any]:
    """Return one valid trace row (medium severity, approve, train split, sector metadata).

    The prompt and response contain ``trace_id``, so rows with different ids never share a
    semantic fingerprint unless a test says so.
    """
    row: dict[str, Any] = {
        "trace_id": trace_id,
        "customer_id": CUSTOMER_ID,
        "tenant_id": TENANT_ID,
        "split": "train",
        "prompt": f"What is the early repayment fee? ({trace_id})",
        "response": f"The fee is stated in section 3 of the terms. ({trace_id})",
        "expected_decision": "approve",
        "severity": "medium",
        "label": "grounded",
        "source_refs": ["kb://terms-2025#s3"],
        "policy_refs": ["policy://grounding/v2"],
        "reviewer_role": "compliance_reviewer",
        "observed_at": "2025-03-14T09:30:00Z",
        "contains_pii": False,
        "contains_secret": False,
        "redaction_status": "not_required",
        "metadata": sector_metadata(),
    }
    row.update(overrides)
    return row


def trace_rows() -> list[dict[str, Any]]:
    """Return the reference's valid 3-row dataset shape: one row per split, medium/high/critical.

    Ready under the sector profile; ``high_risk_count`` is 2.
    """
    escalated = sector_metadata(requires_escalation=True)
    return [
        trace_row("trace-001", split="train", severity="medium"),
        trace_row(
            "trace-002",
            split="eval",
            severity="high",
            expected_decision="escalate",
            metadata=escalated,
        ),
        trace_row(
            "trace-003",
            split="test",
            severity="critical",
            expected_decision="escalate",
            metadata=escalated,
        ),
    ]


def dataset_report(
    rows: list[dict[str, Any]] | None = None, **workspace_overrides: Any
) -> CustomerDatasetValidationReport:
    """Return the (ready) report of ``trace_rows()`` under the sector profile."""
    return validate_customer_trace_dataset(
        trace_rows() if rows is None else rows,
        workspace(**workspace_overrides),
        vertical_profile=SECTOR_PROFILE,
    )


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """Write ``rows`` as JSON Lines (one ``json.dumps`` per line) and return ``path``."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def tampered(value: Any) -> Any:
    """Return a value of the same kind as ``value`` that differs from it (for tamper tests).

    Strings get a suffix, numbers change, booleans flip, enums move to another member,
    containers lose their last element (an empty one gains one), and a dataclass has its first
    field tampered with.
    """
    if isinstance(value, bool):
        return not value
    if isinstance(value, enum.Enum):
        members = list(type(value))
        return members[(members.index(value) + 1) % len(members)]
    if isinstance(value, str):
        return value + "-tampered"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5 if math.isfinite(value) else 0.0
    if isinstance(value, tuple):
        return value[:-1] if value else ("tampered",)
    if isinstance(value, list):
        return value[:-1] if value else ["tampered"]
    if isinstance(value, dict):
        return dict(list(value.items())[:-1]) if value else {"tampered": "tampered"}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        first = dataclasses.fields(value)[0].name
        return dataclasses.replace(value, **{first: tampered(getattr(value, first))})
    raise TypeError(f"tampered: no rule for {type(value).__name__}")


# --- S2: training, benchmark, selection, deployment, mapping and evidence fixtures ------------

EVIDENCE_PACK_URI = "gs://customer-artifacts/cust-001/evidence/cmf-cust-001-20260518"
MODEL_OUTPUT_URI = "gs://customer-artifacts/cust-001/models/cmf-cust-001-20260518"
CLAIM_BOUNDARY = "cust-001 private guardrail validation only."


def ready_training_manifest(**overrides: Any) -> CustomerTrainingManifest:
    """Return a ready VERTEX training manifest over ``dataset_report()``; kwargs override."""
    arguments: dict[str, Any] = {
        "package_id": "cmf-cust-001-20260518",
        "dataset_report": dataset_report(),
        "lane": TrainingLane.VERTEX,
        "base_model_id": "microsoft/deberta-v3-small",
        "base_model_revision": "abcdef1234567890abcdef1234567890abcdef12",
        "output_uri": MODEL_OUTPUT_URI,
        "hyperparameters": {"epochs": 3, "batch_size": 8, "learning_rate": 1e-5},
        "objective_profile": "zero_silent_unsafe_pass",
    }
    arguments.update(overrides)
    return build_training_manifest(**arguments)


def benchmark_metrics(**overrides: Any) -> BenchmarkMetrics:
    """Return in-range metrics for 240 samples (the reference tests' values); kwargs override."""
    values: dict[str, Any] = {
        "total_samples": 240,
        "balanced_accuracy": 0.94,
        "precision": 0.91,
        "recall": 0.96,
        "f1": 0.92,
        "false_positive_rate": 0.03,
        "false_negative_rate": 0.0,
        "high_risk_false_negative_rate": 0.0,
        "abstention_rate": 0.08,
        "escalation_rate": 0.12,
        "latency_p95_ms": 42.0,
        "severity_counts": {"critical": 40, "high": 80, "low": 40, "medium": 80},
    }
    values.update(overrides)
    return BenchmarkMetrics(**values)


def benchmark_result(
    benchmark_id: str = "candidate-default",
    *,
    training_manifest: CustomerTrainingManifest | None = None,
    **metric_overrides: Any,
) -> CustomerBenchmarkResult:
    """Return a ready benchmark result named ``benchmark_id``; kwargs override the metrics."""
    return CustomerBenchmarkResult.from_metrics(
        benchmark_id=benchmark_id,
        training_manifest=training_manifest or ready_training_manifest(),
        model_artifact_uri=f"gs://customer-artifacts/cust-001/models/{benchmark_id}",
        metrics=benchmark_metrics(**metric_overrides),
        raw_result_uri=f"gs://customer-artifacts/cust-001/benchmarks/{benchmark_id}.json",
        claim_boundary=CLAIM_BOUNDARY,
    )


def benchmark_results() -> list[CustomerBenchmarkResult]:
    """Return three ready candidates; ``candidate-balanced`` wins every profile but low_latency."""
    manifest = ready_training_manifest()
    return [
        benchmark_result(
            "candidate-fast", training_manifest=manifest, f1=0.89, latency_p95_ms=18.0
        ),
        benchmark_result(
            "candidate-balanced",
            training_manifest=manifest,
            f1=0.93,
            recall=0.97,
            false_positive_rate=0.02,
        ),
        benchmark_result(
            "candidate-recall-noisy",
            training_manifest=manifest,
            f1=0.90,
            recall=0.98,
            false_positive_rate=0.09,
            false_negative_rate=0.05,
            high_risk_false_negative_rate=0.01,
            latency_p95_ms=95.0,
        ),
    ]


def ready_selection(objective_profile: str = "balanced") -> CustomerModelSelectionReport:
    """Return a ready selection over ``benchmark_results()``."""
    return select_customer_model(
        selection_id="cust-001-selection-20260518",
        objective_profile=objective_profile,
        candidates=benchmark_results(),
    )


def deployment_policy(**overrides: Any) -> DeploymentPolicy:
    """Return the reference's production policy (0.72/0.58/0.40, 365 days); kwargs override."""
    values: dict[str, Any] = {
        "threshold": 0.72,
        "abstention_threshold": 0.58,
        "escalation_threshold": 0.40,
        "require_citations": True,
        "audit_log_uri": "gs://customer-artifacts/cust-001/audit/decisions.jsonl",
        "evidence_pack_uri": EVIDENCE_PACK_URI,
        "rollback_package_uri": "gs://customer-artifacts/cust-001/releases/previous.tar",
        "retention_days": 365,
        "telemetry_mode": "customer_controlled",
    }
    values.update(overrides)
    return DeploymentPolicy(**values)


def ready_deployment(**overrides: Any) -> CustomerDeploymentManifest:
    """Return a ready production deployment of ``ready_selection()``; kwargs override."""
    arguments: dict[str, Any] = {
        "deployment_id": "cust-001-deployment-20260518",
        "selection_report": ready_selection(),
        "policy": deployment_policy(),
        "environment": "production",
        "package_uri": "gs://customer-artifacts/cust-001/releases/cmf-20260518.tar",
    }
    arguments.update(overrides)
    return build_deployment_manifest(**arguments)


def sector_mapping(**overrides: Any) -> SectorEvidenceMapping:
    """Return a sector evidence mapping whose evidence URI matches the deployment policy."""
    arguments: dict[str, Any] = {
        "sector_id": "regulated-sector",
        "jurisdiction": "CH",
        "evidence_pack_uri": EVIDENCE_PACK_URI,
    }
    arguments.update(overrides)
    return build_sector_evidence_mapping(**arguments)


def ready_evidence_pack(**overrides: Any) -> CustomerEvidencePackManifest:
    """Return a ready confidential evidence pack for ``ready_deployment()``; kwargs override."""
    arguments: dict[str, Any] = {
        "package_id": "cust-001-evidence-20260518",
        "deployment_manifest": ready_deployment(),
        "regulation_mapping": sector_mapping(),
        "classification": "confidential",
        "export_uri": EVIDENCE_PACK_URI,
    }
    arguments.update(overrides)
    return build_customer_evidence_pack(**arguments)


# --- S3: runtime, monitoring, risk register and release gate fixtures ------------------------

GENERATED_AT = "2026-05-18T18:45:00Z"


def reference_hash(payload: Any) -> str:
    """Reference section 1.4's recipe written out by hand (for golden hashes in the tests)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def json_trip(payload: Any) -> Any:
    """Return ``payload`` after a JSON encode/decode round trip."""
    return json.loads(json.dumps(payload))


def tamper_field(obj: Any, name: str) -> Any:
    """Return a copy of the frozen dataclass ``obj`` with field ``name`` tampered with."""
    return dataclasses.replace(obj, **{name: tampered(getattr(obj, name))})


def forged_evidence_pack(
    evidence_pack: CustomerEvidencePackManifest, **changes: Any
) -> CustomerEvidencePackManifest:
    """Edit a pack's serialised form and reload it, keeping its stale hash (a forgery)."""
    payload = evidence_pack.to_dict()
    payload.update(changes)
    return CustomerRuntimePackage.evidence_pack_from_dict(payload)


def ready_runtime_package(
    deployment_manifest: CustomerDeploymentManifest | None = None,
    evidence_pack: CustomerEvidencePackManifest | None = None,
    **overrides: Any,
) -> CustomerRuntimePackage:
    """Return a ready offline_private runtime; the default pack is built from the deployment."""
    deployment = deployment_manifest or ready_deployment()
    arguments: dict[str, Any] = {
        "runtime_id": "cust-001-runtime-20260518",
        "deployment_manifest": deployment,
        "evidence_pack": evidence_pack or ready_evidence_pack(deployment_manifest=deployment),
        "runtime_mode": "offline_private",
    }
    arguments.update(overrides)
    return build_customer_runtime_package(**arguments)


def monitoring_metrics(**overrides: Any) -> MonitoringMetrics:
    """Return metrics comfortably inside ``monitoring_thresholds()``; kwargs override."""
    values: dict[str, Any] = {
        "total_decisions": 12_000,
        "input_drift_score": 0.05,
        "source_corpus_drift_score": 0.04,
        "false_positive_review_count": 3,
        "false_negative_incident_count": 0,
        "abstention_rate": 0.02,
        "escalation_rate": 0.03,
        "latency_p95_ms": 120.0,
        "cost_per_1k_decisions": 0.8,
    }
    values.update(overrides)
    return MonitoringMetrics(**values)


def monitoring_thresholds(**overrides: Any) -> MonitoringThresholds:
    """Return thresholds: drift 0.2, no false-negative incidents, 250 ms, 1.5 per 1k decisions."""
    values: dict[str, Any] = {
        "max_input_drift_score": 0.2,
        "max_source_corpus_drift_score": 0.2,
        "max_false_negative_incidents": 0,
        "max_abstention_rate": 0.1,
        "max_escalation_rate": 0.1,
        "max_latency_p95_ms": 250.0,
        "max_cost_per_1k_decisions": 1.5,
    }
    values.update(overrides)
    return MonitoringThresholds(**values)


def ready_monitoring_manifest(
    runtime_package: CustomerRuntimePackage | None = None, **overrides: Any
) -> CustomerMonitoringManifest:
    """Return a within-control monitoring manifest of ``runtime_package``; kwargs override."""
    arguments: dict[str, Any] = {
        "monitoring_id": "cust-001-monitoring-20260518",
        "runtime_package": runtime_package or ready_runtime_package(),
        "metrics": monitoring_metrics(),
        "thresholds": monitoring_thresholds(),
        "observation_window": "2026-05-01/2026-05-18",
        "monitored_at": GENERATED_AT,
        "review_queue_uri": "gs://customer-artifacts/cust-001/queues/review",
        "incident_queue_uri": "gs://customer-artifacts/cust-001/queues/incident",
    }
    arguments.update(overrides)
    return build_monitoring_manifest(**arguments)


def accepted_risk(
    evidence_pack: CustomerEvidencePackManifest,
    monitoring_manifest: CustomerMonitoringManifest,
    **overrides: Any,
) -> CustomerRiskException:
    """Return an accepted risk with owner, expiry 2026-06-18, controls and correct links."""
    values: dict[str, Any] = {
        "risk_id": "RISK-001",
        "status": "accepted",
        "severity": "medium",
        "owner": "risk-officer@cust-001.example",
        "accepted_at": "2026-05-10",
        "expires_at": "2026-06-18",
        "compensating_controls": ("manual-review-queue", "weekly-drift-review"),
        "linked_artifact_hashes": {
            "evidence_hash": evidence_pack.evidence_hash,
            "monitoring_hash": monitoring_manifest.monitoring_hash,
        },
        "rationale": "latency budget exceeded during regional failover drills",
    }
    values.update(overrides)
    return CustomerRiskException(**values)


@dataclasses.dataclass(frozen=True)
class FactoryChain:
    """One consistent deployment, evidence, runtime, monitoring and risk-register chain."""

    deployment: CustomerDeploymentManifest
    evidence_pack: CustomerEvidencePackManifest
    runtime: CustomerRuntimePackage
    monitoring: CustomerMonitoringManifest
    risk_register: CustomerRiskRegister


def ready_chain(*, with_risk: bool = True) -> FactoryChain:
    """Return a ready chain built by the real builders (one accepted risk unless told not to)."""
    deployment = ready_deployment()
    evidence_pack = ready_evidence_pack(deployment_manifest=deployment)
    runtime = ready_runtime_package(deployment, evidence_pack)
    monitoring = ready_monitoring_manifest(runtime)
    risks = (accepted_risk(evidence_pack, monitoring),) if with_risk else ()
    register = build_risk_register(
        register_id="cust-001-risk-register-20260518",
        evidence_pack=evidence_pack,
        monitoring_manifest=monitoring,
        risks=risks,
        generated_at="2026-05-18",
    )
    return FactoryChain(deployment, evidence_pack, runtime, monitoring, register)


def ready_release_gate(
    chain: FactoryChain | None = None, **overrides: Any
) -> CustomerReleaseGateManifest:
    """Return the gate over ``chain`` (promotable for ``ready_chain()``); kwargs override."""
    chain = chain or ready_chain()
    arguments: dict[str, Any] = {
        "release_id": "cust-001-release-20260518",
        "enterprise_ready": True,
        "enterprise_blocking_debt_ids": (),
        "runtime_package": chain.runtime,
        "evidence_pack": chain.evidence_pack,
        "monitoring_manifest": chain.monitoring,
        "risk_register": chain.risk_register,
        "generated_at": GENERATED_AT,
    }
    arguments.update(overrides)
    return build_release_gate_manifest(**arguments)
