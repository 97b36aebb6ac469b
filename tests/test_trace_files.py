"""Tests for trace_files: streaming JSONL / JSON-array reading, strict parsing, load_workspace."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory import trace_files
from customer_model_factory.dataset_contract import (
    CustomerWorkspace,
    validate_customer_trace_dataset,
)
from customer_model_factory.trace_files import (
    TraceFileError,
    hash_trace_rows,
    iter_trace_rows,
    iter_trace_rows_from,
    load_workspace,
    trace_rows_hash,
    validate_trace_file,
)
from factory_fixtures import SECTOR_PROFILE, trace_row, trace_rows, workspace, write_jsonl

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _error(path: Path) -> TraceFileError:
    with pytest.raises(TraceFileError) as caught:
        list(iter_trace_rows(path))
    return caught.value


# --- happy paths ------------------------------------------------------------------------------


def test_jsonl_rows_in_order_with_blank_and_crlf_lines_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.jsonl", b'{"a":1}\r\n\n   \n{"b":[2]}\n\t\r\n{"c":"\\u00e9"}')
    assert list(iter_trace_rows(path)) == [{"a": 1}, {"b": [2]}, {"c": "é"}]


def test_json_array_file_pretty_printed(tmp_path: Path) -> None:
    rows = trace_rows()
    path = tmp_path / "t.json"
    path.write_text("\n  " + json.dumps(rows, indent=4, ensure_ascii=False) + "\n", "utf-8")
    assert list(iter_trace_rows(path)) == rows


@pytest.mark.parametrize("data", [b"", b"  \n\n", b"[]", b" [ \n ] \n"])
def test_files_without_rows(tmp_path: Path, data: bytes) -> None:
    assert list(iter_trace_rows(_write(tmp_path, "empty.json", data))) == []


def test_accepts_a_str_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.jsonl", b'{"a":1}\n')
    assert list(iter_trace_rows(str(path))) == [{"a": 1}]  # type: ignore[arg-type]


def test_rows_are_read_lazily(tmp_path: Path) -> None:
    # The defect on line 2 is only met when the second row is asked for: nothing reads ahead.
    jsonl = _write(tmp_path, "t.jsonl", b'{"a":1}\n{oops\n')
    rows = iter_trace_rows(jsonl)
    assert next(rows) == {"a": 1}
    with pytest.raises(TraceFileError, match=r"^t\.jsonl:2: "):
        next(rows)
    array = _write(tmp_path, "t.json", b'[{"a":1},\n' + b" " * 3_000_000 + b"{oops]")
    rows = iter_trace_rows(array)
    assert next(rows) == {"a": 1}
    with pytest.raises(TraceFileError, match=r"^t\.json:2: invalid JSON"):
        next(rows)


# --- errors: always "<file name>:<line>: <what>" -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"a":1}\n{"b":2,,}\n',
            "t.jsonl:2: invalid JSON: Expecting property name enclosed in double quotes (column 8)",
        ),
        (b'{"a":1}\n\n{"b" 2}\n', "t.jsonl:3: invalid JSON: Expecting ':' delimiter (column 6)"),
        (b'{"a":1}\n[1, 2]\n', "t.jsonl:2: expected a JSON object, got array"),
        (b'"row"\n', "t.jsonl:1: expected a JSON object, got string"),
        (b"7\n", "t.jsonl:1: expected a JSON object, got number"),
        (b"null\n", "t.jsonl:1: expected a JSON object, got null"),
        (b"true\n", "t.jsonl:1: expected a JSON object, got boolean"),
        (b'{"a":NaN}\n', "t.jsonl:1: NaN is not valid JSON"),
        (b'{"a":[Infinity]}\n', "t.jsonl:1: Infinity is not valid JSON"),
        (b'{"a":-Infinity}\n', "t.jsonl:1: -Infinity is not valid JSON"),
        (b'{"a":1,"a":2}\n', "t.jsonl:1: duplicate key 'a' in one object"),
        (b'{"m":{"k":1,"k":1}}\n', "t.jsonl:1: duplicate key 'k' in one object"),
        (b'{"a":1} {"b":2}\n', "t.jsonl:1: invalid JSON: Extra data (column 9)"),
        (b'{"a":"\xff"}\n', "t.jsonl:1: invalid UTF-8: invalid start byte (byte 0xff at column 7)"),
        (b'{"a":"\t"}\n', "t.jsonl:1: invalid JSON: Invalid control character at (column 7)"),
        (b"\xef\xbb\xbf{}\n", "t.jsonl:1: a UTF-8 byte order mark is not allowed; remove it"),
        (
            b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
            "t.jsonl:1: invalid JSON: nested too deeply",
        ),
    ],
)
def test_jsonl_errors(tmp_path: Path, data: bytes, message: str) -> None:
    error = _error(_write(tmp_path, "t.jsonl", data))
    assert str(error) == message
    assert isinstance(error, ValueError)
    assert error.path.name == "t.jsonl"
    assert error.line == int(message.split(":")[1])


def test_huge_integers_are_a_file_error_not_a_traceback(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "t.jsonl", b'{"n":' + b"9" * 5000 + b"}\n"))
    assert str(error).startswith("t.jsonl:1: invalid JSON: Exceeds the limit")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[{"a":1},\n{"b":2}', "t.json:2: truncated JSON array: the file ends before ']'"),
        (
            b'[{"a":1},\n{"b":"abc',
            "t.json:2: truncated JSON array: the file ends inside an element",
        ),
        (b'[{"a":1},\n{"b":', "t.json:2: truncated JSON array: the file ends inside an element"),
        (b"[", "t.json:1: truncated JSON array: the file ends inside an element"),
        (b'[{"a":1}]\nx', "t.json:2: unexpected data after the JSON array"),
        (b'[{"a":1}] []', "t.json:1: unexpected data after the JSON array"),
        (b'[{"a":1},\n\n 3]', "t.json:3: expected a JSON object, got number"),
        (
            b'[\n{"a":1}\n{"b":2}]',
            "t.json:3: invalid JSON: Expecting ',' delimiter or ']' (column 1)",
        ),
        (b'[{"a":1},]', "t.json:1: invalid JSON: Expecting value (column 10)"),
        (b'[{"a":1},\n {"b":nope}]', "t.json:2: invalid JSON: Expecting value (column 7)"),
        (b'[\n{"a":1,\n"a":2}]', "t.json:2: duplicate key 'a' in one object"),
        (b'[{"a":NaN}]', "t.json:1: NaN is not valid JSON"),
        (
            b'[{"a":1},\n{"b":"\xc3"}]',
            "t.json:2: invalid UTF-8: invalid continuation byte (byte 0xc3 at file offset 16)",
        ),
    ],
)
def test_json_array_errors(tmp_path: Path, data: bytes, message: str) -> None:
    assert str(_error(_write(tmp_path, "t.json", data))) == message


def test_array_errors_keep_line_numbers_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace_files, "_CHUNK_SIZE", 5)
    lines = [b"["] + [b'  {"n": %d, "text": "%s"},' % (n, b"x" * n) for n in range(40)]
    data = b"\n".join(lines) + b'\n  {"n": 40, "text": "tail", "n": 0}\n]'
    error = _error(_write(tmp_path, "t.json", data))
    assert str(error) == "t.json:42: duplicate key 'n' in one object"
    data = b"\n".join(lines) + b'\n  {"n": 40, "text": "ta\xffil"}\n]'
    assert str(_error(_write(tmp_path, "u.json", data))).startswith("u.json:42: invalid UTF-8")
    data = b"\n".join(lines) + b'\n  {"n": 40 "text": 1}\n]'
    assert str(_error(_write(tmp_path, "v.json", data))) == (
        "v.json:42: invalid JSON: Expecting ',' delimiter (column 12)"
    )


def test_trace_file_error_attributes() -> None:
    error = TraceFileError(Path("/data/traces.jsonl"), 1842, "invalid JSON: oops")
    assert str(error) == "traces.jsonl:1842: invalid JSON: oops"
    assert (error.path, error.line, error.what) == (
        Path("/data/traces.jsonl"),
        1842,
        "invalid JSON: oops",
    )


# --- streaming equals in-memory ---------------------------------------------------------------

_keys = st.text(alphabet=st.characters(codec="utf-8"), max_size=6)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=10,
)
_objects = st.lists(st.dictionaries(_keys, _values, max_size=4), max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    _objects,
    st.sampled_from([None, 0, 1, 3]),
    st.booleans(),
    st.integers(min_value=1, max_value=40),
)
def test_array_reader_matches_json_loads_for_any_chunk_size(
    rows: list[dict[str, Any]], indent: int | None, ascii_only: bool, chunk: int
) -> None:
    text = json.dumps(rows, indent=indent, ensure_ascii=ascii_only)
    original = trace_files._CHUNK_SIZE
    trace_files._CHUNK_SIZE = chunk  # small chunks split tokens and UTF-8 sequences
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "rows.json")
            path.write_text(text, encoding="utf-8")
            assert list(iter_trace_rows(path)) == json.loads(text)
    finally:
        trace_files._CHUNK_SIZE = original


@settings(max_examples=30, deadline=None)
@given(_objects, st.booleans())
def test_jsonl_reader_matches_json_loads(rows: list[dict[str, Any]], ascii_only: bool) -> None:
    text = "".join(json.dumps(row, ensure_ascii=ascii_only) + "\n" for row in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "rows.jsonl")
        path.write_text(text, encoding="utf-8")
        assert list(iter_trace_rows(path)) == rows


_row_edits = st.fixed_dictionaries(
    {},
    optional={
        "split": st.sampled_from(["train", "eval", "test", " eval", "holdout", ""]),
        "severity": st.sampled_from(["low", "critical", "urgent"]),
        "prompt": st.sampled_from(["P", "p ", "Q"]),
        "response": st.just("R"),
        "contains_pii": st.sampled_from([True, "true", None]),
        "trace_id": st.sampled_from(["t1", "t2", ""]),
    },
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_row_edits, max_size=6), st.booleans())
def test_validate_trace_file_equals_the_list_api(
    edits: list[dict[str, Any]], as_array: bool
) -> None:
    rows = [{**trace_row(f"t{n}"), **edit} for n, edit in enumerate(edits)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "rows.json")
        if as_array:
            path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
        else:
            write_jsonl(path, rows)
        streamed = validate_trace_file(path, workspace(), vertical_profile=SECTOR_PROFILE)
    listed = validate_customer_trace_dataset(rows, workspace(), vertical_profile=SECTOR_PROFILE)
    assert streamed == listed


@pytest.mark.parametrize("jobs", [-1, True, 1.0, "2"])
def test_validate_trace_file_refuses_a_bad_jobs_value(tmp_path: Path, jobs: Any) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", trace_rows())
    with pytest.raises(ValueError, match="jobs must be a non-negative integer"):
        validate_trace_file(path, workspace(), jobs=jobs)


@pytest.mark.parametrize("jobs", [0, 1, 2])
def test_validate_trace_file_gives_one_report_whatever_the_jobs(tmp_path: Path, jobs: int) -> None:
    rows = [*trace_rows(), trace_row("trace-002", split=" eval")]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    expected = validate_customer_trace_dataset(rows, workspace(), vertical_profile=SECTOR_PROFILE)
    assert validate_trace_file(path, workspace(), vertical_profile=SECTOR_PROFILE, jobs=jobs) == (
        expected
    )


# --- reading from a stream: one forward pass, to the end -------------------------------------


class Pieces(io.RawIOBase):
    """A raw stream handing out ``data`` in reads of at most ``sizes[i]`` bytes (cycled).

    It cannot seek, and remembers how far it was read (``position``).
    """

    def __init__(self, data: bytes, sizes: Sequence[int] = (1 << 20,)) -> None:
        super().__init__()
        self._data = data
        self._sizes = itertools.cycle(sizes)
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0, /) -> int:
        raise io.UnsupportedOperation("not seekable")

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        view = memoryview(buffer).cast("B")
        count = min(len(view), next(self._sizes), len(self._data) - self.position)
        view[:count] = self._data[self.position : self.position + count]
        self.position += count
        return count


@contextlib.contextmanager
def chunk_size(size: int) -> Iterator[None]:
    """Make the readers' chunks ``size`` bytes (hypothesis tests cannot take ``monkeypatch``)."""
    original = trace_files._CHUNK_SIZE
    trace_files._CHUNK_SIZE = size
    try:
        yield
    finally:
        trace_files._CHUNK_SIZE = original


@settings(max_examples=60, deadline=None)
@given(
    _objects,
    st.sampled_from(["jsonl", "array", "pretty"]),
    st.text(alphabet=" \t\r\n", max_size=30),
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=5),
    st.integers(min_value=1, max_value=40),
)
def test_a_stream_read_in_any_pieces_gives_the_rows_and_is_read_to_its_end(
    rows: list[dict[str, Any]], layout: str, lead: str, sizes: list[int], chunk: int
) -> None:
    if layout == "jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    else:
        text = json.dumps(rows, indent=1 if layout == "pretty" else None, ensure_ascii=False)
    data = (lead + text).encode("utf-8")
    stream = Pieces(data, sizes)
    with chunk_size(chunk):  # leading blanks may now fill whole chunks, which are dropped
        assert list(iter_trace_rows_from(stream, "s.json")) == rows
    assert stream.position == len(data) and not stream.closed


@pytest.mark.parametrize(
    "data",
    [
        b"\n \n" + b" " * 30 + b'{"a":1}\n' + b" " * 9 + b'{"b":2,,}\n',
        b"\n \n" + b" " * 30 + b'{"b":2,,}\n',
        b"  \t " * 9 + b'{"a":"\xff"}\n',
        b"\n \n" + b" " * 30 + b'[{"a":1},\n{"b":"\xc3"}]',
        b" " * 33 + b'[{"a":1},  {"b":nope}]',
        b"\r\n" * 20 + b"[" + b" " * 40 + b"7]",
    ],
)
def test_dropped_blank_chunks_keep_lines_columns_and_offsets(data: bytes) -> None:
    with pytest.raises(TraceFileError) as whole:
        list(iter_trace_rows_from(Pieces(data), "s.json"))
    for size in (1, 2, 3, 5, 8):
        with chunk_size(size), pytest.raises(TraceFileError) as chunked:
            list(iter_trace_rows_from(Pieces(data, [size]), "s.json"))
        assert str(chunked.value) == str(whole.value)


@pytest.mark.parametrize("data", [b"", b" \n\t\r\n", b"[]", b'{"a":1}', b'[{"a":1}]  \n'])
def test_a_stream_is_read_to_its_end_and_left_open(data: bytes) -> None:
    for sizes in ([1], [1 << 20]):
        stream = Pieces(data, sizes)
        rows = list(iter_trace_rows_from(stream, "s.json"))
        assert rows == ([] if not data.strip() or data == b"[]" else [{"a": 1}])
        assert stream.position == len(data) and not stream.closed


def test_a_byte_order_mark_is_refused_even_one_byte_at_a_time() -> None:
    with pytest.raises(TraceFileError, match=r"^s\.jsonl:1: a UTF-8 byte order mark"):
        list(iter_trace_rows_from(Pieces(b"\xef\xbb\xbf{}\n", [1]), "s.jsonl"))


def test_a_non_blocking_stream_is_refused() -> None:
    class WouldBlock(Pieces):
        def readinto(self, buffer: WriteableBuffer) -> int | None:
            return None

    with pytest.raises(BlockingIOError):
        list(iter_trace_rows_from(WouldBlock(b'{"a":1}\n'), "s.jsonl"))


def test_buffered_streams_and_files_give_the_same_rows(tmp_path: Path) -> None:
    rows = trace_rows()
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    with path.open("rb") as buffered:
        assert list(iter_trace_rows_from(buffered, path)) == rows
    assert list(iter_trace_rows_from(io.BytesIO(path.read_bytes()), path)) == rows


def test_hash_trace_rows_is_the_dataset_hash(tmp_path: Path) -> None:
    rows = trace_rows()
    canonical = json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str).encode()
    expected = hashlib.sha256(canonical).hexdigest()
    assert hash_trace_rows(rows) == expected
    assert hash_trace_rows(iter(rows)) == expected
    assert trace_rows_hash(write_jsonl(tmp_path / "t.jsonl", rows)) == expected
    assert validate_customer_trace_dataset(rows, workspace()).dataset_hash == expected
    assert hash_trace_rows([]) == hashlib.sha256(b"[]").hexdigest()


# --- load_workspace ---------------------------------------------------------------------------


def test_load_workspace(tmp_path: Path) -> None:
    path = tmp_path / "workspace.json"
    path.write_text(json.dumps(workspace().to_dict(), indent=2), encoding="utf-8")
    assert load_workspace(path) == workspace()
    assert isinstance(load_workspace(path), CustomerWorkspace)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"customer_id": "c"}', "workspace.json: workspace_id: required field is missing"),
        (None, "workspace.json: allowed_splits: expected a list of strings, got str"),
        (
            '{\n  "a": 1,\n  2\n}',  # not a trailing comma: Python 3.13 words that otherwise
            "workspace.json:3: invalid JSON: Expecting property name enclosed in "
            "double quotes (column 3)",
        ),
        ('{"a": 1, "a": 2}', "workspace.json: duplicate key 'a' in one object"),
        ('{"a": NaN}', "workspace.json: NaN is not valid JSON"),
        ("[]", "workspace.json:1: expected a JSON object, got array"),
    ],
)
def test_load_workspace_errors_name_the_file(
    tmp_path: Path, text: str | None, message: str
) -> None:
    if text is None:
        text = json.dumps({**workspace().to_dict(), "allowed_splits": "train"})
    path = tmp_path / "workspace.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_workspace(path)
    assert str(caught.value) == message


def test_load_workspace_refuses_bad_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path, "workspace.json", b'{\n"customer_id": "\xfe"}')
    with pytest.raises(TraceFileError, match=r"^workspace\.json:2: invalid UTF-8: .* column 17"):
        load_workspace(path)
