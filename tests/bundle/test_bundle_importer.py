"""Tests for quarantined import: atomic add, no-op re-import, rollback and fork refusals."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import bundle_fixtures as bf
import chain_fixtures as cf
import pytest
from click.testing import CliRunner

from customer_model_factory.bundle import importer, quarantine_writer
from customer_model_factory.bundle.equivocation import (
    FORK,
    ROLLBACK,
    EquivocationProof,
    verify_equivocation,
)
from customer_model_factory.bundle.format import Bundle, bundle_id, encode_bundle
from customer_model_factory.bundle.importer import (
    IMPORTED,
    UNCHANGED,
    ImportRefusedError,
    ImportState,
    accepted_checkpoints,
    import_bundle,
    imported_origins,
    origin_dir,
    read_state,
)
from customer_model_factory.bundle.verify import Expectation, verify_bundle
from customer_model_factory.chain import kinds
from customer_model_factory.chain.findings import codes
from customer_model_factory.cli import cli
from customer_model_factory.ledger.errors import IntegrityError, LedgerError, LockError
from customer_model_factory.ledger.fsck import fsck
from customer_model_factory.ledger.keys import PrivateKey, save_public_key
from customer_model_factory.ledger.lock import WriterLock
from customer_model_factory.ledger.store import Ledger

KEYS = bf.KEYS
RECEIVER_KEY = PrivateKey.from_seed(b"\x21" * 32)


@pytest.fixture
def receiver(tmp_path: Path) -> Path:
    """An empty receiving ledger with its own origin and log key."""
    path = tmp_path / "receiver"
    Ledger.create(path, origin="site.example/air-gap", log_key=RECEIVER_KEY.public_key).close()
    return path


@pytest.fixture(params=["in_process", "child"])
def writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test twice: quarantine written by this process, then by a child process."""
    child = request.param == "child"
    monkeypatch.setattr(importer, "CHILD_WRITER_MIN_BLOBS", 0 if child else 10**9)
    return str(request.param)


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The child writers the test's imports start, in order."""
    started: list[Any] = []

    class Recorded(importer._ChildWriter):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(importer, "_ChildWriter", Recorded)
    return started


def reaped(child: Any) -> bool:
    """Return True if the child process has exited and was waited for (no zombie left)."""
    process = child._process
    if process.returncode is None:
        return False
    with pytest.raises(ChildProcessError):
        os.waitpid(process.pid, os.WNOHANG)
    return True


def run_import(receiver: Path, bundle: Bundle, **options: object) -> importer.ImportResult:
    options.setdefault("trust", bf.ROOT)
    options.setdefault("as_of", bf.AS_OF)
    return import_bundle(receiver, bundle, bundle_id=bundle_id(bundle), **options)  # type: ignore[arg-type]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with file contents (None for directories)."""
    result: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        if path.name == "lock":
            continue  # the lock file records the last holder's pid
        result[str(path.relative_to(root))] = None if path.is_dir() else path.read_bytes()
    return result


def test_an_import_adds_every_blob_and_records_what_was_accepted(
    receiver: Path, release_bundle: Bundle, writer: str
) -> None:
    result = run_import(receiver, release_bundle)
    assert result.status == IMPORTED and result.new_blobs == len(release_bundle.blobs)
    assert result.report is not None and result.report.ok
    with Ledger.open(receiver) as ledger:
        for blob_id in release_bundle.blob_ids:
            assert ledger.objects.get(blob_id) == release_bundle.blob(blob_id)
        # The bundle itself is kept, content-addressed, so the release can be re-verified.
        assert ledger.objects.get(bundle_id(release_bundle)) == encode_bundle(release_bundle)
        assert fsck(ledger, jobs=1) == []
    state = read_state(receiver, cf.ORIGIN)
    assert state is not None
    assert state.checkpoint_size == release_bundle.claimed_checkpoint.size
    assert state.releases == {release_bundle.release: bundle_id(release_bundle)}
    assert state.policy_version == 1 and state.public_log_key() == KEYS.log.public_key
    assert accepted_checkpoints(receiver, state) == {
        state.checkpoint_size: release_bundle.checkpoint
    }
    assert imported_origins(receiver) == [cf.ORIGIN]
    assert not (receiver / "imports" / "quarantine").exists()


def test_importing_the_same_bundle_twice_is_a_no_op(receiver: Path, release_bundle: Bundle) -> None:
    run_import(receiver, release_bundle)
    before = snapshot(receiver)
    again = run_import(receiver, release_bundle)
    assert again.status == UNCHANGED and again.new_blobs == 0
    assert snapshot(receiver) == before


def test_a_refused_import_changes_nothing(
    receiver: Path, release_bundle: Bundle, writer: str
) -> None:
    before = snapshot(receiver)
    stranger = PrivateKey.from_seed(b"\x31" * 32).public_key
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, release_bundle, trust=stranger)
    assert "policy_pin_mismatch" in codes(refused.value.findings)
    assert refused.value.evidence is None
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, release_bundle, expect=Expectation(customer_id="customer-beta"))
    assert codes(refused.value.findings) == ["release_identity_mismatch"]
    assert snapshot(receiver) == before


def test_an_unpromoted_release_is_refused(receiver: Path, promoted: bf.Promoted) -> None:
    bundle = bf.export(promoted)
    promotion = next(e for e in bundle.entries if e.record.kind == kinds.PROMOTION)
    entries = tuple(e for e in bundle.entries if e is not promotion)
    named = {i for e in entries for i in (e.record.blob_id, e.record.envelope_id)}
    unpromoted = dataclasses.replace(
        bundle,
        entries=entries,
        blobs=tuple(b for b in bundle.blobs if hashlib.sha256(b).hexdigest() in named),
    )
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, unpromoted)
    assert codes(refused.value.findings) == ["release_not_promoted"]


def test_a_later_bundle_must_bridge_from_the_accepted_size(
    receiver: Path, promoted: bf.Promoted
) -> None:
    first = bf.export(promoted)
    run_import(receiver, first)
    accepted = first.claimed_checkpoint.size
    with promoted.open() as ledger:
        bf.record_next_policy(ledger, KEYS, bf.policy_with_witness(version=2))
    unbridged = bf.export(promoted)
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, unbridged)
    assert codes(refused.value.findings) == ["consistency_proof_missing"]
    assert refused.value.evidence is None
    bridged = bf.export(promoted, since=accepted)
    result = run_import(receiver, bridged)
    assert result.status == IMPORTED and result.checkpoint_size == accepted + 1
    state = read_state(receiver, cf.ORIGIN)
    assert state is not None and (state.checkpoint_size, state.policy_version) == (accepted + 1, 2)
    assert sorted(accepted_checkpoints(receiver, state)) == [accepted, accepted + 1]
    # The first bundle again: its checkpoint was accepted, but its trust policy is now stale.
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, first)
    assert codes(refused.value.findings) == ["policy_rollback"]


def test_an_older_checkpoint_is_a_rollback_with_evidence(
    receiver: Path, promoted: bf.Promoted, tmp_path: Path
) -> None:
    old = bf.export(promoted, include_data=False)
    with promoted.open() as ledger:
        bf.record_next_policy(ledger, KEYS, bf.policy_with_witness(version=2))
    run_import(receiver, bf.export(promoted))
    evidence_path = tmp_path / "rollback.json"
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, old, evidence_path=evidence_path)
    assert codes(refused.value.findings) == ["checkpoint_rollback"]
    assert refused.value.evidence == evidence_path
    proof = EquivocationProof.from_json(evidence_path.read_bytes())
    assert proof.kind == ROLLBACK
    with pytest.raises(ImportRefusedError) as unwritable:
        run_import(receiver, old, evidence_path=tmp_path)  # a directory: cannot be written
    assert unwritable.value.evidence is None
    assert "could not be written" in unwritable.value.findings[0].message
    verdict = verify_equivocation(proof, [KEYS.log.public_key])
    assert verdict.proven and not verdict.equivocation


def forked_sender(tmp_path: Path) -> bf.Promoted:
    """A promoted release of the same origin under the same log key, with another history."""
    policy = bf.policy_with_witness(expires="2026-12-31T00:00:00Z")
    return bf.build_promoted(tmp_path / "fork", policy=policy)


def test_a_fork_at_a_known_size_is_refused_with_a_portable_proof(
    receiver: Path, release_bundle: Bundle, tmp_path: Path
) -> None:
    run_import(receiver, release_bundle)
    fork = forked_sender(tmp_path)
    forked_bundle = bf.export(fork)
    assert forked_bundle.claimed_checkpoint.size == release_bundle.claimed_checkpoint.size
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, forked_bundle)
    assert codes(refused.value.findings) == ["checkpoint_fork"]
    evidence = refused.value.evidence
    assert evidence is not None and evidence.is_relative_to(origin_dir(receiver, cf.ORIGIN))
    proof = EquivocationProof.from_json(evidence.read_bytes())
    assert proof.kind == FORK and proof.consistency is None
    assert verify_equivocation(proof, [KEYS.log.public_key]).equivocation


def test_a_fork_behind_a_larger_tree_is_proven_by_its_consistency_proof(
    receiver: Path, release_bundle: Bundle, tmp_path: Path
) -> None:
    run_import(receiver, release_bundle)
    accepted = release_bundle.claimed_checkpoint.size
    fork = forked_sender(tmp_path)
    with fork.open() as ledger:
        bf.record_next_policy(
            ledger, KEYS, bf.policy_with_witness(version=2, expires="2026-12-31T00:00:00Z")
        )
    forked_bundle = bf.export(fork, since=accepted)
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, forked_bundle)
    assert codes(refused.value.findings) == ["checkpoint_fork"]
    assert refused.value.evidence is not None
    proof = EquivocationProof.from_json(refused.value.evidence.read_bytes())
    assert proof.consistency is not None and proof.consistency.old_size == accepted
    verdict = verify_equivocation(proof, [KEYS.log.public_key])
    assert verdict.equivocation and verdict.offered is not None
    assert verdict.offered.size == accepted + 1


def test_an_older_trust_policy_is_refused(receiver: Path, promoted: bf.Promoted) -> None:
    with promoted.open() as ledger:
        bf.record_next_policy(ledger, KEYS, bf.policy_with_witness(version=2))
    current = bf.export(promoted)
    run_import(receiver, current)
    # The same checkpoint, with the newest policy version left out by a hostile sender.
    last_policy = [e for e in current.entries if e.record.kind == "trust_policy"][-1]
    entries = tuple(e for e in current.entries if e is not last_policy)
    dropped = {last_policy.record.blob_id, last_policy.record.envelope_id}
    stale = dataclasses.replace(
        current,
        entries=entries,
        blobs=tuple(b for b in current.blobs if hashlib.sha256(b).hexdigest() not in dropped),
    )
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, stale)
    assert codes(refused.value.findings) == ["policy_rollback"]


def test_an_interrupted_import_is_invisible_and_can_be_retried(
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(importer, "_commit", crash)
    with pytest.raises(OSError, match="disk full"):
        run_import(receiver, release_bundle)
    assert read_state(receiver, cf.ORIGIN) is None
    assert not (receiver / "imports" / "quarantine").exists()
    monkeypatch.undo()
    result = run_import(receiver, release_bundle)
    assert result.status == IMPORTED and result.new_blobs == 0  # the blobs were moved already


def test_bundle_content_never_chooses_a_path(receiver: Path, release_bundle: Bundle) -> None:
    # An origin full of dot-dots is a valid note key name; it only ever names a hash.
    assert origin_dir(receiver, "../../escape").parent == receiver / "imports"
    before = set(receiver.parent.iterdir())
    claimed = release_bundle.claimed_checkpoint
    from customer_model_factory.ledger.checkpoint import Checkpoint, sign_checkpoint

    hostile = dataclasses.replace(
        release_bundle,
        checkpoint=sign_checkpoint(
            Checkpoint("../../escape", claimed.size, claimed.root_hash), KEYS.log
        ),
    )
    with pytest.raises(ImportRefusedError):
        run_import(receiver, hostile)
    assert set(receiver.parent.iterdir()) == before
    assert not (receiver / "imports").exists()


def test_an_import_needs_the_lock_and_a_ledger(
    receiver: Path, release_bundle: Bundle, tmp_path: Path
) -> None:
    lock = WriterLock(receiver / "lock")
    lock.acquire()
    try:
        with pytest.raises(LockError):
            run_import(receiver, release_bundle)
    finally:
        lock.release()
    with pytest.raises(LedgerError, match="not a ledger"):
        run_import(tmp_path / "nowhere", release_bundle)
    assert not (tmp_path / "nowhere").exists()


def test_import_state_is_parsed_strictly(receiver: Path, release_bundle: Bundle) -> None:
    run_import(receiver, release_bundle)
    path = origin_dir(receiver, cf.ORIGIN) / "state.json"
    state = ImportState.from_bytes(path.read_bytes())
    assert ImportState.from_bytes(state.to_bytes()) == state
    for damage in (
        b"{}",
        b"\xff",
        path.read_bytes().replace(b'"checkpoint_size": ', b'"checkpoint_size": -'),
    ):
        with pytest.raises(IntegrityError):
            ImportState.from_bytes(damage)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(cf.ORIGIN.encode(), b"other.example/x"))
    with pytest.raises(IntegrityError):
        read_state(receiver, cf.ORIGIN)


def test_flush_is_one_filesystem_barrier_with_a_fallback(
    tmp_path: Path, real_sync_filesystem: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert real_sync_filesystem(tmp_path) is sys.platform.startswith("linux")
    barriers: list[Path] = []
    fsynced: list[Path] = []

    def unavailable(directory: Path) -> bool:
        barriers.append(directory)
        return False

    monkeypatch.setattr(importer, "sync_filesystem", unavailable)
    monkeypatch.setattr(importer, "fsync_paths", fsynced.extend)
    importer.flush(tmp_path, [tmp_path / "a", tmp_path / "b"])
    assert barriers == [tmp_path] and fsynced == [tmp_path / "a", tmp_path / "b"]
    importer.flush(tmp_path, [])
    assert barriers == [tmp_path]


@pytest.mark.parametrize("data", [b"[" * 100_000 + b"]" * 100_000, b"1" * 5000])
def test_hostile_import_state_is_damage_not_a_crash(data: bytes) -> None:
    with pytest.raises(IntegrityError):
        ImportState.from_bytes(data)


# --- durability order, flush failures and the move into objects/ ------------------------------


def record_steps(monkeypatch: pytest.MonkeyPatch, *, syncfs: bool) -> list[Any]:
    """Record the import's flushes (as ``"sync"`` or ``("fsync", paths)``), its verification
    and the start of its migration, in order."""
    steps: list[Any] = []

    def sync(directory: Path) -> bool:
        steps.append("sync")
        return syncfs

    monkeypatch.setattr(importer, "sync_filesystem", sync)
    monkeypatch.setattr(importer, "fsync_paths", lambda paths: steps.append(("fsync", list(paths))))
    for name in ("verify_bundle", "_migrate"):
        original = getattr(importer, name)

        def step(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            steps.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(importer, name, step)
    return steps


def test_the_quarantine_is_flushed_before_any_blob_moves(
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    steps = record_steps(monkeypatch, syncfs=True)
    run_import(receiver, release_bundle)
    moves = steps.index("_migrate")
    assert "verify_bundle" in steps[:moves] and "sync" in steps[:moves]
    assert steps[moves + 1 :].count("sync") == 1  # the moves, made durable in one barrier


def test_without_syncfs_every_quarantined_file_is_fsynced_before_any_moves(
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    steps = record_steps(monkeypatch, syncfs=False)
    run_import(receiver, release_bundle)
    moves = steps.index("_migrate")
    tag, flushed = steps[moves - 1]
    assert tag == "fsync" and steps.index("verify_bundle") < moves - 1
    assert sorted(path.name for path in flushed) == sorted(release_bundle.blob_ids)
    assert all(path.parent.parent == receiver / "imports" / "quarantine" for path in flushed)
    assert steps[moves + 1] == "sync"  # tried first, unavailable here
    tag, after = steps[moves + 2]
    fanouts = {blob_id[:2] for blob_id in release_bundle.blob_ids}
    assert tag == "fsync" and set(after) == {receiver / "objects"} | {
        receiver / "objects" / fanout for fanout in fanouts
    }


def test_a_failed_flush_is_the_imports_error_and_adds_nothing(
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    def failing(directory: Path) -> bool:
        raise OSError(5, "syncfs: write-back failed")

    before = snapshot(receiver)
    monkeypatch.setattr(importer, "sync_filesystem", failing)
    with pytest.raises(OSError, match="write-back failed"):
        run_import(receiver, release_bundle)
    assert snapshot(receiver) == before
    stranger = PrivateKey.from_seed(b"\x31" * 32).public_key
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, release_bundle, trust=stranger)
    assert "policy_pin_mismatch" in codes(refused.value.findings)
    notes = getattr(refused.value, "__notes__", [])
    if writer == "in_process":  # the flush ran alongside verification: its failure is noted
        assert any("write-back failed" in note for note in notes)
    else:  # the refusal stops the child; a flush only starts once it has exited
        assert all("write-back failed" in note for note in notes)
    assert snapshot(receiver) == before


def test_stored_blobs_stay_and_existing_fan_out_directories_are_joined(
    receiver: Path, release_bundle: Bundle, writer: str
) -> None:
    kept = release_bundle.blob_ids[0]
    with Ledger.open(receiver) as ledger:
        ledger.objects.put(release_bundle.blob(kept) or b"")
        inode = ledger.objects.path(kept).stat().st_ino
    result = run_import(receiver, release_bundle)
    assert result.new_blobs == len(release_bundle.blobs) - 1
    with Ledger.open(receiver) as ledger:
        assert ledger.objects.path(kept).stat().st_ino == inode
        assert all(ledger.objects.get(b) == release_bundle.blob(b) for b in release_bundle.blob_ids)
        assert fsck(ledger, jobs=1) == []


def test_a_blob_stored_after_the_quarantine_was_filled_is_kept_as_is(
    receiver: Path, release_bundle: Bundle, tmp_path: Path
) -> None:
    quarantine = receiver / "imports" / "quarantine" / "import-test"
    quarantine.mkdir(parents=True)
    objects = Ledger.open(receiver).objects
    written = importer._new_blobs(release_bundle, objects)
    assert written == list(release_bundle.blob_ids)
    importer._write_here(quarantine, release_bundle, written)
    assert sorted(os.listdir(quarantine)) == sorted(written)  # one flat directory
    late = written[-1]
    objects.put(release_bundle.blob(late) or b"")
    inode = objects.path(late).stat().st_ino
    assert importer._migrate(receiver, quarantine, written) == len(written) - 1
    assert objects.path(late).stat().st_ino == inode
    assert os.listdir(quarantine) == [late]
    assert all(objects.get(b) == release_bundle.blob(b) for b in written)


# --- the child writer -------------------------------------------------------------------------


def modes(root: Path) -> dict[str, int]:
    """The permission bits of every path under ``root`` (but the lock file)."""
    return {
        str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode)
        for path in sorted(root.rglob("*"))
        if path.name != "lock"
    }


def test_both_writers_import_a_real_bundle_identically(
    tmp_path: Path,
    release_bundle: Bundle,
    monkeypatch: pytest.MonkeyPatch,
    children: list[Any],
) -> None:
    outcomes = []
    for threshold in (importer.CHILD_WRITER_MIN_BLOBS, 0):  # the release is small: in-process
        monkeypatch.setattr(importer, "CHILD_WRITER_MIN_BLOBS", threshold)
        path = tmp_path / f"receiver-{threshold}"
        Ledger.create(path, origin="site.example/air-gap", log_key=RECEIVER_KEY.public_key).close()
        result = run_import(path, release_bundle)
        outcomes.append((result.to_dict(), snapshot(path), modes(path)))
        with Ledger.open(path) as ledger:
            assert fsck(ledger, jobs=1) == []
    assert len(children) == 1 and reaped(children[0]) and children[0]._process.returncode == 0
    assert outcomes[0] == outcomes[1]


def test_trace_data_is_written_here_before_verification_and_nothing_twice(
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch, children: list[Any]
) -> None:
    monkeypatch.setattr(importer, "CHILD_WRITER_MIN_BLOBS", 0)
    trace = {
        e.record.blob_id for e in release_bundle.entries if e.record.kind == kinds.TRACE_DATASET
    }
    assert trace and trace <= set(release_bundle.blob_ids)
    sent: list[str] = []
    encode = quarantine_writer.encode_frames

    def recording(frames: Any, *args: Any) -> Any:
        frames = list(frames)
        sent.extend(blob_id for blob_id, _ in frames)
        return encode(frames, *args)

    monkeypatch.setattr(importer, "encode_frames", recording)
    verify = verify_bundle
    streamed: dict[str, bytes] = {}

    def verify_from_files(*args: Any, **options: Any) -> Any:
        streamed.update((b, path.read_bytes()) for b, path in options["blob_files"].items())
        return verify(*args, **options)

    monkeypatch.setattr(importer, "verify_bundle", verify_from_files)
    run_import(receiver, release_bundle)
    assert len(children) == 1 and reaped(children[0])
    assert sorted(sent) == sorted(set(release_bundle.blob_ids) - trace)
    assert streamed == {b: release_bundle.blob(b) for b in trace}


def squat_on_last_blob(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a file appear in the quarantine, under the last blob's name, before the child
    starts: its ``O_EXCL`` create fails."""
    start = importer._start_writer

    def squatting(quarantine: Path, bundle: Bundle, blob_ids: list[str]) -> Any:
        (quarantine / blob_ids[-1]).write_bytes(b"squatter")
        return start(quarantine, bundle, blob_ids)

    monkeypatch.setattr(importer, "_start_writer", squatting)


def lie_about_first_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send the first blob with one byte appended: its data no longer hashes to its id."""
    encode = quarantine_writer.encode_frames

    def lying(frames: Any, *args: Any) -> Any:
        (blob_id, data), *rest = frames
        return encode([(blob_id, data + b" "), *rest], *args)

    monkeypatch.setattr(importer, "encode_frames", lying)


def fail_while_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop producing frames after two (the child then sees a clean end)."""
    encode = quarantine_writer.encode_frames

    def failing(frames: Any, *args: Any) -> Any:
        chunks = encode(frames, 1)  # one frame per chunk
        yield next(chunks)
        yield next(chunks)
        raise RuntimeError("no more frames")

    monkeypatch.setattr(importer, "encode_frames", failing)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (squat_on_last_blob, "exit status 1.*FileExistsError"),
        (lie_about_first_frame, "exit status 1.*does not hash to its id"),
        (fail_while_sending, "sending blobs to the quarantine writer failed: no more frames"),
    ],
)
def test_a_failed_child_writer_fails_the_import_and_adds_nothing(
    receiver: Path,
    release_bundle: Bundle,
    monkeypatch: pytest.MonkeyPatch,
    children: list[Any],
    damage: Any,
    says: str,
) -> None:
    monkeypatch.setattr(importer, "CHILD_WRITER_MIN_BLOBS", 0)
    damage(monkeypatch)
    migrated: list[Any] = []
    monkeypatch.setattr(importer, "_migrate", lambda *args: migrated.append(args))
    before = snapshot(receiver)
    with pytest.raises(importer.QuarantineWriteError, match=says) as failed:
        run_import(receiver, release_bundle)
    assert isinstance(failed.value, LedgerError) and len(str(failed.value).splitlines()) == 1
    assert "Traceback" not in str(failed.value)
    assert migrated == [] and snapshot(receiver) == before
    assert len(children) == 1 and reaped(children[0])


@pytest.mark.parametrize("extra", [False, True])
def test_a_quarantine_not_holding_exactly_the_blobs_sent_fails_the_import(
    receiver: Path,
    release_bundle: Bundle,
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
    extra: bool,
) -> None:
    finish = importer._finish_and_flush

    def then_damage(ledger_path: Path, child: Any) -> bool:
        synced = finish(ledger_path, child)
        (quarantine,) = (ledger_path / "imports" / "quarantine").iterdir()
        if extra:
            (quarantine / ("f" * 64)).write_bytes(b"")
        else:
            os.remove(quarantine / release_bundle.blob_ids[0])
        return synced

    monkeypatch.setattr(importer, "_finish_and_flush", then_damage)
    before = snapshot(receiver)
    says = "holds 1 unexpected file" if extra else "lacks 1 blob"
    with pytest.raises(importer.QuarantineWriteError, match=says):
        run_import(receiver, release_bundle)
    assert snapshot(receiver) == before


def test_a_refusal_while_the_child_is_still_writing_kills_and_reaps_it(
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch, children: list[Any]
) -> None:
    monkeypatch.setattr(importer, "CHILD_WRITER_MIN_BLOBS", 0)
    resume = threading.Event()
    encode = quarantine_writer.encode_frames

    def held(frames: Any, *args: Any) -> Any:
        chunks = encode(frames, 1)
        yield next(chunks)
        resume.wait(60)  # the child waits for more frames until it was stopped
        yield from chunks

    monkeypatch.setattr(importer, "encode_frames", held)
    alive: list[bool] = []
    stop = importer._ChildWriter.stop

    def stopping(self: Any) -> None:
        alive.append(self._process.poll() is None)
        stop(self)
        resume.set()

    monkeypatch.setattr(importer._ChildWriter, "stop", stopping)
    before = snapshot(receiver)
    stranger = PrivateKey.from_seed(b"\x31" * 32).public_key
    with pytest.raises(ImportRefusedError) as refused:
        run_import(receiver, release_bundle, trust=stranger)
    assert "policy_pin_mismatch" in codes(refused.value.findings)
    assert not getattr(refused.value, "__notes__", [])  # stopping it is no failure of its own
    assert alive[0] is True  # it was running when verification refused the bundle
    (child,) = children
    assert reaped(child) and child._process.returncode == -signal.SIGKILL
    assert snapshot(receiver) == before


def test_a_failure_before_the_child_is_fed_kills_and_reaps_it(
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch, children: list[Any]
) -> None:
    monkeypatch.setattr(importer, "CHILD_WRITER_MIN_BLOBS", 0)

    def full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(importer, "_write_here", full)  # the trace data, written first
    before = snapshot(receiver)
    with pytest.raises(OSError, match="No space left"):
        run_import(receiver, release_bundle)
    (child,) = children
    assert reaped(child) and child._process.returncode == -signal.SIGKILL
    assert snapshot(receiver) == before


def test_small_imports_start_no_child(
    receiver: Path, release_bundle: Bundle, children: list[Any]
) -> None:
    assert len(release_bundle.blobs) < importer.CHILD_WRITER_MIN_BLOBS
    run_import(receiver, release_bundle)
    assert children == []


# --- the command line, with a bundle above the threshold --------------------------------------


@pytest.fixture(scope="module")
def large_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Bundle, Path]:
    """A bundle file with just over CHILD_WRITER_MIN_BLOBS blobs, the bundle, and the pinned
    root key's file."""
    directory = tmp_path_factory.mktemp("large")
    candidates = importer.CHILD_WRITER_MIN_BLOBS // 2
    promoted = bf.build_promoted(directory, factory=bf.many_candidates(candidates))
    bundle = bf.export(promoted)
    assert len(bundle.blobs) > importer.CHILD_WRITER_MIN_BLOBS
    path = directory / "large.cmfbundle"
    path.write_bytes(encode_bundle(bundle))
    return path, bundle, save_public_key(directory / "root.pub", bf.ROOT)


def import_arguments(bundle_file: Path, root: Path, site: Path) -> list[str]:
    """The ``cmf bundle import`` command line of the large release into ``site``."""
    Ledger.create(site, origin="site.example/air-gap", log_key=RECEIVER_KEY.public_key).close()
    options = ["--trust-root", str(root), "--at", bf.AS_OF.isoformat(), "--ledger", str(site)]
    return ["bundle", "import", str(bundle_file), *options, "--json"]


def assert_imported(site: Path, bundle: Bundle, stdout: str) -> None:
    """The command printed an import of every blob, and the site's ledger holds them."""
    document = json.loads(stdout)
    assert document["status"] == IMPORTED and document["new_blobs"] == len(bundle.blobs)
    with Ledger.open(site) as ledger:
        assert all(ledger.objects.contains(blob_id) for blob_id in bundle.blob_ids)
        assert fsck(ledger, jobs=1) == []
    assert not (site / "imports" / "quarantine").exists()


def test_cmf_bundle_import_of_a_large_bundle_uses_the_child(
    large_release: tuple[Path, Bundle, Path], tmp_path: Path, children: list[Any]
) -> None:
    bundle_file, bundle, root = large_release
    site = tmp_path / "site"
    result = CliRunner().invoke(cli, import_arguments(bundle_file, root, site))
    assert result.exit_code == 0, result.stderr
    assert len(children) == 1 and reaped(children[0]) and children[0]._process.returncode == 0
    assert_imported(site, bundle, result.stdout)


def test_cmf_bundle_import_of_a_large_bundle_in_a_real_process(
    large_release: tuple[Path, Bundle, Path], tmp_path: Path
) -> None:
    bundle_file, bundle, root = large_release
    site = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "customer_model_factory.cli",
            *import_arguments(bundle_file, root, site),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert_imported(site, bundle, done.stdout)
