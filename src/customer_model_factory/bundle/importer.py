"""Quarantined import of a release bundle into a receiving ledger (git ``receive-pack`` style).

Layout added to the receiving ledger (docs/bundle-format.md section 5)::

    imports/quarantine/<random>/<blob id>     blobs of an import in progress (then moved)
    imports/<sha256(origin)>/state.json       what this site accepted from that log: the
                                              latest checkpoint size, trust policy version,
                                              log key, and release gate -> bundle id
    imports/<sha256(origin)>/checkpoints/<n>  every signed checkpoint accepted (size n)
    imports/<sha256(origin)>/evidence/...     equivocation / rollback proofs of refusals

``import_bundle``, holding the ledger's writer lock:

1. writes every blob of the bundle not yet stored into a fresh quarantine directory (file
   names are ids computed from the bytes; nothing flushed yet). From CHILD_WRITER_MIN_BLOBS
   blobs on, a child process (``quarantine_writer``) creates the files, fed through a pipe by
   a background thread, while this process verifies: creating a file is kernel time, and a
   thread of this process would wait for the interpreter lock after each one. Trace data is
   always written here first, since verification reads it from the quarantine;
2. verifies the whole bundle (``verify_bundle``, trace data streamed from its quarantined
   file: the very bytes that are migrated) and checks that its checkpoint is consistent with
   every checkpoint already accepted from that log (a rollback to a smaller tree, or another
   root for a known size, is refused with a portable proof). Meanwhile the background thread
   waits for the child to exit, then flushes the quarantine, on Linux with one ``syncfs``;
   elsewhere each file is fsynced after. Then the quarantine must hold exactly the blobs sent;
3. migrates the blobs into ``objects/`` (rename, then one more flush), stores the bundle
   itself as a blob, the accepted checkpoint, and last ``state.json``: the single commit point.

Safety: nothing outside the quarantine changes before the first rename of step 3, which starts
only after verification passed, the child exited 0 (a failure of the child, of feeding it, or
a quarantine holding other files than those sent is a QuarantineWriteError), and the flush
returned, so no object file ever appears with missing bytes and nothing unverified becomes
reachable. The child trusts nothing it is sent: it re-hashes every blob and refuses one whose
bytes do not match its id, creates only new files (``O_EXCL | O_NOFOLLOW``) named by 64 hex
digits in the quarantine, and stops at the first problem. When verification fails, or
anything else while the child runs, the child is killed and reaped and the background thread
waited for (a failure of a flush it had started is noted on the error) before the quarantine
is removed: no process or thread outlives a failed import.
Whatever happens before the commit, the accepted state is unchanged; a refused or interrupted
import leaves nothing reachable (stray content-addressed blobs are harmless and reused by the
next import). Importing a bundle already imported is a no-op.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence, Set
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from .._frozen import frozen
from .._jsonfile import manifest_bytes
from ..chain.findings import ChainError, ChainFinding, error
from ..chain.kinds import TRACE_DATASET
from ..ledger.blobs import validate_blob_id
from ..ledger.checkpoint import Checkpoint
from ..ledger.durable import fsync_paths, make_dirs, replace_file
from ..ledger.errors import FormatError, IntegrityError, LedgerError
from ..ledger.keys import PublicKey, check_key_name
from ..ledger.lock import WriterLock
from ..ledger.note import parse_note
from ..ledger.objects import ObjectStore
from ..ledger.policy import TrustPolicy
from ..ledger.store import LOCK_FILE, OBJECTS_DIR, Ledger
from . import quarantine_writer
from .equivocation import FORK, ROLLBACK, EquivocationProof, Relation, make_proof, relate
from .format import Bundle, encode_bundle
from .quarantine_writer import (
    MAX_BLOB_BYTES,
    MAX_MESSAGE_CHARS,
    encode_frames,
    open_directory,
    write_blob,
)
from .verify import BundleReport, Expectation, verify_bundle

IMPORTS_DIR = "imports"
QUARANTINE_DIR = "quarantine"
STATE_FILE = "state.json"
CHECKPOINTS_DIR = "checkpoints"
EVIDENCE_DIR = "evidence"
STATE_FORMAT = "cmf-imports/v1"
IMPORTED = "imported"
UNCHANGED = "unchanged"
# From this many new blobs on, they are written by a child process while this one verifies;
# below it, starting a Python (about 30 ms) costs more than the overlap saves.
CHILD_WRITER_MIN_BLOBS = 1_000


class ImportRefusedError(ChainError):
    """The bundle was refused; nothing was added. ``evidence`` is the proof file written for
    a rollback or fork, if any."""

    def __init__(self, findings: list[ChainFinding], evidence: Path | None = None) -> None:
        super().__init__(findings)
        self.evidence = evidence


class QuarantineWriteError(LedgerError):
    """The quarantine could not be written (the child writer failed, sending it the blobs
    failed, or the quarantine does not hold exactly the blobs sent); nothing was added."""


def origin_dir_name(origin: str) -> str:
    """Return the directory name of a log origin: hex SHA-256 of its UTF-8 bytes.

    Origins may contain ``/``; hashing keeps every path under ``imports/`` fixed-shape.
    """
    return hashlib.sha256(check_key_name(origin, error=FormatError).encode("utf-8")).hexdigest()


@frozen
class ImportState:
    """What a site accepted from one log (``imports/<origin>/state.json``)."""

    origin: str
    log_key: str
    checkpoint_size: int
    policy_version: int
    releases: Mapping[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Return canonical JSON bytes (``_jsonfile.manifest_bytes``)."""
        return manifest_bytes(
            {
                "format": STATE_FORMAT,
                "origin": self.origin,
                "log_key": self.log_key,
                "checkpoint_size": self.checkpoint_size,
                "policy_version": self.policy_version,
                "releases": dict(sorted(self.releases.items())),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ImportState:
        """Parse strictly; IntegrityError naming the problem (the file is local state)."""
        try:
            document = json.loads(data.decode("utf-8"))
            if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
                raise ValueError(f"not {STATE_FORMAT}")
            fields = {"format", "origin", "log_key", "checkpoint_size", "policy_version"}
            if set(document) != fields | {"releases"}:
                raise ValueError("unexpected members")
            releases = document["releases"]
            if not isinstance(releases, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in releases.items()
            ):
                raise ValueError("releases must map ids to ids")
            state = cls(
                origin=document["origin"],
                log_key=document["log_key"],
                checkpoint_size=document["checkpoint_size"],
                policy_version=document["policy_version"],
                releases=releases,
            )
            if not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0
                for v in (state.checkpoint_size, state.policy_version)
            ):
                raise ValueError("sizes and versions must be non-negative integers")
        except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
            raise IntegrityError(f"imports {STATE_FILE} is damaged: {exc}") from None
        return state

    def public_log_key(self) -> PublicKey:
        """Return the log key this state recorded (the key that signed the checkpoints)."""
        name, key = PublicKey.parse_verifier_key(self.log_key)
        if name != self.origin:
            raise IntegrityError(f"imports state: log key is named {name!r}, not {self.origin!r}")
        return key


@frozen
class ImportResult:
    """What ``import_bundle`` did: ``imported`` or ``unchanged`` (already imported)."""

    status: str
    origin: str
    release_blob_id: str
    bundle_id: str
    checkpoint_size: int
    new_blobs: int
    report: BundleReport | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "status": self.status,
            "origin": self.origin,
            "release_blob_id": self.release_blob_id,
            "bundle_id": self.bundle_id,
            "checkpoint_size": self.checkpoint_size,
            "new_blobs": self.new_blobs,
            "report": self.report.to_dict() if self.report is not None else None,
        }


# --- reading the receiving side's state --------------------------------------------------------


def origin_dir(ledger_path: Path, origin: str) -> Path:
    """Return ``imports/<sha256(origin)>`` of a ledger."""
    return Path(ledger_path) / IMPORTS_DIR / origin_dir_name(origin)


def read_state(ledger_path: Path, origin: str) -> ImportState | None:
    """Return the import state for ``origin``, or None if nothing was imported from it."""
    try:
        data = (origin_dir(ledger_path, origin) / STATE_FILE).read_bytes()
    except FileNotFoundError:
        return None
    state = ImportState.from_bytes(data)
    if state.origin != origin:
        raise IntegrityError(f"imports state for {origin!r} names origin {state.origin!r}")
    return state


def imported_origins(ledger_path: Path) -> list[str]:
    """Return the origins this ledger imported from, sorted."""
    root = Path(ledger_path) / IMPORTS_DIR
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    origins = []
    for name in names:
        path = root / name / STATE_FILE
        if len(name) == 64 and path.is_file():
            origins.append(ImportState.from_bytes(path.read_bytes()).origin)
    return sorted(origins)


def accepted_checkpoints(ledger_path: Path, state: ImportState) -> dict[int, bytes]:
    """Return size -> signed note of every checkpoint accepted from the state's origin.

    Files beyond ``state.checkpoint_size`` were written by an import interrupted before its
    commit and are not accepted.
    """
    directory = origin_dir(ledger_path, state.origin) / CHECKPOINTS_DIR
    accepted: dict[int, bytes] = {}
    for name in sorted(os.listdir(directory)) if directory.is_dir() else []:
        if name.isdigit() and str(int(name)) == name and int(name) <= state.checkpoint_size:
            accepted[int(name)] = (directory / name).read_bytes()
    if state.checkpoint_size not in accepted:
        raise IntegrityError(f"imports: the accepted checkpoint {state.checkpoint_size} is missing")
    return accepted


def _claimed(note: bytes) -> Checkpoint:
    """Return the checkpoint of a locally stored (already verified) note."""
    return Checkpoint.from_text(parse_note(note).text)


# --- importing ------------------------------------------------------------------------------------


def import_bundle(
    ledger_path: Path,
    bundle: Bundle,
    *,
    bundle_id: str,
    trust: TrustPolicy | PublicKey,
    as_of: datetime,
    expect: Expectation | None = None,
    min_witnesses: int = 0,
    evidence_path: Path | None = None,
    wait: float = 0.0,
) -> ImportResult:
    """Import ``bundle`` into the ledger at ``ledger_path`` through a quarantine.

    Returns ``unchanged`` when this bundle was imported before. Raises ImportRefusedError
    (nothing added) when the bundle does not verify and show a promoted release, when its log
    is inconsistent with what this site accepted (``checkpoint_rollback`` /
    ``checkpoint_fork``: a proof is written to ``evidence_path``, default under
    ``imports/<origin>/evidence/``), when it lacks the consistency proof it needs, or when its
    trust policy is older than the one accepted before (``policy_rollback``).
    QuarantineWriteError (nothing added) when the quarantine could not be written.
    """
    ledger_path = Path(ledger_path)
    Ledger.open(ledger_path).close()  # refuse anything that is not a ledger, before writing
    origin = bundle.claimed_checkpoint.origin
    lock = WriterLock(ledger_path / LOCK_FILE)
    lock.acquire(wait)
    try:
        state = read_state(ledger_path, origin)
        if state is not None and state.releases.get(bundle.release) == bundle_id:
            return ImportResult(
                UNCHANGED, origin, bundle.release, bundle_id, state.checkpoint_size, 0, None
            )
        objects = ObjectStore(ledger_path / OBJECTS_DIR)
        quarantine_root = ledger_path / IMPORTS_DIR / QUARANTINE_DIR
        fsync_paths(make_dirs(quarantine_root))
        quarantine = Path(tempfile.mkdtemp(prefix="import-", dir=quarantine_root))
        try:
            written = _new_blobs(bundle, objects)
            # Verification streams trace data from its quarantined (or already stored) file:
            # the very file that is migrated. So those are written here, before it starts.
            trace = {e.record.blob_id for e in bundle.entries if e.record.kind == TRACE_DATASET}
            files = {blob_id: objects.path(blob_id) for blob_id in trace}
            files.update((b, Path(_quarantined(quarantine, b))) for b in written if b in trace)
            by_child = _for_child(bundle, written, keep_here=trace)

            def verify() -> BundleReport:
                report = verify_bundle(
                    bundle,
                    trust=trust,
                    as_of=as_of,
                    expect=expect,
                    min_witnesses=min_witnesses,
                    bundle_id=bundle_id,
                    blob_files={k: v for k, v in files.items() if v.is_file()},
                )
                _require_acceptable(ledger_path, bundle, report, state, evidence_path)
                return report

            with _start_writer(quarantine, bundle, by_child) as child:
                sent = set(by_child)
                _write_here(quarantine, bundle, [b for b in written if b not in sent])
                report = _verify_while_writing(ledger_path, quarantine, written, verify, child)
            new_blobs = _migrate(ledger_path, quarantine, written)
            _commit(ledger_path, bundle, bundle_id, report, state)
        finally:
            shutil.rmtree(quarantine, ignore_errors=True)
            _remove_if_empty(quarantine_root, quarantine_root.parent)
    finally:
        lock.release()
    size = report.checkpoint_size if report.checkpoint_size is not None else 0
    return ImportResult(IMPORTED, origin, bundle.release, bundle_id, size, new_blobs, report)


def _remove_if_empty(*directories: Path) -> None:
    """Remove each directory that is empty, in order, so a refused import leaves no trace."""
    for directory in directories:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _quarantined(quarantine: Path, blob_id: str) -> str:
    """Return where an import's quarantine holds ``blob_id``: ``quarantine/<id>``.

    One flat directory: ext4 spreads new directories over its block groups, so creating the
    files under 256 fresh fan-out directories costs about twice as much (measured).
    """
    return os.path.join(quarantine, blob_id)


def _new_blobs(bundle: Bundle, objects: ObjectStore) -> list[str]:
    """Return the ids of the carried blobs not yet stored, in the bundle's order.

    The ids were computed from the bytes, so every name is 64 hex digits: no bundle content
    ever chooses a path. A blob whose fan-out directory is absent from ``objects/`` is not
    stored (the writer lock is held), so only the others cost a ``stat``.
    """
    stored_fanouts = _listing(objects.root)
    return [
        blob_id
        for blob_id in bundle.blob_ids
        if blob_id[:2] not in stored_fanouts or not objects.contains(blob_id)
    ]


def _carried(bundle: Bundle, blob_id: str) -> bytes:
    """Return the bytes of a blob the bundle carries."""
    data = bundle.blob(blob_id)
    if data is None:  # impossible: blob_ids lists carried blobs only
        raise RuntimeError(f"blob {blob_id} vanished from the bundle")
    return data


def _for_child(bundle: Bundle, written: Sequence[str], *, keep_here: Set[str]) -> list[str]:
    """Return which of the blobs ``written`` a child process writes: none when fewer than
    CHILD_WRITER_MIN_BLOBS are to be written (starting a Python costs more than it saves) or
    this interpreter cannot start another (embedded), else all but those in ``keep_here`` and
    any larger than a frame may carry."""
    if len(written) < CHILD_WRITER_MIN_BLOBS or not sys.executable:
        return []
    return [
        blob_id
        for blob_id in written
        if blob_id not in keep_here and len(_carried(bundle, blob_id)) <= MAX_BLOB_BYTES
    ]


def _write_here(quarantine: Path, bundle: Bundle, blob_ids: Sequence[str]) -> None:
    """Write the blobs ``blob_ids`` of ``bundle`` into the quarantine from this process
    (``quarantine_writer.write_blob``: read-only, new files only, not yet durable)."""
    if not blob_ids:
        return
    directory_fd = open_directory(str(quarantine))
    try:
        for blob_id in blob_ids:
            write_blob(directory_fd, blob_id, _carried(bundle, blob_id))
    finally:
        os.close(directory_fd)


class _ChildWriter:
    """A ``quarantine_writer`` child process writing blobs into a quarantine, fed by ``finish``
    (run on a background thread); a context manager that always reaps the child."""

    def __init__(self, quarantine: Path, frames: Sequence[tuple[str, bytes]]) -> None:
        """Start the child; it waits for frames on its standard input.

        It runs ``quarantine_writer``'s own file, the code this process imported, which needs
        only the standard library: so ``-I`` (no environment variables, user site or working
        directory) and ``-S`` (no site-packages, no ``.pth`` file runs) keep everything but
        that file out of it, and save most of an interpreter's start-up.
        """
        self._frames = frames
        self._stopped = False
        writer = os.path.abspath(quarantine_writer.__file__)
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", writer, str(quarantine)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(self) -> bool:
        """Send every frame, close the child's input and wait for it to exit.

        Return True when it exited 0 (every blob written), False when ``stop`` was called;
        else raise QuarantineWriteError with the child's exit status and its one stderr line,
        or the failure of sending.
        """
        stdin, stderr = self._process.stdin, self._process.stderr
        if stdin is None or stderr is None:
            raise RuntimeError("the quarantine writer was started without pipes")
        failure: Exception | None = None
        try:
            try:
                for chunk in encode_frames(self._frames):
                    stdin.write(chunk)  # a blocking pipe write releases the interpreter lock
            finally:
                stdin.close()
        except BrokenPipeError:
            pass  # the child stopped reading: its exit status says why
        except Exception as exc:  # the child still has to be reaped first
            failure = exc
        message = " ".join(stderr.read().decode("utf-8", "replace").split())[:MAX_MESSAGE_CHARS]
        status = self._process.wait()
        if self._stopped:
            return False
        if failure is not None:
            raise QuarantineWriteError(f"sending blobs to the quarantine writer failed: {failure}")
        if status != 0:
            how = f"exit status {status}" if status > 0 else f"killed by signal {-status}"
            raise QuarantineWriteError(f"the quarantine writer failed ({how}): {message}")
        return True

    def stop(self) -> None:
        """Kill the child (the import failed); ``finish`` then returns False."""
        self._stopped = True
        self._process.kill()

    def __enter__(self) -> _ChildWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Kill the child if the import failed; in any case close its pipes and reap it.

        Runs after ``finish``'s thread has returned (or was never started), so no other thread
        uses the pipes.
        """
        if exc_type is not None:
            self.stop()
        for pipe in (self._process.stdin, self._process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):  # unsent data on a broken pipe
                    pipe.close()
        self._process.wait()


def _start_writer(
    quarantine: Path, bundle: Bundle, blob_ids: Sequence[str]
) -> contextlib.AbstractContextManager[_ChildWriter | None]:
    """Return a child writer for ``blob_ids`` (started), or None when there are none."""
    if not blob_ids:
        return contextlib.nullcontext()
    return _ChildWriter(quarantine, [(b, _carried(bundle, b)) for b in blob_ids])


def _note_failure(barrier: Future[bool], exc: BaseException) -> None:
    """Wait for the background job of a failed import; add its own failure, if any, to
    ``exc`` as a note (the import's error stays the one that stopped it; neither is lost)."""
    problem = barrier.exception()
    if problem is not None:
        exc.add_note(f"writing or flushing the quarantine failed as well: {problem!r}")


def _finish_and_flush(ledger_path: Path, child: _ChildWriter | None) -> bool:
    """Background job: let ``child`` (if any) write its blobs, then flush the file system;
    return whether ``syncfs`` did (False: each file must be fsynced). Nothing is flushed for
    a stopped child: that import failed already."""
    if child is not None and not child.finish():
        return False
    return sync_filesystem(ledger_path)


def _verify_while_writing(
    ledger_path: Path,
    quarantine: Path,
    written: Sequence[str],
    verify: Callable[[], BundleReport],
    child: _ChildWriter | None,
) -> BundleReport:
    """Return ``verify()`` (which raises to refuse) once the quarantine holds exactly the
    blobs ``written``, durably.

    A background thread lets ``child`` write its share and exit, then flushes: on Linux one
    ``syncfs`` (a single system call, so the threads hardly compete for the interpreter
    lock); where there is none each file is fsynced once ``verify`` has passed. If ``verify``
    fails the child is killed, and the thread waited for; its own failure is noted on the
    refusal. Otherwise a failure of the child or of the flush is the import's error.
    """
    if not written:
        return verify()
    with ThreadPoolExecutor(1, thread_name_prefix="cmf-import-writer") as pool:
        barrier = pool.submit(_finish_and_flush, ledger_path, child)
        try:
            report = verify()
        except BaseException as exc:
            if child is not None:
                child.stop()
            _note_failure(barrier, exc)
            raise
        synced = barrier.result()
    _require_quarantined(quarantine, written)
    if not synced:
        fsync_paths([Path(_quarantined(quarantine, blob_id)) for blob_id in written])
    return report


def _require_quarantined(quarantine: Path, written: Sequence[str]) -> None:
    """Raise QuarantineWriteError unless the quarantine holds exactly the files ``written``:
    a writer that stopped early, or anything else that wrote there, fails the import."""
    present = set(os.listdir(quarantine))
    expected = set(written)
    if present != expected:
        missing, extra = sorted(expected - present), sorted(present - expected)
        raise QuarantineWriteError(
            f"the quarantine lacks {len(missing)} blob(s) {missing[:3]} and holds "
            f"{len(extra)} unexpected file(s) {extra[:3]}"
        )


def _listing(directory: Path) -> frozenset[str]:
    """Return the names in ``directory`` (none when it does not exist)."""
    try:
        return frozenset(os.listdir(directory))
    except FileNotFoundError:
        return frozenset()


def _require_acceptable(
    ledger_path: Path,
    bundle: Bundle,
    report: BundleReport,
    state: ImportState | None,
    evidence_path: Path | None,
) -> None:
    """Raise ImportRefusedError unless the bundle verifies and fits what was accepted."""
    if not report.ok:
        blocking = [f for f in report.findings if f.blocking] or [
            error("release_not_promoted", f"release status is {report.status}")
        ]
        raise ImportRefusedError(blocking)
    if state is None:
        return  # the first import from this log: nothing to be consistent with
    offered = bundle.claimed_checkpoint  # report.ok: it is the verified checkpoint
    accepted = accepted_checkpoints(ledger_path, state)
    relation, known = _relation(accepted, offered, bundle)
    if not relation.consistent:
        code = {FORK: "checkpoint_fork", ROLLBACK: "checkpoint_rollback"}.get(
            relation.kind, "consistency_proof_missing"
        )
        message, evidence = relation.message, None
        if relation.kind in (FORK, ROLLBACK):
            proof = make_proof(
                relation,
                origin=offered.origin,
                log_key=state.public_log_key(),
                accepted=accepted[known],
                offered=bundle.checkpoint,
                consistency=bundle.consistency,
            )
            try:
                evidence = _write_evidence(ledger_path, proof, known, offered.size, evidence_path)
            except OSError as exc:  # the refusal stands; say why its proof is missing
                message += f" (the proof could not be written: {exc})"
        raise ImportRefusedError([error(code, message)], evidence)
    if report.policy_version is not None and report.policy_version < state.policy_version:
        raise ImportRefusedError(
            [
                error(
                    "policy_rollback",
                    f"the bundle's trust policy is version {report.policy_version}; this site "
                    f"already accepted version {state.policy_version}",
                )
            ]
        )


def _relation(
    accepted: Mapping[int, bytes], offered: Checkpoint, bundle: Bundle
) -> tuple[Relation, int]:
    """Relate the offered checkpoint to what was accepted; return the relation and the
    accepted size it was judged against (a known size first: a second root is a fork)."""
    same_size = accepted.get(offered.size)
    if same_size is not None:
        return relate(_claimed(same_size), offered, bundle.consistency), offered.size
    latest = max(accepted)
    return relate(_claimed(accepted[latest]), offered, bundle.consistency), latest


def _write_evidence(
    ledger_path: Path,
    proof: EquivocationProof,
    accepted_size: int,
    offered_size: int,
    evidence_path: Path | None,
) -> Path:
    """Write the proof file (default: under ``imports/<origin>/evidence/``); return its path."""
    data = proof.to_json()
    if evidence_path is None:
        name = (
            f"{proof.kind}-{accepted_size}-{offered_size}-"
            f"{hashlib.sha256(data).hexdigest()[:16]}.json"
        )
        evidence_path = origin_dir(ledger_path, proof.origin) / EVIDENCE_DIR / name
    return replace_file(Path(evidence_path), data)


def _migrate(ledger_path: Path, quarantine: Path, written: Sequence[str]) -> int:
    """Move the quarantined blobs (already durable: the caller flushed them) into
    ``objects/``, then make the moves durable; return how many were moved.

    Data is flushed BEFORE the renames, so an object file never exists under its id with
    missing bytes (git's zero-length-object lesson); the renames stay within one file system
    (the quarantine is inside the ledger). Each fan-out directory is created (or found) once;
    a blob stored meanwhile is kept as is, which costs a ``stat`` only in fan-out directories
    that existed before.
    """
    objects = ObjectStore(ledger_path / OBJECTS_DIR)
    touched = make_dirs(objects.root)
    existing = _listing(objects.root)
    by_fanout: dict[str, list[str]] = {}
    for blob_id in written:
        validate_blob_id(blob_id)
        by_fanout.setdefault(blob_id[:2], []).append(blob_id)
    moved = 0
    created = False
    for fanout, blob_ids in by_fanout.items():
        directory = os.path.join(objects.root, fanout)
        fresh = fanout not in existing and _make_directory(directory)
        created = created or fresh
        touched.append(Path(directory))
        for blob_id in blob_ids:
            final = os.path.join(directory, blob_id[2:])
            if fresh or not os.path.exists(final):
                os.rename(_quarantined(quarantine, blob_id), final)
                moved += 1
    if created:
        touched.append(objects.root)  # the new fan-out directories are entries of objects/
    flush(ledger_path, touched)
    return moved


def _make_directory(path: str) -> bool:
    """Create directory ``path``; return False if it exists already (it may hold blobs)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        return False
    return True


def flush(ledger_path: Path, paths: Sequence[Path]) -> None:
    """Make ``paths`` (files or directories of the ledger) durable.

    On Linux one ``syncfs(2)`` of the ledger's file system (a single barrier, like git's
    batch fsync mode) replaces a fsync per path; elsewhere each path is fsynced.
    """
    if not paths:
        return
    if not sync_filesystem(ledger_path):
        fsync_paths(paths)


def sync_filesystem(directory: Path) -> bool:
    """Flush every dirty page and inode of the file system holding ``directory`` with Linux
    ``syncfs(2)``; return False where it is unavailable (the caller then fsyncs each path).

    OSError when the flush reports a write-back error (Linux 5.8 and later report them).
    """
    syncfs = _syncfs()
    if syncfs is None:
        return False
    fd = os.open(directory, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs: {os.strerror(code)}", str(directory))
    finally:
        os.close(fd)
    return True


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """Return libc's ``syncfs`` (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    function = getattr(libc, "syncfs", None)
    if function is None:
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast(Callable[[int], int], function)


def _commit(
    ledger_path: Path,
    bundle: Bundle,
    bundle_id: str,
    report: BundleReport,
    state: ImportState | None,
) -> None:
    """Store the bundle as a blob and the accepted checkpoint, then ``state.json`` (commit)."""
    directory = origin_dir(ledger_path, bundle.claimed_checkpoint.origin)
    ObjectStore(ledger_path / OBJECTS_DIR).put(encode_bundle(bundle))
    size = bundle.claimed_checkpoint.size
    checkpoint_path = directory / CHECKPOINTS_DIR / str(size)
    if not checkpoint_path.exists():
        replace_file(checkpoint_path, bundle.checkpoint)
    if report.log_key is None or report.policy_version is None:
        raise RuntimeError("an ok bundle report names its log key and policy version")
    releases = dict(state.releases) if state is not None else {}
    releases[bundle.release] = bundle_id
    previous_size = state.checkpoint_size if state is not None else 0
    new_state = ImportState(
        origin=bundle.claimed_checkpoint.origin,
        log_key=report.log_key,
        checkpoint_size=max(size, previous_size),
        policy_version=report.policy_version,
        releases=releases,
    )
    replace_file(directory / STATE_FILE, new_state.to_bytes())
