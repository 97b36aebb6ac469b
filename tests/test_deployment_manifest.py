"""Tests for customer_model_factory.deployment_manifest (reference section 7)."""

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
from customer_model_factory.benchmark_selection import select_customer_model
from customer_model_factory.deployment_manifest import (
    ENVIRONMENTS,
    TELEMETRY_MODES,
    CustomerDeploymentManifest,
    DeploymentPolicy,
    build_deployment_manifest,
    selected_candidate,
)
from factory_fixtures import (
    EVIDENCE_PACK_URI,
    benchmark_result,
    benchmark_results,
    dataset_report,
    deployment_policy,
    ready_deployment,
    ready_selection,
    ready_training_manifest,
    tampered,
)

PACKAGE_URI = "gs://customer-artifacts/cust-001/releases/cmf-20260518.tar"


def _codes(manifest: CustomerDeploymentManifest) -> list[str]:
    return [finding["code"] for finding in manifest.findings]


def _empty_selection() -> Any:
    return select_customer_model(selection_id="s", objective_profile="balanced", candidates=[])


def test_ready_production_deployment() -> None:
    selection = ready_selection()
    deployment = ready_deployment(selection_report=selection)
    assert deployment.ready is True
    assert deployment.findings == ()
    assert deployment.selection_hash == selection.selection_hash
    assert deployment.selected_benchmark_id == "candidate-balanced"
    assert deployment.selected_model_artifact_uri == selection.selected_model_artifact_uri
    assert deployment.customer_id == "cust-001"
    assert deployment.policy == deployment_policy()
    deployment.verify_hash()


def test_empty_selection_gives_selection_not_ready_and_selected_model_missing() -> None:
    deployment = ready_deployment(selection_report=_empty_selection())
    assert _codes(deployment) == ["selection_not_ready", "selected_model_missing"]
    assert (deployment.customer_id, deployment.workspace_id, deployment.tenant_id) == ("", "", "")


def test_ascending_thresholds_give_threshold_order_invalid() -> None:
    policy = deployment_policy(threshold=0.40, abstention_threshold=0.58, escalation_threshold=0.72)
    deployment = ready_deployment(policy=policy)
    assert _codes(deployment) == ["threshold_order_invalid"]
    assert deployment.findings[0]["message"] == (
        "threshold must be greater than abstention threshold, "
        "which must be greater than escalation threshold"
    )


def test_equal_thresholds_are_not_strictly_descending() -> None:
    policy = deployment_policy(abstention_threshold=0.72)
    assert _codes(ready_deployment(policy=policy)) == ["threshold_order_invalid"]


def test_blank_audit_evidence_and_rollback_in_production() -> None:
    policy = deployment_policy(audit_log_uri=" ", evidence_pack_uri="", rollback_package_uri=" ")
    deployment = ready_deployment(policy=policy)
    assert _codes(deployment) == ["audit_log_missing", "evidence_pack_missing", "rollback_missing"]


def test_every_policy_and_id_code_in_reference_order() -> None:
    policy = deployment_policy(
        threshold=1.2,
        escalation_threshold=-0.1,
        retention_days=0,
        telemetry_mode="external_vendor",
    )
    deployment = ready_deployment(
        deployment_id=" ", policy=policy, environment="sandbox", package_uri=" "
    )
    assert _codes(deployment) == [
        "deployment_id_missing",
        "environment_unknown",
        "package_uri_missing",
        "threshold_out_of_range",
        "threshold_out_of_range",
        "retention_invalid",
        "telemetry_mode_unknown",
    ]
    messages = [finding["message"] for finding in deployment.findings]
    assert messages[1] == "environment 'sandbox' is not supported"
    assert messages[3:5] == [
        "threshold must be between 0 and 1",
        "escalation_threshold must be between 0 and 1",
    ]
    assert messages[-1] == "telemetry_mode 'external_vendor' is not supported"


def test_codes_keep_reference_order_when_many_fire_at_once() -> None:
    policy = deployment_policy(
        threshold=math.nan,
        abstention_threshold=1.5,
        escalation_threshold=-1.0,
        audit_log_uri="",
        evidence_pack_uri="",
        rollback_package_uri="",
        retention_days=-3,
        telemetry_mode="Disabled",
    )
    deployment = build_deployment_manifest(
        deployment_id="",
        selection_report=_empty_selection(),
        policy=policy,
        environment="Production",  # exact case: unknown, and so no rollback requirement
        package_uri="",
    )
    assert _codes(deployment) == [
        "deployment_id_missing",
        "selection_not_ready",
        "selected_model_missing",
        "environment_unknown",
        "package_uri_missing",
        "threshold_out_of_range",
        "threshold_out_of_range",
        "threshold_out_of_range",
        "threshold_order_invalid",
        "audit_log_missing",
        "evidence_pack_missing",
        "retention_invalid",
        "telemetry_mode_unknown",
    ]
    assert {finding["severity"] for finding in deployment.findings} == {"error"}


def test_selected_model_uri_is_checked_unstripped_as_in_the_reference() -> None:
    selection = replace(ready_selection(), selected_model_artifact_uri=" ")
    assert _codes(ready_deployment(selection_report=selection)) == []
    selection = replace(ready_selection(), selected_model_artifact_uri="")
    assert _codes(ready_deployment(selection_report=selection)) == ["selected_model_missing"]


def test_rollback_is_not_required_outside_production() -> None:
    policy = deployment_policy(rollback_package_uri="")
    for environment in ("development", "staging"):
        assert ready_deployment(policy=policy, environment=environment).ready is True
    assert _codes(ready_deployment(policy=policy)) == ["rollback_missing"]


def test_constants_match_the_reference() -> None:
    assert frozenset({"disabled", "customer_controlled", "internal_only"}) == TELEMETRY_MODES
    assert frozenset({"development", "staging", "production"}) == ENVIRONMENTS


# --------------------------------------------------------------------------------------------
# Deliberate difference: identity from the selected candidate


def _other_customer_candidate() -> Any:
    report = replace(
        dataset_report(),
        customer_id="customer-beta",
        workspace_id="customer-beta-prod",
        tenant_id="customer-beta-tenant",
    )
    manifest = ready_training_manifest(dataset_report=report)
    return benchmark_result("candidate-beta", training_manifest=manifest, f1=0.50)


def test_identity_comes_from_the_selected_candidate_not_candidates_0() -> None:
    beta = _other_customer_candidate()
    selection = select_customer_model(
        selection_id="s", objective_profile="balanced", candidates=[beta, *benchmark_results()]
    )
    assert selection.candidates[0].customer_id == "customer-beta"
    assert selection.selected_benchmark_id == "candidate-balanced"
    deployment = ready_deployment(selection_report=selection)
    assert (deployment.customer_id, deployment.workspace_id, deployment.tenant_id) == (
        "cust-001",
        "ws-guardrails",
        "tenant-eu-1",
    )


def test_identity_is_empty_when_nothing_is_selected_even_with_candidates() -> None:
    selection = select_customer_model(
        selection_id="s",
        objective_profile="zero_silent_unsafe_pass",
        candidates=[benchmark_result("c", high_risk_false_negative_rate=0.2)],
    )
    assert selection.selected_benchmark_id == ""
    deployment = ready_deployment(selection_report=selection)
    assert (deployment.customer_id, deployment.workspace_id, deployment.tenant_id) == ("", "", "")
    assert selected_candidate(selection) is None


def test_selected_candidate_is_the_first_with_the_selected_id() -> None:
    selection = ready_selection()
    assert selected_candidate(selection) is selection.candidates[1]
    orphan = replace(selection, selected_benchmark_id="not-a-candidate")
    assert selected_candidate(orphan) is None


# --------------------------------------------------------------------------------------------
# Hash recipe and verification


def test_deployment_hash_golden_value_from_documented_recipe() -> None:
    selection = ready_selection()
    deployment = ready_deployment(selection_report=selection)
    text = json.dumps(
        {
            "deployment_id": "cust-001-deployment-20260518",
            "selection_hash": selection.selection_hash,
            "selected_benchmark_id": "candidate-balanced",
            "selected_model_artifact_uri": (
                "gs://customer-artifacts/cust-001/models/candidate-balanced"
            ),
            "policy": {
                "threshold": 0.72,
                "abstention_threshold": 0.58,
                "escalation_threshold": 0.40,
                "require_citations": True,
                "audit_log_uri": "gs://customer-artifacts/cust-001/audit/decisions.jsonl",
                "evidence_pack_uri": EVIDENCE_PACK_URI,
                "rollback_package_uri": "gs://customer-artifacts/cust-001/releases/previous.tar",
                "retention_days": 365,
                "telemetry_mode": "customer_controlled",
            },
            "environment": "production",
            "package_uri": PACKAGE_URI,
            "findings": [],
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    assert deployment.deployment_hash == hashlib.sha256(text.encode()).hexdigest()


# The reference's recipe leaves identity out of deployment_hash; keeping the recipe keeps the
# hashes equal, so these edits are invisible here and are caught by the chain verifier instead.
UNHASHED_FIELDS = {"customer_id", "workspace_id", "tenant_id"}


@pytest.mark.parametrize("name", [f.name for f in fields(CustomerDeploymentManifest)])
def test_verify_hash_fails_after_any_hashed_field_is_tampered_with(name: str) -> None:
    deployment = ready_deployment()
    forged = replace(deployment, **{name: tampered(getattr(deployment, name))})
    if name in UNHASHED_FIELDS:
        forged.verify_hash()
    else:
        with pytest.raises(ValueError):
            forged.verify_hash()


@pytest.mark.parametrize("name", [f.name for f in fields(DeploymentPolicy)])
def test_verify_hash_fails_after_any_policy_field_is_tampered_with(name: str) -> None:
    deployment = ready_deployment()
    policy = replace(deployment.policy, **{name: tampered(getattr(deployment.policy, name))})
    with pytest.raises(HashMismatchError):
        replace(deployment, policy=policy).verify_hash()


def test_verify_hash_rejects_a_lying_ready_flag_and_a_foreign_schema() -> None:
    deployment = ready_deployment(environment="sandbox")
    with pytest.raises(ValueError, match=r"CustomerDeploymentManifest\.ready: True contradicts"):
        replace(deployment, ready=True).verify_hash()
    with pytest.raises(ValueError, match="schema_version"):
        replace(deployment, schema_version="").verify_hash()


# --------------------------------------------------------------------------------------------
# Strict parsing


def test_policy_from_dict_is_strict() -> None:
    good = deployment_policy().to_dict()
    assert DeploymentPolicy.from_dict(good) == deployment_policy()
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "require_citations": "false"}, r"^require_citations: expected true or false"),
        ({**good, "threshold": "0.7"}, r"^threshold: expected a number, got str"),
        ({**good, "retention_days": 365.0}, r"^retention_days: expected an integer, got float"),
        ({**good, "audit_log_uri": None}, r"^audit_log_uri: expected a string, got null"),
        ({**good, "webhook": "https://x"}, r"^webhook: unknown field"),
    ]
    for payload, message in cases:
        with pytest.raises(ValueError, match=message):
            DeploymentPolicy.from_dict(payload)


def test_deployment_from_dict_names_nested_policy_fields() -> None:
    payload = ready_deployment().to_dict()
    payload["policy"]["retention_days"] = "365"
    with pytest.raises(ValueError, match=r"^policy\.retention_days: expected an integer"):
        CustomerDeploymentManifest.from_dict(payload)
    payload = ready_deployment().to_dict()
    payload["policy"] = "inline"
    with pytest.raises(ValueError, match=r"^policy: expected an object, got str"):
        CustomerDeploymentManifest.from_dict(payload)
    payload = ready_deployment().to_dict()
    del payload["environment"]
    with pytest.raises(ValueError, match=r"^environment: required field is missing"):
        CustomerDeploymentManifest.from_dict(payload)


def test_policy_from_dict_keeps_int_thresholds_so_hashes_recompute() -> None:
    deployment = ready_deployment(policy=deployment_policy(threshold=1, escalation_threshold=0))
    trip = json.loads(json.dumps(deployment.to_dict()))
    restored = CustomerDeploymentManifest.from_dict_verified(trip)
    assert restored == deployment
    assert isinstance(restored.policy.threshold, int)


def test_write_json_round_trips(tmp_path: Path) -> None:
    deployment = ready_deployment()
    path = deployment.write_json(tmp_path / "out" / "deployment.json")
    assert path.read_bytes() == manifest_bytes(deployment.to_dict())
    assert (
        CustomerDeploymentManifest.from_dict_verified(json.loads(path.read_bytes())) == deployment
    )


def test_write_json_refuses_nan_naming_the_field(tmp_path: Path) -> None:
    deployment = ready_deployment(policy=deployment_policy(threshold=math.nan))
    with pytest.raises(ValueError, match=r"policy\.threshold"):
        deployment.write_json(tmp_path / "deployment.json")
    assert not (tmp_path / "deployment.json").exists()


# --------------------------------------------------------------------------------------------
# Properties

_texts = st.text(max_size=10)
_unitish = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)


@st.composite
def _policies(draw: st.DrawFn) -> DeploymentPolicy:
    return DeploymentPolicy(
        threshold=draw(_unitish),
        abstention_threshold=draw(_unitish),
        escalation_threshold=draw(_unitish),
        require_citations=draw(st.booleans()),
        audit_log_uri=draw(_texts),
        evidence_pack_uri=draw(_texts),
        rollback_package_uri=draw(_texts),
        retention_days=draw(st.integers(-5, 4000)),
        telemetry_mode=draw(st.sampled_from([*sorted(TELEMETRY_MODES), "other"])),
    )


_SELECTIONS = [ready_selection(), ready_selection("low_latency"), _empty_selection()]


@st.composite
def _deployments(draw: st.DrawFn) -> CustomerDeploymentManifest:
    return build_deployment_manifest(
        deployment_id=draw(_texts),
        selection_report=draw(st.sampled_from(_SELECTIONS)),
        policy=draw(_policies()),
        environment=draw(st.sampled_from([*sorted(ENVIRONMENTS), "sandbox"])),
        package_uri=draw(_texts),
    )


@settings(max_examples=60, deadline=None)
@given(_deployments())
def test_round_trip_verify_and_readiness(deployment: CustomerDeploymentManifest) -> None:
    deployment.verify_hash()
    assert deployment.ready == (not deployment.findings)
    assert CustomerDeploymentManifest.from_dict(deployment.to_dict()) == deployment
    assert DeploymentPolicy.from_dict(deployment.policy.to_dict()) == deployment.policy
    trip = json.loads(json.dumps(deployment.to_dict()))
    assert CustomerDeploymentManifest.from_dict_verified(trip) == deployment


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_builder_is_deterministic_and_write_json_is_byte_identical(data: st.DataObject) -> None:
    arguments: dict[str, Any] = {
        "deployment_id": data.draw(_texts),
        "selection_report": data.draw(st.sampled_from(_SELECTIONS)),
        "policy": data.draw(_policies()),
        "environment": data.draw(st.sampled_from(sorted(ENVIRONMENTS))),
        "package_uri": data.draw(_texts),
    }
    first = build_deployment_manifest(**arguments)
    second = build_deployment_manifest(**arguments)
    assert first == second
    with TemporaryDirectory() as tmp:
        one = first.write_json(Path(tmp) / "1" / "deployment.json").read_bytes()
        two = second.write_json(Path(tmp) / "2" / "deployment.json").read_bytes()
    assert one == two == manifest_bytes(first.to_dict())
    assert hashlib.sha256(one).hexdigest() == hashlib.sha256(two).hexdigest()
