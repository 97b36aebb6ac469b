"""Benchmark: streaming validation of a large JSONL trace file against plain ``json.loads``.

Generates (once, reused afterwards) a synthetic trace file under ``benchmarks/_data/`` with
realistic field sizes (prompts and responses of a few hundred characters, reference lists,
sector metadata) and a sprinkling of rows that trigger findings. Then, in the same run:

  (a) baseline: ``json.loads`` of every line with the standard library;
  (b) ``validate_trace_file`` with the sector profile on: strict parsing, every rule, both
      hashes (``dataset_hash`` and the per-split semantic fingerprints), every finding.

(b) runs in a child process so that its peak memory (``ru_maxrss`` of the child) is its own.
Prints both times, the ratio (b)/(a) against the target 2.0, and (b)'s peak memory against
500 MB. Usage::

    python benchmarks/bench_dataset.py               # 1,000,000 rows (~1 GB)
    python benchmarks/bench_dataset.py --rows 50000  # quicker
    python benchmarks/bench_dataset.py --rows 50000 --profile   # where (b) spends its time
"""

from __future__ import annotations

import argparse
import cProfile
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

from customer_model_factory.dataset_contract import (
    CustomerDatasetValidationReport,
    CustomerWorkspace,
)
from customer_model_factory.trace_files import validate_trace_file

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


def run_validation(path: Path, profile: bool) -> None:
    """(b), in this process: validate, then print timings and a summary as one JSON line."""
    profiler = cProfile.Profile() if profile else None
    reports: list[CustomerDatasetValidationReport] = []

    def work() -> None:
        if profiler is not None:
            profiler.enable()
        reports.append(validate_trace_file(path, WORKSPACE, vertical_profile=SECTOR_PROFILE))
        if profiler is not None:
            profiler.disable()

    timing = _measure(work)
    report = reports[0]
    codes: dict[str, int] = {}
    for finding in report.findings:
        codes[finding.code] = codes.get(finding.code, 0) + 1
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(18)
    summary = {
        "wall": timing.wall,
        "cpu": timing.cpu,
        "rows": report.row_count,
        "ready": report.ready,
        "dataset_hash": report.dataset_hash,
        "finding_codes": codes,
    }
    print(json.dumps(summary))


def child_validation(path: Path, profile: bool) -> dict[str, Any]:
    """Run (b) in a child process and return its summary line."""
    command = [sys.executable, __file__, "--child", str(path)]
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


def main() -> None:
    """Parse arguments, run (a) and (b), print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs; best is kept")
    parser.add_argument("--profile", action="store_true", help="cProfile (b); slows it down")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        run_validation(args.child, args.profile)
        return
    path = data_file(args.rows)
    size_mb = os.path.getsize(path) / 1e6
    _loads_every_line(path)  # warm the page cache so neither side pays for the disk
    # Shared machines are noisy: interleave the runs and keep the best of each side. CPU time
    # is the figure compared, since other processes stretch wall time but not our CPU time.
    bases: list[Timing] = []
    runs: list[Timing] = []
    for _ in range(max(1, args.repeat)):
        bases.append(_measure(lambda: _loads_every_line(path)))
        summary = child_validation(path, args.profile)
        runs.append(Timing(float(summary["wall"]), float(summary["cpu"])))
    # ru_maxrss of RUSAGE_CHILDREN is the peak of the largest child waited for (KiB on Linux).
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    base, best = min(bases, key=lambda t: t.cpu), min(runs, key=lambda t: t.cpu)
    ratio = best.cpu / base.cpu
    print(f"file: {path.name} ({summary['rows']:,} rows, {size_mb:,.0f} MB)")
    print("seconds, cpu/wall; best of each side by cpu:")
    print(
        f"(a) json.loads per line (baseline): {base.cpu:7.2f}/{base.wall:.2f}  all: {_runs(bases)}"
    )
    print(
        f"(b) validate_trace_file:            {best.cpu:7.2f}/{best.wall:.2f}  all: {_runs(runs)}"
    )
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    wall_ratio = best.wall / base.wall
    print(
        f"ratio (b)/(a), cpu: {ratio:.2f} ({verdict} target {TARGET_RATIO}); wall: {wall_ratio:.2f}"
    )
    verdict = "meets" if peak_mb <= TARGET_PEAK_MB else "misses"
    print(f"peak RSS of (b): {peak_mb:,.0f} MB ({verdict} target {TARGET_PEAK_MB:.0f} MB)")
    print(f"findings: {summary['finding_codes']}  ready={summary['ready']}")
    print(f"dataset_hash: {summary['dataset_hash']}")


if __name__ == "__main__":
    main()
