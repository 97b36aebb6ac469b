"""Reading trace datasets and workspaces from real files, streaming.

A trace file is either JSON Lines (one object per line, blank lines skipped) or one JSON array
of objects; the first non-whitespace byte decides (``[`` means array). Both are read
incrementally: the reader holds one line, or one chunk of an array, at a time, so what grows
with the file is only the validator's own per-row state (a label and a 32-byte fingerprint).

Input is parsed strictly: the text must be UTF-8, ``NaN``/``Infinity`` are refused (they are not
JSON), a key repeated inside one object is refused (JSON parsers disagree on which value wins),
and every defect becomes a ``TraceFileError`` that names the file and line, never a traceback.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from .dataset_contract import (
    CanonicalRows,
    CustomerDatasetValidationReport,
    CustomerWorkspace,
    validate_trace_rows,
)

__all__ = [
    "TraceFileError",
    "iter_trace_rows",
    "load_workspace",
    "trace_rows_hash",
    "validate_trace_file",
    "write_canonical_trace",
]

_CHUNK_SIZE = 1 << 20  # text read at a time from a JSON array file
_LINE_BUFFER = 1 << 20  # read-ahead buffer under JSON Lines iteration
_SIGNIFICANT_CHAR = re.compile(r"[^ \t\r\n]")
_JSON_WHITESPACE_BYTES = b" \t\r\n"
_UTF8_BOM = b"\xef\xbb\xbf"
# A parse error this close to the end of the buffered text may only mean "read more".
_TRUNCATION_MARGIN = 16
# The json module reports an unterminated string at its opening quote, however long it is.
_UNTERMINATED_STRING = "Unterminated string starting at"


class TraceFileError(ValueError):
    """A trace or workspace file is malformed; the message is ``<file name>:<line>: <what>``."""

    def __init__(self, path: Path, line: int, what: str) -> None:
        """Record where (``path``, 1-based ``line``) and what went wrong."""
        super().__init__(f"{path.name}:{line}: {what}")
        self.path = path
        self.line = line
        self.what = what


class _DuplicateKeyError(ValueError):
    """Raised by the object hook when one JSON object repeats a key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NonStandardConstantError(ValueError):
    """Raised when the parser meets ``NaN``, ``Infinity`` or ``-Infinity``."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a dict from ``pairs``; raise _DuplicateKeyError naming the first repeated key."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return obj


def _refuse_constant(token: str) -> NoReturn:
    """Refuse the non-standard tokens Python's json module would otherwise accept."""
    raise _NonStandardConstantError(token)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant
)


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
    if isinstance(exc, _DuplicateKeyError):
        return f"duplicate key {exc.key!r} in one object"
    if isinstance(exc, _NonStandardConstantError):
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
    with path.open("rb", buffering=_LINE_BUFFER) as handle:
        if _is_array_file(handle, path):
            yield from _iter_array_rows(handle, path)
        else:
            yield from _iter_jsonl_rows(handle, path)


def _is_array_file(handle: IO[bytes], path: Path) -> bool:
    """True for a JSON array file, False for JSON Lines; rewinds ``handle``.

    TraceFileError if the file starts with a UTF-8 byte order mark.
    """
    if handle.read(len(_UTF8_BOM)) == _UTF8_BOM:
        raise TraceFileError(path, 1, "a UTF-8 byte order mark is not allowed; remove it")
    handle.seek(0)
    first = _first_significant_byte(handle)
    handle.seek(0)
    return first == b"["


def _first_significant_byte(handle: IO[bytes]) -> bytes:
    """Return the first byte that is not JSON whitespace (``b""`` for a blank file)."""
    while chunk := handle.read(_CHUNK_SIZE):
        stripped = chunk.lstrip(_JSON_WHITESPACE_BYTES)
        if stripped:
            return stripped[:1]
    return b""


def _iter_jsonl_rows(
    handle: IO[bytes], path: Path, first_line: int = 1
) -> Iterator[dict[str, Any]]:
    """Yield one object per non-blank line; line numbers are physical file lines.

    ``first_line`` is the number of the handle's first line when it starts inside a file.
    """
    for line_number, raw in enumerate(handle, start=first_line):
        # A line is blank only if it is JSON whitespace; cheap first-byte test first.
        if raw[:1] in (b"\n", b"\r", b" ", b"\t") and not raw.strip(_JSON_WHITESPACE_BYTES):
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = f"column {exc.start + 1}"
            raise TraceFileError(path, line_number, _utf8_failure(exc, where)) from None
        try:
            value = _DECODER.decode(text)
        except json.JSONDecodeError as exc:
            raise TraceFileError(
                path, line_number, f"invalid JSON: {exc.msg} (column {exc.colno})"
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

    def __init__(self, handle: IO[bytes], path: Path) -> None:
        """Start at the beginning of ``handle``."""
        self._handle = handle
        self._path = path
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self.text = ""
        self.pos = 0
        self.eof = False
        self._line = 1  # line of text[0]
        self._column = 0  # 0-based character column of text[0]
        self._bytes_read = 0

    def read_more(self, at_least: int = _CHUNK_SIZE) -> bool:
        """Append at least one more chunk of text; return False at end of file."""
        if self.eof:
            return False
        pending = len(self._utf8.getstate()[0])  # bytes of a split character held back
        raw = self._handle.read(max(at_least, _CHUNK_SIZE))
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


def _iter_array_rows(handle: IO[bytes], path: Path) -> Iterator[dict[str, Any]]:
    """Yield the objects of a top-level JSON array, decoding one element at a time."""
    window = _ArrayText(handle, path)
    # The caller saw "[" first; if the file changed since, say so rather than misparse.
    if window.skip_whitespace() != "[":
        window.fail(window.pos, "expected '[' at the start of a JSON array file")
    window.pos += 1
    if window.skip_whitespace() == "]":
        window.pos += 1
    else:
        while True:
            start = window.pos
            value = _decode_element(window)
            if not isinstance(value, dict):
                window.fail(start, f"expected a JSON object, got {_json_type_name(value)}")
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
            value, end = _DECODER.raw_decode(text, start)
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
) -> CustomerDatasetValidationReport:
    """Validate a JSONL or JSON-array trace file, streaming; same report as the list API.

    ``jobs`` is the number of worker processes for a JSON Lines file: 1 validates in this
    process, 2 or more in that many workers (``trace_parallel``), 0 chooses: every available
    core for a file of at least ``trace_parallel.PARALLEL_MIN_BYTES``, else 1. The report, and
    the TraceFileError for a bad file, are the same whatever ``jobs`` is. JSON array files are
    always validated in this process.
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
    return validate_trace_rows(iter_trace_rows(path), workspace, vertical_profile=vertical_profile)


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
    canonical = CanonicalRows()
    for row in iter_trace_rows(path):
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
        payload = _DECODER.decode(text)
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
