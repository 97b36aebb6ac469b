"""Tests for offline bundle verification on bundles exported from real, promoted ledgers."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import bundle_fixtures as bf
import chain_fixtures as cf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_model_factory.bundle.format import (
    Bundle,
    BundleEntry,
    BundleFormatError,
    Consistency,
    decode_bundle,
    encode_bundle,
)
from customer_model_factory.bundle.verify import (
    BUNDLE_CODES,
    Expectation,
    evaluate_release,
    summary_lines,
    verify_bundle,
)
from customer_model_factory.chain import LedgerSource, kinds, release_status
from customer_model_factory.chain.findings import codes
from customer_model_factory.chain.kinds import PROMOTION_SCHEMA, PromotionRecord
from customer_model_factory.ledger.checkpoint import Checkpoint, sign_checkpoint
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.note import (
    Note,
    NoteSignature,
    cosign,
    format_note,
    parse_note,
)
from customer_model_factory.ledger.records import LeafRecord
from customer_model_factory.ledger.statement import Parent
from customer_model_factory.ledger.store import Ledger

KEYS = bf.KEYS


def verify(bundle: Bundle, **options: object) -> object:
    """verify_bundle with the test's pinned root and clock unless overridden."""
    options.setdefault("trust", bf.ROOT)
    options.setdefault("as_of", bf.AS_OF)
    return verify_bundle(bundle, **options)  # type: ignore[arg-type]


def blocking(report: object) -> list[str]:
    """Return the codes of the blocking findings of a report."""
    return [f.code for f in report.findings if f.blocking]  # type: ignore[attr-defined]


def without_entry(bundle: Bundle, index: int) -> Bundle:
    """Return ``bundle`` minus entry ``index`` and the blobs only that entry named."""
    entries = tuple(e for e in bundle.entries if e.index != index)
    named = {i for e in entries for i in (e.record.blob_id, e.record.envelope_id)}
    return dataclasses.replace(
        bundle,
        entries=entries,
        blobs=tuple(b for b in bundle.blobs if hashlib.sha256(b).hexdigest() in named),
        omitted=tuple(i for i in bundle.omitted if i in named),
    )


# --- the happy path -----------------------------------------------------------------------------


def test_an_exported_release_verifies_offline_and_is_promoted(release_bundle: Bundle) -> None:
    report = verify(release_bundle)
    assert report.ok, report.findings  # type: ignore[attr-defined]
    assert report.status == "promoted"  # type: ignore[attr-defined]
    assert report.findings == ()  # type: ignore[attr-defined]
    node_kinds = sorted(node.kind for node in report.nodes)  # type: ignore[attr-defined]
    assert node_kinds.count(kinds.BENCHMARK_RESULT) == 2 and len(node_kinds) == 13
    assert report.identity["customer_id"] == cf.CUSTOMER  # type: ignore[attr-defined]
    assert [w.name for w in report.witnesses] == [bf.WITNESS_NAME]  # type: ignore[attr-defined]
    assert report.promotion_index == release_bundle.entries[-1].index  # type: ignore[attr-defined]
    assert report.log_key == KEYS.log.public_key.verifier_key(cf.ORIGIN)  # type: ignore[attr-defined]


def test_the_report_is_readable_and_serialisable(release_bundle: Bundle) -> None:
    report = verify(release_bundle, bundle_id="b" * 64)
    text = "\n".join(summary_lines(report))  # type: ignore[arg-type]
    assert "release-alpha for customer customer-alpha" in text
    assert f"cosigned by witness {bf.WITNESS_NAME}" in text
    assert "promotion" in text and "b" * 64 in text
    document = report.to_dict()  # type: ignore[attr-defined]
    assert document["ok"] is True and document["status"] == "promoted"
    assert document["identity"]["release_id"] == "release-alpha"


def test_bundle_verification_agrees_with_release_status(promoted: bf.Promoted) -> None:
    with promoted.open() as ledger:
        source = LedgerSource(ledger)
        ours = evaluate_release(source, promoted.gate, trust=bf.ROOT, as_of=bf.AS_OF)
        theirs = release_status(source, promoted.gate, trust=bf.ROOT, as_of=bf.AS_OF)
    assert ours.status == theirs.status == "promoted"
    assert ours.promotion is not None and ours.promotion.index == theirs.promotion_index


def test_unpromoted_releases_agree_with_release_status(tmp_path: Path) -> None:
    with bf.no_fsync():
        ledger, recorded = cf.build_ledger(tmp_path, policy=bf.policy_with_witness())
    with ledger:
        source = LedgerSource(ledger)
        ours = evaluate_release(source, recorded.gate, trust=bf.ROOT, as_of=bf.AS_OF)
        theirs = release_status(source, recorded.gate, trust=bf.ROOT, as_of=bf.AS_OF)
        assert ours.status == theirs.status == "verified_not_promoted"
    # A promotion signed by one promoter (below the 2-of-3 threshold), appended straight
    # through the writer as an attacker with one key could: ignored by both, same warnings.
    with Ledger.open(tmp_path / "ledger") as ledger, ledger.writer(log_key=KEYS.log) as writer:
        record = promotion_record(recorded.gate)
        blob = writer.put_blob(record)
        writer.record(
            kind=kinds.PROMOTION,
            blob_id=blob,
            parents=[Parent(kinds.RELEASE_GATE, recorded.gate)],
            signers=[KEYS.promoters[2]],
            time=cf.TIME,
            tool_version=cf.TOOL,
        )
    with Ledger.open(tmp_path / "ledger") as ledger:
        source = LedgerSource(ledger)
        ours = evaluate_release(source, recorded.gate, trust=bf.ROOT, as_of=bf.AS_OF)
        theirs = release_status(source, recorded.gate, trust=bf.ROOT, as_of=bf.AS_OF)
        assert ours.status == theirs.status == "verified_not_promoted"
        assert codes(ours.ignored) == codes(theirs.findings) == ["signature_threshold_not_met"]
        assert [f.message for f in ours.ignored] == [f.message for f in theirs.findings]
        cf.tamper_object(ledger, recorded.ids[kinds.TRAINING_MANIFEST])
        ours = evaluate_release(source, recorded.gate, trust=bf.ROOT, as_of=bf.AS_OF)
        theirs = release_status(source, recorded.gate, trust=bf.ROOT, as_of=bf.AS_OF)
        assert ours.status == theirs.status == "broken"
        absent = "0" * 64
        assert evaluate_release(source, absent, trust=bf.ROOT, as_of=bf.AS_OF).status == (
            release_status(source, absent, trust=bf.ROOT, as_of=bf.AS_OF).status
        )


def promotion_record(gate: str) -> bytes:
    """Return the bytes of a well-formed promotion record of the test release ``gate``."""
    factory = cf.build_factory()
    return PromotionRecord(
        schema=PROMOTION_SCHEMA,
        release_gate_blob_id=gate,
        release_id=factory.gate.release_id,
        release_hash=factory.gate.release_hash,
        customer_id=factory.gate.customer_id,
        workspace_id=factory.gate.workspace_id,
        tenant_id=factory.gate.tenant_id,
        deployment_id=factory.gate.deployment_id,
        promoted_at=cf.TIME,
        policy_version=1,
        checkpoint_size=14,
    ).to_bytes()


def test_a_bundle_without_data_verifies_with_a_warning(promoted: bf.Promoted) -> None:
    bundle = bf.export(promoted, include_data=False)
    trace = promoted.recorded.ids[kinds.TRACE_DATASET]
    assert bundle.omitted == (trace,) and bundle.blob(trace) is None
    report = verify(bundle)
    assert report.ok  # type: ignore[attr-defined]
    assert codes(report.findings) == ["data_omitted"]  # type: ignore[attr-defined]
    assert not report.findings[0].blocking  # type: ignore[attr-defined]


# --- replays that must fail with the right finding ----------------------------------------------


def test_another_customers_release_fails(release_bundle: Bundle) -> None:
    report = verify(release_bundle, expect=Expectation(customer_id="customer-beta"))
    assert not report.ok  # type: ignore[attr-defined]
    assert blocking(report) == ["release_identity_mismatch"]
    report = verify(release_bundle, expect=Expectation(release_id="release-alpha"))
    assert report.ok  # type: ignore[attr-defined]
    report = verify(
        release_bundle,
        expect=Expectation(workspace_id="w", tenant_id="t", release_id="r"),
    )
    assert blocking(report) == ["release_identity_mismatch"] * 3


def test_another_origins_checkpoint_fails(release_bundle: Bundle) -> None:
    claimed = release_bundle.claimed_checkpoint
    other = sign_checkpoint(
        Checkpoint("other.example/log", claimed.size, claimed.root_hash), KEYS.log
    )
    report = verify(dataclasses.replace(release_bundle, checkpoint=other))
    assert blocking(report) == ["checkpoint_origin_mismatch"]


def test_a_checkpoint_signed_by_another_key_fails(release_bundle: Bundle) -> None:
    claimed = release_bundle.claimed_checkpoint
    forged = sign_checkpoint(claimed, PrivateKey.from_seed(b"\x07" * 32))
    report = verify(dataclasses.replace(release_bundle, checkpoint=forged))
    assert blocking(report) == ["checkpoint_signature_invalid"]


def test_an_expired_policy_fails_and_verifies_as_of_before_expiry(
    release_bundle: Bundle,
) -> None:
    report = verify(release_bundle, as_of=bf.later(365))
    assert "policy_expired" in blocking(report)
    assert verify(release_bundle, as_of=bf.later(30)).ok  # type: ignore[attr-defined]


def test_a_pinned_policy_file_is_a_trust_root(release_bundle: Bundle) -> None:
    assert verify(release_bundle, trust=bf.policy_with_witness()).ok  # type: ignore[attr-defined]
    other = bf.policy_with_witness(expires="2026-12-31T00:00:00Z")
    assert "policy_pin_mismatch" in blocking(verify(release_bundle, trust=other))


def test_a_later_pinned_policy_version_is_one_rule_on_ledger_and_bundle(tmp_path: Path) -> None:
    """Ledger v1 -> v2 -> (chain, promotion) -> v3: a verifier pinned to v2 walks from v2's
    record on, in the ledger and in any bundle carrying v2; other pins fail the same way."""
    from customer_model_factory.chain import verify_release_chain
    from customer_model_factory.ledger.policy import KeyEntry

    v1 = bf.policy_with_witness()
    v2 = v1.with_key(KeyEntry.of(cf.key("extra-2").public_key, "extra-2"), [], expires=cf.EXPIRES)
    v3 = v2.with_key(KeyEntry.of(cf.key("extra-3").public_key, "extra-3"), [], expires=cf.EXPIRES)
    with bf.no_fsync():
        ledger = cf.new_ledger(tmp_path / "ledger", KEYS, v1)
        try:
            bf.record_next_policy(ledger, KEYS, v2, witness=False)
            recorded = cf.record_factory(ledger, KEYS, cf.build_factory(), tmp_path)
            bf.promote(ledger, KEYS, recorded.gate)
            bf.record_next_policy(ledger, KEYS, v3)
        finally:
            ledger.close()
    promoted = bf.Promoted(tmp_path / "ledger", recorded)
    with promoted.open() as opened:
        status = release_status(LedgerSource(opened), recorded.gate, trust=v2, as_of=bf.AS_OF)
    assert (status.status, status.findings) == ("promoted", ())
    for policy_from in (1, 2):
        report = verify(bf.export(promoted, trust=v2, policy_from=policy_from), trust=v2)
        assert report.ok, report.findings  # type: ignore[attr-defined]
        assert report.policy_version == 3  # type: ignore[attr-defined]
    other_v2 = dataclasses.replace(v2, expires="2030-06-01T00:00:00Z")
    v4 = v3.with_key(KeyEntry.of(cf.key("extra-4").public_key, "extra-4"), [], expires=cf.EXPIRES)
    bundle = bf.export(promoted)
    for pin, code in ((other_v2, "policy_pin_mismatch"), (v4, "policy_rollback")):
        with promoted.open() as opened:
            on_ledger = verify_release_chain(
                LedgerSource(opened), recorded.gate, trust=pin, as_of=bf.AS_OF
            )
        assert codes(on_ledger.findings)[0] == code
        assert blocking(verify(bundle, trust=pin))[0] == code
    # A bundle that starts after the pinned version cannot serve that verifier.
    later_only = bf.export(promoted, policy_from=3)
    assert blocking(verify(later_only, trust=v2))[0] == "policy_pin_mismatch"


def test_the_wrong_trust_root_fails(release_bundle: Bundle) -> None:
    report = verify(release_bundle, trust=PrivateKey.from_seed(b"\x09" * 32).public_key)
    assert "policy_pin_mismatch" in blocking(report)


def test_a_revoked_signer_fails(promoted: bf.Promoted) -> None:
    training_key = KEYS.stage(kinds.TRAINING_MANIFEST).public_key.key_id
    old = bf.policy_with_witness()
    with promoted.open() as ledger:
        bf.record_next_policy(
            ledger,
            KEYS,
            old.with_revocation(training_key, 0, "key leaked", expires=cf.EXPIRES),
        )
    bundle = bf.export(promoted, require_promoted=False)
    report = verify(bundle)
    assert not report.ok  # type: ignore[attr-defined]
    assert "signature_threshold_not_met" in blocking(report)
    training = [f for f in report.findings if f.kind == kinds.TRAINING_MANIFEST]  # type: ignore[attr-defined]
    assert [f.code for f in training] == ["signature_threshold_not_met"]
    assert report.policy_version == 2  # type: ignore[attr-defined]


def test_an_old_bundle_replayed_after_a_newer_policy_is_pinned_fails(
    release_bundle: Bundle,
) -> None:
    new_policy = bf.policy_with_witness().with_revocation(
        KEYS.stage(kinds.TRAINING_MANIFEST).public_key.key_id, 0, "leak", expires=cf.EXPIRES
    )
    report = verify(release_bundle, trust=new_policy)
    assert "policy_rollback" in blocking(report)


# --- dropping, duplicating, reordering parts ----------------------------------------------------


def test_dropping_any_entry_fails(release_bundle: Bundle) -> None:
    for entry in release_bundle.entries:
        try:
            smaller = without_entry(release_bundle, entry.index)
        except BundleFormatError:
            continue
        report = verify(smaller)
        assert not report.ok, entry  # type: ignore[attr-defined]


def test_dropping_the_promotion_leaves_a_verified_unpromoted_release(
    release_bundle: Bundle,
) -> None:
    promotion = next(e for e in release_bundle.entries if e.record.kind == kinds.PROMOTION)
    report = verify(without_entry(release_bundle, promotion.index))
    assert report.status == "verified_not_promoted"  # type: ignore[attr-defined]
    assert blocking(report) == ["release_not_promoted"]


def test_dropping_a_proof_hash_fails(release_bundle: Bundle) -> None:
    entries = list(release_bundle.entries)
    entries[3] = dataclasses.replace(entries[3], proof=entries[3].proof[:-1])
    report = verify(dataclasses.replace(release_bundle, entries=tuple(entries)))
    assert blocking(report) == ["inclusion_proof_invalid"]


def test_duplicating_or_reordering_parts_is_refused(release_bundle: Bundle) -> None:
    entries, blobs = release_bundle.entries, release_bundle.blobs
    for change in (
        {"entries": (*entries, entries[0])},
        {"entries": (entries[1], entries[0], *entries[2:])},
        {"blobs": (*blobs, blobs[0])},
        {"blobs": (blobs[1], blobs[0], *blobs[2:])},
    ):
        with pytest.raises(BundleFormatError):
            dataclasses.replace(release_bundle, **change)  # type: ignore[arg-type]


def test_an_entry_no_verification_uses_is_flagged(promoted: bf.Promoted) -> None:
    with promoted.open() as ledger, ledger.writer(log_key=KEYS.log) as writer:
        extra = writer.put_blob(cf.blob(cf.build_factory().mapping))
        writer.record(
            kind=kinds.SECTOR_MAPPING,
            blob_id=extra,
            parents=[],
            signers=[KEYS.stage(kinds.SECTOR_MAPPING)],
            time=cf.TIME,
            tool_version=cf.TOOL,
        )
    with promoted.open() as ledger:
        bf.cosign_latest(ledger, KEYS)
    bundle = bf.export(promoted)
    with promoted.open() as ledger:
        # The chain uses the mapping's first entry; the second one (the last) is unused.
        size = ledger.latest_checkpoint_size()
        assert size is not None
        last = ledger.entry(size - 1)
        added = BundleEntry(
            last.index,
            LeafRecord(last.kind, last.blob_id, last.envelope_id),
            tuple(ledger.inclusion_proof(last.index, size)),
        )
        envelope = ledger.objects.get(last.envelope_id)
    blobs = sorted({*bundle.blobs, envelope}, key=lambda b: hashlib.sha256(b).hexdigest())
    padded = dataclasses.replace(bundle, entries=(*bundle.entries, added), blobs=tuple(blobs))
    report = verify(padded)
    assert blocking(report) == ["bundle_entry_unexpected"]


# --- tampering ----------------------------------------------------------------------------------


def _structure_region(data: bytes, bundle: Bundle) -> int:
    """Return the offset where the blobs start (everything before is ids, proofs, checkpoint)."""
    return data.index(bundle.blobs[0]) if bundle.blobs else len(data)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_flipping_any_byte_never_verifies(release_bundle: Bundle, data: st.DataObject) -> None:
    encoded = bytearray(encode_bundle(release_bundle))
    structure = _structure_region(bytes(encoded), release_bundle)
    position = data.draw(st.one_of(st.integers(0, structure - 1), st.integers(0, len(encoded) - 1)))
    encoded[position] ^= data.draw(st.integers(1, 255))
    try:
        tampered = decode_bundle(bytes(encoded))
    except BundleFormatError:
        return
    assert not verify(tampered).ok  # type: ignore[attr-defined]


def test_a_forged_cosignature_is_flagged(release_bundle: Bundle) -> None:
    note = parse_note(release_bundle.checkpoint)
    log_sig, witness_sig = note.signatures
    broken = NoteSignature(
        witness_sig.name,
        witness_sig.key_hash,
        witness_sig.signature[:-1] + bytes([witness_sig.signature[-1] ^ 1]),
    )
    forged = format_note(Note(note.text, (log_sig, broken)))
    report = verify(dataclasses.replace(release_bundle, checkpoint=forged))
    assert blocking(report) == ["cosignature_invalid", "witness_threshold_not_met"]


def test_the_policys_witness_quorum_is_required(release_bundle: Bundle) -> None:
    assert verify(release_bundle, min_witnesses=1).ok  # type: ignore[attr-defined]
    report = verify(release_bundle, min_witnesses=2)
    assert blocking(report) == ["witness_threshold_not_met"]
    # The policy's witness role is 1-of-1: a checkpoint without the cosignature fails, and so
    # does one whose cosignature line was altered into an unknown signer's (then ignored).
    note = parse_note(release_bundle.checkpoint)
    log_sig, witness_sig = note.signatures
    bare = format_note(Note(note.text, (log_sig,)))
    assert blocking(verify(dataclasses.replace(release_bundle, checkpoint=bare))) == [
        "witness_threshold_not_met"
    ]
    renamed = NoteSignature("vitness.example/w1", witness_sig.key_hash, witness_sig.signature)
    altered = format_note(Note(note.text, (log_sig, renamed)))
    assert blocking(verify(dataclasses.replace(release_bundle, checkpoint=altered))) == [
        "witness_threshold_not_met"
    ]
    # Cosignatures by keys the policy does not name (a site's receipt) are ignored.
    site = PrivateKey.from_seed(b"\x44" * 32)
    receipt = cosign(note.text, "site.example/x", site, 1_790_000_000)
    extra = format_note(Note(note.text, (*note.signatures, receipt)))
    assert verify(dataclasses.replace(release_bundle, checkpoint=extra)).ok  # type: ignore[attr-defined]


# --- consistency with a checkpoint the verifier holds -------------------------------------------


def test_a_known_checkpoint_must_be_consistent(promoted: bf.Promoted) -> None:
    with promoted.open() as ledger:
        latest = ledger.latest_checkpoint()
        old_size = 5
        old = ledger.checkpoint(old_size)
    same = bf.export(promoted)
    assert verify(same, known_checkpoint=latest).ok  # type: ignore[attr-defined]
    assert blocking(verify(same, known_checkpoint=old)) == ["consistency_proof_missing"]
    bridged = bf.export(promoted, since=old_size)
    assert bridged.consistency is not None and bridged.consistency.old_size == old_size
    assert verify(bridged, known_checkpoint=old).ok  # type: ignore[attr-defined]
    # The bundle's checkpoint is older than one the verifier holds: a rollback.
    with promoted.open() as ledger:
        bf.record_next_policy(ledger, KEYS, bf.policy_with_witness(version=2))
        newer = ledger.latest_checkpoint()
    assert blocking(verify(same, known_checkpoint=newer)) == ["checkpoint_rollback"]


def test_a_forked_log_is_detected(promoted: bf.Promoted, tmp_path: Path) -> None:
    # Same origin, same log key, another history: the log equivocated.
    with bf.no_fsync():
        fork = cf.new_ledger(
            tmp_path / "fork", KEYS, bf.policy_with_witness(expires="2026-12-31T00:00:00Z")
        )
        with fork.writer(log_key=KEYS.log) as writer:
            for n in range(6):
                blob = writer.put_blob(f"fork {n}\n".encode())
                writer.record(
                    kind=kinds.SECTOR_MAPPING,
                    blob_id=blob,
                    parents=[],
                    signers=[KEYS.stage(kinds.SECTOR_MAPPING)],
                    time=cf.TIME,
                    tool_version=cf.TOOL,
                )
        forked = fork.latest_checkpoint()
        forked_at_1 = fork.checkpoint(1)
        fork.close()
    size = Checkpoint.from_text(parse_note(forked).text).size
    bridged = bf.export(promoted, since=size)
    report = verify(bridged, known_checkpoint=forked)
    assert blocking(report) == ["checkpoint_fork"]
    with promoted.open() as ledger:
        same_size = ledger.checkpoint(1)
    assert same_size != forked_at_1
    report = verify(bf.export(promoted, since=1), known_checkpoint=forked_at_1)
    assert blocking(report) == ["checkpoint_fork"]


def test_a_known_checkpoint_of_another_log_is_refused(release_bundle: Bundle) -> None:
    claimed = release_bundle.claimed_checkpoint
    stranger = sign_checkpoint(claimed, PrivateKey.from_seed(b"\x05" * 32))
    report = verify(release_bundle, known_checkpoint=stranger)
    assert blocking(report) == ["known_checkpoint_invalid"]


def test_a_bad_consistency_proof_is_flagged(promoted: bf.Promoted) -> None:
    bundle = bf.export(promoted, since=5)
    assert bundle.consistency is not None
    bad = Consistency(5, bundle.consistency.old_root, bundle.consistency.proof[:-1])
    report = verify(dataclasses.replace(bundle, consistency=bad))
    assert blocking(report) == ["consistency_proof_invalid"]


def test_bundle_codes_are_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "bundle-format.md").read_text()
    for code in BUNDLE_CODES:
        assert f"`{code}`" in text, code


def test_the_status_vocabulary_is_the_chains() -> None:
    from customer_model_factory.bundle import verify as ours
    from customer_model_factory.chain import promote as theirs

    for name in ("NOT_FOUND", "RECORDED", "VERIFIED_NOT_PROMOTED", "PROMOTED", "BROKEN"):
        assert getattr(ours, name) == getattr(theirs, name)
    assert ours.PENDING_CODES == theirs.PENDING_CODES
