"""fsck: re-verify everything a ledger holds and report every problem as a Finding.

Checks (docs/ledger-format.md section 10): every blob re-hashes to its id; every leaf parses and
names blobs that exist; every envelope parses, carries a statement about the leaf's kind and
blob, from this ledger, with existing parents, and every one of its signatures verifies with a
keyring key; the keyring files hold the keys they are named after; every stored tree hash and
head recomputes (``LogStore.verify``); the blob index agrees with the log; every checkpoint is
signed by the log key, matches the log's root at its size and is consistent with the previous
one, and every cosignature verifies; no checkpoint is ahead of the log; refs name stored blobs.

fsck never stops at the first problem and never raises for damage it can name. The per-entry
and per-blob work runs in ``jobs`` worker processes, each opening the ledger read-only and
taking chunks of a few thousand entries (only entry numbers go to a worker; findings and ids
come back). A worker reads each blob once, on a few I/O threads ahead of the entries it is
checking, parses each envelope and statement once, and verifies the signatures of a run of
entries back to back with keyring keys prepared once (see ``check_entries``).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._frozen import frozen
from .._processes import worker_context
from .blobs import ObjectNotFoundError, blob_id_of
from .checkpoint import Checkpoint, open_checkpoint
from .dsse import Envelope, Signature, pae
from .errors import FormatError, IntegrityError, LedgerError, ProofError, SignatureError
from .keys import (
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    SIGNATURE_SIZE,
    PublicKey,
    note_key_hash,
)
from .merkle import verify_consistency
from .note import NoteSignature, verify_cosignature
from .objects import ObjectStore
from .records import LeafRecord
from .statement import PAYLOAD_TYPE, RecordStatement
from .store import (
    INDEX_DIR,
    INDEX_RECORD_SIZE,
    KEYS_DIR,
    REF_NAME_PATTERN,
    REFS_DIR,
    Ledger,
    index_record,
    parse_ref,
)

# Below this many entries, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 2_000
_CHUNKS_PER_JOB = 4
# Entries per worker task: big enough that a task's overhead (opening the ledger, one result
# message) is noise, small enough that a worker slowed by a busy machine leaves little behind.
_CHUNK_ENTRIES = 2_048
_RUN = 512  # entries read, inspected and verified together (see check_entries)
_IO_THREADS = 8  # blob reads in flight per process when reads come from the disk
_SLOW_READ_SECONDS = 50e-6  # a blob in the page cache takes ~10 us to read; from disk, more
_THREADED_RUNS = 8  # runs read by the I/O threads before trying inline reads again
# Generous: a statement is a few hundred bytes, a signature line ~150; reading is bounded.
MAX_ENVELOPE_SIZE = 16 << 20
_T = TypeVar("_T")


@frozen
class Finding:
    """One problem: a stable ``code``, a human message, and the blob or entry it concerns."""

    code: str
    message: str
    blob_id: str = ""
    index: int | None = None


@dataclass
class _EntryResult:
    """What checking a range of entries found, plus the blob-index records it implies."""

    findings: list[Finding] = field(default_factory=list)
    index_records: dict[str, bytearray] = field(default_factory=dict)
    hashed: bytearray = field(default_factory=bytearray)  # raw 32-byte ids, concatenated


# --- per-entry checks (run in workers) -----------------------------------------------------------


class Keyring:
    """The ledger's keyring, ready to verify: each key parsed into a ``cryptography`` key once.

    Parsing a raw key costs about a tenth of a verification; fsck verifies every signature of
    the log against the same few keys.
    """

    def __init__(self, raw_keys: Mapping[str, bytes]) -> None:
        """Prepare ``raw_keys`` (key id -> 32-byte raw Ed25519 public key)."""
        self._keys = {
            key_id: Ed25519PublicKey.from_public_bytes(raw) for key_id, raw in raw_keys.items()
        }

    def verifies(self, signature: Signature, message: bytes) -> bool:
        """Return True iff some keyring key made ``signature`` over ``message``.

        The keyid hint only picks the key tried first (``store.find_signer``'s order); it never
        decides the outcome.
        """
        if len(signature.sig) != SIGNATURE_SIZE:
            return False
        hinted = self._keys.get(signature.keyid)
        candidates = [key for key_id, key in self._keys.items() if key_id != signature.keyid]
        for key in [hinted, *candidates] if hinted is not None else candidates:
            try:
                key.verify(signature.sig, message)
            except InvalidSignature:
                continue
            return True
        return False


def corrupt_blob(blob_id: str, actual: str) -> Finding:
    """The finding for a blob whose bytes hash to ``actual``; equal for every reporter."""
    return Finding("blob-corrupt", f"blob {blob_id}: content hashes to {actual}", blob_id)


@dataclass
class EntryCheck:
    """One entry's findings so far, and its envelope's signatures still to verify over PAE."""

    index: int
    envelope_id: str = ""
    findings: list[Finding] = field(default_factory=list)
    signatures: tuple[Signature, ...] = ()
    message: bytes = b""


SubjectRead = str | None | OSError
"""What reading a subject blob gave: its SHA-256, None if it is not stored, or the OS error."""
EnvelopeRead = bytes | LedgerError | OSError
"""What reading an envelope blob gave: its bytes, or the error (missing, too large, I/O)."""


class BlobReader:
    """Reads the blobs that a run of entries names: each envelope, and each subject once.

    From the page cache a read is quick, and this thread reads a run inline: I/O threads would
    only add GIL traffic (about a tenth more CPU per entry). From the disk a read waits, and
    then I/O threads read the next run while this thread checks the current one, a slice of
    the run each, so that the waits overlap. A run read inline is timed: a slow one hands the
    next runs to the threads, and every so often a run is read inline again to see whether the
    cache has warmed up. Use it as a context manager: leaving stops the threads.
    """

    def __init__(self, objects: ObjectStore, threads: int = _IO_THREADS) -> None:
        """Read from ``objects``, with up to ``threads`` I/O threads when reads are slow."""
        self._objects = objects
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._threaded_runs = 0  # runs left before the next inline probe
        self._claimed: set[str] = set()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def start(self, records: Sequence[LeafRecord]) -> list[Future[_Reads]]:
        """Start reading each record's envelope, and its subject unless an earlier run did."""
        subjects = list(dict.fromkeys(r.blob_id for r in records if r.blob_id not in self._claimed))
        self._claimed.update(subjects)
        envelopes = [record.envelope_id for record in records]
        if self._threaded_runs > 0:
            self._threaded_runs -= 1
            parts = max(1, min(self._threads, len(envelopes)))
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="cmf-fsck-io")
            return [
                self._pool.submit(
                    _read_blobs, self._objects, subjects[part::parts], envelopes[part::parts]
                )
                for part in range(parts)
            ]
        started = time.perf_counter()
        reads = _read_blobs(self._objects, subjects, envelopes)
        blobs = len(subjects) + len(envelopes)
        if blobs and (time.perf_counter() - started) / blobs > _SLOW_READ_SECONDS:
            self._threaded_runs = _THREADED_RUNS
        done: Future[_Reads] = Future()
        done.set_result(reads)
        return [done]


_Reads = tuple[dict[str, SubjectRead], list[EnvelopeRead]]


def _read_blobs(objects: ObjectStore, subjects: list[str], envelopes: list[str]) -> _Reads:
    """I/O-thread job: hash ``subjects`` and read ``envelopes`` (errors become values)."""
    hashes: dict[str, SubjectRead] = {}
    for blob_id in subjects:
        try:
            hashes[blob_id] = objects.hash_stored(blob_id)
        except ObjectNotFoundError:
            hashes[blob_id] = None
        except OSError as exc:
            hashes[blob_id] = exc
    reads: list[EnvelopeRead] = []
    for blob_id in envelopes:
        try:
            reads.append(objects.read_unverified(blob_id, max_size=MAX_ENVELOPE_SIZE))
        except (LedgerError, OSError) as exc:
            reads.append(exc)
    return hashes, reads


def _collect(jobs: list[Future[_Reads]], subjects: dict[str, SubjectRead]) -> list[EnvelopeRead]:
    """Wait for a run's reads: add the subject hashes to ``subjects``; return the envelope
    reads in the order ``BlobReader.start`` was given them."""
    envelopes: list[EnvelopeRead] = [b""] * sum(len(job.result()[1]) for job in jobs)
    for part, job in enumerate(jobs):
        hashes, reads = job.result()
        subjects.update(hashes)
        envelopes[part :: len(jobs)] = reads
    return envelopes


def inspect_entry(
    index: int,
    record: LeafRecord,
    subject: SubjectRead,
    envelope: EnvelopeRead,
    objects: ObjectStore,
    origin: str,
    stored: Callable[[str], bool],
) -> EntryCheck:
    """Check one leaf record and everything it references except the envelope's signatures.

    ``subject`` and ``envelope`` are what reading the two blobs gave (``BlobReader``): both
    must hash to their ids; then the envelope and its statement are checked, and every parent
    must be ``stored``.
    """
    check = EntryCheck(index, record.envelope_id)
    findings = check.findings
    if isinstance(subject, OSError):
        findings.append(
            Finding("blob-unreadable", f"blob {record.blob_id}: {subject}", record.blob_id)
        )
    elif subject is None:
        message = f"entry {index}: subject blob is missing"
        findings.append(Finding("blob-missing", message, record.blob_id, index))
    elif subject != record.blob_id:
        findings.append(corrupt_blob(record.blob_id, subject))
    where, envelope_id = f"entry {index}: envelope", record.envelope_id
    if isinstance(envelope, ObjectNotFoundError):
        findings.append(Finding("envelope-missing", f"{where} blob is missing", envelope_id, index))
    elif isinstance(envelope, FormatError):
        findings.append(Finding("envelope-malformed", f"{where}: {envelope}", envelope_id, index))
    elif isinstance(envelope, Exception):
        findings.append(Finding("blob-unreadable", f"blob {envelope_id}: {envelope}", envelope_id))
    else:
        actual = blob_id_of(envelope)
        if actual != envelope_id:
            findings.append(corrupt_blob(envelope_id, actual))
        _inspect_envelope(check, record, envelope, objects, origin, stored)
    return check


def _inspect_envelope(
    check: EntryCheck,
    record: LeafRecord,
    data: bytes,
    objects: ObjectStore,
    origin: str,
    stored: Callable[[str], bool],
) -> None:
    """Check the envelope bytes of one entry: format, statement, parents; keep its signatures."""
    index, envelope_id = check.index, record.envelope_id
    where = f"entry {index}: envelope"
    try:
        envelope = Envelope.from_json(data)
        if envelope.payload_type != PAYLOAD_TYPE:
            raise FormatError(f"payload type {envelope.payload_type!r} is not {PAYLOAD_TYPE!r}")
    except FormatError as exc:
        check.findings.append(Finding("envelope-malformed", f"{where}: {exc}", envelope_id, index))
        return
    if not envelope.signatures:
        message = f"entry {index}: envelope has no signatures"
        check.findings.append(Finding("signature-missing", message, envelope_id, index))
    check.signatures = envelope.signatures
    check.message = pae(envelope.payload_type, envelope.payload)
    try:
        statement = RecordStatement.from_bytes(envelope.payload)
    except FormatError as exc:
        message = f"{where}: {exc}"
        check.findings.append(Finding("statement-malformed", message, envelope_id, index))
        return
    if (statement.kind, statement.sha256, statement.origin) != (
        record.kind,
        record.blob_id,
        origin,
    ):
        message = (
            f"{where}: statement is about {statement.kind} {statement.sha256} in "
            f"{statement.origin}; the leaf says {record.kind} {record.blob_id} in {origin}"
        )
        check.findings.append(Finding("statement-mismatch", message, envelope_id, index))
    for parent in statement.parents:
        if not stored(parent.sha256):
            message = f"entry {index}: parent {parent.kind} blob is missing"
            check.findings.append(Finding("parent-missing", message, parent.sha256, index))


def verify_signatures(check: EntryCheck, keyring: Keyring) -> list[Finding]:
    """Return ``check``'s findings and one for each signature that no keyring key made."""
    findings = list(check.findings)
    for position, signature in enumerate(check.signatures):
        if not keyring.verifies(signature, check.message):
            message = (
                f"entry {check.index}: envelope signature {position} (keyid hint "
                f"{signature.keyid[:16]!r}) verifies with no keyring key"
            )
            findings.append(Finding("signature-invalid", message, check.envelope_id, check.index))
    return findings


def read_leaves(ledger: Ledger, start: int, stop: int) -> Iterator[tuple[int, bytes | Exception]]:
    """Yield (index, leaf) for entries [start, stop), or (index, error) for an unreadable one.

    Reads runs of leaves at once (``Ledger.leaves``); a run holding a damaged leaf is read
    again leaf by leaf to tell which.
    """
    for low in range(start, stop, _RUN):
        high = min(low + _RUN, stop)
        try:
            leaves = ledger.leaves(low, high)
        except (IntegrityError, OSError):
            for index in range(low, high):
                try:
                    yield index, ledger.leaf(index)
                except (IntegrityError, OSError) as exc:
                    yield index, exc
        else:
            yield from enumerate(leaves, start=low)


def check_entries(
    ledger: Ledger, start: int, stop: int, keyring: Keyring, indexed: int
) -> _EntryResult:
    """Check entries [start, stop); collect their blob-index records (those below ``indexed``)
    and the ids of the blobs they re-hashed (or found missing).

    Works in runs of entries, as a pipeline: the blobs of one run are read (see
    ``BlobReader``) before the run before it is inspected, and then that run's signatures are
    verified one after another. (Interleaved with parsing, an Ed25519 verification costs about
    twice as much: its tables fall out of the CPU caches.)
    """
    result = _EntryResult()
    subjects: dict[str, SubjectRead] = {}

    def stored(blob_id: str) -> bool:
        """Is ``blob_id`` stored? A subject this pass read says so without another stat."""
        if isinstance(subjects.get(blob_id), str):
            return True
        return ledger.objects.contains(blob_id)

    with BlobReader(ledger.objects, _IO_THREADS) as reader:
        previous: _Run | None = None
        for low in range(start, stop, _RUN):
            run = _start_run(ledger, low, min(low + _RUN, stop), reader, result, indexed)
            if previous is not None:
                _finish_run(previous, ledger, keyring, subjects, stored, result)
            previous = run
        if previous is not None:
            _finish_run(previous, ledger, keyring, subjects, stored, result)
    result.hashed += b"".join(bytes.fromhex(blob_id) for blob_id in subjects)
    return result


@frozen
class _Run:
    """A run of entries: each a finished check (its leaf is bad) or a record being read."""

    entries: list[EntryCheck | tuple[int, LeafRecord]]
    reads: list[Future[_Reads]]


def _start_run(
    ledger: Ledger,
    start: int,
    stop: int,
    reader: BlobReader,
    result: _EntryResult,
    indexed: int,
) -> _Run:
    """Parse the leaves of entries [start, stop), add their blob-index records, and start
    reading their blobs."""
    entries: list[EntryCheck | tuple[int, LeafRecord]] = []
    for index, leaf in read_leaves(ledger, start, stop):
        if isinstance(leaf, Exception):
            finding = Finding("entry-unreadable", f"entry {index}: {leaf}", index=index)
            entries.append(EntryCheck(index, findings=[finding]))
            continue
        try:
            record = LeafRecord.from_bytes(leaf)
        except FormatError as exc:
            finding = Finding("leaf-malformed", f"entry {index}: {exc}", index=index)
            entries.append(EntryCheck(index, findings=[finding]))
            continue
        if index < indexed:
            result.index_records.setdefault(record.blob_id[:2], bytearray()).extend(
                index_record(record.blob_id, index)
            )
        entries.append((index, record))
    records = [entry[1] for entry in entries if isinstance(entry, tuple)]
    return _Run(entries, reader.start(records))


def _finish_run(
    run: _Run,
    ledger: Ledger,
    keyring: Keyring,
    subjects: dict[str, SubjectRead],
    stored: Callable[[str], bool],
    result: _EntryResult,
) -> None:
    """Inspect every entry of ``run`` in order, then verify all its signatures."""
    envelopes = iter(_collect(run.reads, subjects))
    checks: list[EntryCheck] = []
    for entry in run.entries:
        if isinstance(entry, EntryCheck):
            checks.append(entry)
            continue
        index, record = entry
        envelope = next(envelopes)
        if isinstance(envelope, bytes):
            result.hashed += bytes.fromhex(record.envelope_id)
        checks.append(
            inspect_entry(
                index,
                record,
                subjects[record.blob_id],
                envelope,
                ledger.objects,
                ledger.origin,
                stored,
            )
        )
    for check in checks:
        result.findings.extend(verify_signatures(check, keyring))


def check_blobs(objects: ObjectStore, blob_ids: Iterable[str]) -> list[Finding]:
    """Re-hash the given stored blobs (streaming, so blobs of any size are fine)."""
    findings = []
    for blob_id in blob_ids:
        try:
            actual = objects.hash_stored(blob_id)
        except OSError as exc:
            findings.append(Finding("blob-unreadable", f"blob {blob_id}: {exc}", blob_id))
            continue
        if actual != blob_id:
            findings.append(corrupt_blob(blob_id, actual))
    return findings


def _entry_task(
    path: str, start: int, stop: int, keyring: dict[str, bytes], indexed: int
) -> _EntryResult:
    """Worker-process entry point: open the ledger read-only and check a range of entries."""
    with Ledger.open(Path(path), audit=True) as ledger:
        return check_entries(ledger, start, stop, Keyring(keyring), indexed)


def _blob_task(objects_root: str, blob_ids: list[str]) -> list[Finding]:
    """Worker-process entry point: re-hash some blobs."""
    return check_blobs(ObjectStore(Path(objects_root)), blob_ids)


# --- whole-ledger checks (run in the calling process) ---------------------------------------------


def check_keyring(ledger: Ledger) -> tuple[dict[str, PublicKey], list[Finding]]:
    """Load the keyring tolerantly: every readable key file named after its own key id."""
    keys: dict[str, PublicKey] = {}
    findings: list[Finding] = []
    for key_id, path in ledger.key_files():
        try:
            key = PublicKey.from_pem(path.read_bytes())
        except (FormatError, OSError) as exc:
            findings.append(Finding("key-damaged", f"{KEYS_DIR}/{path.name}: {exc}"))
            continue
        if key.key_id != key_id:
            message = f"{KEYS_DIR}/{path.name}: holds key {key.key_id}"
            findings.append(Finding("key-damaged", message))
            continue
        keys[key_id] = key
    return keys, findings


def check_checkpoints(ledger: Ledger, keyring: Mapping[str, PublicKey]) -> list[Finding]:
    """Verify every checkpoint: signature, size, root, consistency, cosignatures, latest."""
    findings: list[Finding] = []
    previous: Checkpoint | None = None
    sizes = ledger.checkpoint_sizes()
    for size in sizes:
        checkpoint, problems = _check_one_checkpoint(ledger, size, keyring)
        findings.extend(problems)
        if checkpoint is None or checkpoint.size > ledger.size:
            continue
        if previous is not None:
            try:
                proof = ledger.consistency_proof(previous.size, size)
                verify_consistency(
                    previous.size, size, proof, previous.root_hash, checkpoint.root_hash
                )
            except (ProofError, IntegrityError, ValueError) as exc:
                message = f"checkpoint {size} is not consistent with checkpoint {previous.size}"
                findings.append(Finding("checkpoint-inconsistent", f"{message}: {exc}"))
        previous = checkpoint
    latest = ledger.latest_checkpoint_size()
    if latest is not None and latest not in sizes:
        findings.append(Finding("checkpoint-missing", f"the latest checkpoint {latest} is missing"))
    elif sizes and latest != sizes[-1]:
        message = f"the latest checkpoint is recorded as {latest}, the newest file is {sizes[-1]}"
        findings.append(Finding("checkpoint-latest-mismatch", message))
    return findings


def cosigner_key(sig: NoteSignature, keyring: Mapping[str, PublicKey]) -> PublicKey | None:
    """Return the keyring key whose cosignature/v1 key hash under ``sig.name`` is ``sig``'s."""
    for key in keyring.values():
        if note_key_hash(sig.name, SIG_TYPE_COSIGNATURE_V1, key.raw) == sig.key_hash:
            return key
    return None


def _check_one_checkpoint(
    ledger: Ledger, size: int, keyring: Mapping[str, PublicKey]
) -> tuple[Checkpoint | None, list[Finding]]:
    """Check one checkpoint file; return the checkpoint if it can be trusted for consistency."""
    where = f"checkpoint {size}"
    data = ledger.checkpoint(size)
    try:
        checkpoint, note = open_checkpoint(data, origin=ledger.origin, key=ledger.log_public_key)
    except (FormatError, SignatureError) as exc:
        return None, [Finding("checkpoint-invalid", f"{where}: {exc}")]
    findings: list[Finding] = []
    log_hash = note_key_hash(ledger.origin, SIG_TYPE_ED25519, ledger.log_public_key.raw)
    for sig in note.signatures:
        if (sig.name, sig.key_hash) == (ledger.origin, log_hash):
            continue  # the log's own signature, verified by open_checkpoint
        witness = cosigner_key(sig, keyring)
        if witness is None:
            message = f"{where}: cosignature by {sig.name} with a key not in the keyring"
            findings.append(Finding("cosignature-unknown-key", message))
            continue
        try:
            verify_cosignature(note.text, sig, witness)
        except (FormatError, SignatureError) as exc:
            findings.append(Finding("cosignature-invalid", f"{where}: {exc}"))
    if checkpoint.size != size:
        message = f"{where}: the file holds a checkpoint of size {checkpoint.size}"
        return None, [*findings, Finding("checkpoint-mismatch", message)]
    if size > ledger.size:
        message = f"{where} is ahead of the log ({ledger.size} entries)"
        return checkpoint, [*findings, Finding("checkpoint-ahead", message)]
    try:
        root = ledger.root(size)
    except (IntegrityError, ValueError) as exc:
        return None, [*findings, Finding("checkpoint-root-mismatch", f"{where}: {exc}")]
    if root != checkpoint.root_hash:
        message = f"{where}: signed root differs from the log's root at that size"
        findings.append(Finding("checkpoint-root-mismatch", message))
        return None, findings
    return checkpoint, findings


def check_index(ledger: Ledger, expected: Mapping[str, bytes]) -> list[Finding]:
    """Compare the blob index (within the lengths state.json records) with the log."""
    state = ledger.state
    findings: list[Finding] = []
    if state.indexed > ledger.size:
        message = f"the index covers {state.indexed} entries, the log holds {ledger.size}"
        findings.append(Finding("index-mismatch", message))
    for bucket in sorted(set(state.buckets) | set(expected)):
        path = ledger.path / INDEX_DIR / bucket
        try:
            actual = path.read_bytes()[: state.buckets.get(bucket, 0)]
        except FileNotFoundError:
            actual = b""
        if actual != expected.get(bucket, b""):
            count = len(expected.get(bucket, b"")) // INDEX_RECORD_SIZE
            message = f"{INDEX_DIR}/{bucket}: does not list the {count} entries the log implies"
            findings.append(Finding("index-mismatch", message))
    return findings


def check_refs(ledger: Ledger) -> list[Finding]:
    """Every ref file holds one blob id, of a stored blob."""
    findings: list[Finding] = []
    directory = ledger.path / REFS_DIR
    names = sorted(os.listdir(directory)) if directory.is_dir() else []
    for name in names:
        if not REF_NAME_PATTERN.fullmatch(name):
            continue
        try:
            blob_id = parse_ref((directory / name).read_bytes())
        except (FormatError, OSError) as exc:
            findings.append(Finding("ref-malformed", f"ref {name}: {exc}"))
            continue
        if not ledger.objects.contains(blob_id):
            message = f"ref {name} names a blob that is not stored"
            findings.append(Finding("ref-dangling", message, blob_id))
    return findings


# --- orchestration --------------------------------------------------------------------------------


def usable_cpus() -> int:
    """Return the number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _worker_count(jobs: int, size: int) -> int:
    """Resolve ``jobs``: 0 = automatic (all usable CPUs for large ledgers), 1 = in process."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ValueError(f"jobs must be a non-negative integer, got {jobs!r}")
    if jobs == 0:
        return usable_cpus() if size >= PARALLEL_THRESHOLD else 1
    return jobs


def plan_entry_work(jobs: int, size: int) -> tuple[int, list[tuple[int, int]]]:
    """Return (worker processes, entry ranges) for ``jobs`` on a log of ``size`` entries.

    Never more workers than ranges: a worker without a range would be forked only to idle (a
    3-entry ledger gets at most 3, one of 0 or 1 entries none: it is checked in process).
    """
    workers = _worker_count(jobs, size)
    ranges = _ranges(size, _task_count(size, workers))
    return min(workers, max(1, len(ranges))), ranges


def _ranges(size: int, parts: int) -> list[tuple[int, int]]:
    """Split [0, size) into at most ``parts`` contiguous, nearly equal ranges."""
    parts = max(1, min(parts, size))
    bounds = [size * k // parts for k in range(parts + 1)]
    return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if lo < hi]


def _task_count(size: int, workers: int) -> int:
    """How many tasks to split ``size`` items into for ``workers`` processes (1: no pool)."""
    if workers == 1:
        return 1
    return max(workers * _CHUNKS_PER_JOB, -(-size // _CHUNK_ENTRIES))


def _submit(pool: Executor | None, fn: Callable[..., _T], *args: object) -> Future[_T]:
    """Run ``fn`` in the pool, or right now when there is none."""
    if pool is not None:
        return pool.submit(fn, *args)
    future: Future[_T] = Future()
    future.set_result(fn(*args))
    return future


def fsck(ledger: Ledger, *, jobs: int = 0) -> list[Finding]:
    """Verify the whole ledger; return every finding (an empty list means all is well).

    ``jobs``: 0 picks automatically, 1 checks in this process, n > 1 uses up to n worker
    processes (never more than there are ranges of entries to check: ``plan_entry_work``).
    Open the ledger with ``Ledger.open(path, audit=True)`` so that damage which would stop a
    normal open is reported here instead.
    """
    workers, ranges = plan_entry_work(jobs, ledger.size)
    findings = [Finding(code, message) for code, message in ledger.open_findings]
    keyring, key_findings = check_keyring(ledger)
    findings.extend(key_findings)
    indexed = min(ledger.state.indexed, ledger.size)
    raw_keys = {key_id: key.raw for key_id, key in keyring.items()}
    pool: ProcessPoolExecutor | None = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=worker_context())
    try:
        if pool is None:
            keys = Keyring(raw_keys)
            entry_futures = [
                _submit(None, check_entries, ledger, lo, hi, keys, indexed) for lo, hi in ranges
            ]
        else:
            entry_futures = [
                pool.submit(_entry_task, str(ledger.path), lo, hi, raw_keys, indexed)
                for lo, hi in ranges
            ]
        # The calling process works on the whole-log checks meanwhile.
        findings.extend(
            Finding("log-damaged", message, index=index) for index, message in ledger.verify_log()
        )
        findings.extend(check_checkpoints(ledger, keyring))
        findings.extend(check_refs(ledger))
        unchecked = set(ledger.objects.iter_ids())
        expected: dict[str, bytearray] = {}
        for future in entry_futures:
            result = future.result()
            findings.extend(result.findings)
            for bucket, records in result.index_records.items():
                expected.setdefault(bucket, bytearray()).extend(records)
            hashed = result.hashed
            unchecked.difference_update(
                hashed[at : at + 32].hex() for at in range(0, len(hashed), 32)
            )
        # Blobs no entry references (policies, parents-only inputs, evidence files).
        rest = sorted(unchecked)
        blob_futures = [
            _submit(pool, _blob_task, str(ledger.objects.root), rest[lo:hi])
            for lo, hi in _ranges(len(rest), _task_count(len(rest), workers))
        ]
        for blob_future in blob_futures:
            findings.extend(blob_future.result())
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    findings.extend(check_index(ledger, {k: bytes(v) for k, v in expected.items()}))
    return list(dict.fromkeys(findings))
