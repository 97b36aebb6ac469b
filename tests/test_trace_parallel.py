"""Tests for trace_parallel: a file validated range by range gives the sequential engine's report.

Most properties run the ranges in this process (``validate_jsonl_chunks``) with tiny ranges, so
range boundaries fall everywhere; a few run real worker processes.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory import trace_parallel
from customer_model_factory.dataset_contract import (
    CustomerDatasetValidationReport,
    validate_customer_trace_dataset,
)
from customer_model_factory.trace_files import TraceFileError, validate_trace_file
from customer_model_factory.trace_parallel import (
    ChunkTask,
    automatic_jobs,
    summarize_chunk,
    validate_jsonl_chunks,
    validate_jsonl_parallel,
)
from factory_fixtures import SECTOR_PROFILE, trace_row, trace_rows, workspace

# --- generated trace files ---------------------------------------------------------------------

_EDITS: list[dict[str, Any]] = [
    {"split": " eval"},
    {"split": "holdout"},
    {"severity": "urgent"},
    {"severity": "critical"},  # with approve: a warning, so not a quiet row
    {"contains_pii": "true"},
    {"trace_id": ""},  # labelled row:<index>, which depends on the rows before
    {"customer_id": "other"},
    {"metadata": {}},
    {"source_refs": []},
    {"note": "kb://a:b", "extra": {"nested": ["é", "\u2028", 1.5, None, True]}},
]


@st.composite
def _rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rows whose ids and prompt/response pairs collide often, some with findings of their own."""
    rows = []
    for _ in range(draw(st.integers(0, 9))):
        row = trace_row(
            draw(st.sampled_from(["a", "b", "c", "d"])),
            split=draw(st.sampled_from(["train", "eval", "test"])),
            prompt=draw(st.sampled_from(["P", " p", "Q: why?"])),
            response=draw(st.sampled_from(["R", "S"])),
        )
        if draw(st.integers(0, 2)) == 0:
            row.update(draw(st.sampled_from(_EDITS)))
        rows.append(row)
    return rows


@st.composite
def _jsonl(draw: st.DrawFn, rows: list[dict[str, Any]]) -> bytes:
    """``rows`` as JSON Lines in any legal spelling: blank lines, CRLF, padding, escapes."""
    out = []
    for row in rows:
        for _ in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 0):
            out.append(draw(st.sampled_from(["", "   ", "\t\r"])) + "\n")
        compact = draw(st.booleans())
        line = json.dumps(
            row,
            ensure_ascii=draw(st.booleans()),
            separators=(",", ":") if compact else (", ", ": "),
        )
        if draw(st.integers(0, 4)) == 0:
            line = line.replace("kb://a:b", "kb://a\\u003ab")  # the same string, escaped
        pad = draw(st.sampled_from(["", " ", "\t"]))
        out.append(pad + line + pad + draw(st.sampled_from(["\n", "\r\n"])))
    data = "".join(out).encode("utf-8")
    if data and draw(st.booleans()):
        data = data.rstrip(b"\r\n")  # no newline at the end of the file
    return data


_BAD_LINES = [
    b"{oops",
    b'{"a":1,"a":2}',
    b'{"m":{"k":"a:b","k":1}}',  # a key repeated in a nested object
    b'{"k":"\\u003a","n":1,"n":2}',
    b"[1, 2]",
    b'"row"',
    b'{"a":NaN}',
    b'{"a":"\xff"}',
    b'{"a":1} {"b":2}',
    b'{"a":1}\r{"b":2}',
    b'{"a":\n1}',  # an object split over two lines
    b'{"n":' + b"9" * 5000 + b"}",
    b'{"a":"\t"}',
    b"\x0c{}",
]
_DEEP_LINE = b'{"deep":' + b"[" * 300 + b"]" * 300 + b"}"  # valid; too deep for a worker


def _with_line(data: bytes, where: int, line: bytes) -> bytes:
    """``data`` with ``line`` inserted as a line of its own before line ``where`` (clamped)."""
    lines = data.split(b"\n")
    lines.insert(min(where, len(lines)), line)
    return b"\n".join(lines)


def _outcome(
    run: Callable[[], CustomerDatasetValidationReport],
) -> CustomerDatasetValidationReport | tuple[str, int]:
    """The report, or (message, line) of the TraceFileError."""
    try:
        return run()
    except TraceFileError as exc:
        return str(exc), exc.line


def _write(directory: str, data: bytes) -> Path:
    path = Path(directory, "traces.jsonl")
    path.write_bytes(data)
    return path


_chunk_bytes = st.one_of(st.integers(1, 40), st.integers(40, 1500))
_profiles = st.sampled_from([None, SECTOR_PROFILE])


# --- the report is the sequential engine's ----------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(st.data(), _rows(), _chunk_bytes, st.integers(1, 2000), _profiles)
def test_ranges_give_the_list_api_report(
    data: st.DataObject,
    rows: list[dict[str, Any]],
    chunk_bytes: int,
    block_bytes: int,
    profile: str | None,
) -> None:
    text = data.draw(_jsonl(rows))
    ws = workspace()
    expected = validate_customer_trace_dataset(rows, ws, vertical_profile=profile)
    with (
        tempfile.TemporaryDirectory() as tmp,
        patch.object(trace_parallel, "_BLOCK_BYTES", block_bytes),
    ):
        path = _write(tmp, text)
        got = validate_jsonl_chunks(path, ws, vertical_profile=profile, chunk_bytes=chunk_bytes)
        assert got == expected
        assert validate_trace_file(path, ws, vertical_profile=profile, jobs=1) == expected


@settings(max_examples=120, deadline=None)
@given(
    st.data(),
    _rows(),
    _chunk_bytes,
    st.sampled_from([*_BAD_LINES, _DEEP_LINE]),
    st.integers(0, 30),
)
def test_a_bad_line_anywhere_gives_the_sequential_error(
    data: st.DataObject, rows: list[dict[str, Any]], chunk_bytes: int, bad: bytes, where: int
) -> None:
    text = _with_line(data.draw(_jsonl(rows)), where, bad)
    ws = workspace()
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, text)
        expected = _outcome(lambda: validate_trace_file(path, ws, jobs=1))
        got = _outcome(lambda: validate_jsonl_chunks(path, ws, chunk_bytes=chunk_bytes))
    assert got == expected
    assert isinstance(expected, tuple) == (bad != _DEEP_LINE)


def test_an_error_in_the_second_range_is_the_only_outcome(tmp_path: Path) -> None:
    good = b"".join(json.dumps(row).encode() + b"\n" for row in trace_rows())
    path = tmp_path / "t.jsonl"
    path.write_bytes(good + b"\n" + good + b'{"a":1,"a":2}\n' + good + b"{oops\n")
    chunk_bytes = len(good) + 1  # the first range is clean, the second holds the first error
    expected = "t.jsonl:8: duplicate key 'a' in one object"
    for jobs in (1, 2):
        with pytest.raises(TraceFileError) as caught:
            validate_jsonl_parallel(path, workspace(), jobs=jobs, chunk_bytes=chunk_bytes)
        assert (str(caught.value), caught.value.line) == (expected, 8)
    with pytest.raises(TraceFileError) as caught:
        validate_trace_file(path, workspace(), jobs=1)
    assert str(caught.value) == expected
    assert multiprocessing.active_children() == []  # no worker outlives the error


@settings(max_examples=12, deadline=None)
@given(st.data(), _rows(), st.integers(200, 3000), st.booleans())
def test_worker_processes_give_the_sequential_outcome(
    data: st.DataObject, rows: list[dict[str, Any]], chunk_bytes: int, bad: bool
) -> None:
    text = data.draw(_jsonl(rows))
    if bad:
        bad_line = data.draw(st.sampled_from([*_BAD_LINES, _DEEP_LINE]))
        text = _with_line(text, data.draw(st.integers(0, 30)), bad_line)
    ws = workspace()
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, text)
        expected = _outcome(lambda: validate_trace_file(path, ws, jobs=1))
        got = _outcome(lambda: validate_jsonl_parallel(path, ws, jobs=2, chunk_bytes=chunk_bytes))
    assert got == expected


def test_validate_trace_file_with_two_jobs(tmp_path: Path) -> None:
    rows = [*trace_rows(), trace_row("trace-001", contains_pii="true")]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    expected = validate_customer_trace_dataset(rows, workspace(), vertical_profile=SECTOR_PROFILE)
    got = validate_trace_file(path, workspace(), vertical_profile=SECTOR_PROFILE, jobs=2)
    assert got == expected
    codes = [f.code for f in got.findings]
    assert codes == ["duplicate_trace_id", "flag_not_boolean", "within_split_duplicate"]


@settings(max_examples=25, deadline=None)
@given(_rows(), st.sampled_from([None, 0, 2]), st.integers(1, 400))
def test_json_array_files_give_the_list_api_report(
    rows: list[dict[str, Any]], indent: int | None, chunk_bytes: int
) -> None:
    expected = validate_customer_trace_dataset(rows, workspace())
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, json.dumps(rows, indent=indent).encode())
        got = validate_jsonl_parallel(path, workspace(), jobs=2, chunk_bytes=chunk_bytes)
        assert got == expected
        path.write_bytes(json.dumps(rows).encode()[:-1])  # truncated: the array reader's error
        expected_error = _outcome(lambda: validate_trace_file(path, workspace(), jobs=1))
        assert _outcome(lambda: validate_jsonl_chunks(path, workspace())) == expected_error


def test_no_workers_start_for_an_array_an_empty_file_or_a_bad_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pool(*args: Any) -> None:
        raise AssertionError("a worker pool was started")

    monkeypatch.setattr(trace_parallel, "_worker_pool", no_pool)
    array, empty = tmp_path / "t.json", tmp_path / "e.jsonl"
    array.write_text(json.dumps(trace_rows()), encoding="utf-8")
    empty.write_bytes(b"")
    assert validate_jsonl_parallel(array, workspace()) == validate_trace_file(array, workspace())
    assert validate_jsonl_parallel(empty, workspace()).row_count == 0
    with pytest.raises(TypeError):
        validate_jsonl_parallel(empty, workspace(allowed_splits="train"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xef\xbb\xbf{}\n", "t.jsonl:1: a UTF-8 byte order mark is not allowed; remove it"),
        (b"", None),
        (b"\n \n", None),
    ],
)
def test_file_starts(tmp_path: Path, data: bytes, message: str | None) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    expected = _outcome(lambda: validate_trace_file(path, workspace(), jobs=1))
    assert _outcome(lambda: validate_jsonl_chunks(path, workspace(), chunk_bytes=1)) == expected
    if message is not None:
        assert expected == (message, 1)


def test_errors_come_in_the_sequential_order(tmp_path: Path) -> None:
    bad_workspace = workspace(allowed_splits="train")
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(TypeError, match="allowed_splits"):
        validate_jsonl_chunks(missing, bad_workspace)  # the workspace is checked first
    with pytest.raises(FileNotFoundError):
        validate_jsonl_chunks(missing, workspace())
    for value in (0, -1, True):
        with pytest.raises(ValueError, match="chunk_bytes"):
            validate_jsonl_chunks(missing, workspace(), chunk_bytes=value)
        with pytest.raises(ValueError, match="jobs"):
            validate_jsonl_parallel(missing, workspace(), jobs=value)


# --- the pieces -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([b"a", b"bc", b"\n", b" ", b"\r"]), max_size=40), st.integers(1, 50)
)
def test_ranges_own_consecutive_whole_lines(parts: list[bytes], chunk_bytes: int) -> None:
    data = b"".join(parts)
    handle = io.BytesIO(data)
    owned = [
        trace_parallel._owned_lines(handle, start, min(start + chunk_bytes, len(data)))
        for start in range(0, len(data), chunk_bytes)
    ]
    assert b"".join(piece for _begin, piece in owned) == data
    filled = [(begin, piece) for begin, piece in owned if piece]
    for begin, piece in filled:  # whole lines, found where the range says they start
        assert begin == 0 or data[begin - 1 : begin] == b"\n"
        assert data[begin : begin + len(piece)] == piece
    assert all(piece.endswith(b"\n") for _begin, piece in filled[:-1])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([b"a", b"bc", b"\n", b" "]), max_size=40),
    st.integers(0, 40),
    st.integers(0, 40),
    st.integers(1, 9),
)
def test_blocks_are_whole_lines(parts: list[bytes], first: int, last: int, size: int) -> None:
    data = b"".join(parts)
    handle = io.BytesIO(data)
    begin, stop = trace_parallel._owned_span(handle, min(first, last), max(first, last))
    blocks = list(trace_parallel._line_blocks(handle, begin, stop, size))
    assert b"".join(blocks) == data[begin:stop]
    assert all(block.endswith(b"\n") for block in blocks[:-1])
    assert all(blocks)


def _task(path: Path) -> ChunkTask:
    return ChunkTask(path, 0, path.stat().st_size, workspace(), SECTOR_PROFILE)


@pytest.mark.parametrize(
    ("line", "summarized"),
    [
        (json.dumps(trace_row()).encode(), True),
        (b'  {"a": "b:c", "e": "\\u00e9\\u003a"}  \r', True),
        (b'{"a":1,"a":2}', False),
        (b'{"a":"\xff"}', False),
        (b"[]", False),
        (b'{"a":1}{}', False),
        (_DEEP_LINE, True),  # this process's recursion limit allows it
    ],
)
def test_summarize_chunk(tmp_path: Path, line: bytes, summarized: bool) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n" + line + b"\n\n")
    summary = summarize_chunk(_task(path))
    assert (summary is not None) == summarized
    if summary is not None:
        assert summary.row_count == 1


def _stack_depth() -> int:
    frame: FrameType | None = sys._getframe()
    depth = 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


@pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="from Python 3.12 json's C recursion limit does not follow sys.setrecursionlimit, so "
    "a worker cannot be given less room than the main process",
)
def test_rows_too_deep_for_the_recursion_limit_are_handed_back(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(json.dumps(trace_row()).encode() + b"\n" + _DEEP_LINE + b"\n")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_stack_depth() + 100)  # like a worker: less room than the row needs
    try:
        assert summarize_chunk(_task(path)) is None
    finally:
        sys.setrecursionlimit(limit)
    assert summarize_chunk(_task(path)) is not None


def test_a_deep_row_read_by_workers(tmp_path: Path) -> None:
    rows = [json.dumps(row).encode() for row in trace_rows()]
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join([rows[0], _DEEP_LINE, *rows[1:], _DEEP_LINE]) + b"\n")
    expected = validate_trace_file(path, workspace(), jobs=1)
    assert validate_jsonl_parallel(path, workspace(), jobs=2, chunk_bytes=500) == expected


_dense_text = st.text(
    alphabet=st.sampled_from(["a", "\x7f", "é", "\u20ac", "\U0001f600", '"', "\\", "\n"])
)
_dense_values = st.recursive(
    st.one_of(
        _dense_text,
        st.sampled_from([1e15, -1e15, 1e9, 0.0, -0.0, 1e-7]),
        st.integers(),
        st.booleans(),
        st.none(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_dense_text, inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_dense_text, _dense_values, max_size=4))
def test_canonical_bytes_fit_twelve_per_input_byte(row: dict[str, Any]) -> None:
    # The densest input: compact, raw UTF-8, and numbers in their shortest spelling ("1e15",
    # which the canonical encoding expands most; the text alphabet holds no digit or "+").
    raw = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    raw = raw.replace("1000000000000000.0", "1e15").replace("1000000000.0", "1e9")
    raw = raw.replace("e+", "e").replace("e-07", "e-7")
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"))
    assert json.loads(raw) == row
    assert len(canonical) <= trace_parallel._MAX_ENCODED_PER_BYTE * len(raw.encode())


def test_a_range_too_long_for_its_output_slot_sends_its_bytes(tmp_path: Path) -> None:
    # 12 canonical bytes per input byte must fit the slot; a 100 KB line in a 500-byte range
    # does not fit (12 * (500 + 64 KiB)), so that range's bytes travel with its summary.
    rows = [*trace_rows(), trace_row("long", prompt="x" * 100_000), *trace_rows()]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    expected = validate_customer_trace_dataset(rows, workspace())
    assert validate_jsonl_parallel(path, workspace(), jobs=2, chunk_bytes=500) == expected


def test_ordinary_ranges_are_summarized_with_quiet_rows(tmp_path: Path) -> None:
    # Without this, a worker that always handed its range back to the main process would pass
    # every equality test above while doing none of the work.
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in trace_rows()), encoding="utf-8")
    summary = summarize_chunk(_task(path))
    assert summary is not None
    assert summary.others == []
    assert summary.row_count == 3


def test_line_numbers_are_counted_forward(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"a\nb\n\nc\nd")
    lines = trace_parallel._LineNumbers(path)
    assert [lines.line_at(offset) for offset in (0, 1, 2, 4, 5, 9, 9)] == [1, 1, 2, 3, 4, 5, 5]
    with pytest.raises(ValueError, match="counted forward"):
        lines.line_at(3)


# --- choosing the number of workers -----------------------------------------------------------


def test_automatic_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"{}\n" * 10)
    monkeypatch.setattr(trace_parallel, "_available_cores", lambda: 2)
    assert automatic_jobs(path) == 1  # small
    assert automatic_jobs(tmp_path / "missing") == 1
    monkeypatch.setattr(trace_parallel, "PARALLEL_MIN_BYTES", 30)
    assert automatic_jobs(path) == 2
    monkeypatch.setattr(trace_parallel, "_available_cores", lambda: 1)
    assert automatic_jobs(path) == 1
    assert trace_parallel._available_cores() >= 1


def test_big_files_take_the_parallel_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in trace_rows()), encoding="utf-8")
    calls: list[int] = []
    original = trace_parallel.validate_jsonl_parallel

    def spy(*args: Any, jobs: int, **kwargs: Any) -> CustomerDatasetValidationReport:
        calls.append(jobs)
        return original(*args, jobs=jobs, **kwargs)

    monkeypatch.setattr(trace_parallel, "validate_jsonl_parallel", spy)
    monkeypatch.setattr(trace_parallel, "automatic_jobs", lambda path: 2)
    expected = validate_trace_file(path, workspace(), jobs=1)
    assert validate_trace_file(path, workspace()) == expected
    assert validate_trace_file(path, workspace(), jobs=3) == expected
    assert calls == [2, 3]


def test_worker_processes_under_a_threaded_parent(tmp_path: Path) -> None:
    # A parent running other threads must not fork: the pool then uses forkserver (or spawn).
    rows = [*trace_rows(), trace_row("late"), *trace_rows()]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    expected = validate_customer_trace_dataset(rows, workspace())
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert validate_jsonl_parallel(path, workspace(), jobs=2, chunk_bytes=300) == expected
    finally:
        stop.set()
        thread.join()
