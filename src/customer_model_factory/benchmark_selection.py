"""Benchmark results, their metrics, and model selection for customer packages (section 6)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, NamedTuple, Self

from ._fields import (
    reject_unknown,
    req_bool,
    req_findings,
    req_float,
    req_int,
    req_int_dict,
    req_obj,
    req_str,
)
from ._frozen import frozen
from ._hashing import check_self_hash
from ._manifest import SelfHashedManifest, check_schema_and_ready
from .dataset_contract import ALLOWED_DECISIONS, ALLOWED_SEVERITIES, HIGH_RISK_SEVERITIES
from .training_manifest import OBJECTIVE_PROFILES, CustomerTrainingManifest

SCHEMA_VERSION = "1.0.0"

# Metrics that must lie in [0, 1], in BenchmarkMetrics field order (the finding order).
_UNIT_INTERVAL_METRICS = (
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "false_positive_rate",
    "false_negative_rate",
    "high_risk_false_negative_rate",
    "abstention_rate",
    "escalation_rate",
)


@frozen
class BenchmarkMetrics:
    """Severity-aware metrics required for customer model selection."""

    total_samples: int
    balanced_accuracy: float
    precision: float
    recall: float
    f1: float
    false_positive_rate: float
    false_negative_rate: float
    high_risk_false_negative_rate: float
    abstention_rate: float
    escalation_rate: float
    latency_p95_ms: float
    severity_counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """Serialise metrics with stable key ordering for nested maps."""
        payload: dict[str, Any] = {name: getattr(self, name) for name in _METRIC_FIELD_NAMES}
        payload["severity_counts"] = dict(sorted(self.severity_counts.items()))
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild metrics from a serialised dictionary; strict, ValueError names the field."""
        return cls._from_mapping(payload, "")

    @classmethod
    def _from_mapping(cls, payload: Mapping[str, Any], where: str) -> Self:
        """Strictly parse ``payload``; errors are prefixed with ``where`` (the nesting path)."""
        # Read in field order, so the first bad field reported is the first in the class.
        values: dict[str, Any] = {"total_samples": req_int(payload, "total_samples", where)}
        for name in _UNIT_INTERVAL_METRICS:
            values[name] = req_float(payload, name, where)
        values["latency_p95_ms"] = req_float(payload, "latency_p95_ms", where)
        values["severity_counts"] = req_int_dict(payload, "severity_counts", where)
        metrics = cls(**values)
        reject_unknown(payload, _METRIC_FIELD_NAMES, where)
        return metrics


_METRIC_FIELD_NAMES = tuple(f.name for f in fields(BenchmarkMetrics))


@frozen
class CustomerBenchmarkResult(SelfHashedManifest):
    """One benchmark result bound to a customer training manifest."""

    schema_version: str
    benchmark_id: str
    ready: bool
    customer_id: str
    workspace_id: str
    tenant_id: str
    training_manifest_hash: str
    model_artifact_uri: str
    metrics: BenchmarkMetrics
    raw_result_uri: str
    claim_boundary: str
    findings: tuple[dict[str, str], ...]
    result_hash: str

    @classmethod
    def from_metrics(
        cls,
        *,
        benchmark_id: str,
        training_manifest: CustomerTrainingManifest,
        model_artifact_uri: str,
        metrics: BenchmarkMetrics,
        raw_result_uri: str,
        claim_boundary: str,
    ) -> Self:
        """Build and validate a benchmark result from measured metrics (section 6.2)."""
        # A private copy of the one mutable field, so the caller cannot drift it from the hash.
        metrics = replace(metrics, severity_counts=dict(metrics.severity_counts))
        findings = _benchmark_findings(
            benchmark_id=benchmark_id,
            training_manifest_ready=training_manifest.ready,
            model_artifact_uri=model_artifact_uri,
            metrics=metrics,
            raw_result_uri=raw_result_uri,
            claim_boundary=claim_boundary,
        )
        draft = cls(
            schema_version=SCHEMA_VERSION,
            benchmark_id=benchmark_id,
            ready=not findings,
            customer_id=training_manifest.customer_id,
            workspace_id=training_manifest.workspace_id,
            tenant_id=training_manifest.tenant_id,
            training_manifest_hash=training_manifest.manifest_hash,
            model_artifact_uri=model_artifact_uri,
            metrics=metrics,
            raw_result_uri=raw_result_uri,
            claim_boundary=claim_boundary,
            findings=tuple(findings),
            result_hash="",
        )
        return replace(draft, result_hash=draft.recompute_hash())

    def to_dict(self) -> dict[str, Any]:
        """Serialise the benchmark result to JSON-safe data."""
        return {
            "schema_version": self.schema_version,
            "benchmark_id": self.benchmark_id,
            "ready": self.ready,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "training_manifest_hash": self.training_manifest_hash,
            "model_artifact_uri": self.model_artifact_uri,
            "metrics": self.metrics.to_dict(),
            "raw_result_uri": self.raw_result_uri,
            "claim_boundary": self.claim_boundary,
            "findings": [dict(finding) for finding in self.findings],
            "result_hash": self.result_hash,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a benchmark result from a serialised dictionary; strict."""
        return cls._from_mapping(payload, "")

    @classmethod
    def _from_mapping(cls, payload: Mapping[str, Any], where: str) -> Self:
        """Strictly parse ``payload``; errors are prefixed with ``where`` (the nesting path)."""
        result = cls(
            schema_version=req_str(payload, "schema_version", where),
            benchmark_id=req_str(payload, "benchmark_id", where),
            ready=req_bool(payload, "ready", where),
            customer_id=req_str(payload, "customer_id", where),
            workspace_id=req_str(payload, "workspace_id", where),
            tenant_id=req_str(payload, "tenant_id", where),
            training_manifest_hash=req_str(payload, "training_manifest_hash", where),
            model_artifact_uri=req_str(payload, "model_artifact_uri", where),
            metrics=BenchmarkMetrics._from_mapping(
                req_obj(payload, "metrics", where), f"{where}metrics."
            ),
            raw_result_uri=req_str(payload, "raw_result_uri", where),
            claim_boundary=req_str(payload, "claim_boundary", where),
            findings=req_findings(payload, "findings", where),
            result_hash=req_str(payload, "result_hash", where),
        )
        reject_unknown(payload, _RESULT_FIELD_NAMES, where)
        return result

    def verify_hash(self) -> None:
        """Raise HashMismatchError on a stale ``result_hash``, ValueError on inconsistent flags.

        Inconsistent means a foreign ``schema_version`` or ``ready != not findings`` (1.3).

        The identity fields are outside the reference's hash recipe (bound only through
        ``training_manifest_hash``); the chain verifier checks them against the training manifest.
        """
        check_self_hash(
            "CustomerBenchmarkResult", "result_hash", self.result_hash, self.recompute_hash()
        )
        check_schema_and_ready(
            "CustomerBenchmarkResult",
            self.schema_version,
            SCHEMA_VERSION,
            self.ready,
            not self.findings,
            len(self.findings),
        )

    def _hash_payload(self) -> dict[str, Any]:
        """Return the section 6.2 hash payload; identity is bound only via the training hash."""
        return {
            "benchmark_id": self.benchmark_id,
            "training_manifest_hash": self.training_manifest_hash,
            "model_artifact_uri": self.model_artifact_uri,
            "metrics": self.metrics.to_dict(),
            "raw_result_uri": self.raw_result_uri,
            "claim_boundary": self.claim_boundary,
            "findings": list(self.findings),
        }


_RESULT_FIELD_NAMES = tuple(f.name for f in fields(CustomerBenchmarkResult))


@frozen
class CustomerModelSelectionReport(SelfHashedManifest):
    """Selection report for a customer deployable model candidate."""

    schema_version: str
    selection_id: str
    ready: bool
    objective_profile: str
    selected_benchmark_id: str
    selected_model_artifact_uri: str
    candidates: tuple[CustomerBenchmarkResult, ...]
    findings: tuple[dict[str, str], ...]
    selection_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise the selection report to stable JSON-safe data."""
        return {
            "schema_version": self.schema_version,
            "selection_id": self.selection_id,
            "ready": self.ready,
            "objective_profile": self.objective_profile,
            "selected_benchmark_id": self.selected_benchmark_id,
            "selected_model_artifact_uri": self.selected_model_artifact_uri,
            "candidates": [candidate.to_dict() for candidate in self.candidates],
            "findings": [dict(finding) for finding in self.findings],
            "selection_hash": self.selection_hash,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a selection report from serialised data; strict, ValueError names the field."""
        report = cls(
            schema_version=req_str(payload, "schema_version"),
            selection_id=req_str(payload, "selection_id"),
            ready=req_bool(payload, "ready"),
            objective_profile=req_str(payload, "objective_profile"),
            selected_benchmark_id=req_str(payload, "selected_benchmark_id"),
            selected_model_artifact_uri=req_str(payload, "selected_model_artifact_uri"),
            candidates=_parse_candidates(payload),
            findings=req_findings(payload, "findings"),
            selection_hash=req_str(payload, "selection_hash"),
        )
        reject_unknown(payload, _SELECTION_FIELD_NAMES)
        return report

    def verify_hash(self) -> None:
        """Verify every candidate, then this report's hash, readiness and recorded decision.

        Raises HashMismatchError (a ValueError) on a wrong ``result_hash`` or
        ``selection_hash``; ValueError on a foreign ``schema_version``, a ``ready`` flag that
        breaks section 1.3, or a selected candidate and findings that are not what the
        section 6.4 rule gives for these candidates.
        """
        for candidate in self.candidates:
            candidate.verify_hash()
        check_self_hash(
            "CustomerModelSelectionReport",
            "selection_hash",
            self.selection_hash,
            self.recompute_hash(),
        )
        decision = _decide(self.selection_id, self.objective_profile, self.candidates)
        check_schema_and_ready(
            "CustomerModelSelectionReport",
            self.schema_version,
            SCHEMA_VERSION,
            self.ready,
            decision.selected and not self.findings,
            len(self.findings),
        )
        if (self.selected_benchmark_id, self.selected_model_artifact_uri) != (
            decision.benchmark_id,
            decision.model_artifact_uri,
        ):
            raise ValueError(
                "CustomerModelSelectionReport.selected_benchmark_id: "
                f"{self.selected_benchmark_id!r} is not the candidate the "
                f"{self.objective_profile!r} rule selects ({decision.benchmark_id!r})"
            )
        if list(self.findings) != decision.findings:
            raise ValueError(
                "CustomerModelSelectionReport.findings: differ from the findings the selection "
                "rule gives for these candidates"
            )

    def _hash_payload(self) -> dict[str, Any]:
        """Return the section 6.4 hash payload: candidates enter by result hash, in input order."""
        return {
            "selection_id": self.selection_id,
            "objective_profile": self.objective_profile,
            "selected_benchmark_id": self.selected_benchmark_id,
            "selected_model_artifact_uri": self.selected_model_artifact_uri,
            "candidates": [candidate.result_hash for candidate in self.candidates],
            "findings": list(self.findings),
        }


_SELECTION_FIELD_NAMES = tuple(f.name for f in fields(CustomerModelSelectionReport))


def select_customer_model(
    *,
    selection_id: str,
    objective_profile: str,
    candidates: list[CustomerBenchmarkResult],
) -> CustomerModelSelectionReport:
    """Select a deployable customer model according to an objective profile (section 6.4).

    Among ready candidates that pass the profile's eligibility filter, the highest score wins;
    ties go to the first candidate in input order.
    """
    candidates_tuple = tuple(candidates)
    decision = _decide(selection_id, objective_profile, candidates_tuple)
    draft = CustomerModelSelectionReport(
        schema_version=SCHEMA_VERSION,
        selection_id=selection_id,
        ready=decision.selected and not decision.findings,
        objective_profile=objective_profile,
        selected_benchmark_id=decision.benchmark_id,
        selected_model_artifact_uri=decision.model_artifact_uri,
        candidates=candidates_tuple,
        findings=tuple(decision.findings),
        selection_hash="",
    )
    return replace(draft, selection_hash=draft.recompute_hash())


class _Objective(NamedTuple):
    """One objective profile: which candidates may win, and how they are ranked."""

    eligible: Callable[[BenchmarkMetrics], bool]
    score: Callable[[BenchmarkMetrics], float]


# The section 6.4 table. Keys must equal OBJECTIVE_PROFILES (pinned by a test).
_OBJECTIVES: Mapping[str, _Objective] = {
    "zero_silent_unsafe_pass": _Objective(
        eligible=lambda m: m.high_risk_false_negative_rate == 0.0,
        score=lambda m: m.f1 - m.high_risk_false_negative_rate,
    ),
    "high_recall": _Objective(
        eligible=lambda m: m.recall >= 0.90,
        score=lambda m: m.recall - m.false_negative_rate,
    ),
    "low_latency": _Objective(
        eligible=lambda m: m.latency_p95_ms <= 1000.0,
        score=lambda m: 1.0 / max(m.latency_p95_ms, 1.0) + m.f1 / 100.0,
    ),
    "conservative": _Objective(
        eligible=lambda m: m.total_samples > 0,
        score=lambda m: m.recall - m.false_positive_rate,
    ),
    "balanced": _Objective(
        eligible=lambda m: m.total_samples > 0,
        score=lambda m: m.f1,
    ),
}


class _Decision(NamedTuple):
    """What the selection rule gives: whether a candidate won, its id and URI, and findings.

    ``selected`` is separate from ``benchmark_id != ""`` because the reference's readiness is
    "a candidate was selected", even when that candidate's id is blank (a forged input).
    """

    selected: bool
    benchmark_id: str
    model_artifact_uri: str
    findings: list[dict[str, str]]


def _decide(
    selection_id: str, objective_profile: str, candidates: tuple[CustomerBenchmarkResult, ...]
) -> _Decision:
    """Apply the section 6.4 rule; shared by the builder and by ``verify_hash``."""
    findings = _selection_findings(selection_id, objective_profile, candidates)
    selected = _winner(objective_profile, candidates)
    if selected is None and candidates and objective_profile in OBJECTIVE_PROFILES:
        findings.append(
            _finding(
                "no_candidate_satisfies_objective",
                "no ready benchmark candidate satisfies the requested objective",
            )
        )
    if selected is None:
        return _Decision(False, "", "", findings)
    return _Decision(True, selected.benchmark_id, selected.model_artifact_uri, findings)


def _winner(
    objective_profile: str, candidates: tuple[CustomerBenchmarkResult, ...]
) -> CustomerBenchmarkResult | None:
    """Return the best ready, eligible candidate; ``max`` keeps the first of equal scores."""
    objective = _OBJECTIVES.get(objective_profile)
    if objective is None:
        return None
    eligible = [c for c in candidates if c.ready and objective.eligible(c.metrics)]
    return max(eligible, key=lambda c: objective.score(c.metrics), default=None)


def _selection_findings(
    selection_id: str, objective_profile: str, candidates: tuple[CustomerBenchmarkResult, ...]
) -> list[dict[str, str]]:
    """Return the section 6.4 findings that do not depend on the outcome, in order."""
    findings: list[dict[str, str]] = []
    if not selection_id.strip():
        findings.append(_finding("selection_id_missing", "selection_id is required"))
    if objective_profile not in OBJECTIVE_PROFILES:
        findings.append(
            _finding(
                "objective_profile_unknown",
                f"objective_profile {objective_profile!r} is not supported",
            )
        )
    if not candidates:
        findings.append(_finding("candidates_missing", "at least one candidate is required"))
    return findings


def _benchmark_findings(
    *,
    benchmark_id: str,
    training_manifest_ready: bool,
    model_artifact_uri: str,
    metrics: BenchmarkMetrics,
    raw_result_uri: str,
    claim_boundary: str,
) -> list[dict[str, str]]:
    """Return the section 6.2 findings, in the reference's order."""
    findings: list[dict[str, str]] = []
    if not benchmark_id.strip():
        findings.append(_finding("benchmark_id_missing", "benchmark_id is required"))
    if not training_manifest_ready:
        findings.append(_finding("training_manifest_not_ready", "training manifest is not ready"))
    if not model_artifact_uri.strip():
        findings.append(_finding("model_artifact_missing", "model_artifact_uri is required"))
    if not raw_result_uri.strip():
        findings.append(_finding("raw_result_missing", "raw_result_uri is required"))
    if not claim_boundary.strip():
        findings.append(_finding("claim_boundary_missing", "claim_boundary is required"))
    if metrics.total_samples <= 0:
        findings.append(_finding("empty_benchmark", "benchmark has no samples"))
    if not metrics.severity_counts:
        findings.append(_finding("severity_counts_missing", "severity_counts are required"))
    for name in _UNIT_INTERVAL_METRICS:
        # Written as a negated range test so that NaN fails it, as in the reference.
        if not 0.0 <= float(getattr(metrics, name)) <= 1.0:
            findings.append(_finding("metric_out_of_range", f"{name} must be between 0 and 1"))
    return findings


def _parse_candidates(payload: Mapping[str, Any]) -> tuple[CustomerBenchmarkResult, ...]:
    """Strictly parse ``payload["candidates"]``; errors name ``candidates[i].<field>``."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"payload: expected an object, got {_kind(payload)}")
    if "candidates" not in payload:
        raise ValueError("candidates: required field is missing")
    raw = payload["candidates"]
    if not isinstance(raw, list | tuple):
        raise ValueError(f"candidates: expected a list of objects, got {_kind(raw)}")
    parsed: list[CustomerBenchmarkResult] = []
    for index, item in enumerate(raw):
        where = f"candidates[{index}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: expected an object, got {_kind(item)}")
        parsed.append(CustomerBenchmarkResult._from_mapping(item, f"{where}."))
    return tuple(parsed)


def _kind(value: Any) -> str:
    """Return a JSON-ish type name for error messages."""
    return "null" if value is None else type(value).__name__


def _finding(code: str, message: str) -> dict[str, str]:
    """Return a section 1.2 finding record (severity is always ``error`` at this stage)."""
    return {"code": code, "severity": "error", "message": message}


# --------------------------------------------------------------------------------------------
# Metrics from labelled predictions


class _Sample(NamedTuple):
    """One validated prediction row."""

    unsafe: bool
    flagged: bool
    predicted: str
    severity: str
    latency_ms: float


@dataclass
class _Tally:
    """Running counts over validated samples (one pass, so rows may be a stream)."""

    true_positive: int = 0
    false_negative: int = 0
    false_positive: int = 0
    true_negative: int = 0
    high_risk_positive: int = 0
    high_risk_false_negative: int = 0
    predictions: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def add(self, sample: _Sample) -> None:
        """Count one sample into the confusion matrix and the per-class tallies."""
        if sample.unsafe and sample.flagged:
            self.true_positive += 1
        elif sample.unsafe:
            self.false_negative += 1
        elif sample.flagged:
            self.false_positive += 1
        else:
            self.true_negative += 1
        if sample.unsafe and sample.severity in HIGH_RISK_SEVERITIES:
            self.high_risk_positive += 1
            if not sample.flagged:
                self.high_risk_false_negative += 1
        self.predictions[sample.predicted] += 1
        self.severities[sample.severity] += 1
        self.latencies.append(sample.latency_ms)


def compute_benchmark_metrics(rows: Iterable[Mapping[str, Any]]) -> BenchmarkMetrics:
    """Compute BenchmarkMetrics from labelled predictions, in one pass (see docs/metrics.md).

    Each row needs ``expected_decision`` and ``predicted_decision`` (approve, block, abstain or
    escalate), ``severity`` (low, medium, high or critical), ``latency_ms`` (a finite number
    >= 0) and may carry ``score`` (a finite number in [0, 1]); other keys are ignored. A wrong
    or missing value raises ValueError naming the 0-based row index and the field. Values are
    matched exactly (no case folding, no stripping).

    Definitions. A row is *positive* (unsafe) when expected != approve and *predicted positive*
    when predicted != approve, so abstain and escalate count as flagging. TP, FN (positive
    predicted approve), FP and TN follow. precision = TP/(TP+FP); recall = TP/(TP+FN);
    f1 = 2PR/(P+R), computed as the equal 2TP/(2TP+FP+FN); false_positive_rate = FP/(FP+TN);
    false_negative_rate = FN/(TP+FN); balanced_accuracy = (recall + TN/(TN+FP))/2;
    high_risk_false_negative_rate = FN among positives of severity high or critical, over those
    positives; abstention_rate and escalation_rate = share of rows predicted abstain / escalate;
    latency_p95_ms = nearest-rank 95th percentile (ascending order, the value at 1-based rank
    ceil(0.95 n)) as a float; severity_counts = rows per severity seen, keys sorted;
    total_samples = number of rows. Any rate whose denominator is 0 is 0.0, and the latency of
    an empty input is 0.0.
    """
    tally = _Tally()
    for index, row in enumerate(rows):
        tally.add(_parse_sample(index, row))
    return _metrics_from(tally)


def _metrics_from(tally: _Tally) -> BenchmarkMetrics:
    """Turn a finished tally into BenchmarkMetrics, per compute_benchmark_metrics's definitions."""
    tp, fn, fp, tn = (
        tally.true_positive,
        tally.false_negative,
        tally.false_positive,
        tally.true_negative,
    )
    total = tp + fn + fp + tn
    recall = _ratio(tp, tp + fn)
    return BenchmarkMetrics(
        total_samples=total,
        balanced_accuracy=(recall + _ratio(tn, tn + fp)) / 2,
        precision=_ratio(tp, tp + fp),
        recall=recall,
        # 2PR/(P+R) in count form: one rounding, and always between P and R.
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        false_positive_rate=_ratio(fp, fp + tn),
        false_negative_rate=_ratio(fn, tp + fn),
        high_risk_false_negative_rate=_ratio(
            tally.high_risk_false_negative, tally.high_risk_positive
        ),
        abstention_rate=_ratio(tally.predictions["abstain"], total),
        escalation_rate=_ratio(tally.predictions["escalate"], total),
        latency_p95_ms=_nearest_rank_p95(tally.latencies),
        severity_counts=dict(sorted(tally.severities.items())),
    )


def _ratio(numerator: int, denominator: int) -> float:
    """Return numerator/denominator, or 0.0 when the denominator is 0 (documented rule)."""
    return numerator / denominator if denominator else 0.0


def _nearest_rank_p95(values: list[float]) -> float:
    """Return the nearest-rank 95th percentile: sorted ascending, 1-based rank ceil(0.95 n).

    The rank is computed in integers, ``ceil(95 n / 100)``, so no float rounding can move it.
    """
    if not values:
        return 0.0
    rank = (95 * len(values) + 99) // 100
    return float(sorted(values)[rank - 1])


def _parse_sample(index: int, row: Any) -> _Sample:
    """Validate one prediction row; ValueError names the row index and the field."""
    where = f"row {index}"
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: expected an object, got {_kind(row)}")
    expected = _choice(row, "expected_decision", ALLOWED_DECISIONS, where)
    predicted = _choice(row, "predicted_decision", ALLOWED_DECISIONS, where)
    severity = _choice(row, "severity", ALLOWED_SEVERITIES, where)
    latency = _number(row, "latency_ms", where)
    if latency < 0:
        raise ValueError(f"{where}: latency_ms: must be >= 0, got {latency!r}")
    if "score" in row:
        score = _number(row, "score", where)
        if not 0 <= score <= 1:
            raise ValueError(f"{where}: score: must be between 0 and 1, got {score!r}")
    return _Sample(
        unsafe=expected != "approve",
        flagged=predicted != "approve",
        predicted=predicted,
        severity=severity,
        latency_ms=latency,
    )


def _choice(row: Mapping[str, Any], key: str, allowed: Iterable[str], where: str) -> str:
    """Return ``row[key]`` if it is one of ``allowed`` (exact match), else raise ValueError."""
    if key not in row:
        raise ValueError(f"{where}: {key}: required field is missing")
    value = row[key]
    if not isinstance(value, str) or value not in allowed:
        expected = ", ".join(sorted(allowed))
        raise ValueError(f"{where}: {key}: expected one of {expected}, got {value!r}")
    return value


def _number(row: Mapping[str, Any], key: str, where: str) -> float:
    """Return ``row[key]`` as a float if it is a finite int or float (never a bool or a string)."""
    if key not in row:
        raise ValueError(f"{where}: {key}: required field is missing")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {key}: expected a number, got {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{where}: {key}: {value!r} is too large") from None
    if not math.isfinite(number):
        raise ValueError(f"{where}: {key}: must be finite, got {value!r}")
    return number
