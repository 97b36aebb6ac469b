"""Tests for exporting a release bundle from a ledger, and unpacking one into plain files."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import bundle_fixtures as bf
import chain_fixtures as cf
import pytest

from customer_model_factory.bundle.export import export_and_verify, export_bundle, unpack_bundle
from customer_model_factory.bundle.format import Bundle, encode_bundle
from customer_model_factory.bundle.tlogproof import parse_tlog_proof, verify_tlog_proof
from customer_model_factory.bundle.verify import verify_bundle
from customer_model_factory.chain import ChainError, kinds
from customer_model_factory.chain.findings import codes
from customer_model_factory.ledger.checkpoint import Checkpoint, sign_checkpoint
from customer_model_factory.ledger.errors import IntegrityError, LedgerError, SignatureError
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.merkle import verify_consistency
from customer_model_factory.ledger.note import parse_note

KEYS = bf.KEYS


def test_a_bundle_holds_exactly_the_chain_the_policies_and_the_promotion(
    template: bf.Promoted, release_bundle: Bundle
) -> None:
    with template.open() as ledger:
        size = ledger.latest_checkpoint_size()
        assert size is not None
        assert release_bundle.checkpoint == ledger.checkpoint(size)
        expected = [ledger.entry(i) for i in range(size)]
    # This ledger holds only the release: every entry is carried, in log order.
    assert [e.index for e in release_bundle.entries] == list(range(size))
    assert [e.leaf for e in release_bundle.entries] == [e.leaf for e in expected]
    kinds_carried = [e.record.kind for e in release_bundle.entries]
    assert kinds_carried[0] == "trust_policy" and kinds_carried[-1] == kinds.PROMOTION
    named = {i for e in release_bundle.entries for i in (e.record.blob_id, e.record.envelope_id)}
    assert set(release_bundle.blob_ids) == named
    assert bf.WITNESS_NAME in release_bundle.checkpoint.decode()
    assert release_bundle.consistency is None and release_bundle.omitted == ()


def test_export_is_deterministic(template: bf.Promoted, release_bundle: Bundle) -> None:
    assert encode_bundle(bf.export(template)) == encode_bundle(release_bundle)


def test_only_a_promoted_release_is_exported(tmp_path: Path) -> None:
    with bf.no_fsync():
        ledger, recorded = cf.build_ledger(tmp_path, policy=bf.policy_with_witness())
    with ledger:
        with pytest.raises(ChainError) as refused:
            export_bundle(ledger, recorded.gate, trust=bf.ROOT, as_of=bf.AS_OF)
        assert codes(refused.value.findings) == ["release_not_promoted"]
        unpromoted = export_bundle(
            ledger, recorded.gate, trust=bf.ROOT, as_of=bf.AS_OF, require_promoted=False
        )
        assert verify_bundle(unpromoted, trust=bf.ROOT, as_of=bf.AS_OF).status == (
            "verified_not_promoted"
        )
        cf.tamper_object(ledger, recorded.ids[kinds.EVIDENCE_PACK])
        with pytest.raises(ChainError) as refused:
            export_bundle(ledger, recorded.gate, trust=bf.ROOT, as_of=bf.AS_OF)
        assert "blob_hash_mismatch" in codes(refused.value.findings)


def test_a_checkpoint_awaiting_its_witness_is_not_exported(tmp_path: Path) -> None:
    promoted = bf.build_promoted(tmp_path, witness=False)
    with pytest.raises(ChainError) as refused:
        bf.export(promoted)
    assert codes(refused.value.findings) == ["witness_threshold_not_met"]
    assert bf.export(promoted, require_promoted=False).checkpoint


def test_a_consistency_proof_bridges_from_an_older_size(template: bf.Promoted) -> None:
    with template.open() as ledger:
        size = ledger.latest_checkpoint_size()
        assert size is not None
        for old in (0, 1, 4, size):
            bundle = export_bundle(ledger, template.gate, trust=bf.ROOT, as_of=bf.AS_OF, since=old)
            assert bundle.consistency is not None
            assert bundle.consistency.old_root == ledger.root(old)
            verify_consistency(
                old, size, bundle.consistency.proof, ledger.root(old), ledger.root(size)
            )
        with pytest.raises(LedgerError, match="beyond"):
            export_bundle(ledger, template.gate, trust=bf.ROOT, as_of=bf.AS_OF, since=size + 1)


def test_a_receivers_checkpoint_picks_the_old_size(template: bf.Promoted) -> None:
    with template.open() as ledger:
        old = ledger.checkpoint(6)
        bundle = export_bundle(
            ledger, template.gate, trust=bf.ROOT, as_of=bf.AS_OF, since_checkpoint=old
        )
        assert bundle.consistency is not None and bundle.consistency.old_size == 6
        with pytest.raises(LedgerError, match="not both"):
            export_bundle(
                ledger, template.gate, trust=bf.ROOT, as_of=bf.AS_OF, since=6, since_checkpoint=old
            )
        stranger = sign_checkpoint(
            Checkpoint(ledger.origin, 6, ledger.root(6)), PrivateKey.from_seed(b"\3" * 32)
        )
        with pytest.raises(SignatureError):
            export_bundle(
                ledger, template.gate, trust=bf.ROOT, as_of=bf.AS_OF, since_checkpoint=stranger
            )
        # The log key signed another root for size 6: the log's own equivocation.
        forked = sign_checkpoint(Checkpoint(ledger.origin, 6, b"\1" * 32), KEYS.log)
        with pytest.raises(IntegrityError, match="two histories"):
            export_bundle(
                ledger, template.gate, trust=bf.ROOT, as_of=bf.AS_OF, since_checkpoint=forked
            )


def test_policy_versions_are_carried_from_the_pinned_one_on(promoted: bf.Promoted) -> None:
    with promoted.open() as ledger:
        bf.record_next_policy(ledger, KEYS, bf.policy_with_witness(version=2))
    every = bf.export(promoted)
    assert [e.record.kind for e in every.entries].count("trust_policy") == 2
    later = bf.export(promoted, policy_from=2)
    assert [e.record.kind for e in later.entries].count("trust_policy") == 1
    # Version 2 was recorded after the chain: nothing verifies the chain's records then.
    report = verify_bundle(later, trust=bf.ROOT, as_of=bf.AS_OF)
    assert "no_policy_in_effect" in codes(report.findings)
    with pytest.raises(LedgerError, match="no trust policy version 7"):
        bf.export(promoted, policy_from=7)


def test_unpack_writes_plain_files_stock_tools_can_check(
    release_bundle: Bundle, template: bf.Promoted, tmp_path: Path
) -> None:
    target = tmp_path / "unpacked"
    written = unpack_bundle(release_bundle, target)
    assert len(written) == 1 + len(release_bundle.blobs) + 2 * len(release_bundle.entries) + 1
    for path in (target / "blobs").iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
    assert (target / "checkpoint").read_bytes() == release_bundle.checkpoint
    index = json.loads((target / "bundle.json").read_text())
    assert index["release"] == release_bundle.release
    assert [e["index"] for e in index["entries"]] == [e.index for e in release_bundle.entries]
    with template.open() as ledger:
        origin, key = ledger.origin, ledger.log_public_key
    for entry in release_bundle.entries:
        leaf = (target / "entries" / f"{entry.index}.leaf").read_bytes()
        assert leaf == entry.leaf
        proof = parse_tlog_proof((target / "entries" / f"{entry.index}.tlog-proof").read_bytes())
        assert proof.extra == leaf
        verify_tlog_proof(proof, origin=origin, log_key=key)
    with pytest.raises(LedgerError, match="non-empty"):
        unpack_bundle(release_bundle, target)


def test_unpack_writes_the_consistency_proof_as_text(template: bf.Promoted, tmp_path: Path) -> None:
    bundle = bf.export(template, since=5)
    assert bundle.consistency is not None
    unpack_bundle(bundle, tmp_path / "out")
    lines = (tmp_path / "out" / "consistency").read_text().splitlines()
    assert lines[0] == "old 5"
    assert [base64.b64decode(x) for x in lines[1:]] == [
        bundle.consistency.old_root,
        *bundle.consistency.proof,
    ]
    assert parse_note(bundle.checkpoint).text.startswith(cf.ORIGIN)


def test_export_and_verify_checks_the_written_file(template: bf.Promoted, tmp_path: Path) -> None:
    out = tmp_path / "release.cmfbundle"
    done = export_and_verify(
        template.path, template.gate, trust=bf.ROOT, as_of=bf.AS_OF, output=out
    )
    assert done.report.ok and done.path == out
    assert done.bundle_id == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (done.entries, done.blobs) == (15, 30)
