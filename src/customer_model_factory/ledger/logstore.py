"""The append-only log storage: leaves, stored Merkle hashes and committed tree heads on disk.

A log directory holds four append-only files (docs/ledger-format.md section 7):

``entries``
    every leaf, framed as a canonical msgpack ``bin`` object (what is hashed is the leaf bytes,
    never the frame);
``offsets``
    one 8-byte big-endian end offset into ``entries`` per leaf, so ``leaf(i)`` is O(1);
``hashes``
    the 32-byte stored complete-subtree hashes in tlog's ``StoredHashIndex`` order, so a root or
    a proof costs O(log n) reads;
``heads``
    one 48-byte record per ``sync()``: tree size, root and a checksum. The last intact record is
    the *committed* state; bytes beyond it in any file are a torn tail of an interrupted write.

Durability protocol: ``sync()`` writes and fsyncs the three data files (concurrently), and only
then appends and fsyncs a head record. Opening reads the last head record, checks that every
file holds what it commits to (else IntegrityError: that is damage, not a crash) and that the
stored hashes still give the committed root, and ignores anything beyond. Nothing replays the
log: opening reads a few fixed-size records (at most log2(n) + 3), whatever the log size. Torn
tails are cut off at the first write after opening, so opening never modifies a log that
another process is writing.

One writer at a time: callers open the store and append while holding the ledger lock
(``ledger/lock.py``); a store that finds another writer's commit before it writes raises
LockError instead of overwriting it. Not thread-safe.
"""

from __future__ import annotations

import bisect
import hashlib
import mmap
import os
from pathlib import Path
from types import TracebackType

from .durable import run_concurrently
from .errors import FormatError, IntegrityError, LedgerError, LockError
from .merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    new_stored_hashes,
    stored_hash_count,
    stored_hash_index,
    tree_hash,
)

MAX_LEAF_SIZE = 65_535
"""Largest leaf in bytes (the limit of tlog-tiles entry bundles and of a msgpack bin 16)."""

ENTRIES_FILE = "entries"
OFFSETS_FILE = "offsets"
HASHES_FILE = "hashes"
HEADS_FILE = "heads"
LOG_FILES = (ENTRIES_FILE, OFFSETS_FILE, HASHES_FILE, HEADS_FILE)

OFFSET_SIZE = 8
HEAD_SIZE = 48
"""A head record: size (8 bytes, big-endian) || root (32) || SHA-256(size || root)[:8]."""

_FLUSH_THRESHOLD = 1 << 20  # bytes buffered per file before they are handed to the OS
_BIN8, _BIN16 = 0xC4, 0xC5

Finding = tuple[int, str]
"""(leaf index, message) reported by ``LogStore.verify``."""


# --- pure encodings ------------------------------------------------------------------------------


def frame_leaf(leaf: bytes) -> bytes:
    """Return the canonical msgpack ``bin`` frame of ``leaf``: bin 8 below 256 bytes, else bin 16.

    Raises ValueError if the leaf is longer than MAX_LEAF_SIZE.
    """
    if len(leaf) > MAX_LEAF_SIZE:
        raise ValueError(f"a leaf is at most {MAX_LEAF_SIZE} bytes, got {len(leaf)}")
    if len(leaf) < 256:
        return bytes((_BIN8, len(leaf))) + leaf
    return bytes((_BIN16,)) + len(leaf).to_bytes(2, "big") + leaf


def unframe_leaf(frame: bytes) -> bytes:
    """Return the leaf inside a frame written by ``frame_leaf``; FormatError on any other bytes.

    Only the canonical encoding is accepted, so every leaf has exactly one frame.
    """
    if len(frame) >= 2 and frame[0] == _BIN8:
        length, header = frame[1], 2
    elif len(frame) >= 3 and frame[0] == _BIN16:
        length, header = int.from_bytes(frame[1:3], "big"), 3
        if length < 256:
            raise FormatError(f"non-canonical frame: bin 16 for a {length}-byte leaf")
    else:
        raise FormatError("a leaf frame must be a msgpack bin 8 or bin 16 object")
    if len(frame) != header + length:
        raise FormatError(f"frame of {len(frame)} bytes announces a {length}-byte leaf")
    return frame[header:]


def encode_head(size: int, root: bytes) -> bytes:
    """Return the 48-byte head record committing to a tree of ``size`` leaves with ``root``."""
    if len(root) != HASH_SIZE:
        raise ValueError(f"root must be {HASH_SIZE} bytes")
    body = size.to_bytes(8, "big") + root
    return body + hashlib.sha256(body).digest()[:8]


def decode_head(record: bytes) -> tuple[int, bytes] | None:
    """Return (size, root) of an intact head record, or None if it is torn or damaged."""
    if len(record) != HEAD_SIZE:
        return None
    body, check = record[:40], record[40:]
    if hashlib.sha256(body).digest()[:8] != check:
        return None
    return int.from_bytes(body[:8], "big"), body[8:]


# --- one append-only file ------------------------------------------------------------------------


class _AppendFile:
    """An append-only file whose appends are buffered in memory until flushed.

    ``length`` is the logical length: committed bytes plus appended ones. Physical bytes beyond
    the logical length at open time are a torn tail, cut off by the first flush.
    """

    def __init__(self, fd: int, name: str, length: int) -> None:
        self.fd = fd
        self.name = name
        self._flushed = length
        self._pending = bytearray()
        self._stale_tail = os.fstat(fd).st_size > length

    @property
    def length(self) -> int:
        """Logical length in bytes."""
        return self._flushed + len(self._pending)

    @property
    def pending(self) -> int:
        """Bytes appended but not yet handed to the OS."""
        return len(self._pending)

    def append(self, data: bytes) -> int:
        """Buffer ``data`` at the end; return its offset."""
        offset = self.length
        self._pending += data
        return offset

    def read(self, offset: int, size: int) -> bytes:
        """Return exactly ``size`` bytes at ``offset``; IntegrityError if the file is short."""
        end = offset + size
        if offset < 0 or end > self.length:
            raise IntegrityError(f"{self.name}: read [{offset}, {end}) beyond length {self.length}")
        if offset >= self._flushed:
            start = offset - self._flushed
            return bytes(self._pending[start : start + size])
        disk_end = min(end, self._flushed)
        data = os.pread(self.fd, disk_end - offset, offset)
        if len(data) != disk_end - offset:
            raise IntegrityError(f"{self.name}: file ends before byte {disk_end}")
        if end > self._flushed:
            data += self._pending[: end - self._flushed]
        return data

    def flush(self) -> None:
        """Hand the buffered bytes to the OS (no fsync), cutting off any torn tail first."""
        if not self._pending and not self._stale_tail:
            return
        try:
            if self._stale_tail:
                os.ftruncate(self.fd, self._flushed)
                self._stale_tail = False
            data, written = bytes(self._pending), 0
            while written < len(data):
                written += os.pwrite(self.fd, data[written:], self._flushed + written)
        except OSError:
            # Whatever reached the file beyond _flushed is garbage now; cut it next time.
            self._stale_tail = True
            raise
        self._flushed += len(data)
        self._pending.clear()

    def sync(self) -> None:
        """Flush, then fsync: every byte up to ``length`` is durable when this returns."""
        self.flush()
        os.fsync(self.fd)


# --- the store -----------------------------------------------------------------------------------


class LogStore:
    """An append-only RFC 6962 log on disk: O(1) open, O(1) leaf reads, O(log n) proofs."""

    def __init__(self, directory: Path) -> None:
        """Open the log in ``directory`` (created durably if missing); IntegrityError on damage.

        A torn tail left by a crash is not damage: it is ignored, and cut off by the next write.
        """
        findings = self._open(Path(directory), writable=True)
        if findings:
            self._close_files()
            details = "; ".join(message for _, message in findings)
            raise IntegrityError(f"log {directory} is damaged: {details}")

    @classmethod
    def open_for_audit(cls, directory: Path) -> tuple[LogStore, list[Finding]]:
        """Open an existing log read-only for fsck, returning open-time damage instead of raising.

        The store's size is the committed size, or when no head record survives, the number of
        leaves the files can hold. Call ``verify()`` on it for a full scan. Raises
        FileNotFoundError when the directory or one of its four files is missing.
        """
        store = cls.__new__(cls)
        findings = store._open(Path(directory), writable=False)
        return store, findings

    # -- opening ---------------------------------------------------------------------------------

    def _open(self, directory: Path, *, writable: bool) -> list[Finding]:
        """Open the four files and establish the committed state; return damage found."""
        self._directory = directory
        self._writable = writable
        fds = _open_files(directory, create=writable)
        try:
            return self._load(fds)
        except BaseException:
            for fd in fds.values():
                os.close(fd)
            raise

    def _load(self, fds: dict[str, int]) -> list[Finding]:
        """Read the last head, check the files against it and set up the appenders."""
        findings: list[Finding] = []
        head, heads_length, head_problem = _last_head(fds[HEADS_FILE])
        if head is not None:
            size, root = head
        elif head_problem is not None:  # audit: no head to trust, see what the files hold
            size, root = _size_from_file_lengths(fds), None
        else:
            size, root = 0, EMPTY_ROOT
        if head_problem is not None:
            findings.append((max(size - 1, 0), head_problem))
        entries_end = 0
        if size > 0:
            entries_end, problems = _check_committed_files(fds, size)
            findings.extend(problems)
        self._entries = _AppendFile(fds[ENTRIES_FILE], ENTRIES_FILE, entries_end)
        self._offsets = _AppendFile(fds[OFFSETS_FILE], OFFSETS_FILE, size * OFFSET_SIZE)
        self._hashes = _AppendFile(
            fds[HASHES_FILE], HASHES_FILE, stored_hash_count(size) * HASH_SIZE
        )
        self._heads = _AppendFile(fds[HEADS_FILE], HEADS_FILE, heads_length)
        self._size = self._durable_size = size
        self._closed = False
        if root is not None and not findings and self.root() != root:
            findings.append(
                (size - 1, f"{HASHES_FILE}: stored hashes do not give the committed root")
            )
        return findings

    # -- properties ------------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The log directory."""
        return self._directory

    @property
    def size(self) -> int:
        """Number of leaves, including those appended since the last ``sync()``."""
        return self._size

    @property
    def durable_size(self) -> int:
        """Number of leaves committed by ``sync()``: what survives a crash now."""
        return self._durable_size

    # -- writing ---------------------------------------------------------------------------------

    def append(self, leaf: bytes) -> int:
        """Append one leaf (at most MAX_LEAF_SIZE bytes); return its index. Durable after sync()."""
        self._require_writable()
        if not isinstance(leaf, bytes):
            raise TypeError(f"a leaf must be bytes, got {type(leaf).__name__}")
        frame = frame_leaf(leaf)
        index = self._size
        new_hashes = new_stored_hashes(index, leaf_hash(leaf), self._read_hash)
        if self._hashes.length != stored_hash_index(0, index) * HASH_SIZE:
            raise AssertionError("hashes file length disagrees with the log size")
        end = self._entries.append(frame) + len(frame)
        self._offsets.append(end.to_bytes(OFFSET_SIZE, "big"))
        for _, _, value in new_hashes:
            self._hashes.append(value)
        self._size = index + 1
        if any(h.pending >= _FLUSH_THRESHOLD for h in (self._entries, self._offsets, self._hashes)):
            self._flush_data(durable=False)
        return index

    def sync(self) -> None:
        """Make every appended leaf and stored hash durable, then commit a head record.

        Data files are fsynced before the head record is written, so a committed head never
        points at data that a crash could lose.
        """
        self._require_writable()
        if self._size == self._durable_size:
            return
        self._flush_data(durable=True)
        self._heads.append(encode_head(self._size, self.root()))
        self._heads.sync()
        self._durable_size = self._size

    # -- reading ---------------------------------------------------------------------------------

    def leaf(self, index: int) -> bytes:
        """Return leaf ``index``, checked against its stored leaf hash (IntegrityError if not)."""
        self._require_leaf(index)
        start, end = self._entry_span(index)
        try:
            data = unframe_leaf(self._entries.read(start, end - start))
        except FormatError as exc:
            raise IntegrityError(f"{ENTRIES_FILE}: leaf {index}: {exc}") from exc
        if leaf_hash(data) != self._read_hash(0, index):
            raise IntegrityError(f"{ENTRIES_FILE}: leaf {index} does not match its stored hash")
        return data

    def leaves(self, start: int, stop: int) -> list[bytes]:
        """Return leaves ``start`` up to ``stop``, each checked against its stored leaf hash.

        Three reads whatever the count (the range's offsets, frames and stored hashes), for
        scanning the log; IntegrityError names the first damaged leaf (``leaf`` then tells the
        others apart).
        """
        self._require_open()
        if not 0 <= start <= stop <= self._size:
            raise IndexError(f"range [{start}, {stop}) is not within a log of size {self._size}")
        if start == stop:
            return []
        first_offset = (start - 1) * OFFSET_SIZE if start else 0
        raw = self._offsets.read(first_offset, stop * OFFSET_SIZE - first_offset)
        ends = [
            int.from_bytes(raw[at : at + OFFSET_SIZE], "big")
            for at in range(0, len(raw), OFFSET_SIZE)
        ]
        begin = ends.pop(0) if start else 0
        span = ends[-1] - begin
        # A damaged offset must not make us read a huge span: frames are at most this long.
        if not 0 <= span <= (stop - start) * (MAX_LEAF_SIZE + 3) or ends[-1] > self._entries.length:
            raise IntegrityError(f"{OFFSETS_FILE}: leaves [{start}, {stop}) span bad range")
        frames = self._entries.read(begin, span)
        first_hash, last_hash = _position(0, start), _position(0, stop - 1)
        hashes = self._hashes.read(first_hash * HASH_SIZE, (last_hash - first_hash + 1) * HASH_SIZE)
        leaves: list[bytes] = []
        previous = begin
        for index, end in enumerate(ends, start=start):
            if not previous <= end:
                raise IntegrityError(f"{OFFSETS_FILE}: leaf {index} spans bad range")
            try:
                data = unframe_leaf(frames[previous - begin : end - begin])
            except FormatError as exc:
                raise IntegrityError(f"{ENTRIES_FILE}: leaf {index}: {exc}") from exc
            at = (_position(0, index) - first_hash) * HASH_SIZE
            if leaf_hash(data) != hashes[at : at + HASH_SIZE]:
                raise IntegrityError(f"{ENTRIES_FILE}: leaf {index} does not match its stored hash")
            leaves.append(data)
            previous = end
        return leaves

    def leaf_hash(self, index: int) -> bytes:
        """Return the stored RFC 6962 leaf hash of leaf ``index``."""
        self._require_leaf(index)
        return self._read_hash(0, index)

    def stored_hash(self, level: int, n: int) -> bytes:
        """Return the stored hash of complete subtree (level, n); IndexError if not yet complete."""
        self._require_open()
        if level < 0 or n < 0 or (n + 1) << level > self._size:
            raise IndexError(f"subtree (level {level}, n {n}) is not complete at size {self._size}")
        return self._read_hash(level, n)

    def root(self, size: int | None = None) -> bytes:
        """Return the RFC 6962 root of the first ``size`` leaves (default: all of them)."""
        self._require_open()
        return tree_hash(self._require_size(size), self._read_hash)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return the audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
        self._require_open()
        return inclusion_proof(index, self._require_size(size), self._read_hash)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Return the consistency proof from tree size ``old_size`` to ``new_size``."""
        self._require_open()
        return consistency_proof(old_size, self._require_size(new_size), self._read_hash)

    # -- fsck ------------------------------------------------------------------------------------

    def verify(self) -> list[Finding]:
        """Re-check everything, returning every problem found as (leaf index, message).

        Every entry is re-framed and re-hashed against its stored leaf hash, every stored
        interior hash against its two stored children, and every committed head's root against
        the root recomputed from the entries. The index is the leaf concerned: for an interior
        hash the leaf whose append wrote it, for a head record its last leaf.
        """
        self._require_open()
        if self._size != self._durable_size:
            # Only this writer's own appends are flushed: a reader must never cut the torn
            # tail, which may be a concurrent writer's work in progress.
            self._flush_data(durable=False)
        heads, findings = _parse_heads(self._heads.read(0, self._heads.length), self._size)
        views = [_map(handle.fd) for handle in (self._offsets, self._entries, self._hashes)]
        try:
            findings.extend(_scan(self._size, views[0], views[1], views[2], heads))
        finally:
            for view in views:
                if isinstance(view, mmap.mmap):
                    view.close()
        return findings

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Sync any appended leaves, then close the files. Idempotent."""
        if self._closed:
            return
        try:
            if self._writable:
                self.sync()
        finally:
            self._close_files()

    def __enter__(self) -> LogStore:
        """Return the store itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close; sync first only when the block ended without an exception."""
        # Like a transaction: commit on success; on an exception leave the appends uncommitted,
        # so the next open drops them as a torn tail.
        if exc_type is None:
            self.close()
        else:
            self._close_files()

    # -- internals -------------------------------------------------------------------------------

    def _close_files(self) -> None:
        """Close every descriptor without syncing."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        for handle in (self._entries, self._offsets, self._hashes, self._heads):
            os.close(handle.fd)

    def _flush_data(self, *, durable: bool) -> None:
        """Write the buffered data files (and fsync them if ``durable``), unless the log moved.

        The last committed head must still be the one this store knows: otherwise another
        writer committed since this store was opened, and writing would overwrite its leaves.
        """
        head, _, _ = _last_head(self._heads.fd)
        if (head[0] if head is not None else 0) != self._durable_size:
            raise LockError(
                f"log {self._directory} changed since it was opened: open it under the lock"
            )
        data_files = (self._entries, self._offsets, self._hashes)
        if durable:
            # Concurrent fsyncs share journal commits: about the cost of one.
            run_concurrently(handle.sync for handle in data_files)
        else:
            for handle in data_files:
                handle.flush()

    def _read_hash(self, level: int, n: int) -> bytes:
        """HashReader over the hashes file: one 32-byte pread (or buffer slice)."""
        return self._hashes.read(stored_hash_index(level, n) * HASH_SIZE, HASH_SIZE)

    def _entry_span(self, index: int) -> tuple[int, int]:
        """Return [start, end) of leaf ``index``'s frame in the entries file."""
        if index == 0:
            start, end = 0, int.from_bytes(self._offsets.read(0, OFFSET_SIZE), "big")
        else:
            pair = self._offsets.read((index - 1) * OFFSET_SIZE, 2 * OFFSET_SIZE)
            start, end = int.from_bytes(pair[:8], "big"), int.from_bytes(pair[8:], "big")
        if not start <= end <= self._entries.length:
            raise IntegrityError(f"{OFFSETS_FILE}: leaf {index} spans bad range [{start}, {end})")
        return start, end

    def _require_open(self) -> None:
        """Raise ValueError if the store is closed."""
        if self._closed:
            raise ValueError("the log store is closed")

    def _require_writable(self) -> None:
        """Raise unless the store is open for writing."""
        self._require_open()
        if not self._writable:
            raise LedgerError("the log store was opened read-only for audit")

    def _require_leaf(self, index: int) -> None:
        """Raise IndexError unless 0 <= index < size."""
        self._require_open()
        if not 0 <= index < self._size:
            raise IndexError(f"leaf {index} is not in a log of size {self._size}")

    def _require_size(self, size: int | None) -> int:
        """Return ``size`` (default: the log size); ValueError unless 0 <= size <= log size."""
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ValueError(f"tree size {size} is not between 0 and the log size {self._size}")
        return size


# --- opening helpers (pure over file descriptors) ------------------------------------------------


def _open_files(directory: Path, *, create: bool) -> dict[str, int]:
    """Open the four log files; when creating, make new directory entries durable."""
    if create:
        new_dirs = _make_dirs(directory)
    elif not directory.is_dir():
        raise FileNotFoundError(f"no log directory at {directory}")
    fds: dict[str, int] = {}
    created = False
    try:
        for name in LOG_FILES:
            path = directory / name
            if create:
                created |= not path.exists()
                fds[name] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            else:
                fds[name] = os.open(path, os.O_RDONLY)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    if create and (created or new_dirs):
        for fd in fds.values():
            os.fsync(fd)
        for path in [directory, *new_dirs]:
            _fsync_dir(path)
    return fds


def _make_dirs(directory: Path) -> list[Path]:
    """Create ``directory`` and missing ancestors; return the parents that gained an entry."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return [path.parent for path in missing]


def _fsync_dir(path: Path) -> None:
    """fsync a directory so that the entries created in it survive a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_head(fd: int) -> tuple[tuple[int, bytes] | None, int, str | None]:
    """Return (last committed head or None, logical heads length, damage message or None).

    Each sync fsyncs its record before the next sync starts, so a crash can only have torn the
    very last record: cut it short (a trailing partial record, never counted), or left it
    blank, all zero bytes (filesystems such as XFS extend a file before its data reaches the
    disk). Both are ignored, and the committed head is the record before. A whole last record
    that is neither intact nor blank was written completely and changed since: damage, as is
    a damaged record before it. With damage the committed head is the last intact one of the
    two (None if neither), and every record stays in view so that ``verify`` reports each.
    """
    count = os.fstat(fd).st_size // HEAD_SIZE
    if count == 0:
        return None, 0, None
    last = os.pread(fd, HEAD_SIZE, (count - 1) * HEAD_SIZE)
    head = decode_head(last)
    if head is not None:
        return head, count * HEAD_SIZE, None
    torn = last == bytes(HEAD_SIZE)
    if count == 1:
        return (None, 0, None) if torn else (None, HEAD_SIZE, _damaged_heads([0]))
    previous = decode_head(os.pread(fd, HEAD_SIZE, (count - 2) * HEAD_SIZE))
    if previous is None:
        return (
            None,
            count * HEAD_SIZE,
            _damaged_heads([count - 2] if torn else [count - 2, count - 1]),
        )
    if torn:
        return previous, (count - 1) * HEAD_SIZE, None
    return previous, count * HEAD_SIZE, _damaged_heads([count - 1])


def _damaged_heads(numbers: list[int]) -> str:
    """The damage message naming head records ``numbers``."""
    if len(numbers) == 1:
        return f"{HEADS_FILE}: head record {numbers[0]} is damaged (whole, not torn by a crash)"
    listed = " and ".join(str(number) for number in numbers)
    return f"{HEADS_FILE}: head records {listed} are damaged"


def _size_from_file_lengths(fds: dict[str, int]) -> int:
    """Return the largest size the offsets and hashes files can hold (audit without a head)."""
    offsets_count = os.fstat(fds[OFFSETS_FILE]).st_size // OFFSET_SIZE
    hash_count = os.fstat(fds[HASHES_FILE]).st_size // HASH_SIZE
    sizes = range(offsets_count + 1)
    return bisect.bisect_right(sizes, hash_count, key=stored_hash_count) - 1


def _check_committed_files(fds: dict[str, int], size: int) -> tuple[int, list[Finding]]:
    """Check that the data files hold all ``size`` committed leaves: (entries end, damage)."""
    findings: list[Finding] = []
    last = size - 1
    offsets_length = os.fstat(fds[OFFSETS_FILE]).st_size
    hashes_length = os.fstat(fds[HASHES_FILE]).st_size
    entries_length = os.fstat(fds[ENTRIES_FILE]).st_size
    if hashes_length < stored_hash_count(size) * HASH_SIZE:
        findings.append((last, f"{HASHES_FILE}: shorter than the committed size {size} needs"))
    if offsets_length < size * OFFSET_SIZE:
        findings.append((last, f"{OFFSETS_FILE}: shorter than the committed size {size} needs"))
        return 0, findings
    first = max(size - 2, 0)
    tail = os.pread(fds[OFFSETS_FILE], (size - first) * OFFSET_SIZE, first * OFFSET_SIZE)
    ends = [int.from_bytes(tail[k : k + 8], "big") for k in range(0, len(tail), OFFSET_SIZE)]
    if ends != sorted(ends):
        findings.append((last, f"{OFFSETS_FILE}: the last two offsets decrease"))
    if ends[-1] > entries_length:
        findings.append((last, f"{OFFSETS_FILE}: points past the end of {ENTRIES_FILE}"))
    if findings:
        # Audit only (a normal open refuses): reads are bounded by what the file really holds,
        # and each leaf's own offsets decide whether it can be read.
        return entries_length, findings
    return ends[-1], findings


# --- verification helpers ------------------------------------------------------------------------

_Buffer = bytes | mmap.mmap


def _map(fd: int) -> _Buffer:
    """Map a whole file read-only (empty bytes for an empty file)."""
    length = os.fstat(fd).st_size
    if length == 0:
        return b""
    return mmap.mmap(fd, length, access=mmap.ACCESS_READ)


def _parse_heads(data: bytes, size: int) -> tuple[list[tuple[int, bytes]], list[Finding]]:
    """Decode every head record; report damaged ones, decreasing sizes and sizes beyond the log."""
    heads: list[tuple[int, bytes]] = []
    findings: list[Finding] = []
    previous = 0
    for number, start in enumerate(range(0, len(data) - HEAD_SIZE + 1, HEAD_SIZE)):
        head = decode_head(data[start : start + HEAD_SIZE])
        if head is None:
            findings.append((max(previous - 1, 0), f"{HEADS_FILE}: record {number} is damaged"))
            continue
        head_size, _ = head
        if head_size < previous or head_size > size:
            findings.append(
                (max(head_size - 1, 0), f"{HEADS_FILE}: record {number} has bad size {head_size}")
            )
            continue
        heads.append(head)
        previous = head_size
    return heads, findings


def _position(level: int, n: int) -> int:
    """``merkle.stored_hash_index`` without its argument checks, for the loops over the log.

    test_logstore checks that the two agree.
    """
    last_leaf = ((n + 1) << level) - 1
    return 2 * last_leaf - last_leaf.bit_count() + level


def _node(left: bytes, right: bytes) -> bytes:
    """``merkle.node_hash`` of two hashes read from the file (always 32 bytes) without checks."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _hash_at(hashes: _Buffer, position: int) -> bytes | None:
    """Return stored hash number ``position``, or None if the file ends before it."""
    start = position * HASH_SIZE
    if start + HASH_SIZE > len(hashes):
        return None
    return hashes[start : start + HASH_SIZE]


class _CompactRange:
    """The complete-subtree hashes of leaves [0, size), left to right (RFC 6962 compact range)."""

    def __init__(self) -> None:
        self.size = 0
        self._hashes: list[bytes] = []

    def append(self, value: bytes) -> None:
        """Add the next leaf hash, merging the equal-sized subtrees it completes."""
        self._hashes.append(value)
        self.size += 1
        completed = self.size
        while not completed & 1:
            right = self._hashes.pop()
            self._hashes.append(_node(self._hashes.pop(), right))
            completed >>= 1

    def root(self) -> bytes:
        """Return the RFC 6962 root of the leaves added so far."""
        if not self._hashes:
            return EMPTY_ROOT
        current = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            current = _node(left, current)
        return current


def _check_entry(
    index: int, start: int, offsets: _Buffer, entries: _Buffer
) -> tuple[int, bytes | None, str | None]:
    """Read leaf ``index`` whose frame starts at ``start``: (next start, leaf or None, problem)."""
    end = int.from_bytes(offsets[index * OFFSET_SIZE : (index + 1) * OFFSET_SIZE], "big")
    if not start <= end <= len(entries):
        return start, None, f"{OFFSETS_FILE}: leaf {index} ends at bad offset {end}"
    try:
        return end, unframe_leaf(entries[start:end]), None
    except FormatError as exc:
        return end, None, f"{ENTRIES_FILE}: leaf {index}: {exc}"


def _scan(
    size: int,
    offsets: _Buffer,
    entries: _Buffer,
    hashes: _Buffer,
    heads: list[tuple[int, bytes]],
) -> list[Finding]:
    """Check every leaf, stored hash and head of a log of ``size`` leaves; return the problems."""
    findings: list[Finding] = []
    tree = _CompactRange()
    roots_by_size: dict[int, list[bytes]] = {}
    for head_size, head_root in heads:
        roots_by_size.setdefault(head_size, []).append(head_root)
    bad_head_sizes = [0] * sum(root != EMPTY_ROOT for root in roots_by_size.pop(0, []))
    start, offsets_short, hashes_short = 0, False, False
    for index in range(size):
        computed: bytes | None = None
        if not offsets_short and (index + 1) * OFFSET_SIZE > len(offsets):
            offsets_short = True
            findings.append((index, f"{OFFSETS_FILE}: file ends before leaf {index}"))
        if not offsets_short:
            start, leaf, problem = _check_entry(index, start, offsets, entries)
            if problem is not None:
                findings.append((index, problem))
            if leaf is not None:
                computed = leaf_hash(leaf)
        stored = _hash_at(hashes, _position(0, index))
        if stored is None and not hashes_short:
            hashes_short = True
            findings.append((index, f"{HASHES_FILE}: file ends before leaf {index}'s hash"))
        if stored is not None and computed is not None and stored != computed:
            findings.append((index, f"{HASHES_FILE}: leaf {index}'s stored hash is wrong"))
        findings.extend(_check_parents(index, hashes))
        # Prefer the hash recomputed from the entry, so that a damaged stored hash cannot vouch
        # for itself; fall back to the stored one so that one unreadable entry does not make
        # every later head look rewritten.
        current = computed if computed is not None else stored
        if current is None or tree.size != index:
            continue  # neither is available: later heads cannot be recomputed
        tree.append(current)
        if tree.size in roots_by_size:
            root = tree.root()
            bad_head_sizes += [tree.size] * sum(r != root for r in roots_by_size[tree.size])
    if bad_head_sizes:
        # One report is enough to show history was rewritten; list the rest as a count.
        first = bad_head_sizes[0]
        message = f"the committed root at size {first} differs from the root of the entries"
        findings.append((max(first - 1, 0), f"{HEADS_FILE}: {message}"))
    if len(bad_head_sizes) > 1:
        message = f"{len(bad_head_sizes) - 1} more committed roots differ"
        findings.append((max(size - 1, 0), f"{HEADS_FILE}: {message}"))
    return findings


def _check_parents(index: int, hashes: _Buffer) -> list[Finding]:
    """Check each interior hash leaf ``index`` completed against its two stored children."""
    findings: list[Finding] = []
    level, n = 0, index
    while n & 1:
        left = _hash_at(hashes, _position(level, n - 1))
        right = _hash_at(hashes, _position(level, n))
        parent = _hash_at(hashes, _position(level + 1, n >> 1))
        if (
            left is not None
            and right is not None
            and parent is not None
            and parent != _node(left, right)
        ):
            message = f"stored hash (level {level + 1}, n {n >> 1}) is not the hash of its children"
            findings.append((index, f"{HASHES_FILE}: {message}"))
        level, n = level + 1, n >> 1
    return findings
