"""Tests for the Ledger facade: create/open, records, commits, checkpoints, keys, refs, recovery."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger import store as store_module
from customer_model_factory.ledger.blobs import NotFoundError
from customer_model_factory.ledger.checkpoint import open_checkpoint
from customer_model_factory.ledger.dsse import Envelope, Signature, verify_envelope
from customer_model_factory.ledger.errors import (
    FormatError,
    IntegrityError,
    LedgerError,
    LockError,
    SignatureError,
)
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from customer_model_factory.ledger.note import cosign, parse_note, verify_cosignature
from customer_model_factory.ledger.statement import PAYLOAD_TYPE, Parent, RecordStatement
from customer_model_factory.ledger.store import Ledger, LedgerState, LedgerWriter, LogEntry

ORIGIN = "ledger.example/test"
TIME = "2026-01-01T00:00:00Z"
LOG_KEY = PrivateKey.from_seed(bytes(range(32)))
ALICE = PrivateKey.from_seed(b"a" * 32)
BOB = PrivateKey.from_seed(b"b" * 32)
WITNESS = PrivateKey.from_seed(b"w" * 32)


def _new(path: Path) -> Ledger:
    return Ledger.create(path, origin=ORIGIN, log_key=LOG_KEY.public_key)


def _record(
    writer: LedgerWriter, data: bytes, kind: str = "manifest", parents: tuple[Parent, ...] = ()
) -> LogEntry:
    blob_id = writer.put_blob(data)
    return writer.record(
        kind=kind, blob_id=blob_id, parents=parents, signers=[ALICE], time=TIME, tool_version="t 1"
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with _new(tmp_path / "ledger") as opened:
        yield opened


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# --- create and open -----------------------------------------------------------------------------


def test_create_writes_config_and_opens_empty(tmp_path: Path) -> None:
    with _new(tmp_path / "l") as ledger:
        assert ledger.size == 0
        assert ledger.origin == ORIGIN
        assert ledger.log_public_key == LOG_KEY.public_key
        assert ledger.checkpoint_sizes() == []
        assert ledger.latest_checkpoint_size() is None
        with pytest.raises(NotFoundError):
            ledger.latest_checkpoint()
        assert ledger.public_keys() == {}
        assert ledger.refs() == {}
    config = json.loads((tmp_path / "l" / "config.json").read_text())
    assert config == {
        "format": "cmf-ledger/v1",
        "origin": ORIGIN,
        "log_key": LOG_KEY.public_key.verifier_key(ORIGIN),
    }


def test_create_refuses_non_empty_and_accepts_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(LedgerError, match="non-empty"):
        _new(tmp_path / "full")
    (tmp_path / "file").write_text("x")
    with pytest.raises(LedgerError, match="non-empty"):
        _new(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    _new(tmp_path / "empty").close()
    with pytest.raises(LedgerError, match="non-empty"):
        _new(tmp_path / "empty")


def test_open_refuses_what_is_not_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="not a ledger"):
        Ledger.open(tmp_path)
    with pytest.raises(LedgerError, match="not a ledger"):
        Ledger.open(tmp_path / "missing")
    (tmp_path / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(LedgerError, match="not a valid ledger configuration"):
        Ledger.open(tmp_path)


def test_open_refuses_a_ledger_without_its_log(tmp_path: Path) -> None:
    _new(tmp_path / "l").close()
    for name in os.listdir(tmp_path / "l" / "log"):
        path = tmp_path / "l" / "log" / name
        if path.is_file():
            path.unlink()
        else:
            path.rmdir()
    (tmp_path / "l" / "log").rmdir()
    with pytest.raises(LedgerError, match="log/ directory is missing"):
        Ledger.open(tmp_path / "l")


def test_open_refuses_a_damaged_state_unless_auditing(tmp_path: Path) -> None:
    _new(tmp_path / "l").close()
    (tmp_path / "l" / "state.json").write_text("{")
    with pytest.raises(IntegrityError, match=r"state\.json"):
        Ledger.open(tmp_path / "l")
    with Ledger.open(tmp_path / "l", audit=True) as ledger:
        assert [code for code, _ in ledger.open_findings] == ["state-damaged"]


DEEP_JSON = b"[" * 100_000  # json raises RecursionError, not JSONDecodeError, on this


def test_deeply_nested_config_or_state_is_damage_not_a_crash(tmp_path: Path) -> None:
    # A ledger directory is input: hostile nesting must be the documented error (fsck reports
    # a damaged state.json as a finding), never a RecursionError traceback.
    _new(tmp_path / "l").close()
    (tmp_path / "l" / "state.json").write_bytes(DEEP_JSON)
    with pytest.raises(IntegrityError, match=r"state\.json is damaged"):
        Ledger.open(tmp_path / "l")
    with Ledger.open(tmp_path / "l", audit=True) as ledger:
        assert [code for code, _ in ledger.open_findings] == ["state-damaged"]
    (tmp_path / "l" / "config.json").write_bytes(DEEP_JSON)
    with pytest.raises(LedgerError, match="not a valid ledger configuration"):
        Ledger.open(tmp_path / "l")


# --- recording and reading -----------------------------------------------------------------------


def test_record_commit_and_read_back(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        first = _record(writer, b"dataset report", kind="dataset_report")
        second = _record(
            writer, b"training", kind="training", parents=(Parent("dataset_report", first.blob_id),)
        )
        assert (first.index, second.index) == (0, 1)
        assert ledger.size == 0  # nothing visible before commit
        note = writer.commit()
    assert ledger.size == 2
    assert ledger.entry(0) == first
    assert list(ledger.entries()) == [first, second]
    assert list(ledger.entries(1)) == [second]
    statement = ledger.statement(second)
    assert statement == RecordStatement(
        kind="training",
        sha256=hashlib.sha256(b"training").hexdigest(),
        parents=(Parent("dataset_report", first.blob_id),),
        origin=ORIGIN,
        time=TIME,
        tool_version="t 1",
    )
    envelope = ledger.envelope(second.envelope_id)
    assert verify_envelope(envelope, ledger.public_keys(), payload_type=PAYLOAD_TYPE) == {
        ALICE.public_key.key_id
    }
    assert ledger.objects.get(second.envelope_id) == envelope.to_json()
    checkpoint, _ = open_checkpoint(note, origin=ORIGIN, key=LOG_KEY.public_key)
    assert (checkpoint.size, checkpoint.root_hash) == (2, ledger.root())
    assert ledger.latest_checkpoint() == note == ledger.checkpoint(2)


def test_leaf_bytes_are_the_documented_record(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        entry = _record(writer, b"x", kind="dataset_report")
    assert entry.leaf == (
        f"cmf-leaf/v1\ndataset_report\n{entry.blob_id}\n{entry.envelope_id}\n".encode()
    )
    proof = ledger.inclusion_proof(0, 1)
    verify_inclusion(leaf_hash(entry.leaf), 0, 1, proof, ledger.root())


def test_multiple_signers_are_all_in_the_envelope_and_keyring(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        blob_id = writer.put_blob(b"approved")
        entry = writer.record(
            kind="release",
            blob_id=blob_id,
            parents=(),
            signers=[ALICE, BOB],
            time=TIME,
            tool_version="t",
        )
    keyring = ledger.public_keys()
    assert set(keyring) == {ALICE.public_key.key_id, BOB.public_key.key_id}
    envelope = ledger.envelope(entry.envelope_id)
    assert verify_envelope(envelope, keyring, payload_type=PAYLOAD_TYPE) == set(keyring)


def test_record_requires_stored_blob_parents_and_a_signer(ledger: Ledger) -> None:
    missing = hashlib.sha256(b"nowhere").hexdigest()
    with ledger.writer(log_key=LOG_KEY) as writer:
        with pytest.raises(NotFoundError, match=missing):
            writer.record(
                kind="k", blob_id=missing, parents=(), signers=[ALICE], time=TIME, tool_version="t"
            )
        blob_id = writer.put_blob(b"here")
        with pytest.raises(NotFoundError, match=missing):
            writer.record(
                kind="k",
                blob_id=blob_id,
                parents=(Parent("p", missing),),
                signers=[ALICE],
                time=TIME,
                tool_version="t",
            )
        with pytest.raises(ValueError, match="signer"):
            writer.record(
                kind="k", blob_id=blob_id, parents=(), signers=[], time=TIME, tool_version="t"
            )
        with pytest.raises(FormatError):
            writer.record(
                kind="Bad Kind",
                blob_id=blob_id,
                parents=(),
                signers=[ALICE],
                time=TIME,
                tool_version="t",
            )
        assert writer.pending == 0
    assert ledger.size == 0


def _presigned(blob_id: str, signer: PrivateKey, origin: str = ORIGIN) -> Envelope:
    statement = RecordStatement("evidence", blob_id, (), origin, TIME, "external 2")
    return Envelope(statement.to_bytes(), PAYLOAD_TYPE).signed_by(signer)


def test_append_envelope_checks_signatures_subject_and_origin(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        blob_id = writer.put_blob(b"evidence")
        envelope = _presigned(blob_id, BOB)
        with pytest.raises(SignatureError, match="signature 0"):
            writer.append_envelope("evidence", blob_id, envelope)  # BOB unknown
        with pytest.raises(LedgerError, match="about"):
            writer.append_envelope("other", blob_id, envelope, keys=[BOB.public_key])
        foreign = _presigned(blob_id, BOB, origin="other.example/log")
        with pytest.raises(LedgerError, match=r"other\.example/log"):
            writer.append_envelope("evidence", blob_id, foreign, keys=[BOB.public_key])
        forged = Envelope(
            envelope.payload,
            PAYLOAD_TYPE,
            (Signature(BOB.public_key.key_id, bytes(64)),),
        )
        with pytest.raises(SignatureError):
            writer.append_envelope("evidence", blob_id, forged, keys=[BOB.public_key])
        with pytest.raises(SignatureError, match="no signatures"):
            writer.append_envelope("evidence", blob_id, Envelope(envelope.payload, PAYLOAD_TYPE))
        entry = writer.append_envelope("evidence", blob_id, envelope, keys=[BOB.public_key])
    assert ledger.entry(0) == entry
    assert set(ledger.public_keys()) == {BOB.public_key.key_id}
    # Once BOB is in the keyring, his envelopes need no key argument.
    with ledger.writer(log_key=LOG_KEY) as writer:
        writer.append_envelope("evidence", blob_id, envelope)
    assert ledger.size == 2


def test_put_file_through_the_writer(ledger: Ledger, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(2_000_000))
    with ledger.writer(log_key=LOG_KEY) as writer:
        blob_id = writer.put_file(source)
        writer.record(
            kind="weights",
            blob_id=blob_id,
            parents=(),
            signers=[ALICE],
            time=TIME,
            tool_version="t",
        )
    assert ledger.objects.get(blob_id) == source.read_bytes()


def test_entries_for_blob_uses_the_index(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        entries = [_record(writer, f"blob {i % 7}".encode()) for i in range(40)]
    for target in {e.blob_id for e in entries}:
        expected = [e for e in entries if e.blob_id == target]
        assert ledger.entries_for_blob(target) == expected
    assert ledger.entries_for_blob(hashlib.sha256(b"never").hexdigest()) == []
    assert ledger.state.indexed == 40
    assert sum(ledger.state.buckets.values()) == 40 * store_module.INDEX_RECORD_SIZE


def test_entries_for_blob_detects_a_lying_index(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        first = _record(writer, b"one")
        _record(writer, b"two")
    bucket = ledger.path / "index" / first.blob_id[:2]
    data = bytearray(bucket.read_bytes())
    data[-1] ^= 1  # now claims entry 1 (or some other) is about `first`
    bucket.write_bytes(bytes(data))
    with pytest.raises((IntegrityError, IndexError)):
        ledger.entries_for_blob(first.blob_id)


def test_exception_in_writer_drops_uncommitted_work(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError), ledger.writer(log_key=LOG_KEY) as writer:
        entry = _record(writer, b"doomed")
        raise RuntimeError("stage failed")
    assert ledger.size == 0
    assert not ledger.objects.contains(entry.blob_id)
    assert list(ledger.objects.temp_files()) == []
    assert not (ledger.path / "lock").read_bytes()  # released
    with ledger.writer(log_key=LOG_KEY) as writer:
        assert writer.pending == 0


def test_clean_exit_commits(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        _record(writer, b"kept")
    assert ledger.size == 1
    assert ledger.checkpoint_sizes() == [1]


def test_closed_writer_refuses_use(ledger: Ledger) -> None:
    writer = ledger.writer(log_key=LOG_KEY)
    writer.close()
    with pytest.raises(LedgerError, match="closed"):
        writer.put_blob(b"x")


def test_writer_needs_the_log_key_and_the_lock(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="not this ledger's log key"):
        ledger.writer(log_key=ALICE)
    other = Ledger.open(ledger.path)
    with ledger.writer(log_key=LOG_KEY):
        with pytest.raises(LockError, match=f"pid {os.getpid()}"):
            other.writer(log_key=LOG_KEY, wait=0.05)
        with pytest.raises(LedgerError, match="already has an open writer"):
            ledger.writer(log_key=LOG_KEY)
    other.writer(log_key=LOG_KEY).close()
    other.close()


def test_a_stale_ledger_sees_other_writers_appends_when_it_writes(ledger: Ledger) -> None:
    stale = Ledger.open(ledger.path)
    with ledger.writer(log_key=LOG_KEY) as writer:
        for i in range(3):
            _record(writer, f"{i}".encode())
    assert stale.size == 0  # a snapshot
    with stale.writer(log_key=LOG_KEY) as writer:
        assert stale.size == 3
        assert _record(writer, b"after").index == 3
    assert stale.size == 4
    assert Ledger.open(ledger.path).size == 4
    stale.close()


# --- checkpoints ---------------------------------------------------------------------------------


def test_every_checkpoint_stays_readable_and_consistent(ledger: Ledger) -> None:
    notes = {}
    for batch in (1, 2, 5):
        with ledger.writer(log_key=LOG_KEY) as writer:
            for _i in range(batch):
                _record(writer, os.urandom(8))
            notes[ledger.size + 0] = writer.commit()
    assert ledger.checkpoint_sizes() == [1, 3, 8]
    opened = {
        s: open_checkpoint(ledger.checkpoint(s), origin=ORIGIN, key=LOG_KEY.public_key)[0]
        for s in ledger.checkpoint_sizes()
    }
    for size, note in notes.items():
        assert ledger.checkpoint(size) == note
    for old, new in ((1, 3), (3, 8), (1, 8)):
        verify_consistency(
            old,
            new,
            ledger.consistency_proof(old, new),
            opened[old].root_hash,
            opened[new].root_hash,
        )


def test_commit_without_new_records_returns_the_same_checkpoint(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        empty = writer.commit()
        assert open_checkpoint(empty, origin=ORIGIN, key=LOG_KEY.public_key)[0].size == 0
        _record(writer, b"one")
        first = writer.commit()
        assert writer.commit() == first
    assert ledger.checkpoint_sizes() == [0, 1]


def test_cosignatures(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        _record(writer, b"one")
        note = writer.commit()
        text = parse_note(note).text
        sig = cosign(text, "auditor.example/w1", WITNESS, 1767225600)
        with pytest.raises(SignatureError):
            writer.add_cosignature(1, sig, BOB.public_key)
        updated = writer.add_cosignature(1, sig, WITNESS.public_key)
        assert writer.add_cosignature(1, sig, WITNESS.public_key) == updated
        later = cosign(text, "auditor.example/w1", WITNESS, 1767225601)
        with pytest.raises(LedgerError, match="already holds"):
            writer.add_cosignature(1, later, WITNESS.public_key)
        with pytest.raises(NotFoundError):
            writer.add_cosignature(7, sig, WITNESS.public_key)
    stored = parse_note(ledger.checkpoint(1))
    assert ledger.checkpoint(1) == updated
    assert stored.signatures[1] == sig
    assert verify_cosignature(stored.text, sig, WITNESS.public_key) == 1767225600
    open_checkpoint(updated, origin=ORIGIN, key=LOG_KEY.public_key)
    assert WITNESS.public_key.key_id in ledger.public_keys()
    # A later commit at the same size keeps the cosigned file.
    with ledger.writer(log_key=LOG_KEY) as writer:
        assert writer.commit() == updated


# --- refs ----------------------------------------------------------------------------------------


def test_refs(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        entry = _record(writer, b"release")
        writer.set_ref("acme-1.0", entry.blob_id)
        with pytest.raises(FormatError):
            writer.set_ref("../escape", entry.blob_id)
        with pytest.raises(NotFoundError):
            writer.set_ref("dangling", hashlib.sha256(b"none").hexdigest())
        assert ledger.refs() == {}  # written at commit
    assert ledger.ref("acme-1.0") == entry.blob_id
    assert ledger.refs() == {"acme-1.0": entry.blob_id}
    assert (ledger.path / "refs" / "acme-1.0").read_text() == entry.blob_id + "\n"
    with pytest.raises(NotFoundError):
        ledger.ref("missing")


# --- determinism and recovery --------------------------------------------------------------------


def _build(path: Path) -> None:
    with _new(path) as ledger, ledger.writer(log_key=LOG_KEY) as writer:
        previous: tuple[Parent, ...] = ()
        for i in range(5):
            entry = _record(writer, f"stage {i}".encode(), kind=f"stage{i}", parents=previous)
            previous = (Parent(entry.kind, entry.blob_id),)
            if i % 2:
                writer.commit()
        writer.set_ref("final", entry.blob_id)


def test_rebuilding_gives_a_byte_identical_ledger(tmp_path: Path) -> None:
    _build(tmp_path / "a")
    _build(tmp_path / "b")
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_crash_after_log_sync_is_recovered_by_the_next_writer(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        _record(writer, b"committed")
    calls = {"n": 0}
    real = store_module._append_index

    def crash_midway(*args: object, **kwargs: object) -> LedgerState:
        calls["n"] += 1
        raise OSError("simulated crash before the index was written")

    monkeypatch.setattr(store_module, "_append_index", crash_midway)
    writer = ledger.writer(log_key=LOG_KEY)
    late = _record(writer, b"durable but not checkpointed")
    with pytest.raises(OSError, match="simulated"):
        writer.commit()
    with pytest.raises(LedgerError, match="commit failed"):
        writer.put_blob(b"x")
    writer.close()
    monkeypatch.setattr(store_module, "_append_index", real)
    reopened = Ledger.open(ledger.path)
    assert reopened.size == 2  # the leaves were synced
    assert reopened.latest_checkpoint_size() == 1  # the checkpoint never ran ahead
    assert reopened.entries_for_blob(late.blob_id) == [late]  # found by the tail scan
    with reopened.writer(log_key=LOG_KEY) as writer:
        assert reopened.state.indexed == 2
        note = writer.commit()
    assert open_checkpoint(note, origin=ORIGIN, key=LOG_KEY.public_key)[0].size == 2
    reopened.close()


def test_crash_before_state_update_still_finds_the_new_checkpoint(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: Ledger, state: LedgerState) -> None:
        raise OSError("simulated crash before state.json")

    monkeypatch.setattr(Ledger, "_set_state", crash)
    writer = ledger.writer(log_key=LOG_KEY)
    _record(writer, b"x")
    with pytest.raises(OSError):
        writer.commit()
    writer.close()
    monkeypatch.undo()
    reopened = Ledger.open(ledger.path)
    assert reopened.state.checkpoint is None
    assert reopened.latest_checkpoint_size() == 1
    with reopened.writer(log_key=LOG_KEY):
        assert reopened.state.checkpoint == 1
    reopened.close()


def test_writer_rebuilds_a_lost_state_file(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        entries = [_record(writer, f"{i}".encode()) for i in range(10)]
    before = ledger.state
    (ledger.path / "state.json").unlink()
    with Ledger.open(ledger.path, audit=True) as damaged, damaged.writer(log_key=LOG_KEY):
        assert damaged.state == before
        assert damaged.entries_for_blob(entries[3].blob_id) == [entries[3]]


def test_ledger_without_empty_directories_still_works(ledger: Ledger) -> None:
    for name in ("refs", "keys", "index"):
        (ledger.path / name).rmdir()
    (ledger.path / "log" / "checkpoints").rmdir()
    with ledger.writer(log_key=LOG_KEY) as writer:
        entry = _record(writer, b"x")
        writer.set_ref("r", entry.blob_id)
    assert ledger.entries_for_blob(entry.blob_id) == [entry]
    assert ledger.ref("r") == entry.blob_id


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.integers(0, 6), min_size=1, max_size=5))
def test_proofs_verify_against_every_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, batches: list[int]
) -> None:
    with _new(tmp_path_factory.mktemp("p") / "l") as ledger:
        for count in batches:
            with ledger.writer(log_key=LOG_KEY) as writer:
                for _ in range(count):
                    _record(writer, os.urandom(4))
        checkpoints = [
            open_checkpoint(ledger.checkpoint(s), origin=ORIGIN, key=LOG_KEY.public_key)[0]
            for s in ledger.checkpoint_sizes()
        ]
        assert checkpoints[-1].size == ledger.size == sum(batches)
        for cp in checkpoints:
            for index in range(cp.size):
                verify_inclusion(
                    leaf_hash(ledger.entry(index).leaf),
                    index,
                    cp.size,
                    ledger.inclusion_proof(index, cp.size),
                    cp.root_hash,
                )
        for old, new in itertools.pairwise(checkpoints):
            verify_consistency(
                old.size,
                new.size,
                ledger.consistency_proof(old.size, new.size),
                old.root_hash,
                new.root_hash,
            )


def test_remove_stale_temp_files_keeps_the_current_batch(ledger: Ledger) -> None:
    fanout = ledger.path / "objects" / "ab"
    fanout.mkdir()
    (fanout / ".tmp-left-by-a-killed-writer").write_bytes(b"partial")
    with ledger.writer(log_key=LOG_KEY) as writer:
        blob_id = writer.put_blob(b"staged")
        assert writer.remove_stale_temp_files() == 1
        assert writer.contains(blob_id)
    assert ledger.objects.get(blob_id) == b"staged"
    assert list(ledger.objects.temp_files()) == []


# --- the kind index ------------------------------------------------------------------------------

_KINDS = ("alpha", "beta", "..", "trust_policy")  # ".." must stay a plain file name


def _kind_file(ledger: Ledger, kind: str) -> Path:
    return ledger.path / "kinds" / f"{kind}.idx"


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.lists(st.sampled_from(_KINDS), min_size=0, max_size=6), min_size=1, max_size=4
    )
)
def test_entries_of_kind_equal_a_scan_of_the_log(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[str]]
) -> None:
    with _new(tmp_path_factory.mktemp("k") / "l") as ledger:
        for batch in batches:
            with ledger.writer(log_key=LOG_KEY) as writer:
                for kind in batch:
                    _record(writer, os.urandom(8), kind=kind)
        everything = list(ledger.entries())
        for kind in _KINDS:
            assert ledger.entries_of_kind(kind) == [e for e in everything if e.kind == kind]
        assert ledger.state.kinds_indexed == ledger.size
        assert ledger.kind_index_problems() == []


def test_entries_of_kind_reads_only_the_index_and_the_tail(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        wanted = [
            _record(writer, f"{i}".encode(), kind="alpha" if i % 5 else "beta") for i in range(20)
        ]
    read: list[int] = []
    real = Ledger.entry

    def counting(self: Ledger, index: int) -> LogEntry:
        read.append(index)
        return real(self, index)

    monkeypatch.setattr(Ledger, "entry", counting)
    betas = ledger.entries_of_kind("beta")
    assert betas == [e for e in wanted if e.kind == "beta"]
    assert read == [e.index for e in betas]  # no scan: only the indexed entries are read


def test_a_state_without_the_kind_index_scans_until_a_writer_builds_it(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        entries = [_record(writer, f"{i}".encode(), kind=_KINDS[i % 3]) for i in range(9)]
    # A state.json written before the kind index existed: no "kinds" member, no kinds/ files.
    state = json.loads((ledger.path / "state.json").read_bytes())
    del state["kinds"]
    (ledger.path / "state.json").write_text(json.dumps(state))
    for path in (ledger.path / "kinds").iterdir():
        path.unlink()
    with Ledger.open(ledger.path) as old:
        assert old.state.kinds_indexed == 0
        assert old.entries_of_kind("alpha") == [e for e in entries if e.kind == "alpha"]
        with old.writer(log_key=LOG_KEY):
            assert old.state.kinds_indexed == 9
        assert old.kind_index_problems() == []
        assert old.entries_of_kind("..") == [e for e in entries if e.kind == ".."]


def test_a_crash_before_the_kind_index_is_recovered(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        _record(writer, b"committed", kind="alpha")
    real = store_module._append_kind_index

    def crash(*args: object, **kwargs: object) -> LedgerState:
        raise OSError("simulated crash before the kind index was written")

    monkeypatch.setattr(store_module, "_append_kind_index", crash)
    writer = ledger.writer(log_key=LOG_KEY)
    late = _record(writer, b"late", kind="alpha")
    with pytest.raises(OSError, match="simulated"):
        writer.commit()
    writer.close()
    monkeypatch.setattr(store_module, "_append_kind_index", real)
    with Ledger.open(ledger.path) as reopened:
        assert reopened.entries_of_kind("alpha")[-1] == late  # found by the tail scan
        with reopened.writer(log_key=LOG_KEY):
            assert reopened.state.kinds_indexed == 2
        assert reopened.kind_index_problems() == []


def test_a_lying_kind_index_is_refused_and_an_incomplete_one_is_found(ledger: Ledger) -> None:
    with ledger.writer(log_key=LOG_KEY) as writer:
        first = _record(writer, b"one", kind="alpha")
        _record(writer, b"two", kind="beta")
        _record(writer, b"three", kind="alpha")
    path = _kind_file(ledger, "alpha")
    path.write_bytes((1).to_bytes(8, "big") + path.read_bytes()[8:])  # entry 1 is a beta
    with pytest.raises(IntegrityError, match="is a alpha, it is not"):
        ledger.entries_of_kind("alpha")
    path.write_bytes((2).to_bytes(8, "big") + (2).to_bytes(8, "big"))  # out of order
    with pytest.raises(IntegrityError, match="out of order"):
        ledger.entries_of_kind("alpha")
    path.write_bytes((2).to_bytes(8, "big") + (9).to_bytes(8, "big"))  # beyond the log
    with pytest.raises(IntegrityError, match="not indexed"):
        ledger.entries_of_kind("alpha")
    path.write_bytes(bytes(16))  # entry 0 twice
    with pytest.raises(IntegrityError, match="out of order"):
        ledger.entries_of_kind("alpha")
    path.write_bytes((first.index).to_bytes(8, "big") + (2).to_bytes(8, "big"))
    assert ledger.kind_index_problems() == []
    # An index that omits an entry within a consistent length: only the full check finds it.
    path.write_bytes((2).to_bytes(8, "big"))
    state = json.loads((ledger.path / "state.json").read_bytes())
    state["kinds"]["files"]["alpha"] = 8
    (ledger.path / "state.json").write_text(json.dumps(state))
    with Ledger.open(ledger.path) as tampered:
        assert [e.index for e in tampered.entries_of_kind("alpha")] == [2]
        assert tampered.kind_index_problems() == [
            "kinds/alpha.idx: does not list the 2 alpha entries of the log"
        ]


@pytest.mark.parametrize(
    "kinds",
    [
        {"size": 1},
        {"size": -1, "files": {}},
        {"size": 1, "files": {"../x": 8}},
        {"size": 1, "files": {"alpha": 7}},
        [],
    ],
)
def test_a_malformed_kind_state_is_damage(ledger: Ledger, kinds: object) -> None:
    state = json.loads((ledger.path / "state.json").read_bytes())
    state["kinds"] = kinds
    (ledger.path / "state.json").write_text(json.dumps(state))
    with pytest.raises(IntegrityError, match=r"state\.json is damaged"):
        Ledger.open(ledger.path)
