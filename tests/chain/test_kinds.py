"""Tests for the record kinds: edges, roles, strict parsing, and the promotion record."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import chain_fixtures as cf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory._hashing import HashMismatchError
from customer_model_factory._jsonfile import manifest_bytes
from customer_model_factory.chain import kinds
from customer_model_factory.chain.kinds import (
    KIND_SPECS,
    PROMOTION_SCHEMA,
    ManifestError,
    PromotionRecord,
    kind_spec,
    load_json_object,
    parent_kind_problems,
    parse_manifest,
    role_for,
)

F = cf.build_factory()

EDGES = {
    "trace_dataset": {},
    "dataset_report": {"trace_dataset": (1, 1)},
    "training_manifest": {"dataset_report": (1, 1)},
    "benchmark_result": {"training_manifest": (1, 1)},
    "selection_report": {"benchmark_result": (0, None)},
    "deployment_manifest": {"selection_report": (1, 1)},
    "sector_mapping": {},
    "evidence_pack": {"deployment_manifest": (1, 1), "sector_mapping": (1, 1)},
    "runtime_package": {"deployment_manifest": (1, 1), "evidence_pack": (1, 1)},
    "monitoring_manifest": {"runtime_package": (1, 1)},
    "risk_register": {"evidence_pack": (1, 1), "monitoring_manifest": (1, 1)},
    "release_gate": {
        "runtime_package": (1, 1),
        "evidence_pack": (1, 1),
        "monitoring_manifest": (1, 1),
        "risk_register": (1, 1),
    },
    "promotion": {"release_gate": (1, 1)},
}


def test_edges_are_the_documented_ones() -> None:
    actual = {
        kind: {rule.kind: (rule.minimum, rule.maximum) for rule in spec.parents}
        for kind, spec in KIND_SPECS.items()
    }
    assert actual == EDGES


def test_each_kind_is_signed_by_the_role_of_its_name() -> None:
    for kind in KIND_SPECS:
        assert role_for(kind) == kind
    with pytest.raises(ValueError, match="unknown record kind 'trust_policy'"):
        kind_spec("trust_policy")


def test_parent_kind_problems() -> None:
    assert (
        parent_kind_problems(
            "release_gate",
            ["risk_register", "runtime_package", "monitoring_manifest", "evidence_pack"],
        )
        == []
    )
    assert parent_kind_problems("selection_report", []) == []
    assert parent_kind_problems("selection_report", ["benchmark_result"] * 3) == []
    assert parent_kind_problems("training_manifest", []) == [
        "training_manifest needs exactly 1 dataset_report parent(s), got 0"
    ]
    assert parent_kind_problems("training_manifest", ["dataset_report", "sector_mapping"]) == [
        "training_manifest cannot have a sector_mapping parent"
    ]
    assert parent_kind_problems("sector_mapping", ["release_gate"]) == [
        "sector_mapping cannot have a release_gate parent"
    ]
    assert parent_kind_problems("evidence_pack", ["deployment_manifest"] * 2) == [
        "evidence_pack needs exactly 1 deployment_manifest parent(s), got 2",
        "evidence_pack needs exactly 1 sector_mapping parent(s), got 0",
    ]


def manifests() -> list[tuple[str, Any]]:
    """Every stage manifest of the factory run, with its kind."""
    return [
        (kinds.DATASET_REPORT, F.report),
        (kinds.TRAINING_MANIFEST, F.training),
        (kinds.BENCHMARK_RESULT, F.benchmarks[0]),
        (kinds.SELECTION_REPORT, F.selection),
        (kinds.DEPLOYMENT_MANIFEST, F.deployment),
        (kinds.SECTOR_MAPPING, F.mapping),
        (kinds.EVIDENCE_PACK, F.evidence),
        (kinds.RUNTIME_PACKAGE, F.runtime),
        (kinds.MONITORING_MANIFEST, F.monitoring),
        (kinds.RISK_REGISTER, F.register),
        (kinds.RELEASE_GATE, F.gate),
    ]


@pytest.mark.parametrize(("kind", "manifest"), manifests(), ids=[k for k, _ in manifests()])
def test_every_stage_manifest_parses_back(kind: str, manifest: Any) -> None:
    assert parse_manifest(kind, cf.blob(manifest)) == manifest
    compact = json.dumps(manifest.to_dict(), separators=(",", ":")).encode()
    assert parse_manifest(kind, compact) == manifest  # any valid JSON, not only canonical bytes


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "a": 1}',
        b'{"a": NaN}',
        b'{"a": -Infinity}',
        b"\xef\xbb\xbf{}",
        b"\xff",
        b"[]",
        b"{} {}",
        b"",
    ],
    ids=["duplicate-key", "nan", "infinity", "bom", "not-utf8", "array", "trailing", "empty"],
)
def test_strict_json(data: bytes) -> None:
    with pytest.raises(ManifestError):
        load_json_object(data, what="x")
    with pytest.raises(ManifestError):
        parse_manifest(kinds.TRAINING_MANIFEST, data)


@pytest.mark.parametrize(
    "data",
    [b'{"a":' * 100_000, b'{"a":' + b"[" * 100_000, b'{"a": ' + b"9" * 5_000 + b"}"],
    ids=["deep-objects", "deep-arrays", "huge-integer"],
)
def test_hostile_json_is_a_manifest_error_not_a_crash(data: bytes) -> None:
    # json raises RecursionError (nesting) and a plain ValueError (int digits limit) for these;
    # an untrusted blob must give the one documented error, never escape a verifier.
    with pytest.raises(ManifestError):
        load_json_object(data, what="x")
    with pytest.raises(ManifestError):
        parse_manifest(kinds.RELEASE_GATE, data)


def test_a_wrong_field_type_names_the_field() -> None:
    payload = F.training.to_dict()
    payload["dataset_ready"] = "false"
    with pytest.raises(ManifestError, match="dataset_ready"):
        parse_manifest(kinds.TRAINING_MANIFEST, json.dumps(payload).encode())


def test_a_stale_self_hash_is_a_hash_mismatch() -> None:
    payload = F.gate.to_dict()
    payload["release_id"] = "release-other"
    with pytest.raises(HashMismatchError):
        parse_manifest(kinds.RELEASE_GATE, json.dumps(payload).encode())


def test_trace_datasets_are_not_parsed_whole() -> None:
    with pytest.raises(ValueError, match="streamed"):
        parse_manifest(kinds.TRACE_DATASET, b"{}")


# -- the promotion record ----------------------------------------------------------------------

HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
TEXT = st.text(max_size=20)
INSTANT = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
).map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ"))

PROMOTIONS = st.builds(
    PromotionRecord,
    schema=st.just(PROMOTION_SCHEMA),
    release_gate_blob_id=HEX,
    release_id=TEXT,
    release_hash=HEX,
    customer_id=TEXT,
    workspace_id=TEXT,
    tenant_id=TEXT,
    deployment_id=TEXT,
    promoted_at=INSTANT,
    policy_version=st.integers(min_value=1, max_value=2**53),
    checkpoint_size=st.integers(min_value=1, max_value=2**53),
)


@given(PROMOTIONS)
def test_promotion_round_trips(record: PromotionRecord) -> None:
    assert PromotionRecord.from_dict(record.to_dict()) == record
    data = record.to_bytes()
    assert data == manifest_bytes(record.to_dict())
    assert parse_manifest(kinds.PROMOTION, data) == record
    assert PromotionRecord.from_dict(json.loads(data)).to_bytes() == data


def good_promotion() -> dict[str, Any]:
    """A valid promotion payload."""
    return {
        "schema": PROMOTION_SCHEMA,
        "release_gate_blob_id": "a" * 64,
        "release_id": "r",
        "release_hash": "b" * 64,
        "customer_id": "c",
        "workspace_id": "w",
        "tenant_id": "t",
        "deployment_id": "d",
        "promoted_at": "2026-05-18T18:45:00Z",
        "policy_version": 1,
        "checkpoint_size": 3,
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("schema", "cmf-promotion/v2", "promotion.schema"),
        ("release_gate_blob_id", "A" * 64, "promotion.release_gate_blob_id"),
        ("release_hash", "b" * 63, "promotion.release_hash"),
        ("promoted_at", "yesterday", "promotion.promoted_at"),
        ("policy_version", 0, "promotion.policy_version"),
        ("checkpoint_size", True, "promotion.checkpoint_size"),
        ("release_id", None, "promotion.release_id"),
        ("surprise", "x", "promotion.surprise"),
    ],
)
def test_promotion_is_strict(field: str, value: Any, message: str) -> None:
    payload = good_promotion()
    payload[field] = value
    with pytest.raises(ValueError, match=message):
        PromotionRecord.from_dict(payload)
    PromotionRecord.from_dict(good_promotion())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers()), max_size=8))
def test_duplicate_keys_are_refused_naming_the_first_repeated_one(
    pairs: list[tuple[str, int]],
) -> None:
    names = [name for name, _ in pairs]
    text = "{" + ",".join(f'"{name}":{value}' for name, value in pairs) + "}"
    repeated = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if repeated is None:
        assert load_json_object(text.encode(), what="x") == dict(pairs)
    else:
        with pytest.raises(ManifestError, match=f"duplicate JSON key '{repeated}'"):
            load_json_object(text.encode(), what="x")
