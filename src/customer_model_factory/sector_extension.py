"""Generic sector-extension controls for private customer packages (reference section 3).

The public core validates the extension contract without publishing sector-specific taxonomies,
database-class mappings, or tuning recipes. This module is the one home of
``SECTOR_REQUIRED_METADATA``; ``dataset_contract`` imports it from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self

from ._fields import reject_unknown, req_str, req_str_tuple, req_str_tuple_dict
from ._frozen import frozen
from ._hashing import check_self_hash, stable_hash_strict
from ._manifest import SelfHashedManifest

if TYPE_CHECKING:
    from .dataset_contract import CustomerTraceFinding

SCHEMA_VERSION = "1.0.0"

SECTOR_REQUIRED_METADATA = frozenset(
    {"sector_class", "knowledge_class", "requires_citation", "jurisdiction"}
)
"""Metadata keys every sector-profile trace row must carry (reference section 2.1 / 3.1)."""

DEFAULT_SECTOR_FRAMEWORKS: tuple[str, ...] = ("ISO27001", "ISO42001", "SOC2")
"""Frameworks a sector evidence mapping names when the caller gives none."""

# Read-only so that no caller can change the defaults of every later mapping in the process.
DEFAULT_CONTROL_EVIDENCE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "audit_logging": ("decision_log", "policy_refs", "reviewer_role", "observed_at"),
        "customer_data_protection": (
            "tenant_id",
            "redaction_status",
            "contains_pii",
            "contains_secret",
        ),
        "dataset_lineage": ("dataset_hash", "source_refs", "policy_refs", "knowledge_class"),
        "document_grounding": ("requires_citation", "evidence_refs", "numeric_evidence_refs"),
        "human_escalation": ("expected_decision", "requires_escalation", "reviewer_role"),
        "model_risk": ("severity", "sector_class", "jurisdiction", "knowledge_class"),
    }
)
"""Control name -> evidence field names; descriptive labels only (reference section 3.1)."""

_SORTED_REQUIRED_METADATA = tuple(sorted(SECTOR_REQUIRED_METADATA))
_MAPPING_FIELDS = (
    "sector_id",
    "jurisdiction",
    "evidence_pack_uri",
    "frameworks",
    "control_evidence",
    "mapping_hash",
)


@frozen
class SectorEvidenceMapping(SelfHashedManifest):
    """Evidence mapping for customer-specific sector extension packages."""

    sector_id: str
    jurisdiction: str
    evidence_pack_uri: str
    frameworks: tuple[str, ...]
    control_evidence: dict[str, tuple[str, ...]]
    mapping_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise the mapping to a deterministic JSON-safe shape (controls sorted)."""
        return {
            "sector_id": self.sector_id,
            "jurisdiction": self.jurisdiction,
            "evidence_pack_uri": self.evidence_pack_uri,
            "frameworks": list(self.frameworks),
            "control_evidence": {
                control: list(fields) for control, fields in sorted(self.control_evidence.items())
            },
            "mapping_hash": self.mapping_hash,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a mapping strictly: missing, unknown or mistyped keys raise ValueError."""
        mapping = cls(
            sector_id=req_str(payload, "sector_id"),
            jurisdiction=req_str(payload, "jurisdiction"),
            evidence_pack_uri=req_str(payload, "evidence_pack_uri"),
            frameworks=req_str_tuple(payload, "frameworks"),
            control_evidence=req_str_tuple_dict(payload, "control_evidence"),
            mapping_hash=req_str(payload, "mapping_hash"),
        )
        reject_unknown(payload, _MAPPING_FIELDS)
        return mapping

    def recompute_hash(self) -> str:
        """Return the mapping hash recomputed from this object's own fields."""
        return stable_hash_strict(
            _hash_payload(
                sector_id=self.sector_id,
                jurisdiction=self.jurisdiction,
                evidence_pack_uri=self.evidence_pack_uri,
                frameworks=self.frameworks,
                control_evidence=self.control_evidence,
            )
        )

    def verify_hash(self) -> None:
        """Raise HashMismatchError unless the stored ``mapping_hash`` recomputes."""
        check_self_hash(
            "SectorEvidenceMapping", "mapping_hash", self.mapping_hash, self.recompute_hash()
        )


def _hash_payload(
    *,
    sector_id: str,
    jurisdiction: str,
    evidence_pack_uri: str,
    frameworks: tuple[str, ...],
    control_evidence: Mapping[str, tuple[str, ...]],
) -> dict[str, Any]:
    """Return the ``mapping_hash`` payload (reference section 3.3); the one copy of the recipe."""
    return {
        "sector_id": sector_id,
        "jurisdiction": jurisdiction,
        "evidence_pack_uri": evidence_pack_uri,
        "frameworks": list(frameworks),
        "control_evidence": {control: list(fields) for control, fields in control_evidence.items()},
    }


def _require_str(name: str, value: object) -> str:
    """Return ``value`` if it is a str, else raise TypeError naming the argument."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, got {type(value).__name__}")
    return value


def _str_tuple(name: str, values: Iterable[str]) -> tuple[str, ...]:
    """Return ``values`` as a tuple of str; a bare string or a non-str item raises TypeError."""
    # A bare string is iterable too, and would silently become a tuple of characters.
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"{name}: expected a sequence of strings, got {type(values).__name__}")
    items = tuple(values)
    for index, item in enumerate(items):
        _require_str(f"{name}[{index}]", item)
    return items


def build_sector_evidence_mapping(
    *,
    sector_id: str,
    jurisdiction: str,
    evidence_pack_uri: str,
    frameworks: tuple[str, ...] = DEFAULT_SECTOR_FRAMEWORKS,
    control_evidence: dict[str, tuple[str, ...]] | None = None,
) -> SectorEvidenceMapping:
    """Build a deterministic evidence mapping for a private sector extension (section 3.3).

    Frameworks are de-duplicated and sorted; controls are sorted by name with their field order
    kept. Like the reference it attaches no findings; unlike it, non-string inputs raise
    TypeError instead of producing a mapping that cannot be read back.
    """
    controls = DEFAULT_CONTROL_EVIDENCE if control_evidence is None else control_evidence
    if not isinstance(controls, Mapping):
        raise TypeError(f"control_evidence: expected a mapping, got {type(controls).__name__}")
    sorted_frameworks = tuple(sorted(set(_str_tuple("frameworks", frameworks))))
    for control in controls:
        _require_str("control_evidence key", control)
    sorted_controls = {
        control: _str_tuple(f"control_evidence.{control}", fields)
        for control, fields in sorted(controls.items())
    }
    mapping_hash = stable_hash_strict(
        _hash_payload(
            sector_id=_require_str("sector_id", sector_id),
            jurisdiction=_require_str("jurisdiction", jurisdiction),
            evidence_pack_uri=_require_str("evidence_pack_uri", evidence_pack_uri),
            frameworks=sorted_frameworks,
            control_evidence=sorted_controls,
        )
    )
    return SectorEvidenceMapping(
        sector_id=sector_id,
        jurisdiction=jurisdiction,
        evidence_pack_uri=evidence_pack_uri,
        frameworks=sorted_frameworks,
        control_evidence=sorted_controls,
        mapping_hash=mapping_hash,
    )


def validate_sector_trace_metadata(
    metadata: dict[str, Any], *, trace_id: str, expected_decision: str
) -> tuple[CustomerTraceFinding, ...]:
    """Validate generic sector-extension metadata and evidence controls (section 3.4, S1-S4).

    The controls are driven by the row's own flags, exactly as in the reference: a flag that is
    not literally ``True`` switches its control off.
    """
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata: expected an object, got {type(metadata).__name__}")
    problems = [  # (code, message, field), in the reference's order
        ("sector_metadata_missing", f"sector extension requires metadata.{key}", f"metadata.{key}")
        for key in _SORTED_REQUIRED_METADATA
        if not _metadata_present(metadata.get(key))
    ]
    if metadata.get("requires_citation") is True and not _non_empty_string_list(
        metadata.get("evidence_refs")
    ):
        problems.append(
            (
                "sector_citation_required",
                "sector extension requires citation evidence",
                "metadata.evidence_refs",
            )
        )
    if metadata.get("requires_numeric_evidence") is True and not _non_empty_string_list(
        metadata.get("numeric_evidence_refs")
    ):
        problems.append(
            (
                "sector_numeric_evidence_missing",
                "sector extension requires numeric evidence references",
                "metadata.numeric_evidence_refs",
            )
        )
    if metadata.get("requires_escalation") is True and expected_decision != "escalate":
        problems.append(
            (
                "sector_escalation_required",
                "sector extension requires human escalation",
                "expected_decision",
            )
        )
    if not problems:
        return ()
    # dataset_contract imports this module while it loads (for SECTOR_REQUIRED_METADATA), so
    # the finding type is resolved here, at call time, to keep the import graph acyclic.
    from .dataset_contract import CustomerTraceFinding

    return tuple(
        CustomerTraceFinding(
            code=code, severity="error", message=message, trace_id=trace_id, field=field
        )
        for code, message, field in problems
    )


def _metadata_present(value: Any) -> bool:
    """True for a str with non-whitespace content or any non-None non-str value (S1)."""
    if isinstance(value, str):
        return bool(value.strip())
    return value is not None


def _all_nonblank_strings(values: Iterable[Any]) -> bool:
    """True iff every item is a str with non-whitespace content (True when there are none).

    ``str.strip`` as an unbound method raises TypeError on a non-str item, which keeps the whole
    check in C: this runs for every reference list of every row.
    """
    try:
        return all(map(str.strip, values))
    except TypeError:
        return False


def _non_empty_string_list(value: Any) -> bool:
    """True iff ``value`` is a non-empty list whose items are all non-blank strings."""
    return isinstance(value, list) and bool(value) and _all_nonblank_strings(value)
