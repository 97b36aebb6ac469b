"""Tests for customer_model_factory.evidence_pack (reference section 8)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory._hashing import HashMismatchError
from customer_model_factory._jsonfile import manifest_bytes
from customer_model_factory.evidence_pack import (
    ALLOWED_CLASSIFICATIONS,
    ARTEFACT_KEYS,
    CustomerEvidencePackManifest,
    build_customer_evidence_pack,
)
from factory_fixtures import (
    EVIDENCE_PACK_URI,
    deployment_policy,
    ready_deployment,
    ready_evidence_pack,
    sector_mapping,
    tampered,
)


def _codes(pack: CustomerEvidencePackManifest) -> list[str]:
    return [finding["code"] for finding in pack.findings]


def test_ready_pack_carries_the_deployment_and_mapping_bindings() -> None:
    deployment = ready_deployment()
    mapping = sector_mapping()
    pack = ready_evidence_pack(deployment_manifest=deployment, regulation_mapping=mapping)
    assert pack.ready is True
    assert pack.findings == ()
    assert pack.artefacts["deployment_hash"] == deployment.deployment_hash
    assert pack.artefacts["regulation_mapping_hash"] == mapping.mapping_hash
    assert pack.artefacts == {
        "audit_log_uri": deployment.policy.audit_log_uri,
        "deployment_hash": deployment.deployment_hash,
        "deployment_package_uri": deployment.package_uri,
        "evidence_pack_uri": deployment.policy.evidence_pack_uri,
        "regulation_mapping_hash": mapping.mapping_hash,
        "rollback_package_uri": deployment.policy.rollback_package_uri,
        "selected_benchmark_id": deployment.selected_benchmark_id,
        "selected_model_artifact_uri": deployment.selected_model_artifact_uri,
        "selection_hash": deployment.selection_hash,
        "telemetry_mode": deployment.policy.telemetry_mode,
    }
    assert tuple(sorted(pack.artefacts)) == ARTEFACT_KEYS
    assert pack.control_evidence == mapping.control_evidence
    assert (pack.customer_id, pack.workspace_id, pack.tenant_id) == (
        deployment.customer_id,
        deployment.workspace_id,
        deployment.tenant_id,
    )
    assert (pack.deployment_id, pack.environment) == (
        "cust-001-deployment-20260518",
        "production",
    )
    pack.verify_hash()


def test_not_ready_deployment_blocks() -> None:
    deployment = ready_deployment(environment="sandbox")
    pack = ready_evidence_pack(deployment_manifest=deployment)
    assert _codes(pack) == ["deployment_not_ready"]


def test_unapproved_callbacks_block() -> None:
    pack = ready_evidence_pack(callback_endpoints=("https://customer.example/hook",))
    assert _codes(pack) == ["external_callback_not_allowed"]
    assert pack.findings[0]["message"] == (
        "external callbacks require explicit customer export approval"
    )


def test_approved_callbacks_stay_ready() -> None:
    pack = ready_evidence_pack(
        external_callbacks_allowed=True, callback_endpoints=("https://customer.example/hook",)
    )
    assert pack.ready is True
    assert pack.callback_endpoints == ("https://customer.example/hook",)


def test_blank_package_public_classification_and_blank_export_give_five_codes() -> None:
    pack = ready_evidence_pack(package_id=" ", classification="public", export_uri=" ")
    assert _codes(pack) == [
        "package_id_missing",
        "classification_unknown",
        "export_uri_missing",
        "evidence_uri_mismatch",
        "regulation_mapping_uri_mismatch",
    ]
    assert pack.findings[1]["message"] == "classification 'public' is not supported"


def test_empty_export_uri_skips_both_mismatch_checks() -> None:
    pack = ready_evidence_pack(export_uri="")
    assert _codes(pack) == ["export_uri_missing"]


def test_mapping_uri_mismatch_alone() -> None:
    pack = ready_evidence_pack(regulation_mapping=sector_mapping(evidence_pack_uri="gs://other"))
    assert _codes(pack) == ["regulation_mapping_uri_mismatch"]
    assert pack.findings[0]["message"] == (
        "export_uri must match regulation mapping evidence_pack_uri"
    )


def test_policy_uri_mismatch_alone() -> None:
    deployment = ready_deployment(policy=deployment_policy(evidence_pack_uri="gs://elsewhere"))
    pack = ready_evidence_pack(deployment_manifest=deployment)
    assert _codes(pack) == ["evidence_uri_mismatch"]


def test_all_seven_codes_in_reference_order() -> None:
    pack = ready_evidence_pack(
        package_id="",
        deployment_manifest=ready_deployment(deployment_id=""),
        classification="Confidential",
        export_uri="  ",
        callback_endpoints=("http://10.0.0.1/hook",),
    )
    assert _codes(pack) == [
        "package_id_missing",
        "deployment_not_ready",
        "classification_unknown",
        "export_uri_missing",
        "evidence_uri_mismatch",
        "regulation_mapping_uri_mismatch",
        "external_callback_not_allowed",
    ]
    assert {finding["severity"] for finding in pack.findings} == {"error"}


def test_classifications_match_the_reference() -> None:
    assert frozenset({"internal", "confidential", "restricted"}) == ALLOWED_CLASSIFICATIONS
    for classification in sorted(ALLOWED_CLASSIFICATIONS):
        assert ready_evidence_pack(classification=classification).ready is True


def test_evidence_hash_golden_value_from_documented_recipe() -> None:
    deployment = ready_deployment()
    mapping = sector_mapping()
    pack = ready_evidence_pack(deployment_manifest=deployment, regulation_mapping=mapping)
    text = json.dumps(
        {
            "package_id": "cust-001-evidence-20260518",
            "customer_id": "cust-001",
            "workspace_id": "ws-guardrails",
            "tenant_id": "tenant-eu-1",
            "deployment_id": "cust-001-deployment-20260518",
            "environment": "production",
            "classification": "confidential",
            "export_uri": EVIDENCE_PACK_URI,
            "external_callbacks_allowed": False,
            "callback_endpoints": [],
            "artefacts": {
                "audit_log_uri": "gs://customer-artifacts/cust-001/audit/decisions.jsonl",
                "deployment_hash": deployment.deployment_hash,
                "deployment_package_uri": (
                    "gs://customer-artifacts/cust-001/releases/cmf-20260518.tar"
                ),
                "evidence_pack_uri": EVIDENCE_PACK_URI,
                "regulation_mapping_hash": mapping.mapping_hash,
                "rollback_package_uri": "gs://customer-artifacts/cust-001/releases/previous.tar",
                "selected_benchmark_id": "candidate-balanced",
                "selected_model_artifact_uri": (
                    "gs://customer-artifacts/cust-001/models/candidate-balanced"
                ),
                "selection_hash": deployment.selection_hash,
                "telemetry_mode": "customer_controlled",
            },
            "control_evidence": {
                control: list(evidence) for control, evidence in mapping.control_evidence.items()
            },
            "findings": [],
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    assert pack.evidence_hash == hashlib.sha256(text.encode()).hexdigest()


def test_to_dict_sorts_maps_and_lists_tuples() -> None:
    pack = ready_evidence_pack(
        external_callbacks_allowed=True, callback_endpoints=("https://b", "https://a")
    )
    exported = pack.to_dict()
    assert exported["callback_endpoints"] == ["https://b", "https://a"]  # order kept
    assert list(exported["artefacts"]) == sorted(exported["artefacts"])
    assert list(exported["control_evidence"]) == sorted(exported["control_evidence"])
    assert all(isinstance(value, list) for value in exported["control_evidence"].values())


# --------------------------------------------------------------------------------------------
# Verification and strict parsing


@pytest.mark.parametrize("name", [f.name for f in fields(CustomerEvidencePackManifest)])
def test_verify_hash_fails_after_any_field_is_tampered_with(name: str) -> None:
    pack = ready_evidence_pack()
    forged = replace(pack, **{name: tampered(getattr(pack, name))})
    with pytest.raises(ValueError):
        forged.verify_hash()


def test_verify_hash_rejects_a_lying_ready_flag_and_foreign_artefact_keys() -> None:
    pack = ready_evidence_pack(classification="public")
    with pytest.raises(ValueError, match=r"CustomerEvidencePackManifest\.ready: True"):
        replace(pack, ready=True).verify_hash()
    ready = ready_evidence_pack()
    artefacts = {k: v for k, v in ready.artefacts.items() if k != "deployment_hash"}
    forged = replace(ready, artefacts=artefacts)
    forged = replace(forged, evidence_hash=forged.recompute_hash())
    with pytest.raises(ValueError, match=r"\.artefacts: expected exactly the keys"):
        forged.verify_hash()


def test_from_dict_is_strict_and_names_the_field() -> None:
    good = ready_evidence_pack().to_dict()
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "external_callbacks_allowed": "false"}, r"^external_callbacks_allowed: expected"),
        ({**good, "callback_endpoints": "https://x"}, r"^callback_endpoints: expected a list"),
        ({**good, "callback_endpoints": [1]}, r"^callback_endpoints\[0\]: expected a string"),
        ({**good, "artefacts": {"deployment_hash": None}}, r"^artefacts\.deployment_hash:"),
        (
            {**good, "control_evidence": {"audit_logging": "decision_log"}},
            r"^control_evidence\.audit_logging: expected a list",
        ),
        ({**good, "export_uri": None}, r"^export_uri: expected a string, got null"),
        ({**good, "surprise": 1}, r"^surprise: unknown field"),
    ]
    for payload, message in cases:
        with pytest.raises(ValueError, match=message):
            CustomerEvidencePackManifest.from_dict(payload)


def test_from_dict_verified_refuses_an_edited_export() -> None:
    payload = ready_evidence_pack().to_dict()
    payload["external_callbacks_allowed"] = True
    with pytest.raises(HashMismatchError, match=r"evidence_hash"):
        CustomerEvidencePackManifest.from_dict_verified(payload)


def test_later_edits_to_the_mapping_do_not_drift_the_pack() -> None:
    mapping = sector_mapping()
    pack = ready_evidence_pack(regulation_mapping=mapping)
    mapping.control_evidence["injected"] = ("x",)
    pack.verify_hash()
    assert "injected" not in pack.control_evidence


def test_write_json_round_trips(tmp_path: Path) -> None:
    pack = ready_evidence_pack()
    path = pack.write_json(tmp_path / "evidence.json")
    assert path.read_bytes() == manifest_bytes(pack.to_dict())
    assert CustomerEvidencePackManifest.from_dict_verified(json.loads(path.read_bytes())) == pack


# --------------------------------------------------------------------------------------------
# Properties

_texts = st.text(max_size=10)
_DEPLOYMENTS = [ready_deployment(), ready_deployment(environment="staging", deployment_id=" ")]
_MAPPINGS = [
    sector_mapping(),
    sector_mapping(evidence_pack_uri="gs://other", control_evidence={}),
    sector_mapping(control_evidence={"b": ("y", "x"), "a": ()}),
]


@st.composite
def _packs(draw: st.DrawFn) -> CustomerEvidencePackManifest:
    return build_customer_evidence_pack(
        package_id=draw(_texts),
        deployment_manifest=draw(st.sampled_from(_DEPLOYMENTS)),
        regulation_mapping=draw(st.sampled_from(_MAPPINGS)),
        classification=draw(st.sampled_from([*sorted(ALLOWED_CLASSIFICATIONS), "public"])),
        export_uri=draw(st.sampled_from([EVIDENCE_PACK_URI, "", " ", "gs://other"])),
        external_callbacks_allowed=draw(st.booleans()),
        callback_endpoints=tuple(draw(st.lists(_texts, max_size=3))),
    )


@settings(max_examples=60, deadline=None)
@given(_packs())
def test_round_trip_verify_and_readiness(pack: CustomerEvidencePackManifest) -> None:
    pack.verify_hash()
    assert pack.ready == (not pack.findings)
    assert CustomerEvidencePackManifest.from_dict(pack.to_dict()) == pack
    trip = json.loads(json.dumps(pack.to_dict()))
    assert CustomerEvidencePackManifest.from_dict_verified(trip) == pack


@settings(max_examples=30, deadline=None)
@given(_packs(), st.sampled_from([f.name for f in fields(CustomerEvidencePackManifest)]))
def test_any_tampered_field_fails_verification(
    pack: CustomerEvidencePackManifest, name: str
) -> None:
    forged = replace(pack, **{name: tampered(getattr(pack, name))})
    with pytest.raises(ValueError):
        forged.verify_hash()


@settings(max_examples=15, deadline=None)
@given(_packs())
def test_builder_is_deterministic_and_write_json_is_byte_identical(
    pack: CustomerEvidencePackManifest,
) -> None:
    deployment = next(d for d in _DEPLOYMENTS if d.deployment_id == pack.deployment_id)
    mapping = next(
        m for m in _MAPPINGS if m.mapping_hash == pack.artefacts["regulation_mapping_hash"]
    )
    rebuilt = build_customer_evidence_pack(
        package_id=pack.package_id,
        deployment_manifest=deployment,
        regulation_mapping=mapping,
        classification=pack.classification,
        export_uri=pack.export_uri,
        external_callbacks_allowed=pack.external_callbacks_allowed,
        callback_endpoints=pack.callback_endpoints,
    )
    assert rebuilt == pack
    with TemporaryDirectory() as tmp:
        one = pack.write_json(Path(tmp) / "1" / "evidence.json").read_bytes()
        two = rebuilt.write_json(Path(tmp) / "2" / "evidence.json").read_bytes()
    assert one == two == manifest_bytes(pack.to_dict())
    assert hashlib.sha256(one).hexdigest() == hashlib.sha256(two).hexdigest()
