"""Tests for quarantined import: atomic add, no-op re-import, rollback and fork refusals."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import bundle_fixtures as bf
import chain_fixtures as cf
import pytest

from customer_model_factory.bundle import importer
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
from customer_model_factory.bundle.verify import Expectation
from customer_model_factory.chain import kinds
from customer_model_factory.chain.findings import codes
from customer_model_factory.ledger.errors import IntegrityError, LedgerError, LockError
from customer_model_factory.ledger.fsck import fsck
from customer_model_factory.ledger.keys import PrivateKey
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
    receiver: Path, release_bundle: Bundle
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


def test_a_refused_import_changes_nothing(receiver: Path, release_bundle: Bundle) -> None:
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
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
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
    monkeypatch.setattr(importer, "sync_filesystem", lambda d: barriers.append(d) or False)
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
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = record_steps(monkeypatch, syncfs=True)
    run_import(receiver, release_bundle)
    moves = steps.index("_migrate")
    assert "verify_bundle" in steps[:moves] and "sync" in steps[:moves]
    assert steps[moves + 1 :].count("sync") == 1  # the moves, made durable in one barrier


def test_without_syncfs_every_quarantined_file_is_fsynced_before_any_moves(
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
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
    receiver: Path, release_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
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
    assert any("write-back failed" in note for note in refused.value.__notes__)
    assert snapshot(receiver) == before


def test_stored_blobs_stay_and_existing_fan_out_directories_are_joined(
    receiver: Path, release_bundle: Bundle
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
    written = importer._fill_quarantine(quarantine, release_bundle, objects)
    assert sorted(written) == sorted(release_bundle.blob_ids)
    assert sorted(os.listdir(quarantine)) == sorted(written)  # one flat directory
    late = written[-1]
    objects.put(release_bundle.blob(late) or b"")
    inode = objects.path(late).stat().st_ino
    assert importer._migrate(receiver, quarantine, written) == len(written) - 1
    assert objects.path(late).stat().st_ino == inode
    assert os.listdir(quarantine) == [late]
    assert all(objects.get(b) == release_bundle.blob(b) for b in written)
