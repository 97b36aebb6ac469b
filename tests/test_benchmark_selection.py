"""Tests for customer_model_factory.benchmark_selection (reference section 6 and metrics)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import fields, replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory._hashing import HashMismatchError
from customer_model_factory._jsonfile import manifest_bytes
from customer_model_factory.benchmark_selection import (
    _OBJECTIVES,
    _UNIT_INTERVAL_METRICS,
    BenchmarkMetrics,
    CustomerBenchmarkResult,
    CustomerModelSelectionReport,
    compute_benchmark_metrics,
    select_customer_model,
)
from customer_model_factory.training_manifest import OBJECTIVE_PROFILES
from factory_fixtures import (
    CLAIM_BOUNDARY,
    benchmark_metrics,
    benchmark_result,
    benchmark_results,
    ready_selection,
    ready_training_manifest,
    tampered,
)


def _codes(findings: tuple[dict[str, str], ...]) -> list[str]:
    return [finding["code"] for finding in findings]


def _digest(payload: Any) -> str:
    """The documented recipe, written out independently of the implementation."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Benchmark results (section 6.2)


def test_benchmark_result_ready_when_training_manifest_and_metrics_are_ready() -> None:
    manifest = ready_training_manifest()
    result = benchmark_result("cust-001-private-v1", training_manifest=manifest)
    assert result.ready is True
    assert result.findings == ()
    assert result.training_manifest_hash == manifest.manifest_hash
    assert (result.customer_id, result.workspace_id, result.tenant_id) == (
        manifest.customer_id,
        manifest.workspace_id,
        manifest.tenant_id,
    )
    result.verify_hash()


def test_benchmark_result_blocks_not_ready_training_manifest() -> None:
    not_ready = ready_training_manifest(hyperparameters={})
    assert not_ready.ready is False
    result = benchmark_result("candidate", training_manifest=not_ready)
    assert _codes(result.findings) == ["training_manifest_not_ready"]
    assert result.ready is False


def test_benchmark_result_reports_the_seven_reference_codes_in_order() -> None:
    result = CustomerBenchmarkResult.from_metrics(
        benchmark_id=" ",
        training_manifest=ready_training_manifest(),
        model_artifact_uri=" ",
        metrics=benchmark_metrics(total_samples=0, balanced_accuracy=1.01, severity_counts={}),
        raw_result_uri=" ",
        claim_boundary=" ",
    )
    assert _codes(result.findings) == [
        "benchmark_id_missing",
        "model_artifact_missing",
        "raw_result_missing",
        "claim_boundary_missing",
        "empty_benchmark",
        "severity_counts_missing",
        "metric_out_of_range",
    ]
    assert result.findings[-1]["message"] == "balanced_accuracy must be between 0 and 1"
    assert {finding["severity"] for finding in result.findings} == {"error"}


def test_metric_out_of_range_is_one_finding_per_metric_in_field_order_and_nan_fails() -> None:
    metrics = benchmark_metrics(
        escalation_rate=-0.1, recall=math.nan, precision=2.0, latency_p95_ms=-5.0
    )
    result = benchmark_result("candidate", **metrics.__dict__)
    assert [finding["message"] for finding in result.findings] == [
        "precision must be between 0 and 1",
        "recall must be between 0 and 1",
        "escalation_rate must be between 0 and 1",
    ]


def test_unit_interval_metrics_are_the_metric_fields_in_declaration_order() -> None:
    names = [f.name for f in fields(BenchmarkMetrics)]
    excluded = {"total_samples", "latency_p95_ms", "severity_counts"}
    assert list(_UNIT_INTERVAL_METRICS) == [name for name in names if name not in excluded]


def test_result_hash_golden_value_from_documented_recipe() -> None:
    manifest = ready_training_manifest()
    result = benchmark_result("candidate-golden", training_manifest=manifest)
    expected = _digest(
        {
            "benchmark_id": "candidate-golden",
            "training_manifest_hash": manifest.manifest_hash,
            "model_artifact_uri": "gs://customer-artifacts/cust-001/models/candidate-golden",
            "metrics": {
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
            },
            "raw_result_uri": "gs://customer-artifacts/cust-001/benchmarks/candidate-golden.json",
            "claim_boundary": CLAIM_BOUNDARY,
            "findings": [],
        }
    )
    assert result.result_hash == expected


def test_result_keeps_a_private_copy_of_severity_counts() -> None:
    metrics = benchmark_metrics()
    result = CustomerBenchmarkResult.from_metrics(
        benchmark_id="candidate",
        training_manifest=ready_training_manifest(),
        model_artifact_uri="gs://m",
        metrics=metrics,
        raw_result_uri="gs://r",
        claim_boundary=CLAIM_BOUNDARY,
    )
    metrics.severity_counts["critical"] = 0
    result.verify_hash()
    assert result.metrics.severity_counts["critical"] == 40


# --------------------------------------------------------------------------------------------
# Selection (section 6.4), including the reference scenarios of section 17 item 3


def test_objective_table_covers_exactly_the_known_profiles() -> None:
    assert set(_OBJECTIVES) == set(OBJECTIVE_PROFILES)


def test_zero_silent_unsafe_pass_rejects_high_risk_false_negatives() -> None:
    bad = benchmark_result("cust-001-private-v1", high_risk_false_negative_rate=0.01)
    selection = select_customer_model(
        selection_id="cust-001-selection-20260518",
        objective_profile="zero_silent_unsafe_pass",
        candidates=[bad],
    )
    assert selection.ready is False
    assert selection.selected_benchmark_id == ""
    assert selection.selected_model_artifact_uri == ""
    assert _codes(selection.findings) == ["no_candidate_satisfies_objective"]


def test_unknown_objective_and_no_candidates_give_exactly_three_codes() -> None:
    selection = select_customer_model(
        selection_id=" ", objective_profile="unsupported-risk-objective", candidates=[]
    )
    assert _codes(selection.findings) == [
        "selection_id_missing",
        "objective_profile_unknown",
        "candidates_missing",
    ]
    assert selection.ready is False
    assert selection.selected_benchmark_id == ""


def test_unknown_objective_with_a_candidate_gives_only_objective_profile_unknown() -> None:
    selection = select_customer_model(
        selection_id="cust-001-unsupported-selection",
        objective_profile="unsupported-risk-objective",
        candidates=[benchmark_result()],
    )
    assert _codes(selection.findings) == ["objective_profile_unknown"]
    assert selection.selected_benchmark_id == ""
    assert selection.ready is False


@pytest.mark.parametrize("profile", ["high_recall", "conservative"])
def test_high_recall_and_conservative_pick_the_lower_noise_candidate(profile: str) -> None:
    manifest = ready_training_manifest()
    safer = benchmark_result(
        "candidate-safer",
        training_manifest=manifest,
        f1=0.88,
        recall=0.95,
        false_positive_rate=0.01,
        false_negative_rate=0.01,
    )
    noisier = benchmark_result(
        "candidate-noisier",
        training_manifest=manifest,
        f1=0.96,
        recall=0.97,
        false_positive_rate=0.08,
        false_negative_rate=0.08,
    )
    selection = select_customer_model(
        selection_id=f"cust-001-{profile}-selection",
        objective_profile=profile,
        candidates=[noisier, safer],
    )
    assert selection.ready is True
    assert selection.findings == ()
    assert selection.selected_benchmark_id == "candidate-safer"


def test_balanced_picks_the_higher_f1() -> None:
    manifest = ready_training_manifest()
    lower = benchmark_result("candidate-lower-f1", training_manifest=manifest, f1=0.81)
    higher = benchmark_result("candidate-higher-f1", training_manifest=manifest, f1=0.93)
    selection = select_customer_model(
        selection_id="cust-001-balanced-selection",
        objective_profile="balanced",
        candidates=[lower, higher],
    )
    assert selection.ready is True
    assert selection.selected_benchmark_id == "candidate-higher-f1"


def test_low_latency_picks_25ms_f1_091_over_120ms_f1_094() -> None:
    manifest = ready_training_manifest()
    slower = benchmark_result(
        "candidate-slower", training_manifest=manifest, f1=0.94, latency_p95_ms=120.0
    )
    faster = benchmark_result(
        "candidate-faster", training_manifest=manifest, f1=0.91, latency_p95_ms=25.0
    )
    selection = select_customer_model(
        selection_id="cust-001-selection-20260518",
        objective_profile="low_latency",
        candidates=[slower, faster],
    )
    assert selection.ready is True
    assert selection.selected_benchmark_id == "candidate-faster"
    assert (
        selection.selected_model_artifact_uri
        == "gs://customer-artifacts/cust-001/models/candidate-faster"
    )


@pytest.mark.parametrize("profile", sorted(OBJECTIVE_PROFILES))
def test_ties_go_to_the_first_candidate_in_input_order(profile: str) -> None:
    manifest = ready_training_manifest()
    first = benchmark_result("candidate-first", training_manifest=manifest)
    second = benchmark_result("candidate-second", training_manifest=manifest)
    forward = select_customer_model(
        selection_id="s", objective_profile=profile, candidates=[first, second]
    )
    backward = select_customer_model(
        selection_id="s", objective_profile=profile, candidates=[second, first]
    )
    assert forward.selected_benchmark_id == "candidate-first"
    assert backward.selected_benchmark_id == "candidate-second"


def test_not_ready_candidates_are_never_selected() -> None:
    manifest = ready_training_manifest()
    broken = CustomerBenchmarkResult.from_metrics(
        benchmark_id="candidate-broken",
        training_manifest=manifest,
        model_artifact_uri="gs://m",
        metrics=benchmark_metrics(f1=0.99),
        raw_result_uri=" ",
        claim_boundary=CLAIM_BOUNDARY,
    )
    fine = benchmark_result("candidate-fine", training_manifest=manifest, f1=0.5)
    selection = select_customer_model(
        selection_id="s", objective_profile="balanced", candidates=[broken, fine]
    )
    assert selection.selected_benchmark_id == "candidate-fine"


def test_eligibility_filters_follow_the_reference_thresholds() -> None:
    manifest = ready_training_manifest()
    cases = [
        ("high_recall", {"recall": 0.90}, True),
        ("high_recall", {"recall": 0.8999}, False),
        ("low_latency", {"latency_p95_ms": 1000.0}, True),
        ("low_latency", {"latency_p95_ms": 1000.5}, False),
        ("zero_silent_unsafe_pass", {"high_risk_false_negative_rate": 0.0}, True),
        ("zero_silent_unsafe_pass", {"high_risk_false_negative_rate": 1e-9}, False),
    ]
    for profile, overrides, selected in cases:
        candidate = benchmark_result("c", training_manifest=manifest, **overrides)
        report = select_customer_model(
            selection_id="s", objective_profile=profile, candidates=[candidate]
        )
        assert (report.selected_benchmark_id == "c") is selected, (profile, overrides)


def test_blank_selection_id_blocks_readiness_even_with_a_winner() -> None:
    selection = select_customer_model(
        selection_id="  ", objective_profile="balanced", candidates=benchmark_results()
    )
    assert selection.selected_benchmark_id == "candidate-balanced"
    assert _codes(selection.findings) == ["selection_id_missing"]
    assert selection.ready is False
    selection.verify_hash()


def test_fixture_candidates_pick_the_documented_winners() -> None:
    expected = {
        "balanced": "candidate-balanced",
        "conservative": "candidate-balanced",
        "high_recall": "candidate-balanced",
        "zero_silent_unsafe_pass": "candidate-balanced",
        "low_latency": "candidate-fast",
    }
    for profile, winner in expected.items():
        assert ready_selection(profile).selected_benchmark_id == winner


def test_selection_hash_golden_value_from_documented_recipe() -> None:
    selection = ready_selection()
    expected = _digest(
        {
            "selection_id": "cust-001-selection-20260518",
            "objective_profile": "balanced",
            "selected_benchmark_id": "candidate-balanced",
            "selected_model_artifact_uri": (
                "gs://customer-artifacts/cust-001/models/candidate-balanced"
            ),
            "candidates": [candidate.result_hash for candidate in benchmark_results()],
            "findings": [],
        }
    )
    assert selection.selection_hash == expected


def test_selection_report_writes_stable_json_and_round_trips(tmp_path: Path) -> None:
    selection = ready_selection("high_recall")
    output = selection.write_json(tmp_path / "selection.json")
    payload = json.loads(output.read_text(encoding="utf-8"))
    assert payload == selection.to_dict()
    assert CustomerModelSelectionReport.from_dict(payload) == selection
    assert CustomerModelSelectionReport.from_dict_verified(payload) == selection
    assert output.read_bytes() == manifest_bytes(selection.to_dict())


# --------------------------------------------------------------------------------------------
# Verification and strict parsing


def test_selection_verify_rejects_a_forged_choice_even_with_a_recomputed_hash() -> None:
    selection = ready_selection()
    loser = selection.candidates[0]
    forged = replace(
        selection,
        selected_benchmark_id=loser.benchmark_id,
        selected_model_artifact_uri=loser.model_artifact_uri,
    )
    forged = replace(forged, selection_hash=forged.recompute_hash())
    with pytest.raises(ValueError, match="is not the candidate"):
        forged.verify_hash()


def test_selection_verify_rejects_dropped_findings_even_with_a_recomputed_hash() -> None:
    selection = select_customer_model(
        selection_id=" ", objective_profile="balanced", candidates=benchmark_results()
    )
    forged = replace(selection, findings=(), ready=True)
    forged = replace(forged, selection_hash=forged.recompute_hash())
    with pytest.raises(ValueError, match="findings"):
        forged.verify_hash()


def test_selection_verify_checks_each_candidate() -> None:
    selection = ready_selection()
    bad = replace(selection.candidates[2], claim_boundary="edited")
    forged = replace(selection, candidates=(*selection.candidates[:2], bad))
    with pytest.raises(HashMismatchError, match=r"CustomerBenchmarkResult\.result_hash"):
        forged.verify_hash()


@pytest.mark.parametrize("name", [f.name for f in fields(CustomerModelSelectionReport)])
def test_selection_verify_fails_after_any_field_is_tampered_with(name: str) -> None:
    selection = ready_selection()
    forged = replace(selection, **{name: tampered(getattr(selection, name))})
    with pytest.raises(ValueError):
        forged.verify_hash()


# The reference hashes identity only indirectly (via training_manifest_hash), so these three
# edits are invisible to verify_hash; the chain verifier compares them with the training manifest.
UNHASHED_RESULT_FIELDS = {"customer_id", "workspace_id", "tenant_id"}


@pytest.mark.parametrize("name", [f.name for f in fields(CustomerBenchmarkResult)])
def test_result_verify_fails_after_any_hashed_field_is_tampered_with(name: str) -> None:
    result = benchmark_result()
    forged = replace(result, **{name: tampered(getattr(result, name))})
    if name in UNHASHED_RESULT_FIELDS:
        forged.verify_hash()
    else:
        with pytest.raises(ValueError):
            forged.verify_hash()


def test_result_verify_rejects_a_lying_ready_flag_and_a_foreign_schema() -> None:
    result = benchmark_result()
    with pytest.raises(ValueError, match=r"CustomerBenchmarkResult\.ready"):
        replace(result, ready=False).verify_hash()
    with pytest.raises(ValueError, match="schema_version"):
        replace(result, schema_version="2.0.0").verify_hash()


def test_metrics_from_dict_is_strict() -> None:
    good = benchmark_metrics().to_dict()
    assert BenchmarkMetrics.from_dict(good) == benchmark_metrics()
    with pytest.raises(ValueError, match=r"^recall: expected a number, got str"):
        BenchmarkMetrics.from_dict({**good, "recall": "0.9"})
    with pytest.raises(ValueError, match=r"^total_samples: expected an integer, got float"):
        BenchmarkMetrics.from_dict({**good, "total_samples": 240.0})
    with pytest.raises(ValueError, match=r"^f1: expected a number, got bool"):
        BenchmarkMetrics.from_dict({**good, "f1": True})
    with pytest.raises(ValueError, match=r"^severity_counts\.high: expected an integer"):
        BenchmarkMetrics.from_dict({**good, "severity_counts": {"high": "80"}})
    with pytest.raises(ValueError, match=r"^extra: unknown field"):
        BenchmarkMetrics.from_dict({**good, "extra": 1})
    missing = dict(good)
    del missing["precision"]
    with pytest.raises(ValueError, match=r"^precision: required field is missing"):
        BenchmarkMetrics.from_dict(missing)


def test_metrics_from_dict_keeps_ints_so_hashes_recompute() -> None:
    payload = {**benchmark_metrics().to_dict(), "recall": 1, "latency_p95_ms": 42}
    metrics = BenchmarkMetrics.from_dict(payload)
    assert metrics.recall == 1 and isinstance(metrics.recall, int)
    assert metrics.to_dict() == payload


def test_selection_from_dict_names_the_nested_field() -> None:
    payload = ready_selection().to_dict()
    payload["candidates"][1]["metrics"]["recall"] = "high"
    with pytest.raises(ValueError, match=r"^candidates\[1\]\.metrics\.recall: expected a number"):
        CustomerModelSelectionReport.from_dict(payload)
    payload = ready_selection().to_dict()
    payload["candidates"][0]["ready"] = "false"
    with pytest.raises(ValueError, match=r"^candidates\[0\]\.ready: expected true or false"):
        CustomerModelSelectionReport.from_dict(payload)
    payload = ready_selection().to_dict()
    payload["candidates"] = {"0": {}}
    with pytest.raises(ValueError, match=r"^candidates: expected a list"):
        CustomerModelSelectionReport.from_dict(payload)
    payload = ready_selection().to_dict()
    payload["candidates"][2]["surprise"] = True
    with pytest.raises(ValueError, match=r"^candidates\[2\]\.surprise: unknown field"):
        CustomerModelSelectionReport.from_dict(payload)


def test_result_from_dict_refuses_coercible_values() -> None:
    payload = benchmark_result().to_dict()
    with pytest.raises(ValueError, match=r"^benchmark_id: expected a string, got null"):
        CustomerBenchmarkResult.from_dict({**payload, "benchmark_id": None})
    with pytest.raises(ValueError, match=r"^ready: expected true or false, got int"):
        CustomerBenchmarkResult.from_dict({**payload, "ready": 1})
    with pytest.raises(ValueError, match=r"^findings\[0\]: expected an object"):
        CustomerBenchmarkResult.from_dict({**payload, "findings": ["oops"]})


def test_from_dict_verified_refuses_an_edited_result() -> None:
    payload = benchmark_result().to_dict()
    payload["metrics"]["recall"] = 0.5
    assert CustomerBenchmarkResult.from_dict(payload).metrics.recall == 0.5
    with pytest.raises(HashMismatchError):
        CustomerBenchmarkResult.from_dict_verified(payload)


# --------------------------------------------------------------------------------------------
# Properties of built objects

_finite_unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
_texts = st.text(max_size=12)


@st.composite
def _metrics(draw: st.DrawFn) -> BenchmarkMetrics:
    values = {name: draw(_finite_unit) for name in _UNIT_INTERVAL_METRICS}
    return BenchmarkMetrics(
        total_samples=draw(st.integers(min_value=0, max_value=10_000)),
        latency_p95_ms=draw(st.floats(min_value=0, max_value=5_000, allow_nan=False)),
        severity_counts=draw(
            st.dictionaries(
                st.sampled_from(["low", "medium", "high", "critical"]), st.integers(0, 99)
            )
        ),
        **values,
    )


@st.composite
def _results(draw: st.DrawFn) -> CustomerBenchmarkResult:
    return CustomerBenchmarkResult.from_metrics(
        benchmark_id=draw(_texts),
        training_manifest=_TRAINING,
        model_artifact_uri=draw(_texts),
        metrics=draw(_metrics()),
        raw_result_uri=draw(_texts),
        claim_boundary=draw(_texts),
    )


_TRAINING = ready_training_manifest()
_profiles = st.sampled_from([*sorted(OBJECTIVE_PROFILES), "unknown"])


@settings(max_examples=40, deadline=None)
@given(st.lists(_results(), max_size=4), _profiles, _texts)
def test_selection_round_trips_verifies_and_is_deterministic(
    candidates: list[CustomerBenchmarkResult], profile: str, selection_id: str
) -> None:
    report = select_customer_model(
        selection_id=selection_id, objective_profile=profile, candidates=candidates
    )
    again = select_customer_model(
        selection_id=selection_id, objective_profile=profile, candidates=list(candidates)
    )
    assert report == again
    report.verify_hash()
    assert CustomerModelSelectionReport.from_dict(report.to_dict()) == report
    trip = json.loads(json.dumps(report.to_dict()))
    assert CustomerModelSelectionReport.from_dict_verified(trip) == report
    assert report.ready == (report.selected_benchmark_id != "" and not report.findings)


@settings(max_examples=40, deadline=None)
@given(_results())
def test_result_round_trips_and_writes_identical_bytes(result: CustomerBenchmarkResult) -> None:
    assert CustomerBenchmarkResult.from_dict(result.to_dict()) == result
    assert (
        CustomerBenchmarkResult.from_dict_verified(json.loads(json.dumps(result.to_dict())))
        == result
    )
    assert BenchmarkMetrics.from_dict(result.metrics.to_dict()) == result.metrics
    assert result.ready == (not result.findings)


@settings(max_examples=10, deadline=None)
@given(st.lists(_results(), min_size=1, max_size=3), _profiles)
def test_selection_write_json_is_byte_identical_across_runs(
    candidates: list[CustomerBenchmarkResult], profile: str
) -> None:
    report = select_customer_model(
        selection_id="s", objective_profile=profile, candidates=candidates
    )
    with TemporaryDirectory() as tmp:
        first = report.write_json(Path(tmp) / "a" / "selection.json").read_bytes()
        second = report.write_json(Path(tmp) / "b" / "selection.json").read_bytes()
    assert first == second
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    assert first == manifest_bytes(report.to_dict())


# --------------------------------------------------------------------------------------------
# compute_benchmark_metrics


def _row(
    expected: Any, predicted: Any, severity: Any, latency: Any, **extra: Any
) -> dict[str, Any]:
    return {
        "expected_decision": expected,
        "predicted_decision": predicted,
        "severity": severity,
        "latency_ms": latency,
        **extra,
    }


def test_metrics_worked_example_from_docs() -> None:
    rows = [
        _row("block", "block", "high", 10),  # TP, high-risk positive
        _row("escalate", "approve", "critical", 20),  # FN, high-risk positive
        _row("approve", "approve", "low", 30),  # TN
        _row("approve", "abstain", "medium", 40),  # FP (abstaining flags the row)
        _row("block", "escalate", "medium", 50, score=0.7),  # TP
    ]
    # Confusion matrix: TP=2 FN=1 FP=1 TN=1; high-risk positives 2, of which 1 FN.
    metrics = compute_benchmark_metrics(rows)
    assert metrics == BenchmarkMetrics(
        total_samples=5,
        balanced_accuracy=(2 / 3 + 1 / 2) / 2,
        precision=2 / 3,
        recall=2 / 3,
        f1=4 / 6,
        false_positive_rate=1 / 2,
        false_negative_rate=1 / 3,
        high_risk_false_negative_rate=1 / 2,
        abstention_rate=1 / 5,
        escalation_rate=1 / 5,
        latency_p95_ms=50.0,
        severity_counts={"critical": 1, "high": 1, "low": 1, "medium": 2},
    )
    assert isinstance(metrics.latency_p95_ms, float)


def test_metrics_second_hand_computed_example() -> None:
    # 20 rows: 8 unsafe (6 caught, 2 missed) and 12 safe (3 flagged, 9 passed).
    # TP=6 FN=2 FP=3 TN=9. Missed rows are critical; caught ones: 2 high, 4 low; one safe
    # critical row, which does not enter the high-risk false negative rate (2 of 4).
    rows = (
        [_row("block", "block", "high", 100 + i) for i in range(2)]
        + [_row("abstain", "escalate", "low", 110 + i) for i in range(4)]
        + [_row("escalate", "approve", "critical", 120 + i) for i in range(2)]
        + [_row("approve", "abstain", "medium", 5 * i) for i in range(3)]
        + [_row("approve", "approve", "critical", 1.0)]  # safe: not in the high-risk rate
        + [_row("approve", "approve", "low", float(i)) for i in range(8)]
    )
    metrics = compute_benchmark_metrics(iter(rows))
    assert metrics.total_samples == 20
    assert metrics.precision == 6 / 9
    assert metrics.recall == 6 / 8
    assert metrics.f1 == 12 / 17  # 2TP / (2TP + FP + FN)
    assert metrics.false_positive_rate == 3 / 12
    assert metrics.false_negative_rate == 2 / 8
    assert metrics.balanced_accuracy == (6 / 8 + 9 / 12) / 2
    assert metrics.high_risk_false_negative_rate == 2 / 4
    assert metrics.abstention_rate == 3 / 20
    assert metrics.escalation_rate == 4 / 20
    # Sorted latencies: rank ceil(0.95 * 20) = 19 is the second largest, 120.
    assert metrics.latency_p95_ms == 120.0
    assert metrics.severity_counts == {"critical": 3, "high": 2, "low": 12, "medium": 3}


def test_metrics_zero_denominators_give_zero() -> None:
    empty = compute_benchmark_metrics([])
    assert empty.total_samples == 0
    assert empty.latency_p95_ms == 0.0
    assert empty.severity_counts == {}
    assert all(getattr(empty, name) == 0.0 for name in _UNIT_INTERVAL_METRICS)
    all_safe = compute_benchmark_metrics([_row("approve", "approve", "low", 1.0)])
    assert (all_safe.precision, all_safe.recall, all_safe.f1) == (0.0, 0.0, 0.0)
    assert all_safe.high_risk_false_negative_rate == 0.0
    assert all_safe.balanced_accuracy == 0.5  # (0 + TN/(TN+FP)) / 2


def test_p95_nearest_rank_uses_integer_rank() -> None:
    # n = 100: rank ceil(95.0) = 95 exactly; n = 20: rank 19; n = 1: rank 1.
    rows = [_row("approve", "approve", "low", float(i)) for i in range(1, 101)]
    assert compute_benchmark_metrics(rows).latency_p95_ms == 95.0
    rows = [_row("approve", "approve", "low", float(i)) for i in range(1, 21)]
    assert compute_benchmark_metrics(rows).latency_p95_ms == 19.0
    rows = [_row("approve", "approve", "low", 7)]
    assert compute_benchmark_metrics(rows).latency_p95_ms == 7.0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("not a row", r"^row 1: expected an object, got str"),
        (
            {"predicted_decision": "block", "severity": "low", "latency_ms": 1},
            r"^row 1: expected_decision: required field is missing",
        ),
        (_row("Block", "block", "low", 1), r"^row 1: expected_decision: expected one of"),
        (_row("block", " block", "low", 1), r"^row 1: predicted_decision: expected one of"),
        (_row("block", None, "low", 1), r"^row 1: predicted_decision: expected one of .* got None"),
        (_row("block", "block", "urgent", 1), r"^row 1: severity: expected one of"),
        (_row("block", "block", "low", "1"), r"^row 1: latency_ms: expected a number, got str"),
        (_row("block", "block", "low", True), r"^row 1: latency_ms: expected a number, got bool"),
        (_row("block", "block", "low", -0.5), r"^row 1: latency_ms: must be >= 0"),
        (_row("block", "block", "low", math.inf), r"^row 1: latency_ms: must be finite"),
        (_row("block", "block", "low", math.nan), r"^row 1: latency_ms: must be finite"),
        (_row("block", "block", "low", 10**400), r"^row 1: latency_ms: .* is too large"),
        (_row("block", "block", "low", 1, score=1.5), r"^row 1: score: must be between 0 and 1"),
        (
            _row("block", "block", "low", 1, score=None),
            r"^row 1: score: expected a number, got null",
        ),
        (_row("block", "block", "low", 1, score=math.nan), r"^row 1: score: must be finite"),
    ],
)
def test_metrics_reject_bad_rows_naming_index_and_field(row: Any, message: str) -> None:
    rows = [_row("approve", "approve", "low", 1), row]
    with pytest.raises(ValueError, match=message):
        compute_benchmark_metrics(rows)


_decisions = st.sampled_from(["approve", "block", "abstain", "escalate"])
_severities = st.sampled_from(["low", "medium", "high", "critical"])
_latencies = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
)
_rows = st.lists(st.builds(_row, _decisions, _decisions, _severities, _latencies), max_size=60)


@settings(max_examples=200, deadline=None)
@given(_rows)
def test_metric_properties(rows: list[dict[str, Any]]) -> None:
    metrics = compute_benchmark_metrics(rows)
    for name in _UNIT_INTERVAL_METRICS:
        assert 0.0 <= getattr(metrics, name) <= 1.0, name
    unsafe = [r for r in rows if r["expected_decision"] != "approve"]
    safe = [r for r in rows if r["expected_decision"] == "approve"]
    tp = sum(r["predicted_decision"] != "approve" for r in unsafe)
    tn = sum(r["predicted_decision"] == "approve" for r in safe)
    recall = tp / len(unsafe) if unsafe else 0.0
    specificity = tn / len(safe) if safe else 0.0
    assert metrics.balanced_accuracy == (recall + specificity) / 2
    low, high = sorted((metrics.precision, metrics.recall))
    assert low <= metrics.f1 <= high
    assert sum(metrics.severity_counts.values()) == metrics.total_samples == len(rows)
    assert list(metrics.severity_counts) == sorted(metrics.severity_counts)
    if rows:
        assert metrics.latency_p95_ms in [float(r["latency_ms"]) for r in rows]
        below = sum(float(r["latency_ms"]) <= metrics.latency_p95_ms for r in rows)
        assert below >= 0.95 * len(rows)
    high_risk = [r for r in unsafe if r["severity"] in ("high", "critical")]
    missed = sum(r["predicted_decision"] == "approve" for r in high_risk)
    assert metrics.high_risk_false_negative_rate == (missed / len(high_risk) if high_risk else 0.0)
    false_negatives = len(unsafe) - tp
    assert metrics.false_negative_rate == (false_negatives / len(unsafe) if unsafe else 0.0)
    assert metrics.false_positive_rate == ((len(safe) - tn) / len(safe) if safe else 0.0)
