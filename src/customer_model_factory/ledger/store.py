"""The Ledger facade: blobs, signed record statements, the Merkle log, checkpoints and refs.

On-disk layout (docs/ledger-format.md section 1)::

    config.json            format, origin, log public key (written once, by ``create``)
    lock                   the writer lock (flock); holds the holder's pid while held
    state.json             latest checkpoint size and blob-index lengths (rewritten per commit)
    objects/ab/cdef...     blobs (objects.py)
    log/                   leaves, stored tree hashes, head records (logstore.py)
    log/checkpoints/<n>    the signed checkpoint of tree size n, with any cosignatures
    keys/<key id>.pem      every public key that signed an envelope or cosigned a checkpoint
    index/<ab>             blob id -> log index records for blobs whose id starts with ab
    kinds/<kind>.idx       the log indexes of the entries of each record kind
    refs/<name>            a release name -> blob id

A commit is ordered so that every crash leaves a consistent ledger (section 9): blobs and keys
are made durable first, then the leaves are appended and synced, then the blob and kind
indexes, then the checkpoint is signed and written, then refs, and last ``state.json`` points at
the checkpoint.
Nothing points at data that is not yet durable, so a checkpoint is never ahead of the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .._frozen import frozen
from .._jsonfile import manifest_bytes
from .blobs import NotFoundError, validate_blob_id
from .checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from .dsse import Envelope, Signature, pae
from .durable import fsync_paths, make_dirs, replace_file, truncate_file
from .errors import FormatError, IntegrityError, LedgerError, ProofError, SignatureError
from .keys import PrivateKey, PublicKey, check_key_name
from .lock import WriterLock
from .logstore import LogStore
from .merkle import verify_consistency
from .note import Note, NoteSignature, format_note, verify_cosignature
from .objects import ObjectBatch, ObjectStore
from .records import KIND_PATTERN, LeafRecord, validate_kind
from .statement import PAYLOAD_TYPE, Parent, RecordStatement

FORMAT = "cmf-ledger/v1"
STATE_FORMAT = "cmf-ledger-state/v1"

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
LOCK_FILE = "lock"
OBJECTS_DIR = "objects"
LOG_DIR = "log"
CHECKPOINTS_DIR = "checkpoints"  # inside LOG_DIR
KEYS_DIR = "keys"
INDEX_DIR = "index"
KINDS_DIR = "kinds"
REFS_DIR = "refs"

INDEX_RECORD_SIZE = 40  # 32-byte raw blob id || 8-byte big-endian log index
KIND_RECORD_SIZE = 8  # 8-byte big-endian log index
KIND_FILE_SUFFIX = ".idx"  # "<kind>.idx" is never "." or "..", whatever the kind
KEY_FILE_SUFFIX = ".pem"
REF_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SIZE_NAME = re.compile(r"0|[1-9][0-9]*")
_BUCKET_NAME = re.compile(r"[0-9a-f]{2}")
_KEY_FILE_NAME = re.compile(r"([0-9a-f]{64})\.pem")


# --- small pure pieces ---------------------------------------------------------------------------


@frozen
class LogEntry:
    """One log entry: its index, the parsed leaf record and the exact leaf bytes."""

    index: int
    kind: str
    blob_id: str
    envelope_id: str
    leaf: bytes


def entry_from_leaf(index: int, leaf: bytes) -> LogEntry:
    """Parse leaf bytes (strictly) into the entry at ``index``."""
    record = LeafRecord.from_bytes(leaf)
    return LogEntry(index, record.kind, record.blob_id, record.envelope_id, leaf)


def find_signer(
    signature: Signature, message: bytes, keyring: Mapping[str, PublicKey]
) -> str | None:
    """Return the id of a keyring key whose Ed25519 signature ``signature`` is over ``message``.

    The keyid hint only orders the search (the hinted key first); it is never trusted.
    """
    hinted = keyring.get(signature.keyid)
    if hinted is not None and hinted.verify(signature.sig, message):
        return hinted.key_id
    for key in keyring.values():
        if key is not hinted and key.verify(signature.sig, message):
            return key.key_id
    return None


def validate_ref_name(name: str) -> str:
    """Return ``name`` if it matches ``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``, else FormatError."""
    if not isinstance(name, str) or REF_NAME_PATTERN.fullmatch(name) is None:
        raise FormatError(f"not a ref name ([A-Za-z0-9][A-Za-z0-9._-]{{0,127}}): {name!r}")
    return name


def parse_ref(data: bytes) -> str:
    """Return the blob id in a ref file (64 lowercase hex + newline), else FormatError."""
    if len(data) != 65 or not data.endswith(b"\n"):
        raise FormatError("ref file: expected 64 lowercase hex characters and a newline")
    return validate_blob_id(data[:64].decode("ascii", "replace"))


def config_bytes(origin: str, log_key: PublicKey) -> bytes:
    """Return the canonical ``config.json`` bytes for a ledger."""
    return manifest_bytes(
        {"format": FORMAT, "origin": origin, "log_key": log_key.verifier_key(origin)}
    )


def parse_config(data: bytes) -> tuple[str, PublicKey]:
    """Return (origin, log public key) from ``config.json`` bytes; LedgerError if unusable."""
    try:
        document = json.loads(data.decode("utf-8"))
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise FormatError(f"expected format {FORMAT!r}")
        if set(document) != {"format", "origin", "log_key"}:
            raise FormatError(f"unexpected fields {sorted(document)}")
        origin = check_key_name(document["origin"], error=FormatError)
        name, key = PublicKey.parse_verifier_key(document["log_key"])
    except (UnicodeDecodeError, ValueError, FormatError, TypeError) as exc:
        raise LedgerError(f"{CONFIG_FILE} is not a valid ledger configuration: {exc}") from None
    except RecursionError:  # json's answer to hostile nesting
        raise LedgerError(
            f"{CONFIG_FILE} is not a valid ledger configuration: JSON nested too deeply"
        ) from None
    if name != origin:
        raise LedgerError(f"{CONFIG_FILE}: log key is named {name!r}, origin is {origin!r}")
    return origin, key


@frozen
class LedgerState:
    """``state.json``: what the last completed commit wrote (derived data, rebuildable).

    ``checkpoint`` is the latest checkpoint's tree size (None before the first); ``indexed`` is
    the number of log entries covered by the blob index, and ``buckets`` the valid byte length
    of each index bucket file. Bytes beyond a bucket's length are an interrupted commit's tail.
    ``kinds_indexed`` and ``kinds`` are the same for the kind index (kind -> valid byte length
    of ``kinds/<kind>.idx``); a ``state.json`` written before the kind index existed has none,
    so it covers 0 entries until the next writer builds it.
    """

    checkpoint: int | None = None
    indexed: int = 0
    buckets: Mapping[str, int] = field(default_factory=dict)
    kinds_indexed: int = 0
    kinds: Mapping[str, int] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Return canonical JSON bytes: sorted keys, no spaces, zero-length buckets omitted."""
        return _compact_json(
            {
                "format": STATE_FORMAT,
                "checkpoint": self.checkpoint,
                "index": {
                    "size": self.indexed,
                    "buckets": {k: v for k, v in sorted(self.buckets.items()) if v},
                },
                "kinds": {
                    "size": self.kinds_indexed,
                    "files": {k: v for k, v in sorted(self.kinds.items()) if v},
                },
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LedgerState:
        """Parse ``state.json`` strictly; IntegrityError naming the problem."""
        try:
            document = json.loads(data.decode("utf-8"))
            if document["format"] != STATE_FORMAT or set(document) - {"kinds"} != {
                "format",
                "checkpoint",
                "index",
            }:
                raise ValueError("unexpected format or fields")
            kinds_indexed, kinds = _parse_kind_state(document.get("kinds"))
            checkpoint = document["checkpoint"]
            index = document["index"]
            indexed, buckets = index["size"], index["buckets"]
            if set(index) != {"size", "buckets"} or not isinstance(buckets, dict):
                raise ValueError("unexpected index fields")
            if not all(_is_count(v) for v in (indexed, *buckets.values())) or not (
                checkpoint is None or _is_count(checkpoint)
            ):
                raise ValueError("sizes must be non-negative integers")
            if not all(
                _BUCKET_NAME.fullmatch(k) and v % INDEX_RECORD_SIZE == 0 for k, v in buckets.items()
            ):
                raise ValueError("bad bucket name or length")
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{STATE_FILE} is damaged: {exc}") from None
        except RecursionError:  # json's answer to hostile nesting
            raise IntegrityError(f"{STATE_FILE} is damaged: JSON nested too deeply") from None
        return cls(checkpoint, indexed, dict(buckets), kinds_indexed, kinds)


def _parse_kind_state(kinds: Any) -> tuple[int, dict[str, int]]:
    """Return (entries covered, kind -> file length) of the ``kinds`` member; (0, {}) if absent.

    ValueError / TypeError / KeyError when it is malformed (``from_bytes`` reports it).
    """
    if kinds is None:
        return 0, {}  # written before the kind index existed: it covers nothing yet
    if not isinstance(kinds, dict) or set(kinds) != {"size", "files"}:
        raise ValueError("unexpected kinds fields")
    size, files = kinds["size"], kinds["files"]
    if not isinstance(files, dict) or not all(_is_count(v) for v in (size, *files.values())):
        raise ValueError("kind index sizes must be non-negative integers")
    for kind, length in files.items():
        if not isinstance(kind, str) or KIND_PATTERN.fullmatch(kind) is None:
            raise ValueError(f"kind index: {kind!r} is not a record kind")
        if length % KIND_RECORD_SIZE:
            raise ValueError(f"kind index {kind!r}: length {length} is not whole records")
    return size, dict(files)


def _compact_json(document: dict[str, Any]) -> bytes:
    """Deterministic one-line JSON (rewritten on every commit, so kept cheap) and a newline."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n"


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def index_record(blob_id: str, index: int) -> bytes:
    """Return one 40-byte blob-index record."""
    return bytes.fromhex(blob_id) + index.to_bytes(8, "big")


def parse_index_records(data: bytes) -> list[tuple[str, int]]:
    """Return (blob id, log index) for each whole 40-byte record in ``data``."""
    size = len(data) - len(data) % INDEX_RECORD_SIZE
    return [
        (data[at : at + 32].hex(), int.from_bytes(data[at + 32 : at + 40], "big"))
        for at in range(0, size, INDEX_RECORD_SIZE)
    ]


# --- the ledger ----------------------------------------------------------------------------------


class Ledger:
    """A ledger directory opened for reading; ``writer()`` adds to it.

    A Ledger is a snapshot: its size is the log size when it was opened (or last written by its
    own writer). Opening is O(1) in the log size.
    """

    def __init__(
        self, path: Path, origin: str, log_key: PublicKey, state: LedgerState, log: LogStore
    ) -> None:
        """Assemble an opened ledger (use ``Ledger.open`` or ``Ledger.create``)."""
        self.path = path
        self._origin = origin
        self._log_key = log_key
        self._state = state
        self._log = log
        self.objects = ObjectStore(path / OBJECTS_DIR)
        self.open_findings: list[tuple[str, str]] = []
        self._writer: LedgerWriter | None = None

    # -- creating and opening ----------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, *, origin: str, log_key: PublicKey) -> Ledger:
        """Create a new, empty ledger in ``path`` (missing or an empty directory) and open it.

        ``config.json`` is written last, so an interrupted create never looks like a ledger.
        """
        path = Path(path)
        check_key_name(origin, error=FormatError)
        if not isinstance(log_key, PublicKey):
            raise TypeError("log_key must be a PublicKey")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise LedgerError(f"{path}: refusing to create a ledger in a non-empty location")
        new_parents = make_dirs(path)
        for name in (OBJECTS_DIR, KEYS_DIR, INDEX_DIR, KINDS_DIR, REFS_DIR):
            (path / name).mkdir()
        LogStore(path / LOG_DIR).close()
        (path / LOG_DIR / CHECKPOINTS_DIR).mkdir()
        fsync_paths([*new_parents, path, path / LOG_DIR])
        replace_file(path / STATE_FILE, LedgerState().to_bytes())
        replace_file(path / CONFIG_FILE, config_bytes(origin, log_key))
        return cls.open(path)

    @classmethod
    def open(cls, path: Path, *, audit: bool = False) -> Ledger:
        """Open the ledger at ``path``; LedgerError if it is not one. O(1) in the log size.

        Damage to the log or ``state.json`` raises IntegrityError, unless ``audit`` is set: then
        it is kept in ``open_findings`` (code, message) for fsck and the ledger opens anyway.
        """
        path = Path(path)
        try:
            config = (path / CONFIG_FILE).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise LedgerError(f"{path}: not a ledger (no {CONFIG_FILE})") from None
        origin, log_key = parse_config(config)
        findings: list[tuple[str, str]] = []
        # Read state before the log: state never runs ahead of the log it describes.
        try:
            state = LedgerState.from_bytes((path / STATE_FILE).read_bytes())
        except (IntegrityError, FileNotFoundError) as exc:
            if not audit:
                raise IntegrityError(f"{path}: {exc}") from None
            findings.append(("state-damaged", str(exc)))
            state = LedgerState()
        if not (path / LOG_DIR).is_dir():
            raise LedgerError(f"{path}: damaged ledger: the {LOG_DIR}/ directory is missing")
        log, log_findings = LogStore.open_for_audit(path / LOG_DIR)
        if log_findings and not audit:
            log.close()
            details = "; ".join(message for _, message in log_findings)
            raise IntegrityError(f"{path}: log is damaged: {details}")
        findings.extend(("log-damaged", message) for _, message in log_findings)
        ledger = cls(path, origin, log_key, state, log)
        ledger.open_findings = findings
        return ledger

    def close(self) -> None:
        """Release any writer and close the log files."""
        if self._writer is not None:
            self._writer.close()
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- configuration -----------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """The log origin (checkpoint first line and log key name)."""
        return self._origin

    @property
    def log_public_key(self) -> PublicKey:
        """The public key that signs this ledger's checkpoints."""
        return self._log_key

    @property
    def state(self) -> LedgerState:
        """The ``state.json`` snapshot this ledger uses."""
        return self._state

    # -- the log -----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of log entries."""
        return self._log.size

    def leaf(self, index: int) -> bytes:
        """Return the leaf bytes of entry ``index``, checked against the stored leaf hash."""
        return self._log.leaf(index)

    def leaves(self, start: int, stop: int) -> list[bytes]:
        """Return the leaves of entries [start, stop) in three reads, each checked like ``leaf``."""
        return self._log.leaves(start, stop)

    def entry(self, index: int) -> LogEntry:
        """Return entry ``index`` (IndexError if out of range; IntegrityError if damaged)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise IndexError(f"entry {index!r} is not in a log of size {self.size}")
        leaf = self._log.leaf(index)
        try:
            return entry_from_leaf(index, leaf)
        except FormatError as exc:
            raise IntegrityError(f"log entry {index}: {exc}") from None

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[LogEntry]:
        """Yield entries ``start`` up to (not including) ``stop`` (default: the end)."""
        stop = self.size if stop is None else stop
        if not 0 <= start <= stop <= self.size:
            raise IndexError(f"range [{start}, {stop}) is not within a log of size {self.size}")
        for index in range(start, stop):
            yield self.entry(index)

    def entries_for_blob(self, blob_id: str) -> list[LogEntry]:
        """Return every entry whose subject is ``blob_id``, in log order (via the blob index).

        Index hits are re-read from the log and checked (IntegrityError if the index is wrong);
        entries not yet indexed (after an interrupted commit) are found by scanning that tail.
        """
        validate_blob_id(blob_id)
        indexed = min(self._state.indexed, self.size)
        bucket = blob_id[:2]
        limit = self._state.buckets.get(bucket, 0)
        try:
            with open(self.path / INDEX_DIR / bucket, "rb") as handle:
                data = handle.read(limit)
        except FileNotFoundError:
            data = b""
        if len(data) != limit:
            raise IntegrityError(f"{INDEX_DIR}/{bucket}: shorter than {STATE_FILE} records")
        found: list[LogEntry] = []
        for record_blob, index in parse_index_records(data):
            if record_blob == blob_id and index < indexed:
                entry = self.entry(index)
                if entry.blob_id != blob_id:
                    raise IntegrityError(
                        f"{INDEX_DIR}/{bucket}: says entry {index} is about {blob_id}, it is not"
                    )
                found.append(entry)
        found.extend(e for e in self.entries(indexed) if e.blob_id == blob_id)
        return found

    def entries_of_kind(self, kind: str) -> list[LogEntry]:
        """Return every entry of record ``kind``, in log order (via the kind index).

        Index hits are re-read from the log and checked (IntegrityError if the index is wrong);
        entries the index does not cover yet (an interrupted commit, or a ledger written before
        the kind index existed) are found by scanning that tail. The index is derived data: a
        tampered one could leave an entry out, which ``kind_index_problems`` (fsck) detects.
        """
        validate_kind(kind)
        covered = min(self._state.kinds_indexed, self.size)
        limit = self._state.kinds.get(kind, 0)
        name = f"{KINDS_DIR}/{kind}{KIND_FILE_SUFFIX}"
        try:
            with open(self.path / name, "rb") as handle:
                data = handle.read(limit)
        except FileNotFoundError:
            data = b""
        if len(data) != limit:
            raise IntegrityError(f"{name}: shorter than {STATE_FILE} records")
        found: list[LogEntry] = []
        for at in range(0, limit, KIND_RECORD_SIZE):
            index = int.from_bytes(data[at : at + KIND_RECORD_SIZE], "big")
            if index >= covered or (found and index <= found[-1].index):
                raise IntegrityError(f"{name}: entry {index} is out of order or not indexed")
            entry = self.entry(index)
            if entry.kind != kind:
                raise IntegrityError(f"{name}: says entry {index} is a {kind}, it is not")
            found.append(entry)
        found.extend(e for e in self.entries(covered) if e.kind == kind)
        return found

    def kind_index_problems(self) -> list[str]:
        """Return how the kind index disagrees with the log (empty when it lists exactly the
        entries of each kind it covers). Reads every covered entry: an fsck-time check."""
        state = self._state
        if state.kinds_indexed > self.size:
            return [f"the kind index covers {state.kinds_indexed} entries, the log {self.size}"]
        expected: dict[str, bytearray] = {}
        for entry in self.entries(0, state.kinds_indexed):
            expected.setdefault(entry.kind, bytearray()).extend(
                entry.index.to_bytes(KIND_RECORD_SIZE, "big")
            )
        problems = []
        for kind in sorted(set(state.kinds) | set(expected)):
            path = self.path / KINDS_DIR / f"{kind}{KIND_FILE_SUFFIX}"
            try:
                actual = path.read_bytes()[: state.kinds.get(kind, 0)]
            except FileNotFoundError:
                actual = b""
            if actual != expected.get(kind, b""):
                count = len(expected.get(kind, b"")) // KIND_RECORD_SIZE
                problems.append(
                    f"{KINDS_DIR}/{path.name}: does not list the {count} {kind} entries of the log"
                )
        return problems

    def envelope(self, envelope_id: str) -> Envelope:
        """Return the DSSE envelope stored as blob ``envelope_id`` (re-hashed, parsed strictly)."""
        return Envelope.from_json(self.objects.get(envelope_id))

    def statement(self, entry: LogEntry) -> RecordStatement:
        """Return the statement ``entry``'s envelope carries, checked against the leaf.

        Signatures are not checked here (see fsck and the trust policy); the subject and kind
        must equal the leaf's, else IntegrityError.
        """
        envelope = self.envelope(entry.envelope_id)
        if envelope.payload_type != PAYLOAD_TYPE:
            raise FormatError(f"envelope {entry.envelope_id}: payload type is not {PAYLOAD_TYPE}")
        statement = RecordStatement.from_bytes(envelope.payload)
        if (statement.kind, statement.sha256) != (entry.kind, entry.blob_id):
            raise IntegrityError(
                f"entry {entry.index}: statement is about {statement.kind} {statement.sha256}, "
                f"the leaf says {entry.kind} {entry.blob_id}"
            )
        return statement

    def root(self, size: int | None = None) -> bytes:
        """Return the RFC 6962 root of the first ``size`` entries (default: all)."""
        return self._log.root(size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return the RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``."""
        return self._log.inclusion_proof(index, size)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """Return the RFC 9162 consistency proof from tree size ``old`` to ``new``."""
        return self._log.consistency_proof(old, new)

    def verify_log(self) -> list[tuple[int, str]]:
        """Re-check every leaf, stored hash and head record of the log (LogStore.verify)."""
        return self._log.verify()

    # -- checkpoints -------------------------------------------------------------------------

    def _checkpoint_path(self, size: int) -> Path:
        return self.path / LOG_DIR / CHECKPOINTS_DIR / str(size)

    def checkpoint(self, size: int) -> bytes:
        """Return the signed checkpoint note of tree size ``size`` (NotFoundError if none)."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"checkpoint size must be a non-negative integer, got {size!r}")
        try:
            return self._checkpoint_path(size).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no checkpoint of size {size}") from None

    def checkpoint_sizes(self) -> list[int]:
        """Return the tree sizes of every stored checkpoint, ascending."""
        try:
            names = os.listdir(self.path / LOG_DIR / CHECKPOINTS_DIR)
        except FileNotFoundError:
            return []
        return sorted(int(name) for name in names if _SIZE_NAME.fullmatch(name))

    def latest_checkpoint_size(self) -> int | None:
        """Return the size of the latest checkpoint, or None before the first commit.

        ``state.json`` names it; a checkpoint at exactly the log size written by a commit that
        crashed before updating ``state.json`` is the latest too (one stat, O(1)).
        """
        if self._state.checkpoint != self.size and self._checkpoint_path(self.size).is_file():
            return self.size
        return self._state.checkpoint

    def latest_checkpoint(self) -> bytes:
        """Return the latest signed checkpoint note (NotFoundError before the first commit)."""
        size = self.latest_checkpoint_size()
        if size is None:
            raise NotFoundError("the ledger has no checkpoint yet (nothing was committed)")
        return self.checkpoint(size)

    # -- keys and refs -----------------------------------------------------------------------

    def public_keys(self) -> dict[str, PublicKey]:
        """Return the keyring: every key that signed an envelope or cosigned, by key id.

        IntegrityError if a key file does not hold the key its name says. The ledger records
        keys; trusting them is the trust policy's job.
        """
        keys: dict[str, PublicKey] = {}
        for key_id, path in self.key_files():
            key = PublicKey.from_pem(path.read_bytes())
            if key.key_id != key_id:
                raise IntegrityError(f"{KEYS_DIR}/{path.name} holds key {key.key_id}")
            keys[key_id] = key
        return keys

    def key_files(self) -> list[tuple[str, Path]]:
        """Return (key id, path) for each keyring file, sorted by key id."""
        directory = self.path / KEYS_DIR
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        matches = (_KEY_FILE_NAME.fullmatch(name) for name in names)
        return sorted((m.group(1), directory / m.group(0)) for m in matches if m)

    def ref(self, name: str) -> str:
        """Return the blob id ref ``name`` points at (NotFoundError if there is no such ref)."""
        try:
            data = (self.path / REFS_DIR / validate_ref_name(name)).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no ref named {name!r}") from None
        return parse_ref(data)

    def refs(self) -> dict[str, str]:
        """Return every ref, name -> blob id, sorted by name."""
        try:
            names = sorted(os.listdir(self.path / REFS_DIR))
        except FileNotFoundError:
            return {}
        return {name: self.ref(name) for name in names if REF_NAME_PATTERN.fullmatch(name)}

    # -- writing -----------------------------------------------------------------------------

    def writer(self, *, log_key: PrivateKey, wait: float = 0.0) -> LedgerWriter:
        """Take the writer lock (waiting up to ``wait`` s) and return a writer.

        ``log_key`` must be the ledger's log key. The ledger is re-read under the lock (another
        process may have written) and any interrupted commit is finished or rolled back.
        """
        if self._writer is not None:
            raise LedgerError("this Ledger already has an open writer")
        if log_key.public_key != self._log_key:
            raise LedgerError(
                f"log key {log_key.public_key.key_id} is not this ledger's log key "
                f"{self._log_key.key_id}"
            )
        lock = WriterLock(self.path / LOCK_FILE)
        lock.acquire(wait)
        try:
            self._reload_for_writing()
            writer = LedgerWriter(self, log_key, lock)
        except BaseException:
            lock.release()
            raise
        self._writer = writer
        return writer

    def _reload_for_writing(self) -> None:
        """Re-read state and reopen the log writable (under the lock), then repair."""
        try:
            state = LedgerState.from_bytes((self.path / STATE_FILE).read_bytes())
        except (IntegrityError, FileNotFoundError):
            state = None  # rebuilt below from the log and the checkpoint files
        log = LogStore(self.path / LOG_DIR)
        self._log.close()
        self._log = log
        self._state = _repair_state(self, state)

    def _set_state(self, state: LedgerState) -> None:
        replace_file(self.path / STATE_FILE, state.to_bytes())
        self._state = state

    def _writer_closed(self) -> None:
        self._writer = None


def _repair_state(ledger: Ledger, state: LedgerState | None) -> LedgerState:
    """Finish the bookkeeping of an interrupted commit; return the state now on disk.

    Cuts each index bucket back to its recorded length, indexes entries the index is missing,
    and points at a checkpoint written at the log size but not yet recorded. A missing or
    damaged ``state.json`` is rebuilt from the log and the checkpoint files.
    """
    size = ledger.size
    index_dir = ledger.path / INDEX_DIR
    kinds_dir = ledger.path / KINDS_DIR
    if state is None:
        for directory in (index_dir, kinds_dir):
            with contextlib.suppress(FileNotFoundError):
                for name in os.listdir(directory):
                    truncate_file(directory / name, 0)
        sizes = [s for s in ledger.checkpoint_sizes() if s <= size]
        state = LedgerState(checkpoint=sizes[-1] if sizes else None)
    if max(state.indexed, state.kinds_indexed, state.checkpoint or 0) > size:
        raise IntegrityError(
            f"{STATE_FILE} describes {state.indexed} indexed entries ({state.kinds_indexed} by "
            f"kind) and a checkpoint of size {state.checkpoint}, but the log holds {size} entries"
        )
    latest = state.checkpoint
    if latest != size and ledger._checkpoint_path(size).is_file():
        latest = size  # written by a commit that crashed before recording it
    repaired = replace(state, checkpoint=latest)
    if state.indexed < size:
        tail = [ledger.entry(i) for i in range(state.indexed, size)]
        for bucket in {entry.blob_id[:2] for entry in tail}:
            path = index_dir / bucket
            if path.exists() and path.stat().st_size > repaired.buckets.get(bucket, 0):
                truncate_file(path, repaired.buckets.get(bucket, 0))
        repaired = _append_index(index_dir, repaired, tail, size)
    if state.kinds_indexed < size:
        tail = [ledger.entry(i) for i in range(state.kinds_indexed, size)]
        for kind in {entry.kind for entry in tail}:
            path = kinds_dir / f"{kind}{KIND_FILE_SUFFIX}"
            if path.exists() and path.stat().st_size > repaired.kinds.get(kind, 0):
                truncate_file(path, repaired.kinds.get(kind, 0))
        repaired = _append_kind_index(kinds_dir, repaired, tail, size)
    if repaired != state:
        replace_file(ledger.path / STATE_FILE, repaired.to_bytes())
    return repaired


def _append_index(
    index_dir: Path, state: LedgerState, entries: Sequence[LogEntry], indexed: int
) -> LedgerState:
    """Append index records for ``entries`` durably; return the state that covers them."""
    by_bucket: dict[str, bytearray] = {}
    for entry in entries:
        by_bucket.setdefault(entry.blob_id[:2], bytearray()).extend(
            index_record(entry.blob_id, entry.index)
        )
    buckets = _append_at_offsets(index_dir, by_bucket, state.buckets, lambda bucket: bucket)
    return replace(state, indexed=indexed, buckets=buckets)


def _append_kind_index(
    kinds_dir: Path, state: LedgerState, entries: Sequence[LogEntry], indexed: int
) -> LedgerState:
    """Append kind-index records for ``entries`` durably; return the state that covers them."""
    by_kind: dict[str, bytearray] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, bytearray()).extend(
            entry.index.to_bytes(KIND_RECORD_SIZE, "big")
        )
    lengths = _append_at_offsets(
        kinds_dir, by_kind, state.kinds, lambda kind: f"{kind}{KIND_FILE_SUFFIX}"
    )
    return replace(state, kinds_indexed=indexed, kinds=lengths)


def _append_at_offsets(
    directory: Path,
    records: Mapping[str, bytes | bytearray],
    lengths: Mapping[str, int],
    file_name: Callable[[str], str],
) -> dict[str, int]:
    """Write each key's ``records`` into ``directory/file_name(key)`` at the committed length
    ``lengths[key]`` (0 for a new file), fsync every file written (and the directory when a
    file was created); return the lengths that now cover them.

    Writing at the committed length, not appending, overwrites whatever an interrupted commit
    left past it.
    """
    new_lengths = dict(lengths)
    # A ledger checked into git loses its empty directories; recreate them when needed.
    to_sync: list[Path] = make_dirs(directory)
    created = False
    for key, data in sorted(records.items()):
        path = directory / file_name(key)
        created |= not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            offset = new_lengths.get(key, 0)
            written = 0
            while written < len(data):
                written += os.pwrite(fd, data[written:], offset + written)
        finally:
            os.close(fd)
        new_lengths[key] = offset + len(data)
        to_sync.append(path)
    fsync_paths([*to_sync, *([directory] if created else [])])
    return new_lengths


class LedgerWriter:
    """Adds blobs and signed records to a ledger while holding its writer lock.

    Work is batched: nothing is visible or durable until ``commit()``, which returns the new
    signed checkpoint. Leaving the ``with`` block normally commits; leaving it with an exception
    drops the uncommitted records and blobs (docs/ledger-format.md section 9). After an error
    inside ``commit()`` the writer refuses further use; open a new one, which recovers.
    """

    def __init__(self, ledger: Ledger, log_key: PrivateKey, lock: WriterLock) -> None:
        """Wrap a ledger whose lock is held (use ``Ledger.writer``)."""
        self._ledger = ledger
        self._log_key = log_key
        self._lock = lock
        self._batch: ObjectBatch = ledger.objects.batch()
        self._pending: list[LeafRecord] = []
        self._keyring = ledger.public_keys()
        self._new_keys: dict[str, PublicKey] = {}
        self._new_refs: dict[str, str] = {}
        self._broken = False
        self._last_checkpoint: Checkpoint | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and not self._broken and self._lock.held:
                self.commit()
        finally:
            self.close()

    def close(self) -> None:
        """Drop uncommitted work and release the lock. Idempotent."""
        if not self._lock.held:
            return
        try:
            self.abort()
        finally:
            self._lock.release()
            self._ledger._writer_closed()

    def abort(self) -> None:
        """Drop every uncommitted record, blob, key and ref."""
        self._batch.abort()
        self._pending.clear()
        self._new_keys.clear()
        self._new_refs.clear()

    @property
    def pending(self) -> int:
        """Number of records appended since the last commit."""
        return len(self._pending)

    # -- adding ----------------------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        """Stage a blob; return its id. Durable at commit."""
        self._require_usable()
        if not isinstance(data, bytes):
            raise TypeError(f"blob data must be bytes, got {type(data).__name__}")
        return self._batch.put(data)

    def put_file(self, path: Path) -> str:
        """Stage a file as a blob, streaming it; return its id. Durable at commit."""
        self._require_usable()
        return self._batch.put_file(Path(path))

    def contains(self, blob_id: str) -> bool:
        """Return True if ``blob_id`` is stored or staged in this batch."""
        return self._batch.contains(blob_id)

    def record(
        self,
        *,
        kind: str,
        blob_id: str,
        parents: Sequence[Parent],
        signers: Sequence[PrivateKey],
        time: str,
        tool_version: str,
    ) -> LogEntry:
        """Sign a RecordStatement about blob ``blob_id`` by every signer and append its leaf.

        The blob and every parent must be stored or staged. The envelope is stored as a blob
        and the signers' public keys join the keyring. Durable at commit.
        """
        self._require_usable()
        if not signers:
            raise ValueError("a record needs at least one signer")
        statement = RecordStatement(
            kind=kind,
            sha256=blob_id,
            parents=tuple(parents),
            origin=self._ledger.origin,
            time=time,
            tool_version=tool_version,
        )
        envelope = Envelope(statement.to_bytes(), PAYLOAD_TYPE)
        for signer in signers:
            envelope = envelope.signed_by(signer)
        # These signatures were made just now by these keys: no need to verify them again.
        keys = {signer.public_key.key_id: signer.public_key for signer in signers}
        return self._append(statement, envelope, keys)

    def append_envelope(
        self, kind: str, blob_id: str, envelope: Envelope, *, keys: Sequence[PublicKey] = ()
    ) -> LogEntry:
        """Append a pre-signed envelope whose statement is about ``kind`` blob ``blob_id``.

        Every signature must verify against ``keys`` or the keyring (SignatureError naming the
        signature otherwise); the statement must be this ledger's (origin) and its subject and
        parents must be stored or staged. ``keys`` join the keyring.
        """
        self._require_usable()
        validate_kind(kind)
        validate_blob_id(blob_id)
        # DSSE order: verify the signatures over PAE, then the payload type, then parse.
        signers = self._verified_signers(envelope, {key.key_id: key for key in keys})
        if envelope.payload_type != PAYLOAD_TYPE:
            raise FormatError(
                f"envelope payload type {envelope.payload_type!r}, expected {PAYLOAD_TYPE!r}"
            )
        statement = RecordStatement.from_bytes(envelope.payload)
        if (statement.kind, statement.sha256) != (kind, blob_id):
            raise LedgerError(
                f"envelope is about {statement.kind} {statement.sha256}, not {kind} {blob_id}"
            )
        return self._append(statement, envelope, signers)

    def _verified_signers(
        self, envelope: Envelope, keys: Mapping[str, PublicKey]
    ) -> dict[str, PublicKey]:
        """Return the keys that made each signature of ``envelope``; SignatureError if any fails."""
        if not envelope.signatures:
            raise SignatureError("envelope has no signatures")
        keyring = {**self._keyring, **self._new_keys, **keys}
        message = pae(envelope.payload_type, envelope.payload)
        signers: dict[str, PublicKey] = {}
        for position, signature in enumerate(envelope.signatures):
            signer = find_signer(signature, message, keyring)
            if signer is None:
                raise SignatureError(
                    f"envelope signature {position} (keyid hint {signature.keyid!r}) does not "
                    "verify with any supplied or recorded key"
                )
            signers[signer] = keyring[signer]
        return signers

    def _append(
        self, statement: RecordStatement, envelope: Envelope, signers: Mapping[str, PublicKey]
    ) -> LogEntry:
        """Stage one record whose envelope ``signers`` signed: check origin, subject, parents."""
        if statement.origin != self._ledger.origin:
            raise LedgerError(
                f"statement is for ledger {statement.origin!r}, this is {self._ledger.origin!r}"
            )
        for blob_id in (statement.sha256, *(parent.sha256 for parent in statement.parents)):
            if not self._batch.contains(blob_id):
                raise NotFoundError(f"blob {blob_id} is not in the ledger (put it first)")
        envelope_id = self._batch.put(envelope.to_json())
        record = LeafRecord(statement.kind, statement.sha256, envelope_id)
        index = self._ledger.size + len(self._pending)
        self._pending.append(record)
        self._new_keys.update((k, v) for k, v in signers.items() if k not in self._keyring)
        return LogEntry(index, record.kind, record.blob_id, record.envelope_id, record.to_bytes())

    def set_ref(self, name: str, blob_id: str) -> None:
        """Point ref ``name`` at stored or staged blob ``blob_id``; written at commit."""
        self._require_usable()
        validate_ref_name(name)
        if not self._batch.contains(blob_id):
            raise NotFoundError(f"blob {blob_id} is not in the ledger")
        self._new_refs[name] = blob_id

    def remove_stale_temp_files(self) -> int:
        """Delete temp files that killed or failed writers left in ``objects/``; return how many.

        Safe only under the lock, which this writer holds; its own staged files are kept.
        Walks every fan-out directory, so it is O(number of blobs): run it occasionally.
        """
        self._require_usable()
        own = self._batch.temp_paths()
        stale = [path for path in self._ledger.objects.temp_files() if path not in own]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    # -- committing ------------------------------------------------------------------------------

    def commit(self) -> bytes:
        """Make everything durable, then sign and store the checkpoint; return the signed note.

        Order, each step durable before the next (docs/ledger-format.md section 9): blobs, new
        keyring keys, log leaves, blob index, checkpoint, refs, ``state.json``. The returned
        checkpoint acknowledges every record appended so far. With nothing new, the latest
        checkpoint is returned unchanged.
        """
        self._require_usable()
        ledger = self._ledger
        try:
            self._batch.commit()
            self._store_new_keys()
            first = ledger.size
            for record in self._pending:
                ledger._log.append(record.to_bytes())
            ledger._log.sync()
            entries = [
                LogEntry(first + n, r.kind, r.blob_id, r.envelope_id, r.to_bytes())
                for n, r in enumerate(self._pending)
            ]
            self._pending.clear()
            state = ledger.state
            if entries:
                state = _append_index(ledger.path / INDEX_DIR, state, entries, ledger.size)
                state = _append_kind_index(ledger.path / KINDS_DIR, state, entries, ledger.size)
            note = self._checkpoint()
            # Refs last: a ref never names a release whose records are not yet checkpointed.
            for name, blob_id in sorted(self._new_refs.items()):
                replace_file(ledger.path / REFS_DIR / name, f"{blob_id}\n".encode("ascii"))
            self._new_refs.clear()
            state = replace(state, checkpoint=ledger.size)
            if state != ledger.state:
                ledger._set_state(state)
        except BaseException:
            self._broken = True
            raise
        return note

    def _store_new_keys(self) -> None:
        """Write each new keyring key durably (before any entry whose envelope it signed)."""
        for key_id, key in sorted(self._new_keys.items()):
            path = self._ledger.path / KEYS_DIR / f"{key_id}{KEY_FILE_SUFFIX}"
            if not path.exists():
                replace_file(path, key.to_pem())
        self._keyring.update(self._new_keys)
        self._new_keys.clear()

    def _checkpoint(self) -> bytes:
        """Return the checkpoint at the log size, signing it if new (after a consistency check)."""
        ledger = self._ledger
        size, root = ledger.size, ledger.root()
        path = ledger._checkpoint_path(size)
        if path.is_file():
            data = path.read_bytes()
            checkpoint, _ = open_checkpoint(data, origin=ledger.origin, key=ledger.log_public_key)
            if (checkpoint.size, checkpoint.root_hash) != (size, root):
                raise IntegrityError(f"checkpoint {size} on disk does not match the log")
            self._last_checkpoint = checkpoint
            return data
        previous = self._previous_checkpoint()
        if previous is not None:
            # Never sign a tree head inconsistent with one already signed.
            try:
                proof = ledger.consistency_proof(previous.size, size)
                verify_consistency(previous.size, size, proof, previous.root_hash, root)
            except (ProofError, ValueError) as exc:
                raise IntegrityError(
                    f"log is not consistent with checkpoint {previous.size}: {exc}"
                ) from None
        checkpoint = Checkpoint(ledger.origin, size, root)
        data = sign_checkpoint(checkpoint, self._log_key)
        replace_file(path, data)
        self._last_checkpoint = checkpoint
        return data

    def _previous_checkpoint(self) -> Checkpoint | None:
        if self._last_checkpoint is not None:
            return self._last_checkpoint
        size = self._ledger.latest_checkpoint_size()
        if size is None:
            return None
        data = self._ledger.checkpoint(size)
        checkpoint, _ = open_checkpoint(
            data, origin=self._ledger.origin, key=self._ledger.log_public_key
        )
        if checkpoint.size != size:
            raise IntegrityError(
                f"checkpoint file {size} holds a checkpoint of size {checkpoint.size}"
            )
        return checkpoint

    def add_cosignature(self, size: int, sig: NoteSignature, key: PublicKey) -> bytes:
        """Verify witness ``key``'s cosignature/v1 of checkpoint ``size`` and store it with it.

        Returns the updated note. The witness key joins the keyring (before the note changes)
        so that fsck can re-verify the cosignature. Adding the same cosignature twice is a
        no-op; a different one from the same witness key is refused.
        """
        self._require_usable()
        ledger = self._ledger
        data = ledger.checkpoint(size)
        _, note = open_checkpoint(data, origin=ledger.origin, key=ledger.log_public_key)
        verify_cosignature(note.text, sig, key)
        for existing in note.signatures:
            if (existing.name, existing.key_hash) == (sig.name, sig.key_hash):
                if existing == sig:
                    return data
                raise LedgerError(f"checkpoint {size} already holds a cosignature by {sig.name}")
        key_path = ledger.path / KEYS_DIR / f"{key.key_id}{KEY_FILE_SUFFIX}"
        if not key_path.exists():
            replace_file(key_path, key.to_pem())
        self._keyring[key.key_id] = key
        updated = format_note(Note(note.text, (*note.signatures, sig)))
        replace_file(ledger._checkpoint_path(size), updated)
        return updated

    def _require_usable(self) -> None:
        if not self._lock.held:
            raise LedgerError("this writer is closed")
        if self._broken:
            raise LedgerError("a commit failed; close this writer and open a new one")
