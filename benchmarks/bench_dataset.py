"""Benchmark: validation of a large JSONL trace file against plain ``json.loads``.

Generates (once, reused afterwards) a synthetic trace file under ``benchmarks/_data/`` with
realistic field sizes (prompts and responses of a few hundred characters, reference lists,
sector metadata) and a sprinkling of rows that trigger findings. Then, in the same run:

  (a) baseline: ``json.loads`` of every line with the standard library, one process;
  (b) ``validate_trace_file`` with the sector profile on (strict parsing, every rule, both
      hashes, every finding), ``jobs`` automatic: worker processes on every core;
  (c) the same with ``jobs=1``: the sequential engine, for its CPU cost and as the oracle.

(b) and (c) run in child processes, so that their memory is their own. Prints the times, the
wall-clock ratio (b)/(a) against the target 2.0, the CPU ratios, whether (b) and (c) gave the
same report (byte for byte), and (b)'s peak memory (its main process plus its largest worker
times the worker count: an upper bound, shared pages counted twice) against 500 MB. Usage::

    python benchmarks/bench_dataset.py               # 1,000,000 rows (~1.25 GB)
    python benchmarks/bench_dataset.py --rows 50000  # quicker
    python benchmarks/bench_dataset.py --rows 50000 --jobs 1 --profile  # where (c) spends
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from customer_model_factory._jsonfile import manifest_bytes
from customer_model_factory.dataset_contract import (
    CustomerDatasetValidationReport,
    CustomerWorkspace,
)
from customer_model_factory.trace_files import validate_trace_file
from customer_model_factory.trace_parallel import automatic_jobs

DATA_DIR = Path(__file__).resolve().parent / "_data"
TARGET_RATIO = 2.0
TARGET_PEAK_MB = 500.0
SECTOR_PROFILE = "regulated-sector"
SEED = 20240601
GENERATOR_VERSION = 3  # bump when the row shape changes, so stale files are not reused

WORKSPACE = CustomerWorkspace(
    customer_id="cust-bench",
    workspace_id="ws-bench",
    tenant_id="tenant-bench",
    data_classification="confidential",
    allowed_splits=("train", "eval", "test"),
)

_VOCABULARY = (
    "account balance transfer policy customer request statement limit review escalate "
    "approve document evidence regulation compliance contract clause interest rate fee "
    "schedule payment card fraud alert identity verification address record history "
    "report quarter annual summary question answer reference section paragraph table "
    "figure amount currency exchange settlement margin portfolio risk exposure rating "
    "guideline procedure exception approval manager analyst reviewer audit trail log"
)
_WORDS = tuple(_VOCABULARY.split())


def _text(rng: random.Random, words: int) -> str:
    """Return ``words`` pseudo-random words (a few hundred characters for 25-45 words)."""
    return " ".join(rng.choices(_WORDS, k=words))


def synthetic_row(index: int, rng: random.Random) -> dict[str, object]:
    """Return trace row ``index``: valid, except for a deterministic ~0.2% with findings."""
    split = ("train",) * 8 + ("eval", "test")
    severity = rng.choice(("low", "medium", "medium", "high", "critical"))
    decision = "escalate" if severity in ("high", "critical") else rng.choice(("approve", "block"))
    prompt = f"Q{index}: {_text(rng, rng.randint(25, 45))}?"
    response = f"A{index}: {_text(rng, rng.randint(25, 45))}."
    if index % 997 == 5:  # an exact duplicate of the previous row's pair: within-split or across
        prompt, response = f"Q{index - 1}: dup", f"A{index - 1}: dup"
    if index % 997 == 4:
        prompt, response = f"Q{index}: dup", f"A{index}: dup"
    row: dict[str, object] = {
        "trace_id": f"trace-{index:09d}",
        "customer_id": WORKSPACE.customer_id,
        "tenant_id": WORKSPACE.tenant_id,
        "split": split[index % len(split)],
        "prompt": prompt,
        "response": response,
        "expected_decision": decision,
        "severity": severity,
        "label": rng.choice(("safe", "unsafe", "needs_review")),
        "source_refs": [
            f"kb://docs/{rng.randrange(10**6):06d}#p{rng.randrange(40)}"
            for _ in range(rng.randint(1, 3))
        ],
        "policy_refs": [f"policy://guardrails/{rng.randrange(500):03d}"],
        "reviewer_role": rng.choice(("analyst", "compliance_officer", "reviewer")),
        "observed_at": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
        "contains_pii": False,
        "contains_secret": False,
        "redaction_status": "not_required",
        "metadata": {
            "sector_class": rng.choice(("retail", "wholesale", "insurance")),
            "knowledge_class": rng.choice(("product", "policy", "procedure")),
            "jurisdiction": rng.choice(("CH", "EU", "UK")),
            "requires_citation": True,
            "evidence_refs": [f"kb://evidence/{rng.randrange(10**6):06d}"],
            "requires_escalation": severity in ("high", "critical"),
        },
    }
    if index % 1009 == 7:
        row["contains_pii"] = "true"  # flag_not_boolean
    if index % 1013 == 9:
        row["expected_decision"], row["severity"] = "approve", "critical"  # warning
    return row


def data_file(rows: int) -> Path:
    """Return the path of the synthetic file with ``rows`` rows, generating it if missing."""
    path = DATA_DIR / f"traces-v{GENERATOR_VERSION}-{rows}.jsonl"
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    tmp = path.with_suffix(".tmp")
    started = time.perf_counter()
    with tmp.open("w", encoding="utf-8") as handle:
        for index in range(rows):
            handle.write(json.dumps(synthetic_row(index, rng)) + "\n")
    tmp.replace(path)
    print(f"generated {path.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


class Timing(NamedTuple):
    """Wall-clock and CPU seconds (user + system) of one run."""

    wall: float
    cpu: float


def _measure(work: Callable[[], object]) -> Timing:
    """Run ``work`` once and time it."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def _loads_every_line(path: Path) -> None:
    """(a): ``json.loads`` of every line with the standard library, nothing else."""
    with path.open("rb") as handle:
        for line in handle:
            json.loads(line)


def run_validation(path: Path, jobs: int, profile: bool) -> None:
    """(b) or (c), in this process: validate, then print timings and a summary as one JSON line.

    CPU time includes the worker processes (reaped, so counted in RUSAGE_CHILDREN).
    """
    profiler = cProfile.Profile() if profile else None
    reports: list[CustomerDatasetValidationReport] = []

    def work() -> None:
        if profiler is not None:
            profiler.enable()
        reports.append(
            validate_trace_file(path, WORKSPACE, vertical_profile=SECTOR_PROFILE, jobs=jobs)
        )
        if profiler is not None:
            profiler.disable()

    workers_before = _children_cpu()
    timing = _measure(work)
    workers_cpu = _children_cpu() - workers_before
    report = reports[0]
    codes: dict[str, int] = {}
    for finding in report.findings:
        codes[finding.code] = codes.get(finding.code, 0) + 1
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(18)
    summary = {
        "wall": timing.wall,
        "cpu": timing.cpu + workers_cpu,
        "rows": report.row_count,
        "ready": report.ready,
        "dataset_hash": report.dataset_hash,
        "report_sha256": hashlib.sha256(manifest_bytes(report.to_dict())).hexdigest(),
        "finding_codes": codes,
        "main_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # ru_maxrss of RUSAGE_CHILDREN: the largest worker's peak (KiB on Linux).
        "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    print(json.dumps(summary))


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's reaped children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_validation(path: Path, jobs: int, profile: bool) -> dict[str, Any]:
    """Run (b) or (c) in a child process and return its summary line."""
    command = [sys.executable, __file__, "--child", str(path), "--jobs", str(jobs)]
    if profile:
        command.append("--profile")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    if done.stderr:
        print(done.stderr, file=sys.stderr, end="")
    summary: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return summary


def _runs(timings: list[Timing]) -> str:
    """Format every run as ``cpu/wall``."""
    return " ".join(f"{t.cpu:.2f}/{t.wall:.2f}" for t in timings)


def _best(summaries: list[dict[str, Any]]) -> Timing:
    """The fastest run by wall time (the figure the target is set in)."""
    return min((Timing(float(s["wall"]), float(s["cpu"])) for s in summaries), key=lambda t: t.wall)


def _all(summaries: list[dict[str, Any]]) -> list[Timing]:
    """Every run's timing."""
    return [Timing(float(s["wall"]), float(s["cpu"])) for s in summaries]


def main() -> None:
    """Parse arguments, run (a), (b) and (c), print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs; best is kept")
    parser.add_argument("--jobs", type=int, default=0, help="jobs for (b); 0: automatic")
    parser.add_argument("--no-sequential", action="store_true", help="skip (c)")
    parser.add_argument("--profile", action="store_true", help="cProfile (b); slows it down")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        run_validation(args.child, args.jobs, args.profile)
        return
    path = data_file(args.rows)
    size_mb = os.path.getsize(path) / 1e6
    jobs = args.jobs or automatic_jobs(path)
    _loads_every_line(path)  # warm the page cache so neither side pays for the disk
    # Shared machines are noisy: interleave the runs and keep the best of each side.
    bases: list[Timing] = []
    parallel: list[dict[str, Any]] = []
    sequential: list[dict[str, Any]] = []
    for _ in range(max(1, args.repeat)):
        bases.append(_measure(lambda: _loads_every_line(path)))
        parallel.append(child_validation(path, args.jobs, args.profile))
        if not args.no_sequential:
            sequential.append(child_validation(path, 1, False))
    base, best = min(bases, key=lambda t: t.wall), _best(parallel)
    first = parallel[0]
    print(f"file: {path.name} ({first['rows']:,} rows, {size_mb:,.0f} MB)")
    print("seconds, cpu/wall (cpu includes worker processes); best of each side by wall:")
    print(f"(a) json.loads per line:         {base.cpu:7.2f}/{base.wall:.2f}  all: {_runs(bases)}")
    print(
        f"(b) validate_trace_file, jobs={jobs}: {best.cpu:7.2f}/{best.wall:.2f}  "
        f"all: {_runs(_all(parallel))}"
    )
    if sequential:
        seq = _best(sequential)
        print(
            f"(c) validate_trace_file, jobs=1: {seq.cpu:7.2f}/{seq.wall:.2f}  "
            f"all: {_runs(_all(sequential))}"
        )
    ratio = best.wall / base.wall
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"ratio (b)/(a), wall: {ratio:.2f} ({verdict} target {TARGET_RATIO}); ", end="")
    print(f"cpu: {best.cpu / base.cpu:.2f}")
    if sequential:
        print(f"ratio (c)/(a), wall: {seq.wall / base.wall:.2f}; cpu: {seq.cpu / base.cpu:.2f}")
    same = len({s["report_sha256"] for s in parallel + sequential}) == 1
    print(f"reports identical across all runs of (b) and (c): {same}")
    main_mb = max(float(s["main_peak_mb"]) for s in parallel)
    worker_mb = max(float(s["worker_peak_mb"]) for s in parallel) if jobs > 1 else 0.0
    peak_mb = main_mb + jobs * worker_mb
    verdict = "meets" if peak_mb <= TARGET_PEAK_MB else "misses"
    print(
        f"peak RSS of (b): {peak_mb:,.0f} MB = main {main_mb:,.0f} + {jobs if jobs > 1 else 0}"
        f" x worker {worker_mb:,.0f} ({verdict} target {TARGET_PEAK_MB:.0f} MB)"
    )
    print(f"findings: {first['finding_codes']}  ready={first['ready']}")
    print(f"dataset_hash: {first['dataset_hash']}")


if __name__ == "__main__":
    main()
