"""Validation contract for customer-owned guardrail training traces (reference section 2).

One incremental engine, ``_DatasetValidator``, does all the work: it takes rows one at a time
and never needs the whole dataset in memory, so the list API (``validate_customer_trace_dataset``)
and the streaming API (``validate_trace_rows``, used by ``trace_files.validate_trace_file``) give
identical reports by construction.

The engine also accepts rows pre-digested in batches (``summarize_rows``, then
``_DatasetValidator.add_summary``): summarizing needs no state shared between batches, so
``trace_parallel`` summarizes a big file's batches on several cores and applies the summaries
in file order, with the same report as adding the rows one by one (property-tested).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Self

from . import _jsonfile
from ._fields import (
    reject_unknown,
    req_bool,
    req_findings,
    req_int,
    req_int_dict,
    req_str,
    req_str_tuple,
)
from ._frozen import frozen
from .sector_extension import (
    SECTOR_REQUIRED_METADATA,
    _all_nonblank_strings,
    _non_empty_string_list,
    validate_sector_trace_metadata,
)

SCHEMA_VERSION = "1.0.0"

REQUIRED_FIELDS = frozenset(
    {
        "trace_id",
        "customer_id",
        "tenant_id",
        "split",
        "prompt",
        "response",
        "expected_decision",
        "severity",
        "label",
        "source_refs",
        "policy_refs",
        "reviewer_role",
        "observed_at",
    }
)
"""Keys every trace row must have (presence only; ``None`` counts as present)."""

REQUIRED_STRING_FIELDS = REQUIRED_FIELDS - {"source_refs", "policy_refs"}
"""Required keys whose value must also be a string with non-whitespace content."""

ALLOWED_DECISIONS = frozenset({"approve", "block", "abstain", "escalate"})
ALLOWED_SEVERITIES = frozenset({"low", "medium", "high", "critical"})
HIGH_RISK_SEVERITIES = frozenset({"high", "critical"})

__all__ = [
    "ALLOWED_DECISIONS",
    "ALLOWED_SEVERITIES",
    "HIGH_RISK_SEVERITIES",
    "REQUIRED_FIELDS",
    "REQUIRED_STRING_FIELDS",
    "SCHEMA_VERSION",
    "SECTOR_REQUIRED_METADATA",
    "CanonicalRows",
    "CustomerDatasetValidationReport",
    "CustomerTraceFinding",
    "CustomerWorkspace",
    "RowsSummary",
    "summarize_rows",
    "validate_customer_trace_dataset",
    "validate_trace_rows",
]

_SORTED_REQUIRED_FIELDS = tuple(sorted(REQUIRED_FIELDS))
_SORTED_REQUIRED_STRING_FIELDS = tuple(sorted(REQUIRED_STRING_FIELDS))
_REQUIRED_STRING_VALUES = operator.itemgetter(*_SORTED_REQUIRED_STRING_FIELDS)
_SORTED_SECTOR_METADATA = tuple(sorted(SECTOR_REQUIRED_METADATA))
_SECTOR_VALUES = operator.itemgetter(*_SORTED_SECTOR_METADATA)
_REFERENCE_LIST_FIELDS = ("source_refs", "policy_refs")
# Self-declared boolean flags: a non-bool value (the string "true") must not slip past `is True`.
_BOOLEAN_FLAGS = ("contains_pii", "contains_secret")
_FLAG_TYPES = frozenset({bool, type(None)})  # bool cannot be subclassed, so type() is exact
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
# The dataset_hash recipe for one row (section 1.4); ASCII output, since ensure_ascii stays on.
_ENCODE_ROW = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def _acyclic_row_chunks() -> Callable[[Any, int], Iterable[str]]:
    """(row, 0) -> pieces of ``_ENCODE_ROW(row)``, for rows that cannot hold a reference cycle
    (parsed JSON cannot).

    ``JSONEncoder.encode`` builds a fresh C encoder, with a dict for spotting cycles, on every
    call; this is the same C encoder (the arguments ``iterencode`` gives it) built once, with
    no cycle bookkeeping, which saves a tenth of the encoding. Without the C accelerator it
    wraps ``_ENCODE_ROW``. ``test_acyclic_encoder_matches_the_recipe`` compares the two.
    """
    try:
        from _json import make_encoder
    except ImportError:  # an interpreter without the C accelerator
        return lambda row, _level: (_ENCODE_ROW(row),)
    encoder: Callable[[Any, int], Iterable[str]] = make_encoder(
        None, str, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True
    )
    return encoder


_ACYCLIC_ROW_CHUNKS = _acyclic_row_chunks()

_WORKSPACE_FIELDS = (
    "customer_id",
    "workspace_id",
    "tenant_id",
    "data_classification",
    "allowed_splits",
    "regulation_mappings",
)
_FINDING_FIELDS = ("code", "severity", "message", "trace_id", "field")
_REPORT_FIELDS = (
    "schema_version",
    "ready",
    "customer_id",
    "workspace_id",
    "tenant_id",
    "row_count",
    "split_counts",
    "severity_counts",
    "high_risk_count",
    "dataset_hash",
    "findings",
)


@frozen
class CustomerWorkspace:
    """Customer workspace metadata used as the isolation boundary.

    ``allowed_splits`` is both the allow-list of split names and the list of splits that must
    have rows. ``data_classification`` and ``regulation_mappings`` are carried, not checked.
    """

    customer_id: str
    workspace_id: str
    tenant_id: str
    data_classification: str
    allowed_splits: tuple[str, ...]
    regulation_mappings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Serialise the workspace to JSON-safe data (tuples become lists)."""
        return {
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "data_classification": self.data_classification,
            "allowed_splits": list(self.allowed_splits),
            "regulation_mappings": list(self.regulation_mappings),
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a workspace strictly: every key required, no unknown keys, no coercion."""
        workspace = cls(
            customer_id=req_str(payload, "customer_id"),
            workspace_id=req_str(payload, "workspace_id"),
            tenant_id=req_str(payload, "tenant_id"),
            data_classification=req_str(payload, "data_classification"),
            allowed_splits=req_str_tuple(payload, "allowed_splits"),
            regulation_mappings=req_str_tuple(payload, "regulation_mappings"),
        )
        reject_unknown(payload, _WORKSPACE_FIELDS)
        return workspace


@frozen
class CustomerTraceFinding:
    """One validation finding for a customer trace dataset."""

    code: str
    severity: str
    message: str
    trace_id: str = ""
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        """Serialise the finding to a stable dictionary with all five keys."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "trace_id": self.trace_id,
            "field": self.field,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a finding strictly: all five keys required, each a string."""
        finding = cls(
            code=req_str(payload, "code"),
            severity=req_str(payload, "severity"),
            message=req_str(payload, "message"),
            trace_id=req_str(payload, "trace_id"),
            field=req_str(payload, "field"),
        )
        reject_unknown(payload, _FINDING_FIELDS)
        return finding


@frozen
class CustomerDatasetValidationReport:
    """Validation report and manifest preflight for customer datasets."""

    schema_version: str
    ready: bool
    customer_id: str
    workspace_id: str
    tenant_id: str
    row_count: int
    split_counts: dict[str, int]
    severity_counts: dict[str, int]
    high_risk_count: int
    dataset_hash: str
    findings: tuple[CustomerTraceFinding, ...]

    def to_dict(self) -> dict[str, Any]:
        """Serialise the report to a JSON-safe manifest shape (count maps sorted by key)."""
        return {
            "schema_version": self.schema_version,
            "ready": self.ready,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "row_count": self.row_count,
            "split_counts": dict(sorted(self.split_counts.items())),
            "severity_counts": dict(sorted(self.severity_counts.items())),
            "high_risk_count": self.high_risk_count,
            "dataset_hash": self.dataset_hash,
            "findings": [finding.to_dict() for finding in self.findings],
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a report strictly; ValueError names the offending field."""
        report = cls(
            schema_version=req_str(payload, "schema_version"),
            ready=req_bool(payload, "ready"),
            customer_id=req_str(payload, "customer_id"),
            workspace_id=req_str(payload, "workspace_id"),
            tenant_id=req_str(payload, "tenant_id"),
            row_count=req_int(payload, "row_count"),
            split_counts=req_int_dict(payload, "split_counts"),
            severity_counts=req_int_dict(payload, "severity_counts"),
            high_risk_count=req_int(payload, "high_risk_count"),
            dataset_hash=req_str(payload, "dataset_hash"),
            findings=tuple(
                _finding_from_item(item, f"findings[{index}]")
                for index, item in enumerate(req_findings(payload, "findings"))
            ),
        )
        reject_unknown(payload, _REPORT_FIELDS)
        return report

    def verify_hash(self) -> None:
        """Check what the report alone can prove; raise ValueError naming the field.

        ``dataset_hash`` covers the rows, which live elsewhere, so it is checked for shape only
        (64 lowercase hex). The fields derived from others must agree with them: ``ready``
        means no finding of severity error (section 1.3), ``high_risk_count`` is the high plus
        critical count, and ``schema_version`` (outside every hash) is ours.
        """
        kind = "CustomerDatasetValidationReport"
        if not _HEX_SHA256.fullmatch(self.dataset_hash):
            raise ValueError(
                f"{kind}.dataset_hash: {self.dataset_hash!r} is not 64 lowercase hex characters"
            )
        if self.ready != _ready(self.findings):
            raise ValueError(
                f"{kind}.ready: stored {self.ready} contradicts the findings "
                "(ready means no finding of severity 'error')"
            )
        high_risk = _high_risk_count(self.severity_counts)
        if self.high_risk_count != high_risk:
            raise ValueError(
                f"{kind}.high_risk_count: stored {self.high_risk_count} but severity_counts "
                f"give {high_risk}"
            )
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"{kind}.schema_version: {self.schema_version!r} is not {SCHEMA_VERSION!r}"
            )

    @classmethod
    def from_dict_verified(cls, payload: Mapping[str, Any]) -> Self:
        """``from_dict`` then ``verify_hash``: a parsed report that is also self-consistent."""
        report = cls.from_dict(payload)
        report.verify_hash()
        return report

    def write_json(self, path: Path) -> Path:
        """Write the validation report as deterministic JSON, atomically."""
        return _jsonfile.write_json(path, self.to_dict())


def _finding_from_item(item: Mapping[str, str], where: str) -> CustomerTraceFinding:
    """Parse one serialised finding, prefixing any error with its position in the list."""
    try:
        return CustomerTraceFinding.from_dict(item)
    except ValueError as exc:
        raise ValueError(f"{where}.{exc}") from exc


def _high_risk_count(severity_counts: Mapping[str, int]) -> int:
    """Rows of severity high or critical; a plain sum (the reference required a native kernel)."""
    return sum(severity_counts.get(name, 0) for name in HIGH_RISK_SEVERITIES)


def _ready(findings: Iterable[CustomerTraceFinding]) -> bool:
    """Dataset readiness (section 1.3): no finding has severity ``error``; warnings are allowed."""
    return not any(finding.severity == "error" for finding in findings)


def validate_customer_trace_dataset(
    rows: list[dict[str, Any]],
    workspace: CustomerWorkspace,
    *,
    vertical_profile: str | None = None,
) -> CustomerDatasetValidationReport:
    """Validate customer-owned guardrail traces before training or benchmarking (section 2.3).

    A row that is not a dict raises ValueError naming its index.
    """
    return validate_trace_rows(rows, workspace, vertical_profile=vertical_profile)


def validate_trace_rows(
    rows: Iterable[dict[str, Any]],
    workspace: CustomerWorkspace,
    *,
    vertical_profile: str | None = None,
) -> CustomerDatasetValidationReport:
    """Validate rows from any iterable, one at a time, without holding them all in memory.

    Gives the same report as ``validate_customer_trace_dataset`` on the same rows.
    """
    validator = _DatasetValidator(workspace, vertical_profile=vertical_profile)
    for row in rows:
        validator.add(row)
    return validator.finish()


class _DatasetValidator:
    """The incremental engine: ``add`` each row in order, then ``finish`` once for the report.

    State kept across rows is what the dataset-level rules need and nothing more: the labels
    seen (duplicate trace ids), per split the first label of each semantic fingerprint (as a
    32-byte digest), the two count maps, the running ``dataset_hash``, and the findings.
    """

    def __init__(self, workspace: CustomerWorkspace, *, vertical_profile: str | None) -> None:
        """Start an empty validation against ``workspace``."""
        self._workspace = workspace
        self._allowed_splits = _allowed_split_set(workspace.allowed_splits)
        self._stripped_splits = _unstripped_names(self._allowed_splits)
        self._sector_profile = bool(vertical_profile)
        self._findings: list[CustomerTraceFinding] = []
        self._labels: set[str] = set()
        self._first_label: dict[str, dict[bytes, str]] = {}
        self._split_counts: dict[str, int] = {}
        self._severity_counts: dict[str, int] = {}
        self._row_count = 0
        self._rows_hash = CanonicalRows()
        self._finished = False

    def add(self, row: dict[str, Any]) -> None:
        """Apply the per-row rules to ``row``: section 2.3 rules 1-12 in order, then ours."""
        if self._finished:
            raise RuntimeError("rows cannot be added after finish()")
        if not isinstance(row, dict):
            raise ValueError(
                f"row {self._row_count}: expected an object (dict), got {type(row).__name__}"
            )
        self._rows_hash.add(row)
        self._check(row)

    def add_summary(self, summary: RowsSummary) -> None:
        """Apply a batch reduced by ``summarize_rows``: the same effect as ``add`` on its rows.

        The summary's rows count as the next rows of the dataset, so batches must be applied in
        order. ValueError if the summary is inconsistent with itself; the validator may then
        hold part of it and must be discarded.
        """
        if self._finished:
            raise RuntimeError("rows cannot be added after finish()")
        quiet_count = summary.row_count - len(summary.others)
        if not (
            len(summary.labels) == len(summary.splits) == len(summary.fingerprints) == quiet_count
        ):
            raise ValueError("inconsistent RowsSummary: quiet row columns disagree with the count")
        self._rows_hash.add_encoded(summary.encoded)
        quiet = zip(summary.labels, summary.splits, summary.fingerprints, strict=True)
        start = self._row_count
        for position, row in summary.others:
            before = position - (self._row_count - start)  # quiet rows ahead of this one
            if (
                before < 0
                or not isinstance(row, dict)
                or self._add_quiet_rows(itertools.islice(quiet, before)) != before
            ):
                raise ValueError(f"inconsistent RowsSummary: bad entry at position {position}")
            self._check(row)
        self._add_quiet_rows(quiet)
        _add_counts(self._split_counts, summary.split_counts)
        _add_counts(self._severity_counts, summary.severity_counts)

    def _add_quiet_rows(self, rows: Iterable[tuple[str, str, bytes]]) -> int:
        """Take the next rows, each already known to pass ``_plainly_valid``, as
        (label, split, semantic fingerprint): only rule 5 and within_split_duplicate can fire.
        Return how many there were.

        Their split and severity counts arrive separately (``add_summary``): counts commute.
        This is ``_duplicate_id_findings`` then ``_fingerprint_findings`` per row, inlined: it
        runs for nearly every row of a big file, in the one process that cannot be parallel.
        """
        findings, labels, first_label = self._findings, self._labels, self._first_label
        count = 0
        for label, split, fingerprint in rows:
            count += 1
            if label in labels:
                findings.append(_duplicate_id_finding(label))
            else:
                labels.add(label)
            first_labels = first_label.get(split)
            if first_labels is None:
                first_labels = first_label[split] = {}
            earlier = first_labels.get(fingerprint)
            if earlier is None:
                first_labels[fingerprint] = label
            else:
                findings.append(_within_split_finding(label, earlier, split))
        self._row_count += count
        return count

    def _check(self, row: dict[str, Any]) -> None:
        """Every rule for the next row except the dataset_hash, which the caller covers."""
        index = self._row_count
        self._row_count = index + 1
        label = _row_label(row, index)
        split = _stripped(row.get("split"))
        severity = _stripped(row.get("severity"))
        findings = self._findings
        if _plainly_valid(row, self._workspace, self._stripped_splits, self._sector_profile):
            # Most rows: no stateless rule can fire (property-tested), so only rule 5 runs.
            findings.extend(self._duplicate_id_findings(label))
        else:
            findings.extend(self._row_findings(row, label, split, severity))
        findings.extend(self._count(row, split, severity, label))  # new: within_split_duplicate

    def _row_findings(
        self, row: dict[str, Any], label: str, split: str, severity: str
    ) -> list[CustomerTraceFinding]:
        """Rules 1-12 in the reference's order, then flag_not_boolean and unredacted_pii."""
        findings: list[CustomerTraceFinding] = []
        findings.extend(_missing_field_findings(row, label))  # 1
        findings.extend(_blank_field_findings(row, label))  # 2
        findings.extend(_workspace_binding_findings(row, label, self._workspace))  # 3, 4
        findings.extend(self._duplicate_id_findings(label))  # 5
        findings.extend(_decision_findings(row, label))  # 6, 7
        findings.extend(_reference_list_findings(row, label))  # 8
        findings.extend(_secret_findings(row, label))  # 9
        if self._sector_profile:
            findings.extend(_sector_findings(row, label))  # 10
        findings.extend(_split_findings(split, self._allowed_splits, label))  # 11
        findings.extend(_severity_findings(severity, label))  # 12
        findings.extend(_flag_type_findings(row, label))  # new: flag_not_boolean
        findings.extend(_pii_findings(row, label))  # new: unredacted_pii
        return findings

    def _duplicate_id_findings(self, label: str) -> Iterable[CustomerTraceFinding]:
        """Rule 5: a label seen before is a duplicate; ``row:N`` fallbacks take part too."""
        if label not in self._labels:
            self._labels.add(label)
            return _NO_FINDINGS
        return [_duplicate_id_finding(label)]

    def _count(
        self, row: Mapping[str, Any], split: str, severity: str, label: str
    ) -> Iterable[CustomerTraceFinding]:
        """Count the (stripped, non-empty) split and severity, allowed or not, and record the
        row's fingerprint under its split; warn when the split already holds that fingerprint.
        """
        if severity:
            self._severity_counts[severity] = self._severity_counts.get(severity, 0) + 1
        if not split:
            return _NO_FINDINGS
        self._split_counts[split] = self._split_counts.get(split, 0) + 1
        return self._fingerprint_findings(label, split, _semantic_fingerprint(row))

    def _fingerprint_findings(
        self, label: str, split: str, fingerprint: bytes
    ) -> Iterable[CustomerTraceFinding]:
        """Record ``fingerprint`` under ``split`` (first label wins); warn if already there."""
        first_labels = self._first_label.get(split)
        if first_labels is None:
            first_labels = self._first_label[split] = {}
        earlier = first_labels.get(fingerprint)
        if earlier is None:
            first_labels[fingerprint] = label
            return _NO_FINDINGS
        return [_within_split_finding(label, earlier, split)]

    def finish(self) -> CustomerDatasetValidationReport:
        """Apply the dataset-level rules (P1, P2) and return the report; callable once."""
        if self._finished:
            raise RuntimeError("finish() was already called")
        self._finished = True
        findings = self._findings
        findings.extend(_missing_split_findings(self._workspace.allowed_splits, self._split_counts))
        findings.extend(_cross_split_findings(self._first_label))
        severity_counts = dict(sorted(self._severity_counts.items()))
        workspace = self._workspace
        return CustomerDatasetValidationReport(
            schema_version=SCHEMA_VERSION,
            ready=_ready(findings),
            customer_id=workspace.customer_id,
            workspace_id=workspace.workspace_id,
            tenant_id=workspace.tenant_id,
            row_count=self._row_count,
            split_counts=dict(sorted(self._split_counts.items())),
            severity_counts=severity_counts,
            high_risk_count=_high_risk_count(severity_counts),
            dataset_hash=self._rows_hash.hexdigest(),
            findings=tuple(findings),
        )


class CanonicalRows:
    """The canonical trace blob: ``json.dumps(rows, sort_keys=True, separators=(",", ":"),
    default=str)``, built row by row; its SHA-256 is ``dataset_hash`` (section 1.4).

    The dump of a list is ``"[" + ",".join(<each row dumped alike>) + "]"``, so encoding the
    rows one at a time, in order, gives exactly its bytes (ASCII: ``ensure_ascii`` stays on)
    and their digest without ever holding the list. ``sink``, when given, receives those bytes
    as they are produced (the trace blob is written while the customer's file is streamed).
    """

    def __init__(self, sink: Callable[[bytes], object] | None = None) -> None:
        """Start the array of no rows; ``sink`` (if any) receives its bytes in order."""
        self._sha = hashlib.sha256(b"[")
        self._sink = sink
        self._separator = b""
        self._encode = _ENCODE_ROW
        self._closed = False
        if sink is not None:
            sink(b"[")

    def add(self, row: Any) -> None:
        """Append one row's canonical encoding; RuntimeError after ``close``."""
        if self._closed:
            raise RuntimeError("rows cannot be added after close()")
        piece = self._separator + self._encode(row).encode("ascii")
        self._sha.update(piece)
        if self._sink is not None:
            self._sink(piece)
        self._separator = b","

    def add_encoded(self, pieces: bytes | memoryview) -> None:
        """Append rows already encoded by this recipe and joined by ``,`` (empty: no rows).

        ``summarize_rows`` produces such pieces; adding them equals ``add`` on their rows.
        """
        if self._closed:
            raise RuntimeError("rows cannot be added after close()")
        if not pieces:
            return
        # Two updates instead of one concatenation: pieces may be megabytes long.
        self._sha.update(self._separator)
        self._sha.update(pieces)
        if self._sink is not None:
            self._sink(self._separator)
            self._sink(bytes(pieces))
        self._separator = b","

    def hexdigest(self) -> str:
        """Return the digest of the array of the rows so far (closed with ``]``)."""
        sha = self._sha.copy()
        sha.update(b"]")
        return sha.hexdigest()

    def close(self) -> str:
        """Write the closing ``]`` to the sink and return the digest; callable once."""
        if self._closed:
            raise RuntimeError("close() was already called")
        self._closed = True
        if self._sink is not None:
            self._sink(b"]")
        return self.hexdigest()


@frozen
class RowsSummary:
    """A batch of consecutive rows reduced to what the engine's cross-row rules still need.

    ``summarize_rows`` builds it with no state shared between batches; the engine applies it
    with ``_DatasetValidator.add_summary``. A row that passes ``_plainly_valid`` (a "quiet"
    row: no stateless rule can fire) is reduced to its label, split and semantic fingerprint,
    in the three parallel columns; every other row travels whole, with its position in the
    batch, and gets every rule when the summary is applied.
    """

    encoded: bytes | memoryview
    """The rows' canonical encodings joined by ``,``: their part of the dataset_hash input
    (empty if ``summarize_rows`` wrote them elsewhere)."""
    row_count: int
    labels: list[str]
    splits: list[str]
    fingerprints: list[bytes]
    split_counts: dict[str, int]
    """Split counts of the quiet rows (the other rows are counted when applied)."""
    severity_counts: dict[str, int]
    """Severity counts of the quiet rows."""
    others: list[tuple[int, dict[str, Any]]]
    """(position in the batch, row) of every row that is not quiet, in order."""


def summarize_rows(
    rows: Iterable[dict[str, Any]],
    workspace: CustomerWorkspace,
    *,
    vertical_profile: str | None = None,
    write: Callable[[bytes], object] | None = None,
) -> RowsSummary:
    """Reduce consecutive rows to a RowsSummary, using no state from outside the batch.

    Applying the summaries of consecutive batches in order with ``add_summary`` gives the same
    report as ``add`` on each row (property-tested). Rows are taken one at a time, each done
    with before the next is asked for: a streaming source keeps only one parsed row in memory
    (and in the CPU's caches). With ``write``, the canonical bytes are written there, a row at
    a time, and ``encoded`` is left empty. Rows must not hold reference cycles (parsed JSON
    cannot), which are not looked for. TypeError if a row is not a dict (the engine's ``add``
    reports that with the row's index; files never produce such rows).
    """
    stripped_splits = _unstripped_names(_allowed_split_set(workspace.allowed_splits))
    sector_profile = bool(vertical_profile)
    chunks, join = _ACYCLIC_ROW_CHUNKS, "".join
    pieces: list[str] = []
    separator = ""
    labels: list[str] = []
    splits: list[str] = []
    severities: list[str] = []
    fingerprints: list[bytes] = []
    others: list[tuple[int, dict[str, Any]]] = []
    for position, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TypeError(f"batch row {position}: expected a dict, got {type(row).__name__}")
        if write is None:
            pieces.append(join(chunks(row, 0)))
        else:
            write((separator + join(chunks(row, 0))).encode("ascii"))
            separator = ","
        if _plainly_valid(row, workspace, stripped_splits, sector_profile):
            # Quiet, so these values are non-blank strs equal to their stripped form, and the
            # label is the trace_id: what _check would derive, without the stripping.
            labels.append(row["trace_id"])
            splits.append(row["split"])
            severities.append(row["severity"])
            fingerprints.append(_fingerprint(row["prompt"], row["response"]))
        else:
            others.append((position, row))
    return RowsSummary(
        encoded=",".join(pieces).encode("ascii"),
        row_count=len(labels) + len(others),
        labels=labels,
        splits=splits,
        fingerprints=fingerprints,
        split_counts=dict(Counter(splits)),
        severity_counts=dict(Counter(severities)),
        others=others,
    )


def _add_counts(totals: dict[str, int], counts: Mapping[str, int]) -> None:
    """Add ``counts`` into ``totals`` key by key."""
    for key, count in counts.items():
        totals[key] = totals.get(key, 0) + count


def _unstripped_names(names: frozenset[str]) -> frozenset[str]:
    """The names equal to their stripped form: a raw value among them needs no stripping."""
    return frozenset(name for name in names if name == name.strip())


def _allowed_split_set(allowed_splits: tuple[str, ...]) -> frozenset[str]:
    """Return the allowed splits as a set; a bare string or a non-str name raises TypeError."""
    # A str would turn membership into a substring test ("rain" in "train").
    if isinstance(allowed_splits, str) or not isinstance(allowed_splits, tuple | list):
        raise TypeError(
            f"workspace.allowed_splits: expected a tuple of strings, got "
            f"{type(allowed_splits).__name__}"
        )
    for name in allowed_splits:
        if not isinstance(name, str):
            raise TypeError(
                f"workspace.allowed_splits: expected strings, got {type(name).__name__}"
            )
    return frozenset(allowed_splits)


_NO_FINDINGS: tuple[CustomerTraceFinding, ...] = ()
_DUPLICATE_ID_MESSAGE = "trace_id must be unique inside a customer dataset"


def _finding(
    code: str, message: str, trace_id: str, field: str, *, severity: str = "error"
) -> CustomerTraceFinding:
    """Build one per-row finding (errors unless ``severity`` says otherwise)."""
    return CustomerTraceFinding(
        code=code, severity=severity, message=message, trace_id=trace_id, field=field
    )


def _duplicate_id_finding(label: str) -> CustomerTraceFinding:
    """Rule 5's finding for a row whose label was seen before."""
    return _finding("duplicate_trace_id", _DUPLICATE_ID_MESSAGE, label, "trace_id")


def _within_split_finding(label: str, earlier: str, split: str) -> CustomerTraceFinding:
    """The within_split_duplicate warning: ``label``'s prompt/response pair is ``earlier``'s."""
    return _finding(
        "within_split_duplicate",
        f"prompt/response of {label!r} duplicates {earlier!r} within split {split!r}",
        label,
        "split",
        severity="warning",
    )


def _string(value: Any) -> str:
    """Return ``value`` if it is a str, else ``""`` (the reference's ``_string``)."""
    return value if isinstance(value, str) else ""


def _stripped(value: Any) -> str:
    """Return ``value`` stripped if it is a str, else ``""``."""
    return value.strip() if isinstance(value, str) else ""


def _row_label(row: Mapping[str, Any], index: int) -> str:
    """The row's trace_id if it is a non-empty str (not stripped), else ``row:<index>``."""
    trace_id = row.get("trace_id")
    return trace_id if isinstance(trace_id, str) and trace_id else f"row:{index}"


def _plainly_valid(
    row: dict[str, Any],
    workspace: CustomerWorkspace,
    stripped_splits: frozenset[str],
    sector_profile: bool,
) -> bool:
    """A cheap sufficient condition for "no stateless per-row rule fires" (the common row).

    True guarantees that rules 1-4 and 6-12 and the flag_not_boolean and unredacted_pii rules
    would all find nothing, so the caller may skip them; False only means "run the rules".
    Values are compared exactly, so a value that would need stripping takes the slow path.
    ``test_plainly_valid_rows_have_no_row_findings`` checks the guarantee against the rules.
    """
    try:
        strings = _REQUIRED_STRING_VALUES(row)
        source_refs, policy_refs = row["source_refs"], row["policy_refs"]
    except KeyError:
        return False  # rule 1
    if not (
        type(source_refs) is list and source_refs and type(policy_refs) is list and policy_refs
    ):
        return False  # rule 8
    try:
        # Rules 2 and 8: non-blank strs. str.strip, unbound, raises TypeError on a non-str,
        # which keeps these loops in C (one call per list instead of a helper per list).
        if not (
            all(map(str.strip, strings))
            and all(map(str.strip, source_refs))
            and all(map(str.strip, policy_refs))
        ):
            return False
    except TypeError:
        return False
    decision, severity = row["expected_decision"], row["severity"]
    pii, secret = row.get("contains_pii"), row.get("contains_secret")
    return (
        row["customer_id"] == workspace.customer_id  # 3
        and row["tenant_id"] == workspace.tenant_id  # 4
        and decision in ALLOWED_DECISIONS  # 6
        and not (decision == "approve" and severity in HIGH_RISK_SEVERITIES)  # 7
        and type(pii) in _FLAG_TYPES  # flag_not_boolean
        and type(secret) in _FLAG_TYPES  # flag_not_boolean
        and (not (pii or secret) or row.get("redaction_status") == "redacted")  # 9, PII
        and (not sector_profile or _plainly_valid_sector(row.get("metadata"), decision))  # 10
        and row["split"] in stripped_splits  # 11
        and severity in ALLOWED_SEVERITIES  # 12
    )


def _plainly_valid_sector(metadata: Any, decision: str) -> bool:
    """Sufficient condition for rule 10 to find nothing: every required key holds a bool or a
    non-blank string, and each control that is switched on has its evidence."""
    if type(metadata) is not dict:
        return False
    try:
        values = _SECTOR_VALUES(metadata)
    except KeyError:
        return False
    for value in values:
        if type(value) is not bool and not (type(value) is str and value.strip()):
            return False
    return (
        (
            metadata.get("requires_citation") is not True
            or _non_empty_string_list(metadata.get("evidence_refs"))
        )
        and (
            metadata.get("requires_numeric_evidence") is not True
            or _non_empty_string_list(metadata.get("numeric_evidence_refs"))
        )
        and (metadata.get("requires_escalation") is not True or decision == "escalate")
    )


def _missing_field_findings(row: Mapping[str, Any], label: str) -> Iterable[CustomerTraceFinding]:
    """Rule 1: each absent required key, alphabetically (``None`` counts as present)."""
    if row.keys() >= REQUIRED_FIELDS:
        return _NO_FINDINGS
    return [
        _finding("missing_required_field", f"required field {key!r} is missing", label, key)
        for key in _SORTED_REQUIRED_FIELDS
        if key not in row
    ]


def _is_blank(value: Any) -> bool:
    """True for a non-str value or a whitespace-only str."""
    return not isinstance(value, str) or not value.strip()


def _blank_field_findings(row: Mapping[str, Any], label: str) -> Iterable[CustomerTraceFinding]:
    """Rule 2: each present required string key that is not a non-blank str, alphabetically."""
    try:
        if _all_nonblank_strings(_REQUIRED_STRING_VALUES(row)):
            return _NO_FINDINGS  # the common case, checked without a Python-level loop
    except KeyError:
        pass  # an absent key is rule 1's business; check the present ones one by one
    return [
        _finding(
            "blank_required_field", f"required field {key!r} must be a non-empty string", label, key
        )
        for key in _SORTED_REQUIRED_STRING_FIELDS
        if key in row and _is_blank(row[key])
    ]


def _workspace_binding_findings(
    row: Mapping[str, Any], label: str, workspace: CustomerWorkspace
) -> Iterable[CustomerTraceFinding]:
    """Rules 3-4: the row's raw customer_id and tenant_id must equal the workspace's."""
    customer_ok = row.get("customer_id") == workspace.customer_id
    if customer_ok and row.get("tenant_id") == workspace.tenant_id:
        return _NO_FINDINGS
    findings = []
    if not customer_ok:
        findings.append(
            _finding(
                "customer_id_mismatch",
                "row customer_id does not match workspace customer_id",
                label,
                "customer_id",
            )
        )
    if row.get("tenant_id") != workspace.tenant_id:
        findings.append(
            _finding(
                "tenant_id_mismatch",
                "row tenant_id does not match workspace tenant_id",
                label,
                "tenant_id",
            )
        )
    return findings


def _decision_findings(row: Mapping[str, Any], label: str) -> Iterable[CustomerTraceFinding]:
    """Rules 6-7: decision in the allowed set; high-risk rows labelled approve get a warning."""
    findings = []
    decision = _stripped(row.get("expected_decision"))
    if decision and decision not in ALLOWED_DECISIONS:
        findings.append(
            _finding(
                "decision_not_allowed",
                f"expected_decision {decision!r} is not allowed",
                label,
                "expected_decision",
            )
        )
    if decision == "approve" and _stripped(row.get("severity")) in HIGH_RISK_SEVERITIES:
        findings.append(
            _finding(
                "high_risk_approve_label",
                "high-risk rows approved by label need reviewer justification",
                label,
                "expected_decision",
                severity="warning",
            )
        )
    return findings


def _reference_list_findings(row: Mapping[str, Any], label: str) -> Iterable[CustomerTraceFinding]:
    """Rule 8: present ``source_refs`` / ``policy_refs`` must be non-empty lists of strings."""
    return [
        _finding("invalid_reference_list", f"{key} must be a non-empty list of strings", label, key)
        for key in _REFERENCE_LIST_FIELDS
        if key in row and not _non_empty_string_list(row[key])
    ]


def _secret_findings(row: Mapping[str, Any], label: str) -> Iterable[CustomerTraceFinding]:
    """Rule 9: ``contains_secret is True`` requires ``redaction_status == "redacted"``."""
    if row.get("contains_secret") is True and row.get("redaction_status") != "redacted":
        return [
            _finding(
                "unredacted_secret",
                "rows flagged with secrets must be redacted before training",
                label,
                "redaction_status",
            )
        ]
    return _NO_FINDINGS


def _split_findings(
    split: str, allowed_splits: frozenset[str], label: str
) -> Iterable[CustomerTraceFinding]:
    """Rule 11: a non-empty stripped split must be one of the workspace's splits."""
    if not split or split in allowed_splits:
        return _NO_FINDINGS
    return [
        _finding(
            "split_not_allowed", f"split {split!r} is not allowed for workspace", label, "split"
        )
    ]


def _severity_findings(severity: str, label: str) -> Iterable[CustomerTraceFinding]:
    """Rule 12: a non-empty stripped severity must be one of ``ALLOWED_SEVERITIES``."""
    if not severity or severity in ALLOWED_SEVERITIES:
        return _NO_FINDINGS
    return [
        _finding("severity_not_allowed", f"severity {severity!r} is not allowed", label, "severity")
    ]


def _sector_findings(row: Mapping[str, Any], label: str) -> Iterable[CustomerTraceFinding]:
    """Rule 10 (section 2.4): sector metadata presence, then the sector extension controls."""
    metadata = row.get("metadata")
    if isinstance(metadata, dict):
        missing = [key for key in _SORTED_SECTOR_METADATA if metadata.get(key) in ("", None)]
    else:
        missing = list(_SORTED_SECTOR_METADATA)
    if missing or not isinstance(metadata, dict):
        return [
            _finding(
                "sector_metadata_missing",
                f"sector profile requires metadata.{key}",
                label,
                f"metadata.{key}",
            )
            for key in missing
        ]
    # The reference passes the decision unstripped here (section 2.4).
    return validate_sector_trace_metadata(
        metadata, trace_id=label, expected_decision=_string(row.get("expected_decision"))
    )


def _flag_type_findings(row: Mapping[str, Any], label: str) -> Iterable[CustomerTraceFinding]:
    """New: ``contains_pii`` / ``contains_secret`` present and not None must be real booleans."""
    if type(row.get("contains_pii")) in _FLAG_TYPES and type(row.get("contains_secret")) in (
        _FLAG_TYPES
    ):
        return _NO_FINDINGS
    findings = []
    for flag in _BOOLEAN_FLAGS:
        value = row.get(flag)
        if value is not None and not isinstance(value, bool):
            findings.append(
                _finding(
                    "flag_not_boolean",
                    f"{flag} must be true or false, got {type(value).__name__} {value!r:.40}",
                    label,
                    flag,
                )
            )
    return findings


def _pii_findings(row: Mapping[str, Any], label: str) -> Iterable[CustomerTraceFinding]:
    """New: ``contains_pii is True`` requires ``redaction_status == "redacted"``."""
    if row.get("contains_pii") is True and row.get("redaction_status") != "redacted":
        return [
            _finding(
                "unredacted_pii",
                "rows flagged with PII must be redacted before training",
                label,
                "redaction_status",
            )
        ]
    return _NO_FINDINGS


def _semantic_fingerprint(row: Mapping[str, Any]) -> bytes:
    """SHA-256 digest of the case-folded, trimmed ``prompt`` and ``response`` (section 2.3).

    Lone surrogates (possible from JSON ``\\ud800`` escapes) are hashed with ``surrogatepass``
    instead of raising as the reference would; valid text gives the reference's digest.
    """
    return _fingerprint(_string(row.get("prompt")), _string(row.get("response")))


def _fingerprint(prompt: str, response: str) -> bytes:
    """``_semantic_fingerprint`` of a row with this ``prompt`` and ``response``."""
    text = f"{prompt.lower().strip()}\n{response.lower().strip()}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _missing_split_findings(
    allowed_splits: tuple[str, ...], split_counts: Mapping[str, int]
) -> Iterable[CustomerTraceFinding]:
    """Rule P1: every workspace split (tuple order) needs at least one row."""
    return [
        CustomerTraceFinding(
            code="split_missing",
            severity="error",
            message=f"required split {split!r} has no rows",
            field="split",
        )
        for split in allowed_splits
        if split_counts.get(split, 0) == 0
    ]


def _cross_split_findings(
    first_label: Mapping[str, Mapping[bytes, str]],
) -> Iterable[CustomerTraceFinding]:
    """Rule P2: one finding per pair of splits (names sorted) that share a fingerprint."""
    splits = sorted(first_label)
    return [
        CustomerTraceFinding(
            code="cross_split_duplicate",
            severity="error",
            message=f"exact prompt/response duplicate across {left} and {right}",
            field="split",
        )
        for position, left in enumerate(splits)
        for right in splits[position + 1 :]
        if _intersects(first_label[left], first_label[right])
    ]


def _intersects(left: Mapping[bytes, str], right: Mapping[bytes, str]) -> bool:
    """True iff the two key sets intersect; walks the smaller one, allocates nothing."""
    small, large = (left, right) if len(left) <= len(right) else (right, left)
    return any(key in large for key in small)
