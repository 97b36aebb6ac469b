"""Benchmark the log store: proof latency at 1M leaves, O(1) open, append throughput.

Run from the repository root::

    python benchmarks/bench_proofs.py            # 1,000,000 leaves (built once, then reused)
    python benchmarks/bench_proofs.py --size 100000 --samples 300   # a quicker run

The large log is kept under ``benchmarks/_data/`` (git-ignored) and reused by later runs;
building it is resumable. Machines are noisy, so every figure is printed next to a baseline
measured in the same run: one ``hashlib.sha256`` of 64 bytes (the cost of one Merkle node).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from customer_model_factory.ledger.logstore import LogStore
from customer_model_factory.ledger.merkle import verify_consistency, verify_inclusion

DATA = Path(__file__).resolve().parent / "_data"
TARGET_PROOF_SECONDS = 1e-3


def leaf_record(index: int) -> bytes:
    """A leaf shaped like a real ledger record (about 150 bytes)."""
    blob = hashlib.sha256(b"blob %d" % index).hexdigest().encode()
    envelope = hashlib.sha256(b"envelope %d" % index).hexdigest().encode()
    return b"cmf-leaf/v1\ntraining_manifest\n" + blob + b"\n" + envelope + b"\n"


def ensure_log(directory: Path, size: int) -> float:
    """Open (or build, resuming) a log of exactly ``size`` leaves; return seconds spent building."""
    started = time.perf_counter()
    with LogStore(directory) as store:
        if store.size > size:
            raise SystemExit(f"{directory} holds {store.size} leaves, more than {size}")
        for index in range(store.size, size):
            store.append(leaf_record(index))
            if (index + 1) % 100_000 == 0:
                store.sync()
                print(f"  built {index + 1:,} / {size:,}", file=sys.stderr)
    return time.perf_counter() - started


def per_call(function: Callable[[], object], repeat: int = 7, number: int = 20_000) -> float:
    """Median seconds per call over ``repeat`` timing rounds of ``number`` calls."""
    rounds = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            function()
        rounds.append((time.perf_counter() - started) / number)
    return statistics.median(rounds)


def median_of(samples: list[float]) -> float:
    return statistics.median(samples)


def time_proofs(store: LogStore, samples: int, rng: random.Random) -> dict[str, float]:
    """Median seconds of inclusion proof generation, verification, and both; and consistency."""
    size, root = store.size, store.root()
    generate, verify, both, consistency = [], [], [], []
    for _ in range(samples):
        index = rng.randrange(size)
        started = time.perf_counter()
        proof = store.inclusion_proof(index, size)
        leaf = store.leaf_hash(index)
        generated = time.perf_counter()
        verify_inclusion(leaf, index, size, proof, root)
        done = time.perf_counter()
        generate.append(generated - started)
        verify.append(done - generated)
        both.append(done - started)
    for _ in range(max(samples // 4, 10)):
        old = rng.randrange(1, size)
        started = time.perf_counter()
        old_root = store.root(old)
        proof = store.consistency_proof(old, size)
        verify_consistency(old, size, proof, old_root, root)
        consistency.append(time.perf_counter() - started)
    return {
        "generate": median_of(generate),
        "verify": median_of(verify),
        "both": median_of(both),
        "consistency": median_of(consistency),
    }


def time_open(directory: Path, rounds: int) -> float:
    """Median seconds to open and close the log (which includes checking its committed root)."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        LogStore(directory).close()
        samples.append(time.perf_counter() - started)
    return median_of(samples)


def time_appends(directory: Path, count: int, synced: int) -> tuple[float, float]:
    """Return (buffered appends per second incl. one final sync, synced appends per second)."""
    shutil.rmtree(directory, ignore_errors=True)
    leaves = [leaf_record(index) for index in range(count + synced)]
    try:
        with LogStore(directory) as store:
            started = time.perf_counter()
            for leaf in leaves[:count]:
                store.append(leaf)
            store.sync()
            buffered = count / (time.perf_counter() - started)
            started = time.perf_counter()
            for leaf in leaves[count:]:
                store.append(leaf)
                store.sync()
            each_synced = synced / (time.perf_counter() - started)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return buffered, each_synced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="leaves in the large log")
    parser.add_argument("--small", type=int, default=1_000, help="leaves in the small log")
    parser.add_argument("--samples", type=int, default=2_000, help="random proofs to time")
    parser.add_argument("--appends", type=int, default=100_000, help="buffered appends to time")
    parser.add_argument("--synced", type=int, default=200, help="appends each followed by sync")
    args = parser.parse_args()

    large, small = DATA / f"log-{args.size}", DATA / f"log-{args.small}"
    built = ensure_log(large, args.size)
    ensure_log(small, args.small)
    rng = random.Random(9162)
    node = bytes(64)
    baseline = per_call(lambda: hashlib.sha256(node).digest())

    with LogStore(large) as store:
        proofs = time_proofs(store, args.samples, rng)
    open_large, open_small = time_open(large, 50), time_open(small, 50)
    buffered, synced = time_appends(DATA / "append-scratch", args.appends, args.synced)

    def show(name: str, seconds: float) -> None:
        print(f"{name:<44} {seconds * 1e6:>10.1f} us   {seconds / baseline:>9.0f} x sha256")

    print(f"log size {args.size:,} leaves ({f'built in {built:.1f} s' if built > 1 else 'reused'})")
    show("baseline: sha256 of 64 bytes", baseline)
    show("inclusion proof: generate (median)", proofs["generate"])
    show("inclusion proof: verify (median)", proofs["verify"])
    show("inclusion proof: generate + verify (median)", proofs["both"])
    show("consistency proof: root+generate+verify", proofs["consistency"])
    verdict = "meets" if proofs["both"] < TARGET_PROOF_SECONDS else "MISSES"
    print(f"  -> {verdict} the 1 ms target ({proofs['both'] / TARGET_PROOF_SECONDS:.3f} of it)")
    show(f"open at {args.size:,} leaves (median)", open_large)
    show(f"open at {args.small:,} leaves (median)", open_small)
    print(
        f"  -> open time ratio {args.size:,} / {args.small:,} leaves: "
        f"{open_large / open_small:.2f} (O(1) open: ~1)"
    )
    show("append, buffered (per leaf, incl. final sync)", 1 / buffered)
    print(f"  -> {buffered:,.0f} appends/s buffered; {synced:,.0f} appends/s with a sync each")


if __name__ == "__main__":
    main()
