"""Tests for dataset_contract: the trace rules (reference section 2), our new codes, the report."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory import dataset_contract
from customer_model_factory._jsonfile import manifest_bytes
from customer_model_factory.dataset_contract import (
    ALLOWED_DECISIONS,
    ALLOWED_SEVERITIES,
    HIGH_RISK_SEVERITIES,
    REQUIRED_FIELDS,
    REQUIRED_STRING_FIELDS,
    SCHEMA_VERSION,
    CanonicalRows,
    CustomerDatasetValidationReport,
    CustomerTraceFinding,
    CustomerWorkspace,
    RowsSummary,
    _DatasetValidator,
    _plainly_valid,
    _stripped,
    summarize_rows,
    validate_customer_trace_dataset,
    validate_trace_rows,
)
from factory_fixtures import (
    CUSTOMER_ID,
    SECTOR_PROFILE,
    TENANT_ID,
    dataset_report,
    sector_metadata,
    tampered,
    trace_row,
    trace_rows,
    workspace,
)


def _validate(
    rows: list[dict[str, Any]], profile: str | None = SECTOR_PROFILE, **workspace_overrides: Any
) -> CustomerDatasetValidationReport:
    return validate_customer_trace_dataset(
        rows, workspace(**workspace_overrides), vertical_profile=profile
    )


def _codes(report: CustomerDatasetValidationReport) -> list[str]:
    return [finding.code for finding in report.findings]


def _with_splits(*rows: dict[str, Any]) -> list[dict[str, Any]]:
    """``rows`` plus one valid row for each standard split, so split_missing stays quiet."""
    return [
        *rows,
        *(trace_row(f"filler-{split}", split=split) for split in ("train", "eval", "test")),
    ]


def _canonical_hash(rows: Any) -> str:
    """The documented dataset_hash recipe, written out by hand."""
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- constants and the valid dataset --------------------------------------------------------


def test_constants_match_the_reference() -> None:
    assert SCHEMA_VERSION == "1.0.0"
    assert len(REQUIRED_FIELDS) == 13
    assert {"source_refs", "policy_refs"} == REQUIRED_FIELDS - REQUIRED_STRING_FIELDS
    assert {"approve", "block", "abstain", "escalate"} == ALLOWED_DECISIONS
    assert {"low", "medium", "high", "critical"} == ALLOWED_SEVERITIES
    assert {"high", "critical"} == HIGH_RISK_SEVERITIES


def test_valid_three_row_dataset_is_ready() -> None:
    rows = trace_rows()
    report = _validate(rows)
    assert report.ready is True
    assert report.findings == ()
    assert report.row_count == 3
    assert report.split_counts == {"eval": 1, "test": 1, "train": 1}
    assert report.severity_counts == {"critical": 1, "high": 1, "medium": 1}
    assert report.high_risk_count == 2
    assert (report.customer_id, report.workspace_id, report.tenant_id) == (
        CUSTOMER_ID,
        "ws-guardrails",
        TENANT_ID,
    )
    assert report.schema_version == SCHEMA_VERSION


def test_dataset_hash_golden_value_from_the_documented_recipe() -> None:
    rows = trace_rows()
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str)
    assert _validate(rows).dataset_hash == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_dataset_hash_of_no_rows_is_the_hash_of_an_empty_list() -> None:
    report = _validate([])
    assert report.dataset_hash == hashlib.sha256(b"[]").hexdigest()
    assert _codes(report) == ["split_missing"] * 3


def test_dataset_hash_covers_order_and_every_key_and_uses_default_str() -> None:
    rows = trace_rows()
    rows[0]["extra"] = Path("/a/b")  # not JSON: hashed through str(), like the reference
    assert _validate(rows).dataset_hash == _canonical_hash(rows)
    assert _validate(rows).dataset_hash != _validate(rows[::-1]).dataset_hash


# --- reference rules, one exact code list each ----------------------------------------------


def test_missing_required_field() -> None:
    row = trace_row("t1")
    del row["source_refs"]
    report = _validate(_with_splits(row))
    assert _codes(report) == ["missing_required_field"]
    assert report.findings[0].field == "source_refs"
    assert report.findings[0].trace_id == "t1"
    assert report.findings[0].message == "required field 'source_refs' is missing"
    assert report.ready is False


def test_missing_fields_are_reported_alphabetically_and_none_counts_as_present() -> None:
    row = trace_row("t1", label=None)
    for key in ("tenant_id", "observed_at", "label"):
        del row[key]
    row["reviewer_role"] = None
    report = _validate(_with_splits(row))
    assert [(f.code, f.field) for f in report.findings] == [
        ("missing_required_field", "label"),
        ("missing_required_field", "observed_at"),
        ("missing_required_field", "tenant_id"),
        ("blank_required_field", "reviewer_role"),
        ("tenant_id_mismatch", "tenant_id"),
    ]


def test_blank_split_and_severity_are_blank_fields_and_are_not_counted() -> None:
    report = _validate(_with_splits(trace_row("t1", split=" ", severity="")))
    assert [(f.code, f.field) for f in report.findings] == [
        ("blank_required_field", "severity"),
        ("blank_required_field", "split"),
    ]
    assert report.findings[0].message == "required field 'severity' must be a non-empty string"
    assert report.severity_counts == {"medium": 3}
    assert sum(report.split_counts.values()) == 3


def test_non_string_required_values_are_blank() -> None:
    report = _validate(_with_splits(trace_row("t1", prompt=5, observed_at=["2025"])))
    assert [(f.code, f.field) for f in report.findings] == [
        ("blank_required_field", "observed_at"),
        ("blank_required_field", "prompt"),
    ]


def test_customer_and_tenant_mismatch() -> None:
    rows = _with_splits(
        trace_row("t1", customer_id="someone-else"),
        trace_row("t2", tenant_id=TENANT_ID.upper()),
    )
    report = _validate(rows)
    assert _codes(report) == ["customer_id_mismatch", "tenant_id_mismatch"]
    assert [f.trace_id for f in report.findings] == ["t1", "t2"]


def test_duplicate_trace_id_is_flagged_per_later_occurrence() -> None:
    rows = _with_splits(*(trace_row("t1", prompt=f"question {n}") for n in range(3)))
    report = _validate(rows)
    assert _codes(report) == ["duplicate_trace_id", "duplicate_trace_id"]
    assert {f.trace_id for f in report.findings} == {"t1"}


def test_fallback_label_row_n_can_collide_with_a_real_trace_id() -> None:
    rows = _with_splits(trace_row("row:1"), trace_row(""))
    report = _validate(rows)
    assert [(f.code, f.trace_id) for f in report.findings] == [
        ("blank_required_field", "row:1"),
        ("duplicate_trace_id", "row:1"),
    ]


def test_holdout_urgent_ship_and_bad_reference_lists() -> None:
    row = trace_row("t1", split="holdout", severity="urgent", expected_decision="ship")
    row.update(source_refs=[], policy_refs=[" "])
    report = _validate(_with_splits(row))
    assert _codes(report) == [
        "decision_not_allowed",
        "invalid_reference_list",
        "invalid_reference_list",
        "split_not_allowed",
        "severity_not_allowed",
    ]
    assert [f.field for f in report.findings] == [
        "expected_decision",
        "source_refs",
        "policy_refs",
        "split",
        "severity",
    ]
    assert report.findings[0].message == "expected_decision 'ship' is not allowed"
    # Disallowed values are still counted.
    assert report.split_counts["holdout"] == 1
    assert report.severity_counts["urgent"] == 1


def test_split_severity_and_decision_are_compared_stripped() -> None:
    row = trace_row("t1", split=" eval ", severity=" critical", expected_decision="escalate ")
    row["metadata"] = sector_metadata(requires_escalation=False)
    report = _validate(_with_splits(row))
    assert report.findings == ()
    assert report.split_counts["eval"] == 2
    assert report.high_risk_count == 1


def test_high_risk_approve_is_a_warning_and_ready_stays_true() -> None:
    report = _validate(_with_splits(trace_row("t1", severity="critical")))
    assert _codes(report) == ["high_risk_approve_label"]
    assert report.findings[0].severity == "warning"
    assert report.findings[0].field == "expected_decision"
    assert report.ready is True


def test_unredacted_secret() -> None:
    row = trace_row("t1", contains_secret=True, redaction_status="not_required")
    report = _validate(_with_splits(row))
    assert _codes(report) == ["unredacted_secret"]
    assert report.findings[0].field == "redaction_status"
    redacted = trace_row("t1", contains_secret=True, redaction_status="redacted")
    assert _validate(_with_splits(redacted)).findings == ()


def test_partial_metadata_on_a_single_eval_row() -> None:
    row = trace_row("t1", split="eval", metadata={"sector_class": "retail", "jurisdiction": ""})
    report = _validate([row])
    assert _codes(report) == ["sector_metadata_missing"] * 3 + ["split_missing"] * 2
    assert [f.field for f in report.findings[:3]] == [
        "metadata.jurisdiction",
        "metadata.knowledge_class",
        "metadata.requires_citation",
    ]
    assert report.findings[0].message == "sector profile requires metadata.jurisdiction"
    assert [f.message for f in report.findings[3:]] == [
        "required split 'train' has no rows",
        "required split 'test' has no rows",
    ]
    assert {f.trace_id for f in report.findings[3:]} == {""}


def test_metadata_that_is_not_an_object_misses_all_four_keys() -> None:
    report = _validate(_with_splits(trace_row("t1", metadata="not-a-dict")))
    assert [f.field for f in report.findings] == [
        "metadata.jurisdiction",
        "metadata.knowledge_class",
        "metadata.requires_citation",
        "metadata.sector_class",
    ]


def test_whitespace_metadata_passes_the_profile_filter_and_fails_the_extension() -> None:
    row = trace_row("t1", metadata=sector_metadata(sector_class="  "))
    report = _validate(_with_splits(row))
    assert _codes(report) == ["sector_metadata_missing"]
    assert report.findings[0].message == "sector extension requires metadata.sector_class"


def test_sector_controls_run_through_the_dataset_path() -> None:
    metadata = sector_metadata(requires_numeric_evidence=True, numeric_evidence_refs=[])
    report = _validate(_with_splits(trace_row("t-numeric", metadata=metadata)))
    assert [(f.code, f.trace_id) for f in report.findings] == [
        ("sector_numeric_evidence_missing", "t-numeric")
    ]


def test_sector_checks_need_a_truthy_profile() -> None:
    rows = _with_splits(trace_row("t1", metadata=None))
    assert _validate(rows, profile=None).findings == ()
    assert _validate(rows, profile="").findings == ()
    assert len(_validate(rows, profile="anything").findings) == 4


def test_split_missing_follows_workspace_order_and_cross_split_pairs_are_sorted() -> None:
    same = {"prompt": "Same question", "response": "Same answer"}
    rows = [
        trace_row("a", split="test", **same),
        trace_row("b", split="train", prompt=" same QUESTION ", response="same answer"),
        trace_row("c", split="eval", **same),
    ]
    report = _validate(rows, allowed_splits=("train", "holdout", "eval", "test", "audit"))
    assert _codes(report) == ["split_missing", "split_missing"] + ["cross_split_duplicate"] * 3
    assert [f.message for f in report.findings] == [
        "required split 'holdout' has no rows",
        "required split 'audit' has no rows",
        "exact prompt/response duplicate across eval and test",
        "exact prompt/response duplicate across eval and train",
        "exact prompt/response duplicate across test and train",
    ]
    assert {(f.field, f.trace_id, f.severity) for f in report.findings} == {("split", "", "error")}


def test_cross_split_duplicate_between_train_and_eval() -> None:
    rows = trace_rows()
    rows[1].update(prompt=rows[0]["prompt"], response=rows[0]["response"])
    assert _codes(_validate(rows)) == ["cross_split_duplicate"]


# --- new codes --------------------------------------------------------------------------------


def test_flag_not_boolean_closes_the_string_true_bypass() -> None:
    row = trace_row("t1", contains_pii="true", contains_secret="true")
    report = _validate(_with_splits(row))
    # The reference's rule keeps its meaning (a string does not trigger unredacted_secret);
    # the new code flags the string itself.
    assert [(f.code, f.field) for f in report.findings] == [
        ("flag_not_boolean", "contains_pii"),
        ("flag_not_boolean", "contains_secret"),
    ]
    assert report.findings[0].message == "contains_pii must be true or false, got str 'true'"
    assert report.ready is False


@pytest.mark.parametrize("value", [None, True, False])
def test_boolean_and_null_flags_are_accepted(value: Any) -> None:
    row = trace_row("t1", contains_pii=value, contains_secret=value, redaction_status="redacted")
    assert _validate(_with_splits(row)).findings == ()


@pytest.mark.parametrize("value", [0, 1, "false", [], {}])
def test_non_boolean_flag_values(value: Any) -> None:
    report = _validate(_with_splits(trace_row("t1", contains_secret=value)))
    assert _codes(report) == ["flag_not_boolean"]


def test_unredacted_pii() -> None:
    row = trace_row("t1", contains_pii=True, redaction_status="pending")
    report = _validate(_with_splits(row))
    assert _codes(report) == ["unredacted_pii"]
    assert report.findings[0].field == "redaction_status"
    missing_status = trace_row("t2", contains_pii=True)
    del missing_status["redaction_status"]
    assert _codes(_validate(_with_splits(missing_status))) == ["unredacted_pii"]


def test_within_split_duplicate_names_both_trace_ids_and_is_a_warning() -> None:
    rows = _with_splits(
        trace_row("first", prompt="P", response="R"),
        trace_row("second", prompt=" p ", response="r"),
    )
    report = _validate(rows)
    assert _codes(report) == ["within_split_duplicate"]
    finding = report.findings[0]
    assert (finding.severity, finding.field, finding.trace_id) == ("warning", "split", "second")
    assert "'first'" in finding.message and "'second'" in finding.message
    assert report.ready is True


def test_within_split_duplicate_of_the_very_same_row_object() -> None:
    row = trace_row("t1")
    report = _validate(_with_splits(row, row))
    assert _codes(report) == ["duplicate_trace_id", "within_split_duplicate"]


def test_new_codes_come_after_the_reference_rules_of_the_same_row() -> None:
    first = trace_row("t1", prompt="P", response="R")
    row = trace_row(
        "t1",
        prompt="P",
        response="R",
        split="train",
        severity="urgent",
        contains_pii=True,
        contains_secret=True,
        redaction_status="pending",
        customer_id="other",
    )
    row["metadata"] = "x"
    del row["label"]
    report = _validate(_with_splits(first, row))
    assert _codes(report) == [
        "missing_required_field",
        "customer_id_mismatch",
        "duplicate_trace_id",
        "unredacted_secret",
        "sector_metadata_missing",
        "sector_metadata_missing",
        "sector_metadata_missing",
        "sector_metadata_missing",
        "severity_not_allowed",
        "unredacted_pii",
        "within_split_duplicate",
    ]


# --- inputs that are not rows -------------------------------------------------------------------


def test_a_row_that_is_not_a_dict_raises_naming_its_index() -> None:
    with pytest.raises(ValueError, match=r"^row 1: expected an object \(dict\), got list"):
        _validate([trace_row("t1"), ["not", "a", "row"]])  # type: ignore[list-item]


def test_allowed_splits_must_be_a_tuple_of_strings() -> None:
    with pytest.raises(TypeError, match=r"workspace.allowed_splits: expected a tuple of strings"):
        _validate(trace_rows(), allowed_splits="train")
    with pytest.raises(TypeError, match=r"workspace.allowed_splits: expected strings, got int"):
        _validate(trace_rows(), allowed_splits=("train", 3))


def test_lone_surrogates_are_fingerprinted_instead_of_crashing() -> None:
    rows = _with_splits(trace_row("t1", prompt="\ud800 lone", response="x"))
    rows.append(trace_row("t2", split="eval", prompt="\ud800 LONE", response="X"))
    assert _codes(_validate(rows)) == ["cross_split_duplicate"]


def test_streaming_entry_point_accepts_any_iterable() -> None:
    rows = trace_rows()

    def generate() -> Iterator[dict[str, Any]]:
        yield from rows

    assert validate_trace_rows(generate(), workspace(), vertical_profile=SECTOR_PROFILE) == (
        _validate(rows)
    )


# --- report, workspace and finding serialisation ---------------------------------------------


def test_report_to_dict_shape() -> None:
    report = _validate([trace_row("t1", severity="critical", split="eval")])
    payload = report.to_dict()
    assert list(payload) == [f.name for f in dataclasses.fields(CustomerDatasetValidationReport)]
    assert payload["findings"][0] == {
        "code": "high_risk_approve_label",
        "severity": "warning",
        "message": "high-risk rows approved by label need reviewer justification",
        "trace_id": "t1",
        "field": "expected_decision",
    }
    assert payload["findings"][-1]["trace_id"] == ""


def test_report_from_dict_round_trip_and_verified() -> None:
    report = _validate(_with_splits(trace_row("t1", severity="urgent")))
    assert CustomerDatasetValidationReport.from_dict(report.to_dict()) == report
    trip = json.loads(json.dumps(report.to_dict()))
    assert CustomerDatasetValidationReport.from_dict_verified(trip) == report


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.pop("row_count"), "^row_count: required field is missing"),
        (lambda p: p.update(extra=1), "^extra: unknown field"),
        (lambda p: p.update(ready="false"), "^ready: expected true or false, got str"),
        (lambda p: p.update(row_count="3"), "^row_count: expected an integer, got str"),
        (lambda p: p.update(row_count=True), "^row_count: expected an integer, got bool"),
        (lambda p: p.update(split_counts={"a": 1.0}), "^split_counts.a: expected an integer"),
        (lambda p: p.update(findings={}), "^findings: expected a list of objects"),
        (lambda p: p.update(findings=[1]), r"^findings\[0\]: expected an object"),
        (lambda p: p["findings"][0].pop("field"), r"^findings\[0\]\.field: required field"),
        (lambda p: p["findings"][0].update(x="y"), r"^findings\[0\]\.x: unknown field"),
        (lambda p: p.update(dataset_hash=None), "^dataset_hash: expected a string, got null"),
    ],
)
def test_report_from_dict_is_strict(edit: Any, message: str) -> None:
    payload = _validate(_with_splits(trace_row("t1", severity="urgent"))).to_dict()
    edit(payload)
    with pytest.raises(ValueError, match=message):
        CustomerDatasetValidationReport.from_dict(payload)


def test_report_verify_checks_readiness_and_hash_shape() -> None:
    ready = dataset_report()
    ready.verify_hash()
    with pytest.raises(ValueError, match=r"\.ready: stored False contradicts"):
        dataclasses.replace(ready, ready=False).verify_hash()
    error = CustomerTraceFinding(code="x", severity="error", message="m")
    with pytest.raises(ValueError, match=r"\.ready: stored True contradicts"):
        dataclasses.replace(ready, findings=(error,)).verify_hash()
    warning = dataclasses.replace(error, severity="warning")
    dataclasses.replace(ready, findings=(warning,)).verify_hash()
    for bad in ("", "A" * 64, "a" * 63, ready.dataset_hash + "0", "g" * 64):
        with pytest.raises(ValueError, match=r"\.dataset_hash: .* is not 64 lowercase hex"):
            dataclasses.replace(ready, dataset_hash=bad).verify_hash()
    with pytest.raises(ValueError, match=r"\.high_risk_count: stored 3 but severity_counts give 2"):
        dataclasses.replace(ready, high_risk_count=3).verify_hash()
    with pytest.raises(ValueError, match=r"\.schema_version: '0\.9\.0' is not '1\.0\.0'"):
        dataclasses.replace(ready, schema_version="0.9.0").verify_hash()


@pytest.mark.parametrize(
    "name", ["schema_version", "ready", "high_risk_count", "dataset_hash", "findings"]
)
def test_report_verify_fails_after_a_checkable_field_is_tampered_with(name: str) -> None:
    report = _validate(_with_splits(trace_row("t1", severity="urgent")))
    report.verify_hash()
    with pytest.raises(ValueError):
        dataclasses.replace(report, **{name: tampered(getattr(report, name))}).verify_hash()


def test_report_from_dict_verified_refuses_a_ready_flag_edited_by_hand() -> None:
    payload = _validate([]).to_dict()
    payload["ready"] = True
    CustomerDatasetValidationReport.from_dict(payload)
    with pytest.raises(ValueError, match=r"contradicts the findings"):
        CustomerDatasetValidationReport.from_dict_verified(payload)


def test_report_write_json_is_canonical_and_byte_identical(tmp_path: Path) -> None:
    report = dataset_report()
    first = report.write_json(tmp_path / "a" / "report.json")
    second = dataset_report().write_json(tmp_path / "report.json")
    assert first.read_bytes() == second.read_bytes() == manifest_bytes(report.to_dict())
    loaded = json.loads(first.read_text(encoding="utf-8"))
    assert CustomerDatasetValidationReport.from_dict_verified(loaded) == report


def test_workspace_round_trip_and_strictness() -> None:
    original = workspace()
    assert CustomerWorkspace.from_dict(original.to_dict()) == original
    payload = original.to_dict()
    payload["allowed_splits"] = "train"
    with pytest.raises(ValueError, match=r"^allowed_splits: expected a list of strings, got str"):
        CustomerWorkspace.from_dict(payload)
    payload = original.to_dict()
    del payload["regulation_mappings"]
    with pytest.raises(ValueError, match=r"^regulation_mappings: required field is missing"):
        CustomerWorkspace.from_dict(payload)
    with pytest.raises(ValueError, match=r"^tenant: unknown field"):
        CustomerWorkspace.from_dict({**original.to_dict(), "tenant": "x"})


def test_finding_round_trip_and_strictness() -> None:
    finding = CustomerTraceFinding(code="c", severity="error", message="m", field="f")
    assert CustomerTraceFinding.from_dict(finding.to_dict()) == finding
    with pytest.raises(ValueError, match=r"^trace_id: expected a string, got null"):
        CustomerTraceFinding.from_dict({**finding.to_dict(), "trace_id": None})


# --- an oracle: the reference rules written out naively from the spec ------------------------


def _oracle(
    rows: list[dict[str, Any]], ws: CustomerWorkspace, profile: str | None
) -> list[tuple[str, str, str, str]]:
    """(code, severity, trace_id, field) per finding, straight from the spec's tables."""
    out: list[tuple[str, str, str, str]] = []
    labels: set[str] = set()
    counts: dict[str, int] = {}
    prints: dict[str, list[str]] = {}

    def string(value: Any) -> str:
        return value if isinstance(value, str) else ""

    def string_list(value: Any) -> bool:
        return (
            isinstance(value, list)
            and len(value) > 0
            and all(isinstance(i, str) and i.strip() != "" for i in value)
        )

    for index, row in enumerate(rows):
        tid = row.get("trace_id")
        label = tid if isinstance(tid, str) and tid != "" else f"row:{index}"
        found: list[tuple[str, str, str]] = []
        found += [
            ("missing_required_field", "error", k) for k in sorted(REQUIRED_FIELDS) if k not in row
        ]
        found += [
            ("blank_required_field", "error", k)
            for k in sorted(REQUIRED_STRING_FIELDS)
            if k in row and (not isinstance(row[k], str) or row[k].strip() == "")
        ]
        if row.get("customer_id") != ws.customer_id:
            found.append(("customer_id_mismatch", "error", "customer_id"))
        if row.get("tenant_id") != ws.tenant_id:
            found.append(("tenant_id_mismatch", "error", "tenant_id"))
        if label in labels:
            found.append(("duplicate_trace_id", "error", "trace_id"))
        labels.add(label)
        decision = string(row.get("expected_decision")).strip()
        severity = string(row.get("severity")).strip()
        if decision and decision not in ALLOWED_DECISIONS:
            found.append(("decision_not_allowed", "error", "expected_decision"))
        if severity in HIGH_RISK_SEVERITIES and decision == "approve":
            found.append(("high_risk_approve_label", "warning", "expected_decision"))
        for key in ("source_refs", "policy_refs"):
            if key in row and not string_list(row[key]):
                found.append(("invalid_reference_list", "error", key))
        if row.get("contains_secret") is True and row.get("redaction_status") != "redacted":
            found.append(("unredacted_secret", "error", "redaction_status"))
        if profile:
            md = row.get("metadata")
            keys = sorted(["sector_class", "knowledge_class", "requires_citation", "jurisdiction"])
            if not isinstance(md, dict):
                missing = keys
            else:
                missing = [k for k in keys if k not in md or md[k] == "" or md[k] is None]
            found += [("sector_metadata_missing", "error", f"metadata.{k}") for k in missing]
            if isinstance(md, dict) and not missing:
                for k in keys:
                    v = md.get(k)
                    if (isinstance(v, str) and not v.strip()) or v is None:
                        found.append(("sector_metadata_missing", "error", f"metadata.{k}"))
                if md.get("requires_citation") is True and not string_list(md.get("evidence_refs")):
                    found.append(("sector_citation_required", "error", "metadata.evidence_refs"))
                if md.get("requires_numeric_evidence") is True and not string_list(
                    md.get("numeric_evidence_refs")
                ):
                    found.append(
                        (
                            "sector_numeric_evidence_missing",
                            "error",
                            "metadata.numeric_evidence_refs",
                        )
                    )
                if (
                    md.get("requires_escalation") is True
                    and string(row.get("expected_decision")) != "escalate"
                ):
                    found.append(("sector_escalation_required", "error", "expected_decision"))
        split = string(row.get("split")).strip()
        duplicate_within = False
        if split:
            if split not in ws.allowed_splits:
                found.append(("split_not_allowed", "error", "split"))
            counts[split] = counts.get(split, 0) + 1
            pair = (
                string(row.get("prompt")).lower().strip()
                + "\n"
                + string(row.get("response")).lower().strip()
            )
            duplicate_within = pair in prints.setdefault(split, [])
            prints[split].append(pair)
        if severity and severity not in ALLOWED_SEVERITIES:
            found.append(("severity_not_allowed", "error", "severity"))
        for flag in ("contains_pii", "contains_secret"):
            if row.get(flag) is not None and not isinstance(row.get(flag), bool):
                found.append(("flag_not_boolean", "error", flag))
        if row.get("contains_pii") is True and row.get("redaction_status") != "redacted":
            found.append(("unredacted_pii", "error", "redaction_status"))
        if duplicate_within:
            found.append(("within_split_duplicate", "warning", "split"))
        out += [(code, sev, label, field) for code, sev, field in found]
    out += [("split_missing", "error", "", "split") for s in ws.allowed_splits if not counts.get(s)]
    names = sorted(prints)
    for i, left in enumerate(names):
        for right in names[i + 1 :]:
            if set(prints[left]) & set(prints[right]):
                out.append(("cross_split_duplicate", "error", "", "split"))
    return out


_pool_text = st.sampled_from(["", " ", "x", "X ", "  q", "dup", "é", "\u2028"])
_pool_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1, 1),
    _pool_text,
    st.lists(_pool_text, max_size=2),
    st.just({"k": 1}),
)
_METADATA_POOLS: dict[str, st.SearchStrategy[Any]] = {
    "sector_class": st.one_of(st.just("ok"), _pool_value),
    "knowledge_class": st.one_of(st.just("ok"), _pool_value),
    "jurisdiction": st.one_of(st.just("ok"), _pool_value),
    "requires_citation": st.one_of(st.just(True), _pool_value),
    "evidence_refs": st.one_of(st.just(["ok"]), _pool_value),
    "requires_numeric_evidence": st.one_of(st.just(True), _pool_value),
    "numeric_evidence_refs": st.one_of(st.just(["ok"]), _pool_value),
    "requires_escalation": st.one_of(st.just(True), _pool_value),
}
# Mostly keep a key, sometimes replace it, rarely delete it: near-valid rows reach deep rules.
_ACTIONS = st.sampled_from(["keep"] * 5 + ["replace"] * 3 + ["delete"])


@st.composite
def _mutated(
    draw: st.DrawFn, base: dict[str, Any], pools: dict[str, st.SearchStrategy[Any]]
) -> dict[str, Any]:
    """``base`` with each key of ``pools`` kept, replaced from its pool, or deleted."""
    mutated = dict(base)
    for key, pool in pools.items():
        action = draw(_ACTIONS)
        if action == "replace":
            mutated[key] = draw(pool)
        elif action == "delete":
            mutated.pop(key, None)
    return mutated


_metadata_values = st.one_of(
    st.none(),
    st.just("not-a-dict"),
    _mutated(sector_metadata(), _METADATA_POOLS),
    _mutated(sector_metadata(), _METADATA_POOLS),
)
_FIELD_POOLS: dict[str, st.SearchStrategy[Any]] = {
    "trace_id": st.sampled_from(["t1", "t2", "", "row:0", "row:1", None, 3]),
    "customer_id": st.sampled_from([CUSTOMER_ID, "other", None]),
    "tenant_id": st.sampled_from([TENANT_ID, "other"]),
    "split": st.sampled_from(["train", "eval", " test", "holdout", "", " ", 4]),
    "prompt": st.sampled_from(["P", " p", "Q", 1, None]),
    "response": st.sampled_from(["R", "r ", "S"]),
    "expected_decision": st.sampled_from(["approve", "escalate", " block", "ship", "", None]),
    "severity": st.sampled_from(["low", "critical", " high", "urgent", "", []]),
    "source_refs": _pool_value,
    "policy_refs": _pool_value,
    "contains_pii": _pool_value,
    "contains_secret": _pool_value,
    "redaction_status": st.sampled_from(["redacted", "pending", None]),
    "metadata": _metadata_values,
}


def _row() -> st.SearchStrategy[dict[str, Any]]:
    return _mutated(trace_row("t0"), _FIELD_POOLS)


_rows = st.lists(_row(), max_size=7)
_profiles = st.sampled_from([None, "", SECTOR_PROFILE, SECTOR_PROFILE])
_workspaces = st.sampled_from(
    [workspace(), workspace(allowed_splits=("train", "eval")), workspace(allowed_splits=())]
)


@settings(max_examples=150, deadline=None)
@given(_rows, _workspaces, _profiles)
def test_findings_match_the_spec_oracle(
    rows: list[dict[str, Any]], ws: CustomerWorkspace, profile: str | None
) -> None:
    report = validate_customer_trace_dataset(rows, ws, vertical_profile=profile)
    got = [(f.code, f.severity, f.trace_id, f.field) for f in report.findings]
    assert got == _oracle(rows, ws, profile)
    assert report.ready == all(f.severity != "error" for f in report.findings)
    assert report.row_count == len(rows)
    assert report.dataset_hash == _canonical_hash(rows)
    assert report.high_risk_count == sum(
        n for s, n in report.severity_counts.items() if s in HIGH_RISK_SEVERITIES
    )
    assert list(report.split_counts) == sorted(report.split_counts)
    assert list(report.severity_counts) == sorted(report.severity_counts)
    report.verify_hash()


@settings(max_examples=50, deadline=None)
@given(_rows, _profiles)
def test_streaming_and_list_entry_points_agree_and_are_deterministic(
    rows: list[dict[str, Any]], profile: str | None
) -> None:
    ws = workspace()
    listed = validate_customer_trace_dataset(rows, ws, vertical_profile=profile)
    streamed = validate_trace_rows(iter(rows), ws, vertical_profile=profile)
    assert streamed == listed
    assert validate_customer_trace_dataset(rows, ws, vertical_profile=profile) == listed


@settings(max_examples=40, deadline=None)
@given(_rows, _profiles)
def test_report_round_trips_through_json(rows: list[dict[str, Any]], profile: str | None) -> None:
    report = validate_customer_trace_dataset(rows, workspace(), vertical_profile=profile)
    assert CustomerDatasetValidationReport.from_dict(report.to_dict()) == report
    trip = json.loads(json.dumps(report.to_dict()))
    assert CustomerDatasetValidationReport.from_dict_verified(trip) == report


_json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
)
_json_values = st.recursive(
    _json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=5), _json_values, max_size=5), max_size=5))
def test_incremental_dataset_hash_equals_hashing_the_whole_list(rows: list[dict[str, Any]]) -> None:
    report = validate_trace_rows(iter(rows), workspace(), vertical_profile=None)
    assert report.dataset_hash == _canonical_hash(rows)


@settings(max_examples=30, deadline=None)
@given(_rows)
def test_write_json_is_byte_identical_across_runs(rows: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first = validate_customer_trace_dataset(rows, workspace()).write_json(Path(tmp, "1.json"))
        second = validate_customer_trace_dataset(rows, workspace()).write_json(Path(tmp, "2.json"))
        data = first.read_bytes()
        assert data == second.read_bytes()
        assert hashlib.sha256(data).digest() == hashlib.sha256(second.read_bytes()).digest()


# --- the fast path for plainly valid rows ---------------------------------------------------

_TRICKY = st.sampled_from(
    [
        None,
        "",
        " ",
        " x",
        "x ",
        "approve",
        "critical",
        "escalate",
        "train",
        " train",
        "true",
        True,
        False,
        0,
        1,
        [],
        [" "],
        ["ok"],
        ["ok", 1],
        {},
        {"k": "v"},
        "redacted",
    ]
)


@st.composite
def _nearly_valid_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A valid row with one or two values (possibly in the metadata) replaced or removed."""
    row = trace_row("t1", metadata=sector_metadata(requires_escalation=draw(st.booleans())))
    keys = [*row, "metadata.requires_numeric_evidence"]
    keys += [f"metadata.{k}" for k in row["metadata"]]
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(keys))
        target, name = (row.get("metadata"), key[9:]) if "." in key else (row, key)
        if not isinstance(target, dict):
            continue  # the metadata itself was replaced or removed already
        if draw(st.booleans()):
            target[name] = draw(_TRICKY)
        else:
            target.pop(name, None)
    return row


@settings(max_examples=300, deadline=None)
@given(_nearly_valid_rows(), _profiles, _workspaces)
def test_plainly_valid_rows_have_no_row_findings(
    row: dict[str, Any], profile: str | None, ws: CustomerWorkspace
) -> None:
    validator = _DatasetValidator(ws, vertical_profile=profile)
    split, severity = _stripped(row.get("split")), _stripped(row.get("severity"))
    quiet = _plainly_valid(row, ws, validator._stripped_splits, bool(profile))
    if quiet:
        assert validator._row_findings(row, "t1", split, severity) == []


def test_the_fast_path_is_taken_for_ordinary_rows() -> None:
    # Without this, a predicate that always said False would pass every other test while
    # silently giving up the speed it exists for.
    ws = workspace()
    stripped = frozenset(ws.allowed_splits)
    for row in trace_rows():
        assert _plainly_valid(row, ws, stripped, True)
    assert not _plainly_valid(trace_row("t", split=" train"), ws, stripped, False)
    assert not _plainly_valid(trace_row("t", contains_pii="true"), ws, stripped, False)
    assert not _plainly_valid(trace_row("t", metadata={}), ws, stripped, True)
    assert _plainly_valid(trace_row("t", metadata={}), ws, stripped, False)


# --- batch summaries (what trace_parallel's workers compute) ---------------------------------


@st.composite
def _mixed_row(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly quiet rows whose ids and prompt/response pairs collide often; sometimes any row."""
    if draw(st.integers(0, 3)) == 0:
        return draw(_row())
    severity = draw(st.sampled_from(sorted(ALLOWED_SEVERITIES)))
    return trace_row(
        draw(st.sampled_from(["a", "b", "c", "d", "e"])),
        split=draw(st.sampled_from(["train", "eval", "test"])),
        prompt=draw(st.sampled_from(["P", "Q", " p"])),  # " p" and "P" share a fingerprint
        response=draw(st.sampled_from(["R", "S"])),
        severity=severity,
        expected_decision=draw(st.sampled_from(["approve", "escalate", "block"])),
    )


_mixed_rows = st.lists(_mixed_row(), max_size=14)
_cuts = st.lists(st.integers(0, 14), max_size=5)


def _batches(rows: list[dict[str, Any]], cuts: list[int]) -> list[list[dict[str, Any]]]:
    """``rows`` cut at ``cuts`` (repeated cuts give empty batches)."""
    bounds = [0, *sorted(min(cut, len(rows)) for cut in cuts), len(rows)]
    return [rows[start:end] for start, end in itertools.pairwise(bounds)]


@settings(max_examples=200, deadline=None)
@given(_mixed_rows, _cuts, _workspaces, _profiles, st.booleans())
def test_summaries_applied_in_order_equal_adding_each_row(
    rows: list[dict[str, Any]],
    cuts: list[int],
    ws: CustomerWorkspace,
    profile: str | None,
    interleave: bool,
) -> None:
    expected = validate_customer_trace_dataset(rows, ws, vertical_profile=profile)
    validator = _DatasetValidator(ws, vertical_profile=profile)
    for number, batch in enumerate(_batches(rows, cuts)):
        if interleave and number % 2:
            for row in batch:  # the two ways of adding rows mix freely
                validator.add(row)
        else:
            validator.add_summary(summarize_rows(batch, ws, vertical_profile=profile))
    assert validator.finish() == expected


def test_ordinary_rows_are_summarized_as_quiet_rows() -> None:
    # Without this, a summary that sent every row whole would pass the test above while
    # giving up the work the workers exist to do.
    rows = trace_rows()
    summary = summarize_rows(rows, workspace(), vertical_profile=SECTOR_PROFILE)
    assert summary.others == []
    assert summary.labels == ["trace-001", "trace-002", "trace-003"]
    assert summary.splits == ["train", "eval", "test"]
    assert summary.split_counts == {"train": 1, "eval": 1, "test": 1}
    assert summary.severity_counts == {"medium": 1, "high": 1, "critical": 1}
    assert summary.row_count == 3
    assert summary.encoded == _canonical_hash_input(rows)
    odd = trace_row("x", split=" train")
    assert summarize_rows([odd], workspace()).others == [(0, odd)]


def _canonical_hash_input(rows: list[dict[str, Any]]) -> bytes:
    """The documented dataset_hash recipe's bytes without the enclosing brackets."""
    return json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str)[1:-1].encode()


def test_summarize_rows_refuses_a_row_that_is_not_a_dict() -> None:
    with pytest.raises(TypeError, match=r"^batch row 1: expected a dict, got list$"):
        summarize_rows([trace_row(), []], workspace())  # type: ignore[list-item]


def _summary(**changes: Any) -> RowsSummary:
    rows = [*trace_rows(), trace_row("odd", split=" train")]
    return dataclasses.replace(summarize_rows(rows, workspace()), **changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labels": ["trace-001"]}, "quiet row columns disagree with the count"),
        ({"row_count": 5}, "quiet row columns disagree with the count"),
        ({"others": [(9, trace_row("odd"))]}, "bad entry at position 9"),
        (
            {"others": [(3, trace_row("odd")), (2, trace_row("odd"))], "row_count": 5},
            "bad entry at position 2",
        ),
        ({"others": [(3, ["not", "a", "row"])]}, "bad entry at position 3"),
    ],
)
def test_add_summary_refuses_an_inconsistent_summary(changes: dict[str, Any], message: str) -> None:
    validator = _DatasetValidator(workspace(), vertical_profile=None)
    validator.add_summary(_summary())  # the untouched summary is fine
    with pytest.raises(ValueError, match=message):
        _DatasetValidator(workspace(), vertical_profile=None).add_summary(_summary(**changes))


def test_add_summary_after_finish_is_refused() -> None:
    validator = _DatasetValidator(workspace(), vertical_profile=None)
    validator.finish()
    with pytest.raises(RuntimeError):
        validator.add_summary(_summary())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=5), _json_values, max_size=5), max_size=6), _cuts)
def test_encoded_pieces_give_the_bytes_and_digest_of_adding_each_row(
    rows: list[dict[str, Any]], cuts: list[int]
) -> None:
    one_by_one: list[bytes] = []
    expected = CanonicalRows(one_by_one.append)
    for row in rows:
        expected.add(row)
    pieces: list[bytes] = []
    canonical = CanonicalRows(pieces.append)
    for batch in _batches(rows, cuts):
        canonical.add_encoded(summarize_rows(batch, workspace()).encoded)
    assert canonical.close() == expected.close() == _canonical_hash(rows)
    assert b"".join(pieces) == b"".join(one_by_one)
    with pytest.raises(RuntimeError):
        canonical.add_encoded(b"{}")


@settings(max_examples=150, deadline=None)
@given(_json_values)
def test_acyclic_encoder_matches_the_recipe(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    assert "".join(dataset_contract._ACYCLIC_ROW_CHUNKS(value, 0)) == expected
    assert "".join(dataset_contract._acyclic_row_chunks()(value, 0)) == expected


def test_acyclic_encoder_without_the_c_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "_json", None)  # makes `from _json import ...` fail
    chunks = dataset_contract._acyclic_row_chunks()
    assert "".join(chunks({"b": [1.5, "é"], "a": None}, 0)) == '{"a":null,"b":[1.5,"\\u00e9"]}'
