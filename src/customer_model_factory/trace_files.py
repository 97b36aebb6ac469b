"""Reading trace datasets and workspaces from real files, streaming.

A trace file is either JSON Lines (one object per line, blank lines skipped) or one JSON array
of objects; the first non-whitespace byte decides (``[`` means array). Both are read
incrementally: the reader holds one line, or one chunk of an array, at a time, so what grows
with the file is only the validator's own per-row state (a label and a 32-byte fingerprint).

Input is parsed strictly: the text must be UTF-8, ``NaN``/``Infinity`` are refused (they are not
JSON), a key repeated inside one object is refused (JSON parsers disagree on which value wins),
and every defect becomes a ``TraceFileError`` that names the file and line, never a traceback.

``iter_trace_rows_from`` reads an open stream in one forward pass, never seeking, to its end:
the rows come from exactly the bytes the stream hands out, once each, in order. Wrapped around a
reader that hashes what it hands out (``ledger.blobs.BlobReader``), the rows parsed are the
bytes hashed, which is what lets a caller bind rows to a content-addressed blob (docs/chain.md
section 5.1). The path-based functions are built on it.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from ._frozen import frozen
from ._strictjson import DECODER, ConstantError, DuplicateKeyError
from .dataset_contract import (
    CanonicalRows,
    CustomerDatasetValidationReport,
    CustomerWorkspace,
    validate_trace_rows,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "ByteStream",
    "TraceFileError",
    "hash_trace_rows",
    "iter_trace_rows",
    "iter_trace_rows_from",
    "load_workspace",
    "trace_rows_hash",
    "validate_trace_file",
    "write_canonical_trace",
]

_CHUNK_SIZE = 1 << 20  # text read at a time from a JSON array file
_LINE_BUFFER = 1 << 20  # read-ahead buffer under JSON Lines iteration
_SIGNIFICANT_CHAR = re.compile(r"[^ \t\r\n]")
_SIGNIFICANT_BYTE = re.compile(rb"[^ \t\r\n]")
_JSON_WHITESPACE_BYTES = b" \t\r\n"
_UTF8_BOM = b"\xef\xbb\xbf"
# A parse error this close to the end of the buffered text may only mean "read more".
_TRUNCATION_MARGIN = 16
# The json module reports an unterminated string at its opening quote, however long it is.
_UNTERMINATED_STRING = "Unterminated string starting at"

# A binary stream rows can be read from: a raw file (``FileIO``, ``ledger.blobs.BlobReader``)
# or a buffered one (``open(path, "rb")``, ``BytesIO``).
ByteStream = io.RawIOBase | io.BufferedIOBase


class TraceFileError(ValueError):
    """A trace or workspace file is malformed; the message is ``<file name>:<line>: <what>``."""

    def __init__(self, path: Path, line: int, what: str) -> None:
        """Record where (``path``, 1-based ``line``) and what went wrong."""
        super().__init__(f"{path.name}:{line}: {what}")
        self.path = path
        self.line = line
        self.what = what


def _json_type_name(value: Any) -> str:
    """Name ``value``'s type in JSON's vocabulary (array, string, number, ...)."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return "object"


def _parse_failure(exc: Exception) -> str:
    """Describe a non-syntax parse failure raised from inside the decoder."""
    if isinstance(exc, DuplicateKeyError):
        return f"duplicate key {exc.key!r} in one object"
    if isinstance(exc, ConstantError):
        return f"{exc.token} is not valid JSON"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    # e.g. an integer longer than Python's int-from-string digit limit.
    return f"invalid JSON: {exc}"


def _require_object(value: Any, path: Path, line: int) -> dict[str, Any]:
    """Return ``value`` if it is a JSON object, else raise TraceFileError."""
    if not isinstance(value, dict):
        raise TraceFileError(path, line, f"expected a JSON object, got {_json_type_name(value)}")
    return value


def iter_trace_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the rows of a JSONL file or of a JSON array file, streaming, in file order.

    Raises TraceFileError (file name and line) on any malformed input; an OSError from
    opening or reading the file propagates unchanged.
    """
    path = Path(path)
    with path.open("rb", buffering=0) as raw:
        yield from iter_trace_rows_from(raw, path)


def iter_trace_rows_from(stream: ByteStream, path: Path | str) -> Iterator[dict[str, Any]]:
    """Yield the rows of JSONL or JSON-array data read from ``stream``, streaming, in order.

    One forward pass: ``stream`` is never seeked, each byte is read from it once, and it is
    read to its end before the iterator finishes (a malformed input stops it earlier with
    TraceFileError). ``path`` names the data in errors. ``stream`` is not closed here.
    """
    path = Path(path)
    start = _sniff(stream, path)
    replay = _Replay(start.head, stream)
    if start.is_array:
        yield from _iter_array_rows(replay, path, start)
    else:
        lines = io.BufferedReader(replay, buffer_size=_LINE_BUFFER)
        yield from _iter_jsonl_rows(lines, path, start.line, start.column)


@frozen
class _Start:
    """What sniffing the layout read: ``head``, the bytes still to parse, and where ``head[0]``
    sits in the data (1-based ``line``, 0-based ``column``, byte ``offset``; only ASCII
    whitespace is ever dropped before it, so bytes and characters agree)."""

    head: bytes
    is_array: bool
    line: int
    column: int
    offset: int


def _read(stream: ByteStream, size: int) -> bytes:
    """One ``read(size)`` of ``stream``: up to ``size`` bytes, ``b""`` at its end."""
    data = stream.read(size)
    if data is None:
        raise BlockingIOError("trace data cannot be read from a non-blocking stream")
    return data


def _sniff(stream: ByteStream, path: Path) -> _Start:
    """Read ``stream`` up to its first byte that is not JSON whitespace: ``[`` is an array.

    Never seeks. Chunks of nothing but whitespace before that byte are dropped (only their
    position is kept), so memory stays one chunk however blank the start. TraceFileError if
    the data starts with a UTF-8 byte order mark.
    """
    head = _read(stream, _CHUNK_SIZE)
    while 0 < len(head) < len(_UTF8_BOM) and (more := _read(stream, _CHUNK_SIZE)):
        head += more  # a short read must not hide a byte order mark
    if head.startswith(_UTF8_BOM):
        raise TraceFileError(path, 1, "a UTF-8 byte order mark is not allowed; remove it")
    line, column, offset = 1, 0, 0
    while (found := _SIGNIFICANT_BYTE.search(head)) is None:
        more = _read(stream, _CHUNK_SIZE)
        if not more:
            return _Start(head, False, line, column, offset)  # blank: JSON Lines, no rows
        newlines = head.count(b"\n")
        line += newlines
        column = len(head) - head.rfind(b"\n") - 1 if newlines else column + len(head)
        offset += len(head)
        head = more
    return _Start(head, head[found.start()] == ord("["), line, column, offset)


def _is_array_file(handle: ByteStream, path: Path) -> bool:
    """True for a JSON array file, False for JSON Lines; rewinds ``handle`` (a seekable file).

    TraceFileError if the file starts with a UTF-8 byte order mark.
    """
    is_array = _sniff(handle, path).is_array
    handle.seek(0)
    return is_array


class _Replay(io.RawIOBase):
    """A raw reader handing out ``head`` and then the rest of ``stream`` (which it never closes).

    The layout is sniffed from the first bytes without seeking; the parser then reads those
    bytes again from memory and everything after them from ``stream``, once.
    """

    def __init__(self, head: bytes, stream: ByteStream) -> None:
        """Replay ``head``, then continue with ``stream``."""
        super().__init__()
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        """Return True: this is a reader."""
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer`` from what is left of ``head``, else from ``stream``; 0 at the end."""
        view = memoryview(buffer).cast("B")
        if self._head:
            count = min(len(view), len(self._head))
            view[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        count = self._stream.readinto(view)
        if count is None:
            raise BlockingIOError("trace data cannot be read from a non-blocking stream")
        return count

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes (everything left for a negative ``size``); b"" at the end."""
        if size < 0:
            return self.readall()
        if self._head:
            piece = bytes(self._head[:size])
            self._head = self._head[size:]
            return piece
        return _read(self._stream, size)


def _iter_jsonl_rows(
    handle: ByteStream, path: Path, first_line: int = 1, first_column: int = 0
) -> Iterator[dict[str, Any]]:
    """Yield one object per non-blank line; line numbers are physical file lines.

    ``first_line`` is the number of the handle's first line when it starts inside a file, and
    ``first_column`` the number of characters before the handle's first byte on that line.
    """
    for line_number, raw in enumerate(handle, start=first_line):
        # A line is blank only if it is JSON whitespace; cheap first-byte test first.
        if raw[:1] in (b"\n", b"\r", b" ", b"\t") and not raw.strip(_JSON_WHITESPACE_BYTES):
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shift = first_column if line_number == first_line else 0
            where = f"column {exc.start + 1 + shift}"
            raise TraceFileError(path, line_number, _utf8_failure(exc, where)) from None
        try:
            value = DECODER.decode(text)
        except json.JSONDecodeError as exc:
            shift = first_column if line_number == first_line else 0
            raise TraceFileError(
                path, line_number, f"invalid JSON: {exc.msg} (column {exc.colno + shift})"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise TraceFileError(path, line_number, _parse_failure(exc)) from None
        yield _require_object(value, path, line_number)


def _utf8_failure(exc: UnicodeDecodeError, where: str) -> str:
    """Describe a UTF-8 decoding failure; ``where`` locates the offending byte."""
    bad = exc.object[exc.start : exc.start + 1].hex()
    return f"invalid UTF-8: {exc.reason} (byte 0x{bad} at {where})"


class _ArrayText:
    """A sliding window of decoded text over a binary file, with line/column bookkeeping.

    ``text[pos:]`` is the unconsumed input. Consumed text is dropped only when more is read,
    and ``line``/``column`` then remember where ``text[0]`` sits in the file.
    """

    def __init__(self, handle: ByteStream, path: Path, start: _Start) -> None:
        """Start at the beginning of ``handle``, which sits where ``start`` says in the data."""
        self._handle = handle
        self._path = path
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self.text = ""
        self.pos = 0
        self.eof = False
        self._line = start.line  # line of text[0]
        self._column = start.column  # 0-based character column of text[0]
        self._bytes_read = start.offset

    def read_more(self, at_least: int = _CHUNK_SIZE) -> bool:
        """Append at least one more chunk of text; return False at end of file."""
        if self.eof:
            return False
        pending = len(self._utf8.getstate()[0])  # bytes of a split character held back
        raw = _read(self._handle, max(at_least, _CHUNK_SIZE))
        try:
            decoded = self._utf8.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            # exc.object is the held-back bytes followed by this read.
            line = self._line + self.text.count("\n") + exc.object.count(b"\n", 0, exc.start)
            offset = self._bytes_read - pending + exc.start
            raise TraceFileError(
                self._path, line, _utf8_failure(exc, f"file offset {offset}")
            ) from None
        if not raw:
            # Keep the text as it is: callers still hold positions into it.
            self.eof = True
            return False
        self._drop_consumed()
        self._bytes_read += len(raw)
        self.text += decoded
        return True

    def _drop_consumed(self) -> None:
        """Forget ``text[:pos]``, advancing the line/column of ``text[0]``."""
        if self.pos == 0:
            return
        newlines = self.text.count("\n", 0, self.pos)
        if newlines:
            self._line += newlines
            self._column = self.pos - self.text.rfind("\n", 0, self.pos) - 1
        else:
            self._column += self.pos
        self.text = self.text[self.pos :]
        self.pos = 0

    def line_and_column(self, index: int) -> tuple[int, int]:
        """Return the 1-based file line and column of ``text[index]``."""
        newlines = self.text.count("\n", 0, index)
        if newlines:
            return self._line + newlines, index - self.text.rfind("\n", 0, index)
        return self._line, self._column + index + 1

    def skip_whitespace(self) -> str:
        """Advance past JSON whitespace, reading as needed; return the next char or ``""``."""
        while True:
            found = _SIGNIFICANT_CHAR.search(self.text, self.pos)
            self.pos = found.start() if found else len(self.text)
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.read_more():
                return ""

    def fail(self, index: int, what: str) -> NoReturn:
        """Raise TraceFileError for the text at ``index``."""
        line, _column = self.line_and_column(index)
        raise TraceFileError(self._path, line, what)


def _iter_array_rows(handle: ByteStream, path: Path, start: _Start) -> Iterator[dict[str, Any]]:
    """Yield the objects of a top-level JSON array, decoding one element at a time.

    ``handle`` starts where ``start`` says; it is read to its end unless the data is malformed.
    """
    window = _ArrayText(handle, path, start)
    # The caller saw "[" first; if the file changed since, say so rather than misparse.
    if window.skip_whitespace() != "[":
        window.fail(window.pos, "expected '[' at the start of a JSON array file")
    window.pos += 1
    if window.skip_whitespace() == "]":
        window.pos += 1
    else:
        while True:
            element_at = window.pos
            value = _decode_element(window)
            if not isinstance(value, dict):
                window.fail(element_at, f"expected a JSON object, got {_json_type_name(value)}")
            yield value
            separator = window.skip_whitespace()
            if separator == ",":
                window.pos += 1
                window.skip_whitespace()
            elif separator == "]":
                window.pos += 1
                break
            elif separator == "":
                window.fail(window.pos, "truncated JSON array: the file ends before ']'")
            else:
                _line, column = window.line_and_column(window.pos)
                window.fail(
                    window.pos, f"invalid JSON: Expecting ',' delimiter or ']' (column {column})"
                )
    if window.skip_whitespace():
        window.fail(window.pos, "unexpected data after the JSON array")


def _decode_element(window: _ArrayText) -> Any:
    """Decode the JSON value at ``window.pos``, reading more text while it may be truncated."""
    while True:
        text, start = window.text, window.pos
        try:
            value, end = DECODER.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            if _maybe_truncated(exc, len(text)) and window.read_more(len(text)):
                continue
            if exc.pos >= len(text) or exc.msg == _UNTERMINATED_STRING:
                window.fail(exc.pos, "truncated JSON array: the file ends inside an element")
            _line, column = window.line_and_column(exc.pos)
            window.fail(exc.pos, f"invalid JSON: {exc.msg} (column {column})")
        except (ValueError, RecursionError) as exc:
            window.fail(start, _parse_failure(exc))
        # A number ending exactly at the window's end might continue in the next chunk.
        if end == len(text) and window.read_more(len(text)):
            continue
        window.pos = end
        return value


def _maybe_truncated(exc: json.JSONDecodeError, text_length: int) -> bool:
    """True if the parse error could be caused by the text ending early, not by bad syntax."""
    return exc.pos >= text_length - _TRUNCATION_MARGIN or exc.msg == _UNTERMINATED_STRING


def validate_trace_file(
    path: Path,
    workspace: CustomerWorkspace,
    *,
    vertical_profile: str | None = None,
    jobs: int = 0,
    rows: Callable[[Iterator[dict[str, Any]]], Iterable[dict[str, Any]]] | None = None,
) -> CustomerDatasetValidationReport:
    """Validate a JSONL or JSON-array trace file, streaming; same report as the list API.

    ``jobs`` is the number of worker processes for a JSON Lines file: 1 validates in this
    process, 2 or more in that many workers (``trace_parallel``), 0 chooses: every available
    core for a file of at least ``trace_parallel.PARALLEL_MIN_BYTES``, else 1. The report, and
    the TraceFileError for a bad file, are the same whatever ``jobs`` is. JSON array files are
    always validated in this process. ``rows`` may wrap the row iterator when they are
    validated in this process (a progress bar); workers' rows do not pass through it.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ValueError(f"jobs must be a non-negative integer, got {jobs!r}")
    if jobs != 1:
        from . import trace_parallel  # loaded only when it may be used

        jobs = jobs or trace_parallel.automatic_jobs(Path(path))
        if jobs > 1:
            return trace_parallel.validate_jsonl_parallel(
                Path(path), workspace, vertical_profile=vertical_profile, jobs=jobs
            )
    parsed = iter_trace_rows(path)
    return validate_trace_rows(
        parsed if rows is None else rows(parsed), workspace, vertical_profile=vertical_profile
    )


def write_canonical_trace(path: Path, target: IO[bytes]) -> str:
    """Stream the rows of trace file ``path`` into ``target`` as the canonical trace blob.

    The blob is ``json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str)``
    (``dataset_contract.CanonicalRows``), so the returned SHA-256 hex is both its blob id and
    the ``dataset_hash`` of a report on the same rows. One row is held at a time.
    TraceFileError on malformed input, after which ``target`` holds a partial array.
    """
    canonical = CanonicalRows(target.write)
    for row in iter_trace_rows(path):
        canonical.add(row)
    return canonical.close()


def trace_rows_hash(path: Path) -> str:
    """Return the ``dataset_hash`` of the rows of trace file ``path`` (any layout), streaming.

    TraceFileError on malformed input.
    """
    return hash_trace_rows(iter_trace_rows(path))


def hash_trace_rows(rows: Iterable[dict[str, Any]]) -> str:
    """Return the ``dataset_hash`` of ``rows``: SHA-256 of their canonical JSON array.

    Consumes ``rows`` to the end, holding one row at a time (``dataset_contract.CanonicalRows``);
    whatever iterating them raises propagates, and then no hash is returned.
    """
    canonical = CanonicalRows()
    for row in rows:
        canonical.add(row)
    return canonical.hexdigest()


def load_workspace(path: Path) -> CustomerWorkspace:
    """Read a workspace JSON file strictly; errors name the file and the line or field."""
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(_UTF8_BOM):
        raise TraceFileError(path, 1, "a UTF-8 byte order mark is not allowed; remove it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise TraceFileError(path, line, _utf8_failure(exc, f"column {column}")) from None
    try:
        payload = DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise TraceFileError(
            path, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path.name}: {_parse_failure(exc)}") from None
    _require_object(payload, path, 1)
    try:
        return CustomerWorkspace.from_dict(payload)
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
