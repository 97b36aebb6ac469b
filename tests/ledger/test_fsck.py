"""Tests for fsck: a sound ledger has no findings; every kind of damage is found and named."""

from __future__ import annotations

import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger import fsck as fsck_module
from customer_model_factory.ledger.checkpoint import Checkpoint, sign_checkpoint
from customer_model_factory.ledger.dsse import Envelope, Signature
from customer_model_factory.ledger.fsck import Finding, Keyring, _ranges, fsck
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.logstore import LogStore
from customer_model_factory.ledger.note import Note, cosign, format_note, parse_note, sign_note
from customer_model_factory.ledger.objects import ObjectStore
from customer_model_factory.ledger.records import LeafRecord
from customer_model_factory.ledger.statement import PAYLOAD_TYPE, Parent, RecordStatement
from customer_model_factory.ledger.store import Ledger, LedgerWriter, LogEntry, find_signer

ORIGIN = "ledger.example/fsck"
TIME = "2026-01-01T00:00:00Z"
LOG_KEY = PrivateKey.from_seed(bytes(range(32)))
ALICE = PrivateKey.from_seed(b"a" * 32)
WITNESS = PrivateKey.from_seed(b"w" * 32)


def _record(writer: LedgerWriter, data: bytes, parents: tuple[Parent, ...] = ()) -> LogEntry:
    blob_id = writer.put_blob(data)
    return writer.record(
        kind="stage", blob_id=blob_id, parents=parents, signers=[ALICE], time=TIME, tool_version="t"
    )


def _build(path: Path) -> None:
    """A small ledger using every feature: parents, batches, a cosignature, a ref."""
    ledger = Ledger.create(path, origin=ORIGIN, log_key=LOG_KEY.public_key)
    with ledger, ledger.writer(log_key=LOG_KEY) as writer:
        parent_only = writer.put_blob(b"trace dataset")
        entry = _record(writer, b"report", (Parent("trace", parent_only),))
        for i in range(4):
            entry = _record(writer, f"stage {i}".encode(), (Parent("stage", entry.blob_id),))
        note = writer.commit()
        sig = cosign(parse_note(note).text, "auditor.example/w1", WITNESS, 1767225600)
        writer.add_cosignature(5, sig, WITNESS.public_key)
        for i in range(3):
            _record(writer, f"late {i}".encode())
        writer.set_ref("release", entry.blob_id)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "ledger"
    _build(path)
    return path


@pytest.fixture
def ledger_path(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ledger"
    shutil.copytree(pristine, copy)
    return copy


def _fsck(path: Path, jobs: int = 1) -> list[Finding]:
    with Ledger.open(path, audit=True) as ledger:
        return fsck(ledger, jobs=jobs)


def _codes(findings: list[Finding]) -> set[str]:
    return {finding.code for finding in findings}


def _flip(path: Path, position: int, mask: int = 0x01) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[position] ^= mask
    path.write_bytes(bytes(data))


def _entries(path: Path) -> list[LogEntry]:
    with Ledger.open(path) as ledger:
        return list(ledger.entries())


def _blob_path(ledger_path: Path, blob_id: str) -> Path:
    return ledger_path / "objects" / blob_id[:2] / blob_id[2:]


def test_sound_ledger_has_no_findings(ledger_path: Path) -> None:
    assert _fsck(ledger_path, jobs=1) == []


def test_worker_processes_give_the_same_answer(ledger_path: Path) -> None:
    entry = _entries(ledger_path)[2]
    _flip(_blob_path(ledger_path, entry.blob_id), 0)
    _flip(_blob_path(ledger_path, entry.envelope_id), 30)
    serial = _fsck(ledger_path, jobs=1)
    assert serial
    assert sorted(map(repr, _fsck(ledger_path, jobs=2))) == sorted(map(repr, serial))


def _small_ledger(path: Path, entries: int) -> Path:
    """A ledger of ``entries`` unrelated records."""
    ledger = Ledger.create(path, origin=ORIGIN, log_key=LOG_KEY.public_key)
    with ledger, ledger.writer(log_key=LOG_KEY) as writer:
        for i in range(entries):
            _record(writer, f"small {i}".encode())
    return path


def test_worker_processes_are_capped_by_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--jobs 64`` on a 3-entry ledger starts 3 workers, on 1 or 0 entries none at all."""
    sizes: list[int] = []

    class SpyPool(ThreadPoolExecutor):
        """Records the pool size asked for; threads stand in for the worker processes."""

        def __init__(self, max_workers: int, mp_context: object = None) -> None:
            sizes.append(max_workers)
            super().__init__(max_workers)

    monkeypatch.setattr(fsck_module, "ProcessPoolExecutor", SpyPool)
    three = _small_ledger(tmp_path / "three", 3)
    assert _fsck(three, jobs=64) == []
    assert _fsck(three, jobs=2) == []
    assert sizes == [3, 2]
    assert _fsck(_small_ledger(tmp_path / "one", 1), jobs=8) == []
    assert _fsck(_small_ledger(tmp_path / "empty", 0), jobs=8) == []
    assert sizes == [3, 2]  # one range of work or none: checked in this process


def test_ranges_cover_everything_once() -> None:
    for size in (0, 1, 7, 100):
        for parts in (1, 3, 8):
            covered = [i for lo, hi in _ranges(size, parts) for i in range(lo, hi)]
            assert covered == list(range(size))


def test_flipped_subject_blob_is_named(ledger_path: Path) -> None:
    entry = _entries(ledger_path)[1]
    _flip(_blob_path(ledger_path, entry.blob_id), 2)
    findings = _fsck(ledger_path)
    assert [(f.code, f.blob_id) for f in findings] == [("blob-corrupt", entry.blob_id)]


def test_truncated_blob_is_named(ledger_path: Path) -> None:
    entry = _entries(ledger_path)[0]
    path = _blob_path(ledger_path, entry.blob_id)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-1])
    assert [(f.code, f.blob_id) for f in _fsck(ledger_path)] == [("blob-corrupt", entry.blob_id)]


def test_flipped_envelope_is_named_with_its_entry(ledger_path: Path) -> None:
    entry = _entries(ledger_path)[3]
    _flip(_blob_path(ledger_path, entry.envelope_id), 40)
    findings = _fsck(ledger_path)
    assert ("blob-corrupt", entry.envelope_id, None) in {
        (f.code, f.blob_id, f.index) for f in findings
    }
    assert any(f.index == 3 and f.blob_id == entry.envelope_id for f in findings)


def test_deleted_blobs_are_named(ledger_path: Path) -> None:
    entries = _entries(ledger_path)
    _blob_path(ledger_path, entries[6].blob_id).unlink()
    _blob_path(ledger_path, entries[7].envelope_id).unlink()
    findings = {(f.code, f.blob_id, f.index) for f in _fsck(ledger_path)}
    assert ("blob-missing", entries[6].blob_id, 6) in findings
    assert ("envelope-missing", entries[7].envelope_id, 7) in findings


def test_deleted_parent_blob_is_named(ledger_path: Path) -> None:
    with Ledger.open(ledger_path) as ledger:
        parent = ledger.statement(ledger.entry(0)).parents[0]
    _blob_path(ledger_path, parent.sha256).unlink()
    findings = _fsck(ledger_path)
    assert [(f.code, f.blob_id, f.index) for f in findings] == [
        ("parent-missing", parent.sha256, 0)
    ]


@pytest.mark.parametrize("name", ["entries", "offsets", "hashes", "heads"])
def test_flipped_byte_in_each_log_file_is_found(ledger_path: Path, name: str) -> None:
    path = ledger_path / "log" / name
    _flip(path, path.stat().st_size // 2)
    codes = _codes(_fsck(ledger_path))
    # A flipped byte in the last head record is damage (log-damaged); the audit then reads the
    # log at the previous head, so the checkpoint that covered the last entries is ahead of it.
    assert codes & {
        "log-damaged",
        "entry-unreadable",
        "checkpoint-root-mismatch",
        "checkpoint-ahead",
    }


@pytest.mark.parametrize("name", ["entries", "offsets", "hashes"])
def test_truncated_log_file_is_found(ledger_path: Path, name: str) -> None:
    path = ledger_path / "log" / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])
    assert "log-damaged" in _codes(_fsck(ledger_path))


def test_flipped_checkpoint_signature_is_found(ledger_path: Path) -> None:
    path = ledger_path / "log" / "checkpoints" / "8"
    _flip(path, path.stat().st_size - 10)
    assert _codes(_fsck(ledger_path)) == {"checkpoint-invalid"}


def test_flipped_checkpoint_root_is_found(ledger_path: Path) -> None:
    path = ledger_path / "log" / "checkpoints" / "5"
    text_end = path.read_bytes().index(b"\n\n")
    _flip(path, text_end - 3)
    assert _codes(_fsck(ledger_path)) == {"checkpoint-invalid"}


def test_flipped_cosignature_is_found(ledger_path: Path) -> None:
    path = ledger_path / "log" / "checkpoints" / "5"
    _flip(path, path.stat().st_size - 5)
    assert _codes(_fsck(ledger_path)) == {"cosignature-invalid"}


def test_cosignature_by_an_unknown_key_is_found(ledger_path: Path) -> None:
    (ledger_path / "keys" / f"{WITNESS.public_key.key_id}.pem").unlink()
    assert _codes(_fsck(ledger_path)) == {"cosignature-unknown-key"}


def test_extra_signature_line_under_the_log_name_is_found(ledger_path: Path) -> None:
    path = ledger_path / "log" / "checkpoints" / "8"
    note = parse_note(path.read_bytes())
    impostor = PrivateKey.from_seed(b"i" * 32)
    forged = sign_note(note.text, ORIGIN, impostor)
    path.write_bytes(format_note(Note(note.text, (*note.signatures, forged))))
    assert _codes(_fsck(ledger_path)) == {"cosignature-unknown-key"}


def test_deleted_latest_checkpoint_is_found(ledger_path: Path) -> None:
    (ledger_path / "log" / "checkpoints" / "8").unlink()
    assert "checkpoint-missing" in _codes(_fsck(ledger_path))


def test_checkpoint_ahead_of_the_log_is_found(ledger_path: Path) -> None:
    fake = Checkpoint(ORIGIN, 9, bytes(32))
    (ledger_path / "log" / "checkpoints" / "9").write_bytes(sign_checkpoint(fake, LOG_KEY))
    assert _codes(_fsck(ledger_path)) == {"checkpoint-ahead", "checkpoint-latest-mismatch"}


def test_signed_checkpoint_with_a_wrong_root_is_found(ledger_path: Path) -> None:
    forged = Checkpoint(ORIGIN, 5, bytes(32))
    (ledger_path / "log" / "checkpoints" / "5").write_bytes(sign_checkpoint(forged, LOG_KEY))
    assert "checkpoint-root-mismatch" in _codes(_fsck(ledger_path))


def test_checkpoint_file_of_the_wrong_size_is_found(ledger_path: Path) -> None:
    checkpoints = ledger_path / "log" / "checkpoints"
    (checkpoints / "5").write_bytes((checkpoints / "8").read_bytes())
    assert "checkpoint-mismatch" in _codes(_fsck(ledger_path))


def test_damaged_key_file_is_found(ledger_path: Path) -> None:
    key_file = ledger_path / "keys" / f"{ALICE.public_key.key_id}.pem"
    key_file.write_bytes(WITNESS.public_key.to_pem())
    findings = _fsck(ledger_path)
    assert "key-damaged" in _codes(findings)
    assert {f.index for f in findings if f.code == "signature-invalid"} == set(range(8))


def test_flipped_index_record_is_found(ledger_path: Path) -> None:
    bucket = next((ledger_path / "index").iterdir())
    _flip(bucket, 35)
    assert _codes(_fsck(ledger_path)) == {"index-mismatch"}


def test_damaged_state_is_found(ledger_path: Path) -> None:
    (ledger_path / "state.json").write_text("not json")
    assert "state-damaged" in _codes(_fsck(ledger_path))


def test_bad_refs_are_found(ledger_path: Path) -> None:
    (ledger_path / "refs" / "broken").write_text("nonsense\n")
    (ledger_path / "refs" / "dangling").write_text("ab" * 32 + "\n")
    assert _codes(_fsck(ledger_path)) == {"ref-malformed", "ref-dangling"}


def _append_raw_leaf(ledger_path: Path, leaf: bytes) -> None:
    with LogStore(ledger_path / "log") as log:
        log.append(leaf)


def test_leaf_that_does_not_parse_is_found(ledger_path: Path) -> None:
    _append_raw_leaf(ledger_path, b"not a leaf record")
    findings = _fsck(ledger_path)
    assert [(f.code, f.index) for f in findings] == [("leaf-malformed", 8)]


def test_leaf_whose_envelope_is_about_another_blob_is_found(ledger_path: Path) -> None:
    entries = _entries(ledger_path)
    swapped = LeafRecord("stage", entries[0].blob_id, entries[1].envelope_id).to_bytes()
    _append_raw_leaf(ledger_path, swapped)
    findings = _fsck(ledger_path)
    assert [(f.code, f.index) for f in findings] == [("statement-mismatch", 8)]


def _store_raw_envelope(ledger_path: Path, envelope: Envelope, blob_id: str) -> None:
    with Ledger.open(ledger_path) as ledger:
        envelope_id = ledger.objects.put(envelope.to_json())
    _append_raw_leaf(ledger_path, LeafRecord("stage", blob_id, envelope_id).to_bytes())


def test_unsigned_and_badly_signed_envelopes_are_found(ledger_path: Path) -> None:
    blob_id = _entries(ledger_path)[0].blob_id
    statement = RecordStatement("stage", blob_id, (), ORIGIN, TIME, "t")
    unsigned = Envelope(statement.to_bytes(), PAYLOAD_TYPE)
    _store_raw_envelope(ledger_path, unsigned, blob_id)
    stranger = PrivateKey.from_seed(b"s" * 32)
    _store_raw_envelope(ledger_path, unsigned.signed_by(stranger), blob_id)
    findings = [(f.code, f.index) for f in _fsck(ledger_path)]
    assert findings == [("signature-missing", 8), ("signature-invalid", 9)]


def test_foreign_statement_and_bad_payload_type_are_found(ledger_path: Path) -> None:
    blob_id = _entries(ledger_path)[0].blob_id
    foreign = RecordStatement("stage", blob_id, (), "other.example/log", TIME, "t")
    _store_raw_envelope(
        ledger_path, Envelope(foreign.to_bytes(), PAYLOAD_TYPE).signed_by(ALICE), blob_id
    )
    _store_raw_envelope(
        ledger_path, Envelope(foreign.to_bytes(), "text/plain").signed_by(ALICE), blob_id
    )
    _store_raw_envelope(ledger_path, Envelope(b"{}", PAYLOAD_TYPE).signed_by(ALICE), blob_id)
    findings = [(f.code, f.index) for f in _fsck(ledger_path)]
    assert findings == [
        ("statement-mismatch", 8),
        ("envelope-malformed", 9),
        ("statement-malformed", 10),
    ]


def test_all_findings_are_reported_not_just_the_first(ledger_path: Path) -> None:
    entries = _entries(ledger_path)
    for entry in entries[:4]:
        _flip(_blob_path(ledger_path, entry.blob_id), 0)
    (ledger_path / "refs" / "dangling").write_text("cd" * 32 + "\n")
    findings = _fsck(ledger_path)
    assert len([f for f in findings if f.code == "blob-corrupt"]) == 4
    assert "ref-dangling" in _codes(findings)


def test_invalid_jobs_are_refused(ledger_path: Path) -> None:
    with Ledger.open(ledger_path) as ledger, pytest.raises(ValueError, match="jobs"):
        fsck(ledger, jobs=-1)


def _data_files(root: Path) -> list[Path]:
    """Files in which every byte is covered by a hash or a signature."""
    chosen = [p for p in (root / "objects").rglob("*") if p.is_file()]
    chosen += [root / "log" / name for name in ("entries", "offsets", "hashes", "heads")]
    chosen += sorted((root / "log" / "checkpoints").iterdir())
    chosen += sorted((root / "index").iterdir())
    return sorted(chosen)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_flipped_byte_in_any_data_file_is_found(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    copy = tmp_path_factory.mktemp("flip") / "ledger"
    shutil.copytree(pristine, copy)
    files = _data_files(copy)
    target = data.draw(st.sampled_from(files), label="file")
    position = data.draw(st.integers(0, target.stat().st_size - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    _flip(target, position, mask)
    try:
        findings = _fsck(copy)
    finally:
        shutil.rmtree(copy.parent)
    assert findings, f"no finding for {target.relative_to(copy)} byte {position} ^ {mask:#x}"


# --- robustness and the fast paths ---------------------------------------------------------------


def test_an_absurd_offset_is_reported_not_a_memory_error(ledger_path: Path) -> None:
    """Regression: the audit used to trust the last offset, and reading the last leaf asked
    the OS for ~7e16 bytes (MemoryError, which fsck caught as a workaround)."""
    offsets = ledger_path / "log" / "offsets"
    size = offsets.stat().st_size // 8
    with offsets.open("r+b") as handle:
        handle.seek(8 * (size - 1))
        handle.write((7 * 10**16).to_bytes(8, "big"))
    findings = _fsck(ledger_path)
    assert {"log-damaged", "entry-unreadable"} <= _codes(findings)
    assert [f.index for f in findings if f.code == "entry-unreadable"] == [size - 1]


def test_runs_and_io_threads_do_not_change_the_answer(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _entries(ledger_path)
    _flip(_blob_path(ledger_path, entries[2].blob_id), 0)
    _blob_path(ledger_path, entries[4].envelope_id).unlink()
    _blob_path(ledger_path, entries[6].blob_id).unlink()
    expected = _fsck(ledger_path)
    assert len(expected) == 3
    # Every read counts as slow: runs alternate between the I/O threads and inline probes.
    monkeypatch.setattr(fsck_module, "_SLOW_READ_SECONDS", 0.0)
    monkeypatch.setattr(fsck_module, "_THREADED_RUNS", 2)
    for run, threads in ((3, 1), (3, 5), (5, 2), (1, 3), (2, 8)):  # runs split the chain
        monkeypatch.setattr(fsck_module, "_RUN", run)
        monkeypatch.setattr(fsck_module, "_IO_THREADS", threads)
        assert _fsck(ledger_path) == expected, (run, threads)


def test_a_subject_named_by_many_entries_is_read_once(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _entries(ledger_path)
    for _ in range(3):  # the same record again: same subject, same envelope
        _append_raw_leaf(ledger_path, entries[0].leaf)
    _flip(_blob_path(ledger_path, entries[0].blob_id), 1)
    reads: list[str] = []
    real = ObjectStore.hash_stored

    def counted(self: ObjectStore, blob_id: str) -> str:
        reads.append(blob_id)
        return real(self, blob_id)

    monkeypatch.setattr(ObjectStore, "hash_stored", counted)
    monkeypatch.setattr(fsck_module, "_RUN", 2)  # the repeats fall in later runs
    monkeypatch.setattr(fsck_module, "_SLOW_READ_SECONDS", 0.0)  # some runs on the I/O threads
    findings = _fsck(ledger_path)
    assert reads.count(entries[0].blob_id) == 1
    assert [(f.code, f.blob_id) for f in findings] == [("blob-corrupt", entries[0].blob_id)]


def test_an_unreadable_subject_blob_is_a_finding(ledger_path: Path) -> None:
    entry = _entries(ledger_path)[5]
    path = _blob_path(ledger_path, entry.blob_id)
    path.unlink()
    path.mkdir()  # reading it fails with EISDIR
    findings = _fsck(ledger_path)
    assert [(f.code, f.blob_id) for f in findings] == [("blob-unreadable", entry.blob_id)]


@settings(max_examples=60, deadline=None)
@given(
    signer=st.sampled_from([ALICE, WITNESS, LOG_KEY]),
    hint=st.sampled_from(["", "unknown", ALICE.public_key.key_id, WITNESS.public_key.key_id]),
    truncate=st.booleans(),
    trusted=st.lists(st.sampled_from([ALICE, WITNESS]), unique=True),
)
def test_keyring_verifies_like_find_signer(
    signer: PrivateKey, hint: str, truncate: bool, trusted: list[PrivateKey]
) -> None:
    """The prepared keyring accepts exactly the signatures store.find_signer accepts."""
    message = b"DSSEv1 3 abc 3 xyz"
    raw = signer.sign(message)
    signature = Signature(hint, raw[:-1] if truncate else raw)
    keys = {key.public_key.key_id: key.public_key for key in trusted}
    prepared = Keyring({key_id: key.raw for key_id, key in keys.items()})
    assert prepared.verifies(signature, message) is (
        find_signer(signature, message, keys) is not None
    )


def test_slow_reads_move_to_the_io_threads_and_fast_ones_back(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each read is keyed by the entry it reads (one per run here), not by when it started: an
    # I/O thread may start after the main thread has begun reading the next run inline.
    readers: dict[int, str] = {}
    real = fsck_module._read_blobs
    entry_of = {entry.envelope_id: entry.index for entry in _entries(ledger_path)}

    def recording(objects: ObjectStore, subjects: list[str], envelopes: list[str]) -> object:
        (envelope,) = envelopes
        readers[entry_of[envelope]] = threading.current_thread().name
        return real(objects, subjects, envelopes)

    monkeypatch.setattr(fsck_module, "_read_blobs", recording)
    monkeypatch.setattr(fsck_module, "_RUN", 1)
    monkeypatch.setattr(fsck_module, "_THREADED_RUNS", 2)
    monkeypatch.setattr(fsck_module, "_SLOW_READ_SECONDS", float("inf"))  # every read is fast
    assert _fsck(ledger_path) == []
    assert sorted(readers) == list(range(8))
    assert set(readers.values()) == {"MainThread"}  # so all are read inline
    readers.clear()
    monkeypatch.setattr(fsck_module, "_SLOW_READ_SECONDS", 0.0)  # every inline run is "slow"
    assert _fsck(ledger_path) == []
    inline = ["MainThread" if readers[i] == "MainThread" else "io" for i in range(8)]
    assert inline == ["MainThread", "io", "io"] * 2 + ["MainThread", "io"]  # 8 entries
