"""Crash safety: SIGKILL a writer at random moments; nothing acknowledged is ever lost.

A child process records entries in random-sized batches and prints the log size after each
commit returns (an acknowledgement). The test kills it at random instants, many times over the
same ledger, and after each kill checks that the ledger opens, every acknowledged entry is
there with its content, the latest checkpoint verifies and is not ahead of the log, and (every
few rounds, and at the end) that fsck finds nothing at all.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from customer_model_factory.ledger.checkpoint import open_checkpoint
from customer_model_factory.ledger.fsck import fsck
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.store import Ledger

ORIGIN = "ledger.example/crash"
LOG_KEY = PrivateKey.from_seed(bytes(range(32)))
ROUNDS = 30
FSCK_EVERY = 5

_CHILD = """
import random, sys
from pathlib import Path
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.store import Ledger

path, seed = Path(sys.argv[1]), int(sys.argv[2])
log_key = PrivateKey.from_seed(bytes(range(32)))
signer = PrivateKey.from_seed(b"s" * 32)
rng = random.Random(seed)
print("ready", flush=True)
with Ledger.open(path) as ledger, ledger.writer(log_key=log_key, wait=30) as writer:
    while True:
        for _ in range(rng.randint(1, 8)):
            index = ledger.size + writer.pending
            blob_id = writer.put_blob(f"entry-{index}".encode())
            writer.record(kind="crash", blob_id=blob_id, parents=(), signers=[signer],
                          time="2026-01-01T00:00:00Z", tool_version="crash-test")
        writer.commit()
        print(ledger.size, flush=True)
"""


def _run_and_kill(path: Path, seed: int, delay: float) -> list[int]:
    """Start a writer, SIGKILL it ``delay`` seconds after it is ready; return its acks."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    ready = child.stdout.readline().strip()
    if ready == "ready":
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
    output, errors = child.communicate()
    assert ready == "ready" and child.returncode == -signal.SIGKILL, (
        f"the writer died on its own (exit {child.returncode}): {errors}"
    )
    return [int(line) for line in output.split()]


def _check_after_crash(path: Path, acknowledged: int) -> None:
    """The ledger opens, holds every acknowledged entry, and its checkpoint is sound."""
    with Ledger.open(path) as ledger:
        assert ledger.size >= acknowledged
        for entry in ledger.entries():
            assert ledger.objects.get(entry.blob_id) == f"entry-{entry.index}".encode()
        latest = ledger.latest_checkpoint_size()
        assert latest is not None or acknowledged == 0
        if latest is not None:
            assert acknowledged <= latest <= ledger.size
            checkpoint, _ = open_checkpoint(
                ledger.latest_checkpoint(), origin=ORIGIN, key=LOG_KEY.public_key
            )
            assert checkpoint.size == latest
            assert checkpoint.root_hash == ledger.root(latest)


def test_sigkill_at_random_moments_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    Ledger.create(path, origin=ORIGIN, log_key=LOG_KEY.public_key).close()
    rng = random.Random(20261127)
    acknowledged = 0
    for round_number in range(ROUNDS):
        acks = _run_and_kill(path, seed=round_number, delay=rng.uniform(0.0, 0.12))
        assert acks == sorted(acks)
        assert all(ack >= acknowledged for ack in acks)  # no acknowledged entry was lost
        acknowledged = max([acknowledged, *acks])
        _check_after_crash(path, acknowledged)
        if round_number % FSCK_EVERY == FSCK_EVERY - 1:
            with Ledger.open(path) as ledger:
                assert fsck(ledger, jobs=1) == []
    assert acknowledged > 0, "the writer never got to commit: the test exercised nothing"
    # A writer started after all those crashes finishes the last interrupted commit cleanly.
    with Ledger.open(path) as ledger:
        with ledger.writer(log_key=LOG_KEY) as writer:
            note = writer.commit()
        checkpoint, _ = open_checkpoint(note, origin=ORIGIN, key=LOG_KEY.public_key)
        assert checkpoint.size == ledger.size == ledger.latest_checkpoint_size()
        assert ledger.state.indexed == ledger.size
        assert fsck(ledger, jobs=1) == []
        # Killed batches leave temp files behind; they are garbage, and removable.
        with ledger.writer(log_key=LOG_KEY) as writer:
            writer.remove_stale_temp_files()
        assert list(ledger.objects.temp_files()) == []
        assert fsck(ledger, jobs=1) == []
