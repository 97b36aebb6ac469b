"""Tests for the flock-based writer lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from customer_model_factory.ledger.errors import LockError
from customer_model_factory.ledger.lock import WriterLock, read_holder_pid

_HOLDER = """
import sys, time
from pathlib import Path
from customer_model_factory.ledger.lock import WriterLock
lock = WriterLock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def _start_holder(path: Path, hold: float = 60.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(hold)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_lock_in_same_process_is_refused_then_granted(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    first, second = WriterLock(path), WriterLock(path)
    first.acquire()
    assert first.held
    assert read_holder_pid(path) == os.getpid()
    with pytest.raises(LockError, match=f"pid {os.getpid()}"):
        second.acquire(timeout=0.05)
    assert not second.held
    first.release()
    assert path.read_bytes() == b""  # emptied on release
    second.acquire()
    second.release()


def test_lock_held_by_another_process_names_its_pid(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    proc = _start_holder(path)
    try:
        expected = f"another writer holds the ledger lock \\(pid {proc.pid}\\)"
        with pytest.raises(LockError, match=expected):
            WriterLock(path).acquire(timeout=0.1)
    finally:
        proc.kill()
        proc.wait()


def test_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    proc = _start_holder(path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert read_holder_pid(path) == proc.pid  # stale record, but no stale lock
    lock = WriterLock(path)
    lock.acquire(timeout=5.0)
    assert read_holder_pid(path) == os.getpid()
    lock.release()


def test_bounded_wait_succeeds_when_holder_releases(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    proc = _start_holder(path, hold=0.3)
    lock = WriterLock(path)
    lock.acquire(timeout=30.0)  # waits for the holder's release
    assert lock.held
    assert read_holder_pid(path) == os.getpid()
    lock.release()
    proc.wait()


def test_unreadable_pid_is_reported_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    holder = WriterLock(path)
    holder.acquire()
    path.write_text("garbage")
    assert read_holder_pid(path) is None
    with pytest.raises(LockError, match="pid unknown"):
        WriterLock(path).acquire()
    holder.release()


@pytest.mark.parametrize("timeout", [-1.0, float("nan"), float("inf")])
def test_invalid_timeouts_are_refused(tmp_path: Path, timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        WriterLock(tmp_path / "lock").acquire(timeout)


def test_lock_is_not_reentrant_and_release_is_idempotent(tmp_path: Path) -> None:
    with WriterLock(tmp_path / "lock") as lock, pytest.raises(RuntimeError):
        lock.acquire()
    assert not lock.held
    lock.release()
