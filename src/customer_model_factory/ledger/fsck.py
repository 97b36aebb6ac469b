"""fsck: re-verify everything a ledger holds and report every problem as a Finding.

Checks (docs/ledger-format.md section 10): every blob re-hashes to its id; every leaf parses and
names blobs that exist; every envelope parses, carries a statement about the leaf's kind and
blob, from this ledger, with existing parents, and every one of its signatures verifies with a
keyring key; the keyring files hold the keys they are named after; every stored tree hash and
head recomputes (``LogStore.verify``); the blob index agrees with the log; every checkpoint is
signed by the log key, matches the log's root at its size and is consistent with the previous
one, and every cosignature verifies; no checkpoint is ahead of the log; refs name stored blobs.

fsck never stops at the first problem and never raises for damage it can name. The per-entry
and per-blob work runs in ``jobs`` worker processes, each opening the ledger read-only.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .checkpoint import Checkpoint, open_checkpoint
from .dsse import Envelope, pae
from .errors import FormatError, IntegrityError, ProofError, SignatureError
from .keys import SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519, PublicKey, note_key_hash
from .merkle import verify_consistency
from .note import NoteSignature, verify_cosignature
from .objects import ObjectNotFoundError, ObjectStore, blob_id_of
from .records import LeafRecord
from .statement import PAYLOAD_TYPE, RecordStatement
from .store import (
    INDEX_DIR,
    INDEX_RECORD_SIZE,
    KEYS_DIR,
    REF_NAME_PATTERN,
    REFS_DIR,
    Ledger,
    find_signer,
    index_record,
    parse_ref,
)

# Below this many entries, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 2_000
_CHUNKS_PER_JOB = 4
# Generous: a statement is a few hundred bytes, a signature line ~150; reading is bounded.
MAX_ENVELOPE_SIZE = 16 << 20
_T = TypeVar("_T")


@dataclass(frozen=True)
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


def corrupt_blob(blob_id: str, actual: str) -> Finding:
    """The finding for a blob whose bytes hash to ``actual``; equal for every reporter."""
    return Finding("blob-corrupt", f"blob {blob_id}: content hashes to {actual}", blob_id)


def check_entry(
    index: int,
    record: LeafRecord,
    objects: ObjectStore,
    keyring: Mapping[str, PublicKey],
    origin: str,
) -> list[Finding]:
    """Check one leaf record and everything it references; return the findings.

    Re-hashes the subject and envelope blobs (so the blob pass can skip them), then checks
    the envelope, its signatures and its statement.
    """
    findings: list[Finding] = []
    try:
        actual = objects.hash_stored(record.blob_id)
        if actual != record.blob_id:
            findings.append(corrupt_blob(record.blob_id, actual))
    except ObjectNotFoundError:
        message = f"entry {index}: subject blob is missing"
        findings.append(Finding("blob-missing", message, record.blob_id, index))
    where = f"entry {index}: envelope"
    try:
        data = objects.read_unverified(record.envelope_id, max_size=MAX_ENVELOPE_SIZE)
    except ObjectNotFoundError:
        message = f"{where} blob is missing"
        return [*findings, Finding("envelope-missing", message, record.envelope_id, index)]
    except FormatError as exc:
        message = f"{where}: {exc}"
        return [*findings, Finding("envelope-malformed", message, record.envelope_id, index)]
    actual = blob_id_of(data)
    if actual != record.envelope_id:
        findings.append(corrupt_blob(record.envelope_id, actual))
    return findings + _check_envelope(index, record, data, objects, keyring, origin)


def _check_envelope(
    index: int,
    record: LeafRecord,
    data: bytes,
    objects: ObjectStore,
    keyring: Mapping[str, PublicKey],
    origin: str,
) -> list[Finding]:
    """Check the envelope bytes of one entry: format, signatures, statement, parents."""
    where, envelope_id = f"entry {index}: envelope", record.envelope_id
    try:
        envelope = Envelope.from_json(data)
        if envelope.payload_type != PAYLOAD_TYPE:
            raise FormatError(f"payload type {envelope.payload_type!r} is not {PAYLOAD_TYPE!r}")
    except FormatError as exc:
        return [Finding("envelope-malformed", f"{where}: {exc}", envelope_id, index)]
    findings = _check_signatures(index, envelope, envelope_id, keyring)
    try:
        statement = RecordStatement.from_bytes(envelope.payload)
    except FormatError as exc:
        return [*findings, Finding("statement-malformed", f"{where}: {exc}", envelope_id, index)]
    if (statement.kind, statement.sha256, statement.origin) != (
        record.kind,
        record.blob_id,
        origin,
    ):
        message = (
            f"{where}: statement is about {statement.kind} {statement.sha256} in "
            f"{statement.origin}; the leaf says {record.kind} {record.blob_id} in {origin}"
        )
        findings.append(Finding("statement-mismatch", message, envelope_id, index))
    for parent in statement.parents:
        if not objects.contains(parent.sha256):
            message = f"entry {index}: parent {parent.kind} blob is missing"
            findings.append(Finding("parent-missing", message, parent.sha256, index))
    return findings


def _check_signatures(
    index: int, envelope: Envelope, envelope_id: str, keyring: Mapping[str, PublicKey]
) -> list[Finding]:
    """Every signature must verify over PAE with some keyring key."""
    if not envelope.signatures:
        message = f"entry {index}: envelope has no signatures"
        return [Finding("signature-missing", message, envelope_id, index)]
    message_bytes = pae(envelope.payload_type, envelope.payload)
    findings = []
    for position, signature in enumerate(envelope.signatures):
        if find_signer(signature, message_bytes, keyring) is None:
            message = (
                f"entry {index}: envelope signature {position} (keyid hint "
                f"{signature.keyid[:16]!r}) verifies with no keyring key"
            )
            findings.append(Finding("signature-invalid", message, envelope_id, index))
    return findings


def check_entries(
    ledger: Ledger, start: int, stop: int, keyring: Mapping[str, PublicKey], indexed: int
) -> _EntryResult:
    """Check entries [start, stop); collect their blob-index records (those below ``indexed``)
    and the ids of the blobs they re-hashed."""
    result = _EntryResult()
    for index in range(start, stop):
        try:
            leaf = ledger.leaf(index)
        # A damaged offset can ask for an absurd read: report it like any unreadable entry.
        except (IntegrityError, FormatError, OSError, MemoryError, OverflowError) as exc:
            message = f"entry {index}: {exc}"
            result.findings.append(Finding("entry-unreadable", message, index=index))
            continue
        try:
            record = LeafRecord.from_bytes(leaf)
        except FormatError as exc:
            result.findings.append(Finding("leaf-malformed", f"entry {index}: {exc}", index=index))
            continue
        result.findings.extend(check_entry(index, record, ledger.objects, keyring, ledger.origin))
        result.hashed += bytes.fromhex(record.blob_id) + bytes.fromhex(record.envelope_id)
        if index < indexed:
            result.index_records.setdefault(record.blob_id[:2], bytearray()).extend(
                index_record(record.blob_id, index)
            )
    return result


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
    keys = {key_id: PublicKey(raw) for key_id, raw in keyring.items()}
    with Ledger.open(Path(path), audit=True) as ledger:
        return check_entries(ledger, start, stop, keys, indexed)


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


def _ranges(size: int, parts: int) -> list[tuple[int, int]]:
    """Split [0, size) into at most ``parts`` contiguous, nearly equal ranges."""
    parts = max(1, min(parts, size))
    bounds = [size * k // parts for k in range(parts + 1)]
    return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if lo < hi]


def _process_context() -> multiprocessing.context.BaseContext:
    """Prefer fork: workers need only their arguments, and spawn would re-import the caller's
    main module (impossible for ``python -c`` or stdin). fsck holds no locks or threads."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _submit(pool: Executor | None, fn: Callable[..., _T], *args: object) -> Future[_T]:
    """Run ``fn`` in the pool, or right now when there is none."""
    if pool is not None:
        return pool.submit(fn, *args)
    future: Future[_T] = Future()
    future.set_result(fn(*args))
    return future


def fsck(ledger: Ledger, *, jobs: int = 0) -> list[Finding]:
    """Verify the whole ledger; return every finding (an empty list means all is well).

    ``jobs``: 0 picks automatically, 1 checks in this process, n > 1 uses n worker processes.
    Open the ledger with ``Ledger.open(path, audit=True)`` so that damage which would stop a
    normal open is reported here instead.
    """
    workers = _worker_count(jobs, ledger.size)
    findings = [Finding(code, message) for code, message in ledger.open_findings]
    keyring, key_findings = check_keyring(ledger)
    findings.extend(key_findings)
    indexed = min(ledger.state.indexed, ledger.size)
    raw_keys = {key_id: key.raw for key_id, key in keyring.items()}
    pool: ProcessPoolExecutor | None = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=_process_context())
    try:
        entry_futures = [
            _submit(pool, _entry_task, str(ledger.path), lo, hi, raw_keys, indexed)
            for lo, hi in _ranges(ledger.size, workers * _CHUNKS_PER_JOB)
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
            for lo, hi in _ranges(len(rest), workers * _CHUNKS_PER_JOB)
        ]
        for blob_future in blob_futures:
            findings.extend(blob_future.result())
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    findings.extend(check_index(ledger, {k: bytes(v) for k, v in expected.items()}))
    return list(dict.fromkeys(findings))
