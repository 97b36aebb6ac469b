"""Parent bindings: every field a child copied from a parent equals the parent's recomputed value.

The reference (reference-behaviour.md section 15) copies identity, hashes and readiness from
parent to child and compares stored strings. Here each child is checked against its *signed*
parents, with every parent hash recomputed from the parent's own fields, including the bindings
the reference forgot (section 19 items 2-3). Each binding family has one code, ``bind_<child>_<
family>``; docs/chain.md lists them all.

A child's *verdict family* (``bind_<child>_verdict``) checks the findings whose presence depends
only on the parents (for example ``dataset_not_ready``): a child whose signer dropped such a
finding to look ready is caught here, not just one with a wrong copied field.

A dataset report binds to its trace blob by ``dataset_hash``. A trace blob is recorded in its
canonical form (the JSON array whose SHA-256 *is* ``dataset_hash``), so the default check is
``dataset_hash == trace blob id``, the blob itself being re-hashed by the verifier; re-validating
every row (counts and row findings) is the *deep* check (``deep=True``).

These functions are pure except ``dataset_report``'s, which may stream the trace dataset: from
one new stream (``TraceDataset.open``), hashing every byte it parses, so the rows bound are the
blob's bytes and never other bytes served after the verifier hashed the blob, such as a file
swapped in at the same path (``bind_dataset_trace_changed``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ..benchmark_selection import CustomerBenchmarkResult, CustomerModelSelectionReport
from ..dataset_contract import (
    CustomerDatasetValidationReport,
    CustomerTraceFinding,
    CustomerWorkspace,
    validate_trace_rows,
)
from ..deployment_manifest import CustomerDeploymentManifest
from ..evidence_pack import CustomerEvidencePackManifest
from ..ledger.errors import IntegrityError
from ..monitoring_manifest import CustomerMonitoringManifest
from ..release_gate import CustomerReleaseGateManifest
from ..risk_register import CustomerRiskRegister
from ..runtime_package import CustomerRuntimePackage
from ..sector_extension import SectorEvidenceMapping
from ..training_manifest import CustomerTrainingManifest
from .findings import ChainFinding, error
from .kinds import (
    BENCHMARK_RESULT,
    DATASET_REPORT,
    DEPLOYMENT_MANIFEST,
    EVIDENCE_PACK,
    MONITORING_MANIFEST,
    PROMOTION,
    RELEASE_GATE,
    RISK_REGISTER,
    RUNTIME_PACKAGE,
    SECTOR_MAPPING,
    SELECTION_REPORT,
    TRACE_DATASET,
    TRAINING_MANIFEST,
    PromotionRecord,
    TraceDataset,
)

_T = TypeVar("_T")
Parents = Mapping[str, Sequence[object]]

IDENTITY = ("customer_id", "workspace_id", "tenant_id")
DEPLOYMENT_IDENTITY = (*IDENTITY, "deployment_id")
BOUNDARY_CODES = {
    "customer_id": "customer_boundary_mismatch",
    "workspace_id": "workspace_boundary_mismatch",
    "tenant_id": "tenant_boundary_mismatch",
    "deployment_id": "deployment_boundary_mismatch",
}

# Dataset findings that depend on what the report does not record (the workspace's allowed
# splits, the vertical profile); every other dataset finding is recomputed from the rows.
_WORKSPACE_DEPENDENT_CODES = frozenset({"split_not_allowed", "split_missing"})
_PROFILE_CODE_PREFIX = "sector_"


def check_bindings(
    kind: str, manifest: object, parents: Parents, *, deep: bool = False
) -> list[ChainFinding]:
    """Return one finding per broken binding family of ``manifest`` (a ``kind``) to ``parents``.

    ``parents`` maps each parent kind to the parsed, self-hash-verified parent objects (a
    TraceDataset, whose ``blob_id`` the caller has checked, for ``trace_dataset``). The parent
    edges must already be valid (see ``kinds.parent_kind_problems``); a missing or mistyped
    parent raises ValueError / TypeError. ``deep`` re-validates a dataset report's trace rows
    (``bind_dataset_counts``, ``bind_dataset_findings``); it changes no other family.
    Findings carry ``kind`` but no blob id (the caller knows it).
    """
    if kind == DATASET_REPORT:
        found = _bind_dataset_report(manifest, parents, deep=deep)
    else:
        checker = _CHECKERS.get(kind)
        found = checker(manifest, parents) if checker is not None else []
    return [ChainFinding(f.code, f.severity, f.message, kind=kind) for f in found]


# -- helpers -----------------------------------------------------------------------------------


def _one(parents: Parents, kind: str, cls: type[_T]) -> _T:
    """Return the single ``kind`` parent, checking its type."""
    found = _all(parents, kind, cls)
    if len(found) != 1:
        raise ValueError(f"bindings need exactly one {kind} parent, got {len(found)}")
    return found[0]


def _all(parents: Parents, kind: str, cls: type[_T]) -> list[_T]:
    """Return every ``kind`` parent, checking each one's type."""
    found: list[_T] = []
    for item in parents.get(kind, ()):
        if not isinstance(item, cls):
            raise TypeError(f"{kind} parent must be {cls.__name__}, got {type(item).__name__}")
        found.append(item)
    return found


def _child(manifest: object, cls: type[_T]) -> _T:
    """Return ``manifest`` if it is a ``cls``, else raise TypeError."""
    if not isinstance(manifest, cls):
        raise TypeError(f"expected {cls.__name__}, got {type(manifest).__name__}")
    return manifest


def _canonical(value: Any) -> str:
    """Return the canonical JSON text of ``value``: equal text means equal JSON, type included.

    ``1 == 1.0 == True`` in Python, but not once written as JSON and hashed.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _differing(child: object, expected: Mapping[str, Any]) -> list[str]:
    """Return the names of ``expected`` whose value differs from the child's attribute."""
    return [name for name, value in expected.items() if not _same(getattr(child, name), value)]


def _same(actual: Any, expected: Any) -> bool:
    """Return True when both values have the same canonical JSON text (``_canonical``).

    Two exact ``str`` values (the identity fields, mostly) compare directly: JSON escapes each
    string one way, so their texts are equal exactly when the strings are.
    """
    if type(actual) is str and type(expected) is str:
        return actual == expected
    return _canonical(actual) == _canonical(expected)


def _fields_of(source: object, names: Iterable[str]) -> dict[str, Any]:
    """Return ``{name: getattr(source, name)}`` for ``names``."""
    return {name: getattr(source, name) for name in names}


def _check_fields(
    code: str, child: object, expected: Mapping[str, Any], what: str
) -> list[ChainFinding]:
    """Return one ``code`` finding naming every field that differs from ``expected``."""
    diff = _differing(child, expected)
    if not diff:
        return []
    return [error(code, f"{', '.join(diff)} differ(s) from {what}")]


def _check_map(
    code: str, actual: Mapping[str, Any], expected: Mapping[str, Any], what: str
) -> list[ChainFinding]:
    """Return one ``code`` finding naming the keys where two JSON maps differ (keys included)."""
    keys = sorted(set(actual) | set(expected))
    diff = [
        key
        for key in keys
        if key not in actual or key not in expected or not _same(actual[key], expected[key])
    ]
    if not diff:
        return []
    return [error(code, f"{what}: entries {', '.join(diff)} differ")]


def _check_hash(code: str, stored: str, recomputed: str, what: str) -> list[ChainFinding]:
    """Return a ``code`` finding when a copied hash differs from the parent's recomputed one."""
    if stored == recomputed:
        return []
    return [error(code, f"{what}: copied {stored!r}, parent recomputes to {recomputed!r}")]


def _finding_keys(
    findings: Iterable[Mapping[str, str]], considered: frozenset[str]
) -> list[tuple[str, str]]:
    """Return the sorted (code, risk_id) pairs of the findings whose code is ``considered``."""
    return sorted(
        (f.get("code", ""), f.get("risk_id", "")) for f in findings if f.get("code") in considered
    )


def _check_verdict(
    code: str,
    findings: Iterable[Mapping[str, str]],
    expected: Iterable[tuple[str, str]],
    considered: frozenset[str],
) -> list[ChainFinding]:
    """Compare the parent-dependent findings a child holds with those its parents imply.

    Only codes in ``considered`` are compared; both sides are multisets of (code, risk_id).
    """
    actual = _finding_keys(findings, considered)
    wanted = sorted(expected)
    if actual == wanted:
        return []
    missing = Counter(wanted) - Counter(actual)
    extra = Counter(actual) - Counter(wanted)
    parts = []
    if missing:
        parts.append("missing " + ", ".join(_label(key) for key in sorted(missing.elements())))
    if extra:
        parts.append("unexpected " + ", ".join(_label(key) for key in sorted(extra.elements())))
    return [error(code, "findings implied by the signed parents differ: " + "; ".join(parts))]


def _label(key: tuple[str, str]) -> str:
    """Return ``code`` or ``code(risk_id)`` for a verdict message."""
    code, risk_id = key
    return f"{code}({risk_id})" if risk_id else code


def _no_finding(code: str) -> tuple[str, str]:
    """Return the (code, risk_id) key of a finding that carries no risk id."""
    return (code, "")


# -- dataset report <- trace dataset ---------------------------------------------------------


def _dataset_comparable(findings: Iterable[CustomerTraceFinding]) -> list[dict[str, str]]:
    """Return the findings that the rows alone determine, as dicts, in order."""
    return [
        f.to_dict()
        for f in findings
        if f.code not in _WORKSPACE_DEPENDENT_CODES and not f.code.startswith(_PROFILE_CODE_PREFIX)
    ]


def _bind_dataset_report(manifest: object, parents: Parents, *, deep: bool) -> list[ChainFinding]:
    """The report's ``dataset_hash`` names its trace rows; ``deep`` re-validates the rows too.

    Default: a canonical trace blob's id is the SHA-256 of its rows' canonical array, and the
    caller re-hashed the blob, so ``dataset_hash == blob id`` settles the binding without
    reading a row. A blob in another layout (JSONL recorded as is) has its rows streamed to
    recompute the hash, from the bytes hashed against the blob id in the same pass. A blob
    whose bytes hash to ``dataset_hash`` but are not the canonical array of rows is caught
    only by ``deep``.
    """
    report = _child(manifest, CustomerDatasetValidationReport)
    trace = _one(parents, TRACE_DATASET, TraceDataset)
    if deep:
        return _revalidate_dataset(report, trace)
    if report.dataset_hash == trace.blob_id:
        return []
    from ..trace_files import hash_trace_rows  # only blobs in another layout are read

    try:
        recomputed = hash_trace_rows(_blob_rows(trace))
    except IntegrityError as exc:
        return [_trace_changed(exc)]
    except ValueError as exc:
        return [error("bind_dataset_trace_unreadable", f"trace dataset cannot be read: {exc}")]
    return _check_hash("bind_dataset_hash", report.dataset_hash, recomputed, "dataset_hash")


def _blob_rows(trace: TraceDataset) -> Iterator[dict[str, Any]]:
    """Yield the trace blob's rows, parsed from one new stream that hashes every byte it reads.

    The rows come from exactly the bytes hashed: once they are all read, and before the
    iterator ends, IntegrityError if those bytes are not blob ``trace.blob_id`` (the source
    served other bytes than the verifier hashed, or the blob is damaged). Whatever the caller
    derived from the rows is then lost with the exception: it can never pass. TraceFileError
    (a ValueError) on malformed rows.
    """
    from ..ledger.blobs import BlobReader  # only a trace blob's rows need it
    from ..trace_files import iter_trace_rows_from

    # The stream is closed even if the reader refuses the id (closing it twice is harmless).
    with trace.open() as stream, BlobReader(trace.blob_id, stream) as reader:
        yield from iter_trace_rows_from(reader, trace.name)
        reader.verify()


def _trace_changed(exc: IntegrityError) -> ChainFinding:
    """The finding for trace rows read from bytes that are not the trace blob."""
    return error(
        "bind_dataset_trace_changed",
        f"the trace rows were read from bytes that are not the trace blob ({exc}): it changed "
        "after it was hashed, or is damaged; nothing derived from those rows counts",
    )


def _revalidate_dataset(
    report: CustomerDatasetValidationReport, trace: TraceDataset
) -> list[ChainFinding]:
    """Re-validate the trace rows, streamed and hashed in one pass (``_blob_rows``); compare the
    hash, counts and row findings."""
    # Only the identity matters to the compared results; the allowed splits are the report's
    # own split names so that an honest report draws no split findings (they are not compared).
    workspace = CustomerWorkspace(
        customer_id=report.customer_id,
        workspace_id=report.workspace_id,
        tenant_id=report.tenant_id,
        data_classification="",
        allowed_splits=tuple(sorted(report.split_counts)),
    )
    try:
        recomputed = validate_trace_rows(_blob_rows(trace), workspace)
    except IntegrityError as exc:
        return [_trace_changed(exc)]
    except ValueError as exc:
        return [error("bind_dataset_trace_unreadable", f"trace dataset cannot be read: {exc}")]
    findings = _check_hash(
        "bind_dataset_hash", report.dataset_hash, recomputed.dataset_hash, "dataset_hash"
    )
    counts = ("row_count", "split_counts", "severity_counts", "high_risk_count")
    findings += _check_fields(
        "bind_dataset_counts", report, _fields_of(recomputed, counts), "the trace rows"
    )
    if _dataset_comparable(report.findings) != _dataset_comparable(recomputed.findings):
        findings.append(
            error(
                "bind_dataset_findings",
                "row findings differ from a re-validation of the trace rows",
            )
        )
    return findings


# -- training <- dataset report; benchmark <- training ------------------------------------------


def _bind_training(manifest: object, parents: Parents) -> list[ChainFinding]:
    """Training copies identity, dataset_hash and readiness from the dataset report."""
    training = _child(manifest, CustomerTrainingManifest)
    report = _one(parents, DATASET_REPORT, CustomerDatasetValidationReport)
    findings = _check_fields(
        "bind_training_identity", training, _fields_of(report, IDENTITY), "the dataset report"
    )
    findings += _check_hash(
        "bind_training_dataset_hash", training.dataset_hash, report.dataset_hash, "dataset_hash"
    )
    verdict = _check_verdict(
        "bind_training_verdict",
        training.findings,
        [] if report.ready else [_no_finding("dataset_not_ready")],
        frozenset({"dataset_not_ready"}),
    )
    if not verdict and training.dataset_ready != report.ready:
        verdict = [error("bind_training_verdict", "dataset_ready differs from the report's ready")]
    return findings + verdict


def _bind_benchmark(manifest: object, parents: Parents) -> list[ChainFinding]:
    """A benchmark result copies identity and the training manifest's hash and readiness."""
    result = _child(manifest, CustomerBenchmarkResult)
    training = _one(parents, TRAINING_MANIFEST, CustomerTrainingManifest)
    findings = _check_fields(
        "bind_benchmark_identity", result, _fields_of(training, IDENTITY), "the training manifest"
    )
    findings += _check_hash(
        "bind_benchmark_training_hash",
        result.training_manifest_hash,
        training.recompute_hash(),
        "training_manifest_hash",
    )
    findings += _check_verdict(
        "bind_benchmark_verdict",
        result.findings,
        [] if training.ready else [_no_finding("training_manifest_not_ready")],
        frozenset({"training_manifest_not_ready"}),
    )
    return findings


# -- selection <- benchmark results ------------------------------------------------------------


def _bind_selection(manifest: object, parents: Parents) -> list[ChainFinding]:
    """The candidates are exactly the signed benchmark results, all of one customer.

    Which candidate was selected is the selection's own verified invariant (``verify_hash``
    re-runs the ranking rule), so it is not re-checked here.
    """
    selection = _child(manifest, CustomerModelSelectionReport)
    results = _all(parents, BENCHMARK_RESULT, CustomerBenchmarkResult)
    # One pass over each side: every hash, and every canonical text, is computed once.
    result_hashes = [result.recompute_hash() for result in results]
    candidate_hashes = [candidate.recompute_hash() for candidate in selection.candidates]
    position = {digest: n for n, digest in enumerate(result_hashes)}  # a repeat keeps the last
    wanted, held = Counter(result_hashes), Counter(candidate_hashes)
    findings: list[ChainFinding] = []
    if held != wanted:
        unsigned = sum((held - wanted).values())
        unused = sum((wanted - held).values())
        findings.append(
            error(
                "bind_selection_candidate_set",
                f"{unsigned} candidate(s) are not signed parents; "
                f"{unused} signed parent(s) are not candidates",
            )
        )
    texts: dict[int, str] = {}  # position of a signed result -> its canonical text
    for index, (candidate, digest) in enumerate(
        zip(selection.candidates, candidate_hashes, strict=True)
    ):
        n = position.get(digest)
        if n is None:
            continue  # counted in the candidate set finding
        if n not in texts:
            texts[n] = _canonical(results[n].to_dict())
        if texts[n] != _canonical(candidate.to_dict()):
            findings.append(_candidate_difference(index, candidate, results[n]))
    identities = {tuple(getattr(c, name) for name in IDENTITY) for c in selection.candidates}
    if len(identities) > 1:
        findings.append(
            error(
                "bind_selection_identity",
                f"candidates span {len(identities)} customer/workspace/tenant identities",
            )
        )
    return findings


def _candidate_difference(
    index: int, candidate: CustomerBenchmarkResult, parent: CustomerBenchmarkResult
) -> ChainFinding:
    """The finding for ``candidates[index]``, naming each field that differs from its parent."""
    signed = parent.to_dict()
    diff = [
        key
        for key, value in candidate.to_dict().items()
        if _canonical(value) != _canonical(signed.get(key))
    ]
    return error(
        "bind_selection_candidate",
        f"candidates[{index}] differs from its signed benchmark result in {', '.join(diff)}",
    )


# -- deployment <- selection -------------------------------------------------------------------


def _selected(selection: CustomerModelSelectionReport) -> CustomerBenchmarkResult | None:
    """Return the first candidate whose benchmark_id is the selected one (None if none is)."""
    if not selection.selected_benchmark_id:
        return None
    for candidate in selection.candidates:
        if candidate.benchmark_id == selection.selected_benchmark_id:
            return candidate
    return None


def _bind_deployment(manifest: object, parents: Parents) -> list[ChainFinding]:
    """A deployment copies the selection's hash and choice, and the chosen candidate's identity."""
    deployment = _child(manifest, CustomerDeploymentManifest)
    selection = _one(parents, SELECTION_REPORT, CustomerModelSelectionReport)
    findings = _check_hash(
        "bind_deployment_selection_hash",
        deployment.selection_hash,
        selection.recompute_hash(),
        "selection_hash",
    )
    findings += _check_fields(
        "bind_deployment_selected_model",
        deployment,
        _fields_of(selection, ("selected_benchmark_id", "selected_model_artifact_uri")),
        "the selection report",
    )
    chosen = _selected(selection)
    identity = _fields_of(chosen, IDENTITY) if chosen else dict.fromkeys(IDENTITY, "")
    findings += _check_fields(
        "bind_deployment_identity", deployment, identity, "the selected candidate"
    )
    expected = []
    if not selection.ready:
        expected.append(_no_finding("selection_not_ready"))
    if not selection.selected_model_artifact_uri:
        expected.append(_no_finding("selected_model_missing"))
    findings += _check_verdict(
        "bind_deployment_verdict",
        deployment.findings,
        expected,
        frozenset({"selection_not_ready", "selected_model_missing"}),
    )
    return findings


# -- evidence pack <- deployment + sector mapping ----------------------------------------------


def _deployment_artefacts(deployment: CustomerDeploymentManifest) -> dict[str, str]:
    """Return the nine deployment-derived artefacts of reference section 8.2, hash recomputed."""
    policy = deployment.policy
    return {
        "audit_log_uri": policy.audit_log_uri,
        "deployment_hash": deployment.recompute_hash(),
        "deployment_package_uri": deployment.package_uri,
        "evidence_pack_uri": policy.evidence_pack_uri,
        "rollback_package_uri": policy.rollback_package_uri,
        "selected_benchmark_id": deployment.selected_benchmark_id,
        "selected_model_artifact_uri": deployment.selected_model_artifact_uri,
        "selection_hash": deployment.selection_hash,
        "telemetry_mode": policy.telemetry_mode,
    }


_MAPPING_HASH_KEY = "regulation_mapping_hash"  # the tenth artefact, from the sector mapping


def _bind_evidence(manifest: object, parents: Parents) -> list[ChainFinding]:
    """An evidence pack copies the deployment's ids and artefacts and the mapping's controls."""
    pack = _child(manifest, CustomerEvidencePackManifest)
    deployment = _one(parents, DEPLOYMENT_MANIFEST, CustomerDeploymentManifest)
    mapping = _one(parents, SECTOR_MAPPING, SectorEvidenceMapping)
    findings = _check_fields(
        "bind_evidence_identity",
        pack,
        _fields_of(deployment, (*DEPLOYMENT_IDENTITY, "environment")),
        "the deployment manifest",
    )
    findings += _check_map(
        "bind_evidence_artefacts",
        {key: value for key, value in pack.artefacts.items() if key != _MAPPING_HASH_KEY},
        _deployment_artefacts(deployment),
        "artefacts vs the deployment manifest",
    )
    mapping_diff = []
    if pack.artefacts.get(_MAPPING_HASH_KEY) != mapping.recompute_hash():
        mapping_diff.append(f"artefacts.{_MAPPING_HASH_KEY}")
    if _canonical(pack.control_evidence) != _canonical(mapping.control_evidence):
        mapping_diff.append("control_evidence")
    if mapping_diff:
        findings.append(
            error("bind_evidence_mapping", f"{', '.join(mapping_diff)} differ(s) from the mapping")
        )
    verdict = []
    if not deployment.ready:
        verdict.append(_no_finding("deployment_not_ready"))
    # As in the builder: any non-empty export_uri (even whitespace) is compared.
    if pack.export_uri and pack.export_uri != deployment.policy.evidence_pack_uri:
        verdict.append(_no_finding("evidence_uri_mismatch"))
    if pack.export_uri and pack.export_uri != mapping.evidence_pack_uri:
        verdict.append(_no_finding("regulation_mapping_uri_mismatch"))
    considered = frozenset(
        {"deployment_not_ready", "evidence_uri_mismatch", "regulation_mapping_uri_mismatch"}
    )
    findings += _check_verdict("bind_evidence_verdict", pack.findings, verdict, considered)
    return findings


# -- runtime <- deployment + evidence ----------------------------------------------------------


def _expected_runtime_config(
    deployment: CustomerDeploymentManifest, pack: CustomerEvidencePackManifest
) -> dict[str, Any]:
    """Return the 19-key runtime configuration of reference section 9.2, hashes recomputed."""
    policy = deployment.policy
    return {
        "customer_id": deployment.customer_id,
        "workspace_id": deployment.workspace_id,
        "tenant_id": deployment.tenant_id,
        "deployment_id": deployment.deployment_id,
        "deployment_hash": deployment.recompute_hash(),
        "evidence_hash": pack.recompute_hash(),
        "selected_benchmark_id": deployment.selected_benchmark_id,
        "selected_model_artifact_uri": deployment.selected_model_artifact_uri,
        "threshold": policy.threshold,
        "abstention_threshold": policy.abstention_threshold,
        "escalation_threshold": policy.escalation_threshold,
        "require_citations": policy.require_citations,
        "audit_log_uri": policy.audit_log_uri,
        "evidence_pack_uri": policy.evidence_pack_uri,
        "rollback_package_uri": policy.rollback_package_uri,
        "retention_days": policy.retention_days,
        "telemetry_mode": policy.telemetry_mode,
        "external_callbacks_allowed": pack.external_callbacks_allowed,
        "callback_endpoints": list(pack.callback_endpoints),
    }


def _bind_runtime(manifest: object, parents: Parents) -> list[ChainFinding]:
    """A runtime copies the deployment's ids and the evidence hash into fields and config."""
    runtime = _child(manifest, CustomerRuntimePackage)
    deployment = _one(parents, DEPLOYMENT_MANIFEST, CustomerDeploymentManifest)
    pack = _one(parents, EVIDENCE_PACK, CustomerEvidencePackManifest)
    findings = _check_fields(
        "bind_runtime_identity",
        runtime,
        _fields_of(deployment, DEPLOYMENT_IDENTITY),
        "the deployment manifest",
    )
    findings += _check_hash(
        "bind_runtime_evidence_hash", runtime.evidence_hash, pack.recompute_hash(), "evidence_hash"
    )
    findings += _check_map(
        "bind_runtime_config",
        runtime.runtime_config,
        _expected_runtime_config(deployment, pack),
        "runtime_config vs deployment and evidence pack",
    )
    verdict = []
    if not deployment.ready:
        verdict.append(_no_finding("deployment_not_ready"))
    if not pack.ready:
        verdict.append(_no_finding("evidence_pack_not_ready"))
    for field, code in BOUNDARY_CODES.items():
        if getattr(deployment, field) != getattr(pack, field):
            verdict.append(_no_finding(code))
    if pack.artefacts.get("deployment_hash") != deployment.deployment_hash:
        verdict.append(_no_finding("evidence_deployment_hash_mismatch"))
    considered = frozenset(
        {"deployment_not_ready", "evidence_pack_not_ready", "evidence_deployment_hash_mismatch"}
        | set(BOUNDARY_CODES.values())
    )
    findings += _check_verdict("bind_runtime_verdict", runtime.findings, verdict, considered)
    return findings


# -- monitoring <- runtime ---------------------------------------------------------------------


def _bind_monitoring(manifest: object, parents: Parents) -> list[ChainFinding]:
    """Monitoring copies the runtime's ids, evidence hash, config and (recomputed) runtime hash."""
    monitoring = _child(manifest, CustomerMonitoringManifest)
    runtime = _one(parents, RUNTIME_PACKAGE, CustomerRuntimePackage)
    config = runtime.runtime_config
    findings = _check_fields(
        "bind_monitoring_identity",
        monitoring,
        _fields_of(runtime, (*IDENTITY, "runtime_id", "deployment_id")),
        "the runtime package",
    )
    findings += _check_hash(
        "bind_monitoring_evidence_hash",
        monitoring.evidence_hash,
        runtime.evidence_hash,
        "evidence_hash",
    )
    expected_version = {
        "runtime_id": runtime.runtime_id,
        "runtime_hash": runtime.recompute_hash(),
        "deployment_id": runtime.deployment_id,
        "deployment_hash": str(config.get("deployment_hash", "")),
        "evidence_hash": runtime.evidence_hash,
        "selected_model_artifact_uri": str(config.get("selected_model_artifact_uri", "")),
    }
    findings += _check_map(
        "bind_monitoring_package_version",
        monitoring.package_version,
        expected_version,
        "package_version vs runtime package",
    )
    findings += _check_fields(
        "bind_monitoring_decision_log",
        monitoring,
        {"decision_log_uri": str(config.get("audit_log_uri", ""))},
        "the runtime config's audit_log_uri",
    )
    verdict = [] if runtime.ready else [_no_finding("runtime_package_not_ready")]
    for field, code in BOUNDARY_CODES.items():
        if config.get(field) != getattr(runtime, field):
            verdict.append(_no_finding(code))
    considered = frozenset({"runtime_package_not_ready", *BOUNDARY_CODES.values()})
    findings += _check_verdict("bind_monitoring_verdict", monitoring.findings, verdict, considered)
    return findings


# -- risk register <- evidence + monitoring ----------------------------------------------------


def _bind_risk(manifest: object, parents: Parents) -> list[ChainFinding]:
    """A risk register copies the evidence pack's ids and hash and the monitoring hash."""
    register = _child(manifest, CustomerRiskRegister)
    pack = _one(parents, EVIDENCE_PACK, CustomerEvidencePackManifest)
    monitoring = _one(parents, MONITORING_MANIFEST, CustomerMonitoringManifest)
    findings = _check_fields(
        "bind_risk_identity", register, _fields_of(pack, DEPLOYMENT_IDENTITY), "the evidence pack"
    )
    findings += _check_hash(
        "bind_risk_evidence_hash", register.evidence_hash, pack.recompute_hash(), "evidence_hash"
    )
    findings += _check_hash(
        "bind_risk_monitoring_hash",
        register.monitoring_hash,
        monitoring.recompute_hash(),
        "monitoring_hash",
    )
    verdict = []
    if not pack.ready:
        verdict.append(_no_finding("evidence_pack_not_ready"))
    if not monitoring.ready:
        verdict.append(_no_finding("monitoring_manifest_not_ready"))
    for field, code in BOUNDARY_CODES.items():
        if getattr(pack, field) != getattr(monitoring, field):
            verdict.append(_no_finding(code))
    if pack.evidence_hash != monitoring.evidence_hash:
        verdict.append(_no_finding("evidence_hash_mismatch"))
    for risk in register.risks:
        if risk.status != "accepted":
            continue
        if risk.linked_artifact_hashes.get("evidence_hash") != pack.evidence_hash:
            verdict.append(("risk_evidence_hash_mismatch", risk.risk_id))
        if risk.linked_artifact_hashes.get("monitoring_hash") != monitoring.monitoring_hash:
            verdict.append(("risk_monitoring_hash_mismatch", risk.risk_id))
    considered = frozenset(
        {
            "evidence_pack_not_ready",
            "monitoring_manifest_not_ready",
            "evidence_hash_mismatch",
            "risk_evidence_hash_mismatch",
            "risk_monitoring_hash_mismatch",
            *BOUNDARY_CODES.values(),
        }
    )
    findings += _check_verdict("bind_risk_verdict", register.findings, verdict, considered)
    return findings


# -- release gate <- runtime + evidence + monitoring + risk register ----------------------------


def _bind_gate(manifest: object, parents: Parents) -> list[ChainFinding]:
    """The gate copies the runtime's identity and the four artefact hashes (recomputed)."""
    gate = _child(manifest, CustomerReleaseGateManifest)
    runtime = _one(parents, RUNTIME_PACKAGE, CustomerRuntimePackage)
    pack = _one(parents, EVIDENCE_PACK, CustomerEvidencePackManifest)
    monitoring = _one(parents, MONITORING_MANIFEST, CustomerMonitoringManifest)
    register = _one(parents, RISK_REGISTER, CustomerRiskRegister)
    findings = _check_fields(
        "bind_gate_identity", gate, _fields_of(runtime, DEPLOYMENT_IDENTITY), "the runtime package"
    )
    findings += _check_map(
        "bind_gate_artifact_hashes",
        gate.artifact_hashes,
        {
            "runtime_hash": runtime.recompute_hash(),
            "evidence_hash": pack.recompute_hash(),
            "monitoring_hash": monitoring.recompute_hash(),
            "risk_register_hash": register.recompute_hash(),
        },
        "artifact_hashes vs the signed parents",
    )
    artefacts = (runtime, pack, monitoring, register)
    readiness = (
        (runtime.ready, "runtime_package_not_ready"),
        (pack.ready, "evidence_pack_not_ready"),
        (monitoring.ready, "monitoring_manifest_not_ready"),
        (register.ready, "risk_register_not_ready"),
    )
    verdict = [_no_finding(code) for ready, code in readiness if not ready]
    verdict += [
        _no_finding(code)
        for field, code in BOUNDARY_CODES.items()
        if len({getattr(artefact, field) for artefact in artefacts}) != 1
    ]
    equalities = (
        (runtime.evidence_hash == pack.evidence_hash, "runtime_evidence_hash_mismatch"),
        (monitoring.evidence_hash == pack.evidence_hash, "monitoring_evidence_hash_mismatch"),
        (register.evidence_hash == pack.evidence_hash, "risk_evidence_hash_mismatch"),
        (register.monitoring_hash == monitoring.monitoring_hash, "risk_monitoring_hash_mismatch"),
        (
            monitoring.package_version.get("runtime_hash") == runtime.runtime_hash,
            "monitoring_runtime_hash_mismatch",
        ),
    )
    verdict += [_no_finding(code) for equal, code in equalities if not equal]
    considered = frozenset(
        {
            *(code for _, code in readiness),
            *BOUNDARY_CODES.values(),
            *(code for _, code in equalities),
        }
    )
    findings += _check_verdict("bind_gate_verdict", gate.blockers, verdict, considered)
    return findings


# -- promotion <- release gate -----------------------------------------------------------------


def _bind_promotion(manifest: object, parents: Parents) -> list[ChainFinding]:
    """A promotion names the gate's release id, recomputed release hash and identity."""
    promotion = _child(manifest, PromotionRecord)
    gate = _one(parents, RELEASE_GATE, CustomerReleaseGateManifest)
    expected = {
        "release_id": gate.release_id,
        "release_hash": gate.recompute_hash(),
        **_fields_of(gate, DEPLOYMENT_IDENTITY),
    }
    return _check_fields("bind_promotion_release", promotion, expected, "the release gate")


# Every checker but the dataset report's (which takes ``deep``; see ``check_bindings``).
_CHECKERS: Mapping[str, Callable[[object, Parents], list[ChainFinding]]] = {
    TRAINING_MANIFEST: _bind_training,
    BENCHMARK_RESULT: _bind_benchmark,
    SELECTION_REPORT: _bind_selection,
    DEPLOYMENT_MANIFEST: _bind_deployment,
    EVIDENCE_PACK: _bind_evidence,
    RUNTIME_PACKAGE: _bind_runtime,
    MONITORING_MANIFEST: _bind_monitoring,
    RISK_REGISTER: _bind_risk,
    RELEASE_GATE: _bind_gate,
    PROMOTION: _bind_promotion,
}

BINDING_CODES: tuple[str, ...] = (
    "bind_dataset_trace_unreadable",
    "bind_dataset_trace_changed",
    "bind_dataset_hash",
    "bind_dataset_counts",
    "bind_dataset_findings",
    "bind_training_identity",
    "bind_training_dataset_hash",
    "bind_training_verdict",
    "bind_benchmark_identity",
    "bind_benchmark_training_hash",
    "bind_benchmark_verdict",
    "bind_selection_candidate_set",
    "bind_selection_candidate",
    "bind_selection_identity",
    "bind_deployment_selection_hash",
    "bind_deployment_selected_model",
    "bind_deployment_identity",
    "bind_deployment_verdict",
    "bind_evidence_identity",
    "bind_evidence_artefacts",
    "bind_evidence_mapping",
    "bind_evidence_verdict",
    "bind_runtime_identity",
    "bind_runtime_evidence_hash",
    "bind_runtime_config",
    "bind_runtime_verdict",
    "bind_monitoring_identity",
    "bind_monitoring_evidence_hash",
    "bind_monitoring_package_version",
    "bind_monitoring_decision_log",
    "bind_monitoring_verdict",
    "bind_risk_identity",
    "bind_risk_evidence_hash",
    "bind_risk_monitoring_hash",
    "bind_risk_verdict",
    "bind_gate_identity",
    "bind_gate_artifact_hashes",
    "bind_gate_verdict",
    "bind_promotion_release",
)
