"""The signed release chain: stage kinds, parent bindings, recording, verification, promotion.

Factory-specific: it knows the stages and their edges, and builds on the generic ledger
(``customer_model_factory.ledger``) and the stage modules. docs/chain.md describes it.
"""

from .bindings import BINDING_CODES, check_bindings
from .findings import ChainError, ChainFinding
from .kinds import (
    KIND_SPECS,
    PROMOTION_SCHEMA,
    STAGE_KINDS,
    KindSpec,
    ManifestError,
    ParentRule,
    PromotionRecord,
    TraceDataset,
    kind_spec,
    parent_kind_problems,
    parse_manifest,
    role_for,
)
from .promote import ReleaseStatus, promote_release, release_status
from .record import check_stage, record_policy, record_stage, record_trace_file
from .source import ChainSource, LedgerSource, SourceEntry
from .verify import ChainNode, ChainReport, verify_release_chain

__all__ = [
    "BINDING_CODES",
    "KIND_SPECS",
    "PROMOTION_SCHEMA",
    "STAGE_KINDS",
    "ChainError",
    "ChainFinding",
    "ChainNode",
    "ChainReport",
    "ChainSource",
    "KindSpec",
    "LedgerSource",
    "ManifestError",
    "ParentRule",
    "PromotionRecord",
    "ReleaseStatus",
    "SourceEntry",
    "TraceDataset",
    "check_bindings",
    "check_stage",
    "kind_spec",
    "parent_kind_problems",
    "parse_manifest",
    "promote_release",
    "record_policy",
    "record_stage",
    "record_trace_file",
    "release_status",
    "role_for",
    "verify_release_chain",
]
