"""Builders for the chain tests: a valid factory run, deterministic keys, a policy, a ledger.

Everything is built with the real stage builders and the real ledger; keys are Ed25519 keys
derived from fixed seeds so runs are reproducible.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from customer_model_factory.benchmark_selection import (
    BenchmarkMetrics,
    CustomerBenchmarkResult,
    CustomerModelSelectionReport,
    select_customer_model,
)
from customer_model_factory.chain import kinds, record_policy, record_stage, record_trace_file
from customer_model_factory.dataset_contract import (
    CustomerDatasetValidationReport,
    CustomerWorkspace,
    validate_customer_trace_dataset,
)
from customer_model_factory.deployment_manifest import (
    CustomerDeploymentManifest,
    DeploymentPolicy,
    build_deployment_manifest,
)
from customer_model_factory.evidence_pack import (
    CustomerEvidencePackManifest,
    build_customer_evidence_pack,
)
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.policy import KeyEntry, Role, TrustPolicy
from customer_model_factory.ledger.statement import Parent
from customer_model_factory.ledger.store import Ledger
from customer_model_factory.monitoring_manifest import (
    CustomerMonitoringManifest,
    MonitoringMetrics,
    MonitoringThresholds,
    build_monitoring_manifest,
)
from customer_model_factory.pipeline import manifest_data
from customer_model_factory.release_gate import (
    CustomerReleaseGateManifest,
    build_release_gate_manifest,
)
from customer_model_factory.risk_register import (
    CustomerRiskException,
    CustomerRiskRegister,
    build_risk_register,
)
from customer_model_factory.runtime_package import (
    CustomerRuntimePackage,
    build_customer_runtime_package,
)
from customer_model_factory.sector_extension import (
    SectorEvidenceMapping,
    build_sector_evidence_mapping,
)
from customer_model_factory.training_manifest import (
    CustomerTrainingManifest,
    TrainingLane,
    build_training_manifest,
)


@pytest.fixture(scope="module", autouse=True)
def skip_fsync() -> Iterator[None]:
    """Make ``os.fsync`` a no-op for a test module that imports this fixture.

    Durability is the ledger's own concern (its crash tests); here every commit's fsyncs would
    only cost seconds of wall time on a shared machine.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)
        yield


ORIGIN = "ledger.example/chain-test"
TIME = "2026-05-18T18:45:00Z"
GENERATED_AT = "2026-05-18T18:45:00Z"
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
EXPIRES = "2027-01-01T00:00:00Z"
TOOL = "chain-tests/1"
CUSTOMER, WORKSPACE, TENANT = "customer-alpha", "customer-alpha-prod", "customer-alpha-tenant"
EVIDENCE_URI = "s3://alpha/evidence-pack"

# -- the factory run --------------------------------------------------------------------------


def trace_rows() -> list[dict[str, Any]]:
    """Return three valid trace rows, one per split."""
    rows = []
    for n, (split, severity, decision) in enumerate(
        [("train", "medium", "block"), ("eval", "high", "escalate"), ("test", "critical", "block")]
    ):
        rows.append(
            {
                "trace_id": f"trace-{n}",
                "customer_id": CUSTOMER,
                "tenant_id": TENANT,
                "split": split,
                "prompt": f"prompt number {n}",
                "response": f"response number {n}",
                "expected_decision": decision,
                "severity": severity,
                "label": "unsafe",
                "source_refs": [f"doc:{n}"],
                "policy_refs": ["policy:1"],
                "reviewer_role": "analyst",
                "observed_at": "2026-05-01T00:00:00Z",
            }
        )
    return rows


def trace_bytes(rows: list[dict[str, Any]]) -> bytes:
    """Return ``rows`` as JSONL bytes."""
    return b"".join(json.dumps(row, sort_keys=True).encode() + b"\n" for row in rows)


def workspace() -> CustomerWorkspace:
    """Return the workspace of the test customer."""
    return CustomerWorkspace(CUSTOMER, WORKSPACE, TENANT, "restricted", ("train", "eval", "test"))


def metrics(f1: float, high_risk_fnr: float = 0.0) -> BenchmarkMetrics:
    """Return benchmark metrics with the given f1 (all rates in range)."""
    return BenchmarkMetrics(
        total_samples=100,
        balanced_accuracy=0.9,
        precision=0.9,
        recall=0.95,
        f1=f1,
        false_positive_rate=0.05,
        false_negative_rate=0.05,
        high_risk_false_negative_rate=high_risk_fnr,
        abstention_rate=0.1,
        escalation_rate=0.05,
        latency_p95_ms=120.0,
        severity_counts={"high": 10, "low": 90},
    )


def monitoring_metrics(incidents: int = 0) -> MonitoringMetrics:
    """Return monitoring metrics; ``incidents`` > 0 breaches the false-negative threshold."""
    return MonitoringMetrics(
        total_decisions=1000,
        input_drift_score=0.05,
        source_corpus_drift_score=0.04,
        false_positive_review_count=3,
        false_negative_incident_count=incidents,
        abstention_rate=0.05,
        escalation_rate=0.03,
        latency_p95_ms=100.0,
        cost_per_1k_decisions=1.5,
    )


THRESHOLDS = MonitoringThresholds(
    max_input_drift_score=0.2,
    max_source_corpus_drift_score=0.2,
    max_false_negative_incidents=0,
    max_abstention_rate=0.2,
    max_escalation_rate=0.2,
    max_latency_p95_ms=500.0,
    max_cost_per_1k_decisions=5.0,
)


@dataclass(frozen=True)
class Factory:
    """One complete factory run: every manifest of the chain, built by the real builders."""

    rows: list[dict[str, Any]]
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


def accepted_risk(
    monitoring_hash: str, evidence_hash: str, expires_at: str
) -> CustomerRiskException:
    """Return an accepted risk linked to the given monitoring and evidence hashes."""
    return CustomerRiskException(
        risk_id="risk-fn-incidents",
        status="accepted",
        severity="medium",
        owner="risk-officer",
        accepted_at="2026-05-17T00:00:00Z",
        expires_at=expires_at,
        compensating_controls=("manual review of escalations",),
        linked_artifact_hashes={"monitoring_hash": monitoring_hash, "evidence_hash": evidence_hash},
        rationale="two incidents under investigation",
    )


Forge = Callable[[str, Any], Any]


def _keep(kind: str, manifest: Any) -> Any:
    """The default forge: keep every manifest as built."""
    return manifest


def build_factory(
    *, incidents: int = 0, risk_expires: str | None = None, forge: Forge = _keep
) -> Factory:
    """Run the whole factory; ``incidents`` > 0 makes monitoring ``review_required``.

    ``risk_expires`` adds an accepted risk linked to the monitoring manifest, expiring then.
    ``forge(kind, manifest)`` may replace any stage's output before later stages use it.
    """
    rows = trace_rows()
    report = forge(kinds.DATASET_REPORT, validate_customer_trace_dataset(rows, workspace()))
    training = forge(
        kinds.TRAINING_MANIFEST,
        build_training_manifest(
            package_id="pkg-alpha",
            dataset_report=report,
            lane=TrainingLane.VERTEX,
            base_model_id="microsoft/deberta-v3-small",
            base_model_revision="0123456789abcdef0123456789abcdef01234567",
            output_uri="gs://alpha/models/out",
            hyperparameters={"epochs": 3, "learning_rate": 2e-5},
            objective_profile="zero_silent_unsafe_pass",
        ),
    )
    benchmarks = tuple(
        forge(
            kinds.BENCHMARK_RESULT,
            CustomerBenchmarkResult.from_metrics(
                benchmark_id=f"bench-{n}",
                training_manifest=training,
                model_artifact_uri=f"gs://alpha/models/candidate-{n}",
                metrics=metrics(f1),
                raw_result_uri=f"gs://alpha/bench/{n}.json",
                claim_boundary="customer-alpha traces only",
            ),
        )
        for n, f1 in enumerate((0.92, 0.88))
    )
    selection = forge(
        kinds.SELECTION_REPORT,
        select_customer_model(
            selection_id="sel-alpha",
            objective_profile="zero_silent_unsafe_pass",
            candidates=list(benchmarks),
        ),
    )
    deployment = forge(
        kinds.DEPLOYMENT_MANIFEST,
        build_deployment_manifest(
            deployment_id="dep-alpha",
            selection_report=selection,
            policy=DeploymentPolicy(
                threshold=0.72,
                abstention_threshold=0.58,
                escalation_threshold=0.40,
                require_citations=True,
                audit_log_uri="s3://alpha/audit",
                evidence_pack_uri=EVIDENCE_URI,
                rollback_package_uri="s3://alpha/rollback",
                retention_days=30,
                telemetry_mode="customer_controlled",
            ),
            environment="production",
            package_uri="s3://alpha/package",
        ),
    )
    mapping = forge(
        kinds.SECTOR_MAPPING,
        build_sector_evidence_mapping(
            sector_id="regulated-sector", jurisdiction="CH", evidence_pack_uri=EVIDENCE_URI
        ),
    )
    evidence = forge(
        kinds.EVIDENCE_PACK,
        build_customer_evidence_pack(
            package_id="evidence-alpha",
            deployment_manifest=deployment,
            regulation_mapping=mapping,
            classification="restricted",
            export_uri=EVIDENCE_URI,
        ),
    )
    runtime = forge(
        kinds.RUNTIME_PACKAGE,
        build_customer_runtime_package(
            runtime_id="runtime-alpha",
            deployment_manifest=deployment,
            evidence_pack=evidence,
            runtime_mode="offline_private",
        ),
    )
    monitoring = forge(
        kinds.MONITORING_MANIFEST,
        build_monitoring_manifest(
            monitoring_id="monitoring-alpha",
            runtime_package=runtime,
            metrics=monitoring_metrics(incidents),
            thresholds=THRESHOLDS,
            observation_window="2026-05-01/2026-05-14",
            monitored_at="2026-05-15T00:00:00Z",
            review_queue_uri="s3://alpha/review",
            incident_queue_uri="s3://alpha/incidents",
        ),
    )
    risks: tuple[CustomerRiskException, ...] = ()
    if risk_expires is not None:
        risks = (accepted_risk(monitoring.monitoring_hash, evidence.evidence_hash, risk_expires),)
    register = forge(
        kinds.RISK_REGISTER,
        build_risk_register(
            register_id="risk-alpha",
            evidence_pack=evidence,
            monitoring_manifest=monitoring,
            risks=risks,
            generated_at=GENERATED_AT,
        ),
    )
    gate = forge(
        kinds.RELEASE_GATE,
        build_release_gate_manifest(
            release_id="release-alpha",
            enterprise_ready=True,
            enterprise_blocking_debt_ids=(),
            runtime_package=runtime,
            evidence_pack=evidence,
            monitoring_manifest=monitoring,
            risk_register=register,
            generated_at=GENERATED_AT,
        ),
    )
    return Factory(
        rows,
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


def blob(manifest: Any) -> bytes:
    """Return the canonical stored bytes of a manifest (what ``write_json`` writes)."""
    return manifest_data(manifest)


# -- keys and policy ---------------------------------------------------------------------------


def key(name: str) -> PrivateKey:
    """Return the deterministic Ed25519 key named ``name``."""
    return PrivateKey.from_seed(hashlib.sha256(b"chain-test/" + name.encode()).digest())


STAGE_ROLES = tuple(kind for kind in kinds.STAGE_KINDS if kind != kinds.PROMOTION)


@dataclass(frozen=True)
class Keys:
    """The keys of a test deployment: root, log, one per stage role, three promoters."""

    root: PrivateKey = field(default_factory=lambda: key("root"))
    log: PrivateKey = field(default_factory=lambda: key("log"))
    promoters: tuple[PrivateKey, ...] = field(
        default_factory=lambda: tuple(key(f"promoter-{n}") for n in range(3))
    )

    def stage(self, kind: str) -> PrivateKey:
        """Return the key holding the role of ``kind``."""
        return key(f"stage-{kind}")


def make_policy(keys: Keys, *, version: int = 1, expires: str = EXPIRES) -> TrustPolicy:
    """Return a policy: root 1-of-1, log 1-of-1, each stage 1-of-1, promotion 2-of-3."""
    entries = [
        KeyEntry.of(keys.root.public_key, "root"),
        KeyEntry.of(keys.log.public_key, "log"),
        *(KeyEntry.of(keys.stage(k).public_key, f"stage-{k}") for k in STAGE_ROLES),
        *(KeyEntry.of(p.public_key, f"promoter-{n}") for n, p in enumerate(keys.promoters)),
    ]
    roles = [
        Role("root", (keys.root.public_key.key_id,), 1),
        Role("log", (keys.log.public_key.key_id,), 1),
        *(Role(k, (keys.stage(k).public_key.key_id,), 1) for k in STAGE_ROLES),
        Role("promotion", tuple(p.public_key.key_id for p in keys.promoters), 2),
    ]
    return TrustPolicy(version, expires, ORIGIN, tuple(entries), tuple(roles), ())


# -- the ledger --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """Blob ids of a recorded factory run, by kind (benchmarks as a tuple)."""

    ids: dict[str, str]
    benchmarks: tuple[str, ...]

    @property
    def gate(self) -> str:
        """The release gate's blob id."""
        return self.ids[kinds.RELEASE_GATE]


def new_ledger(path: Path, keys: Keys, policy: TrustPolicy) -> Ledger:
    """Create a ledger at ``path`` and record ``policy`` as its first policy version."""
    ledger = Ledger.create(path, origin=ORIGIN, log_key=keys.log.public_key)
    with ledger.writer(log_key=keys.log) as writer:
        record_policy(
            writer, ledger, policy=policy, signers=[keys.root], time=TIME, tool_version=TOOL
        )
    return ledger


Signers = Mapping[str, Sequence[PrivateKey]]


def record(
    ledger: Ledger,
    keys: Keys,
    kind: str,
    data: bytes,
    parents: Sequence[tuple[str, str]],
    *,
    signers: Signers | None = None,
    forced: frozenset[str] = frozenset(),
) -> str:
    """Record one stage (parents as (kind, blob id)) and commit; return its blob id.

    Kinds in ``forced`` bypass ``record_stage``'s checks (``writer.record`` directly), as an
    attacker with a role key and write access could.
    """
    chosen = list((signers or {}).get(kind, [keys.stage(kind)]))
    with ledger.writer(log_key=keys.log) as writer:
        if kind in forced:
            blob_id = writer.put_blob(data)
            writer.record(
                kind=kind,
                blob_id=blob_id,
                parents=[Parent(k, p) for k, p in parents],
                signers=chosen,
                time=TIME,
                tool_version=TOOL,
            )
            return blob_id
        entry = record_stage(
            writer,
            ledger,
            kind=kind,
            data=data,
            parents=[p for _, p in parents],
            signers=chosen,
            time=TIME,
            tool_version=TOOL,
        )
    return entry.blob_id


def record_factory(
    ledger: Ledger,
    keys: Keys,
    factory: Factory,
    trace_dir: Path,
    *,
    signers: Signers | None = None,
    forced: frozenset[str] = frozenset(),
) -> Recorded:
    """Record every stage of ``factory`` (each committed) and return the blob ids."""
    trace_path = trace_dir / "traces.jsonl"
    trace_path.write_bytes(trace_bytes(factory.rows))
    with ledger.writer(log_key=keys.log) as writer:
        trace = record_trace_file(
            writer,
            ledger,
            path=trace_path,
            signers=list(
                (signers or {}).get(kinds.TRACE_DATASET, [keys.stage(kinds.TRACE_DATASET)])
            ),
            time=TIME,
            tool_version=TOOL,
        ).blob_id
    ids = {kinds.TRACE_DATASET: trace}

    def add(kind: str, manifest: Any, *parent_kinds: str) -> str:
        parents = [(k, ids[k]) for k in parent_kinds]
        return record(ledger, keys, kind, blob(manifest), parents, signers=signers, forced=forced)

    ids[kinds.DATASET_REPORT] = add(kinds.DATASET_REPORT, factory.report, kinds.TRACE_DATASET)
    ids[kinds.TRAINING_MANIFEST] = add(
        kinds.TRAINING_MANIFEST, factory.training, kinds.DATASET_REPORT
    )
    benchmarks = tuple(
        add(kinds.BENCHMARK_RESULT, b, kinds.TRAINING_MANIFEST) for b in factory.benchmarks
    )
    ids[kinds.SELECTION_REPORT] = record(
        ledger,
        keys,
        kinds.SELECTION_REPORT,
        blob(factory.selection),
        [(kinds.BENCHMARK_RESULT, b) for b in benchmarks],
        signers=signers,
        forced=forced,
    )
    ids[kinds.DEPLOYMENT_MANIFEST] = add(
        kinds.DEPLOYMENT_MANIFEST, factory.deployment, kinds.SELECTION_REPORT
    )
    ids[kinds.SECTOR_MAPPING] = add(kinds.SECTOR_MAPPING, factory.mapping)
    ids[kinds.EVIDENCE_PACK] = add(
        kinds.EVIDENCE_PACK, factory.evidence, kinds.DEPLOYMENT_MANIFEST, kinds.SECTOR_MAPPING
    )
    ids[kinds.RUNTIME_PACKAGE] = add(
        kinds.RUNTIME_PACKAGE, factory.runtime, kinds.DEPLOYMENT_MANIFEST, kinds.EVIDENCE_PACK
    )
    ids[kinds.MONITORING_MANIFEST] = add(
        kinds.MONITORING_MANIFEST, factory.monitoring, kinds.RUNTIME_PACKAGE
    )
    ids[kinds.RISK_REGISTER] = add(
        kinds.RISK_REGISTER, factory.register, kinds.EVIDENCE_PACK, kinds.MONITORING_MANIFEST
    )
    ids[kinds.RELEASE_GATE] = add(
        kinds.RELEASE_GATE,
        factory.gate,
        kinds.RUNTIME_PACKAGE,
        kinds.EVIDENCE_PACK,
        kinds.MONITORING_MANIFEST,
        kinds.RISK_REGISTER,
    )
    return Recorded(ids, benchmarks)


def build_ledger(
    path: Path,
    *,
    factory: Factory | None = None,
    keys: Keys | None = None,
    policy: TrustPolicy | None = None,
    signers: Signers | None = None,
    forced: frozenset[str] = frozenset(),
) -> tuple[Ledger, Recorded]:
    """Create a ledger at ``path / "ledger"`` holding a policy and a full factory run."""
    keys = keys or Keys()
    ledger = new_ledger(path / "ledger", keys, policy or make_policy(keys))
    recorded = record_factory(
        ledger, keys, factory or build_factory(), path, signers=signers, forced=forced
    )
    return ledger, recorded


_HASH_FIELDS = {
    CustomerTrainingManifest: "manifest_hash",
    CustomerBenchmarkResult: "result_hash",
    CustomerModelSelectionReport: "selection_hash",
    CustomerDeploymentManifest: "deployment_hash",
    SectorEvidenceMapping: "mapping_hash",
    CustomerEvidencePackManifest: "evidence_hash",
    CustomerRuntimePackage: "runtime_hash",
    CustomerMonitoringManifest: "monitoring_hash",
    CustomerRiskRegister: "register_hash",
    CustomerReleaseGateManifest: "release_hash",
}


def rehash(manifest: Any, **changes: Any) -> Any:
    """Return ``manifest`` with ``changes`` and a self-hash recomputed to match (a forgery)."""
    changed = replace(manifest, **changes)
    field_name = _HASH_FIELDS.get(type(changed))
    if field_name is None:
        return changed
    return replace(changed, **{field_name: changed.recompute_hash()})


def copy_ledger(source: Path, target: Path) -> Ledger:
    """Copy a ledger directory (object files stay read-only) and open the copy."""
    shutil.copytree(source, target)
    return Ledger.open(target)


def tamper_object(ledger: Ledger, blob_id: str, offset: int = 10) -> None:
    """Flip one byte of a stored blob (making the read-only object file writable first)."""
    path = ledger.objects.path(blob_id)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
