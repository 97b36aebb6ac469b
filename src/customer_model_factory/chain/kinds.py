"""The factory's record kinds: parent edges, signing roles, and bytes -> verified manifest.

Every stage is recorded in the ledger under one kind. A kind fixes which parent kinds its signed
statement must name (and how many of each), which trust-policy role must sign it (the role is
named like the kind), and how its blob parses. Parsing accepts any valid JSON (the blob id is
the hash of the bytes as stored) but nothing lenient: duplicate keys, NaN/Infinity, non-UTF-8,
unknown fields and wrong types are refused, and every self-hash must recompute
(``from_dict_verified``). ``trust_policy`` records are verified by the policy walk
(``ledger.policy``), not here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

from .._fields import reject_unknown, req_int, req_str
from .._frozen import frozen
from .._hashing import HashMismatchError
from .._jsonfile import manifest_bytes
from .._strictjson import DECODER, ConstantError, DuplicateKeyError
from ..benchmark_selection import CustomerBenchmarkResult, CustomerModelSelectionReport
from ..dataset_contract import CustomerDatasetValidationReport
from ..deployment_manifest import CustomerDeploymentManifest
from ..evidence_pack import CustomerEvidencePackManifest
from ..monitoring_manifest import CustomerMonitoringManifest
from ..release_gate import CustomerReleaseGateManifest
from ..risk_register import CustomerRiskRegister
from ..runtime_package import CustomerRuntimePackage
from ..sector_extension import SectorEvidenceMapping
from ..timestamps import parse_instant
from ..training_manifest import CustomerTrainingManifest
from .source import BlobStream

TRACE_DATASET = "trace_dataset"
DATASET_REPORT = "dataset_report"
TRAINING_MANIFEST = "training_manifest"
BENCHMARK_RESULT = "benchmark_result"
SELECTION_REPORT = "selection_report"
DEPLOYMENT_MANIFEST = "deployment_manifest"
SECTOR_MAPPING = "sector_mapping"
EVIDENCE_PACK = "evidence_pack"
RUNTIME_PACKAGE = "runtime_package"
MONITORING_MANIFEST = "monitoring_manifest"
RISK_REGISTER = "risk_register"
RELEASE_GATE = "release_gate"
PROMOTION = "promotion"

PROMOTION_SCHEMA = "cmf-promotion/v1"
_HEX = frozenset("0123456789abcdef")


class ManifestError(ValueError):
    """Blob bytes are not a well-formed manifest of the expected kind."""


@frozen
class ParentRule:
    """How many ``kind`` parents a statement must name: ``minimum`` to ``maximum`` (None: any)."""

    kind: str
    minimum: int = 1
    maximum: int | None = 1


@frozen
class TraceDataset:
    """The parsed form of a ``trace_dataset`` blob: trace rows, streamed on demand.

    Recorded blobs are the canonical JSON array of the rows (``record.record_trace_file``), whose
    SHA-256 is the ``dataset_hash`` of a report on them; older blobs may be JSONL. Trace datasets
    can be far larger than memory, so they are not loaded: each call of ``open`` returns a new
    stream at the blob's first byte, which the caller closes (``open`` may raise OSError or
    LedgerError). ``blob_id`` must be the checked SHA-256 of the bytes once seen there; the
    bindings rely on it, and re-hash whatever they read. ``name`` names the blob in messages.
    """

    blob_id: str
    name: str
    open: Callable[[], BlobStream]


@frozen
class PromotionRecord:
    """The blob of a ``promotion`` record: which release was promoted, when, under what proof.

    ``policy_version`` and ``checkpoint_size`` say which trust-policy version and which signed
    checkpoint the chain was verified against before promotion.
    """

    schema: str
    release_gate_blob_id: str
    release_id: str
    release_hash: str
    customer_id: str
    workspace_id: str
    tenant_id: str
    deployment_id: str
    promoted_at: str
    policy_version: int
    checkpoint_size: int

    def __post_init__(self) -> None:
        if self.schema != PROMOTION_SCHEMA:
            raise ManifestError(f"promotion.schema: {self.schema!r} is not {PROMOTION_SCHEMA!r}")
        for field in ("release_gate_blob_id", "release_hash"):
            if not is_hex_id(getattr(self, field)):
                raise ManifestError(f"promotion.{field}: not 64 lowercase hex characters")
        parse_instant(self.promoted_at, field="promotion.promoted_at")
        if self.policy_version < 1:
            raise ManifestError("promotion.policy_version: must be >= 1")
        if self.checkpoint_size < 1:
            raise ManifestError("promotion.checkpoint_size: must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-safe form (every field, under its own name)."""
        return {name: getattr(self, name) for name in _PROMOTION_FIELDS}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild strictly: missing, unknown or mistyped fields raise ValueError naming them."""
        reject_unknown(payload, _PROMOTION_FIELDS, "promotion.")
        ints = ("policy_version", "checkpoint_size")
        values: dict[str, Any] = {
            name: (req_int if name in ints else req_str)(payload, name, "promotion.")
            for name in _PROMOTION_FIELDS
        }
        return cls(**values)

    def to_bytes(self) -> bytes:
        """Return the canonical blob bytes (``_jsonfile.manifest_bytes`` of ``to_dict``)."""
        return manifest_bytes(self.to_dict())


_PROMOTION_FIELDS = (
    "schema",
    "release_gate_blob_id",
    "release_id",
    "release_hash",
    "customer_id",
    "workspace_id",
    "tenant_id",
    "deployment_id",
    "promoted_at",
    "policy_version",
    "checkpoint_size",
)

Parser = Callable[[Mapping[str, Any]], object]


@frozen
class KindSpec:
    """One record kind: its parent edges, the policy role that signs it, and its parser.

    ``parse`` is None only for ``trace_dataset``, whose rows are streamed, never parsed whole.
    """

    kind: str
    parents: tuple[ParentRule, ...]
    role: str
    parse: Parser | None


def _spec(kind: str, parse: Parser | None, *parents: ParentRule) -> KindSpec:
    """Return the spec of a kind signed by the role of the same name."""
    return KindSpec(kind=kind, parents=parents, role=kind, parse=parse)


KIND_SPECS: Mapping[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        _spec(TRACE_DATASET, None),
        _spec(
            DATASET_REPORT,
            CustomerDatasetValidationReport.from_dict_verified,
            ParentRule(TRACE_DATASET),
        ),
        _spec(
            TRAINING_MANIFEST,
            CustomerTrainingManifest.from_dict_verified,
            ParentRule(DATASET_REPORT),
        ),
        _spec(
            BENCHMARK_RESULT,
            CustomerBenchmarkResult.from_dict_verified,
            ParentRule(TRAINING_MANIFEST),
        ),
        # One parent per candidate; the bindings check that the sets are equal.
        _spec(
            SELECTION_REPORT,
            CustomerModelSelectionReport.from_dict_verified,
            ParentRule(BENCHMARK_RESULT, minimum=0, maximum=None),
        ),
        _spec(
            DEPLOYMENT_MANIFEST,
            CustomerDeploymentManifest.from_dict_verified,
            ParentRule(SELECTION_REPORT),
        ),
        _spec(SECTOR_MAPPING, SectorEvidenceMapping.from_dict_verified),
        _spec(
            EVIDENCE_PACK,
            CustomerEvidencePackManifest.from_dict_verified,
            ParentRule(DEPLOYMENT_MANIFEST),
            ParentRule(SECTOR_MAPPING),
        ),
        _spec(
            RUNTIME_PACKAGE,
            CustomerRuntimePackage.from_dict_verified,
            ParentRule(DEPLOYMENT_MANIFEST),
            ParentRule(EVIDENCE_PACK),
        ),
        _spec(
            MONITORING_MANIFEST,
            CustomerMonitoringManifest.from_dict_verified,
            ParentRule(RUNTIME_PACKAGE),
        ),
        _spec(
            RISK_REGISTER,
            CustomerRiskRegister.from_dict_verified,
            ParentRule(EVIDENCE_PACK),
            ParentRule(MONITORING_MANIFEST),
        ),
        _spec(
            RELEASE_GATE,
            CustomerReleaseGateManifest.from_dict_verified,
            ParentRule(RUNTIME_PACKAGE),
            ParentRule(EVIDENCE_PACK),
            ParentRule(MONITORING_MANIFEST),
            ParentRule(RISK_REGISTER),
        ),
        _spec(PROMOTION, PromotionRecord.from_dict, ParentRule(RELEASE_GATE)),
    )
}

STAGE_KINDS: tuple[str, ...] = tuple(KIND_SPECS)


def kind_spec(kind: str) -> KindSpec:
    """Return the spec of ``kind``; ValueError naming it when it is not a factory kind."""
    try:
        return KIND_SPECS[kind]
    except KeyError:
        raise ValueError(
            f"unknown record kind {kind!r} (known: {', '.join(STAGE_KINDS)})"
        ) from None


def role_for(kind: str) -> str:
    """Return the trust-policy role whose keys must sign records of ``kind``."""
    return kind_spec(kind).role


def parent_kind_problems(kind: str, parent_kinds: Sequence[str]) -> list[str]:
    """Return why ``parent_kinds`` (one entry per named parent) break ``kind``'s edges; [] if ok."""
    spec = kind_spec(kind)
    counts = Counter(parent_kinds)
    allowed = {rule.kind for rule in spec.parents}
    problems = [
        f"{kind} cannot have a {parent} parent"
        for parent in sorted(counts)
        if parent not in allowed
    ]
    for rule in spec.parents:
        count = counts.get(rule.kind, 0)
        if count < rule.minimum or (rule.maximum is not None and count > rule.maximum):
            problems.append(f"{kind} needs {_cardinality(rule)} {rule.kind} parent(s), got {count}")
    return problems


def _cardinality(rule: ParentRule) -> str:
    """Return 'exactly 1', '0 or more', ... for an error message."""
    if rule.maximum is None:
        return f"{rule.minimum} or more"
    if rule.minimum == rule.maximum:
        return f"exactly {rule.minimum}"
    return f"{rule.minimum} to {rule.maximum}"


def parse_manifest(kind: str, data: bytes) -> object:
    """Return the verified manifest object that ``data`` encodes as a ``kind`` blob.

    Raises ManifestError for malformed JSON or a wrong shape, and the stage module's
    ``HashMismatchError`` (a ValueError) when a stored self-hash does not recompute.
    ``trace_dataset`` blobs are streamed, not parsed here (ValueError).
    """
    spec = kind_spec(kind)
    if spec.parse is None:
        raise ValueError(f"{kind} blobs are streamed with TraceDataset, not parsed whole")
    payload = load_json_object(data, what=kind)
    try:
        return spec.parse(payload)
    except ValueError as exc:
        if isinstance(exc, ManifestError | HashMismatchError):
            raise
        raise ManifestError(f"{kind}: {exc}") from exc


def load_json_object(data: bytes, *, what: str) -> dict[str, Any]:
    """Parse ``data`` as one strict JSON object (RFC 8259 over UTF-8, no duplicate keys,
    no NaN/Infinity); ManifestError naming ``what`` otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{what}: not UTF-8: {exc}") from None
    try:
        value = DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{what}: invalid JSON: {exc}") from None
    except RecursionError:
        # Blobs are untrusted: deep nesting must be a finding, never escape a verifier.
        raise ManifestError(f"{what}: JSON nested too deeply") from None
    except DuplicateKeyError as exc:
        raise ManifestError(f"duplicate JSON key {exc.key!r}") from None
    except ConstantError as exc:
        raise ManifestError(str(exc)) from None
    except ValueError as exc:  # the int digits limit (CVE-2020-10735 guard)
        raise ManifestError(f"{what}: invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ManifestError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def is_hex_id(value: object) -> bool:
    """Return True if ``value`` is 64 lowercase hex characters (a blob id / SHA-256 hex)."""
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX
