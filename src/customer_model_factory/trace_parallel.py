"""Validating a big JSON Lines trace file on several cores, with the sequential engine's report.

The file is cut into byte ranges of about ``CHUNK_BYTES``; a range owns every line that starts
inside it. Worker processes parse their ranges with the sequential reader's strict decoder and
reduce the rows with ``dataset_contract.summarize_rows`` (the canonical bytes for the
dataset_hash, and the rules that need no cross-row state). This process applies the summaries in
file order with ``_DatasetValidator.add_summary``, which hashes the bytes and runs the
order-dependent rules (duplicate trace ids, duplicates within and across splits, counts): the
report is the sequential engine's, finding for finding.

The canonical bytes, about as many as the file's, go from a worker to this process through
shared memory when the workers are forked (an output slot per range in flight, reused), instead
of being pickled, piped and unpickled: fresh pages for those copies each cost a page fault,
which a virtual machine makes expensive.

Errors: a worker never reports an error itself. A range it cannot summarize exactly as the
sequential reader would read it (a bad line, or a line nested unusually deep) comes back
unsummarized, and this process reads that range again with the sequential reader. The ranges
before it are applied already and none after it is looked at, so the first error in file order
is raised, with the sequential message and line number.

JSON array files are validated in this process: their elements cannot be found without reading
everything before them. A file that changes while it is read gives a report on some mix of its
versions, as the sequential reader's would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import mmap
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import IO, Any

from . import trace_files
from ._frozen import frozen
from ._processes import worker_context
from ._strictjson import DECODER
from .dataset_contract import (
    CustomerDatasetValidationReport,
    CustomerWorkspace,
    RowsSummary,
    _DatasetValidator,
    summarize_rows,
    validate_trace_rows,
)

__all__ = [
    "CHUNK_BYTES",
    "PARALLEL_MIN_BYTES",
    "ChunkMap",
    "ChunkTask",
    "automatic_jobs",
    "in_this_process",
    "summarize_chunk",
    "validate_jsonl_chunks",
    "validate_jsonl_parallel",
]

CHUNK_BYTES = 4 << 20
"""Bytes per range: big enough to amortise the hand-over, small enough to keep workers busy."""
PARALLEL_MIN_BYTES = 32 << 20
"""Files smaller than this are validated in one process when ``jobs`` is automatic."""
# Workers run with this recursion limit, far below the default 1000: a row nested too deep for
# it is handed back to this process, whose own stack decides, as in the sequential engine, if
# the row is too deep to parse at all.
_WORKER_RECURSION_LIMIT = 250
_JSON_WHITESPACE = " \t\r\n"
_BLANK = re.compile(r"[ \t\r\n]*")
_LINE_TAIL = re.compile(r"[ \t\r]*")
# The strict decoder's C scanner, as JSONDecoder.__init__ builds it (typeshed does not declare
# it): (text, index) -> (value, end). JSONDecoder.decode is this plus the whitespace checks that
# _scanned_rows makes itself.
_SCAN: Callable[[str, int], tuple[Any, int]] = DECODER.scan_once  # type: ignore[attr-defined]
# Canonical bytes per input byte, at most: a character (one UTF-8 byte or more) becomes at most
# 12 (an astral character's surrogate-pair escape; DEL, one byte, becomes 6), a number at most
# 4.5 times as many ("1e15" -> "1000000000000000.0"), anything else no more. Were it wrong, a
# write past a slot's end raises ValueError: a failure, never a wrong hash.
_MAX_ENCODED_PER_BYTE = 12
_SLOT_TAIL = 64 << 10  # room in a slot for a range's last line running past its end
_BLOCK_BYTES = 64 << 10  # read at a time by a worker: below glibc's default mmap threshold

_SLOTS: tuple[mmap.mmap, ...] = ()
"""In a worker forked with output slots: those slots (set once by ``_start_worker``)."""


@frozen
class ChunkTask:
    """One byte range of a JSON Lines file to summarize: the lines starting in [start, end)."""

    path: Path
    start: int
    end: int
    workspace: CustomerWorkspace
    vertical_profile: str | None


ChunkMap = Callable[[Sequence[ChunkTask]], Iterable[RowsSummary | None]]
"""``summarize_chunk`` over the tasks, results in order: in this process, or in workers."""


def in_this_process(tasks: Sequence[ChunkTask]) -> Iterator[RowsSummary | None]:
    """``summarize_chunk`` over ``tasks`` in this process, lazily."""
    return map(summarize_chunk, tasks)


def automatic_jobs(path: Path) -> int:
    """Workers for ``jobs=0``: every available core for a file of at least PARALLEL_MIN_BYTES,
    else 1. A file that cannot be looked at gets 1: the sequential reader reports the error."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        return 1
    cores = _available_cores()
    return cores if size >= PARALLEL_MIN_BYTES and cores > 1 else 1


def _available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return len(affinity(0))
    return os.cpu_count() or 1


def validate_jsonl_parallel(
    path: Path,
    workspace: CustomerWorkspace,
    *,
    vertical_profile: str | None = None,
    jobs: int = 2,
    chunk_bytes: int = CHUNK_BYTES,
) -> CustomerDatasetValidationReport:
    """Validate a trace file with ``jobs`` worker processes; the sequential engine's report.

    Same report, and same TraceFileError for a bad file, as ``trace_files.validate_trace_file``
    with ``jobs=1``. A JSON array file is validated in this process.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    window = 2 * jobs  # ranges in flight: enough to keep every worker busy
    slot_bytes = _MAX_ENCODED_PER_BYTE * (chunk_bytes + _SLOT_TAIL)
    with contextlib.ExitStack() as stack:

        def in_workers(tasks: Sequence[ChunkTask]) -> Iterator[RowsSummary | None]:
            # Started only now: an array file, an empty one or a bad workspace needs no workers.
            pool, slots = stack.enter_context(_worker_pool(jobs, window, slot_bytes))
            return _in_workers(pool, slots, tasks, window=window)

        return validate_jsonl_chunks(
            path,
            workspace,
            vertical_profile=vertical_profile,
            chunk_bytes=chunk_bytes,
            map_chunks=in_workers,
        )


def validate_jsonl_chunks(
    path: Path,
    workspace: CustomerWorkspace,
    *,
    vertical_profile: str | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    map_chunks: ChunkMap = in_this_process,
) -> CustomerDatasetValidationReport:
    """Validate a trace file range by range, ``map_chunks`` running ``summarize_chunk``.

    By default everything runs in this process (what the tests use to put range boundaries
    everywhere); ``validate_jsonl_parallel`` passes worker processes.
    """
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be a positive integer, got {chunk_bytes!r}")
    # Built first, as the sequential path does: a bad workspace fails before the file is read.
    validator = _DatasetValidator(workspace, vertical_profile=vertical_profile)
    path = Path(path)
    with path.open("rb") as handle:
        if trace_files._is_array_file(handle, path):
            array = True
        else:
            array = False
            size = handle.seek(0, os.SEEK_END)
    if array:
        rows = trace_files.iter_trace_rows(path)
        return validate_trace_rows(rows, workspace, vertical_profile=vertical_profile)
    tasks = [
        ChunkTask(path, start, min(start + chunk_bytes, size), workspace, vertical_profile)
        for start in range(0, size, chunk_bytes)
    ]
    if not tasks:
        return validator.finish()
    lines = _LineNumbers(path)
    results = map_chunks(tasks)
    # A generator is closed even on an error, which releases what it holds (views of slots).
    closing = contextlib.closing(results) if isinstance(results, Generator) else None
    with closing or contextlib.nullcontext():
        for task, summary in zip(tasks, results, strict=True):
            if summary is None:
                _validate_range_here(task, lines, validator)
            else:
                validator.add_summary(summary)
    return validator.finish()


def _validate_range_here(
    task: ChunkTask, lines: _LineNumbers, validator: _DatasetValidator
) -> None:
    """Validate a range in this process with the sequential reader.

    Raises the sequential reader's TraceFileError for the range's first bad line.
    """
    with task.path.open("rb") as handle:
        begin, data = _owned_lines(handle, task.start, task.end)
    first_line = lines.line_at(begin)
    for row in trace_files._iter_jsonl_rows(io.BytesIO(data), task.path, first_line):
        validator.add(row)


class _LineNumbers:
    """Line numbers of a file's byte offsets, counted forward on demand: only ranges read again
    by this process need one, and then the newlines before them are counted once in all."""

    def __init__(self, path: Path) -> None:
        """Start at the file's first byte, on line 1."""
        self._path = path
        self._offset = 0
        self._line = 1

    def line_at(self, offset: int) -> int:
        """The 1-based line of byte ``offset``; ValueError if it is before the last one asked."""
        if offset < self._offset:
            raise ValueError(f"line numbers are counted forward: {offset} < {self._offset}")
        with self._path.open("rb") as handle:
            handle.seek(self._offset)
            while self._offset < offset:
                block = handle.read(min(offset - self._offset, CHUNK_BYTES))
                if not block:
                    break
                self._line += block.count(b"\n")
                self._offset += len(block)
        self._offset = offset
        return self._line


def summarize_chunk(
    task: ChunkTask, write: Callable[[bytes], object] | None = None
) -> RowsSummary | None:
    """Read and reduce one range; None if this process must read it itself.

    With ``write`` the canonical bytes are written there and the summary's ``encoded`` is empty.
    """
    with task.path.open("rb") as handle:
        begin, stop = _owned_span(handle, task.start, task.end)
        return _summarize_span(handle, begin, stop, task, write)


def _summarize_in_slot(
    task: ChunkTask, slot: int | None
) -> tuple[RowsSummary | None, int | None, int]:
    """In a worker: ``summarize_chunk``, leaving the canonical bytes in output slot ``slot``
    when there is one and they surely fit. Returns (summary, slot used or None, length)."""
    with task.path.open("rb") as handle:
        begin, stop = _owned_span(handle, task.start, task.end)
        if slot is None or (stop - begin) * _MAX_ENCODED_PER_BYTE > len(_SLOTS[slot]):
            return _summarize_span(handle, begin, stop, task, None), None, 0
        out = _SLOTS[slot]
        out.seek(0)
        return _summarize_span(handle, begin, stop, task, out.write), slot, out.tell()


def _summarize_span(
    handle: IO[bytes],
    begin: int,
    stop: int,
    task: ChunkTask,
    write: Callable[[bytes], object] | None,
) -> RowsSummary | None:
    """Reduce the lines in [begin, stop); None if the scanner does not vouch for one, or one
    is nested too deep for this process's recursion limit (when parsed or when encoded)."""
    rows = _scanned_rows(_line_blocks(handle, begin, stop, _BLOCK_BYTES))
    try:
        return summarize_rows(
            rows, task.workspace, vertical_profile=task.vertical_profile, write=write
        )
    except (UnicodeDecodeError, _Unusual, RecursionError):
        return None


class _Unusual(Exception):
    """A range holds a line the scanner does not vouch for: this process must read it."""


def _owned_span(handle: IO[bytes], start: int, end: int) -> tuple[int, int]:
    """[begin, stop): the bytes of the lines that start at an offset in [start, end).

    Consecutive ranges own consecutive lines: the line holding byte ``start - 1`` belongs to an
    earlier range, and the last line begun before ``end`` is finished in this one.
    """
    begin = _next_line_start(handle, start)
    return begin, (_next_line_start(handle, end) if begin < end else begin)


def _next_line_start(handle: IO[bytes], offset: int) -> int:
    """The first offset at or after ``offset`` where a line starts (or the end of the file)."""
    if offset == 0:
        return 0
    handle.seek(offset - 1)
    handle.readline()
    return handle.tell()


def _owned_lines(handle: IO[bytes], start: int, end: int) -> tuple[int, bytes]:
    """(offset, bytes) of the lines that start at an offset in [start, end), read whole."""
    begin, stop = _owned_span(handle, start, end)
    handle.seek(begin)
    return begin, handle.read(stop - begin)


def _line_blocks(handle: IO[bytes], begin: int, stop: int, block_bytes: int) -> Iterator[bytes]:
    """The bytes [begin, stop) of whole lines, in blocks of whole lines of about
    ``block_bytes`` (a longer line makes a longer block).

    Small blocks, not one allocation for the range: buffers of this size are recycled by the
    allocator, where a fresh multi-megabyte one costs a page fault per 4 KiB.
    """
    handle.seek(begin)
    remaining = stop - begin
    carry = b""
    while remaining > 0:
        block = handle.read(min(block_bytes, remaining))
        if not block:
            break  # the file shrank while being read
        remaining -= len(block)
        cut = block.rfind(b"\n") + 1 if remaining else len(block)
        if cut:
            yield carry + block[:cut]
            carry = block[cut:]
        else:
            carry += block  # a line longer than a block
    if carry:
        yield carry


def _scanned_rows(blocks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Yield the objects of the non-blank lines in ``blocks`` (whole lines of UTF-8), one at a
    time; raise _Unusual unless each such line is exactly one JSON object (surrounded by JSON
    whitespace), UnicodeDecodeError for bad UTF-8.

    Each value is parsed by the sequential reader's decoder, so it is the value that reader
    would yield (repeated keys and NaN refused alike); whatever that reader refuses raises
    _Unusual (or RecursionError).
    """
    for block in blocks:
        text = block.decode("utf-8")
        length = len(text)
        position = _whitespace_end(text, 0)
        while position < length:
            line_end = text.find("\n", position)
            if line_end < 0:
                line_end = length
            try:
                value, end = _SCAN(text, position)
            except (ValueError, StopIteration):
                raise _Unusual from None  # the sequential reader will say what is wrong
            if (
                end > line_end  # the value spans lines
                or type(value) is not dict
                or (end != line_end and _tail_end(text, end) != line_end)
            ):
                raise _Unusual
            yield value
            position = line_end + 1
            if position < length and text[position] in _JSON_WHITESPACE:
                position = _whitespace_end(text, position)


def _whitespace_end(text: str, position: int) -> int:
    """Index of the first character at or after ``position`` that is not JSON whitespace."""
    match = _BLANK.match(text, position)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _tail_end(text: str, position: int) -> int:
    """Index of the first character at or after ``position`` that is not " ", tab or CR."""
    match = _LINE_TAIL.match(text, position)
    assert match is not None  # the pattern matches the empty string
    return match.end()


@contextlib.contextmanager
def _worker_pool(
    jobs: int, slot_count: int, slot_bytes: int
) -> Iterator[tuple[Executor, tuple[mmap.mmap, ...]]]:
    """A pool of ``jobs`` worker processes and, when they are forked, ``slot_count`` shared
    output slots of ``slot_bytes`` (anonymous shared memory: only the pages written are ever
    allocated, and it vanishes with its last process).

    On leaving, ranges not yet started are cancelled and running ones awaited, so no worker
    outlives the call (an error included).
    """
    from concurrent.futures import ProcessPoolExecutor

    context = worker_context()  # imports multiprocessing: only big files pay for it
    # Only a forked child inherits the mappings; the others get no slots.
    forked = context.get_start_method() == "fork"
    slots = tuple(mmap.mmap(-1, slot_bytes) for _ in range(slot_count)) if forked else ()
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_start_worker,
        initargs=(slots,),
    )
    try:
        yield pool, slots
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(slots: tuple[mmap.mmap, ...]) -> None:
    """Worker initializer: remember the output slots inherited from the parent, and lower the
    recursion limit (see _WORKER_RECURSION_LIMIT)."""
    global _SLOTS
    _SLOTS = slots
    sys.setrecursionlimit(_WORKER_RECURSION_LIMIT)


def _in_workers(
    pool: Executor, slots: tuple[mmap.mmap, ...], tasks: Iterable[ChunkTask], *, window: int
) -> Generator[RowsSummary | None, None, None]:
    """``summarize_chunk`` over ``tasks`` on ``pool``, results in order, at most ``window``
    tasks in flight: memory stays bounded however far the workers get ahead.

    Task ``i`` writes into slot ``i % window``, which task ``i + window`` reuses: it is only
    submitted once result ``i`` has been consumed (the consumer asks for the next one).
    """
    pending: deque[Future[tuple[RowsSummary | None, int | None, int]]] = deque()
    for index, task in enumerate(tasks):
        slot = index % window if slots else None
        pending.append(pool.submit(_summarize_in_slot, task, slot))
        if len(pending) >= window:
            yield from _received(pending.popleft().result(), slots)
    while pending:
        yield from _received(pending.popleft().result(), slots)


def _received(
    result: tuple[RowsSummary | None, int | None, int], slots: tuple[mmap.mmap, ...]
) -> Iterator[RowsSummary | None]:
    """Yield a worker's summary, its canonical bytes viewed in their slot (if they are in one)
    until the consumer asks for more."""
    summary, slot, length = result
    if summary is None or slot is None:
        yield summary
        return
    with memoryview(slots[slot]) as whole, whole[:length] as encoded:
        yield dataclasses.replace(summary, encoded=encoded)
