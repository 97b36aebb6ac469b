"""Tests for LedgerSource: an untrusted, read-only view that hands over exactly what is stored."""

from __future__ import annotations

import hashlib
from pathlib import Path

import chain_fixtures as cf
import pytest
from chain_fixtures import skip_fsync  # noqa: F401  (autouse: no fsync in this module)

from customer_model_factory.chain import LedgerSource, SourceEntry, kinds
from customer_model_factory.ledger.checkpoint import open_checkpoint
from customer_model_factory.ledger.merkle import leaf_hash, verify_inclusion
from customer_model_factory.ledger.policy import POLICY_KIND
from customer_model_factory.ledger.store import Ledger

KEYS = cf.Keys()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ledger, cf.Recorded]:
    """A ledger holding a policy and a full factory run."""
    return cf.build_ledger(tmp_path_factory.mktemp("source"))


def test_blobs_are_returned_as_stored(built: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = built
    source = LedgerSource(ledger)
    training = recorded.ids[kinds.TRAINING_MANIFEST]
    data = source.blob(training)
    assert data is not None and hashlib.sha256(data).hexdigest() == training
    assert source.blob("0" * 64) is None


def test_each_open_blob_is_a_new_stream_from_the_start(built: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = built
    source = LedgerSource(ledger)
    trace = recorded.ids[kinds.TRACE_DATASET]
    first, second = source.open_blob(trace), source.open_blob(trace)
    assert first is not None and second is not None
    with first, second:
        head = first.read(10)
        assert second.read() == ledger.objects.get(trace)  # not moved by reading the first
        assert head + first.read() == ledger.objects.get(trace)
    assert second.closed
    assert source.open_blob("0" * 64) is None


def test_open_blob_hands_over_a_tampered_file_and_nothing_in_place_of_a_file(
    tmp_path: Path,
) -> None:
    ledger, recorded = cf.build_ledger(tmp_path)
    source = LedgerSource(ledger)
    trace = recorded.ids[kinds.TRACE_DATASET]
    cf.tamper_object(ledger, trace)
    stream = source.open_blob(trace)
    assert stream is not None
    with stream:
        assert hashlib.sha256(stream.read()).hexdigest() != trace  # the verifier judges
    path = ledger.objects.path(trace)
    path.unlink()
    path.mkdir()  # a directory where the object file was
    assert source.open_blob(trace) is None


def test_a_tampered_blob_is_handed_over_unchanged(tmp_path: Path) -> None:
    ledger, recorded = cf.build_ledger(tmp_path)
    training = recorded.ids[kinds.TRAINING_MANIFEST]
    cf.tamper_object(ledger, training)
    data = LedgerSource(ledger).blob(training)
    # The source does not judge; the verifier re-hashes.
    assert data is not None and hashlib.sha256(data).hexdigest() != training


def test_entries_are_the_ledgers(built: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = built
    source = LedgerSource(ledger)
    (entry,) = source.entries_for_blob(recorded.gate)
    (stored,) = ledger.entries_for_blob(recorded.gate)
    assert entry == SourceEntry(stored.index, stored.kind, stored.blob_id, stored.envelope_id)
    assert entry.leaf_bytes() == stored.leaf
    assert source.entries_for_blob("0" * 64) == []
    policies = source.entries_of_kind(POLICY_KIND)
    assert [e.index for e in policies] == [0]
    benchmarks = source.entries_of_kind(kinds.BENCHMARK_RESULT)
    assert tuple(e.blob_id for e in benchmarks) == recorded.benchmarks


def test_checkpoint_and_proofs(built: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = built
    source = LedgerSource(ledger)
    note = source.latest_checkpoint()
    assert note is not None
    checkpoint, _ = open_checkpoint(note, origin=cf.ORIGIN, key=KEYS.log.public_key)
    assert checkpoint.size == ledger.size
    (entry,) = source.entries_for_blob(recorded.gate)
    proof = source.inclusion_proof(entry.index, checkpoint.size)
    verify_inclusion(
        leaf_hash(entry.leaf_bytes()), entry.index, checkpoint.size, proof, checkpoint.root_hash
    )


def test_a_fresh_ledger_has_no_checkpoint(tmp_path: Path) -> None:
    ledger = Ledger.create(tmp_path / "empty", origin=cf.ORIGIN, log_key=KEYS.log.public_key)
    source = LedgerSource(ledger)
    assert source.latest_checkpoint() is None
    assert source.entries_of_kind(POLICY_KIND) == []


def test_leaf_bytes_follow_the_leaf_record_format() -> None:
    entry = SourceEntry(3, "release_gate", "a" * 64, "b" * 64)
    assert (
        entry.leaf_bytes() == b"cmf-leaf/v1\nrelease_gate\n" + b"a" * 64 + b"\n" + b"b" * 64 + b"\n"
    )
