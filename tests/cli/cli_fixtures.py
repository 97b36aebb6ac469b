"""Shared helpers of the CLI tests: running ``cmf``, the demo ledgers, the example keys.

The fixtures (conftest.py) build the demo ledgers once per session with the real pipeline, and
each test works on a copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from customer_model_factory.cli import cli
from customer_model_factory.pipeline import (
    DEMO_TIMES,
    DemoKeys,
    DemoStage,
    build_factory,
    record_demo,
    tool_version,
)

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "keys-example"
EXAMPLES = REPO / "examples"
COMMITTED_LEDGER = REPO / "ledger"
RELEASE_ID = "nw-claims-guard-2026.11.0"
AS_OF = DEMO_TIMES["promotion"]  # the demo's clock: verify as of the promotion
ROOT_PUB = KEYS / "INSECURE-root.pub"
LOG_KEY = KEYS / "INSECURE-log.pem"


def key(name: str) -> Path:
    """Return the private key file of keys-example/INSECURE-<name>.pem."""
    return KEYS / f"INSECURE-{name}.pem"


# --- running the CLI ---------------------------------------------------------------------------


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """Run ``cmf args`` in-process (click's CliRunner), stdout and stderr kept apart."""
    runner = CliRunner()
    return runner.invoke(cli, [str(arg) for arg in args], env=env, catch_exceptions=False)


def run_cmf(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m customer_model_factory.cli args`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "customer_model_factory.cli", *(str(arg) for arg in args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=300,
    )


def json_out(result: Result) -> Any:
    """Parse a command's JSON stdout."""
    return json.loads(result.stdout)


def codes(document: dict[str, Any]) -> list[str]:
    """Return the finding codes of a ``--json`` report, in order."""
    return [finding["code"] for finding in document["findings"]]


def assert_one_error_line(result: Result | subprocess.CompletedProcess[str], *needles: str) -> None:
    """Assert exit 2 and exactly one ``cmf: error:`` line on stderr containing every needle."""
    code = result.exit_code if isinstance(result, Result) else result.returncode
    assert code == 2, (code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("cmf: error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in result.stderr


# --- the demo ledgers --------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoLedger:
    """A demo ledger built for the tests, and the blob ids of its stages by kind."""

    path: Path
    stages: tuple[DemoStage, ...]

    def blob(self, kind: str, n: int = 0) -> str:
        """Return the blob id of the ``n``-th stage of ``kind``."""
        return [stage.blob_id for stage in self.stages if stage.kind == kind][n]

    @property
    def gate(self) -> str:
        """The release gate's blob id."""
        return self.blob("release_gate")

    def copy(self, target: Path) -> Path:
        """Copy the ledger to ``target`` (blob files stay read-only) and return it."""
        shutil.copytree(self.path, target)
        return target


def build_demo_ledger(path: Path, *, promote: bool) -> DemoLedger:
    """Build the demo ledger at ``path`` (promoted or not) with the repository's examples."""
    run = build_factory(EXAMPLES)
    stages = record_demo(path, run, DemoKeys.load(KEYS), tool_version(), promote=promote)
    return DemoLedger(path, tuple(stages))


def promote_args(ledger: Path, release: str, *keys: Path, extra: Sequence[str] = ()) -> list[str]:
    """Return the arguments of ``cmf release promote`` pinned to the demo root, as of the demo."""
    args = ["release", "promote", release, "--ledger", str(ledger), "--trust", str(ROOT_PUB)]
    args += ["--log-key", str(LOG_KEY), "--as-of", AS_OF, "--time", AS_OF, "--json"]
    for path in keys:
        args += ["--key", str(path)]
    return [*args, *extra]


def cat_to(ledger: Path, blob_id: str, target: Path) -> Path:
    """Write blob ``blob_id`` of ``ledger`` to ``target`` with ``cmf cat``; return the path."""
    result = invoke("cat", blob_id, "--ledger", ledger)
    assert result.exit_code == 0, result.stderr
    target.write_bytes(result.stdout_bytes)
    return target


def ledger_files(path: Path) -> dict[str, bytes]:
    """Return every file below ``path`` (relative name -> bytes)."""
    return {
        str(file.relative_to(path)): file.read_bytes()
        for file in sorted(path.rglob("*"))
        if file.is_file()
    }
