"""How worker pools start: fork only in a single-threaded Linux process."""

from __future__ import annotations

import threading

from customer_model_factory._processes import start_method, worker_context


def test_start_method() -> None:
    every = ["fork", "forkserver", "spawn"]
    assert start_method(every, 1, "linux") == "fork"
    assert start_method(every, 2, "linux") == "forkserver"  # never fork a threaded process
    assert start_method(every, 1, "darwin") == "forkserver"
    assert start_method(["fork", "spawn"], 2, "linux") == "spawn"
    assert start_method(["spawn"], 1, "win32") == "spawn"


def test_worker_context_follows_the_threads_running_now() -> None:
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        assert worker_context().get_start_method() != "fork"
    finally:
        stop.set()
        helper.join()
