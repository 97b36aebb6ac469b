"""Offline release bundles: export, verify with no ledger or network, quarantined import,
equivocation proofs, receipts and C2SP tlog-proof files (docs/bundle-format.md).

Names are re-exported lazily (PEP 562), so importing one submodule, for example
``bundle.format`` for ``cmf bundle unpack``, does not load the chain verifier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .equivocation import EquivocationProof, Relation, Verdict, relate, verify_equivocation
    from .export import export_and_verify, export_bundle, unpack_bundle
    from .format import (
        Bundle,
        BundleEntry,
        BundleFormatError,
        Consistency,
        Limits,
        bundle_id,
        decode_bundle,
        encode_bundle,
        read_bundle,
        write_bundle,
    )
    from .importer import ImportRefusedError, ImportResult, import_bundle
    from .receipt import add_receipt, make_receipt
    from .source import BundleSource
    from .tlogproof import (
        TlogProof,
        format_tlog_proof,
        parse_tlog_proof,
        proof_for_blob,
        verify_tlog_proof,
    )
    from .verify import BundleReport, Expectation, verify_bundle

_EXPORTS = {
    "EquivocationProof": "equivocation",
    "Relation": "equivocation",
    "Verdict": "equivocation",
    "relate": "equivocation",
    "verify_equivocation": "equivocation",
    "export_and_verify": "export",
    "export_bundle": "export",
    "unpack_bundle": "export",
    "Bundle": "format",
    "BundleEntry": "format",
    "BundleFormatError": "format",
    "Consistency": "format",
    "Limits": "format",
    "bundle_id": "format",
    "decode_bundle": "format",
    "encode_bundle": "format",
    "read_bundle": "format",
    "write_bundle": "format",
    "ImportRefusedError": "importer",
    "ImportResult": "importer",
    "import_bundle": "importer",
    "add_receipt": "receipt",
    "make_receipt": "receipt",
    "BundleSource": "source",
    "TlogProof": "tlogproof",
    "format_tlog_proof": "tlogproof",
    "parse_tlog_proof": "tlogproof",
    "proof_for_blob": "tlogproof",
    "verify_tlog_proof": "tlogproof",
    "BundleReport": "verify",
    "Expectation": "verify",
    "verify_bundle": "verify",
}

__all__ = [
    "Bundle",
    "BundleEntry",
    "BundleFormatError",
    "BundleReport",
    "BundleSource",
    "Consistency",
    "EquivocationProof",
    "Expectation",
    "ImportRefusedError",
    "ImportResult",
    "Limits",
    "Relation",
    "TlogProof",
    "Verdict",
    "add_receipt",
    "bundle_id",
    "decode_bundle",
    "encode_bundle",
    "export_and_verify",
    "export_bundle",
    "format_tlog_proof",
    "import_bundle",
    "make_receipt",
    "parse_tlog_proof",
    "proof_for_blob",
    "read_bundle",
    "relate",
    "unpack_bundle",
    "verify_bundle",
    "verify_equivocation",
    "verify_tlog_proof",
    "write_bundle",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
