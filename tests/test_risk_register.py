"""Tests for customer_model_factory.risk_register (reference section 11, 17 item 9)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory._hashing import HashMismatchError
from customer_model_factory._jsonfile import manifest_bytes
from customer_model_factory.evidence_pack import CustomerEvidencePackManifest
from customer_model_factory.monitoring_manifest import CustomerMonitoringManifest
from customer_model_factory.risk_register import (
    ACCEPTED_STATUSES,
    CustomerRiskException,
    CustomerRiskRegister,
    build_risk_register,
)
from factory_fixtures import (
    CUSTOMER_ID,
    TENANT_ID,
    WORKSPACE_ID,
    FactoryChain,
    accepted_risk,
    forged_evidence_pack,
    json_trip,
    ready_chain,
    reference_hash,
    tamper_field,
)

CHAIN = ready_chain(with_risk=False)


def codes(records: tuple[dict[str, str], ...]) -> list[str]:
    """Return the ``code`` of each finding, in order."""
    return [record["code"] for record in records]


def risk(**overrides: Any) -> CustomerRiskException:
    """An accepted, correctly linked risk over CHAIN, with ``overrides`` applied."""
    return accepted_risk(CHAIN.evidence_pack, CHAIN.monitoring, **overrides)


def register(
    *risks: CustomerRiskException,
    generated_at: str = "2026-05-18",
    register_id: str = "cust-001-risk-register-20260518",
    evidence_pack: CustomerEvidencePackManifest | None = None,
    monitoring: CustomerMonitoringManifest | None = None,
) -> CustomerRiskRegister:
    """Build a register over CHAIN (or the given artefacts)."""
    return build_risk_register(
        register_id=register_id,
        evidence_pack=evidence_pack or CHAIN.evidence_pack,
        monitoring_manifest=monitoring or CHAIN.monitoring,
        risks=tuple(risks),
        generated_at=generated_at,
    )


def test_accepted_risk_with_everything_is_ready() -> None:
    built = register(risk())
    assert built.ready is True
    assert built.findings == ()
    assert built.evidence_hash == CHAIN.evidence_pack.evidence_hash
    assert built.monitoring_hash == CHAIN.monitoring.monitoring_hash
    assert (built.customer_id, built.deployment_id) == (CUSTOMER_ID, "cust-001-deployment-20260518")


def test_empty_register_is_ready() -> None:
    assert register().ready


def test_expired_accepted_risk() -> None:
    built = register(risk(expires_at="2026-05-01"))
    assert codes(built.findings) == ["accepted_risk_expired"]
    assert built.findings[0] == {
        "code": "accepted_risk_expired",
        "severity": "error",
        "message": "accepted risk is expired",
        "risk_id": "RISK-001",
    }


def test_missing_owner_and_controls() -> None:
    built = register(risk(owner=" ", compensating_controls=()))
    assert codes(built.findings) == [
        "accepted_risk_owner_missing",
        "accepted_risk_controls_missing",
    ]


def test_wrong_and_missing_linked_hashes() -> None:
    built = register(risk(linked_artifact_hashes={"evidence_hash": "0" * 64}))
    assert codes(built.findings) == [
        "risk_evidence_hash_mismatch",
        "risk_monitoring_hash_mismatch",
    ]


def test_every_register_level_code() -> None:
    forged_pack = forged_evidence_pack(
        CHAIN.evidence_pack,
        ready=False,
        customer_id="customer-beta",
        workspace_id="customer-beta-prod",
        tenant_id="customer-beta-tenant",
        deployment_id="deploy-999",
        evidence_hash="e" * 64,
    )
    not_ready_monitoring = replace(CHAIN.monitoring, ready=False)
    built = register(
        register_id=" ",
        generated_at="",
        evidence_pack=forged_pack,
        monitoring=not_ready_monitoring,
    )
    assert codes(built.findings) == [
        "register_id_missing",
        "generated_at_missing",
        "evidence_pack_not_ready",
        "monitoring_manifest_not_ready",
        "customer_boundary_mismatch",
        "workspace_boundary_mismatch",
        "tenant_boundary_mismatch",
        "deployment_boundary_mismatch",
        "evidence_hash_mismatch",
    ]
    assert built.findings[-1]["message"] == "monitoring evidence_hash differs from evidence pack"
    assert "risk_id" not in built.findings[0]


def test_rejected_and_mitigated_risks_need_nothing() -> None:
    bare: dict[str, Any] = {
        "owner": "",
        "expires_at": "",
        "compensating_controls": (),
        "linked_artifact_hashes": {},
    }
    built = register(
        risk(risk_id="R-1", status="rejected", **bare),
        risk(risk_id="R-2", status="mitigated", **bare),
    )
    assert built.findings == ()


def test_unknown_status() -> None:
    built = register(risk(status="waived", owner=""))
    assert codes(built.findings) == ["risk_status_unknown"]
    assert built.findings[0]["risk_id"] == "RISK-001"


def test_accepted_risk_with_blank_expiry() -> None:
    assert codes(register(risk(expires_at=" ")).findings) == ["accepted_risk_expiry_missing"]


def test_statuses() -> None:
    assert frozenset({"accepted", "mitigated", "rejected"}) == ACCEPTED_STATUSES


# --- new codes ---------------------------------------------------------------------------------


def test_generated_at_invalid() -> None:
    built = register(risk(), generated_at="18/05/2026")
    assert codes(built.findings) == ["generated_at_invalid"]
    assert built.findings[0] == {
        "code": "generated_at_invalid",
        "severity": "error",
        "message": "generated_at must be an RFC 3339 instant",
    }


def test_generated_at_invalid_takes_generated_at_missing_position() -> None:
    not_ready_monitoring = replace(CHAIN.monitoring, ready=False)
    built = register(register_id="", generated_at="soon", monitoring=not_ready_monitoring)
    assert codes(built.findings) == [
        "register_id_missing",
        "generated_at_invalid",
        "monitoring_manifest_not_ready",
    ]


def test_expiry_comparison_is_skipped_without_a_valid_generated_at() -> None:
    long_expired = risk(expires_at="2001-01-01")
    assert codes(register(long_expired, generated_at="yesterday").findings) == [
        "generated_at_invalid"
    ]
    assert codes(register(long_expired, generated_at=" ").findings) == ["generated_at_missing"]


def test_accepted_risk_expiry_invalid() -> None:
    built = register(risk(expires_at="end of Q3", owner=""))
    assert codes(built.findings) == ["accepted_risk_owner_missing", "accepted_risk_expiry_invalid"]
    assert built.findings[1]["message"] == "expires_at must be an RFC 3339 instant"
    # An unparseable expiry is reported even when generated_at is unparseable too.
    assert codes(register(risk(expires_at="2026-06-31"), generated_at="x").findings) == [
        "generated_at_invalid",
        "accepted_risk_expiry_invalid",
    ]


@pytest.mark.parametrize(
    ("generated_at", "expires_at", "expired"),
    [
        # Same instant spelled two ways: the reference's string comparison said "expired".
        ("2026-05-18T00:00:00Z", "2026-05-18", False),
        # 10:00+02:00 is 08:00Z, before 09:00Z: the reference's string comparison said "valid".
        ("2026-05-18T09:00:00Z", "2026-05-18T10:00:00+02:00", True),
        ("2026-05-18T18:45:00Z", "2026-05-18", True),
        ("2026-05-18", "2026-05-18T00:00:00Z", False),
        ("2026-05-18", "2026-05-17T23:59:59.999999Z", True),
        ("2026-05-18", "2026-05-18T01:00:00+01:00", False),  # equal instants: not expired
        ("2026-05-18", "2026-05-18T00:59:59+01:00", True),
    ],
)
def test_expiry_compares_instants(generated_at: str, expires_at: str, expired: bool) -> None:
    built = register(risk(expires_at=expires_at), generated_at=generated_at)
    assert codes(built.findings) == (["accepted_risk_expired"] if expired else [])


def test_date_only_expiry_differs_from_reference_string_comparison() -> None:
    # Pinned for docs/compatibility.md: the reference compares these strings lexicographically.
    assert "2026-05-18" < "2026-05-18T00:00:00Z"
    built = register(risk(expires_at="2026-05-18"), generated_at="2026-05-18T00:00:00Z")
    assert built.ready


def test_duplicate_risk_id_follows_that_risks_own_findings() -> None:
    built = register(
        risk(),
        risk(owner="", compensating_controls=()),
        risk(risk_id="RISK-002"),
        risk(status="mitigated"),
    )
    assert [(f["code"], f["risk_id"]) for f in built.findings] == [
        ("accepted_risk_owner_missing", "RISK-001"),
        ("accepted_risk_controls_missing", "RISK-001"),
        ("duplicate_risk_id", "RISK-001"),
        ("duplicate_risk_id", "RISK-001"),
    ]
    assert built.findings[2]["message"] == "risk_id already appears in the register"


def test_duplicate_of_unknown_status_risk() -> None:
    built = register(risk(status="waived"), risk(status="waived"))
    assert codes(built.findings) == [
        "risk_status_unknown",
        "risk_status_unknown",
        "duplicate_risk_id",
    ]


def test_golden_register_hash() -> None:
    entry = risk()
    built = register(entry, generated_at="2026-05-18")
    expected = reference_hash(
        {
            "register_id": "cust-001-risk-register-20260518",
            "customer_id": CUSTOMER_ID,
            "workspace_id": WORKSPACE_ID,
            "tenant_id": TENANT_ID,
            "deployment_id": "cust-001-deployment-20260518",
            "evidence_hash": CHAIN.evidence_pack.evidence_hash,
            "monitoring_hash": CHAIN.monitoring.monitoring_hash,
            "generated_at": "2026-05-18",
            "risks": [
                {
                    "risk_id": "RISK-001",
                    "status": "accepted",
                    "severity": "medium",
                    "owner": "risk-officer@cust-001.example",
                    "accepted_at": "2026-05-10",
                    "expires_at": "2026-06-18",
                    "compensating_controls": ["manual-review-queue", "weekly-drift-review"],
                    "linked_artifact_hashes": {
                        "evidence_hash": CHAIN.evidence_pack.evidence_hash,
                        "monitoring_hash": CHAIN.monitoring.monitoring_hash,
                    },
                    "rationale": "latency budget exceeded during regional failover drills",
                }
            ],
            "findings": [],
        }
    )
    assert built.register_hash == expected


def test_golden_register_hash_with_findings() -> None:
    built = register(risk(expires_at="2026-05-01"), register_id="")
    payload = {
        "register_id": "",
        "customer_id": CUSTOMER_ID,
        "workspace_id": WORKSPACE_ID,
        "tenant_id": TENANT_ID,
        "deployment_id": "cust-001-deployment-20260518",
        "evidence_hash": CHAIN.evidence_pack.evidence_hash,
        "monitoring_hash": CHAIN.monitoring.monitoring_hash,
        "generated_at": "2026-05-18",
        "risks": [built.risks[0].to_dict()],
        "findings": [
            {
                "code": "register_id_missing",
                "severity": "error",
                "message": "register_id is required",
            },
            {
                "code": "accepted_risk_expired",
                "severity": "error",
                "message": "accepted risk is expired",
                "risk_id": "RISK-001",
            },
        ],
    }
    assert built.register_hash == reference_hash(payload)


# --- properties --------------------------------------------------------------------------------

instant_text = st.one_of(
    st.sampled_from(["2026-05-18", "2026-05-18T18:45:00Z", "2026-06-18T00:00:00+02:00", ""]),
    st.text(max_size=12),
)
risk_strategy = st.builds(
    CustomerRiskException,
    risk_id=st.sampled_from(["RISK-001", "RISK-002", ""]),
    status=st.sampled_from(["accepted", "mitigated", "rejected", "waived"]),
    severity=st.sampled_from(["low", "critical"]),
    owner=st.text(max_size=6),
    accepted_at=instant_text,
    expires_at=instant_text,
    compensating_controls=st.lists(st.text(max_size=6), max_size=2).map(tuple),
    linked_artifact_hashes=st.dictionaries(
        st.sampled_from(["evidence_hash", "monitoring_hash", "other"]),
        st.sampled_from([CHAIN.evidence_pack.evidence_hash, CHAIN.monitoring.monitoring_hash, "x"]),
    ),
    rationale=st.text(max_size=10),
)


@dataclass(frozen=True)
class RegisterInputs:
    """Varied builder inputs for property tests."""

    register_id: str
    generated_at: str
    risks: tuple[CustomerRiskException, ...]


register_inputs = st.builds(
    RegisterInputs,
    register_id=st.text(max_size=8),
    generated_at=instant_text,
    risks=st.lists(risk_strategy, max_size=4).map(tuple),
)


def build_from(inputs: RegisterInputs) -> CustomerRiskRegister:
    """Build a register over CHAIN from property-test inputs."""
    return register(*inputs.risks, register_id=inputs.register_id, generated_at=inputs.generated_at)


@settings(max_examples=80, deadline=None)
@given(register_inputs)
def test_round_trip_and_verification(inputs: RegisterInputs) -> None:
    built = build_from(inputs)
    assert built == build_from(inputs)
    assert CustomerRiskRegister.from_dict(built.to_dict()) == built
    reloaded = CustomerRiskRegister.from_dict_verified(json_trip(built.to_dict()))
    assert reloaded == built
    built.verify_hash()
    assert built.ready == (not built.findings)
    risk_ids = [r.risk_id for r in inputs.risks]
    duplicates = sum(1 for i, rid in enumerate(risk_ids) if rid in risk_ids[:i])
    assert codes(built.findings).count("duplicate_risk_id") == duplicates


@settings(max_examples=60)
@given(risk_strategy)
def test_risk_round_trip(entry: CustomerRiskException) -> None:
    assert CustomerRiskException.from_dict(entry.to_dict()) == entry
    assert CustomerRiskException.from_dict(json_trip(entry.to_dict())) == entry


@settings(max_examples=20, deadline=None)
@given(register_inputs)
def test_write_json_is_byte_identical(tmp_path_factory: Any, inputs: RegisterInputs) -> None:
    directory = tmp_path_factory.mktemp("register")
    first = build_from(inputs).write_json(directory / "one.json")
    second = build_from(inputs).write_json(directory / "two.json")
    assert first.read_bytes() == second.read_bytes()
    assert (
        hashlib.sha256(first.read_bytes()).hexdigest()
        == hashlib.sha256(manifest_bytes(build_from(inputs).to_dict())).hexdigest()
    )


HASHED_FIELDS = [
    "register_id",
    "customer_id",
    "workspace_id",
    "tenant_id",
    "deployment_id",
    "evidence_hash",
    "monitoring_hash",
    "generated_at",
    "risks",
    "findings",
    "register_hash",
]
UNHASHED_FIELDS = ["schema_version", "ready"]


@pytest.mark.parametrize("field_name", HASHED_FIELDS)
def test_verify_hash_detects_tampering_of_hashed_fields(field_name: str) -> None:
    with pytest.raises(HashMismatchError, match=r"CustomerRiskRegister\.register_hash"):
        tamper_field(register(risk()), field_name).verify_hash()


@pytest.mark.parametrize("field_name", UNHASHED_FIELDS)
def test_verify_hash_detects_tampering_of_unhashed_fields(field_name: str) -> None:
    with pytest.raises(ValueError, match=rf"CustomerRiskRegister\.{field_name}") as info:
        tamper_field(register(risk()), field_name).verify_hash()
    assert not isinstance(info.value, HashMismatchError)


def test_every_field_is_covered_by_tamper_tests() -> None:
    assert {*HASHED_FIELDS, *UNHASHED_FIELDS} == {f.name for f in fields(CustomerRiskRegister)}


@pytest.mark.parametrize("field_name", [f.name for f in fields(CustomerRiskException)])
def test_editing_any_risk_field_is_detected(field_name: str) -> None:
    built = register(risk())
    edited = replace(built, risks=(tamper_field(built.risks[0], field_name),))
    with pytest.raises(HashMismatchError):
        edited.verify_hash()


def test_linked_hash_edit_in_place_is_detected() -> None:
    built = register(risk())
    built.risks[0].linked_artifact_hashes["evidence_hash"] = "0" * 64
    with pytest.raises(HashMismatchError):
        built.verify_hash()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("risks"), r"^risks: required field is missing"),
        (lambda p: p.update(risks={}), r"^risks: expected a list of objects, got dict"),
        (lambda p: p.update(risks=["RISK-001"]), r"^risks\[0\]: expected an object, got str"),
        (lambda p: p["risks"][0].pop("owner"), r"^risks\[0\]\.owner: required field is missing"),
        (lambda p: p["risks"][0].update(owner=None), r"^risks\[0\]\.owner: expected a string"),
        (lambda p: p["risks"][0].update(x=1), r"^risks\[0\]\.x: unknown field"),
        (
            lambda p: p["risks"][0].update(compensating_controls="review"),
            r"^risks\[0\]\.compensating_controls: expected a list",
        ),
        (
            lambda p: p["risks"][0]["linked_artifact_hashes"].update(evidence_hash=None),
            r"^risks\[0\]\.linked_artifact_hashes\.evidence_hash: expected a string",
        ),
        (lambda p: p.update(ready="true"), r"^ready: expected true or false"),
        (lambda p: p.update(findings=[{"code": None}]), r"^findings\[0\]\.code"),
        (lambda p: p.update(extra=None), r"^extra: unknown field"),
    ],
)
def test_from_dict_is_strict(mutate: Any, message: str) -> None:
    payload = json_trip(register(risk()).to_dict())
    mutate(payload)
    with pytest.raises(ValueError, match=message):
        CustomerRiskRegister.from_dict(payload)


def test_risk_from_dict_names_fields_without_prefix() -> None:
    payload = risk().to_dict()
    payload["status"] = 1
    with pytest.raises(ValueError, match=r"^status: expected a string"):
        CustomerRiskException.from_dict(payload)


def test_chain_fixture_register_is_ready() -> None:
    chain: FactoryChain = ready_chain()
    assert chain.risk_register.ready
    chain.risk_register.verify_hash()
