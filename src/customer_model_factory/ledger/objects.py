"""Content-addressed blob store: ``objects/ab/cdef...``, id = lowercase hex SHA-256 of the bytes.

Blobs are stored raw (no header, no compression) so ``sha256sum`` reproduces every id. A write
goes to a temp file created read-only (0444) in the destination fan-out directory, which is
written, fsynced and renamed into place; the directory is then fsynced. Every read re-hashes.
Git's loose-object discipline (docs/ledger-format.md section 2).

A batch writes and fsyncs its temp files on the I/O thread pool (``durable.submit``) while the
caller goes on: creating a file waits for the filesystem journal, and many waits in parallel
cost about as much as one. Nothing is renamed into place before ``commit``.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import io
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from .._frozen import frozen
from . import durable
from .blobs import (
    CHUNK_SIZE,
    READ_FLAGS,
    BlobReader,
    ObjectNotFoundError,
    blob_id_of,
    hash_file,
    read_chunks,
    validate_blob_id,
)
from .durable import fsync_paths, make_dirs, wait
from .errors import FormatError, IntegrityError

if TYPE_CHECKING:
    from concurrent.futures import Future  # imported lazily by durable: start-up of verify


_FANOUT_PATTERN = re.compile(r"[0-9a-f]{2}")
_REST_PATTERN = re.compile(r"[0-9a-f]{62}")
TEMP_PREFIX = ".tmp-"
BLOB_MODE = 0o444
# Bytes a batch may hand to the I/O threads before waiting for them: bounds the memory held by
# blobs whose caller has already let go of them.
MAX_IN_FLIGHT_BYTES = 64 << 20
_RENAMES_PER_JOB = 256
_BLOBS_PER_JOB = 16
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


@frozen
class _Pending:
    """A staged blob handed to an I/O job: the job (resolving to one temp path per blob it
    wrote, None for a blob it found stored already), the blob's place in it, the blob's final
    path, and its temp path when known before the job runs (``put_file``)."""

    write: Future[list[str | None]]
    position: int
    final: str
    temp: str | None = None

    def written_temp(self) -> str | None:
        """The temp file the finished job wrote for this blob (None: nothing to rename)."""
        return self.write.result()[self.position]


class ObjectBatch:
    """Many blob writes sharing one durability barrier (``commit``).

    Blobs go to the I/O thread pool, which checks that each is not stored yet, writes it to a
    new read-only temp file in its fan-out directory and fsyncs it, while the caller goes on.
    Nothing is visible under an id until ``commit`` has waited for every write, renamed each
    temp file into place and fsynced each touched directory once. ``abort`` removes the temp
    files. As a context manager it commits on success and aborts on an exception. A failed
    write is raised by ``commit``.

    ``put`` makes no system call: in the calling thread a ``stat`` would wait for the I/O
    threads (for the GIL, and for the directories they write). It hands a blob over at once
    while some I/O thread is free, so that a small batch's writes start early, and otherwise
    in jobs of up to 16 blobs, which keeps the handing over cheap.
    """

    def __init__(self, store: ObjectStore) -> None:
        """Start an empty batch for ``store`` (use ``ObjectStore.batch``)."""
        self.store = store
        self._pending: dict[str, _Pending] = {}
        self._queued: dict[str, tuple[str, str, bytes]] = {}  # id -> (directory, final, data)
        self._new_dir_parents: list[Path] = []
        self._known_dirs: set[str] = set()
        self._in_flight: collections.deque[tuple[Future[list[str | None]], int]] = (
            collections.deque()
        )
        self._in_flight_bytes = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __len__(self) -> int:
        """Number of blobs this batch writes (waits for the writes in flight to find out)."""
        self._hand_over(one_per_job=True)
        items = list(self._pending.values())
        wait({item.write for item in items})
        return sum(item.write.exception() is not None or item.written_temp() is not None
                   for item in items)  # fmt: skip

    def contains(self, blob_id: str) -> bool:
        """Return True if the blob is staged in this batch or already stored."""
        validate_blob_id(blob_id)
        return blob_id in self._pending or blob_id in self._queued or self.store.contains(blob_id)

    def put(self, data: bytes) -> str:
        """Stage ``data``; return its id. A blob already stored or staged is not written again."""
        data = bytes(data)  # the writer thread must see exactly the bytes that were hashed
        blob_id = blob_id_of(data)
        if blob_id in self._pending or blob_id in self._queued:
            return blob_id
        self._queued[blob_id] = (self._fanout_dir(blob_id), self.store._file(blob_id), data)
        threads_free = len(self._in_flight) < durable.IO_THREADS  # (done jobs leave lazily)
        if threads_free or len(self._queued) >= _BLOBS_PER_JOB:
            self._hand_over(one_per_job=False)
        return blob_id

    def put_file(self, path: Path) -> str:
        """Stage the file at ``path`` by streaming it (never held in memory); return its id.

        The file is hashed first (the id picks the fan-out directory), then copied while being
        hashed again; IntegrityError if it changed in between. Only the fsync is left to the
        I/O threads.
        """
        blob_id = hash_file(path)
        if self.contains(blob_id):
            return blob_id
        fd, temp = _create_temp(self._fanout_dir(blob_id))
        try:
            digest = hashlib.sha256()
            with open(path, "rb") as source:
                while chunk := source.read(CHUNK_SIZE):
                    digest.update(chunk)
                    _write_all(fd, chunk)
            if digest.hexdigest() != blob_id:
                raise IntegrityError(f"{path}: file changed while it was being stored")
        except BaseException:
            _unlink(temp)
            raise
        finally:
            os.close(fd)
        write = durable.submit(_sync_temp, temp)
        self._pending[blob_id] = _Pending(write, 0, self.store._file(blob_id), temp)
        return blob_id

    def commit(self) -> list[str]:
        """Make every staged blob durable under its id; return the ids newly stored.

        Order: wait until every temp file is written and fsynced, rename each into place (an
        id that appeared meanwhile is kept and the temp file dropped), then fsync every touched
        directory once.
        """
        self._hand_over(one_per_job=True)  # the last few in parallel: a lone record waits less
        pending, self._pending = self._pending, {}
        new_dir_parents, self._new_dir_parents = self._new_dir_parents, []
        self._forget_in_flight()
        try:
            durable.results(dict.fromkeys(item.write for item in pending.values()))
            moves = [
                (blob_id, temp, item.final)
                for blob_id, item in pending.items()
                if (temp := item.written_temp()) is not None
            ]
            chunks = [
                moves[at : at + _RENAMES_PER_JOB] for at in range(0, len(moves), _RENAMES_PER_JOB)
            ]
            stored = durable.run_concurrently(
                functools.partial(_move_into_place, chunk) for chunk in chunks
            )
            directories = {os.path.dirname(item.final) for item in pending.values()}
            fsync_paths([*new_dir_parents, *map(Path, sorted(directories))])
        except BaseException:
            _remove_temps(pending.values())
            raise
        return [blob_id for chunk in stored for blob_id in chunk]

    def temp_paths(self) -> set[Path]:
        """Return the temp files this batch has staged and not yet committed.

        Waits for the writes still in flight, so that every such file exists.
        """
        self._hand_over(one_per_job=True)
        items = list(self._pending.values())
        wait({item.write for item in items})
        temps = (item.written_temp() for item in items if item.write.exception() is None)
        return {Path(temp) for temp in temps if temp is not None}

    def abort(self) -> None:
        """Remove every staged temp file; nothing of this batch becomes visible."""
        pending, self._pending = self._pending, {}
        self._queued.clear()  # never handed over: nothing on disk
        self._new_dir_parents = []
        self._forget_in_flight()
        for item in pending.values():
            item.write.cancel()  # not started yet: never creates its files
        _remove_temps(pending.values())

    def _hand_over(self, *, one_per_job: bool) -> None:
        """Give the queued blobs to the I/O threads: in one job, or one job each."""
        queued, self._queued = list(self._queued.items()), {}
        groups = [[item] for item in queued] if one_per_job else [queued] if queued else []
        for group in groups:
            write = durable.submit(_write_temps, [blob for _, blob in group])
            for position, (blob_id, (_, final, _)) in enumerate(group):
                self._pending[blob_id] = _Pending(write, position, final)
            self._throttle(write, sum(len(data) for _, (_, _, data) in group))

    def _fanout_dir(self, blob_id: str) -> str:
        """Return ``blob_id``'s fan-out directory, created (durably at commit) if missing."""
        directory = os.path.dirname(self.store._file(blob_id))
        if directory not in self._known_dirs:
            self._new_dir_parents.extend(make_dirs(Path(directory)))
            self._known_dirs.add(directory)
        return directory

    def _throttle(self, write: Future[list[str | None]], size: int) -> None:
        """Track a write; wait for the oldest ones while too many bytes are in flight."""
        self._in_flight.append((write, size))
        self._in_flight_bytes += size
        while self._in_flight:
            oldest, oldest_size = self._in_flight[0]
            if not oldest.done():
                if self._in_flight_bytes <= MAX_IN_FLIGHT_BYTES:
                    return
                wait([oldest])  # its failure, if any, is raised by commit
            self._in_flight.popleft()
            self._in_flight_bytes -= oldest_size

    def _forget_in_flight(self) -> None:
        self._in_flight.clear()
        self._in_flight_bytes = 0


def _create_temp(directory: str) -> tuple[int, str]:
    """Create a new read-only (0444) temp file in ``directory``; return (write fd, path).

    One ``open`` creates it with mode 0444 (the creating descriptor may still write).
    """
    while True:
        temp = os.path.join(directory, f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        try:
            return os.open(temp, _CREATE_FLAGS, BLOB_MODE), temp
        except FileExistsError:  # a 64-bit random name collided: pick another
            continue


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` at the descriptor's position (os.write may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_temps(blobs: list[tuple[str, str, bytes]]) -> list[str | None]:
    """I/O-thread job: ``_write_temp_unless_stored`` for each (directory, final, data).

    On failure the temp files this job wrote are removed before the error propagates.
    """
    temps: list[str | None] = []
    try:
        for directory, final, data in blobs:
            temps.append(_write_temp_unless_stored(directory, final, data))
    except BaseException:
        for temp in temps:
            if temp is not None:
                _unlink(temp)
        raise
    return temps


def _write_temp_unless_stored(directory: str, final: str, data: bytes) -> str | None:
    """Unless ``final`` exists, write ``data`` to a new temp file in ``directory`` and fsync
    it; return its path (None: already stored, same bytes by content addressing). On failure
    the temp file is removed before the error propagates.
    """
    if os.path.exists(final):
        return None
    fd, temp = _create_temp(directory)
    try:
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        _unlink(temp)
        raise
    return _sync_and_close(fd, temp)


def _sync_and_close(fd: int, temp: str) -> str:
    """Fsync and close a written temp file; return its path (the file is removed on error)."""
    try:
        os.fsync(fd)
    except BaseException:
        _unlink(temp)
        raise
    finally:
        os.close(fd)
    return temp


def _sync_temp(temp: str) -> list[str | None]:
    """I/O-thread job: fsync a written, closed temp file; return [its path] (removed on error)."""
    try:
        durable.fsync_path(Path(temp))
    except BaseException:
        _unlink(temp)
        raise
    return [temp]


def _move_into_place(moves: list[tuple[str, str, str]]) -> list[str]:
    """Rename each durable (blob id, temp, final) into place; return the ids newly stored.

    A blob that already exists is not replaced (same bytes by construction): its temp is dropped.
    """
    stored: list[str] = []
    for blob_id, temp, final in moves:
        if os.path.exists(final):
            os.unlink(temp)
        else:
            os.rename(temp, final)
            stored.append(blob_id)
    return stored


def _remove_temps(pending: Iterable[_Pending]) -> None:
    """Wait for the writes of ``pending`` to finish or be cancelled; remove their temp files.

    A temp file already renamed into place is gone, which is fine. A failed write has removed
    its own file.
    """
    items = list(pending)
    # Not the cancelled ones: wait() counts a cancelled job as done only once a worker thread
    # has dequeued it, which can take as long as the jobs queued before it.
    wait({item.write for item in items if not item.write.cancelled()})
    for item in items:
        temp = item.temp
        if not item.write.cancelled() and item.write.exception() is None:
            temp = item.written_temp()
        if temp is not None:
            _unlink(temp)


def _unlink(path: str) -> None:
    """Remove ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class ObjectStore:
    """The blob directory of a ledger. ``root`` is the ``objects`` directory itself."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root_text = os.fspath(self.root)

    def path(self, blob_id: str) -> Path:
        """Return where blob ``blob_id`` lives: ``root/<first 2 hex>/<other 62 hex>``."""
        return Path(self._file(blob_id))

    def _file(self, blob_id: str) -> str:
        # Plain strings, not pathlib: fsck calls this a few times per log entry.
        validate_blob_id(blob_id)
        return os.path.join(self._root_text, blob_id[:2], blob_id[2:])

    def contains(self, blob_id: str) -> bool:
        """Return True if a file for ``blob_id`` exists (its content is not checked)."""
        return os.path.isfile(self._file(blob_id))

    def batch(self) -> ObjectBatch:
        """Return a new batch: many puts, one durability barrier at ``commit``."""
        return ObjectBatch(self)

    def put(self, data: bytes) -> str:
        """Store ``data`` durably; return its id (an existing blob is not rewritten)."""
        with self.batch() as batch:
            return batch.put(data)

    def put_file(self, path: Path) -> str:
        """Store the file at ``path`` durably by streaming it; return its id."""
        with self.batch() as batch:
            return batch.put_file(path)

    def get(self, blob_id: str) -> bytes:
        """Return the bytes of ``blob_id``, re-hashed (IntegrityError naming the id on mismatch)."""
        data = self.read_unverified(blob_id)
        actual = blob_id_of(data)
        if actual != blob_id:
            raise IntegrityError(f"blob {blob_id}: content hashes to {actual}")
        return data

    def read_unverified(self, blob_id: str, *, max_size: int | None = None) -> bytes:
        """Return the stored bytes of ``blob_id`` without re-hashing (for callers that hash).

        With ``max_size``, a blob larger than that raises FormatError without being read.
        """
        try:
            fd = os.open(self._file(blob_id), READ_FLAGS)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"blob {blob_id} is not in the object store") from None
        try:
            if max_size is not None and os.fstat(fd).st_size > max_size:
                raise FormatError(f"blob {blob_id} is larger than {max_size} bytes")
            chunks: list[bytes] = []
            for chunk in read_chunks(fd):
                chunks.append(chunk)
                if max_size is not None and sum(map(len, chunks)) > max_size:  # it grew
                    raise FormatError(f"blob {blob_id} is larger than {max_size} bytes")
        finally:
            os.close(fd)
        return b"".join(chunks)

    def hash_stored(self, blob_id: str) -> str:
        """Return the SHA-256 of the stored file of ``blob_id``, streaming it (for fsck)."""
        try:
            return hash_file(self._file(blob_id))
        except FileNotFoundError:
            raise ObjectNotFoundError(f"blob {blob_id} is not in the object store") from None

    def open(self, blob_id: str) -> BlobReader:
        """Return a streaming reader over ``blob_id`` that verifies the hash at EOF."""
        try:
            handle = io.FileIO(self._file(blob_id), "rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(f"blob {blob_id} is not in the object store") from None
        return BlobReader(blob_id, handle)

    def iter_ids(self) -> Iterator[str]:
        """Yield every stored blob id in sorted order (temp files and strays are skipped)."""
        for fanout in self.fanout_dirs():
            for name in sorted(os.listdir(self.root / fanout)):
                if _REST_PATTERN.fullmatch(name):
                    yield fanout + name

    def temp_files(self) -> Iterator[Path]:
        """Yield temp files left in fan-out directories (by an aborted or crashed writer)."""
        for fanout in self.fanout_dirs():
            for name in sorted(os.listdir(self.root / fanout)):
                if name.startswith(TEMP_PREFIX):
                    yield self.root / fanout / name

    def fanout_dirs(self) -> list[str]:
        """Return the names of the existing fan-out directories, sorted."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if _FANOUT_PATTERN.fullmatch(name))
