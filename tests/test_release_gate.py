"""Tests for customer_model_factory.release_gate (reference 13.1, 13.4, 13.5, 17 item 10)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory._hashing import HashMismatchError
from customer_model_factory._jsonfile import manifest_bytes
from customer_model_factory.release_gate import (
    CustomerReleaseGateManifest,
    build_release_gate_manifest,
)
from customer_model_factory.risk_register import build_risk_register
from factory_fixtures import (
    CUSTOMER_ID,
    GENERATED_AT,
    TENANT_ID,
    WORKSPACE_ID,
    FactoryChain,
    forged_evidence_pack,
    json_trip,
    monitoring_metrics,
    ready_chain,
    ready_monitoring_manifest,
    ready_release_gate,
    ready_runtime_package,
    reference_hash,
    tamper_field,
)

CHAIN = ready_chain()


def codes(records: tuple[dict[str, str], ...]) -> list[str]:
    """Return the ``code`` of each blocker, in order."""
    return [record["code"] for record in records]


def test_all_ready_gate_promotes() -> None:
    gate = ready_release_gate(CHAIN)
    assert gate.blockers == ()
    assert gate.ready is True
    assert gate.promotion_allowed is True
    assert gate.artifact_hashes == {
        "runtime_hash": CHAIN.runtime.runtime_hash,
        "evidence_hash": CHAIN.evidence_pack.evidence_hash,
        "monitoring_hash": CHAIN.monitoring.monitoring_hash,
        "risk_register_hash": CHAIN.risk_register.register_hash,
    }
    assert (gate.customer_id, gate.workspace_id, gate.tenant_id, gate.deployment_id) == (
        CUSTOMER_ID,
        WORKSPACE_ID,
        TENANT_ID,
        "cust-001-deployment-20260518",
    )
    assert gate.enterprise_blocking_debt_ids == ()
    assert gate.schema_version == "1.0.0"


def test_placeholder_hashes_promote_as_in_the_reference_fixture() -> None:
    # The gate compares stored strings only; recomputing hashes is the chain verifier's job.
    runtime = replace(CHAIN.runtime, runtime_hash="a" * 64, evidence_hash="b" * 64)
    pack = replace(CHAIN.evidence_pack, evidence_hash="b" * 64)
    monitoring = replace(
        CHAIN.monitoring,
        evidence_hash="b" * 64,
        monitoring_hash="c" * 64,
        package_version={**CHAIN.monitoring.package_version, "runtime_hash": "a" * 64},
    )
    register = replace(
        CHAIN.risk_register,
        evidence_hash="b" * 64,
        monitoring_hash="c" * 64,
        register_hash="d" * 64,
    )
    gate = ready_release_gate(
        CHAIN,
        runtime_package=runtime,
        evidence_pack=pack,
        monitoring_manifest=monitoring,
        risk_register=register,
    )
    assert gate.promotion_allowed
    assert gate.artifact_hashes == {
        "runtime_hash": "a" * 64,
        "evidence_hash": "b" * 64,
        "monitoring_hash": "c" * 64,
        "risk_register_hash": "d" * 64,
    }


def test_enterprise_debt_blocks_with_debt_ids() -> None:
    gate = ready_release_gate(
        CHAIN, enterprise_blocking_debt_ids=("TRUST-DEBT-0002", "TRUST-DEBT-0003")
    )
    assert gate.blockers == (
        {
            "code": "enterprise_trust_not_ready",
            "severity": "error",
            "message": "enterprise-trust readiness has blocking debt",
            "debt_ids": "TRUST-DEBT-0002,TRUST-DEBT-0003",
        },
    )
    assert gate.promotion_allowed is False
    assert gate.ready is False


def test_enterprise_not_ready_without_debt_omits_debt_ids() -> None:
    gate = ready_release_gate(CHAIN, enterprise_ready=False)
    assert gate.blockers == (
        {
            "code": "enterprise_trust_not_ready",
            "severity": "error",
            "message": "enterprise-trust readiness has blocking debt",
        },
    )


def test_not_ready_risk_register_blocks() -> None:
    register = build_risk_register(
        register_id="",
        evidence_pack=CHAIN.evidence_pack,
        monitoring_manifest=CHAIN.monitoring,
        risks=(),
        generated_at="2026-05-18",
    )
    gate = ready_release_gate(CHAIN, risk_register=register)
    assert codes(gate.blockers) == ["risk_register_not_ready"]


def test_blank_ids_and_four_not_ready_artefacts() -> None:
    gate = ready_release_gate(
        CHAIN,
        release_id=" ",
        generated_at="",
        runtime_package=replace(CHAIN.runtime, ready=False),
        evidence_pack=replace(CHAIN.evidence_pack, ready=False),
        monitoring_manifest=replace(CHAIN.monitoring, ready=False),
        risk_register=replace(CHAIN.risk_register, ready=False),
    )
    assert codes(gate.blockers) == [
        "release_id_missing",
        "generated_at_missing",
        "runtime_package_not_ready",
        "evidence_pack_not_ready",
        "monitoring_manifest_not_ready",
        "risk_register_not_ready",
    ]


def test_boundary_and_hash_mismatches() -> None:
    other: dict[str, Any] = {
        "customer_id": "customer-beta",
        "workspace_id": "customer-beta-prod",
        "tenant_id": "customer-beta-tenant",
        "deployment_id": "deploy-999",
    }
    monitoring = replace(CHAIN.monitoring, evidence_hash="1" * 64)
    register = replace(
        CHAIN.risk_register, **other, evidence_hash="2" * 64, monitoring_hash="3" * 64
    )
    runtime = replace(CHAIN.runtime, evidence_hash="4" * 64, runtime_hash="5" * 64)
    gate = ready_release_gate(
        CHAIN, runtime_package=runtime, monitoring_manifest=monitoring, risk_register=register
    )
    assert codes(gate.blockers) == [
        "customer_boundary_mismatch",
        "workspace_boundary_mismatch",
        "tenant_boundary_mismatch",
        "deployment_boundary_mismatch",
        "runtime_evidence_hash_mismatch",
        "monitoring_evidence_hash_mismatch",
        "risk_evidence_hash_mismatch",
        "risk_monitoring_hash_mismatch",
        "monitoring_runtime_hash_mismatch",
    ]
    assert gate.blockers[2]["message"] == "tenant_id differs between release artefacts"
    # Identity is the runtime's, whatever the other artefacts claim.
    assert gate.customer_id == CUSTOMER_ID


def test_single_forged_evidence_pack_identity() -> None:
    pack = forged_evidence_pack(CHAIN.evidence_pack, workspace_id="ws-guardrails-dev")
    assert codes(ready_release_gate(CHAIN, evidence_pack=pack).blockers) == [
        "workspace_boundary_mismatch"
    ]


def test_monitoring_of_another_runtime_build_is_caught() -> None:
    # Same ids and evidence hash, different runtime build: the reference promoted this.
    rebuilt = ready_runtime_package(CHAIN.deployment, CHAIN.evidence_pack, runtime_mode="on_prem")
    assert rebuilt.runtime_hash != CHAIN.runtime.runtime_hash
    gate = ready_release_gate(CHAIN, runtime_package=rebuilt)
    assert gate.blockers == (
        {
            "code": "monitoring_runtime_hash_mismatch",
            "severity": "error",
            "message": "monitoring runtime hash differs from runtime package",
        },
    )


def test_monitoring_runtime_hash_mismatch_is_last() -> None:
    monitoring = replace(
        CHAIN.monitoring, package_version={}, monitoring_hash="9" * 64, ready=False
    )
    gate = ready_release_gate(CHAIN, monitoring_manifest=monitoring, release_id="")
    assert codes(gate.blockers) == [
        "release_id_missing",
        "monitoring_manifest_not_ready",
        "risk_monitoring_hash_mismatch",
        "monitoring_runtime_hash_mismatch",
    ]


def test_monitoring_review_required_still_promotes() -> None:
    # Reference behaviour kept: recommendations never block (documented weak point 19.6).
    metrics = monitoring_metrics(false_negative_incident_count=2)
    monitoring = ready_monitoring_manifest(CHAIN.runtime, metrics=metrics)
    assert monitoring.health_status == "review_required"
    register = build_risk_register(
        register_id="cust-001-risk-register-20260518",
        evidence_pack=CHAIN.evidence_pack,
        monitoring_manifest=monitoring,
        risks=(),
        generated_at="2026-05-18",
    )
    gate = ready_release_gate(CHAIN, monitoring_manifest=monitoring, risk_register=register)
    assert gate.promotion_allowed


@pytest.mark.parametrize("flag", ["false", "true", 0, 1, None])
def test_enterprise_ready_must_be_a_real_bool(flag: Any) -> None:
    with pytest.raises(TypeError, match=r"^enterprise_ready: expected a bool"):
        ready_release_gate(CHAIN, enterprise_ready=flag)


@pytest.mark.parametrize(
    ("debt_ids", "message"),
    [
        ("TRUST-DEBT-0002", r"^enterprise_blocking_debt_ids: expected a tuple of str, got str"),
        (("TRUST-DEBT-0002", 3), r"^enterprise_blocking_debt_ids\[1\]: expected a str, got int"),
        (None, r"^enterprise_blocking_debt_ids: expected a tuple of str, got NoneType"),
    ],
)
def test_debt_ids_must_be_strings(debt_ids: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ready_release_gate(CHAIN, enterprise_blocking_debt_ids=debt_ids)


def test_debt_ids_list_is_stored_as_tuple() -> None:
    gate = ready_release_gate(CHAIN, enterprise_blocking_debt_ids=["TRUST-DEBT-0002"])
    assert gate.enterprise_blocking_debt_ids == ("TRUST-DEBT-0002",)
    assert CustomerReleaseGateManifest.from_dict(json_trip(gate.to_dict())) == gate


def test_golden_release_hash() -> None:
    gate = ready_release_gate(CHAIN)
    expected = reference_hash(
        {
            "release_id": "cust-001-release-20260518",
            "customer_id": CUSTOMER_ID,
            "workspace_id": WORKSPACE_ID,
            "tenant_id": TENANT_ID,
            "deployment_id": "cust-001-deployment-20260518",
            "generated_at": GENERATED_AT,
            "enterprise_ready": True,
            "enterprise_blocking_debt_ids": [],
            "artifact_hashes": {
                "runtime_hash": CHAIN.runtime.runtime_hash,
                "evidence_hash": CHAIN.evidence_pack.evidence_hash,
                "monitoring_hash": CHAIN.monitoring.monitoring_hash,
                "risk_register_hash": CHAIN.risk_register.register_hash,
            },
            "blockers": [],
        }
    )
    assert gate.release_hash == expected


def test_golden_release_hash_with_blockers() -> None:
    gate = ready_release_gate(CHAIN, enterprise_ready=False, enterprise_blocking_debt_ids=("D-1",))
    payload = {
        "release_id": "cust-001-release-20260518",
        "customer_id": CUSTOMER_ID,
        "workspace_id": WORKSPACE_ID,
        "tenant_id": TENANT_ID,
        "deployment_id": "cust-001-deployment-20260518",
        "generated_at": GENERATED_AT,
        "enterprise_ready": False,
        "enterprise_blocking_debt_ids": ["D-1"],
        "artifact_hashes": gate.artifact_hashes,
        "blockers": [
            {
                "code": "enterprise_trust_not_ready",
                "severity": "error",
                "message": "enterprise-trust readiness has blocking debt",
                "debt_ids": "D-1",
            }
        ],
    }
    assert gate.release_hash == reference_hash(payload)


# --- properties --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateInputs:
    """Varied builder inputs for property tests."""

    release_id: str
    generated_at: str
    enterprise_ready: bool
    debt_ids: tuple[str, ...]
    runtime_ready: bool


gate_inputs = st.builds(
    GateInputs,
    release_id=st.text(max_size=10),
    generated_at=st.text(max_size=12),
    enterprise_ready=st.booleans(),
    debt_ids=st.lists(st.text(max_size=8), max_size=3).map(tuple),
    runtime_ready=st.booleans(),
)


def build_from(inputs: GateInputs, chain: FactoryChain = CHAIN) -> CustomerReleaseGateManifest:
    """Build a gate over ``chain`` from property-test inputs."""
    return build_release_gate_manifest(
        release_id=inputs.release_id,
        enterprise_ready=inputs.enterprise_ready,
        enterprise_blocking_debt_ids=inputs.debt_ids,
        runtime_package=replace(chain.runtime, ready=inputs.runtime_ready),
        evidence_pack=chain.evidence_pack,
        monitoring_manifest=chain.monitoring,
        risk_register=chain.risk_register,
        generated_at=inputs.generated_at,
    )


@settings(max_examples=80, deadline=None)
@given(gate_inputs)
def test_round_trip_and_verification(inputs: GateInputs) -> None:
    gate = build_from(inputs)
    assert gate == build_from(inputs)
    assert CustomerReleaseGateManifest.from_dict(gate.to_dict()) == gate
    reloaded = CustomerReleaseGateManifest.from_dict_verified(json_trip(gate.to_dict()))
    assert reloaded == gate
    gate.verify_hash()
    assert gate.ready == gate.promotion_allowed == (not gate.blockers)
    enterprise = [b for b in gate.blockers if b["code"] == "enterprise_trust_not_ready"]
    assert bool(enterprise) == (not inputs.enterprise_ready or bool(inputs.debt_ids))
    if enterprise:
        assert enterprise[0].get("debt_ids", "") == ",".join(inputs.debt_ids)


@settings(max_examples=20, deadline=None)
@given(gate_inputs)
def test_write_json_is_byte_identical(tmp_path_factory: Any, inputs: GateInputs) -> None:
    directory = tmp_path_factory.mktemp("gate")
    first = build_from(inputs).write_json(directory / "one.json")
    second = build_from(inputs).write_json(directory / "two.json")
    assert first.read_bytes() == second.read_bytes()
    assert (
        hashlib.sha256(first.read_bytes()).hexdigest()
        == hashlib.sha256(manifest_bytes(build_from(inputs).to_dict())).hexdigest()
    )


HASHED_FIELDS = [
    "release_id",
    "customer_id",
    "workspace_id",
    "tenant_id",
    "deployment_id",
    "generated_at",
    "enterprise_ready",
    "enterprise_blocking_debt_ids",
    "artifact_hashes",
    "blockers",
    "release_hash",
]
UNHASHED_FIELDS = ["schema_version", "ready", "promotion_allowed"]


@pytest.mark.parametrize("field_name", HASHED_FIELDS)
def test_verify_hash_detects_tampering_of_hashed_fields(field_name: str) -> None:
    with pytest.raises(HashMismatchError, match=r"CustomerReleaseGateManifest\.release_hash"):
        tamper_field(ready_release_gate(CHAIN), field_name).verify_hash()


@pytest.mark.parametrize("field_name", UNHASHED_FIELDS)
def test_verify_hash_detects_tampering_of_unhashed_fields(field_name: str) -> None:
    with pytest.raises(ValueError, match=rf"CustomerReleaseGateManifest\.{field_name}") as info:
        tamper_field(ready_release_gate(CHAIN), field_name).verify_hash()
    assert not isinstance(info.value, HashMismatchError)


def test_every_field_is_covered_by_tamper_tests() -> None:
    assert {*HASHED_FIELDS, *UNHASHED_FIELDS} == {
        f.name for f in fields(CustomerReleaseGateManifest)
    }


def test_promotion_flag_flipped_on_disk_is_rejected() -> None:
    payload = ready_release_gate(CHAIN, release_id="").to_dict()
    payload["ready"] = payload["promotion_allowed"] = True
    payload["blockers"] = []
    with pytest.raises(HashMismatchError):
        CustomerReleaseGateManifest.from_dict_verified(payload)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("blockers"), r"^blockers: required field is missing"),
        (lambda p: p.update(promotion_allowed="true"), r"^promotion_allowed: expected true"),
        (lambda p: p.update(enterprise_ready=1), r"^enterprise_ready: expected true or false"),
        (
            lambda p: p.update(enterprise_blocking_debt_ids="D-1"),
            r"^enterprise_blocking_debt_ids: expected a list of strings",
        ),
        (lambda p: p.update(artifact_hashes={"runtime_hash": None}), r"^artifact_hashes\."),
        (lambda p: p.update(observability_operations_evidence={}), r"unknown field"),
        (lambda p: p.update(release_hash=None), r"^release_hash: expected a string"),
    ],
)
def test_from_dict_is_strict(mutate: Any, message: str) -> None:
    payload = json_trip(ready_release_gate(CHAIN).to_dict())
    mutate(payload)
    with pytest.raises(ValueError, match=message):
        CustomerReleaseGateManifest.from_dict(payload)


def test_to_dict_shape() -> None:
    data = ready_release_gate(CHAIN).to_dict()
    assert list(data) == [f.name for f in fields(CustomerReleaseGateManifest)]
    assert list(data["artifact_hashes"]) == sorted(data["artifact_hashes"])
    assert data["enterprise_blocking_debt_ids"] == []
