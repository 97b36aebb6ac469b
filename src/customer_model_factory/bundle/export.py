"""Exporting a release bundle from a ledger, and unpacking one into plain files.

``export_bundle`` verifies the release in the ledger (the same ``evaluate_release`` the
offline verifier runs), then collects exactly what that verification used: the chain's
records, every trust-policy version from ``policy_from`` on, and the promotion that counts;
each with its leaf and inclusion proof under the ledger's latest signed checkpoint (carried
with its cosignatures), plus the blobs and envelopes they name. ``since`` / ``since_checkpoint``
add a consistency proof from the receiver's last known tree.

``unpack_bundle`` writes a bundle's parts as plain files, so that stock tools (``sha256sum``,
``openssl``, a Go program using ``golang.org/x/mod/sumdb``) can verify it:
docs/verify-without-cmf.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

from .._frozen import frozen
from ..chain.findings import ChainError, error
from ..chain.kinds import PROMOTION, RELEASE_GATE, TRACE_DATASET
from ..chain.ledger_source import LedgerSource
from ..chain.source import SourceEntry
from ..chain.verify import load_policy_records
from ..ledger.checkpoint import open_checkpoint
from ..ledger.errors import IntegrityError, LedgerError
from ..ledger.keys import PublicKey
from ..ledger.policy import POLICY_KIND, TrustPolicy
from ..ledger.records import LeafRecord
from ..ledger.store import Ledger
from .format import Bundle, BundleEntry, Consistency, read_bundle, write_bundle
from .tlogproof import TlogProof, format_tlog_proof
from .verify import (
    PROMOTED,
    BundleReport,
    Evaluation,
    check_witnesses,
    evaluate_release,
    verify_bundle,
)

# Files ``unpack_bundle`` writes (docs/verify-without-cmf.md section 1).
UNPACKED_INDEX = "bundle.json"
UNPACKED_CHECKPOINT = "checkpoint"
UNPACKED_BLOBS = "blobs"
UNPACKED_ENTRIES = "entries"
UNPACKED_CONSISTENCY = "consistency"


def export_bundle(
    ledger: Ledger,
    release_blob_id: str,
    *,
    trust: TrustPolicy | PublicKey,
    as_of: datetime,
    include_data: bool = True,
    since: int | None = None,
    since_checkpoint: bytes | None = None,
    policy_from: int = 1,
    require_promoted: bool = True,
) -> Bundle:
    """Return the bundle of release gate ``release_blob_id`` from ``ledger``.

    Raises ChainError (with the findings) when ``require_promoted`` and the release is not
    verified and promoted as of ``as_of`` under ``trust``, or the checkpoint lacks the
    policy's witness quorum (a bundle that would not verify is never written). Raises
    LedgerError when the ledger has no checkpoint, ``since`` is beyond it, or
    ``since_checkpoint`` is not a checkpoint of this log consistent with it (that would be the
    log's own equivocation).
    """
    source = RecordingSource(ledger)
    evaluation = evaluate_release(source, release_blob_id, trust=trust, as_of=as_of)
    if require_promoted and evaluation.status != PROMOTED:
        findings = [f for f in evaluation.report.findings if f.blocking] or [
            error(
                "release_not_promoted",
                f"release status is {evaluation.status}: only a promoted release is exported",
                blob_id=release_blob_id,
                kind=RELEASE_GATE,
            )
        ]
        raise ChainError(findings)
    size = ledger.latest_checkpoint_size()
    if size is None:
        raise LedgerError(f"{ledger.path}: the ledger has no signed checkpoint to export")
    note = ledger.checkpoint(size)
    context = evaluation.context
    if require_promoted and context.checkpoint is not None and context.policies is not None:
        _, problems = check_witnesses(note, context.checkpoint, context.policies)
        if problems:
            raise ChainError(problems)  # e.g. the latest checkpoint awaits its witnesses
    indices = entry_indices(source, evaluation, policy_from=policy_from, size=size)
    entries = tuple(source.bundle_entry(index, size) for index in indices)
    blobs: dict[str, bytes] = {}
    omitted: set[str] = set()
    for entry in entries:
        record = entry.record
        blobs[record.envelope_id] = source.verified_blob(record.envelope_id)
        if record.kind == TRACE_DATASET and not include_data:
            omitted.add(record.blob_id)
        else:
            blobs[record.blob_id] = source.verified_blob(record.blob_id)
    old_size = _since_size(ledger, since, since_checkpoint)
    consistency = None
    if old_size is not None:
        if old_size > size:
            raise LedgerError(f"--since {old_size} is beyond the latest checkpoint size {size}")
        consistency = Consistency(
            old_size, ledger.root(old_size), tuple(ledger.consistency_proof(old_size, size))
        )
    return Bundle(
        release=release_blob_id,
        checkpoint=note,
        entries=entries,
        blobs=tuple(blobs[blob_id] for blob_id in sorted(blobs)),
        omitted=tuple(sorted(omitted - set(blobs))),
        consistency=consistency,
    )


@frozen
class ExportedBundle:
    """A bundle written to ``path`` and verified offline from that file."""

    path: Path
    bundle_id: str
    entries: int
    blobs: int
    report: BundleReport


def export_and_verify(
    ledger_path: Path,
    release_blob_id: str,
    *,
    trust: TrustPolicy | PublicKey,
    as_of: datetime,
    output: Path,
    include_data: bool = True,
) -> ExportedBundle:
    """Export the release to ``output`` (atomically), then verify the written file offline:
    read back and decoded, with nothing but the pinned ``trust`` root and the clock ``as_of``
    (what ``cmf bundle verify`` does). The demo's last step.

    Raises what ``export_bundle`` raises; the verification's verdict is in ``report``.
    """
    with Ledger.open(Path(ledger_path)) as ledger:
        bundle = export_bundle(
            ledger, release_blob_id, trust=trust, as_of=as_of, include_data=include_data
        )
    write_bundle(output, bundle)
    loaded, identifier = read_bundle(output)
    report = verify_bundle(loaded, trust=trust, as_of=as_of, bundle_id=identifier)
    return ExportedBundle(Path(output), identifier, len(loaded.entries), len(loaded.blobs), report)


def entry_indices(
    source: LedgerSource, evaluation: Evaluation, *, policy_from: int, size: int
) -> list[int]:
    """Return the log indices a bundle carries: chain records, policies, the promotion.

    Policy versions from ``policy_from`` on are all carried (a verifier pins that version or
    a root key of it); entries beyond the checkpoint ``size`` cannot be proven and are left
    out (the verifier then reports them missing).
    """
    indices = {node.log_index for node in evaluation.report.nodes if node.log_index is not None}
    records, _ = load_policy_records(source, source.entries_of_kind(POLICY_KIND))
    if policy_from > 1 and not any(r.policy.version == policy_from for r in records):
        raise LedgerError(f"the ledger holds no trust policy version {policy_from}")
    indices.update(r.log_index for r in records if r.policy.version >= policy_from)
    if evaluation.promotion is not None:
        indices.add(evaluation.promotion.index)
    return sorted(index for index in indices if index < size)


class RecordingSource(LedgerSource):
    """A LedgerSource that keeps the entries, blob bytes and inclusion proofs verification
    read, so a bundle is built from what was verified without reading anything twice.

    Verification lists entries by kind (trust policies, promotions), which a ledger answers by
    scanning its log; this source scans it once, the first time, and then answers every
    by-kind and by-blob question from that one scan.
    """

    def __init__(self, ledger: Ledger) -> None:
        """Serve ``ledger``, remembering what is read."""
        super().__init__(ledger)
        self._store = ledger
        self._blobs: dict[str, bytes] = {}
        self._proofs: dict[tuple[int, int], tuple[bytes, ...]] = {}
        self._scanned: list[SourceEntry] | None = None
        self._by_blob: dict[str, list[SourceEntry]] = {}

    def _scan(self) -> list[SourceEntry]:
        """Read every log entry once (in log order) and index them by blob."""
        if self._scanned is None:
            self._scanned = [
                SourceEntry(e.index, e.kind, e.blob_id, e.envelope_id)
                for e in self._store.entries()
            ]
            for entry in self._scanned:
                self._by_blob.setdefault(entry.blob_id, []).append(entry)
        return self._scanned

    def blob(self, blob_id: str) -> bytes | None:
        """Return and remember the stored bytes of ``blob_id``."""
        data = super().blob(blob_id)
        if data is not None:
            self._blobs[blob_id] = data
        return data

    def entries_for_blob(self, blob_id: str) -> list[SourceEntry]:
        """Return the entries of ``blob_id`` from the one scan of the log."""
        self._scan()
        return list(self._by_blob.get(blob_id, ()))

    def entries_of_kind(self, kind: str) -> list[SourceEntry]:
        """Return the entries of ``kind`` from the one scan of the log."""
        return [entry for entry in self._scan() if entry.kind == kind]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return and remember an inclusion proof."""
        proof = super().inclusion_proof(index, size)
        self._proofs[(index, size)] = tuple(proof)
        return proof

    def verified_blob(self, blob_id: str) -> bytes:
        """Return the bytes of ``blob_id``, re-hashed (IntegrityError if they do not match)."""
        data = self._blobs.get(blob_id)
        if data is not None and hashlib.sha256(data).hexdigest() == blob_id:
            return data
        return self._store.objects.get(blob_id)

    def bundle_entry(self, index: int, size: int) -> BundleEntry:
        """Return entry ``index`` with its inclusion proof under the tree of ``size``."""
        known = self._scan()[index]
        proof = self._proofs.get((index, size))
        if proof is None:
            proof = tuple(self._store.inclusion_proof(index, size))
        record = LeafRecord(known.kind, known.blob_id, known.envelope_id)
        return BundleEntry(index, record, proof)


def _since_size(ledger: Ledger, since: int | None, since_checkpoint: bytes | None) -> int | None:
    """Return the old tree size of the consistency proof, checking a given checkpoint.

    A ``since_checkpoint`` must be signed by this ledger's log key and its root must be this
    log's root at its size: a different root would mean the log signed two histories.
    """
    if since_checkpoint is None:
        if since is not None and (isinstance(since, bool) or since < 0):
            raise LedgerError(f"--since must be a non-negative tree size, got {since!r}")
        return since
    if since is not None:
        raise LedgerError("give --since or --since-checkpoint, not both")
    checkpoint, _ = open_checkpoint(
        since_checkpoint, origin=ledger.origin, key=ledger.log_public_key
    )
    if checkpoint.size > ledger.size:
        raise LedgerError(
            f"the given checkpoint (size {checkpoint.size}) is beyond this log ({ledger.size})"
        )
    if ledger.root(checkpoint.size) != checkpoint.root_hash:
        raise IntegrityError(
            f"the given checkpoint of size {checkpoint.size} is signed by this log's key but "
            "its root differs from this log's: the log key has signed two histories"
        )
    return checkpoint.size


# --- unpacking --------------------------------------------------------------------------------


def unpack_bundle(bundle: Bundle, directory: Path) -> list[Path]:
    """Write the parts of ``bundle`` as plain files under ``directory`` (created; must be
    missing or empty); return the files written.

    Layout (docs/verify-without-cmf.md section 1): ``blobs/<id>`` (raw bytes),
    ``entries/<index>.leaf`` and ``entries/<index>.tlog-proof`` (C2SP tlog-proof@v1 whose
    ``extra`` line is the leaf), ``checkpoint`` (the signed note), ``consistency`` (when
    carried) and ``bundle.json`` (an index: release, entries, omitted ids). Every file name
    is derived from validated ids and integers, never taken from the bundle as text.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise LedgerError(f"{directory}: refusing to unpack into a non-empty location")
    for sub in (UNPACKED_BLOBS, UNPACKED_ENTRIES):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    written = [_write(directory / UNPACKED_CHECKPOINT, bundle.checkpoint)]
    for blob_id in bundle.blob_ids:
        data = bundle.blob(blob_id)
        if data is not None:
            written.append(_write(directory / UNPACKED_BLOBS / blob_id, data))
    for entry in bundle.entries:
        base = directory / UNPACKED_ENTRIES / str(entry.index)
        written.append(_write(base.with_suffix(".leaf"), entry.leaf))
        proof = TlogProof(entry.index, entry.proof, bundle.checkpoint, extra=entry.leaf)
        written.append(_write(base.with_suffix(".tlog-proof"), format_tlog_proof(proof)))
    if bundle.consistency is not None:
        written.append(
            _write(directory / UNPACKED_CONSISTENCY, consistency_text(bundle.consistency))
        )
    written.append(_write(directory / UNPACKED_INDEX, index_json(bundle)))
    return written


def consistency_text(consistency: Consistency) -> bytes:
    """Return the consistency proof as text: ``old <size>``, the old root, then the hashes
    (standard base64, one per line: the tlog-witness ``add-checkpoint`` body convention)."""
    lines = [
        f"old {consistency.old_size}",
        base64.b64encode(consistency.old_root).decode("ascii"),
        *(base64.b64encode(h).decode("ascii") for h in consistency.proof),
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def index_json(bundle: Bundle) -> bytes:
    """Return ``bundle.json``: what the bundle holds, for humans and shell scripts (jq)."""
    checkpoint = bundle.claimed_checkpoint
    document = {
        "format": "cmf-bundle-unpacked/v1",
        "release": bundle.release,
        "origin": checkpoint.origin,
        "checkpoint_size": checkpoint.size,
        "entries": [
            {
                "index": entry.index,
                "kind": entry.record.kind,
                "blob_id": entry.record.blob_id,
                "envelope_id": entry.record.envelope_id,
            }
            for entry in bundle.entries
        ],
        "omitted": list(bundle.omitted),
        "promotion_entries": [e.index for e in bundle.entries if e.record.kind == PROMOTION],
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("ascii")


def _write(path: Path, data: bytes) -> Path:
    """Create ``path`` with ``data``; FileExistsError rather than overwriting anything."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path
