"""The exclusive writer lock of a ledger: ``flock`` on the file ``<ledger>/lock``.

``flock`` locks belong to the open file description, so the kernel releases the lock when the
holder exits or is killed: a crashed writer never leaves a stale lock. While held, the file
contains the holder's pid (for the error message of the next writer); it is emptied on release
so that a quiescent ledger's bytes do not depend on who wrote last.
"""

from __future__ import annotations

import fcntl
import math
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from .errors import LockError

_FIRST_POLL = 0.001
_MAX_POLL = 0.05


def read_holder_pid(path: Path) -> int | None:
    """Return the pid recorded in the lock file at ``path``, or None if absent or unreadable."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _try_flock(fd: int) -> bool:
    """Take an exclusive flock on ``fd`` without waiting; return whether it was granted."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class WriterLock:
    """An exclusive, crash-released lock on one file. Not re-entrant."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Return True while this object holds the lock."""
        return self._fd is not None

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting at most ``timeout`` seconds; LockError naming the holder if not.

        ``timeout`` 0 means try once. The holder's pid is included when the file holds one.
        """
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout >= 0):
            raise ValueError(f"lock timeout must be a finite number >= 0, got {timeout!r}")
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: this lock object already holds the lock")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._wait(fd, timeout)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _wait(self, fd: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        poll = _FIRST_POLL
        while not _try_flock(fd):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pid = read_holder_pid(self.path)
                holder = f"pid {pid}" if pid is not None else "pid unknown"
                raise LockError(
                    f"{self.path}: another writer holds the ledger lock ({holder}); "
                    f"gave up after {timeout:g} s"
                )
            time.sleep(min(poll, remaining))
            poll = min(poll * 2, _MAX_POLL)

    def release(self) -> None:
        """Empty the pid record and release the lock; a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            # Closing the descriptor drops the flock even if the truncate failed.
            os.close(fd)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
