"""Durable-write primitives: fsync files and directories, create files and directories safely.

A rename or a new directory entry is durable only once its parent directory is fsynced; file
contents are durable only once the file is fsynced. These helpers make that discipline explicit
so that callers can order their barriers (data first, then whatever points at it).

``concurrent.futures`` (which loads ``logging``) is imported when the first job is submitted,
not with this module: commands that only read and verify never start the pool and should not
pay its start-up.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._jsonfile import atomic_write_bytes

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

# Enough concurrent fsyncs (and file creations) for the filesystem journal to group them into
# few commits, few enough not to swamp a shared machine.
IO_THREADS = 16
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_T = TypeVar("_T")


def _fsync_pool() -> ThreadPoolExecutor:
    """Return the process-wide I/O thread pool, created on first use.

    Starting threads costs milliseconds on a busy machine, more than a small commit's fsyncs,
    so the pool lives as long as the process. Its jobs never wait for other jobs of the pool,
    so it cannot deadlock.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor  # lazy: see the module docstring

            _pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="cmf-fsync")
        return _pool


def submit(fn: Callable[..., _T], /, *args: object) -> Future[_T]:
    """Start ``fn(*args)`` on the process-wide I/O thread pool; return its future.

    For blocking file work (create, write, fsync) that may overlap with the caller's own work.
    ``fn`` must not wait for other jobs of the pool.
    """
    return _fsync_pool().submit(fn, *args)


def run_concurrently(calls: Iterable[Callable[[], _T]]) -> list[_T]:
    """Run every call on the I/O thread pool; return their results once all have finished.

    Raises the first failure (in the order given) once every call has finished, so nothing is
    still running when the caller handles the error. A single call runs in the calling thread.
    """
    pending = list(calls)
    if len(pending) <= 1:
        return [call() for call in pending]
    return results(_fsync_pool().submit(call) for call in pending)


def results(futures: Iterable[Future[_T]]) -> list[_T]:
    """Wait for every future; return their results, or raise the first failure (in order).

    Nothing is still running when this raises, so the caller may clean up after the jobs.
    """
    waiting = list(futures)
    wait(waiting)
    return [future.result() for future in waiting]


def wait(futures: Iterable[Future[Any]]) -> None:
    """Block until every future in ``futures`` is done (finished, failed or cancelled).

    ``concurrent.futures.wait`` with ``ALL_COMPLETED``, imported here so that modules using
    the pool need not import ``concurrent.futures`` themselves (see the module docstring).
    """
    from concurrent.futures import wait as wait_all

    wait_all(futures)


def _forget_pool_in_child() -> None:
    """A forked child has none of the parent's threads: never reuse the parent's pool."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)


def fsync_path(path: Path) -> None:
    """Flush one file or directory to stable storage (``fsync`` on a read-only descriptor)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_paths(paths: Iterable[Path]) -> None:
    """Flush many files or directories; concurrently, so the journal can batch the commits.

    Returns only when every path is durable; raises the first failure (after all were tried).
    """
    unique = list(dict.fromkeys(paths))
    run_concurrently(functools.partial(fsync_path, path) for path in unique)


def make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and missing ancestors; return the parents whose entries must be fsynced.

    The returned list is what a caller passes to ``fsync_paths`` so that the new directories
    survive a crash.
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        # Another process may create it concurrently; that is fine, it exists either way.
        with contextlib.suppress(FileExistsError):
            directory.mkdir()
    return [directory.parent for directory in reversed(missing)]


def ensure_dir(path: Path) -> None:
    """Create ``path`` (and ancestors) durably: every new directory entry is fsynced."""
    fsync_paths(make_dirs(path))


def replace_file(path: Path, data: bytes) -> Path:
    """Atomically, durably replace ``path`` with ``data`` (temp, fsync, rename, fsync dir)."""
    ensure_dir(path.parent)
    return atomic_write_bytes(path, data)


def truncate_file(path: Path, size: int) -> None:
    """Truncate ``path`` to ``size`` bytes and make the new length durable."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
