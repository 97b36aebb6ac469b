"""Tests for sector_extension: metadata controls (reference 3.4) and evidence mappings (3.2-3.3)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory import dataset_contract
from customer_model_factory._hashing import HashMismatchError, stable_hash_strict
from customer_model_factory.sector_extension import (
    DEFAULT_CONTROL_EVIDENCE,
    DEFAULT_SECTOR_FRAMEWORKS,
    SECTOR_REQUIRED_METADATA,
    SectorEvidenceMapping,
    build_sector_evidence_mapping,
    validate_sector_trace_metadata,
)
from factory_fixtures import sector_metadata, tampered


def _codes(findings: tuple[Any, ...]) -> list[str]:
    return [finding.code for finding in findings]


def _mapping(**overrides: Any) -> SectorEvidenceMapping:
    arguments: dict[str, Any] = {
        "sector_id": "retail-credit",
        "jurisdiction": "CH",
        "evidence_pack_uri": "s3://evidence/cust-001/pack-1",
    }
    arguments.update(overrides)
    return build_sector_evidence_mapping(**arguments)


# --- constants -----------------------------------------------------------------------------


def test_constants_match_the_reference() -> None:
    assert {
        "sector_class",
        "knowledge_class",
        "requires_citation",
        "jurisdiction",
    } == SECTOR_REQUIRED_METADATA
    assert DEFAULT_SECTOR_FRAMEWORKS == ("ISO27001", "ISO42001", "SOC2")
    assert dict(DEFAULT_CONTROL_EVIDENCE) == {
        "audit_logging": ("decision_log", "policy_refs", "reviewer_role", "observed_at"),
        "customer_data_protection": (
            "tenant_id",
            "redaction_status",
            "contains_pii",
            "contains_secret",
        ),
        "dataset_lineage": ("dataset_hash", "source_refs", "policy_refs", "knowledge_class"),
        "document_grounding": ("requires_citation", "evidence_refs", "numeric_evidence_refs"),
        "human_escalation": ("expected_decision", "requires_escalation", "reviewer_role"),
        "model_risk": ("severity", "sector_class", "jurisdiction", "knowledge_class"),
    }


def test_dataset_contract_uses_this_module_s_required_metadata_not_a_copy() -> None:
    assert dataset_contract.SECTOR_REQUIRED_METADATA is SECTOR_REQUIRED_METADATA


def test_default_control_evidence_is_read_only() -> None:
    with pytest.raises(TypeError):
        DEFAULT_CONTROL_EVIDENCE["extra"] = ("x",)  # type: ignore[index]


# --- validate_sector_trace_metadata --------------------------------------------------------


def test_complete_metadata_gives_no_findings() -> None:
    assert (
        validate_sector_trace_metadata(
            sector_metadata(), trace_id="t1", expected_decision="approve"
        )
        == ()
    )


def test_missing_citation_evidence_and_escalation_give_both_codes_in_order() -> None:
    metadata = sector_metadata(evidence_refs=[], requires_escalation=True)
    findings = validate_sector_trace_metadata(metadata, trace_id="t1", expected_decision="approve")
    assert _codes(findings) == ["sector_citation_required", "sector_escalation_required"]
    assert [f.field for f in findings] == ["metadata.evidence_refs", "expected_decision"]
    assert {(f.severity, f.trace_id) for f in findings} == {("error", "t1")}


@pytest.mark.parametrize(
    ("refs", "codes"),
    [
        (["kb://numbers/fees-2025"], []),
        ([], ["sector_numeric_evidence_missing"]),
        ([" "], ["sector_numeric_evidence_missing"]),
        (["ok", 7], ["sector_numeric_evidence_missing"]),
        ("kb://not-a-list", ["sector_numeric_evidence_missing"]),
        (None, ["sector_numeric_evidence_missing"]),
    ],
)
def test_numeric_evidence_control(refs: Any, codes: list[str]) -> None:
    metadata = sector_metadata(requires_numeric_evidence=True, numeric_evidence_refs=refs)
    findings = validate_sector_trace_metadata(metadata, trace_id="t9", expected_decision="block")
    assert _codes(findings) == codes
    assert all(f.field == "metadata.numeric_evidence_refs" for f in findings)


def test_escalation_not_required_allows_approve() -> None:
    metadata = sector_metadata(requires_escalation=False)
    assert validate_sector_trace_metadata(metadata, trace_id="t", expected_decision="approve") == ()


def test_escalation_compares_the_decision_exactly() -> None:
    metadata = sector_metadata(requires_escalation=True)
    ok = validate_sector_trace_metadata(metadata, trace_id="t", expected_decision="escalate")
    padded = validate_sector_trace_metadata(metadata, trace_id="t", expected_decision=" escalate")
    assert ok == ()
    assert _codes(padded) == ["sector_escalation_required"]


def test_controls_are_driven_by_flags_that_are_literally_true() -> None:
    # The reference's opt-out semantics: the string "true" does not switch a control on.
    metadata = sector_metadata(
        requires_citation="true",
        evidence_refs=[],
        requires_numeric_evidence=1,
        requires_escalation="yes",
    )
    assert validate_sector_trace_metadata(metadata, trace_id="t", expected_decision="block") == ()


def test_each_missing_required_key_is_reported_alphabetically() -> None:
    metadata = {"sector_class": " ", "knowledge_class": None, "jurisdiction": ""}
    findings = validate_sector_trace_metadata(metadata, trace_id="t7", expected_decision="block")
    assert _codes(findings) == ["sector_metadata_missing"] * 4
    assert [f.field for f in findings] == [
        "metadata.jurisdiction",
        "metadata.knowledge_class",
        "metadata.requires_citation",
        "metadata.sector_class",
    ]
    assert findings[0].message == "sector extension requires metadata.jurisdiction"


def test_false_zero_and_empty_list_count_as_present() -> None:
    metadata = {"sector_class": 0, "knowledge_class": [], "jurisdiction": "EU"}
    metadata["requires_citation"] = False
    assert validate_sector_trace_metadata(metadata, trace_id="t", expected_decision="x") == ()


def test_controls_still_run_when_keys_are_missing() -> None:
    metadata = {"requires_escalation": True}
    findings = validate_sector_trace_metadata(metadata, trace_id="t", expected_decision="block")
    assert _codes(findings) == ["sector_metadata_missing"] * 4 + ["sector_escalation_required"]


def test_metadata_must_be_a_mapping() -> None:
    with pytest.raises(TypeError, match=r"metadata: expected an object, got list"):
        validate_sector_trace_metadata([], trace_id="t", expected_decision="x")  # type: ignore[arg-type]


# --- build_sector_evidence_mapping ---------------------------------------------------------


def test_mapping_sorts_and_deduplicates_frameworks_and_sorts_controls() -> None:
    mapping = _mapping(
        frameworks=("SOC2", "ISO27001", "SOC2"),
        control_evidence={"zeta": ("b", "a"), "alpha": ("z", "y")},
    )
    assert mapping.frameworks == ("ISO27001", "SOC2")
    assert list(mapping.control_evidence) == ["alpha", "zeta"]
    assert mapping.control_evidence["zeta"] == ("b", "a")  # field order is kept


def test_mapping_defaults_and_empty_controls() -> None:
    default = _mapping()
    assert default.frameworks == DEFAULT_SECTOR_FRAMEWORKS
    assert default.control_evidence == dict(DEFAULT_CONTROL_EVIDENCE)
    assert _mapping(control_evidence={}).control_evidence == {}


def test_mapping_does_not_share_state_with_the_defaults() -> None:
    mapping = _mapping()
    mapping.control_evidence["audit_logging"] = ("forged",)
    assert DEFAULT_CONTROL_EVIDENCE["audit_logging"][0] == "decision_log"
    assert _mapping().control_evidence["audit_logging"][0] == "decision_log"


def test_mapping_hash_golden_value_from_the_documented_recipe() -> None:
    mapping = _mapping(frameworks=("SOC2", "ISO27001"), control_evidence={"b": ("y", "x")})
    documented = {
        "sector_id": "retail-credit",
        "jurisdiction": "CH",
        "evidence_pack_uri": "s3://evidence/cust-001/pack-1",
        "frameworks": ["ISO27001", "SOC2"],
        "control_evidence": {"b": ["y", "x"]},
    }
    text = json.dumps(documented, sort_keys=True, separators=(",", ":"))
    assert mapping.mapping_hash == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_default_mapping_golden_hash() -> None:
    # Pinned literally: a change to the defaults or to the recipe must be deliberate.
    text = json.dumps(
        {
            "sector_id": "retail-credit",
            "jurisdiction": "CH",
            "evidence_pack_uri": "s3://evidence/cust-001/pack-1",
            "frameworks": list(DEFAULT_SECTOR_FRAMEWORKS),
            "control_evidence": {k: list(v) for k, v in DEFAULT_CONTROL_EVIDENCE.items()},
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    assert _mapping().mapping_hash == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sector_id": None}, "sector_id: expected a string, got NoneType"),
        ({"jurisdiction": 41}, "jurisdiction: expected a string, got int"),
        ({"frameworks": "ISO27001"}, "frameworks: expected a sequence of strings, got str"),
        ({"frameworks": ("SOC2", 2)}, r"frameworks\[1\]: expected a string, got int"),
        ({"control_evidence": {"c": "field"}}, "control_evidence.c: expected a sequence"),
        ({"control_evidence": {"c": ("ok", None)}}, r"control_evidence.c\[1\]: expected a str"),
        ({"control_evidence": [("c", ("f",))]}, "control_evidence: expected a mapping, got list"),
    ],
)
def test_mapping_builder_refuses_values_that_could_not_be_read_back(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        _mapping(**overrides)


# --- SectorEvidenceMapping serialisation and verification ----------------------------------


def test_to_dict_shape() -> None:
    mapping = _mapping(control_evidence={"b": ("y",), "a": ("x",)})
    assert mapping.to_dict() == {
        "sector_id": "retail-credit",
        "jurisdiction": "CH",
        "evidence_pack_uri": "s3://evidence/cust-001/pack-1",
        "frameworks": ["ISO27001", "ISO42001", "SOC2"],
        "control_evidence": {"a": ["x"], "b": ["y"]},
        "mapping_hash": mapping.mapping_hash,
    }
    assert list(mapping.to_dict()["control_evidence"]) == ["a", "b"]


def test_from_dict_round_trip_and_verified() -> None:
    mapping = _mapping()
    assert SectorEvidenceMapping.from_dict(mapping.to_dict()) == mapping
    trip = json.loads(json.dumps(mapping.to_dict()))
    assert SectorEvidenceMapping.from_dict_verified(trip) == mapping


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.pop("jurisdiction"), "^jurisdiction: required field is missing"),
        (lambda p: p.update(extra=1), "^extra: unknown field"),
        (lambda p: p.update(frameworks="SOC2"), "^frameworks: expected a list of strings"),
        (lambda p: p.update(frameworks=[None]), r"^frameworks\[0\]: expected a string, got null"),
        (lambda p: p.update(mapping_hash=None), "^mapping_hash: expected a string, got null"),
        (
            lambda p: p.update(control_evidence={"a": "x"}),
            "^control_evidence.a: expected a list of strings",
        ),
        (lambda p: p.update(control_evidence=[]), "^control_evidence: expected an object"),
    ],
)
def test_from_dict_is_strict(edit: Any, message: str) -> None:
    payload = _mapping().to_dict()
    edit(payload)
    with pytest.raises(ValueError, match=message):
        SectorEvidenceMapping.from_dict(payload)


def test_from_dict_verified_refuses_an_edited_payload() -> None:
    payload = _mapping().to_dict()
    payload["jurisdiction"] = "EU"
    SectorEvidenceMapping.from_dict(payload)  # parses fine: from_dict alone trusts the hash
    with pytest.raises(HashMismatchError, match=r"SectorEvidenceMapping\.mapping_hash"):
        SectorEvidenceMapping.from_dict_verified(payload)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(SectorEvidenceMapping)])
def test_verify_hash_fails_after_any_field_is_tampered_with(name: str) -> None:
    mapping = _mapping()
    mapping.verify_hash()
    forged = dataclasses.replace(mapping, **{name: tampered(getattr(mapping, name))})
    with pytest.raises(HashMismatchError):
        forged.verify_hash()


# --- properties ----------------------------------------------------------------------------

_names = st.text(min_size=0, max_size=12)
_name_tuples = st.lists(_names, max_size=4).map(tuple)
_controls = st.one_of(st.none(), st.dictionaries(_names, _name_tuples, max_size=4))


@settings(max_examples=80, deadline=None)
@given(_names, _names, _names, _name_tuples, _controls)
def test_builder_properties(
    sector_id: str,
    jurisdiction: str,
    uri: str,
    frameworks: tuple[str, ...],
    controls: dict[str, tuple[str, ...]] | None,
) -> None:
    arguments: dict[str, Any] = {
        "sector_id": sector_id,
        "jurisdiction": jurisdiction,
        "evidence_pack_uri": uri,
        "frameworks": frameworks,
        "control_evidence": controls,
    }
    mapping = build_sector_evidence_mapping(**arguments)
    assert build_sector_evidence_mapping(**arguments) == mapping  # deterministic
    assert mapping.frameworks == tuple(sorted(set(frameworks)))
    assert list(mapping.control_evidence) == sorted(mapping.control_evidence)
    mapping.verify_hash()
    assert mapping.mapping_hash == stable_hash_strict(
        {k: v for k, v in mapping.to_dict().items() if k != "mapping_hash"}
    )
    assert SectorEvidenceMapping.from_dict(mapping.to_dict()) == mapping
    trip = json.loads(json.dumps(mapping.to_dict()))
    assert SectorEvidenceMapping.from_dict_verified(trip) == mapping


@settings(max_examples=60, deadline=None)
@given(_names, st.sampled_from([f.name for f in dataclasses.fields(SectorEvidenceMapping)]))
def test_any_tampered_field_fails_verification(sector_id: str, name: str) -> None:
    mapping = _mapping(sector_id=sector_id)
    forged = dataclasses.replace(mapping, **{name: tampered(getattr(mapping, name))})
    with pytest.raises(HashMismatchError):
        forged.verify_hash()
