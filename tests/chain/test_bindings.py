"""Tests for check_bindings: each binding family, forged in isolation, gives its exact code."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import chain_fixtures as cf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.benchmark_selection import select_customer_model
from customer_model_factory.chain import BINDING_CODES, bindings, check_bindings, kinds
from customer_model_factory.chain.findings import codes
from customer_model_factory.chain.kinds import PROMOTION_SCHEMA, PromotionRecord, TraceDataset
from customer_model_factory.chain.source import BlobStream
from customer_model_factory.dataset_contract import validate_customer_trace_dataset
from customer_model_factory.monitoring_manifest import build_monitoring_manifest
from customer_model_factory.release_gate import build_release_gate_manifest
from customer_model_factory.runtime_package import build_customer_runtime_package

F = cf.build_factory()
ERROR = {"code": "x", "severity": "error", "message": "x"}


def not_ready(manifest: Any) -> Any:
    """Return ``manifest`` made honestly not ready (an error finding), self-hash recomputed."""
    field = "blockers" if hasattr(manifest, "blockers") else "findings"
    changes: dict[str, Any] = {"ready": False, field: (*getattr(manifest, field), ERROR)}
    if hasattr(manifest, "promotion_allowed"):
        changes["promotion_allowed"] = False
    return cf.rehash(manifest, **changes)


def bind(kind: str, manifest: Any, *, deep: bool = False, **parents: Any) -> list[str]:
    """Return the codes of check_bindings with ``parents`` given as kind=object or list."""
    grouped = {k: v if isinstance(v, list) else [v] for k, v in parents.items()}
    return codes(check_bindings(kind, manifest, grouped, deep=deep))


# -- the honest chain binds --------------------------------------------------------------------


def honest_cases(trace: TraceDataset) -> list[tuple[str, Any, dict[str, Any]]]:
    """Every (kind, child, parents) edge of the valid factory run."""
    return [
        (kinds.DATASET_REPORT, F.report, {kinds.TRACE_DATASET: trace}),
        (kinds.TRAINING_MANIFEST, F.training, {kinds.DATASET_REPORT: F.report}),
        *((kinds.BENCHMARK_RESULT, b, {kinds.TRAINING_MANIFEST: F.training}) for b in F.benchmarks),
        (kinds.SELECTION_REPORT, F.selection, {kinds.BENCHMARK_RESULT: list(F.benchmarks)}),
        (kinds.DEPLOYMENT_MANIFEST, F.deployment, {kinds.SELECTION_REPORT: F.selection}),
        (
            kinds.EVIDENCE_PACK,
            F.evidence,
            {kinds.DEPLOYMENT_MANIFEST: F.deployment, kinds.SECTOR_MAPPING: F.mapping},
        ),
        (
            kinds.RUNTIME_PACKAGE,
            F.runtime,
            {kinds.DEPLOYMENT_MANIFEST: F.deployment, kinds.EVIDENCE_PACK: F.evidence},
        ),
        (kinds.MONITORING_MANIFEST, F.monitoring, {kinds.RUNTIME_PACKAGE: F.runtime}),
        (
            kinds.RISK_REGISTER,
            F.register,
            {kinds.EVIDENCE_PACK: F.evidence, kinds.MONITORING_MANIFEST: F.monitoring},
        ),
        (
            kinds.RELEASE_GATE,
            F.gate,
            {
                kinds.RUNTIME_PACKAGE: F.runtime,
                kinds.EVIDENCE_PACK: F.evidence,
                kinds.MONITORING_MANIFEST: F.monitoring,
                kinds.RISK_REGISTER: F.register,
            },
        ),
    ]


def stored(path: Path, data: bytes) -> TraceDataset:
    """Write ``data`` at ``path`` and return it as a trace blob under its (checked) id."""
    path.write_bytes(data)
    return TraceDataset(hashlib.sha256(data).hexdigest(), path.name, partial(io.FileIO, path))


def served(blob_id: str, data: bytes, opened: list[io.BytesIO] | None = None) -> TraceDataset:
    """Return trace blob ``blob_id`` as a source that serves ``data`` at every open (whatever
    the id says), appending each stream it opens to ``opened``."""

    def open_stream() -> io.BytesIO:
        stream = io.BytesIO(data)
        if opened is not None:
            opened.append(stream)
        return stream

    return TraceDataset(blob_id, "served.jsonl", open_stream)


@pytest.fixture
def trace(tmp_path: Path) -> TraceDataset:
    """The factory's trace rows as a JSONL file."""
    return stored(tmp_path / "traces.jsonl", cf.trace_bytes(F.rows))


@pytest.mark.parametrize("deep", [False, True])
def test_the_honest_chain_binds(trace: TraceDataset, deep: bool) -> None:
    for kind, child, parents in honest_cases(trace):
        assert bind(kind, child, deep=deep, **parents) == [], kind


def test_kinds_without_parents_have_no_bindings() -> None:
    assert bind(kinds.SECTOR_MAPPING, F.mapping) == []
    assert bind(kinds.TRACE_DATASET, object()) == []


def test_binding_codes_are_unique_and_prefixed() -> None:
    assert len(set(BINDING_CODES)) == len(BINDING_CODES)
    assert all(code.startswith("bind_") for code in BINDING_CODES)


def test_missing_or_mistyped_parents_are_caller_errors() -> None:
    with pytest.raises(ValueError, match="exactly one dataset_report"):
        check_bindings(kinds.TRAINING_MANIFEST, F.training, {})
    with pytest.raises(TypeError, match="CustomerDatasetValidationReport"):
        check_bindings(kinds.TRAINING_MANIFEST, F.training, {kinds.DATASET_REPORT: [F.mapping]})
    with pytest.raises(TypeError, match="CustomerTrainingManifest"):
        check_bindings(kinds.TRAINING_MANIFEST, F.mapping, {kinds.DATASET_REPORT: [F.report]})


# -- dataset report <- trace rows --------------------------------------------------------------


def write_rows(tmp_path: Path, rows: list[dict[str, Any]]) -> TraceDataset:
    """Write ``rows`` as JSONL and return the dataset handle."""
    return stored(tmp_path / "rows.jsonl", cf.trace_bytes(rows))


def canonical_trace(tmp_path: Path, rows: list[dict[str, Any]]) -> TraceDataset:
    """Write ``rows`` as the canonical trace blob and return it under its (checked) id."""
    data = json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str).encode()
    return stored(tmp_path / "canonical.json", data)


def never_opened() -> BlobStream:
    """A trace opener for checks that must not read a row."""
    raise AssertionError("the trace rows were read")


@pytest.mark.parametrize("deep", [False, True])
def test_dataset_hash_must_be_the_hash_of_the_rows(trace: TraceDataset, deep: bool) -> None:
    forged = replace(F.report, dataset_hash="a" * 64)
    assert bind(kinds.DATASET_REPORT, forged, deep=deep, trace_dataset=trace) == [
        "bind_dataset_hash"
    ]


def test_a_canonical_blob_binds_by_its_id_without_reading_a_row(tmp_path: Path) -> None:
    canonical = canonical_trace(tmp_path, F.rows)
    assert canonical.blob_id == F.report.dataset_hash
    other = replace(F.report, dataset_hash="b" * 64)
    assert bind(kinds.DATASET_REPORT, other, trace_dataset=canonical) == ["bind_dataset_hash"]
    # The default check of a matching id does not read the rows.
    unread = replace(canonical, open=never_opened)
    assert bind(kinds.DATASET_REPORT, F.report, trace_dataset=unread) == []


def test_a_jsonl_blob_has_its_rows_rehashed(trace: TraceDataset) -> None:
    assert trace.blob_id != F.report.dataset_hash
    assert bind(kinds.DATASET_REPORT, F.report, trace_dataset=trace) == []


def test_a_non_canonical_blob_named_by_its_own_hash_is_caught_only_deep(tmp_path: Path) -> None:
    data = json.dumps(F.rows, indent=1).encode()  # the rows, but not in canonical form
    trace = stored(tmp_path / "pretty.json", data)
    named = replace(F.report, dataset_hash=trace.blob_id)
    assert bind(kinds.DATASET_REPORT, named, trace_dataset=trace) == []
    assert bind(kinds.DATASET_REPORT, named, deep=True, trace_dataset=trace) == [
        "bind_dataset_hash"
    ]


def test_dataset_counts_are_recounted_only_deep(tmp_path: Path) -> None:
    canonical = canonical_trace(tmp_path, F.rows)
    forged = replace(F.report, row_count=4, high_risk_count=0)
    assert bind(kinds.DATASET_REPORT, forged, trace_dataset=canonical) == []
    findings = check_bindings(
        kinds.DATASET_REPORT, forged, {kinds.TRACE_DATASET: [canonical]}, deep=True
    )
    assert codes(findings) == ["bind_dataset_counts"]
    assert "row_count" in findings[0].message and "high_risk_count" in findings[0].message


def test_dropped_row_findings_are_found_deep(tmp_path: Path) -> None:
    rows = cf.trace_rows()
    rows[2]["trace_id"] = rows[0]["trace_id"]  # a duplicate trace id
    honest = validate_customer_trace_dataset(rows, cf.workspace())
    assert [f.code for f in honest.findings] == ["duplicate_trace_id"]
    data = write_rows(tmp_path, rows)
    assert bind(kinds.DATASET_REPORT, honest, deep=True, trace_dataset=data) == []
    forged = replace(honest, ready=True, findings=())
    assert bind(kinds.DATASET_REPORT, forged, trace_dataset=data) == []
    assert bind(kinds.DATASET_REPORT, forged, deep=True, trace_dataset=data) == [
        "bind_dataset_findings"
    ]


def test_workspace_and_profile_findings_are_not_compared(tmp_path: Path) -> None:
    rows = cf.trace_rows()
    narrow = replace(cf.workspace(), allowed_splits=("train", "eval", "test", "holdout"))
    honest = validate_customer_trace_dataset(rows, narrow, vertical_profile="regulated")
    assert {f.code for f in honest.findings} >= {"split_missing", "sector_metadata_missing"}
    data = write_rows(tmp_path, rows)
    assert bind(kinds.DATASET_REPORT, honest, deep=True, trace_dataset=data) == []


@pytest.mark.parametrize("deep", [False, True])
def test_unreadable_trace_rows(tmp_path: Path, deep: bool) -> None:
    bad = stored(tmp_path / "bad.jsonl", cf.trace_bytes(F.rows) + b"{not json\n")
    findings = bind(kinds.DATASET_REPORT, F.report, deep=deep, trace_dataset=bad)
    assert findings == ["bind_dataset_trace_unreadable"]


@pytest.mark.parametrize("deep", [False, True])
def test_rows_read_from_other_bytes_than_the_blob_never_bind(deep: bool) -> None:
    # The signed blob holds other rows; by the time its rows are read, the source serves
    # exactly the rows the report names (a file swapped in after the verifier hashed it).
    rows = [{**F.rows[0], "prompt": "not the report's rows"}, *F.rows[1:]]
    signed_id = hashlib.sha256(cf.trace_bytes(rows)).hexdigest()
    opened: list[io.BytesIO] = []
    signed = served(signed_id, cf.trace_bytes(F.rows), opened)
    findings = check_bindings(
        kinds.DATASET_REPORT, F.report, {kinds.TRACE_DATASET: [signed]}, deep=deep
    )
    assert codes(findings) == ["bind_dataset_trace_changed"]
    assert signed.blob_id in findings[0].message
    assert len(opened) == 1 and opened[0].closed
    # The same bytes under their own id bind: only the mismatch is refused.
    honest = served(hashlib.sha256(cf.trace_bytes(F.rows)).hexdigest(), cf.trace_bytes(F.rows))
    assert bind(kinds.DATASET_REPORT, F.report, deep=deep, trace_dataset=honest) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (cf.trace_bytes(F.rows), []),
        (cf.trace_bytes(F.rows) + b"{not json\n", ["bind_dataset_trace_unreadable"]),
    ],
    ids=["read-to-the-end", "unreadable"],
)
def test_each_read_of_the_rows_opens_one_new_stream_and_closes_it(
    data: bytes, expected: list[str]
) -> None:
    opened: list[io.BytesIO] = []
    trace = served(hashlib.sha256(data).hexdigest(), data, opened)
    assert bind(kinds.DATASET_REPORT, F.report, deep=True, trace_dataset=trace) == expected
    assert bind(kinds.DATASET_REPORT, F.report, deep=True, trace_dataset=trace) == expected
    assert len(opened) == 2 and all(stream.closed for stream in opened)


# -- one forgery per family ---------------------------------------------------------------------

Case = tuple[str, str, Callable[[], tuple[Any, dict[str, Any]]], list[str]]


def _gate_parents(**override: Any) -> dict[str, Any]:
    parents = {
        kinds.RUNTIME_PACKAGE: F.runtime,
        kinds.EVIDENCE_PACK: F.evidence,
        kinds.MONITORING_MANIFEST: F.monitoring,
        kinds.RISK_REGISTER: F.register,
    }
    parents.update(override)
    return parents


def _runtime_dropping_a_finding() -> tuple[Any, dict[str, Any]]:
    stale = cf.rehash(F.evidence, artefacts={**F.evidence.artefacts, "deployment_hash": "b" * 64})
    honest = build_customer_runtime_package(
        runtime_id="runtime-alpha",
        deployment_manifest=F.deployment,
        evidence_pack=stale,
        runtime_mode="offline_private",
    )
    assert [f["code"] for f in honest.findings] == ["evidence_deployment_hash_mismatch"]
    forged = cf.rehash(honest, ready=True, findings=())
    return forged, {kinds.DEPLOYMENT_MANIFEST: F.deployment, kinds.EVIDENCE_PACK: stale}


def _gate_dropping_a_blocker() -> tuple[Any, dict[str, Any]]:
    other_runtime = cf.rehash(
        F.monitoring, package_version={**F.monitoring.package_version, "runtime_hash": "c" * 64}
    )
    register = cf.rehash(F.register, monitoring_hash=other_runtime.monitoring_hash)
    honest = build_release_gate_manifest(
        release_id="release-alpha",
        enterprise_ready=True,
        enterprise_blocking_debt_ids=(),
        runtime_package=F.runtime,
        evidence_pack=F.evidence,
        monitoring_manifest=other_runtime,
        risk_register=register,
        generated_at=cf.GENERATED_AT,
    )
    assert [b["code"] for b in honest.blockers] == ["monitoring_runtime_hash_mismatch"]
    forged = cf.rehash(honest, ready=True, promotion_allowed=True, blockers=())
    parents = _gate_parents(
        **{kinds.MONITORING_MANIFEST: other_runtime, kinds.RISK_REGISTER: register}
    )
    return forged, parents


def _monitoring_of(runtime: Any) -> Any:
    return build_monitoring_manifest(
        monitoring_id="monitoring-alpha",
        runtime_package=runtime,
        metrics=cf.monitoring_metrics(),
        thresholds=cf.THRESHOLDS,
        observation_window="2026-05-01/2026-05-14",
        monitored_at="2026-05-15T00:00:00Z",
        review_queue_uri="s3://alpha/review",
        incident_queue_uri="s3://alpha/incidents",
    )


def _mixed_selection() -> tuple[Any, dict[str, Any]]:
    other = cf.rehash(F.benchmarks[1], customer_id="customer-beta")
    selection = select_customer_model(
        selection_id="sel-alpha",
        objective_profile="zero_silent_unsafe_pass",
        candidates=[F.benchmarks[0], other],
    )
    return selection, {kinds.BENCHMARK_RESULT: [F.benchmarks[0], other]}


CASES: list[Case] = [
    (
        "training identity",
        kinds.TRAINING_MANIFEST,
        lambda: (cf.rehash(F.training, tenant_id="other"), {kinds.DATASET_REPORT: F.report}),
        ["bind_training_identity"],
    ),
    (
        "training dataset hash",
        kinds.TRAINING_MANIFEST,
        lambda: (
            cf.rehash(F.training, dataset_hash="d" * 64),
            {kinds.DATASET_REPORT: F.report},
        ),
        ["bind_training_dataset_hash"],
    ),
    (
        "training dataset_ready flag",
        kinds.TRAINING_MANIFEST,
        lambda: (F.training, {kinds.DATASET_REPORT: not_ready(F.report)}),
        ["bind_training_verdict"],
    ),
    (
        "benchmark identity",
        kinds.BENCHMARK_RESULT,
        lambda: (
            cf.rehash(F.benchmarks[0], workspace_id="w"),
            {kinds.TRAINING_MANIFEST: F.training},
        ),
        ["bind_benchmark_identity"],
    ),
    (
        "benchmark training hash and readiness",
        kinds.BENCHMARK_RESULT,
        lambda: (F.benchmarks[0], {kinds.TRAINING_MANIFEST: not_ready(F.training)}),
        ["bind_benchmark_training_hash", "bind_benchmark_verdict"],
    ),
    (
        "selection candidate set",
        kinds.SELECTION_REPORT,
        lambda: (F.selection, {kinds.BENCHMARK_RESULT: [F.benchmarks[0]]}),
        ["bind_selection_candidate_set"],
    ),
    (
        "selection candidate content (identity is not in result_hash)",
        kinds.SELECTION_REPORT,
        lambda: (
            F.selection,
            {kinds.BENCHMARK_RESULT: [replace(F.benchmarks[0], customer_id="x"), F.benchmarks[1]]},
        ),
        ["bind_selection_candidate"],
    ),
    (
        "selection of two customers",
        kinds.SELECTION_REPORT,
        _mixed_selection,
        ["bind_selection_identity"],
    ),
    (
        "deployment selection hash and readiness",
        kinds.DEPLOYMENT_MANIFEST,
        lambda: (F.deployment, {kinds.SELECTION_REPORT: not_ready(F.selection)}),
        ["bind_deployment_selection_hash", "bind_deployment_verdict"],
    ),
    (
        "deployment selected model",
        kinds.DEPLOYMENT_MANIFEST,
        lambda: (
            cf.rehash(F.deployment, selected_model_artifact_uri="gs://elsewhere"),
            {kinds.SELECTION_REPORT: F.selection},
        ),
        ["bind_deployment_selected_model"],
    ),
    (
        "deployment identity",
        kinds.DEPLOYMENT_MANIFEST,
        lambda: (
            cf.rehash(F.deployment, customer_id="customer-beta"),
            {kinds.SELECTION_REPORT: F.selection},
        ),
        ["bind_deployment_identity"],
    ),
    (
        "evidence identity",
        kinds.EVIDENCE_PACK,
        lambda: (
            cf.rehash(F.evidence, environment="staging"),
            {kinds.DEPLOYMENT_MANIFEST: F.deployment, kinds.SECTOR_MAPPING: F.mapping},
        ),
        ["bind_evidence_identity"],
    ),
    (
        "evidence artefacts",
        kinds.EVIDENCE_PACK,
        lambda: (
            cf.rehash(F.evidence, artefacts={**F.evidence.artefacts, "audit_log_uri": "s3://x"}),
            {kinds.DEPLOYMENT_MANIFEST: F.deployment, kinds.SECTOR_MAPPING: F.mapping},
        ),
        ["bind_evidence_artefacts"],
    ),
    (
        "evidence control evidence",
        kinds.EVIDENCE_PACK,
        lambda: (
            cf.rehash(F.evidence, control_evidence={"audit_logging": ("decision_log",)}),
            {kinds.DEPLOYMENT_MANIFEST: F.deployment, kinds.SECTOR_MAPPING: F.mapping},
        ),
        ["bind_evidence_mapping"],
    ),
    (
        "evidence mapping hash and URI finding",
        kinds.EVIDENCE_PACK,
        lambda: (
            F.evidence,
            {
                kinds.DEPLOYMENT_MANIFEST: F.deployment,
                kinds.SECTOR_MAPPING: cf.rehash(F.mapping, evidence_pack_uri="s3://other"),
            },
        ),
        ["bind_evidence_mapping", "bind_evidence_verdict"],
    ),
    (
        "runtime identity",
        kinds.RUNTIME_PACKAGE,
        lambda: (
            cf.rehash(F.runtime, deployment_id="dep-other"),
            {kinds.DEPLOYMENT_MANIFEST: F.deployment, kinds.EVIDENCE_PACK: F.evidence},
        ),
        ["bind_runtime_identity"],
    ),
    (
        "runtime evidence hash",
        kinds.RUNTIME_PACKAGE,
        lambda: (
            cf.rehash(F.runtime, evidence_hash="e" * 64),
            {kinds.DEPLOYMENT_MANIFEST: F.deployment, kinds.EVIDENCE_PACK: F.evidence},
        ),
        ["bind_runtime_evidence_hash"],
    ),
    (
        "runtime config",
        kinds.RUNTIME_PACKAGE,
        lambda: (
            cf.rehash(F.runtime, runtime_config={**F.runtime.runtime_config, "threshold": 0.1}),
            {kinds.DEPLOYMENT_MANIFEST: F.deployment, kinds.EVIDENCE_PACK: F.evidence},
        ),
        ["bind_runtime_config"],
    ),
    (
        "runtime dropped finding",
        kinds.RUNTIME_PACKAGE,
        _runtime_dropping_a_finding,
        ["bind_runtime_verdict"],
    ),
    (
        "monitoring identity",
        kinds.MONITORING_MANIFEST,
        lambda: (
            cf.rehash(F.monitoring, runtime_id="runtime-other"),
            {kinds.RUNTIME_PACKAGE: F.runtime},
        ),
        ["bind_monitoring_identity"],
    ),
    (
        "monitoring evidence hash",
        kinds.MONITORING_MANIFEST,
        lambda: (
            cf.rehash(F.monitoring, evidence_hash="e" * 64),
            {kinds.RUNTIME_PACKAGE: F.runtime},
        ),
        ["bind_monitoring_evidence_hash"],
    ),
    (
        "monitoring of another runtime build",
        kinds.MONITORING_MANIFEST,
        lambda: (
            F.monitoring,
            {kinds.RUNTIME_PACKAGE: cf.rehash(F.runtime, runtime_mode="on_prem")},
        ),
        ["bind_monitoring_package_version"],
    ),
    (
        "monitoring decision log",
        kinds.MONITORING_MANIFEST,
        lambda: (
            cf.rehash(F.monitoring, decision_log_uri="s3://elsewhere"),
            {kinds.RUNTIME_PACKAGE: F.runtime},
        ),
        ["bind_monitoring_decision_log"],
    ),
    (
        "monitoring readiness",
        kinds.MONITORING_MANIFEST,
        lambda: (_monitoring_of(F.runtime), {kinds.RUNTIME_PACKAGE: not_ready(F.runtime)}),
        ["bind_monitoring_package_version", "bind_monitoring_verdict"],
    ),
    (
        "risk identity",
        kinds.RISK_REGISTER,
        lambda: (
            cf.rehash(F.register, customer_id="customer-beta"),
            {kinds.EVIDENCE_PACK: F.evidence, kinds.MONITORING_MANIFEST: F.monitoring},
        ),
        ["bind_risk_identity"],
    ),
    (
        "risk evidence hash",
        kinds.RISK_REGISTER,
        lambda: (
            cf.rehash(F.register, evidence_hash="e" * 64),
            {kinds.EVIDENCE_PACK: F.evidence, kinds.MONITORING_MANIFEST: F.monitoring},
        ),
        ["bind_risk_evidence_hash"],
    ),
    (
        "risk monitoring hash",
        kinds.RISK_REGISTER,
        lambda: (
            F.register,
            {
                kinds.EVIDENCE_PACK: F.evidence,
                kinds.MONITORING_MANIFEST: cf.rehash(F.monitoring, monitored_at="2026-05-16"),
            },
        ),
        ["bind_risk_monitoring_hash"],
    ),
    (
        "risk readiness",
        kinds.RISK_REGISTER,
        lambda: (
            cf.rehash(F.register, evidence_hash=not_ready(F.evidence).evidence_hash),
            {kinds.EVIDENCE_PACK: not_ready(F.evidence), kinds.MONITORING_MANIFEST: F.monitoring},
        ),
        ["bind_risk_verdict"],
    ),
    (
        "gate identity",
        kinds.RELEASE_GATE,
        lambda: (cf.rehash(F.gate, tenant_id="other"), _gate_parents()),
        ["bind_gate_identity"],
    ),
    (
        "gate artifact hashes",
        kinds.RELEASE_GATE,
        lambda: (
            cf.rehash(F.gate, artifact_hashes={**F.gate.artifact_hashes, "extra": "0" * 64}),
            _gate_parents(),
        ),
        ["bind_gate_artifact_hashes"],
    ),
    ("gate dropped blocker", kinds.RELEASE_GATE, _gate_dropping_a_blocker, ["bind_gate_verdict"]),
]


@pytest.mark.parametrize(("name", "kind", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_binding_family(
    name: str, kind: str, make: Callable[[], tuple[Any, dict[str, Any]]], expected: list[str]
) -> None:
    child, parents = make()
    child.verify_hash()  # every forgery carries a correct self-hash: only bindings can tell
    assert bind(kind, child, **parents) == expected


def test_every_non_dataset_family_is_exercised() -> None:
    exercised = {code for *_, expected in CASES for code in expected}
    exercised |= {
        "bind_dataset_hash",
        "bind_dataset_counts",
        "bind_dataset_findings",
        "bind_dataset_trace_unreadable",
        "bind_dataset_trace_changed",
        "bind_promotion_release",
    }
    assert exercised == set(BINDING_CODES)


def promotion(**changes: Any) -> PromotionRecord:
    """A promotion record of the factory's gate."""
    fields: dict[str, Any] = {
        "schema": PROMOTION_SCHEMA,
        "release_gate_blob_id": "1" * 64,
        "release_id": F.gate.release_id,
        "release_hash": F.gate.release_hash,
        "customer_id": F.gate.customer_id,
        "workspace_id": F.gate.workspace_id,
        "tenant_id": F.gate.tenant_id,
        "deployment_id": F.gate.deployment_id,
        "promoted_at": cf.TIME,
        "policy_version": 1,
        "checkpoint_size": 14,
    }
    fields.update(changes)
    return PromotionRecord(**fields)


def test_promotion_binds_to_the_gate() -> None:
    assert bind(kinds.PROMOTION, promotion(), release_gate=F.gate) == []
    for change in ({"release_id": "other"}, {"release_hash": "2" * 64}, {"tenant_id": "t"}):
        assert bind(kinds.PROMOTION, promotion(**change), release_gate=F.gate) == [
            "bind_promotion_release"
        ]


# -- properties ---------------------------------------------------------------------------------

CONFIG_KEYS = sorted(F.runtime.runtime_config)
JSON_VALUES = st.one_of(
    st.text(max_size=8), st.integers(), st.booleans(), st.floats(allow_nan=False), st.none()
)


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(CONFIG_KEYS), value=JSON_VALUES)
def test_any_changed_runtime_config_entry_is_found(key: str, value: Any) -> None:
    original = F.runtime.runtime_config[key]
    if json.dumps(value) == json.dumps(original):
        return
    forged = cf.rehash(F.runtime, runtime_config={**F.runtime.runtime_config, key: value})
    parents: dict[str, Any] = {
        kinds.DEPLOYMENT_MANIFEST: F.deployment,
        kinds.EVIDENCE_PACK: F.evidence,
    }
    assert "bind_runtime_config" in bind(kinds.RUNTIME_PACKAGE, forged, **parents)


@settings(max_examples=40, deadline=None)
@given(
    key=st.sampled_from(sorted(F.gate.artifact_hashes)),
    value=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
def test_any_changed_artifact_hash_is_found(key: str, value: str) -> None:
    if F.gate.artifact_hashes[key] == value:
        return
    forged = cf.rehash(F.gate, artifact_hashes={**F.gate.artifact_hashes, key: value})
    assert bind(kinds.RELEASE_GATE, forged, **_gate_parents()) == ["bind_gate_artifact_hashes"]


def test_int_and_float_are_different_json() -> None:
    # 30 == 30.0 in Python, but not once serialised and hashed.
    config = {**F.runtime.runtime_config, "retention_days": 30.0}
    forged = cf.rehash(F.runtime, runtime_config=config)
    parents: dict[str, Any] = {
        kinds.DEPLOYMENT_MANIFEST: F.deployment,
        kinds.EVIDENCE_PACK: F.evidence,
    }
    assert bind(kinds.RUNTIME_PACKAGE, forged, **parents) == ["bind_runtime_config"]


def test_every_binding_code_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "chain.md").read_text()
    assert [code for code in BINDING_CODES if f"| `{code}` |" not in doc] == []


# -- the selection binding is one linear pass with the original's exact findings --------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(JSON, JSON)
def test_same_is_equality_of_canonical_json_text(first: Any, second: Any) -> None:
    for left, right in ((first, second), (first, first), (str(first), str(first))):
        expected = bindings._canonical(left) == bindings._canonical(right)
        assert bindings._same(left, right) is expected


def reference_selection_findings(selection: Any, results: list[Any]) -> list[tuple[str, str]]:
    """The selection binding as first written (every hash and text recomputed per use)."""
    canonical = bindings._canonical
    by_hash = {result.recompute_hash(): result for result in results}
    wanted = Counter(result.recompute_hash() for result in results)
    held = Counter(candidate.recompute_hash() for candidate in selection.candidates)
    found = []
    if held != wanted:
        found.append(
            (
                "bind_selection_candidate_set",
                f"{sum((held - wanted).values())} candidate(s) are not signed parents; "
                f"{sum((wanted - held).values())} signed parent(s) are not candidates",
            )
        )
    for index, candidate in enumerate(selection.candidates):
        parent = by_hash.get(candidate.recompute_hash())
        if parent is not None and canonical(parent.to_dict()) != canonical(candidate.to_dict()):
            diff = [
                key
                for key, value in candidate.to_dict().items()
                if canonical(value) != canonical(parent.to_dict().get(key))
            ]
            found.append(
                (
                    "bind_selection_candidate",
                    f"candidates[{index}] differs from its signed benchmark result in "
                    f"{', '.join(diff)}",
                )
            )
    identities = {(c.customer_id, c.workspace_id, c.tenant_id) for c in selection.candidates}
    if len(identities) > 1:
        found.append(
            (
                "bind_selection_identity",
                f"candidates span {len(identities)} customer/workspace/tenant identities",
            )
        )
    return found


# Benchmark results that share a result_hash but not their identity (outside the hash).
POOL = (*F.benchmarks, *(replace(b, customer_id="customer-beta") for b in F.benchmarks))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(POOL))), max_size=6),
    st.lists(st.sampled_from(range(len(POOL))), max_size=6),
)
def test_selection_findings_are_the_reference_algorithms(
    candidate_picks: list[int], parent_picks: list[int]
) -> None:
    selection = replace(F.selection, candidates=tuple(POOL[n] for n in candidate_picks))
    results = [POOL[n] for n in parent_picks]
    found = check_bindings(kinds.SELECTION_REPORT, selection, {kinds.BENCHMARK_RESULT: results})
    assert [(f.code, f.message) for f in found] == reference_selection_findings(selection, results)
