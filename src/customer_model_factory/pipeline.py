"""The factory as library functions: stage parameters to manifests, recording, and the demo.

Three layers, each usable on its own (the CLI is a thin shell over them):

1. Inputs: ``read_json_object`` / ``read_manifest`` read JSON files strictly, with errors that
   name the file and line; ``read_params`` checks a stage's parameters (from a config file and
   flags) against ``STAGE_PARAMS``, the one table of what each stage builder takes.
2. Stages: ``validate_dataset``, ``build_training``, ... call the seed builders with checked
   parameters and parsed parent manifests. ``build_factory`` runs them all on a directory laid
   out like ``examples/``.
3. The demo: ``run_demo`` records every stage of ``build_factory(examples)`` in a ledger with
   the keys of ``keys-example/`` and fixed timestamps, promotes the release, cosigns the final
   checkpoint as the witness and returns a ``DemoSummary``. Ed25519 signatures are
   deterministic and every time is fixed, so the ledger it builds is byte-reproducible.

Also here, because the CLI must not hold logic: ``resolve_trust`` (the pinned trust root),
``describe_blob`` (what ``cmf show`` prints) and ``build_policy`` (a policy from role grants).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._fields import (
    reject_unknown,
    req_bool,
    req_dict,
    req_float,
    req_int,
    req_str,
    req_str_tuple,
    req_str_tuple_dict,
)
from ._frozen import frozen
from ._hashing import HashMismatchError
from ._jsonfile import manifest_bytes
from .benchmark_selection import (
    BenchmarkMetrics,
    CustomerBenchmarkResult,
    CustomerModelSelectionReport,
    compute_benchmark_metrics,
    select_customer_model,
)
from .chain import kinds
from .chain.findings import ChainFinding
from .chain.source import SourceEntry
from .dataset_contract import (
    CustomerDatasetValidationReport,
    CustomerWorkspace,
)
from .deployment_manifest import (
    CustomerDeploymentManifest,
    DeploymentPolicy,
    build_deployment_manifest,
)
from .evidence_pack import CustomerEvidencePackManifest, build_customer_evidence_pack
from .inputs import (
    InputError,
    Trust,
    current_policy,
    key_names,
    load_trust_file,
    parse_json_object,
    policy_chain,
    policy_records,
    read_json_object,
    resolve_trust,
)
from .ledger.blobs import hash_file
from .ledger.dsse import verify_envelope
from .ledger.durable import ensure_dir, fsync_path
from .ledger.errors import LedgerError
from .ledger.keys import PrivateKey, PublicKey, load_private_key
from .ledger.merkle import leaf_hash, verify_inclusion
from .ledger.policy import (
    POLICY_KIND,
    KeyEntry,
    PolicyChain,
    Role,
    TrustPolicy,
)
from .ledger.statement import PAYLOAD_TYPE, RecordStatement
from .ledger.store import REF_NAME_PATTERN, Ledger, LedgerWriter, LogEntry
from .monitoring_manifest import (
    CustomerMonitoringManifest,
    MonitoringMetrics,
    MonitoringThresholds,
    build_monitoring_manifest,
)
from .release_gate import CustomerReleaseGateManifest, build_release_gate_manifest
from .risk_register import CustomerRiskException, CustomerRiskRegister, build_risk_register
from .runtime_package import CustomerRuntimePackage, build_customer_runtime_package
from .sector_extension import (
    DEFAULT_SECTOR_FRAMEWORKS,
    SectorEvidenceMapping,
    build_sector_evidence_mapping,
)
from .trace_files import iter_trace_rows, load_workspace, validate_trace_file
from .training_manifest import CustomerTrainingManifest, TrainingLane, build_training_manifest

# --- 1. inputs -----------------------------------------------------------------------------------
# InputError, parse_json_object and read_json_object live in ``inputs`` (re-exported here).


@frozen
class ManifestFile:
    """A parent manifest read from a file: the verified object and its blob id (file SHA-256)."""

    kind: str
    manifest: Any
    blob_id: str
    path: Path


def read_manifest(path: Path, kind: str) -> ManifestFile:
    """Read a ``kind`` manifest file; its self-hash must recompute. InputError names the file."""
    path = Path(path)
    data = path.read_bytes()
    parse_json_object(data, path.name)  # file:line errors for malformed JSON
    try:
        manifest = kinds.parse_manifest(kind, data)
    except HashMismatchError as exc:
        raise InputError(f"{path.name}: not an intact {kind}: {exc}") from None
    except ValueError as exc:
        reason = str(exc).removeprefix(f"{kind}: ")
        raise InputError(f"{path.name}: not a valid {kind}: {reason}") from None
    return ManifestFile(kind, manifest, hashlib.sha256(data).hexdigest(), path)


# --- stage parameters ----------------------------------------------------------------------------

REQUIRED: Any = object()  # sentinel default: the parameter must be given

# Parameter value types. Scalars ("str", "bool", "int", "number") and "str_list" can come from
# command-line flags; "path" and the structured ones only from a config file.
_READERS: Mapping[str, Callable[[Mapping[str, Any], str, str], Any]] = {
    "str": req_str,
    "bool": req_bool,
    "int": req_int,
    "number": req_float,
    "str_list": req_str_tuple,
    "path": req_str,  # a file path, relative to the config file that names it
    "object": req_dict,
    "str_list_object": req_str_tuple_dict,
    "object_list": lambda payload, key, where: _object_list(payload, key, where),
}
SCALAR_TYPES = frozenset({"str", "bool", "int", "number"})


def _object_list(payload: Mapping[str, Any], key: str, where: str) -> tuple[dict[str, Any], ...]:
    """Return ``payload[key]`` if it is a list of objects (risks)."""
    value = payload[key]
    if not isinstance(value, list):
        raise ValueError(f"{where}{key}: expected a list of objects")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValueError(f"{where}{key}[{index}]: expected an object")
    return tuple(value)


@frozen
class Param:
    """One builder parameter: its name, value type, default and a one-line help text."""

    name: str
    type: str
    help: str
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        """True when the parameter has no default."""
        return self.default is REQUIRED


STAGE_PARAMS: Mapping[str, tuple[Param, ...]] = {
    kinds.DATASET_REPORT: (
        Param("vertical_profile", "str", "vertical profile to validate against", None),
    ),
    kinds.TRAINING_MANIFEST: (
        Param("package_id", "str", "training package id"),
        Param("lane", "str", "execution lane: " + ", ".join(lane.value for lane in TrainingLane)),
        Param("base_model_id", "str", "base model id (for example a Hugging Face id)"),
        Param("base_model_revision", "str", "base model revision (a commit hash)"),
        Param("output_uri", "str", "where the trained model is written"),
        Param("hyperparameters", "object", "training hyperparameters (config file only)"),
        Param("objective_profile", "str", "selection objective profile"),
    ),
    kinds.BENCHMARK_RESULT: (
        Param("benchmark_id", "str", "benchmark id"),
        Param("model_artifact_uri", "str", "URI of the benchmarked model"),
        Param("raw_result_uri", "str", "URI of the raw predictions"),
        Param("claim_boundary", "str", "what the result does and does not claim"),
        Param("predictions", "path", "predictions JSONL file, relative to the config file", None),
    ),
    kinds.SELECTION_REPORT: (
        Param("selection_id", "str", "selection id"),
        Param("objective_profile", "str", "objective profile the candidates are ranked by"),
    ),
    kinds.DEPLOYMENT_MANIFEST: (
        Param("deployment_id", "str", "deployment id"),
        Param("environment", "str", "target environment (staging or production)"),
        Param("package_uri", "str", "URI of the deployment package"),
        Param("policy", "object", "runtime policy (config file only)"),
    ),
    kinds.SECTOR_MAPPING: (
        Param("sector_id", "str", "sector extension id"),
        Param("jurisdiction", "str", "jurisdiction (for example EU)"),
        Param("evidence_pack_uri", "str", "URI of the evidence pack"),
        Param("frameworks", "str_list", "regulatory frameworks", DEFAULT_SECTOR_FRAMEWORKS),
        Param("control_evidence", "str_list_object", "control -> evidence (config only)", None),
    ),
    kinds.EVIDENCE_PACK: (
        Param("package_id", "str", "evidence pack id"),
        Param("classification", "str", "data classification of the export"),
        Param("export_uri", "str", "URI of the evidence export"),
        Param("external_callbacks_allowed", "bool", "allow external callbacks", False),
        Param("callback_endpoints", "str_list", "allowed callback endpoints", ()),
    ),
    kinds.RUNTIME_PACKAGE: (
        Param("runtime_id", "str", "runtime package id"),
        Param("runtime_mode", "str", "runtime mode (for example customer_cloud_private)"),
    ),
    kinds.MONITORING_MANIFEST: (
        Param("monitoring_id", "str", "monitoring manifest id"),
        Param("metrics", "object", "observed metrics (config file only)"),
        Param("thresholds", "object", "review thresholds (config file only)"),
        Param("observation_window", "str", "observation window (start/end instants)"),
        Param("monitored_at", "str", "when the window was evaluated (RFC 3339)"),
        Param("review_queue_uri", "str", "review queue URI"),
        Param("incident_queue_uri", "str", "incident queue URI"),
    ),
    kinds.RISK_REGISTER: (
        Param("register_id", "str", "risk register id"),
        Param("generated_at", "str", "when the register was generated (RFC 3339)"),
        Param("risks", "object_list", "risk and exception decisions (config file only)", ()),
    ),
    kinds.RELEASE_GATE: (
        Param("release_id", "str", "release id"),
        Param("enterprise_ready", "bool", "enterprise trust readiness"),
        Param("enterprise_blocking_debt_ids", "str_list", "blocking trust-debt ids", ()),
        Param("generated_at", "str", "when the gate was evaluated (RFC 3339)"),
    ),
}


def read_params(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``payload`` against ``STAGE_PARAMS[kind]``: no unknown key, no missing required
    one, every value of its type (never coerced). Returns every parameter, defaults filled in.

    Raises InputError naming the stage and the field.
    """
    specs = STAGE_PARAMS[kind]
    where = f"{kind} parameters: "
    try:
        reject_unknown(payload, tuple(spec.name for spec in specs), where)
        values: dict[str, Any] = {}
        for spec in specs:
            if spec.name in payload and payload[spec.name] is not None:
                values[spec.name] = _READERS[spec.type](payload, spec.name, where)
            elif spec.required:
                raise ValueError(f"{where}{spec.name}: required (config file or --flag)")
            else:
                values[spec.name] = spec.default
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return values


def _nested(kind: str, name: str, parse: Callable[[Mapping[str, Any]], Any], value: Any) -> Any:
    """Parse a structured parameter with its class's strict from_dict; InputError naming it."""
    try:
        return parse(value)
    except ValueError as exc:
        raise InputError(f"{kind} parameters: {name}: {exc}") from None


# --- 2. stages -----------------------------------------------------------------------------------

RowFilter = Callable[[Iterator[dict[str, Any]]], Iterable[dict[str, Any]]]


def _unchanged(rows: Iterator[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """The default row filter: pass the rows through."""
    return rows


def validate_dataset(
    traces: Path,
    workspace: CustomerWorkspace,
    params: Mapping[str, Any],
    *,
    jobs: int = 0,
    rows: RowFilter = _unchanged,
) -> CustomerDatasetValidationReport:
    """Validate a trace file (JSONL or JSON array), streaming, in ``jobs`` worker processes
    (``trace_files.validate_trace_file``: 0 chooses, 1 is this process, whose row iterator
    ``rows`` may wrap: a progress bar). TraceFileError names the file and line of bad input."""
    return validate_trace_file(
        traces, workspace, vertical_profile=params["vertical_profile"], jobs=jobs, rows=rows
    )


def build_training(
    params: Mapping[str, Any], dataset_report: CustomerDatasetValidationReport
) -> CustomerTrainingManifest:
    """Build the training manifest of a validated dataset."""
    try:
        lane = TrainingLane(params["lane"])
    except ValueError:
        known = ", ".join(lane.value for lane in TrainingLane)
        raise InputError(
            f"training_manifest parameters: lane: {params['lane']!r} is not one of {known}"
        ) from None
    return build_training_manifest(
        package_id=params["package_id"],
        dataset_report=dataset_report,
        lane=lane,
        base_model_id=params["base_model_id"],
        base_model_revision=params["base_model_revision"],
        output_uri=params["output_uri"],
        hyperparameters=params["hyperparameters"],
        objective_profile=params["objective_profile"],
    )


def benchmark_metrics(predictions: Path) -> BenchmarkMetrics:
    """Compute benchmark metrics from a predictions JSONL (or JSON array) file, streaming."""
    path = Path(predictions)
    try:
        return compute_benchmark_metrics(iter_trace_rows(path))
    except InputError:
        raise
    except ValueError as exc:
        if str(exc).startswith(f"{path.name}:"):
            raise  # TraceFileError: already names the file and line
        raise InputError(f"{path.name}: {exc}") from None


def build_benchmark(
    params: Mapping[str, Any], training: CustomerTrainingManifest, predictions: Path
) -> CustomerBenchmarkResult:
    """Build one candidate's benchmark result from its predictions file."""
    return CustomerBenchmarkResult.from_metrics(
        benchmark_id=params["benchmark_id"],
        training_manifest=training,
        model_artifact_uri=params["model_artifact_uri"],
        metrics=benchmark_metrics(predictions),
        raw_result_uri=params["raw_result_uri"],
        claim_boundary=params["claim_boundary"],
    )


def build_selection(
    params: Mapping[str, Any], candidates: Sequence[CustomerBenchmarkResult]
) -> CustomerModelSelectionReport:
    """Select a model among the candidates' benchmark results."""
    return select_customer_model(
        selection_id=params["selection_id"],
        objective_profile=params["objective_profile"],
        candidates=list(candidates),
    )


def build_deployment(
    params: Mapping[str, Any], selection: CustomerModelSelectionReport
) -> CustomerDeploymentManifest:
    """Build the deployment manifest of the selected model."""
    policy = _nested(
        kinds.DEPLOYMENT_MANIFEST, "policy", DeploymentPolicy.from_dict, params["policy"]
    )
    return build_deployment_manifest(
        deployment_id=params["deployment_id"],
        selection_report=selection,
        policy=policy,
        environment=params["environment"],
        package_uri=params["package_uri"],
    )


def build_mapping(params: Mapping[str, Any]) -> SectorEvidenceMapping:
    """Build the sector evidence mapping."""
    return build_sector_evidence_mapping(
        sector_id=params["sector_id"],
        jurisdiction=params["jurisdiction"],
        evidence_pack_uri=params["evidence_pack_uri"],
        frameworks=tuple(params["frameworks"]),
        control_evidence=params["control_evidence"],
    )


def build_evidence(
    params: Mapping[str, Any],
    deployment: CustomerDeploymentManifest,
    mapping: SectorEvidenceMapping,
) -> CustomerEvidencePackManifest:
    """Build the evidence pack of a deployment under a sector mapping."""
    return build_customer_evidence_pack(
        package_id=params["package_id"],
        deployment_manifest=deployment,
        regulation_mapping=mapping,
        classification=params["classification"],
        export_uri=params["export_uri"],
        external_callbacks_allowed=params["external_callbacks_allowed"],
        callback_endpoints=tuple(params["callback_endpoints"]),
    )


def build_runtime(
    params: Mapping[str, Any],
    deployment: CustomerDeploymentManifest,
    evidence: CustomerEvidencePackManifest,
) -> CustomerRuntimePackage:
    """Build the runtime package of a deployment and its evidence pack."""
    return build_customer_runtime_package(
        runtime_id=params["runtime_id"],
        deployment_manifest=deployment,
        evidence_pack=evidence,
        runtime_mode=params["runtime_mode"],
    )


def build_monitoring(
    params: Mapping[str, Any], runtime: CustomerRuntimePackage
) -> CustomerMonitoringManifest:
    """Build the monitoring manifest of one observation window of a runtime package."""
    kind = kinds.MONITORING_MANIFEST
    return build_monitoring_manifest(
        monitoring_id=params["monitoring_id"],
        runtime_package=runtime,
        metrics=_nested(kind, "metrics", MonitoringMetrics.from_dict, params["metrics"]),
        thresholds=_nested(
            kind, "thresholds", MonitoringThresholds.from_dict, params["thresholds"]
        ),
        observation_window=params["observation_window"],
        monitored_at=params["monitored_at"],
        review_queue_uri=params["review_queue_uri"],
        incident_queue_uri=params["incident_queue_uri"],
    )


def build_register(
    params: Mapping[str, Any],
    evidence: CustomerEvidencePackManifest,
    monitoring: CustomerMonitoringManifest,
) -> CustomerRiskRegister:
    """Build the risk register over an evidence pack and a monitoring manifest."""
    risks = tuple(
        _nested(kinds.RISK_REGISTER, f"risks[{n}]", CustomerRiskException.from_dict, item)
        for n, item in enumerate(params["risks"])
    )
    return build_risk_register(
        register_id=params["register_id"],
        evidence_pack=evidence,
        monitoring_manifest=monitoring,
        risks=risks,
        generated_at=params["generated_at"],
    )


def build_gate(
    params: Mapping[str, Any],
    runtime: CustomerRuntimePackage,
    evidence: CustomerEvidencePackManifest,
    monitoring: CustomerMonitoringManifest,
    register: CustomerRiskRegister,
) -> CustomerReleaseGateManifest:
    """Build the release gate over the runtime, evidence, monitoring and risk artefacts."""
    return build_release_gate_manifest(
        release_id=params["release_id"],
        enterprise_ready=params["enterprise_ready"],
        enterprise_blocking_debt_ids=tuple(params["enterprise_blocking_debt_ids"]),
        runtime_package=runtime,
        evidence_pack=evidence,
        monitoring_manifest=monitoring,
        risk_register=register,
        generated_at=params["generated_at"],
    )


# --- the whole factory on an examples/ directory ---------------------------------------------

# examples/ file names, by the stage whose parameters they hold.
EXAMPLE_FILES: Mapping[str, str] = {
    kinds.TRAINING_MANIFEST: "training.json",
    kinds.BENCHMARK_RESULT: "benchmarks.json",
    kinds.SELECTION_REPORT: "selection.json",
    kinds.DEPLOYMENT_MANIFEST: "deployment.json",
    kinds.SECTOR_MAPPING: "sector-mapping.json",
    kinds.EVIDENCE_PACK: "evidence.json",
    kinds.RUNTIME_PACKAGE: "runtime.json",
    kinds.MONITORING_MANIFEST: "monitoring.json",
    kinds.RISK_REGISTER: "risks.json",
    kinds.RELEASE_GATE: "release.json",
}
TRACES_FILE = "traces.jsonl"
WORKSPACE_FILE = "workspace.json"


@frozen
class FactoryRun:
    """Every manifest of one factory run, in chain order (benchmarks in candidate order)."""

    traces: Path
    report: CustomerDatasetValidationReport
    training: CustomerTrainingManifest
    benchmarks: tuple[CustomerBenchmarkResult, ...]
    selection: CustomerModelSelectionReport
    deployment: CustomerDeploymentManifest
    mapping: SectorEvidenceMapping
    evidence: CustomerEvidencePackManifest
    runtime: CustomerRuntimePackage
    monitoring: CustomerMonitoringManifest
    register: CustomerRiskRegister
    gate: CustomerReleaseGateManifest


def example_params(examples: Path, kind: str) -> dict[str, Any]:
    """Read and check the parameters of ``kind`` from its file in ``examples``."""
    return read_params(kind, read_json_object(Path(examples) / EXAMPLE_FILES[kind]))


def benchmark_candidates(examples: Path) -> list[tuple[dict[str, Any], Path]]:
    """Return (parameters, predictions path) of each candidate in ``examples/benchmarks.json``."""
    path = Path(examples) / EXAMPLE_FILES[kinds.BENCHMARK_RESULT]
    document = read_json_object(path)
    try:
        reject_unknown(document, ("candidates",), f"{path.name}: ")
        items = _object_list(document, "candidates", f"{path.name}: ")
    except (ValueError, KeyError) as exc:
        raise InputError(f"{path.name}: expected {{'candidates': [...]}}: {exc}") from None
    candidates = []
    for item in items:
        params = read_params(kinds.BENCHMARK_RESULT, item)
        if params["predictions"] is None:
            raise InputError(f"{path.name}: candidate {params['benchmark_id']}: no predictions")
        candidates.append((params, path.parent / params["predictions"]))
    return candidates


def build_factory(
    examples: Path,
    *,
    risks: Sequence[Mapping[str, Any]] | None = None,
    rows: RowFilter = _unchanged,
) -> FactoryRun:
    """Run every stage builder on ``examples`` (laid out like the repository's examples/).

    ``risks`` replaces the risk list of ``risks.json`` (``examples/generate.py`` passes ``()``
    to learn the hashes the accepted risk must link). Pure apart from reading the files.
    """
    examples = Path(examples)
    traces = examples / TRACES_FILE
    report = validate_dataset(
        traces,
        load_workspace(examples / WORKSPACE_FILE),
        read_params(kinds.DATASET_REPORT, {}),
        rows=rows,
    )
    training = build_training(example_params(examples, kinds.TRAINING_MANIFEST), report)
    benchmarks = tuple(
        build_benchmark(params, training, predictions)
        for params, predictions in benchmark_candidates(examples)
    )
    selection = build_selection(example_params(examples, kinds.SELECTION_REPORT), benchmarks)
    deployment = build_deployment(example_params(examples, kinds.DEPLOYMENT_MANIFEST), selection)
    mapping = build_mapping(example_params(examples, kinds.SECTOR_MAPPING))
    evidence = build_evidence(example_params(examples, kinds.EVIDENCE_PACK), deployment, mapping)
    runtime = build_runtime(example_params(examples, kinds.RUNTIME_PACKAGE), deployment, evidence)
    monitoring = build_monitoring(example_params(examples, kinds.MONITORING_MANIFEST), runtime)
    register_params = example_params(examples, kinds.RISK_REGISTER)
    if risks is not None:
        register_params["risks"] = tuple(risks)
    register = build_register(register_params, evidence, monitoring)
    gate = build_gate(
        example_params(examples, kinds.RELEASE_GATE), runtime, evidence, monitoring, register
    )
    return FactoryRun(
        traces,
        report,
        training,
        benchmarks,
        selection,
        deployment,
        mapping,
        evidence,
        runtime,
        monitoring,
        register,
        gate,
    )


def manifest_data(manifest: Any) -> bytes:
    """Return the bytes ``manifest.write_json`` writes (what the ledger stores)."""
    return manifest_bytes(manifest.to_dict())


def ready_of(manifest: Any) -> bool:
    """Return a manifest's readiness (``ready``; a release gate also needs promotion_allowed)."""
    if isinstance(manifest, CustomerReleaseGateManifest):
        return manifest.ready and manifest.promotion_allowed
    return bool(getattr(manifest, "ready", True))


def manifest_findings(manifest: Any) -> list[dict[str, str]]:
    """Return a manifest's findings (blockers for a gate, recommendations for monitoring too)."""
    if isinstance(manifest, CustomerReleaseGateManifest):
        return [dict(item) for item in manifest.blockers]
    if isinstance(manifest, CustomerDatasetValidationReport):
        return [finding.to_dict() for finding in manifest.findings]
    found = [dict(item) for item in getattr(manifest, "findings", ())]
    if isinstance(manifest, CustomerMonitoringManifest):
        found.extend(dict(item) for item in manifest.recommendations)
    return found


_LABEL_FIELDS: Mapping[type, str] = {
    CustomerTrainingManifest: "package_id",
    CustomerBenchmarkResult: "benchmark_id",
    CustomerModelSelectionReport: "selection_id",
    CustomerDeploymentManifest: "deployment_id",
    SectorEvidenceMapping: "sector_id",
    CustomerEvidencePackManifest: "package_id",
    CustomerRuntimePackage: "runtime_id",
    CustomerMonitoringManifest: "monitoring_id",
    CustomerRiskRegister: "register_id",
    CustomerReleaseGateManifest: "release_id",
}


def manifest_label(manifest: Any) -> str:
    """Return the manifest's own id (package_id, benchmark_id, ...) for messages."""
    if isinstance(manifest, CustomerDatasetValidationReport):
        return f"{manifest.row_count} rows of {manifest.customer_id}"
    field_name = _LABEL_FIELDS.get(type(manifest))
    return str(getattr(manifest, field_name)) if field_name else ""


# --- recording -------------------------------------------------------------------------------


def tool_version() -> str:
    """Return the ``tool_version`` written into statements: ``customer-model-factory/<ver>``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"customer-model-factory/{version('customer-model-factory')}"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "customer-model-factory/unknown"


def record_manifest(
    writer: LedgerWriter,
    ledger: Ledger,
    *,
    kind: str,
    data: bytes,
    parents: Sequence[str],
    signers: Sequence[PrivateKey],
    time: str,
    tool_version: str,
) -> LogEntry:
    """Record a stage manifest with ``chain.record_stage`` (ChainError, writing nothing, when
    it does not bind to its parents); a release gate also gets the ref ``release_id`` when that
    is a valid ref name (otherwise it is named by its blob id only)."""
    from .chain import record_stage

    entry = record_stage(
        writer,
        ledger,
        kind=kind,
        data=data,
        parents=parents,
        signers=signers,
        time=time,
        tool_version=tool_version,
    )
    if kind == kinds.RELEASE_GATE:
        gate = kinds.parse_manifest(kind, data)
        # release_id is free text, a ref is a file name: never refuse a valid gate for it.
        if isinstance(gate, CustomerReleaseGateManifest) and REF_NAME_PATTERN.fullmatch(
            gate.release_id
        ):
            writer.set_ref(gate.release_id, entry.blob_id)
    return entry


# --- trust -----------------------------------------------------------------------------------
# Trust, load_trust_file, resolve_trust, policy_records, policy_chain, current_policy and
# key_names live in ``inputs`` (re-exported here).


def build_policy(
    *,
    origin: str,
    expires: str,
    grants: Sequence[tuple[str, PublicKey, str]],
    thresholds: Mapping[str, int] | None = None,
    version: int = 1,
) -> TrustPolicy:
    """Return a policy granting roles to keys: ``grants`` is (role, key, key name) triples.

    A key granted several roles is enrolled once (under the first name given); each role's
    threshold is ``thresholds[role]`` or 1. PolicyError (a ValueError) for an invalid policy.
    """
    names: dict[str, tuple[str, PublicKey]] = {}
    members: dict[str, list[str]] = {}
    for role, key, name in grants:
        names.setdefault(key.key_id, (name, key))
        members.setdefault(role, [])
        if key.key_id not in members[role]:
            members[role].append(key.key_id)
    thresholds = thresholds or {}
    unknown = sorted(set(thresholds) - set(members))
    if unknown:
        raise InputError(f"threshold for role(s) without keys: {', '.join(unknown)}")
    return TrustPolicy(
        version=version,
        expires=expires,
        origin=origin,
        keys=tuple(KeyEntry.of(key, name) for name, key in names.values()),
        roles=tuple(
            Role(role, tuple(ids), thresholds.get(role, 1)) for role, ids in members.items()
        ),
        revoked=(),
    )


# --- checking a whole ledger (cmf verify) ----------------------------------------------------

LOG_ROLE = "log"


def fsck_findings(ledger: Ledger, *, jobs: int = 0) -> list[ChainFinding]:
    """Return ``ledger.fsck.fsck`` findings, and ``kind-index-mismatch`` for each way the kind
    index disagrees with the log, as chain findings (open with ``audit=True``)."""
    from .ledger.fsck import fsck

    findings = [
        ChainFinding(f.code, "error", f.message, blob_id=f.blob_id, index=f.index)
        for f in fsck(ledger, jobs=jobs)
    ]
    try:
        problems = ledger.kind_index_problems()
    except LedgerError:
        problems = []  # unreadable entries: fsck has named them
    findings.extend(ChainFinding("kind-index-mismatch", "error", p) for p in problems)
    return findings


def binding_findings(ledger: Ledger) -> list[ChainFinding]:
    """Return every broken binding in the ledger, trace rows re-validated (``audit_bindings``).

    A ledger too damaged to read gives one ``source_unreadable`` finding (fsck says where).
    """
    from .chain import LedgerSource
    from .chain.verify import audit_bindings

    try:
        return audit_bindings(LedgerSource(ledger), ledger_entries(ledger), deep=True)
    except (LedgerError, OSError) as exc:
        return [ChainFinding("source_unreadable", "error", f"the ledger cannot be read: {exc}")]


def ledger_entries(ledger: Ledger) -> list[SourceEntry]:
    """Return every log entry of ``ledger`` in log order, as chain source entries."""
    return [SourceEntry(e.index, e.kind, e.blob_id, e.envelope_id) for e in ledger.entries()]


def trust_findings(ledger: Ledger, trust: Trust, as_of: datetime) -> list[ChainFinding]:
    """Return why the ledger's policy chain, its log key or a record's signers are not trusted.

    The policy versions must walk forward from ``trust`` (``verify_policy_chain``), the key
    that signs this ledger's checkpoints must hold the ``log`` role of the latest version, and
    every stage record must be signed by a threshold of its role (``signature_findings``).
    """
    chain = policy_chain(ledger, trust, as_of)
    findings = [
        ChainFinding(f.code, "error", f.message, kind=POLICY_KIND, index=f.index)
        for f in chain.findings
    ]
    if chain.policies:
        policy = chain.current
        if LOG_ROLE not in {role.name for role in policy.roles}:
            findings.append(
                ChainFinding(
                    "log_role_missing", "error", f"policy version {policy.version} has no log role"
                )
            )
        elif ledger.log_public_key.key_id not in policy.role(LOG_ROLE).key_ids:
            findings.append(
                ChainFinding(
                    "log_key_not_trusted",
                    "error",
                    f"the ledger's log key {ledger.log_public_key.key_id} does not hold the "
                    f"log role of policy version {policy.version}",
                )
            )
        findings.extend(signature_findings(ledger, chain))
    return findings


def signature_findings(ledger: Ledger, chain: PolicyChain) -> list[ChainFinding]:
    """Return every stage record not signed by a threshold of its role (``audit_signatures``).

    A ledger too damaged to read gives one ``source_unreadable`` finding (fsck says where).
    """
    from .chain import LedgerSource
    from .chain.verify import audit_signatures

    try:
        return audit_signatures(LedgerSource(ledger), ledger_entries(ledger), chain)
    except (LedgerError, OSError) as exc:
        return [ChainFinding("source_unreadable", "error", f"the ledger cannot be read: {exc}")]


# --- inspecting one blob (cmf show) ------------------------------------------------------------


@frozen
class EntryView:
    """One log entry about a blob, as ``cmf show`` prints it."""

    index: int
    kind: str
    envelope_id: str
    time: str
    tool_version: str
    parents: tuple[tuple[str, str], ...]
    signers: tuple[tuple[str, str], ...]  # (key id, name in the current policy or "")
    included: bool | None  # under the latest checkpoint; None when there is none yet
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "index": self.index,
            "kind": self.kind,
            "envelope_id": self.envelope_id,
            "time": self.time,
            "tool_version": self.tool_version,
            "parents": [{"kind": k, "blob_id": b} for k, b in self.parents],
            "signers": [{"key_id": k, "name": n} for k, n in self.signers],
            "included": self.included,
            "problems": list(self.problems),
        }


@frozen
class BlobView:
    """What the ledger knows about one blob: size, log entries and the checkpoint they sit under."""

    blob_id: str
    size: int
    entries: tuple[EntryView, ...]
    checkpoint_size: int | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "blob_id": self.blob_id,
            "size": self.size,
            "checkpoint_size": self.checkpoint_size,
            "entries": [entry.to_dict() for entry in self.entries],
        }


def describe_blob(ledger: Ledger, blob_id: str, names: Mapping[str, str] | None = None) -> BlobView:
    """Describe a stored blob: every log entry about it with its statement, the keyring keys
    whose signatures verify, and whether the entry is included under the latest checkpoint.

    ``names`` maps key ids to names (from a policy). The blob is re-hashed (IntegrityError if it
    does not match its id; ObjectNotFoundError if absent). Trust is not judged here:
    ``cmf release verify`` does that.
    """
    from .ledger.checkpoint import open_checkpoint

    size = len(ledger.objects.get(blob_id))
    checkpoint = None
    latest = ledger.latest_checkpoint_size()
    if latest is not None:
        checkpoint, _ = open_checkpoint(
            ledger.checkpoint(latest), origin=ledger.origin, key=ledger.log_public_key
        )
    keyring = ledger.public_keys()
    views = []
    for entry in ledger.entries_for_blob(blob_id):
        problems: list[str] = []
        try:
            statement: RecordStatement | None = ledger.statement(entry)
            envelope = ledger.envelope(entry.envelope_id)
            signer_ids = sorted(verify_envelope(envelope, keyring, payload_type=PAYLOAD_TYPE))
        except (LedgerError, ValueError) as exc:
            statement, signer_ids = None, []
            problems.append(str(exc))
        except RecursionError:  # json's answer to a hostile, deeply nested envelope
            statement, signer_ids = None, []
            problems.append(f"envelope {entry.envelope_id}: JSON nested too deeply")
        included = None
        if checkpoint is not None and entry.index < checkpoint.size:
            try:
                proof = ledger.inclusion_proof(entry.index, checkpoint.size)
                verify_inclusion(
                    leaf_hash(entry.leaf), entry.index, checkpoint.size, proof, checkpoint.root_hash
                )
                included = True
            except (LedgerError, ValueError) as exc:
                included = False
                problems.append(f"inclusion proof: {exc}")
        elif checkpoint is not None:
            included = False
        views.append(
            EntryView(
                index=entry.index,
                kind=entry.kind,
                envelope_id=entry.envelope_id,
                time=statement.time if statement else "",
                tool_version=statement.tool_version if statement else "",
                parents=tuple((p.kind, p.sha256) for p in statement.parents) if statement else (),
                signers=tuple((kid, (names or {}).get(kid, "")) for kid in signer_ids),
                included=included,
                problems=tuple(problems),
            )
        )
    return BlobView(blob_id, size, tuple(views), checkpoint.size if checkpoint else None)


# --- 3. the demo -----------------------------------------------------------------------------

DEMO_ORIGIN = "factory.northwind.example/claims-guard"
DEMO_POLICY_EXPIRES = "2030-01-01T00:00:00Z"
DEMO_PROMOTION_THRESHOLD = 2
DEMO_KEY_PREFIX = "INSECURE-"
# The demo's fixed clock: when each record is made, and the instant it is all verified as of.
DEMO_TIMES: Mapping[str, str] = {
    POLICY_KIND: "2026-11-02T09:00:00Z",
    kinds.TRACE_DATASET: "2026-11-02T10:00:00Z",
    kinds.DATASET_REPORT: "2026-11-02T10:05:00Z",
    kinds.TRAINING_MANIFEST: "2026-11-03T08:00:00Z",
    kinds.BENCHMARK_RESULT: "2026-11-09T16:00:00Z",
    kinds.SELECTION_REPORT: "2026-11-10T09:00:00Z",
    kinds.DEPLOYMENT_MANIFEST: "2026-11-10T11:00:00Z",
    kinds.SECTOR_MAPPING: "2026-11-10T11:30:00Z",
    kinds.EVIDENCE_PACK: "2026-11-10T12:00:00Z",
    kinds.RUNTIME_PACKAGE: "2026-11-10T14:00:00Z",
    kinds.MONITORING_MANIFEST: "2026-11-17T06:05:00Z",
    kinds.RISK_REGISTER: "2026-11-20T11:30:00Z",
    kinds.RELEASE_GATE: "2026-11-20T12:00:00Z",
    kinds.PROMOTION: "2026-11-20T12:30:00Z",
}
DEMO_WITNESS_TIME = "2026-11-20T12:31:00Z"
DEMO_AS_OF = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)

STAGE_ROLES: tuple[str, ...] = tuple(k for k in kinds.STAGE_KINDS if k != kinds.PROMOTION)
DEMO_SERVICE_ROLES: tuple[str, ...] = ("root", "log", "witness")


def demo_key_names() -> dict[str, tuple[str, ...]]:
    """Return role -> the names of the keys-example keys holding it (one key per role; three
    promoters). Each name is also the key file's stem and starts with ``INSECURE-``."""
    roles: dict[str, tuple[str, ...]] = {
        role: (f"{DEMO_KEY_PREFIX}{role}",) for role in (*DEMO_SERVICE_ROLES, *STAGE_ROLES)
    }
    roles[kinds.PROMOTION] = tuple(f"{DEMO_KEY_PREFIX}promotion-{n}" for n in (1, 2, 3))
    return roles


def package_demo_dir() -> Path:
    """Return the directory of the demo data shipped inside the package (``_demo``)."""
    return Path(__file__).resolve().parent / "_demo"


@frozen
class DemoKeys:
    """The demo's private keys by name (keys-example/<name>.pem)."""

    keys: Mapping[str, PrivateKey]

    @classmethod
    def load(cls, directory: Path) -> DemoKeys:
        """Load every key ``demo_key_names`` lists from ``directory`` (unencrypted PEM)."""
        names = sorted({n for group in demo_key_names().values() for n in group})
        return cls({name: load_private_key(Path(directory) / f"{name}.pem") for name in names})

    def role(self, role: str) -> list[PrivateKey]:
        """Return the keys holding ``role``."""
        return [self.keys[name] for name in demo_key_names()[role]]

    def one(self, role: str) -> PrivateKey:
        """Return the first key holding ``role``."""
        return self.role(role)[0]


def demo_policy(keys: DemoKeys) -> TrustPolicy:
    """Return the demo's trust policy version 1: each role its key(s), promotion 2-of-3."""
    grants = [
        (role, keys.keys[name].public_key, name)
        for role, names in demo_key_names().items()
        for name in names
    ]
    return build_policy(
        origin=DEMO_ORIGIN,
        expires=DEMO_POLICY_EXPIRES,
        grants=grants,
        thresholds={kinds.PROMOTION: DEMO_PROMOTION_THRESHOLD},
    )


@frozen
class DemoStage:
    """One recorded stage of the demo."""

    kind: str
    label: str
    blob_id: str
    log_index: int
    ready: bool
    signers: tuple[str, ...]
    parents: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "kind": self.kind,
            "label": self.label,
            "blob_id": self.blob_id,
            "log_index": self.log_index,
            "ready": self.ready,
            "signers": list(self.signers),
            "parents": list(self.parents),
        }


@frozen
class DemoBundle:
    """The demo's last step: the release exported as a bundle and verified offline from it."""

    path: Path | None  # None: written to a temporary file that no longer exists
    bundle_id: str
    entries: int
    blobs: int
    verified: bool  # the offline verdict: the release verifies and was promoted
    status: str
    findings: tuple[ChainFinding, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "path": str(self.path) if self.path is not None else None,
            "bundle_id": self.bundle_id,
            "entries": self.entries,
            "blobs": self.blobs,
            "verified": self.verified,
            "status": self.status,
            "findings": [finding.to_dict() for finding in self.findings],
        }


@frozen
class DemoSummary:
    """What ``run_demo`` did: built or verified, every stage, and the release's status."""

    ledger: Path
    mode: str  # "built" or "verified"
    stages: tuple[DemoStage, ...]
    release_gate: str
    release_id: str
    promoted: bool
    status: str
    policy_version: int | None
    checkpoint_size: int | None
    findings: tuple[ChainFinding, ...]
    as_of: str
    bundle: DemoBundle | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (the ``cmf demo --json`` output)."""
        return {
            "bundle": self.bundle.to_dict() if self.bundle is not None else None,
            "ledger": str(self.ledger),
            "mode": self.mode,
            "release_gate": self.release_gate,
            "release_id": self.release_id,
            "promoted": self.promoted,
            "status": self.status,
            "policy_version": self.policy_version,
            "checkpoint_size": self.checkpoint_size,
            "as_of": self.as_of,
            "stages": [stage.to_dict() for stage in self.stages],
            "findings": [finding.to_dict() for finding in self.findings],
        }


class DemoRefusedError(LedgerError):
    """The demo's target holds something other than the demo ledger; nothing was changed."""


@dataclass
class _Recorder:
    """Records the demo's stages one commit at a time and remembers what it recorded."""

    ledger: Ledger
    keys: DemoKeys
    tool: str
    stages: list[DemoStage] = field(default_factory=list)

    def add(self, kind: str, manifest: Any, parents: Sequence[str]) -> str:
        """Record ``manifest`` (a ``kind``) signed by the kind's role key; commit; return its id."""
        signer = self.keys.one(kinds.role_for(kind))
        with self.ledger.writer(log_key=self.keys.one("log")) as writer:
            entry = record_manifest(
                writer,
                self.ledger,
                kind=kind,
                data=manifest_data(manifest),
                parents=parents,
                signers=[signer],
                time=DEMO_TIMES[kind],
                tool_version=self.tool,
            )
        self.remember(kind, manifest_label(manifest), entry, ready_of(manifest), [signer], parents)
        return entry.blob_id

    def remember(
        self,
        kind: str,
        label: str,
        entry: LogEntry,
        ready: bool,
        signers: Sequence[PrivateKey],
        parents: Sequence[str],
    ) -> None:
        names = key_names_of(self.keys)
        self.stages.append(
            DemoStage(
                kind,
                label,
                entry.blob_id,
                entry.index,
                ready,
                tuple(names[s.public_key.key_id] for s in signers),
                tuple(parents),
            )
        )


def key_names_of(keys: DemoKeys) -> dict[str, str]:
    """Return key id -> name of the demo keys."""
    return {key.public_key.key_id: name for name, key in keys.keys.items()}


def record_demo(
    path: Path, run: FactoryRun, keys: DemoKeys, tool: str, *, promote: bool = True
) -> list[DemoStage]:
    """Create the demo ledger at ``path``: policy, every stage, the promotion (unless
    ``promote`` is False) and the witness's cosignature of the final checkpoint.

    Every record is committed on its own (each stage's parents must be committed before it is
    checked), so each gets a checkpoint, as in a real factory. Returns the stages in log order.
    """
    from .chain import record_policy, record_trace_file

    log_key = keys.one("log")
    policy = demo_policy(keys)
    ledger = Ledger.create(path, origin=DEMO_ORIGIN, log_key=log_key.public_key)
    recorder = _Recorder(ledger, keys, tool)
    try:
        root = keys.one("root")
        with ledger.writer(log_key=log_key) as writer:
            entry = record_policy(
                writer,
                ledger,
                policy=policy,
                signers=[root],
                time=DEMO_TIMES[POLICY_KIND],
                tool_version=tool,
            )
        recorder.remember(POLICY_KIND, f"version {policy.version}", entry, True, [root], ())
        trace_key = keys.one(kinds.TRACE_DATASET)
        with ledger.writer(log_key=log_key) as writer:
            entry = record_trace_file(
                writer,
                ledger,
                path=run.traces,
                signers=[trace_key],
                time=DEMO_TIMES[kinds.TRACE_DATASET],
                tool_version=tool,
            )
        recorder.remember(kinds.TRACE_DATASET, run.traces.name, entry, True, [trace_key], ())
        gate = _record_stages(recorder, run, entry.blob_id)
        if promote:
            _promote_demo(recorder, gate, run.gate.release_id)
        _witness_latest_checkpoint(ledger, keys)
    finally:
        ledger.close()
    return recorder.stages


def _record_stages(recorder: _Recorder, run: FactoryRun, trace: str) -> str:
    """Record every stage manifest of ``run`` along the chain's edges; return the gate's id."""
    add = recorder.add
    report = add(kinds.DATASET_REPORT, run.report, [trace])
    training = add(kinds.TRAINING_MANIFEST, run.training, [report])
    benchmarks = [add(kinds.BENCHMARK_RESULT, b, [training]) for b in run.benchmarks]
    selection = add(kinds.SELECTION_REPORT, run.selection, benchmarks)
    deployment = add(kinds.DEPLOYMENT_MANIFEST, run.deployment, [selection])
    mapping = add(kinds.SECTOR_MAPPING, run.mapping, [])
    evidence = add(kinds.EVIDENCE_PACK, run.evidence, [deployment, mapping])
    runtime = add(kinds.RUNTIME_PACKAGE, run.runtime, [deployment, evidence])
    monitoring = add(kinds.MONITORING_MANIFEST, run.monitoring, [runtime])
    register = add(kinds.RISK_REGISTER, run.register, [evidence, monitoring])
    return add(kinds.RELEASE_GATE, run.gate, [runtime, evidence, monitoring, register])


def _promote_demo(recorder: _Recorder, gate: str, release_id: str) -> None:
    """Promote the demo release with the first two promotion keys (the 2-of-3 threshold)."""
    from .chain import promote_release

    ledger, keys = recorder.ledger, recorder.keys
    promoters = keys.role(kinds.PROMOTION)[:DEMO_PROMOTION_THRESHOLD]
    with ledger.writer(log_key=keys.one("log")) as writer:
        report = promote_release(
            ledger,
            writer,
            gate,
            trust=keys.one("root").public_key,
            as_of=DEMO_AS_OF,
            signers=promoters,
            time=DEMO_TIMES[kinds.PROMOTION],
            tool_version=recorder.tool,
        )
        if not report.ok:
            codes = ", ".join(finding.code for finding in report.findings)
            raise LedgerError(f"the demo release does not verify: {codes}")
        index = ledger.size + writer.pending - 1
    recorder.remember(kinds.PROMOTION, release_id, ledger.entry(index), True, promoters, (gate,))


def _witness_latest_checkpoint(ledger: Ledger, keys: DemoKeys) -> None:
    """Add the demo witness's cosignature/v1 (fixed witness time) to the latest checkpoint."""
    from .ledger.checkpoint import open_checkpoint
    from .ledger.note import cosign
    from .timestamps import parse_instant

    size = ledger.size
    # A witness cosigns only a checkpoint whose log signature it has verified.
    _, note = open_checkpoint(
        ledger.checkpoint(size), origin=ledger.origin, key=ledger.log_public_key
    )
    witness = keys.one("witness")
    when = int(parse_instant(DEMO_WITNESS_TIME, field="witness time").timestamp())
    with ledger.writer(log_key=keys.one("log")) as writer:
        writer.add_cosignature(
            size, cosign(note.text, witness_name(), witness, when), witness.public_key
        )


def witness_name() -> str:
    """Return the demo witness's key name (the name its cosignatures are made under)."""
    return demo_key_names()["witness"][0]


def _is_empty_target(path: Path) -> bool:
    """Return True if ``path`` is missing or an empty directory."""
    if not path.exists():
        return True
    return path.is_dir() and not any(path.iterdir())


def run_demo(
    target: Path,
    *,
    data: Path | None = None,
    rows: RowFilter = _unchanged,
    bundle: Path | None = None,
) -> DemoSummary:
    """Run the whole factory on the demo examples and record it all in the ledger ``target``.

    ``data`` holds ``examples/`` and ``keys-example/`` (default: the copies shipped in the
    package). A missing or empty ``target`` gets the demo ledger (built in a temporary sibling
    directory and renamed into place, so it appears complete or not at all). A ``target`` that
    already holds exactly the demo's log is verified instead, and left unchanged. Anything else
    raises DemoRefusedError without touching it.

    Last, the promoted release is exported as an offline bundle (to ``bundle``, or to a
    temporary file) and that file is verified with nothing but the pinned example root key and
    the demo clock, as a customer would (``cmf bundle verify``).
    """
    target = Path(target)
    data = Path(data) if data is not None else package_demo_dir()
    building = _is_empty_target(target)
    if not building and not (target / "config.json").is_file():
        raise DemoRefusedError(
            f"{target}: not empty and not a ledger; the demo only writes into a missing or "
            "empty directory"
        )
    keys = DemoKeys.load(data / "keys-example")
    run = build_factory(data / "examples", rows=rows)
    if building:
        ensure_dir(target.parent)
    scratch_parent = target.parent if building else None  # same file system: rename works
    with tempfile.TemporaryDirectory(prefix=".cmf-demo-", dir=scratch_parent) as scratch:
        built = Path(scratch) / "ledger"
        stages = record_demo(built, run, keys, tool_version())
        if building:
            if target.exists():
                target.rmdir()  # empty (checked above); a rename cannot replace a directory
            os.rename(built, target)
            fsync_path(target.parent)  # a rename is durable once its directory is fsynced
        else:
            _require_same_log(built, target)
    summary = _demo_summary(target, "built" if building else "verified", stages, keys)
    if not summary.promoted:
        return summary
    return dataclasses.replace(summary, bundle=_demo_bundle(summary, keys, bundle))


def _demo_bundle(summary: DemoSummary, keys: DemoKeys, output: Path | None) -> DemoBundle:
    """Export the demo release as a bundle and verify that file offline against the root key."""
    from .bundle.export import export_and_verify

    root = keys.one("root").public_key
    with tempfile.TemporaryDirectory(prefix=".cmf-demo-bundle-") as scratch:
        path = Path(output) if output is not None else Path(scratch) / "release.cmfbundle"
        done = export_and_verify(
            summary.ledger, summary.release_gate, trust=root, as_of=DEMO_AS_OF, output=path
        )
    return DemoBundle(
        path=Path(output) if output is not None else None,
        bundle_id=done.bundle_id,
        entries=done.entries,
        blobs=done.blobs,
        verified=done.report.ok,
        status=done.report.status,
        findings=done.report.findings,
    )


def _require_same_log(expected_path: Path, actual_path: Path) -> None:
    """Raise DemoRefusedError unless the ledger at ``actual_path`` holds exactly the leaves of
    the one at ``expected_path`` (the leaves bind every kind, blob and signed envelope)."""
    with Ledger.open(expected_path) as expected, Ledger.open(actual_path) as actual:
        same = (expected.origin, expected.size) == (actual.origin, actual.size) and all(
            expected.leaf(i) == actual.leaf(i) for i in range(expected.size)
        )
        if not same:
            raise DemoRefusedError(
                f"{actual_path}: holds a ledger other than the demo's ({actual.size} entries, "
                f"origin {actual.origin}); the demo neither appends to it nor replaces it"
            )


def _demo_summary(
    target: Path, mode: str, stages: Sequence[DemoStage], keys: DemoKeys
) -> DemoSummary:
    """Check the release's status in the ledger at ``target`` as of the demo clock."""
    from .chain import LedgerSource, release_status

    gate_stage = next(stage for stage in stages if stage.kind == kinds.RELEASE_GATE)
    gate = gate_stage.blob_id
    with Ledger.open(target) as ledger:
        status = release_status(
            LedgerSource(ledger), gate, trust=keys.one("root").public_key, as_of=DEMO_AS_OF
        )
        record = None
        if status.promotion_blob_id is not None:
            record = kinds.PromotionRecord.from_dict(
                parse_json_object(ledger.objects.get(status.promotion_blob_id), "promotion")
            )
    return DemoSummary(
        ledger=target,
        mode=mode,
        stages=tuple(stages),
        release_gate=gate,
        release_id=gate_stage.label,
        promoted=status.status == "promoted",
        status=status.status,
        policy_version=record.policy_version if record else None,
        checkpoint_size=record.checkpoint_size if record else None,
        findings=status.findings,
        as_of=DEMO_TIMES[kinds.PROMOTION],
    )


def file_blob_id(path: Path) -> str:
    """Return the blob id a file would have in the ledger (its SHA-256, streamed)."""
    return hash_file(Path(path))


__all__ = [
    "DEMO_AS_OF",
    "DEMO_ORIGIN",
    "DEMO_TIMES",
    "EXAMPLE_FILES",
    "REQUIRED",
    "SCALAR_TYPES",
    "STAGE_PARAMS",
    "BlobView",
    "DemoBundle",
    "DemoKeys",
    "DemoRefusedError",
    "DemoStage",
    "DemoSummary",
    "EntryView",
    "FactoryRun",
    "InputError",
    "ManifestFile",
    "Param",
    "Trust",
    "benchmark_candidates",
    "benchmark_metrics",
    "binding_findings",
    "build_benchmark",
    "build_deployment",
    "build_evidence",
    "build_factory",
    "build_gate",
    "build_mapping",
    "build_monitoring",
    "build_policy",
    "build_register",
    "build_runtime",
    "build_selection",
    "build_training",
    "current_policy",
    "demo_key_names",
    "demo_policy",
    "describe_blob",
    "example_params",
    "file_blob_id",
    "fsck_findings",
    "key_names",
    "ledger_entries",
    "load_trust_file",
    "manifest_data",
    "manifest_findings",
    "manifest_label",
    "package_demo_dir",
    "parse_json_object",
    "policy_chain",
    "policy_records",
    "read_json_object",
    "read_manifest",
    "read_params",
    "ready_of",
    "record_demo",
    "record_manifest",
    "resolve_trust",
    "run_demo",
    "signature_findings",
    "tool_version",
    "trust_findings",
    "validate_dataset",
]
