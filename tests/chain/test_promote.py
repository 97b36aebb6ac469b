"""Tests for promote_release and release_status on real ledgers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import chain_fixtures as cf
import pytest
from chain_fixtures import skip_fsync  # noqa: F401  (autouse: no fsync in this module)

from customer_model_factory.chain import (
    ChainError,
    LedgerSource,
    PromotionRecord,
    ReleaseStatus,
    kinds,
    promote_release,
    record_policy,
    release_status,
)
from customer_model_factory.chain.findings import codes
from customer_model_factory.chain.kinds import PROMOTION_SCHEMA
from customer_model_factory.chain.promote import (
    BROKEN,
    NOT_FOUND,
    PENDING_CODES,
    PROMOTE_CODES,
    PROMOTED,
    RECORDED,
    STATUSES,
    VERIFIED_NOT_PROMOTED,
)
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.statement import Parent
from customer_model_factory.ledger.store import Ledger
from customer_model_factory.release_gate import build_release_gate_manifest

KEYS = cf.Keys()
TRUST = KEYS.root.public_key


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, cf.Recorded]:
    """One valid, unpromoted ledger per module; tests work on copies."""
    root = tmp_path_factory.mktemp("golden")
    ledger, recorded = cf.build_ledger(root)
    ledger.close()
    return root / "ledger", recorded


@pytest.fixture
def copy(golden: tuple[Path, cf.Recorded], tmp_path: Path) -> tuple[Ledger, cf.Recorded]:
    """A private, writable copy of the golden ledger."""
    path, recorded = golden
    return cf.copy_ledger(path, tmp_path / "ledger"), recorded


def status(ledger: Ledger, release: str) -> ReleaseStatus:
    """The release's status with the test trust root and clock."""
    return release_status(LedgerSource(ledger), release, trust=TRUST, as_of=cf.AS_OF)


def promote(ledger: Ledger, release: str, signers: list[PrivateKey]) -> bool:
    """Run promote_release in a committed writer; return the report's ok."""
    with ledger.writer(log_key=KEYS.log) as writer:
        report = promote_release(
            ledger,
            writer,
            release,
            trust=TRUST,
            as_of=cf.AS_OF,
            signers=signers,
            time=cf.TIME,
            tool_version=cf.TOOL,
        )
    return report.ok


def test_promotion_of_a_verified_release(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    assert status(ledger, recorded.gate).status == VERIFIED_NOT_PROMOTED
    size = ledger.size
    assert promote(ledger, recorded.gate, list(KEYS.promoters[:2]))
    assert ledger.size == size + 1
    result = status(ledger, recorded.gate)
    assert (result.status, result.promotion_index, result.findings) == (PROMOTED, size, ())
    assert result.promotion_blob_id is not None
    record = PromotionRecord.from_dict(json.loads(ledger.objects.get(result.promotion_blob_id)))
    assert record == PromotionRecord(
        schema=PROMOTION_SCHEMA,
        release_gate_blob_id=recorded.gate,
        release_id="release-alpha",
        release_hash=cf.build_factory().gate.release_hash,
        customer_id=cf.CUSTOMER,
        workspace_id=cf.WORKSPACE,
        tenant_id=cf.TENANT,
        deployment_id="dep-alpha",
        promoted_at=cf.TIME,
        policy_version=1,
        checkpoint_size=size,
    )
    assert ledger.objects.get(result.promotion_blob_id) == record.to_bytes()
    assert json.loads(json.dumps(result.to_dict()))["status"] == PROMOTED


@pytest.mark.parametrize(
    "signers",
    [[KEYS.promoters[0]], [KEYS.promoters[0], KEYS.promoters[0]], [KEYS.promoters[1], KEYS.root]],
    ids=["one-promoter", "same-promoter-twice", "promoter-and-non-promoter"],
)
def test_promotion_needs_the_promotion_threshold(
    copy: tuple[Ledger, cf.Recorded], signers: list[PrivateKey]
) -> None:
    ledger, recorded = copy
    size = ledger.size
    with pytest.raises(ChainError) as caught:
        promote(ledger, recorded.gate, signers)
    assert codes(caught.value.findings) == ["promotion_threshold_not_met"]
    assert Ledger.open(ledger.path).size == size
    assert status(ledger, recorded.gate).status == VERIFIED_NOT_PROMOTED


def test_a_broken_chain_is_not_promoted(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    cf.tamper_object(ledger, recorded.ids[kinds.EVIDENCE_PACK])
    size = ledger.size
    assert not promote(ledger, recorded.gate, list(KEYS.promoters))
    assert Ledger.open(ledger.path).size == size
    result = status(ledger, recorded.gate)
    assert result.status == BROKEN
    assert codes(result.findings) == ["blob_hash_mismatch"]


def test_unknown_release_is_not_found(golden: tuple[Path, cf.Recorded]) -> None:
    path, recorded = golden
    with Ledger.open(path) as ledger:
        assert status(ledger, "9" * 64) == ReleaseStatus(NOT_FOUND, "9" * 64, ())
        # A blob logged under another kind is not a release either.
        assert status(ledger, recorded.ids[kinds.RUNTIME_PACKAGE]).status == NOT_FOUND


def test_a_refusing_gate_is_recorded_not_broken(tmp_path: Path) -> None:
    factory = cf.build_factory()
    gate = build_release_gate_manifest(
        release_id="",
        enterprise_ready=True,
        enterprise_blocking_debt_ids=(),
        runtime_package=factory.runtime,
        evidence_pack=factory.evidence,
        monitoring_manifest=factory.monitoring,
        risk_register=factory.register,
        generated_at=cf.GENERATED_AT,
    )
    ledger, recorded = cf.build_ledger(tmp_path, factory=replace(factory, gate=gate))
    result = status(ledger, recorded.gate)
    assert result.status == RECORDED
    assert codes(result.findings) == ["release_not_promotable"]
    assert not promote(ledger, recorded.gate, list(KEYS.promoters))


def force_promotion(
    ledger: Ledger, recorded: cf.Recorded, signers: list[PrivateKey], **changes: object
) -> None:
    """Append a promotion record directly (no checks), as a writer holding keys could."""
    gate = cf.build_factory().gate
    fields: dict[str, object] = {
        "schema": PROMOTION_SCHEMA,
        "release_gate_blob_id": recorded.gate,
        "release_id": gate.release_id,
        "release_hash": gate.release_hash,
        "customer_id": gate.customer_id,
        "workspace_id": gate.workspace_id,
        "tenant_id": gate.tenant_id,
        "deployment_id": gate.deployment_id,
        "promoted_at": cf.TIME,
        "policy_version": 1,
        "checkpoint_size": ledger.size,
    }
    fields.update(changes)
    data = PromotionRecord(**fields).to_bytes()  # type: ignore[arg-type]
    with ledger.writer(log_key=KEYS.log) as writer:
        blob_id = writer.put_blob(data)
        writer.record(
            kind=kinds.PROMOTION,
            blob_id=blob_id,
            parents=[Parent(kinds.RELEASE_GATE, recorded.gate)],
            signers=signers,
            time=cf.TIME,
            tool_version=cf.TOOL,
        )


def test_an_under_signed_promotion_does_not_count(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    force_promotion(ledger, recorded, [KEYS.promoters[2]])
    result = status(ledger, recorded.gate)
    assert result.status == VERIFIED_NOT_PROMOTED
    assert codes(result.findings) == ["signature_threshold_not_met"]
    assert all(not finding.blocking for finding in result.findings)


def test_a_promotion_of_other_content_does_not_count(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    force_promotion(ledger, recorded, list(KEYS.promoters[:2]), release_id="release-beta")
    result = status(ledger, recorded.gate)
    assert result.status == VERIFIED_NOT_PROMOTED
    assert codes(result.findings) == ["bind_promotion_release"]


def test_a_revoked_promoter_voids_the_promotion(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    assert promote(ledger, recorded.gate, list(KEYS.promoters[:2]))
    promotion_index = ledger.size - 1
    revoked = KEYS.promoters[0].public_key.key_id
    v2 = cf.make_policy(KEYS).with_revocation(
        revoked, promotion_index, "promoter key leaked", expires=cf.EXPIRES
    )
    with ledger.writer(log_key=KEYS.log) as writer:
        record_policy(
            writer, ledger, policy=v2, signers=[KEYS.root], time=cf.TIME, tool_version=cf.TOOL
        )
    result = status(ledger, recorded.gate)
    assert result.status == VERIFIED_NOT_PROMOTED
    assert codes(result.findings) == ["signature_threshold_not_met"]
    # Promoting again with two unrevoked promoters counts.
    assert promote(ledger, recorded.gate, list(KEYS.promoters[1:]))
    assert status(ledger, recorded.gate).status == PROMOTED


def test_a_name_that_is_not_the_gates_release_id_is_broken_and_never_promoted(
    copy: tuple[Ledger, cf.Recorded],
) -> None:
    """A release asked for by name (an unsigned ref) must be that release: the gate's own
    signed ``release_id`` is compared with the name before anything is judged or written."""
    ledger, recorded = copy
    source = LedgerSource(ledger)
    named = release_status(source, recorded.gate, trust=TRUST, as_of=cf.AS_OF, name="release-alpha")
    assert (named.status, named.findings) == (VERIFIED_NOT_PROMOTED, ())
    wrong = release_status(source, recorded.gate, trust=TRUST, as_of=cf.AS_OF, name="release-beta")
    assert wrong.status == BROKEN
    assert codes(wrong.findings) == ["ref_release_mismatch"]
    assert "'release-alpha'" in wrong.findings[0].message
    size = ledger.size
    with ledger.writer(log_key=KEYS.log) as writer:
        report = promote_release(
            ledger,
            writer,
            recorded.gate,
            trust=TRUST,
            as_of=cf.AS_OF,
            signers=list(KEYS.promoters[:2]),
            time=cf.TIME,
            tool_version=cf.TOOL,
            name="release-beta",
        )
    assert codes(report.findings) == ["ref_release_mismatch"] and not report.ok
    assert Ledger.open(ledger.path).size == size
    # A name for a blob that is no release gate at all is refused the same way.
    other = release_status(
        source, recorded.ids[kinds.RISK_REGISTER], trust=TRUST, as_of=cf.AS_OF, name="x"
    )
    assert (other.status, codes(other.findings)) == (BROKEN, ["ref_release_mismatch"])


def test_every_promotion_code_and_status_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "chain.md").read_text()
    documented = (*PROMOTE_CODES, *PENDING_CODES, *STATUSES)
    assert [code for code in documented if f"`{code}`" not in doc] == []
