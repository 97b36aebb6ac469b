"""One command per stage builder: read JSON/JSONL inputs, build, write, optionally record.

Every stage command takes its builder's parameters from ``--config FILE`` (a JSON object) and/or
flags (flags win), its parent manifests as files, ``-o FILE`` for the manifest (stdout without
it) and ``--record`` to store, sign and log it with the parents' blob ids (the SHA-256 of the
parent files, which must already be recorded). The parameters of each stage are the table
``pipeline.STAGE_PARAMS``. Exit 1 when the manifest is not ready (it is still written, and
recorded if asked).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from .._frozen import frozen
from ..pipeline import SCALAR_TYPES, STAGE_PARAMS
from ._common import (
    EXISTING_FILE,
    EXIT_FAILED,
    EXIT_OK,
    common_options,
    emit_json,
    jobs_option,
    load_log_key,
    load_signers,
    manifest_finding_line,
    open_ledger,
    progress_rows,
    short,
    signing_options,
    statement_time,
)

F = TypeVar("F", bound=Callable[..., Any])
_PARAM_PREFIX = "p_"


# --- options -------------------------------------------------------------------------------------


def _param_option(name: str, value_type: str, help_text: str) -> Callable[[F], F]:
    """Return the click option of one builder parameter (stored under ``p_<name>``)."""
    flag = name.replace("_", "-")
    dest = f"{_PARAM_PREFIX}{name}"
    if value_type == "bool":
        return click.option(f"--{flag}/--no-{flag}", dest, default=None, help=help_text)
    if value_type == "str_list":
        return click.option(f"--{flag}", dest, multiple=True, help=f"{help_text} (repeatable)")
    click_type = {"str": click.STRING, "int": click.INT, "number": click.FLOAT}[value_type]
    return click.option(f"--{flag}", dest, type=click_type, default=None, help=help_text)


def stage_options(kind: str) -> Callable[[F], F]:
    """Add ``--config``, one flag per scalar parameter of ``kind``, ``-o``, ``--record`` and the
    signing and common options."""

    def decorate(function: F) -> F:
        # Applied innermost first; --help lists the outermost first: --config, the parameters,
        # -o, --record, then the signing and common options.
        function = common_options(signing_options(function))
        function = click.option(
            "--record",
            is_flag=True,
            help="Store, sign (--key) and log the manifest with its parents.",
        )(function)
        function = click.option(
            "-o",
            "--output",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write the manifest here (atomically); default: stdout.",
        )(function)
        for spec in reversed(STAGE_PARAMS[kind]):
            if spec.type in SCALAR_TYPES or spec.type == "str_list":
                function = _param_option(spec.name, spec.type, spec.help)(function)
        return click.option(
            "--config",
            "config_file",
            type=EXISTING_FILE,
            help="JSON object with the builder parameters (flags override it).",
        )(function)

    return decorate


@frozen
class StageOptions:
    """The output and recording options every stage command shares."""

    output: Path | None
    record: bool
    key_files: tuple[Path, ...]
    log_key_file: Path | None
    passphrase_file: Path | None
    record_time: datetime | None
    ledger_dir: Path
    as_json: bool


def split_options(options: dict[str, Any]) -> tuple[StageOptions, dict[str, Any], Path | None]:
    """Return (shared options, parameter flag values, --config path) from a command's kwargs."""
    flags = {
        name[len(_PARAM_PREFIX) :]: value
        for name, value in options.items()
        if name.startswith(_PARAM_PREFIX)
    }
    shared = StageOptions(
        output=options["output"],
        record=options["record"],
        key_files=tuple(options["key_files"]),
        log_key_file=options["log_key_file"],
        passphrase_file=options["passphrase_file"],
        record_time=options["record_time"],
        ledger_dir=options["ledger_dir"],
        as_json=options["as_json"],
    )
    return shared, flags, options["config_file"]


def stage_params(kind: str, config: Path | None, flags: dict[str, Any]) -> dict[str, Any]:
    """Merge ``--config`` and the flags (flags win) and check them (pipeline.read_params)."""
    from ..pipeline import read_json_object, read_params

    payload: dict[str, Any] = read_json_object(config) if config is not None else {}
    for name, value in flags.items():
        if value is not None and value != ():
            payload[name] = list(value) if isinstance(value, tuple) else value
    return read_params(kind, payload)


# --- running a stage -----------------------------------------------------------------------------


def finish_stage(kind: str, manifest: Any, parents: Sequence[str], options: StageOptions) -> int:
    """Record (if asked), then write and report a built manifest; return 0 if ready, else 1.

    Recording comes first: a refused record (ChainError) leaves no output file behind.
    """
    from ..pipeline import (
        manifest_data,
        manifest_findings,
        manifest_label,
        ready_of,
        record_manifest,
        tool_version,
    )

    data = manifest_data(manifest)
    blob_id = hashlib.sha256(data).hexdigest()
    recorded = None
    if options.record:
        signers = load_signers(options.key_files, options.passphrase_file)
        log_key = load_log_key(options.log_key_file, options.passphrase_file)
        with open_ledger(options.ledger_dir) as ledger, ledger.writer(log_key=log_key) as writer:
            recorded = record_manifest(
                writer,
                ledger,
                kind=kind,
                data=data,
                parents=parents,
                signers=signers,
                time=statement_time(options.record_time),
                tool_version=tool_version(),
            )
    if options.output is not None:
        # The bytes write_json writes (a benchmark result has no write_json of its own).
        from .._jsonfile import atomic_write_bytes

        atomic_write_bytes(options.output, data)
    ready = ready_of(manifest)
    findings = manifest_findings(manifest)
    if options.as_json:
        summary: dict[str, Any] = {
            "kind": kind,
            "label": manifest_label(manifest),
            "ready": ready,
            "blob_id": blob_id,
            "output": str(options.output) if options.output is not None else None,
            "parents": list(parents),
            "findings": findings,
            "recorded": None
            if recorded is None
            else {"index": recorded.index, "envelope_id": recorded.envelope_id},
        }
        if options.output is None:
            summary["manifest"] = manifest.to_dict()
        emit_json(summary)
    else:
        to_stderr = options.output is None
        if to_stderr:
            click.echo(data.decode("utf-8"), nl=False)
        verdict = "ready" if ready else f"NOT READY ({len(findings)} finding(s))"
        lines = [f"{kind} {manifest_label(manifest)}: {verdict}", f"  sha256 {blob_id}"]
        if options.output is not None:
            lines.append(f"  wrote {options.output}")
        if recorded is not None:
            lines.append(
                f"  recorded at log index {recorded.index} (envelope {short(recorded.envelope_id)})"
            )
        lines.extend(f"  {manifest_finding_line(item)}" for item in findings)
        for line in lines:
            click.echo(line, err=to_stderr)
    return EXIT_OK if ready else EXIT_FAILED


def read_parent(path: Path, kind: str) -> Any:
    """Read a parent manifest file (strict, self-hash verified)."""
    from ..pipeline import read_manifest

    return read_manifest(path, kind)


def run_stage(
    kind: str, options: dict[str, Any], build: Callable[..., Any], *parents: tuple[Path, str]
) -> int:
    """Read ``kind``'s parameters and the ``(file, kind)`` parent manifests, build the manifest
    with ``build(params, *parent manifests)``, then write (and record) it."""
    shared, flags, config = split_options(options)
    params = stage_params(kind, config, flags)
    read = [read_parent(path, parent_kind) for path, parent_kind in parents]
    manifest = build(params, *(parent.manifest for parent in read))
    return finish_stage(kind, manifest, [parent.blob_id for parent in read], shared)


# --- the commands --------------------------------------------------------------------------------


@click.group()
def dataset() -> None:
    """Validate customer trace datasets."""


@dataset.command("validate")
@click.argument("traces", type=EXISTING_FILE)
@click.option("--workspace", type=EXISTING_FILE, required=True, help="Workspace JSON file.")
@jobs_option("a JSON Lines trace", "; automatic uses every core for 32 MiB or more")
@stage_options("dataset_report")
def dataset_validate(traces: Path, workspace: Path, jobs: int, **options: Any) -> int:
    """Validate TRACES (JSONL or a JSON array) against a workspace; write the report.

    The report is the same whatever --jobs is. With --record, TRACES must already be recorded
    (`cmf record trace_dataset TRACES`): its canonical blob's id is the report's dataset_hash,
    which names it as the parent.
    """
    from ..pipeline import validate_dataset
    from ..trace_files import load_workspace

    shared, flags, config = split_options(options)
    params = stage_params("dataset_report", config, flags)
    report = validate_dataset(
        traces, load_workspace(workspace), params, jobs=jobs, rows=progress_rows("validating rows")
    )
    parents = [report.dataset_hash] if shared.record else []
    return finish_stage("dataset_report", report, parents, shared)


@click.group()
def training() -> None:
    """Build training manifests."""


@training.command("build")
@click.option("--dataset-report", type=EXISTING_FILE, required=True, help="Dataset report.")
@stage_options("training_manifest")
def training_build(dataset_report: Path, **options: Any) -> int:
    """Build the training manifest of a validated dataset."""
    from ..pipeline import build_training

    return run_stage(
        "training_manifest", options, build_training, (dataset_report, "dataset_report")
    )


@click.group()
def benchmark() -> None:
    """Record benchmark results of candidate models."""


@benchmark.command("record")
@click.argument("predictions", type=EXISTING_FILE, required=False)
@click.option("--training", type=EXISTING_FILE, required=True, help="Training manifest.")
@stage_options("benchmark_result")
def benchmark_record(predictions: Path | None, training: Path, **options: Any) -> int:
    """Compute a candidate's metrics from PREDICTIONS (JSONL) and build its benchmark result.

    PREDICTIONS may instead be named by the config's "predictions" (relative to the config).
    """
    from ..pipeline import build_benchmark

    shared, flags, config = split_options(options)
    params = stage_params("benchmark_result", config, flags)
    if predictions is None:
        if params["predictions"] is None:
            raise click.UsageError("give PREDICTIONS or a config with a 'predictions' file")
        base = config.parent if config is not None else Path(".")
        predictions = base / params["predictions"]
    parent = read_parent(training, "training_manifest")
    manifest = build_benchmark(params, parent.manifest, predictions)
    return finish_stage("benchmark_result", manifest, [parent.blob_id], shared)


@click.command()
@click.argument("benchmarks", nargs=-1, required=True, type=EXISTING_FILE)
@stage_options("selection_report")
def select(benchmarks: tuple[Path, ...], **options: Any) -> int:
    """Select a model among the candidates' BENCHMARKS (benchmark result files)."""
    from ..pipeline import build_selection

    shared, flags, config = split_options(options)
    params = stage_params("selection_report", config, flags)
    parents = [read_parent(path, "benchmark_result") for path in benchmarks]
    manifest = build_selection(params, [parent.manifest for parent in parents])
    return finish_stage("selection_report", manifest, [p.blob_id for p in parents], shared)


@click.command()
@click.option("--selection", type=EXISTING_FILE, required=True, help="Selection report.")
@stage_options("deployment_manifest")
def deploy(selection: Path, **options: Any) -> int:
    """Build the deployment manifest of the selected model (policy from --config)."""
    from ..pipeline import build_deployment

    return run_stage(
        "deployment_manifest", options, build_deployment, (selection, "selection_report")
    )


@click.group()
def sector() -> None:
    """Build sector evidence mappings."""


@sector.command("map")
@stage_options("sector_mapping")
def sector_map(**options: Any) -> int:
    """Build a sector evidence mapping (frameworks and control evidence)."""
    from ..pipeline import build_mapping

    return run_stage("sector_mapping", options, build_mapping)


@click.group()
def evidence() -> None:
    """Build evidence pack manifests."""


@evidence.command("build")
@click.option("--deployment", type=EXISTING_FILE, required=True, help="Deployment manifest.")
@click.option("--mapping", type=EXISTING_FILE, required=True, help="Sector evidence mapping.")
@stage_options("evidence_pack")
def evidence_build(deployment: Path, mapping: Path, **options: Any) -> int:
    """Build the evidence pack of a deployment under a sector mapping."""
    from ..pipeline import build_evidence

    return run_stage(
        "evidence_pack",
        options,
        build_evidence,
        (deployment, "deployment_manifest"),
        (mapping, "sector_mapping"),
    )


@click.group()
def runtime() -> None:
    """Build runtime packages."""


@runtime.command("build")
@click.option("--deployment", type=EXISTING_FILE, required=True, help="Deployment manifest.")
@click.option("--evidence", type=EXISTING_FILE, required=True, help="Evidence pack manifest.")
@stage_options("runtime_package")
def runtime_build(deployment: Path, evidence: Path, **options: Any) -> int:
    """Build the runtime package of a deployment and its evidence pack."""
    from ..pipeline import build_runtime

    return run_stage(
        "runtime_package",
        options,
        build_runtime,
        (deployment, "deployment_manifest"),
        (evidence, "evidence_pack"),
    )


@click.group()
def monitor() -> None:
    """Build monitoring manifests."""


@monitor.command("build")
@click.option("--runtime", type=EXISTING_FILE, required=True, help="Runtime package.")
@stage_options("monitoring_manifest")
def monitor_build(runtime: Path, **options: Any) -> int:
    """Build the monitoring manifest of one observation window (metrics from --config)."""
    from ..pipeline import build_monitoring

    return run_stage("monitoring_manifest", options, build_monitoring, (runtime, "runtime_package"))


@click.group()
def risk() -> None:
    """Build risk registers."""


@risk.command("build")
@click.option("--evidence", type=EXISTING_FILE, required=True, help="Evidence pack manifest.")
@click.option("--monitoring", type=EXISTING_FILE, required=True, help="Monitoring manifest.")
@stage_options("risk_register")
def risk_build(evidence: Path, monitoring: Path, **options: Any) -> int:
    """Build the risk register (risks from --config) over evidence and monitoring."""
    from ..pipeline import build_register

    return run_stage(
        "risk_register",
        options,
        build_register,
        (evidence, "evidence_pack"),
        (monitoring, "monitoring_manifest"),
    )


@click.command("gate")
@click.option("--runtime", type=EXISTING_FILE, required=True, help="Runtime package.")
@click.option("--evidence", type=EXISTING_FILE, required=True, help="Evidence pack manifest.")
@click.option("--monitoring", type=EXISTING_FILE, required=True, help="Monitoring manifest.")
@click.option("--risk-register", type=EXISTING_FILE, required=True, help="Risk register.")
@stage_options("release_gate")
def release_gate(
    runtime: Path, evidence: Path, monitoring: Path, risk_register: Path, **options: Any
) -> int:
    """Build the release gate over runtime, evidence, monitoring and risk artefacts.

    With --record the gate is logged and the ref RELEASE_ID points at it (when the release id
    is a valid ref name). Exit 1 when the gate does not allow promotion.
    """
    from ..pipeline import build_gate

    return run_stage(
        "release_gate",
        options,
        build_gate,
        (runtime, "runtime_package"),
        (evidence, "evidence_pack"),
        (monitoring, "monitoring_manifest"),
        (risk_register, "risk_register"),
    )
