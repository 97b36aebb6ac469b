"""Tests for customer_model_factory.monitoring_manifest (reference section 10, 17 item 8)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory._hashing import HashMismatchError
from customer_model_factory._jsonfile import NonFiniteNumberError, manifest_bytes
from customer_model_factory.monitoring_manifest import (
    HEALTH_STATUSES,
    CustomerMonitoringManifest,
    MonitoringMetrics,
    MonitoringThresholds,
)
from factory_fixtures import (
    CUSTOMER_ID,
    GENERATED_AT,
    TENANT_ID,
    WORKSPACE_ID,
    json_trip,
    monitoring_metrics,
    monitoring_thresholds,
    ready_monitoring_manifest,
    ready_runtime_package,
    reference_hash,
    tamper_field,
)

MODEL_URI = "gs://customer-artifacts/cust-001/models/candidate-balanced"


def codes(records: tuple[dict[str, str], ...]) -> list[str]:
    """Return the ``code`` of each record, in order."""
    return [record["code"] for record in records]


def test_within_control() -> None:
    runtime = ready_runtime_package()
    manifest = ready_monitoring_manifest(runtime)
    assert manifest.ready is True
    assert manifest.health_status == "within_control"
    assert manifest.findings == ()
    assert manifest.recommendations == ()
    assert manifest.retraining_recommended is False
    assert manifest.decision_log_uri == "gs://customer-artifacts/cust-001/audit/decisions.jsonl"
    assert manifest.package_version == {
        "runtime_id": "cust-001-runtime-20260518",
        "runtime_hash": runtime.runtime_hash,
        "deployment_id": "cust-001-deployment-20260518",
        "deployment_hash": runtime.runtime_config["deployment_hash"],
        "evidence_hash": runtime.evidence_hash,
        "selected_model_artifact_uri": MODEL_URI,
    }
    assert (manifest.customer_id, manifest.runtime_id, manifest.evidence_hash) == (
        runtime.customer_id,
        runtime.runtime_id,
        runtime.evidence_hash,
    )


def test_breaches_require_review_but_stay_ready() -> None:
    metrics = monitoring_metrics(
        input_drift_score=0.31, false_negative_incident_count=1, latency_p95_ms=350.0
    )
    manifest = ready_monitoring_manifest(metrics=metrics)
    assert manifest.health_status == "review_required"
    assert manifest.ready is True
    assert manifest.retraining_recommended is True
    assert manifest.findings == ()
    assert codes(manifest.recommendations) == [
        "input_drift_threshold_breached",
        "false_negative_incident_threshold_breached",
        "latency_threshold_breached",
    ]
    assert manifest.recommendations[0] == {
        "code": "input_drift_threshold_breached",
        "severity": "review",
        "message": "input drift threshold breached",
    }


def test_all_other_breaches() -> None:
    metrics = monitoring_metrics(
        source_corpus_drift_score=0.5,
        abstention_rate=0.4,
        escalation_rate=0.3,
        cost_per_1k_decisions=9.0,
    )
    manifest = ready_monitoring_manifest(metrics=metrics)
    assert codes(manifest.recommendations) == [
        "source_corpus_drift_threshold_breached",
        "abstention_threshold_breached",
        "escalation_threshold_breached",
        "cost_threshold_breached",
    ]
    assert all(item["severity"] == "review" for item in manifest.recommendations)


def test_values_equal_to_thresholds_do_not_breach() -> None:
    thresholds = monitoring_thresholds()
    metrics = monitoring_metrics(
        input_drift_score=thresholds.max_input_drift_score,
        source_corpus_drift_score=thresholds.max_source_corpus_drift_score,
        false_negative_incident_count=thresholds.max_false_negative_incidents,
        abstention_rate=thresholds.max_abstention_rate,
        escalation_rate=thresholds.max_escalation_rate,
        latency_p95_ms=thresholds.max_latency_p95_ms,
        cost_per_1k_decisions=thresholds.max_cost_per_1k_decisions,
    )
    assert ready_monitoring_manifest(metrics=metrics).health_status == "within_control"


def test_blank_audit_log_blocks_evidence() -> None:
    runtime = ready_runtime_package()
    runtime.runtime_config["audit_log_uri"] = ""
    manifest = ready_monitoring_manifest(runtime)
    assert codes(manifest.findings) == ["decision_log_missing"]
    assert manifest.findings[0]["message"] == "decision_log_uri is required before health status"
    assert manifest.health_status == "evidence_blocked"
    assert manifest.ready is False


def test_blank_ids_and_not_ready_runtime() -> None:
    runtime = ready_runtime_package(runtime_mode="unknown-mode")
    assert not runtime.ready
    manifest = ready_monitoring_manifest(
        runtime,
        monitoring_id=" ",
        observation_window="",
        monitored_at="\t",
        review_queue_uri="",
        incident_queue_uri=" ",
    )
    assert codes(manifest.findings) == [
        "monitoring_id_missing",
        "runtime_package_not_ready",
        "observation_window_missing",
        "monitored_at_missing",
        "review_queue_missing",
        "incident_queue_missing",
    ]
    assert manifest.health_status == "evidence_blocked"


def test_findings_win_over_recommendations() -> None:
    metrics = monitoring_metrics(latency_p95_ms=900.0)
    manifest = ready_monitoring_manifest(monitoring_id="", metrics=metrics)
    assert manifest.health_status == "evidence_blocked"
    assert manifest.retraining_recommended is True
    assert codes(manifest.recommendations) == ["latency_threshold_breached"]


def test_runtime_config_mutated_in_place_gives_boundary_codes() -> None:
    runtime = ready_runtime_package()
    for key in ("customer_id", "workspace_id", "tenant_id", "deployment_id"):
        runtime.runtime_config[key] = "forged"
    manifest = ready_monitoring_manifest(runtime)
    assert codes(manifest.findings) == [
        "customer_boundary_mismatch",
        "workspace_boundary_mismatch",
        "tenant_boundary_mismatch",
        "deployment_boundary_mismatch",
    ]
    assert manifest.findings[2]["message"] == "tenant_id differs inside runtime config"


def test_runtime_config_with_keys_removed() -> None:
    runtime = ready_runtime_package()
    for key in ("tenant_id", "audit_log_uri", "deployment_hash"):
        del runtime.runtime_config[key]
    manifest = ready_monitoring_manifest(runtime)
    assert codes(manifest.findings) == ["tenant_boundary_mismatch", "decision_log_missing"]
    assert manifest.decision_log_uri == ""
    assert manifest.package_version["deployment_hash"] == ""


def test_health_statuses() -> None:
    assert HEALTH_STATUSES == ("within_control", "review_required", "evidence_blocked")


def test_golden_monitoring_hash() -> None:
    runtime = ready_runtime_package()
    manifest = ready_monitoring_manifest(runtime, metrics=monitoring_metrics(latency_p95_ms=300.0))
    expected = reference_hash(
        {
            "monitoring_id": "cust-001-monitoring-20260518",
            "health_status": "review_required",
            "customer_id": CUSTOMER_ID,
            "workspace_id": WORKSPACE_ID,
            "tenant_id": TENANT_ID,
            "runtime_id": "cust-001-runtime-20260518",
            "deployment_id": "cust-001-deployment-20260518",
            "evidence_hash": runtime.evidence_hash,
            "decision_log_uri": "gs://customer-artifacts/cust-001/audit/decisions.jsonl",
            "review_queue_uri": "gs://customer-artifacts/cust-001/queues/review",
            "incident_queue_uri": "gs://customer-artifacts/cust-001/queues/incident",
            "observation_window": "2026-05-01/2026-05-18",
            "monitored_at": GENERATED_AT,
            "metrics": {
                "total_decisions": 12000,
                "input_drift_score": 0.05,
                "source_corpus_drift_score": 0.04,
                "false_positive_review_count": 3,
                "false_negative_incident_count": 0,
                "abstention_rate": 0.02,
                "escalation_rate": 0.03,
                "latency_p95_ms": 300.0,
                "cost_per_1k_decisions": 0.8,
            },
            "thresholds": {
                "max_input_drift_score": 0.2,
                "max_source_corpus_drift_score": 0.2,
                "max_false_negative_incidents": 0,
                "max_abstention_rate": 0.1,
                "max_escalation_rate": 0.1,
                "max_latency_p95_ms": 250.0,
                "max_cost_per_1k_decisions": 1.5,
            },
            "package_version": {
                "runtime_id": "cust-001-runtime-20260518",
                "runtime_hash": runtime.runtime_hash,
                "deployment_id": "cust-001-deployment-20260518",
                "deployment_hash": runtime.runtime_config["deployment_hash"],
                "evidence_hash": runtime.evidence_hash,
                "selected_model_artifact_uri": MODEL_URI,
            },
            "recommendations": [
                {
                    "code": "latency_threshold_breached",
                    "severity": "review",
                    "message": "latency threshold breached",
                }
            ],
            "findings": [],
        }
    )
    assert manifest.monitoring_hash == expected


# Finite numbers only: write_json refuses NaN/infinity (tested separately).
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)
number = st.one_of(finite, st.integers(min_value=-(10**6), max_value=10**6))
count = st.integers(min_value=0, max_value=10**6)

metrics_strategy = st.builds(
    MonitoringMetrics,
    total_decisions=count,
    input_drift_score=number,
    source_corpus_drift_score=number,
    false_positive_review_count=count,
    false_negative_incident_count=count,
    abstention_rate=number,
    escalation_rate=number,
    latency_p95_ms=number,
    cost_per_1k_decisions=number,
)
thresholds_strategy = st.builds(
    MonitoringThresholds,
    max_input_drift_score=number,
    max_source_corpus_drift_score=number,
    max_false_negative_incidents=count,
    max_abstention_rate=number,
    max_escalation_rate=number,
    max_latency_p95_ms=number,
    max_cost_per_1k_decisions=number,
)


@dataclass(frozen=True)
class MonitoringInputs:
    """Varied builder inputs for property tests."""

    monitoring_id: str
    metrics: MonitoringMetrics
    thresholds: MonitoringThresholds
    observation_window: str
    monitored_at: str


monitoring_inputs = st.builds(
    MonitoringInputs,
    monitoring_id=st.text(max_size=10),
    metrics=metrics_strategy,
    thresholds=thresholds_strategy,
    observation_window=st.text(max_size=10),
    monitored_at=st.text(max_size=10),
)
RUNTIME = ready_runtime_package()


def build_from(inputs: MonitoringInputs) -> CustomerMonitoringManifest:
    """Build a monitoring manifest over the shared runtime from property-test inputs."""
    return ready_monitoring_manifest(
        RUNTIME,
        monitoring_id=inputs.monitoring_id,
        metrics=inputs.metrics,
        thresholds=inputs.thresholds,
        observation_window=inputs.observation_window,
        monitored_at=inputs.monitored_at,
    )


@settings(max_examples=60, deadline=None)
@given(monitoring_inputs)
def test_round_trip_and_verification(inputs: MonitoringInputs) -> None:
    manifest = build_from(inputs)
    assert manifest == build_from(inputs)
    assert CustomerMonitoringManifest.from_dict(manifest.to_dict()) == manifest
    reloaded = CustomerMonitoringManifest.from_dict_verified(json_trip(manifest.to_dict()))
    assert reloaded == manifest
    assert reloaded.recompute_hash() == manifest.monitoring_hash
    manifest.verify_hash()
    assert manifest.ready == (not manifest.findings)
    assert manifest.retraining_recommended == bool(manifest.recommendations)
    assert manifest.health_status in HEALTH_STATUSES


@settings(max_examples=60)
@given(metrics_strategy, thresholds_strategy)
def test_metric_and_threshold_round_trips_keep_number_types(
    metrics: MonitoringMetrics, thresholds: MonitoringThresholds
) -> None:
    again = MonitoringMetrics.from_dict(json_trip(metrics.to_dict()))
    assert again == metrics
    assert [type(getattr(again, f.name)) for f in fields(again)] == [
        type(getattr(metrics, f.name)) for f in fields(metrics)
    ]
    assert MonitoringThresholds.from_dict(json_trip(thresholds.to_dict())) == thresholds


@settings(max_examples=20, deadline=None)
@given(monitoring_inputs)
def test_write_json_is_byte_identical(tmp_path_factory: Any, inputs: MonitoringInputs) -> None:
    directory = tmp_path_factory.mktemp("monitoring")
    first = build_from(inputs).write_json(directory / "one.json")
    second = build_from(inputs).write_json(directory / "two.json")
    assert first.read_bytes() == second.read_bytes()
    assert (
        hashlib.sha256(first.read_bytes()).hexdigest()
        == hashlib.sha256(manifest_bytes(build_from(inputs).to_dict())).hexdigest()
    )


def test_write_json_refuses_nan_naming_the_field(tmp_path: Path) -> None:
    manifest = ready_monitoring_manifest(metrics=monitoring_metrics(input_drift_score=math.nan))
    with pytest.raises(NonFiniteNumberError, match=r"metrics\.input_drift_score"):
        manifest.write_json(tmp_path / "monitoring.json")


HASHED_FIELDS = [
    "monitoring_id",
    "health_status",
    "customer_id",
    "workspace_id",
    "tenant_id",
    "runtime_id",
    "deployment_id",
    "evidence_hash",
    "decision_log_uri",
    "review_queue_uri",
    "incident_queue_uri",
    "observation_window",
    "monitored_at",
    "metrics",
    "thresholds",
    "package_version",
    "recommendations",
    "findings",
    "monitoring_hash",
]
UNHASHED_FIELDS = ["schema_version", "ready", "retraining_recommended"]


@pytest.mark.parametrize("field_name", HASHED_FIELDS)
def test_verify_hash_detects_tampering_of_hashed_fields(field_name: str) -> None:
    with pytest.raises(HashMismatchError, match=r"CustomerMonitoringManifest\.monitoring_hash"):
        tamper_field(ready_monitoring_manifest(), field_name).verify_hash()


@pytest.mark.parametrize("field_name", UNHASHED_FIELDS)
def test_verify_hash_detects_tampering_of_unhashed_fields(field_name: str) -> None:
    with pytest.raises(ValueError, match=rf"CustomerMonitoringManifest\.{field_name}") as info:
        tamper_field(ready_monitoring_manifest(), field_name).verify_hash()
    assert not isinstance(info.value, HashMismatchError)


def test_every_field_is_covered_by_tamper_tests() -> None:
    assert {*HASHED_FIELDS, *UNHASHED_FIELDS} == {
        f.name for f in fields(CustomerMonitoringManifest)
    }


def test_rehashed_health_status_lie_is_still_rejected() -> None:
    # Someone who edits health_status and recomputes the hash still fails the derivation check.
    manifest = ready_monitoring_manifest(metrics=monitoring_metrics(latency_p95_ms=900.0))
    forged = replace(manifest, health_status="within_control")
    forged = replace(forged, monitoring_hash=forged.recompute_hash())
    with pytest.raises(ValueError, match=r"CustomerMonitoringManifest\.health_status"):
        forged.verify_hash()


def test_package_version_edit_is_detected_on_load() -> None:
    payload = ready_monitoring_manifest().to_dict()
    payload["package_version"]["runtime_hash"] = "0" * 64
    CustomerMonitoringManifest.from_dict(payload)
    with pytest.raises(HashMismatchError):
        CustomerMonitoringManifest.from_dict_verified(payload)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("metrics"), r"^metrics: required field is missing"),
        (lambda p: p.update(bogus=1), r"^bogus: unknown field"),
        (lambda p: p.update(retraining_recommended="false"), r"^retraining_recommended: "),
        (lambda p: p["metrics"].update(total_decisions=1.0), r"^metrics\.total_decisions: "),
        (lambda p: p["metrics"].update(total_decisions=True), r"^metrics\.total_decisions: "),
        (lambda p: p["metrics"].update(latency_p95_ms="120"), r"^metrics\.latency_p95_ms: "),
        (lambda p: p["metrics"].update(extra=1), r"^metrics\.extra: unknown field"),
        (lambda p: p["thresholds"].pop("max_latency_p95_ms"), r"^thresholds\.max_latency_p95_ms"),
        (
            lambda p: p["thresholds"].update(max_false_negative_incidents=None),
            r"^thresholds\.max_false_negative_incidents: expected an integer, got null",
        ),
        (lambda p: p.update(package_version={"runtime_id": 5}), r"^package_version\.runtime_id"),
        (lambda p: p.update(recommendations=[5]), r"^recommendations\[0\]: expected an object"),
        (lambda p: p.update(health_status=None), r"^health_status: expected a string"),
    ],
)
def test_from_dict_is_strict(mutate: Any, message: str) -> None:
    payload = json_trip(ready_monitoring_manifest().to_dict())
    mutate(payload)
    with pytest.raises(ValueError, match=message):
        CustomerMonitoringManifest.from_dict(payload)


def test_nested_from_dict_names_fields_without_prefix() -> None:
    payload = monitoring_metrics().to_dict()
    payload["abstention_rate"] = "0.1"
    with pytest.raises(ValueError, match=r"^abstention_rate: expected a number"):
        MonitoringMetrics.from_dict(payload)
    thresholds = monitoring_thresholds().to_dict()
    del thresholds["max_cost_per_1k_decisions"]
    with pytest.raises(ValueError, match=r"^max_cost_per_1k_decisions: required field"):
        MonitoringThresholds.from_dict(thresholds)


def test_to_dict_sorts_package_version_and_matches_json() -> None:
    data = ready_monitoring_manifest().to_dict()
    assert list(data["package_version"]) == sorted(data["package_version"])
    assert json.loads(json.dumps(data)) == data
