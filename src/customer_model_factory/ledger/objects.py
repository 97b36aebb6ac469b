"""Content-addressed blob store: ``objects/ab/cdef...``, id = lowercase hex SHA-256 of the bytes.

Blobs are stored raw (no header, no compression) so ``sha256sum`` reproduces every id. A write
goes to a temp file created read-only (0444) in the destination fan-out directory, which is
written, fsynced and renamed into place; the directory is then fsynced. Every read re-hashes.
Git's loose-object discipline (docs/ledger-format.md section 2).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Self

from .durable import fsync_paths, make_dirs
from .errors import FormatError, IntegrityError, LedgerError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

BLOB_ID_PATTERN = re.compile(r"[0-9a-f]{64}")
_FANOUT_PATTERN = re.compile(r"[0-9a-f]{2}")
_REST_PATTERN = re.compile(r"[0-9a-f]{62}")
TEMP_PREFIX = ".tmp-"
CHUNK_SIZE = 1 << 20
BLOB_MODE = 0o444


class NotFoundError(LedgerError, LookupError):
    """A looked-up ledger item (blob, checkpoint, ref) does not exist."""


class ObjectNotFoundError(NotFoundError):
    """No blob with this id is stored."""


def validate_blob_id(blob_id: str) -> str:
    """Return ``blob_id`` if it is 64 lowercase hex characters, else raise FormatError."""
    if not isinstance(blob_id, str) or BLOB_ID_PATTERN.fullmatch(blob_id) is None:
        raise FormatError(f"not a blob id (64 lowercase hex characters): {blob_id!r}")
    return blob_id


def blob_id_of(data: bytes) -> str:
    """Return the blob id of ``data``: lowercase hex SHA-256 of the raw bytes."""
    return hashlib.sha256(data).hexdigest()


def hash_file(path: Path) -> str:
    """Return the blob id of the file at ``path``, reading it in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


class BlobReader(io.RawIOBase):
    """A streaming reader over one blob that re-hashes as it goes and verifies at EOF.

    Reaching end of file raises IntegrityError if the bytes read do not hash to the blob id; a
    caller that stops early has not had the blob verified.
    """

    def __init__(self, blob_id: str, handle: io.FileIO) -> None:
        super().__init__()
        self.blob_id = blob_id
        self._handle = handle
        self._digest = hashlib.sha256()
        self._verified = False

    def readable(self) -> bool:
        """Return True: this is a reader."""
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer``; at EOF check the digest (IntegrityError on mismatch)."""
        view = memoryview(buffer).cast("B")
        count = self._handle.readinto(view)
        if count is None:
            raise BlockingIOError("blob files are never opened non-blocking")
        if count:
            self._digest.update(view[:count])
            return count
        if len(view) and not self._verified:
            self._check()
        return 0

    def _check(self) -> None:
        actual = self._digest.hexdigest()
        if actual != self.blob_id:
            raise IntegrityError(f"blob {self.blob_id}: content hashes to {actual}")
        self._verified = True

    def close(self) -> None:
        """Close the underlying file."""
        self._handle.close()
        super().close()


@dataclass
class _Pending:
    """A blob written to a temp file in its fan-out directory, not yet fsynced or renamed."""

    temp: Path
    final: Path


@dataclass
class ObjectBatch:
    """Many blob writes sharing one durability barrier (``commit``).

    Each put writes a read-only temp file in the destination fan-out directory; nothing is
    visible under its id until ``commit`` has fsynced every temp file, renamed them into place
    and fsynced each touched directory once. ``abort`` removes the temp files. As a context
    manager it commits on success and aborts on an exception.
    """

    store: ObjectStore
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _new_dir_parents: list[Path] = field(default_factory=list)

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
        return len(self._pending)

    def contains(self, blob_id: str) -> bool:
        """Return True if the blob is pending in this batch or already stored."""
        return validate_blob_id(blob_id) in self._pending or self.store.contains(blob_id)

    def put(self, data: bytes) -> str:
        """Stage ``data``; return its id. A blob already stored or staged is not written again."""
        blob_id = blob_id_of(data)
        if self.contains(blob_id):
            return blob_id
        with self._new_temp(blob_id) as (target, temp):
            target.write(data)
        self._pending[blob_id] = _Pending(temp=temp, final=self.store.path(blob_id))
        return blob_id

    def put_file(self, path: Path) -> str:
        """Stage the file at ``path`` by streaming it (never held in memory); return its id.

        The file is hashed first (the id picks the fan-out directory), then copied while being
        hashed again; IntegrityError if it changed in between.
        """
        blob_id = hash_file(path)
        if self.contains(blob_id):
            return blob_id
        digest = hashlib.sha256()
        with self._new_temp(blob_id) as (target, temp), open(path, "rb") as source:
            while chunk := source.read(CHUNK_SIZE):
                digest.update(chunk)
                target.write(chunk)
            if digest.hexdigest() != blob_id:
                raise IntegrityError(f"{path}: file changed while it was being stored")
        self._pending[blob_id] = _Pending(temp=temp, final=self.store.path(blob_id))
        return blob_id

    def commit(self) -> list[str]:
        """Make every staged blob durable under its id; return the ids newly stored.

        Order: fsync each temp file, rename into place (an id that appeared meanwhile is kept
        and the temp file dropped), then fsync every touched directory once.
        """
        pending, self._pending = self._pending, {}
        new_dir_parents, self._new_dir_parents = self._new_dir_parents, []
        try:
            fsync_paths(item.temp for item in pending.values())
            stored: list[str] = []
            for blob_id, item in pending.items():
                if item.final.exists():
                    item.temp.unlink()
                else:
                    os.rename(item.temp, item.final)
                    stored.append(blob_id)
            fsync_paths([*new_dir_parents, *(item.final.parent for item in pending.values())])
        except BaseException:
            for item in pending.values():
                item.temp.unlink(missing_ok=True)
            raise
        return stored

    def temp_paths(self) -> set[Path]:
        """Return the temp files this batch has staged and not yet committed."""
        return {item.temp for item in self._pending.values()}

    def abort(self) -> None:
        """Remove every staged temp file; nothing of this batch becomes visible."""
        pending, self._pending = self._pending, {}
        self._new_dir_parents = []
        for item in pending.values():
            item.temp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _new_temp(self, blob_id: str) -> Iterator[tuple[BinaryIO, Path]]:
        """Create a read-only temp file in ``blob_id``'s fan-out directory, open for writing.

        One ``open`` creates it with mode 0444 (the creating descriptor may still write); on
        an exception inside the block the file is removed.
        """
        directory = self.store.path(blob_id).parent
        self._new_dir_parents.extend(make_dirs(directory))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        while True:
            temp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            try:
                fd = os.open(temp, flags, BLOB_MODE)
                break
            except FileExistsError:  # a 64-bit random name collided: pick another
                continue
        try:
            with open(fd, "wb") as handle:
                yield handle, temp
        except BaseException:
            temp.unlink(missing_ok=True)
            raise


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
            with open(self._file(blob_id), "rb") as handle:
                if max_size is None:
                    return handle.read()
                data = handle.read(max_size + 1)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"blob {blob_id} is not in the object store") from None
        if len(data) > max_size:
            raise FormatError(f"blob {blob_id} is larger than {max_size} bytes")
        return data

    def hash_stored(self, blob_id: str) -> str:
        """Return the SHA-256 of the stored file of ``blob_id``, streaming it (for fsck)."""
        try:
            return hash_file(Path(self._file(blob_id)))
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
