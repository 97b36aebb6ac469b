"""The signed release chain: stage kinds, parent bindings, recording, verification, promotion.

Factory-specific: it knows the stages and their edges, and builds on the generic ledger
(``customer_model_factory.ledger``) and the stage modules. docs/chain.md describes it.

Names are re-exported lazily (PEP 562): ``from customer_model_factory.chain import
verify_release_chain`` imports the verifier and what it needs, not the recording and promotion
modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
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
    from .ledger_source import LedgerSource
    from .promote import ReleaseStatus, promote_release, release_status
    from .record import check_stage, record_policy, record_stage, record_trace_file
    from .source import ChainSource, SourceEntry
    from .verify import ChainNode, ChainReport, audit_bindings, verify_release_chain

# Public name -> the submodule that defines it (the TYPE_CHECKING imports above, for the checker).
_EXPORTS: dict[str, str] = {
    "BINDING_CODES": "bindings",
    "check_bindings": "bindings",
    "ChainError": "findings",
    "ChainFinding": "findings",
    "KIND_SPECS": "kinds",
    "PROMOTION_SCHEMA": "kinds",
    "STAGE_KINDS": "kinds",
    "KindSpec": "kinds",
    "ManifestError": "kinds",
    "ParentRule": "kinds",
    "PromotionRecord": "kinds",
    "TraceDataset": "kinds",
    "kind_spec": "kinds",
    "parent_kind_problems": "kinds",
    "parse_manifest": "kinds",
    "role_for": "kinds",
    "ReleaseStatus": "promote",
    "promote_release": "promote",
    "release_status": "promote",
    "check_stage": "record",
    "record_policy": "record",
    "record_stage": "record",
    "record_trace_file": "record",
    "ChainSource": "source",
    "LedgerSource": "ledger_source",
    "SourceEntry": "source",
    "ChainNode": "verify",
    "ChainReport": "verify",
    "audit_bindings": "verify",
    "verify_release_chain": "verify",
}

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
    "audit_bindings",
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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
