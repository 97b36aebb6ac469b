"""How worker pools start their processes: by fork only while forking is safe."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext


def start_method(available: Sequence[str], threads: int, platform: str) -> str:
    """``fork`` on Linux while the process runs a single thread (cheap, and then safe), else
    ``forkserver`` or ``spawn``: forking a threaded process can copy a lock another thread
    holds (Python 3.12 warns of it), and macOS system libraries do not survive a fork."""
    if "fork" in available and threads == 1 and platform.startswith("linux"):
        return "fork"
    return "forkserver" if "forkserver" in available else "spawn"


def worker_context() -> BaseContext:
    """Return the multiprocessing context for a pool started now, by ``start_method``."""
    import multiprocessing  # only the callers that start workers pay for it

    available = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context(
        start_method(available, threading.active_count(), sys.platform)
    )
