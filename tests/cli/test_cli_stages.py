"""The stage commands: the whole factory built and recorded step by step with the CLI.

Run on the repository's examples with the example keys, the commands must produce exactly the
manifests the demo records (same bytes, so the same blob ids), record them, and promote.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cli_fixtures import (
    AS_OF,
    EXAMPLES,
    KEYS,
    LOG_KEY,
    RELEASE_ID,
    ROOT_PUB,
    DemoLedger,
    assert_one_error_line,
    codes,
    invoke,
    json_out,
    key,
    promote_args,
)

from customer_model_factory.chain import kinds
from customer_model_factory.pipeline import DEMO_ORIGIN, DEMO_POLICY_EXPIRES, demo_key_names

STAGE_ROLES = [k for k in kinds.STAGE_KINDS if k != "promotion"]


def sha256(path: Path) -> str:
    """Return the SHA-256 hex of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Factory:
    """Runs stage commands against one ledger with the example keys."""

    def __init__(self, ledger: Path, out: Path) -> None:
        self.ledger = ledger
        self.out = out

    def stage(self, *args: str | Path, kind: str, output: str) -> dict[str, object]:
        """Run a stage command with -o/--record/--json; return its JSON summary."""
        result = invoke(
            *args, "-o", self.out / output, "--record", "--key", key(kind),
            "--log-key", LOG_KEY, "--ledger", self.ledger, "--time", AS_OF, "--json",
        )  # fmt: skip
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        summary: dict[str, object] = json_out(result)
        assert summary["blob_id"] == sha256(self.out / output)
        assert summary["recorded"] is not None
        return summary

    def path(self, name: str) -> Path:
        """Return an output file's path."""
        return self.out / name


@pytest.fixture
def cli_ledger(tmp_path: Path) -> Path:
    """A new ledger created and given the demo's trust policy, with the CLI."""
    ledger = tmp_path / "ledger"
    created = invoke("init", "--ledger", ledger, "--origin", DEMO_ORIGIN, "--log-key", LOG_KEY)
    assert created.exit_code == 0, created.stderr
    grants = [
        arg
        for role, names in demo_key_names().items()
        for name in names
        for arg in ("--grant", f"{role}={KEYS / name}.pub")
    ]
    policy = invoke(
        "trust", "init", *grants, "--threshold", "promotion=2", "--expires", DEMO_POLICY_EXPIRES,
        "--key", key("root"), "--log-key", LOG_KEY, "--ledger", ledger, "--time", AS_OF,
    )  # fmt: skip
    assert policy.exit_code == 0, policy.stderr
    return ledger


def test_the_whole_factory_through_the_cli(
    cli_ledger: Path, tmp_path: Path, promoted: DemoLedger
) -> None:
    f = Factory(cli_ledger, tmp_path)
    # Version 1 is byte for byte the demo's policy.
    assert invoke("show", promoted.blob("trust_policy"), "--ledger", cli_ledger).exit_code == 0
    traces = EXAMPLES / "traces.jsonl"
    recorded = invoke(
        "record", "trace_dataset", traces, "--key", key("trace_dataset"), "--log-key", LOG_KEY,
        "--ledger", cli_ledger, "--json",
    )  # fmt: skip
    assert json_out(recorded)["blob_id"] == promoted.blob("trace_dataset")
    ids: dict[str, dict[str, object]] = {}
    ids["dataset_report"] = f.stage(
        "dataset", "validate", traces, "--workspace", EXAMPLES / "workspace.json",
        kind="dataset_report", output="report.json",
    )  # fmt: skip
    ids["training_manifest"] = f.stage(
        "training", "build", "--dataset-report", f.path("report.json"),
        "--config", EXAMPLES / "training.json", kind="training_manifest", output="training.json",
    )  # fmt: skip
    candidates = json.loads((EXAMPLES / "benchmarks.json").read_text())["candidates"]
    for n, candidate in enumerate(candidates):
        config = tmp_path / f"candidate-{n}.json"
        config.write_text(json.dumps(candidate))  # "predictions" is relative to the config
        (tmp_path / "predictions").mkdir(exist_ok=True)
        (tmp_path / candidate["predictions"]).write_bytes(
            (EXAMPLES / candidate["predictions"]).read_bytes()
        )
        summary = f.stage(
            "benchmark", "record", "--training", f.path("training.json"), "--config", config,
            kind="benchmark_result", output=f"bench-{n}.json",
        )  # fmt: skip
        assert summary["blob_id"] == promoted.blob("benchmark_result", n)
    ids["selection_report"] = f.stage(
        "select", *(f.path(f"bench-{n}.json") for n in range(3)),
        "--config", EXAMPLES / "selection.json", kind="selection_report", output="selection.json",
    )  # fmt: skip
    ids["deployment_manifest"] = f.stage(
        "deploy", "--selection", f.path("selection.json"), "--config", EXAMPLES / "deployment.json",
        kind="deployment_manifest", output="deployment.json",
    )  # fmt: skip
    ids["sector_mapping"] = f.stage(
        "sector", "map", "--config", EXAMPLES / "sector-mapping.json", kind="sector_mapping",
        output="mapping.json",
    )  # fmt: skip
    ids["evidence_pack"] = f.stage(
        "evidence", "build", "--deployment", f.path("deployment.json"),
        "--mapping", f.path("mapping.json"), "--config", EXAMPLES / "evidence.json",
        kind="evidence_pack", output="evidence.json",
    )  # fmt: skip
    ids["runtime_package"] = f.stage(
        "runtime", "build", "--deployment", f.path("deployment.json"),
        "--evidence", f.path("evidence.json"), "--config", EXAMPLES / "runtime.json",
        kind="runtime_package", output="runtime.json",
    )  # fmt: skip
    ids["monitoring_manifest"] = f.stage(
        "monitor", "build", "--runtime", f.path("runtime.json"),
        "--config", EXAMPLES / "monitoring.json", kind="monitoring_manifest",
        output="monitoring.json",
    )  # fmt: skip
    ids["risk_register"] = f.stage(
        "risk", "build", "--evidence", f.path("evidence.json"),
        "--monitoring", f.path("monitoring.json"), "--config", EXAMPLES / "risks.json",
        kind="risk_register", output="register.json",
    )  # fmt: skip
    ids["release_gate"] = f.stage(
        "release", "gate", "--runtime", f.path("runtime.json"),
        "--evidence", f.path("evidence.json"), "--monitoring", f.path("monitoring.json"),
        "--risk-register", f.path("register.json"), "--config", EXAMPLES / "release.json",
        kind="release_gate", output="gate.json",
    )  # fmt: skip
    for kind, summary in ids.items():
        assert summary["blob_id"] == promoted.blob(kind), kind
        assert summary["ready"] is True
    result = invoke(*promote_args(cli_ledger, RELEASE_ID, key("promotion-2"), key("promotion-3")))
    assert (result.exit_code, codes(json_out(result))) == (0, [])
    verify = invoke("verify", "--ledger", cli_ledger, "--trust", ROOT_PUB, "--as-of", AS_OF)
    assert verify.exit_code == 0, verify.stdout


def test_parents_must_be_recorded_first(cli_ledger: Path, tmp_path: Path) -> None:
    result = invoke(
        "dataset", "validate", EXAMPLES / "traces.jsonl", "--workspace",
        EXAMPLES / "workspace.json", "-o", tmp_path / "report.json", "--record",
        "--key", key("dataset_report"), "--log-key", LOG_KEY, "--ledger", cli_ledger,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "parent_not_logged" in result.stderr
    assert not (tmp_path / "report.json").exists()  # refused before anything was written


def test_dataset_validate_in_worker_processes_writes_the_same_report(tmp_path: Path) -> None:
    reports = []
    for jobs in ("1", "2", "0"):
        output = tmp_path / f"report-{jobs}.json"
        result = invoke(
            "dataset", "validate", EXAMPLES / "traces.jsonl", "--workspace",
            EXAMPLES / "workspace.json", "--jobs", jobs, "-o", output,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        reports.append(output.read_bytes())
    assert reports[0] == reports[1] == reports[2]
    # A malformed line is the same one error line, naming the file and line, in either engine.
    lines = (EXAMPLES / "traces.jsonl").read_text().splitlines()
    lines[2] = lines[2][:-1]  # truncated JSON on line 3
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines) + "\n")
    for jobs in ("1", "2"):
        result = invoke(
            "dataset", "validate", broken, "--workspace", EXAMPLES / "workspace.json",
            "--jobs", jobs, "-o", tmp_path / "never.json",
        )  # fmt: skip
        assert_one_error_line(result, "broken.jsonl:3: invalid JSON")
        assert not (tmp_path / "never.json").exists()
    refused = invoke(
        "dataset", "validate", broken, "--workspace", EXAMPLES / "workspace.json",
        "--jobs", "257",
    )  # fmt: skip
    assert refused.exit_code == 2 and "--jobs" in refused.stderr


def test_a_stage_that_is_not_ready_exits_1_and_is_still_written(tmp_path: Path) -> None:
    config = json.loads((EXAMPLES / "release.json").read_text())
    config["enterprise_ready"] = False
    (tmp_path / "release.json").write_text(json.dumps(config))
    demo = DemoOutputs(tmp_path)
    result = invoke(
        "release", "gate", "--runtime", demo.runtime, "--evidence", demo.evidence,
        "--monitoring", demo.monitoring, "--risk-register", demo.register,
        "--config", tmp_path / "release.json", "-o", tmp_path / "gate.json",
    )  # fmt: skip
    assert result.exit_code == 1
    gate = json.loads((tmp_path / "gate.json").read_text())
    assert gate["promotion_allowed"] is False
    assert "NOT READY" in result.stdout
    assert "enterprise_trust_not_ready" in result.stdout


def test_flags_override_the_config_and_stdout_without_output(tmp_path: Path) -> None:
    result = invoke(
        "sector", "map", "--config", EXAMPLES / "sector-mapping.json", "--jurisdiction", "CH",
        "--frameworks", "ISO27001", "--frameworks", "SOC2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    mapping = json.loads(result.stdout)
    assert (mapping["jurisdiction"], mapping["frameworks"]) == ("CH", ["ISO27001", "SOC2"])
    assert result.stderr.startswith("sector_mapping insurance-claims: ready")


def test_missing_parameter_names_it(tmp_path: Path) -> None:
    result = invoke("sector", "map", "--sector-id", "x", "--jurisdiction", "EU")
    assert_one_error_line(result, "sector_mapping parameters: evidence_pack_uri: required")


def test_record_without_a_key_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(
        "sector", "map", "--config", EXAMPLES / "sector-mapping.json", "--record",
        "--log-key", LOG_KEY, "--ledger", tmp_path, "-o", tmp_path / "m.json",
    )  # fmt: skip
    assert_one_error_line(result, "give at least one signing key with --key FILE")
    assert not (tmp_path / "m.json").exists()


class DemoOutputs:
    """The demo's runtime, evidence, monitoring and register manifests, written with the CLI."""

    def __init__(self, tmp_path: Path) -> None:
        report = tmp_path / "report.json"
        steps = [
            ("dataset", "validate", EXAMPLES / "traces.jsonl", "--workspace",
             EXAMPLES / "workspace.json", "-o", report),
        ]  # fmt: skip
        for step in steps:
            assert invoke(*step).exit_code == 0
        self.training = self._run(
            tmp_path, "training.json", "training", "build", "--dataset-report", report,
            "--config", EXAMPLES / "training.json",
        )  # fmt: skip
        bench = self._run(
            tmp_path, "bench.json", "benchmark", "record",
            EXAMPLES / "predictions" / "deberta-guard-ft-a.jsonl", "--training", self.training,
            "--benchmark-id", "b-1", "--model-artifact-uri", "gs://m/a",
            "--raw-result-uri", "gs://r/a", "--claim-boundary", "test split only",
        )  # fmt: skip
        selection = self._run(
            tmp_path, "selection.json", "select", bench, "--config", EXAMPLES / "selection.json"
        )
        deployment = self._run(
            tmp_path, "deployment.json", "deploy", "--selection", selection,
            "--config", EXAMPLES / "deployment.json",
        )  # fmt: skip
        mapping = self._run(
            tmp_path, "mapping.json", "sector", "map", "--config", EXAMPLES / "sector-mapping.json"
        )
        self.evidence = self._run(
            tmp_path, "evidence.json", "evidence", "build", "--deployment", deployment,
            "--mapping", mapping, "--config", EXAMPLES / "evidence.json",
        )  # fmt: skip
        self.runtime = self._run(
            tmp_path, "runtime.json", "runtime", "build", "--deployment", deployment,
            "--evidence", self.evidence, "--config", EXAMPLES / "runtime.json",
        )  # fmt: skip
        self.monitoring = self._run(
            tmp_path, "monitoring.json", "monitor", "build", "--runtime", self.runtime,
            "--config", EXAMPLES / "monitoring.json",
        )  # fmt: skip
        no_risks = json.loads((EXAMPLES / "risks.json").read_text())
        no_risks["risks"] = []
        (tmp_path / "no-risks.json").write_text(json.dumps(no_risks))
        self.register = self._run(
            tmp_path, "register.json", "risk", "build", "--evidence", self.evidence,
            "--monitoring", self.monitoring, "--config", tmp_path / "no-risks.json",
        )  # fmt: skip

    @staticmethod
    def _run(tmp_path: Path, output: str, *args: str | Path) -> Path:
        """Run one stage command writing ``output``; return its path."""
        result = invoke(*args, "-o", tmp_path / output)
        assert result.exit_code == 0, (args, result.stderr)
        return tmp_path / output
