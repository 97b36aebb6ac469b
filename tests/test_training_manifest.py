"""Tests for customer_model_factory.training_manifest (reference section 5)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace
from enum import StrEnum
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory._hashing import HashMismatchError
from customer_model_factory._jsonfile import manifest_bytes
from customer_model_factory.training_manifest import (
    OBJECTIVE_PROFILES,
    CustomerTrainingManifest,
    TrainingLane,
    build_training_manifest,
)
from factory_fixtures import MODEL_OUTPUT_URI, dataset_report, ready_training_manifest, tampered

HEX_REVISION = "abcdef1234567890abcdef1234567890abcdef12"


def _codes(manifest: CustomerTrainingManifest) -> list[str]:
    return [finding["code"] for finding in manifest.findings]


def _not_ready_report() -> Any:
    report = dataset_report()
    return replace(report, ready=False)


def test_training_lane_is_a_str_enum_with_the_reference_values_in_order() -> None:
    assert issubclass(TrainingLane, StrEnum)
    assert [lane.value for lane in TrainingLane] == [
        "vertex",
        "customer_cloud",
        "on_prem",
        "local_pilot",
    ]
    assert TrainingLane("vertex") is TrainingLane.VERTEX
    assert json.dumps(TrainingLane.VERTEX) == '"vertex"'


def test_objective_profiles_are_the_five_reference_profiles() -> None:
    assert (
        frozenset(
            {"conservative", "balanced", "low_latency", "high_recall", "zero_silent_unsafe_pass"}
        )
        == OBJECTIVE_PROFILES
    )


def test_ready_vertex_manifest_with_hex_revision() -> None:
    report = dataset_report()
    manifest = ready_training_manifest()
    assert manifest.ready is True
    assert manifest.findings == ()
    assert manifest.requires_private_execution is True
    assert manifest.base_model_artifact_uri == ""
    assert manifest.dataset_ready is True
    assert manifest.dataset_hash == report.dataset_hash
    assert (manifest.customer_id, manifest.workspace_id, manifest.tenant_id) == (
        report.customer_id,
        report.workspace_id,
        report.tenant_id,
    )
    assert list(manifest.hyperparameters) == ["batch_size", "epochs", "learning_rate"]
    manifest.verify_hash()


def test_not_ready_dataset_gives_dataset_not_ready() -> None:
    manifest = ready_training_manifest(dataset_report=_not_ready_report())
    assert _codes(manifest) == ["dataset_not_ready"]
    assert manifest.ready is False
    assert manifest.dataset_ready is False
    manifest.verify_hash()


def test_empty_revision_with_non_gs_base_is_not_immutable() -> None:
    manifest = ready_training_manifest(base_model_revision="")
    assert _codes(manifest) == ["base_model_not_immutable"]


def test_vertex_lane_with_file_output_is_incompatible() -> None:
    manifest = ready_training_manifest(output_uri="file:///tmp/model")
    assert _codes(manifest) == ["output_uri_incompatible"]
    assert manifest.findings[0] == {
        "code": "output_uri_incompatible",
        "severity": "error",
        "message": "output_uri 'file:///tmp/model' is incompatible with lane 'vertex'",
    }


def test_blank_ids_empty_hyperparameters_and_unknown_objective_on_local_pilot() -> None:
    manifest = ready_training_manifest(
        package_id=" ",
        base_model_id=" ",
        lane=TrainingLane.LOCAL_PILOT,
        output_uri="/models/out",
        hyperparameters={},
        objective_profile="fastest",
    )
    assert _codes(manifest) == [
        "package_id_missing",
        "base_model_missing",
        "hyperparameters_missing",
        "objective_profile_unknown",
    ]
    assert manifest.findings[-1]["message"] == "objective_profile 'fastest' is not supported"
    assert manifest.requires_private_execution is False


def test_all_seven_codes_in_reference_order() -> None:
    manifest = ready_training_manifest(
        package_id="",
        dataset_report=_not_ready_report(),
        base_model_id="",
        base_model_revision="",
        output_uri="/tmp/out",
        hyperparameters={},
        objective_profile="",
    )
    assert _codes(manifest) == [
        "package_id_missing",
        "dataset_not_ready",
        "base_model_missing",
        "base_model_not_immutable",
        "output_uri_incompatible",
        "hyperparameters_missing",
        "objective_profile_unknown",
    ]
    assert {finding["severity"] for finding in manifest.findings} == {"error"}


def test_s3_output_on_customer_cloud_lane_is_ready() -> None:
    manifest = ready_training_manifest(
        lane=TrainingLane.CUSTOMER_CLOUD, output_uri="s3://customer-bucket/models/out"
    )
    assert manifest.ready is True
    assert manifest.requires_private_execution is True


def test_gs_base_model_with_empty_revision_is_accepted_as_artifact_uri() -> None:
    manifest = ready_training_manifest(
        base_model_id="gs://models/deberta-v3-small", base_model_revision=""
    )
    assert manifest.ready is True
    assert manifest.base_model_artifact_uri == "gs://models/deberta-v3-small"


def test_on_prem_local_sha256_revision_round_trips() -> None:
    manifest = ready_training_manifest(
        lane=TrainingLane.ON_PREM,
        base_model_revision="local-sha256:abc123",
        output_uri="file:///srv/models/out",
    )
    assert manifest.ready is True
    assert manifest.requires_private_execution is True
    assert CustomerTrainingManifest.from_dict(manifest.to_dict()) == manifest


@pytest.mark.parametrize(
    ("revision", "immutable"),
    [
        ("abcdef123456", True),  # exactly 12 hex characters
        ("ABCDEF123456", True),  # case-insensitive
        ("abcdef12345", False),  # 11 characters
        ("abcdef12345g", False),  # not hex
        ("local-sha256:", True),  # suffix deliberately not checked, as in the reference
        ("main", False),
    ],
)
def test_revision_immutability_rule(revision: str, immutable: bool) -> None:
    manifest = ready_training_manifest(base_model_revision=revision)
    assert ("base_model_not_immutable" not in _codes(manifest)) is immutable


@pytest.mark.parametrize(
    ("lane", "good", "bad"),
    [
        (TrainingLane.VERTEX, "gs://b/o", "/srv/o"),
        (TrainingLane.CUSTOMER_CLOUD, "s3://b/o", "file:///o"),
        (TrainingLane.ON_PREM, "/srv/o", "gs://b/o"),
        (TrainingLane.LOCAL_PILOT, "file:///o", "s3://b/o"),
    ],
)
def test_output_prefixes_per_lane(lane: TrainingLane, good: str, bad: str) -> None:
    assert ready_training_manifest(lane=lane, output_uri=good).ready is True
    assert _codes(ready_training_manifest(lane=lane, output_uri=bad)) == ["output_uri_incompatible"]


def test_manifest_hash_golden_value_from_documented_recipe() -> None:
    report = dataset_report()
    manifest = ready_training_manifest()
    text = json.dumps(
        {
            "package_id": "cmf-cust-001-20260518",
            "customer_id": report.customer_id,
            "workspace_id": report.workspace_id,
            "tenant_id": report.tenant_id,
            "dataset_hash": report.dataset_hash,
            "lane": "vertex",
            "base_model_id": "microsoft/deberta-v3-small",
            "base_model_revision": HEX_REVISION,
            "base_model_artifact_uri": "",
            "output_uri": MODEL_OUTPUT_URI,
            "hyperparameters": {"epochs": 3, "batch_size": 8, "learning_rate": 1e-5},
            "objective_profile": "zero_silent_unsafe_pass",
            "findings": [],
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    assert manifest.manifest_hash == hashlib.sha256(text.encode()).hexdigest()


def test_hash_excludes_ready_dataset_ready_and_private_flag() -> None:
    manifest = ready_training_manifest()
    edited = replace(manifest, ready=False, dataset_ready=False, requires_private_execution=False)
    assert edited.recompute_hash() == manifest.manifest_hash


def test_later_edits_to_the_callers_hyperparameters_do_not_drift_the_manifest() -> None:
    hyperparameters: dict[str, Any] = {"epochs": 3, "schedule": {"warmup": 10}}
    manifest = ready_training_manifest(hyperparameters=hyperparameters)
    hyperparameters["epochs"] = 99
    hyperparameters["schedule"]["warmup"] = 0
    manifest.verify_hash()
    assert manifest.hyperparameters == {"epochs": 3, "schedule": {"warmup": 10}}
    exported = manifest.to_dict()
    exported["hyperparameters"]["schedule"]["warmup"] = 1
    manifest.verify_hash()


def test_builder_accepts_a_lane_given_by_value_and_refuses_unknown_lanes() -> None:
    by_value = ready_training_manifest(lane="on_prem", output_uri="/srv/out")
    assert by_value.lane is TrainingLane.ON_PREM
    with pytest.raises(ValueError):
        ready_training_manifest(lane="mainframe")


# --------------------------------------------------------------------------------------------
# Strict parsing and verification


def test_from_dict_is_strict_and_names_the_field() -> None:
    good = ready_training_manifest().to_dict()
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "ready": "false"}, r"^ready: expected true or false, got str"),
        ({**good, "requires_private_execution": 1}, r"^requires_private_execution: expected"),
        ({**good, "package_id": None}, r"^package_id: expected a string, got null"),
        ({**good, "lane": "mainframe"}, r"^lane: unknown training lane 'mainframe'"),
        ({**good, "lane": 3}, r"^lane: expected a string, got int"),
        ({**good, "hyperparameters": []}, r"^hyperparameters: expected an object, got list"),
        ({**good, "findings": [{"code": 1}]}, r"^findings\[0\]\.code: expected a string"),
        ({**good, "surprise": True}, r"^surprise: unknown field"),
    ]
    for payload, message in cases:
        with pytest.raises(ValueError, match=message):
            CustomerTrainingManifest.from_dict(payload)
    for key in good:
        partial = {k: v for k, v in good.items() if k != key}
        with pytest.raises(ValueError, match=rf"^{key}: required field is missing"):
            CustomerTrainingManifest.from_dict(partial)


@pytest.mark.parametrize("name", [f.name for f in fields(CustomerTrainingManifest)])
def test_verify_hash_fails_after_any_field_is_tampered_with(name: str) -> None:
    manifest = ready_training_manifest()
    forged = replace(manifest, **{name: tampered(getattr(manifest, name))})
    with pytest.raises(ValueError):
        forged.verify_hash()


def test_verify_hash_checks_the_unhashed_flags_against_their_rules() -> None:
    manifest = ready_training_manifest()
    with pytest.raises(ValueError, match=r"\.ready: False contradicts 0 finding"):
        replace(manifest, ready=False).verify_hash()
    with pytest.raises(ValueError, match=r"\.dataset_ready"):
        replace(manifest, dataset_ready=False).verify_hash()
    with pytest.raises(ValueError, match=r"\.requires_private_execution"):
        replace(manifest, requires_private_execution=False).verify_hash()
    with pytest.raises(ValueError, match=r"\.schema_version"):
        replace(manifest, schema_version="0.9.0").verify_hash()
    forged = replace(manifest, base_model_artifact_uri="gs://elsewhere")
    forged = replace(forged, manifest_hash=forged.recompute_hash())
    with pytest.raises(ValueError, match=r"\.base_model_artifact_uri"):
        forged.verify_hash()


def test_from_dict_verified_refuses_an_edited_file() -> None:
    payload = ready_training_manifest().to_dict()
    payload["output_uri"] = "gs://attacker/models"
    with pytest.raises(HashMismatchError, match=r"CustomerTrainingManifest\.manifest_hash"):
        CustomerTrainingManifest.from_dict_verified(payload)


# --------------------------------------------------------------------------------------------
# Properties

_texts = st.text(max_size=10)
_json_scalars = st.one_of(
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    _texts,
    st.booleans(),
)
_hyperparameters = st.dictionaries(
    _texts, st.one_of(_json_scalars, st.lists(_json_scalars, max_size=3)), max_size=4
)
_REPORT = dataset_report()


@st.composite
def _manifests(draw: st.DrawFn) -> CustomerTrainingManifest:
    lane = draw(st.sampled_from(list(TrainingLane)))
    prefix = draw(st.sampled_from(["gs://", "s3://", "file://", "/", ""]))
    return build_training_manifest(
        package_id=draw(_texts),
        dataset_report=replace(_REPORT, ready=draw(st.booleans())),
        lane=lane,
        base_model_id=draw(st.sampled_from(["", "gs://m/base", "org/model"])) + draw(_texts),
        base_model_revision=draw(
            st.sampled_from(["", HEX_REVISION, "local-sha256:x", "main", "abcdef12345"])
        ),
        output_uri=prefix + draw(_texts),
        hyperparameters=draw(_hyperparameters),
        objective_profile=draw(st.sampled_from([*sorted(OBJECTIVE_PROFILES), "other"])),
    )


@settings(max_examples=60, deadline=None)
@given(_manifests())
def test_round_trip_verify_and_readiness(manifest: CustomerTrainingManifest) -> None:
    manifest.verify_hash()
    assert manifest.ready == (not manifest.findings)
    assert CustomerTrainingManifest.from_dict(manifest.to_dict()) == manifest
    trip = json.loads(json.dumps(manifest.to_dict()))
    assert CustomerTrainingManifest.from_dict_verified(trip) == manifest


@settings(max_examples=30, deadline=None)
@given(_manifests(), st.sampled_from([f.name for f in fields(CustomerTrainingManifest)]))
def test_any_tampered_field_fails_verification(
    manifest: CustomerTrainingManifest, name: str
) -> None:
    forged = replace(manifest, **{name: tampered(getattr(manifest, name))})
    with pytest.raises(ValueError):
        forged.verify_hash()


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_builder_is_deterministic_and_write_json_is_byte_identical(data: st.DataObject) -> None:
    arguments: dict[str, Any] = {
        "package_id": data.draw(_texts),
        "dataset_report": _REPORT,
        "lane": data.draw(st.sampled_from(list(TrainingLane))),
        "base_model_id": data.draw(_texts),
        "base_model_revision": data.draw(_texts),
        "output_uri": data.draw(_texts),
        "hyperparameters": data.draw(_hyperparameters),
        "objective_profile": data.draw(_texts),
    }
    first = build_training_manifest(**arguments)
    second = build_training_manifest(**arguments)
    assert first == second
    with TemporaryDirectory() as tmp:
        one = first.write_json(Path(tmp) / "1" / "training.json").read_bytes()
        two = second.write_json(Path(tmp) / "2" / "training.json").read_bytes()
    assert one == two == manifest_bytes(first.to_dict())
    assert hashlib.sha256(one).hexdigest() == hashlib.sha256(two).hexdigest()
