"""Tests for customer_model_factory.runtime_package (reference section 9, section 17 item 7)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory._hashing import HashMismatchError
from customer_model_factory._jsonfile import NonFiniteNumberError, manifest_bytes
from customer_model_factory.evidence_pack import CustomerEvidencePackManifest
from customer_model_factory.runtime_package import RUNTIME_MODES, CustomerRuntimePackage
from factory_fixtures import (
    CUSTOMER_ID,
    EVIDENCE_PACK_URI,
    TENANT_ID,
    WORKSPACE_ID,
    deployment_policy,
    forged_evidence_pack,
    json_trip,
    ready_deployment,
    ready_evidence_pack,
    ready_runtime_package,
    reference_hash,
    sector_mapping,
    tamper_field,
)

DEPLOYMENT_ID = "cust-001-deployment-20260518"
MODEL_URI = "gs://customer-artifacts/cust-001/models/candidate-balanced"

CONFIG_KEYS = sorted(
    [
        "customer_id",
        "workspace_id",
        "tenant_id",
        "deployment_id",
        "deployment_hash",
        "evidence_hash",
        "selected_benchmark_id",
        "selected_model_artifact_uri",
        "threshold",
        "abstention_threshold",
        "escalation_threshold",
        "require_citations",
        "audit_log_uri",
        "evidence_pack_uri",
        "rollback_package_uri",
        "retention_days",
        "telemetry_mode",
        "external_callbacks_allowed",
        "callback_endpoints",
    ]
)


def codes(records: tuple[dict[str, str], ...]) -> list[str]:
    """Return the ``code`` of each finding, in order."""
    return [record["code"] for record in records]


def test_ready_offline_private_package() -> None:
    deployment = ready_deployment()
    evidence_pack = ready_evidence_pack(deployment_manifest=deployment)
    package = ready_runtime_package(deployment, evidence_pack)
    assert package.ready is True
    assert package.findings == ()
    assert package.schema_version == "1.0.0"
    assert (package.customer_id, package.workspace_id, package.tenant_id) == (
        CUSTOMER_ID,
        WORKSPACE_ID,
        TENANT_ID,
    )
    assert package.deployment_id == DEPLOYMENT_ID
    assert package.evidence_hash == evidence_pack.evidence_hash
    config = package.runtime_config
    assert sorted(config) == CONFIG_KEYS
    assert config["tenant_id"] == TENANT_ID
    assert config["selected_model_artifact_uri"] == MODEL_URI
    assert config["telemetry_mode"] == "customer_controlled"
    assert config["external_callbacks_allowed"] is False
    assert config["callback_endpoints"] == []
    assert config["deployment_hash"] == deployment.deployment_hash
    assert config["threshold"] == 0.72


def test_approved_callbacks_are_copied_into_config() -> None:
    deployment = ready_deployment()
    evidence_pack = ready_evidence_pack(
        deployment_manifest=deployment,
        external_callbacks_allowed=True,
        callback_endpoints=("https://hooks.cust-001.example/decisions",),
    )
    package = ready_runtime_package(deployment, evidence_pack)
    assert package.ready
    assert package.runtime_config["external_callbacks_allowed"] is True
    assert package.runtime_config["callback_endpoints"] == [
        "https://hooks.cust-001.example/decisions"
    ]


def test_mapping_uri_mismatch_makes_evidence_pack_not_ready() -> None:
    deployment = ready_deployment()
    elsewhere = sector_mapping(evidence_pack_uri="gs://elsewhere/evidence")
    evidence_pack = ready_evidence_pack(
        deployment_manifest=deployment, regulation_mapping=elsewhere
    )
    assert not evidence_pack.ready
    package = ready_runtime_package(deployment, evidence_pack)
    assert codes(package.findings) == ["evidence_pack_not_ready"]
    assert package.ready is False


def test_forged_tenant_gives_tenant_boundary_mismatch() -> None:
    deployment = ready_deployment()
    pack = ready_evidence_pack(deployment_manifest=deployment)
    forged = forged_evidence_pack(pack, tenant_id="other-tenant")
    package = ready_runtime_package(deployment, forged)
    assert codes(package.findings) == ["tenant_boundary_mismatch"]
    assert package.findings[0] == {
        "code": "tenant_boundary_mismatch",
        "severity": "error",
        "message": "tenant_id differs between artefacts",
    }


def test_all_boundaries_blank_id_and_unknown_mode() -> None:
    deployment = ready_deployment()
    forged = forged_evidence_pack(
        ready_evidence_pack(deployment_manifest=deployment),
        customer_id="customer-beta",
        workspace_id="customer-beta-prod",
        tenant_id="customer-beta-tenant",
        deployment_id="deploy-999",
    )
    package = ready_runtime_package(deployment, forged, runtime_id="  ", runtime_mode="public_saas")
    assert codes(package.findings) == [
        "runtime_id_missing",
        "runtime_mode_unknown",
        "customer_boundary_mismatch",
        "workspace_boundary_mismatch",
        "tenant_boundary_mismatch",
        "deployment_boundary_mismatch",
    ]
    assert package.findings[1]["message"] == "runtime_mode 'public_saas' is unsupported"
    # Identity always comes from the deployment, never from the evidence pack.
    assert package.customer_id == CUSTOMER_ID


def test_not_ready_deployment_and_pack() -> None:
    deployment = ready_deployment(deployment_id=" ")
    assert not deployment.ready
    evidence_pack = ready_evidence_pack(deployment_manifest=deployment)
    package = ready_runtime_package(deployment, evidence_pack)
    assert codes(package.findings) == ["deployment_not_ready", "evidence_pack_not_ready"]


def test_evidence_pack_of_another_deployment_revision_is_caught() -> None:
    # Same deployment id, different content: the reference accepted this pairing.
    old_revision = ready_deployment(package_uri="gs://customer-artifacts/cust-001/releases/rc1.tar")
    current = ready_deployment()
    assert old_revision.deployment_id == current.deployment_id
    package = ready_runtime_package(current, ready_evidence_pack(deployment_manifest=old_revision))
    assert codes(package.findings) == ["evidence_deployment_hash_mismatch"]
    assert package.findings[0]["message"] == (
        "evidence pack deployment_hash differs from deployment manifest"
    )


def test_evidence_deployment_hash_mismatch_comes_after_reference_findings() -> None:
    deployment = ready_deployment()
    pack = ready_evidence_pack(deployment_manifest=deployment)
    artefacts = {key: value for key, value in pack.artefacts.items() if key != "deployment_hash"}
    forged = forged_evidence_pack(pack, artefacts=artefacts, tenant_id="other-tenant")
    package = ready_runtime_package(deployment, forged, runtime_mode="cloud")
    assert codes(package.findings) == [
        "runtime_mode_unknown",
        "tenant_boundary_mismatch",
        "evidence_deployment_hash_mismatch",
    ]


def test_runtime_modes() -> None:
    assert frozenset({"offline_private", "customer_cloud_private", "on_prem"}) == RUNTIME_MODES
    for mode in sorted(RUNTIME_MODES):
        assert ready_runtime_package(runtime_mode=mode).ready


def test_golden_runtime_hash() -> None:
    deployment = ready_deployment()
    evidence_pack = ready_evidence_pack(deployment_manifest=deployment)
    package = ready_runtime_package(deployment, evidence_pack)
    config = {
        "customer_id": CUSTOMER_ID,
        "workspace_id": WORKSPACE_ID,
        "tenant_id": TENANT_ID,
        "deployment_id": DEPLOYMENT_ID,
        "deployment_hash": deployment.deployment_hash,
        "evidence_hash": evidence_pack.evidence_hash,
        "selected_benchmark_id": "candidate-balanced",
        "selected_model_artifact_uri": MODEL_URI,
        "threshold": 0.72,
        "abstention_threshold": 0.58,
        "escalation_threshold": 0.40,
        "require_citations": True,
        "audit_log_uri": "gs://customer-artifacts/cust-001/audit/decisions.jsonl",
        "evidence_pack_uri": EVIDENCE_PACK_URI,
        "rollback_package_uri": "gs://customer-artifacts/cust-001/releases/previous.tar",
        "retention_days": 365,
        "telemetry_mode": "customer_controlled",
        "external_callbacks_allowed": False,
        "callback_endpoints": [],
    }
    expected = reference_hash(
        {
            "runtime_id": "cust-001-runtime-20260518",
            "customer_id": CUSTOMER_ID,
            "workspace_id": WORKSPACE_ID,
            "tenant_id": TENANT_ID,
            "deployment_id": DEPLOYMENT_ID,
            "evidence_hash": evidence_pack.evidence_hash,
            "runtime_mode": "offline_private",
            "runtime_config": config,
            "findings": [],
        }
    )
    assert package.runtime_hash == expected
    assert package.runtime_config == config


def test_golden_runtime_hash_with_findings() -> None:
    deployment = ready_deployment()
    pack = ready_evidence_pack(deployment_manifest=deployment)
    forged = forged_evidence_pack(pack, tenant_id="t2")
    package = ready_runtime_package(deployment, forged, runtime_id="")
    payload = {
        "runtime_id": "",
        "customer_id": CUSTOMER_ID,
        "workspace_id": WORKSPACE_ID,
        "tenant_id": TENANT_ID,
        "deployment_id": DEPLOYMENT_ID,
        "evidence_hash": forged.evidence_hash,
        "runtime_mode": "offline_private",
        "runtime_config": package.runtime_config,
        "findings": [
            {
                "code": "runtime_id_missing",
                "severity": "error",
                "message": "runtime_id is required",
            },
            {
                "code": "tenant_boundary_mismatch",
                "severity": "error",
                "message": "tenant_id differs between artefacts",
            },
        ],
    }
    assert package.runtime_hash == reference_hash(payload)


def test_builder_is_deterministic() -> None:
    first, second = ready_runtime_package(), ready_runtime_package()
    assert first == second
    assert first.runtime_hash == second.runtime_hash
    assert first.runtime_config is not second.runtime_config


def test_to_dict_is_a_copy() -> None:
    package = ready_runtime_package()
    data = package.to_dict()
    data["runtime_config"]["callback_endpoints"].append("https://evil.example")
    data["runtime_config"]["tenant_id"] = "other"
    package.verify_hash()


@dataclass(frozen=True)
class RuntimeInputs:
    """Varied builder inputs for property tests."""

    runtime_id: str
    runtime_mode: str
    tenant_override: str | None
    callbacks: tuple[str, ...]
    threshold: float


runtime_inputs = st.builds(
    RuntimeInputs,
    runtime_id=st.text(max_size=12),
    runtime_mode=st.one_of(st.sampled_from(sorted(RUNTIME_MODES)), st.text(max_size=8)),
    tenant_override=st.one_of(st.none(), st.text(max_size=8)),
    callbacks=st.lists(st.text(max_size=10), max_size=3).map(tuple),
    threshold=st.one_of(
        st.floats(min_value=0.0, max_value=1.0), st.integers(min_value=0, max_value=1)
    ),
)


def build_from(inputs: RuntimeInputs) -> CustomerRuntimePackage:
    """Build a runtime package from property-test inputs."""
    deployment = ready_deployment(policy=deployment_policy(threshold=inputs.threshold))
    pack = ready_evidence_pack(
        deployment_manifest=deployment,
        external_callbacks_allowed=True,
        callback_endpoints=inputs.callbacks,
    )
    if inputs.tenant_override is not None:
        pack = forged_evidence_pack(pack, tenant_id=inputs.tenant_override)
    return ready_runtime_package(
        deployment, pack, runtime_id=inputs.runtime_id, runtime_mode=inputs.runtime_mode
    )


@settings(max_examples=40, deadline=None)
@given(runtime_inputs)
def test_round_trip_and_verification(inputs: RuntimeInputs) -> None:
    package = build_from(inputs)
    assert package == build_from(inputs)
    assert CustomerRuntimePackage.from_dict(package.to_dict()) == package
    reloaded = CustomerRuntimePackage.from_dict_verified(json_trip(package.to_dict()))
    assert reloaded == package
    assert reloaded.runtime_hash == package.runtime_hash
    package.verify_hash()
    assert package.ready == (not package.findings)


@settings(max_examples=20, deadline=None)
@given(runtime_inputs)
def test_write_json_is_byte_identical(tmp_path_factory: Any, inputs: RuntimeInputs) -> None:
    directory = tmp_path_factory.mktemp("runtime")
    first = build_from(inputs).write_json(directory / "a" / "runtime.json")
    second = build_from(inputs).write_json(directory / "b" / "runtime.json")
    assert first.read_bytes() == second.read_bytes()
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert digest == hashlib.sha256(manifest_bytes(build_from(inputs).to_dict())).hexdigest()
    assert json.loads(first.read_bytes()) == build_from(inputs).to_dict()


def test_write_json_refuses_nan_naming_the_field(tmp_path: Path) -> None:
    package = ready_runtime_package()
    package.runtime_config["threshold"] = math.nan
    with pytest.raises(NonFiniteNumberError, match=r"runtime_config\.threshold"):
        package.write_json(tmp_path / "runtime.json")
    assert not (tmp_path / "runtime.json").exists()


HASHED_FIELDS = [
    "runtime_id",
    "customer_id",
    "workspace_id",
    "tenant_id",
    "deployment_id",
    "evidence_hash",
    "runtime_mode",
    "runtime_config",
    "findings",
    "runtime_hash",
]


@pytest.mark.parametrize("field_name", HASHED_FIELDS)
def test_verify_hash_detects_tampering_of_hashed_fields(field_name: str) -> None:
    package = ready_runtime_package()
    with pytest.raises(HashMismatchError, match=r"CustomerRuntimePackage\.runtime_hash"):
        tamper_field(package, field_name).verify_hash()


@pytest.mark.parametrize("field_name", ["ready", "schema_version"])
def test_verify_hash_detects_tampering_of_unhashed_fields(field_name: str) -> None:
    package = ready_runtime_package()
    with pytest.raises(ValueError, match=rf"CustomerRuntimePackage\.{field_name}") as info:
        tamper_field(package, field_name).verify_hash()
    assert not isinstance(info.value, HashMismatchError)


def test_every_field_is_covered_by_tamper_tests() -> None:
    covered = {*HASHED_FIELDS, "ready", "schema_version"}
    assert covered == {f.name for f in fields(CustomerRuntimePackage)}


def test_in_place_config_mutation_stays_possible_and_is_detected() -> None:
    package = ready_runtime_package()
    package.runtime_config["tenant_id"] = "forged-tenant"
    assert package.runtime_config["tenant_id"] == "forged-tenant"
    with pytest.raises(HashMismatchError):
        package.verify_hash()
    with pytest.raises(HashMismatchError):
        CustomerRuntimePackage.from_dict_verified(package.to_dict())


def test_ready_flag_lie_is_rejected_on_load() -> None:
    deployment = ready_deployment()
    forged = forged_evidence_pack(ready_evidence_pack(deployment_manifest=deployment), tenant_id="")
    payload = ready_runtime_package(deployment, forged).to_dict()
    payload["ready"] = True
    CustomerRuntimePackage.from_dict(payload)  # parses: from_dict alone does not verify
    with pytest.raises(ValueError, match=r"CustomerRuntimePackage\.ready"):
        CustomerRuntimePackage.from_dict_verified(payload)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("runtime_config"), r"^runtime_config: required field is missing"),
        (lambda p: p.update(extra="x"), r"^extra: unknown field"),
        (lambda p: p.update(ready="false"), r"^ready: expected true or false"),
        (lambda p: p.update(ready=0), r"^ready: expected true or false"),
        (lambda p: p.update(runtime_id=None), r"^runtime_id: expected a string, got null"),
        (lambda p: p.update(runtime_config=[]), r"^runtime_config: expected an object"),
        (lambda p: p.update(findings={}), r"^findings: expected a list"),
        (lambda p: p.update(findings=[{"code": 1}]), r"^findings\[0\]\.code: expected a string"),
        (lambda p: p.update(runtime_hash=7), r"^runtime_hash: expected a string"),
    ],
)
def test_from_dict_is_strict(mutate: Any, message: str) -> None:
    payload = ready_runtime_package().to_dict()
    mutate(payload)
    with pytest.raises(ValueError, match=message):
        CustomerRuntimePackage.from_dict(payload)


def test_from_dict_does_not_share_nested_config_with_payload() -> None:
    payload = ready_runtime_package().to_dict()
    package = CustomerRuntimePackage.from_dict(payload)
    payload["runtime_config"]["callback_endpoints"].append("https://evil.example")
    package.verify_hash()


def test_evidence_pack_from_dict_delegates() -> None:
    pack = ready_evidence_pack()
    assert CustomerRuntimePackage.evidence_pack_from_dict(pack.to_dict()) == pack
    assert isinstance(
        CustomerRuntimePackage.evidence_pack_from_dict(json_trip(pack.to_dict())),
        CustomerEvidencePackManifest,
    )
    bad = pack.to_dict()
    bad["external_callbacks_allowed"] = "false"
    with pytest.raises(ValueError, match="external_callbacks_allowed"):
        CustomerRuntimePackage.evidence_pack_from_dict(bad)
