"""Write an import's quarantined blobs in a child process (docs/bundle-format.md section 5).

Creating thousands of files is kernel time spent holding no lock of ours, but a thread of the
importing process would wait for the interpreter lock after every system call while the main
thread verifies. So the importer starts this module as a child process::

    python -I -S path/to/quarantine_writer.py QUARANTINE_DIR
    python -I -m customer_model_factory.bundle.quarantine_writer QUARANTINE_DIR   (the same)

and writes frames to its standard input. Each frame is::

    offset  0   64 bytes   the blob id: ASCII lowercase hex SHA-256 of the data
    offset 64    8 bytes   n, the length of the data: unsigned big-endian, at most MAX_BLOB_BYTES
    offset 72    n bytes   the data

End of input right after a frame is the clean end. For every frame the child checks that the
data hashes to the id, then creates ``QUARANTINE_DIR/<id>`` (``O_CREAT | O_EXCL | O_NOFOLLOW``,
mode BLOB_MODE) and writes all of it; nothing is fsynced (the importer flushes the file system
once this process has exited). Any problem (an id that is not 64 lowercase hex digits, a length
above the bound, a truncated frame, data that does not hash to its id, a file that exists, an
I/O error) stops it with one line on stderr and exit status 1, never a traceback. Exit status 0
means every frame received was written.

This module imports only the standard library, so the importer can run this very file (the
one it imported itself, whatever is installed) with ``-S``: no site-packages and no ``.pth``
file in the child, which starts faster too.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

ID_BYTES = 64
LENGTH_BYTES = 8
HEADER_BYTES = ID_BYTES + LENGTH_BYTES
# Equal to the bundle format's per-blob bound (``format.Limits.max_blob_bytes`` by default)
# and to the object store's file mode (``ledger.objects.BLOB_MODE``); a test ties them. Not
# imported from there: run with ``-S`` this file can import the standard library only.
MAX_BLOB_BYTES = 1 << 30
BLOB_MODE = 0o444
CHUNK_BYTES = 1 << 20  # frames are handed to the pipe in chunks of about this size
MAX_MESSAGE_CHARS = 500  # the one stderr line stays far below a pipe's buffer

_HEX_DIGITS = b"0123456789abcdef"
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class FrameError(ValueError):
    """A frame is malformed: a bad id, a length above the bound, truncated, or data that does
    not hash to its id."""


def _check_id(raw: bytes) -> str:
    """Return ``raw`` as a str if it is exactly 64 lowercase hex digits, else FrameError."""
    if len(raw) != ID_BYTES or raw.translate(None, _HEX_DIGITS):
        raise FrameError(f"not a blob id (64 lowercase hex digits): {raw[:ID_BYTES]!r}")
    return raw.decode("ascii")


def _check_length(size: int) -> int:
    """Return ``size`` if 0 <= size <= MAX_BLOB_BYTES, else FrameError."""
    if not 0 <= size <= MAX_BLOB_BYTES:
        raise FrameError(f"a frame of {size} bytes: at most {MAX_BLOB_BYTES} are allowed")
    return size


def encode_header(blob_id: str, size: int) -> bytes:
    """Return the 72-byte header of a frame carrying ``size`` bytes named ``blob_id``.

    FrameError for an id that is not 64 lowercase hex digits or a size out of bounds. The data
    is not hashed here: the sender computed the id from it, and the receiver re-hashes.
    """
    raw = blob_id.encode("ascii", "replace")  # a non-ASCII character becomes "?": refused
    _check_id(raw)
    return raw + _check_length(size).to_bytes(LENGTH_BYTES, "big")


def decode_header(header: bytes) -> tuple[str, int]:
    """Return ``(blob id, data length)`` of a 72-byte header; FrameError if it is malformed."""
    if len(header) != HEADER_BYTES:
        raise FrameError(f"truncated frame header: {len(header)} of {HEADER_BYTES} bytes")
    blob_id = _check_id(header[:ID_BYTES])
    return blob_id, _check_length(int.from_bytes(header[ID_BYTES:], "big"))


def encode_frames(
    frames: Iterable[tuple[str, bytes]], chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """Yield the framed stream of ``(blob id, data)`` pairs in chunks of about ``chunk_bytes``.

    Small frames are joined (one pipe write per chunk, not two per blob); data larger than a
    chunk is yielded as is, after its header, never copied. Concatenated, the chunks are the
    frames in order; every chunk but a large blob's ends at a frame boundary.
    """
    pending: list[bytes] = []
    pending_bytes = 0
    for blob_id, data in frames:
        header = encode_header(blob_id, len(data))
        if len(data) >= chunk_bytes:
            yield b"".join([*pending, header])
            yield data
            pending, pending_bytes = [], 0
            continue
        pending += (header, data)
        pending_bytes += HEADER_BYTES + len(data)
        if pending_bytes >= chunk_bytes:
            yield b"".join(pending)
            pending, pending_bytes = [], 0
    if pending:
        yield b"".join(pending)


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Return the next ``size`` bytes of ``stream``, or fewer only where the input ends."""
    data = stream.read(size)
    if len(data) == size:
        return data
    parts = [data]
    missing = size - len(data)
    while missing and (more := stream.read(missing)):
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


def decode_frames(stream: BinaryIO) -> Iterator[tuple[str, bytes]]:
    """Yield the ``(blob id, data)`` frames of ``stream`` up to its clean end.

    FrameError for a malformed header, a truncated frame, or data whose SHA-256 is not its id,
    raised when that frame is reached (the frames before it have been yielded). Memory is
    bounded by one frame: MAX_BLOB_BYTES plus the header.
    """
    while header := _read_exactly(stream, HEADER_BYTES):
        blob_id, size = decode_header(header)
        data = _read_exactly(stream, size)
        if len(data) != size:
            raise FrameError(f"truncated frame {blob_id}: {len(data)} of {size} bytes")
        if hashlib.sha256(data).hexdigest() != blob_id:
            raise FrameError(f"the data of frame {blob_id} does not hash to its id")
        yield blob_id, data


def write_blob(directory_fd: int, blob_id: str, data: bytes) -> None:
    """Create ``<blob_id>`` in the directory open as ``directory_fd`` holding ``data``.

    FileExistsError if the name exists (``O_EXCL``; a symbolic link is never followed). Mode
    BLOB_MODE, plain ``os.write`` calls (a buffered file costs extra system calls per file), no
    fsync. ``blob_id`` must be 64 lowercase hex digits (FrameError): it is the whole name.
    """
    _check_id(blob_id.encode("ascii", "replace"))
    fd = os.open(blob_id, _CREATE_FLAGS, BLOB_MODE, dir_fd=directory_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def open_directory(path: str) -> int:
    """Return a descriptor of the directory ``path`` (OSError if it is not one)."""
    return os.open(path, _DIRECTORY_FLAGS)


def write_quarantine(directory: str, stream: BinaryIO) -> int:
    """Write every frame of ``stream`` into ``directory`` (``write_blob``); return how many.

    Stops at the first FrameError or OSError, leaving the files written before it.
    """
    directory_fd = open_directory(directory)
    written = 0
    try:
        for blob_id, data in decode_frames(stream):
            write_blob(directory_fd, blob_id, data)
            written += 1
    finally:
        os.close(directory_fd)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Run the child: write the frames on stdin into the directory named by the only
    argument; return 0 after a clean end of input, else print one line on stderr and return
    1."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 1:
        print("usage: quarantine_writer QUARANTINE_DIR  (frames on stdin)", file=sys.stderr)
        return 1
    try:
        with open(sys.stdin.fileno(), "rb", buffering=CHUNK_BYTES, closefd=False) as stream:
            write_quarantine(arguments[0], stream)
    except KeyboardInterrupt:
        print("quarantine writer: interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # the contract is one line and status 1, whatever went wrong
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:MAX_MESSAGE_CHARS]
        print(f"quarantine writer: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
