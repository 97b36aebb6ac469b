"""Blob ids and reading blobs: what verification needs of the object store, and no more.

A blob id is the lowercase hex SHA-256 of the blob's raw bytes, so ``sha256sum`` reproduces
every id (docs/ledger-format.md section 2). This module hashes files and streams and reads a
blob through ``BlobReader``, which checks the hash of everything it hands out. The store
itself, which writes blobs, is ``objects``: verifying never needs to import it.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import FormatError, IntegrityError, LedgerError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

BLOB_ID_PATTERN = re.compile(r"[0-9a-f]{64}")
CHUNK_SIZE = 1 << 20
READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_FIRST_READ = 64 << 10  # most blobs (manifests, envelopes) are smaller than this


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


def hash_file(path: Path | str) -> str:
    """Return the blob id of the file at ``path``: everything up to end of file, hashed.

    Streams (never holds a large file in memory) and reads a small file in one call.
    """
    digest = hashlib.sha256()
    fd = os.open(path, READ_FLAGS)
    try:
        for chunk in read_chunks(fd):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def hash_stream(stream: io.RawIOBase | io.BufferedIOBase) -> str:
    """Return the blob id of what ``stream`` holds from its position to its end (not closed).

    Reads into one reused buffer (no allocation per chunk, and an in-memory ``BytesIO`` is not
    copied whole). BlockingIOError from a non-blocking stream, which could end a hash early.
    """
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(CHUNK_SIZE))
    while True:
        count = stream.readinto(buffer)
        if count is None:
            raise BlockingIOError("blobs are never hashed from a non-blocking stream")
        if not count:
            return digest.hexdigest()
        digest.update(buffer[:count])


def read_chunks(fd: int) -> Iterator[bytes]:
    """Yield the bytes from ``fd``'s position to end of file: first one small-file-sized read,
    then CHUNK_SIZE reads (fewer system calls than buffered I/O, which fsck notices)."""
    size = _FIRST_READ
    while chunk := os.read(fd, size):
        yield chunk
        size = CHUNK_SIZE


class BlobReader(io.RawIOBase):
    """A streaming reader over one blob that hashes every byte it hands out, checked at EOF.

    Reaching end of file raises IntegrityError if the bytes handed out do not hash to the blob
    id, and so does every read after it: end of file is final, so bytes appended to the file
    later are never handed out. Whoever parses everything this reader hands out, to its end,
    has therefore parsed the blob itself, whatever the file's path names before or after. A
    caller that stops early has not had the blob verified (``verify`` reads the rest).
    """

    def __init__(self, blob_id: str, handle: io.RawIOBase | io.BufferedIOBase) -> None:
        """Read blob ``blob_id`` from ``handle``'s position on; ``close`` closes ``handle``.

        FormatError if ``blob_id`` is not 64 lowercase hex characters.
        """
        super().__init__()
        self.blob_id = validate_blob_id(blob_id)
        self._handle = handle
        self._digest = hashlib.sha256()
        self._at_end = False

    def readable(self) -> bool:
        """Return True: this is a reader."""
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer``; at EOF check the digest (IntegrityError on mismatch)."""
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        if not self._at_end:
            count = self._handle.readinto(view)
            if count is None:
                raise BlockingIOError("blobs are never read from a non-blocking file")
            if count:
                self._digest.update(view[:count])
                return count
            self._at_end = True
        self._check()
        return 0

    def hexdigest(self) -> str:
        """Return the SHA-256 (lowercase hex) of the bytes handed out so far."""
        return self._digest.hexdigest()

    def verify(self) -> None:
        """Read to end of file, hashing what is left; IntegrityError unless it is the blob."""
        while self.read(CHUNK_SIZE):
            pass

    def _check(self) -> None:
        """Raise IntegrityError unless the bytes handed out hash to the blob id."""
        actual = self._digest.hexdigest()
        if actual != self.blob_id:
            raise IntegrityError(f"blob {self.blob_id}: content hashes to {actual}")

    def close(self) -> None:
        """Close the underlying file."""
        self._handle.close()
        super().close()
