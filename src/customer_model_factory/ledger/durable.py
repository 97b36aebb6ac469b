"""Durable-write primitives: fsync files and directories, create files and directories safely.

A rename or a new directory entry is durable only once its parent directory is fsynced; file
contents are durable only once the file is fsynced. These helpers make that discipline explicit
so that callers can order their barriers (data first, then whatever points at it).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from .._jsonfile import atomic_write_bytes

# Enough concurrent fsyncs for the filesystem journal to group them into few commits, few
# enough not to swamp a shared machine.
_FSYNC_THREADS = 16
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _fsync_pool() -> ThreadPoolExecutor:
    """Return the process-wide fsync thread pool, created on first use.

    Starting threads costs milliseconds on a busy machine, more than a small commit's fsyncs,
    so the pool lives as long as the process.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_FSYNC_THREADS, thread_name_prefix="cmf-fsync")
        return _pool


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
    if len(unique) <= 1:
        for path in unique:
            fsync_path(path)
        return
    futures = [_fsync_pool().submit(fsync_path, path) for path in unique]
    wait(futures)
    for future in futures:
        future.result()  # re-raises the first failure


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
