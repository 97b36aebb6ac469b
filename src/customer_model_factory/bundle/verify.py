"""Offline verification of a release bundle: a pure function of (bundle, pinned root, clock).

``verify_bundle`` runs the chain verifier (``chain.verify``) over a ``BundleSource``: the trust
policy chain walked from the pinned root, the checkpoint signed by the policy's log key, every
record's blob, envelope, statement, role signatures and inclusion proof, every binding, the
gate's verdict. It then decides promotion exactly like ``chain.release_status`` (a promotion
record counts only when it verifies like any record and binds to this gate), and adds the
bundle's own checks: nothing in the bundle that the verification did not use, witness
cosignatures, the expected customer / release, and consistency with a checkpoint the verifier
already holds. A bundle exported ``--without-data`` verifies with a ``data_omitted`` warning: the
trace dataset's id is signed and logged, but its rows cannot be re-hashed.

No ledger, no network, no clock but ``as_of``. docs/bundle-format.md section 4 lists the codes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._frozen import frozen
from ..chain.findings import WARNING, ChainFinding, error
from ..chain.kinds import PROMOTION, RELEASE_GATE, TRACE_DATASET
from ..chain.promote import find_promotion
from ..chain.source import ChainSource, SourceEntry
from ..chain.verify import (
    ChainContext,
    ChainNode,
    ChainReport,
    RecordCheck,
    open_context,
    verify_in_context,
)
from ..ledger.checkpoint import Checkpoint, open_checkpoint
from ..ledger.errors import FormatError, ProofError, SignatureError
from ..ledger.keys import SIG_TYPE_COSIGNATURE_V1, PublicKey, note_key_hash
from ..ledger.merkle import verify_consistency
from ..ledger.note import parse_note, verify_cosignature
from ..ledger.policy import POLICY_KIND, PolicyChain, PolicyError, TrustPolicy
from ..release_gate import CustomerReleaseGateManifest
from .format import Bundle
from .source import BundleSource

# ``chain.promote``'s status vocabulary and "not promotable yet" codes, restated so that
# offline verification does not import promotion (and, through it, the ledger writer);
# tests/bundle/test_bundle_verify.py checks they stay equal.
NOT_FOUND = "not_found"
RECORDED = "recorded"
VERIFIED_NOT_PROMOTED = "verified_not_promoted"
PROMOTED = "promoted"
BROKEN = "broken"
PENDING_CODES = frozenset(
    {"release_not_promotable", "monitoring_not_within_control", "entry_not_checkpointed"}
)

LOG_ROLE = "log"
WITNESS_ROLE = "witness"
IDENTITY_FIELDS = ("release_id", "customer_id", "workspace_id", "tenant_id")

# Codes this module adds to the chain's (docs/bundle-format.md section 4).
BUNDLE_CODES = (
    "data_omitted",
    "bundle_entry_unexpected",
    "release_not_promoted",
    "release_identity_mismatch",
    "cosignature_invalid",
    "witness_threshold_not_met",
    "consistency_proof_invalid",
    "known_checkpoint_invalid",
    "checkpoint_rollback",
    "checkpoint_fork",
    "consistency_proof_missing",
)


@frozen
class Expectation:
    """What the verifier expects the release to be; None means "any"."""

    release_id: str | None = None
    customer_id: str | None = None
    workspace_id: str | None = None
    tenant_id: str | None = None


@frozen
class Witness:
    """A verified witness cosignature of the bundle's checkpoint."""

    name: str
    key_id: str
    timestamp: int


@frozen
class Evaluation:
    """One verification of a release over a source: the chain report, status and promotion.

    ``report.findings`` already has omitted trace data downgraded to a ``data_omitted``
    warning; ``promotion`` is the entry of the promotion record that counts, if any;
    ``ignored`` are warnings about promotion records that name this release but do not count;
    ``examined`` are the log indices of every promotion record judged for this release.
    """

    context: ChainContext
    report: ChainReport
    checks: Mapping[tuple[str, str], RecordCheck]
    status: str
    promotion: SourceEntry | None
    ignored: tuple[ChainFinding, ...]
    examined: tuple[int, ...] = ()

    @property
    def gate(self) -> CustomerReleaseGateManifest | None:
        """The parsed, self-hash-verified release gate manifest, if it parsed."""
        check = self.checks.get((self.report.release_blob_id, RELEASE_GATE))
        manifest = check.manifest if check is not None else None
        return manifest if isinstance(manifest, CustomerReleaseGateManifest) else None


def evaluate_release(
    source: ChainSource,
    release_blob_id: str,
    *,
    trust: TrustPolicy | PublicKey,
    as_of: datetime,
    omitted: frozenset[str] = frozenset(),
) -> Evaluation:
    """Verify a release chain over ``source`` and find its valid promotion (one pass).

    ``omitted`` are trace-dataset blob ids deliberately absent: their ``blob_missing``
    becomes a ``data_omitted`` warning. Status values and rules are ``chain.release_status``'s.
    Source read errors (LedgerError, OSError) propagate.
    """
    context, opened = open_context(source, trust=trust, as_of=as_of)
    report, checks = verify_in_context(context, release_blob_id, opened)
    findings = tuple(_omission(finding, omitted) for finding in report.findings)
    report = dataclasses.replace(report, findings=findings)
    logged = any(e.kind == RELEASE_GATE for e in source.entries_for_blob(release_blob_id))
    promotion: SourceEntry | None = None
    ignored: tuple[ChainFinding, ...] = ()
    examined: tuple[int, ...] = ()
    if not logged:
        status = NOT_FOUND
    elif not report.ok:
        blocking = {f.code for f in report.findings if f.blocking}
        status = RECORDED if blocking <= PENDING_CODES else BROKEN
    else:
        gate = checks[(release_blob_id, RELEASE_GATE)].manifest
        if not isinstance(gate, CustomerReleaseGateManifest):
            raise RuntimeError("an ok chain report must have parsed its release gate")
        promotion, ignored, examined = find_promotion(context, gate, release_blob_id)
        status = PROMOTED if promotion is not None else VERIFIED_NOT_PROMOTED
    return Evaluation(context, report, checks, status, promotion, ignored, examined)


def _omission(finding: ChainFinding, omitted: frozenset[str]) -> ChainFinding:
    """Downgrade the missing bytes of a deliberately omitted trace dataset to a warning."""
    if (
        finding.code == "blob_missing"
        and finding.kind == TRACE_DATASET
        and (finding.blob_id in omitted)
    ):
        return ChainFinding(
            "data_omitted",
            WARNING,
            "the trace dataset was exported without its rows (--without-data): its id is "
            "signed and logged, but the dataset report's row hash cannot be recomputed",
            blob_id=finding.blob_id,
            kind=finding.kind,
            index=finding.index,
        )
    return finding


# --- the bundle report ------------------------------------------------------------------------


@frozen
class BundleReport:
    """The outcome of verifying a bundle. ``ok``: the release verifies AND is promoted."""

    bundle_id: str
    release_blob_id: str
    status: str
    findings: tuple[ChainFinding, ...]
    nodes: tuple[ChainNode, ...]
    origin: str
    policy_version: int | None
    checkpoint_size: int | None
    checkpoint_root: str | None
    promotion_blob_id: str | None
    promotion_index: int | None
    identity: Mapping[str, str]
    witnesses: tuple[Witness, ...]
    omitted: tuple[str, ...]
    consistency_from: int | None
    as_of: str
    log_key: str | None = None
    key_names: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the release is promoted and no finding blocks."""
        return self.status == PROMOTED and not any(f.blocking for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict of the whole report."""
        return {
            "ok": self.ok,
            "status": self.status,
            "bundle_id": self.bundle_id,
            "release_blob_id": self.release_blob_id,
            "origin": self.origin,
            "as_of": self.as_of,
            "policy_version": self.policy_version,
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_root": self.checkpoint_root,
            "promotion_blob_id": self.promotion_blob_id,
            "promotion_index": self.promotion_index,
            "identity": dict(self.identity),
            "witnesses": [dataclasses.asdict(w) for w in self.witnesses],
            "omitted": list(self.omitted),
            "consistency_from": self.consistency_from,
            "log_key": self.log_key,
            "findings": [f.to_dict() for f in self.findings],
            "nodes": [n.to_dict() for n in self.nodes],
        }


def verify_bundle(
    bundle: Bundle,
    *,
    trust: TrustPolicy | PublicKey,
    as_of: datetime,
    expect: Expectation | None = None,
    known_checkpoint: bytes | None = None,
    min_witnesses: int = 0,
    bundle_id: str = "",
    blob_files: Mapping[str, Path] | None = None,
) -> BundleReport:
    """Verify ``bundle`` against the pinned ``trust`` root as of ``as_of`` (timezone-aware).

    ``expect`` names the release the verifier wants (another customer's release fails);
    ``known_checkpoint`` is a signed checkpoint of this log the verifier already accepted: the
    bundle must be consistent with it (rollback, fork or a missing proof fail);
    at least ``min_witnesses`` distinct witness-role keys, and at least the policy's
    ``witness`` threshold, must have cosigned the checkpoint.
    ``blob_files`` may name complete files already holding some of the bundle's blobs (the
    import quarantine), so that the trace data verified is the very file that is migrated
    (other blobs are read from the bundle in memory).
    """
    with BundleSource(bundle, files=blob_files) as source:
        evaluation = evaluate_release(
            source, bundle.release, trust=trust, as_of=as_of, omitted=frozenset(bundle.omitted)
        )
    context, report = evaluation.context, evaluation.report
    checkpoint = context.checkpoint
    findings = [*report.findings, *evaluation.ignored]
    findings.extend(_unexpected_entries(bundle, evaluation))
    if evaluation.status == VERIFIED_NOT_PROMOTED:
        findings.append(
            error(
                "release_not_promoted",
                "the chain verifies but the bundle holds no valid promotion record for it",
                blob_id=bundle.release,
                kind=RELEASE_GATE,
            )
        )
    gate = evaluation.gate
    if gate is not None and expect is not None:
        findings.extend(_identity_findings(gate, expect, bundle.release))
    witnesses: tuple[Witness, ...] = ()
    log_key: str | None = None
    if checkpoint is not None and context.policies is not None and context.policies.policies:
        signer = signing_log_key(bundle.checkpoint, checkpoint.origin, log_keys(context.policies))
        log_key = signer.verifier_key(checkpoint.origin) if signer is not None else None
        witnesses, witness_findings = check_witnesses(
            bundle.checkpoint, checkpoint, context.policies, min_witnesses
        )
        findings.extend(witness_findings)
        findings.extend(_consistency_findings(bundle, checkpoint))
        if known_checkpoint is not None:
            findings.extend(_known_findings(known_checkpoint, bundle, checkpoint, context.policies))
    return BundleReport(
        bundle_id=bundle_id,
        release_blob_id=bundle.release,
        status=evaluation.status,
        findings=tuple(findings),
        nodes=report.nodes,
        origin=bundle.claimed_checkpoint.origin,
        policy_version=report.policy_version,
        checkpoint_size=checkpoint.size if checkpoint is not None else None,
        checkpoint_root=checkpoint.root_hash.hex() if checkpoint is not None else None,
        promotion_blob_id=evaluation.promotion.blob_id if evaluation.promotion else None,
        promotion_index=evaluation.promotion.index if evaluation.promotion else None,
        identity=_identity(gate),
        witnesses=witnesses,
        omitted=bundle.omitted,
        consistency_from=bundle.consistency.old_size if bundle.consistency else None,
        as_of=as_of.isoformat(),
        log_key=log_key,
        key_names=_key_names(context.policies),
    )


def _key_names(chain: PolicyChain | None) -> dict[str, str]:
    """Return key id -> name for every key of every verified policy version."""
    if chain is None:
        return {}
    return {entry.key_id: entry.name for record in chain.policies for entry in record.policy.keys}


def _identity(gate: CustomerReleaseGateManifest | None) -> dict[str, str]:
    """Return the release's identity fields (empty when the gate did not parse)."""
    if gate is None:
        return {}
    return {name: str(getattr(gate, name)) for name in (*IDENTITY_FIELDS, "deployment_id")}


def _identity_findings(
    gate: CustomerReleaseGateManifest, expect: Expectation, release: str
) -> list[ChainFinding]:
    """Report every identity field that differs from what the verifier expects."""
    findings: list[ChainFinding] = []
    for name in IDENTITY_FIELDS:
        wanted = getattr(expect, name)
        actual = getattr(gate, name)
        if wanted is not None and wanted != actual:
            findings.append(
                error(
                    "release_identity_mismatch",
                    f"{name} is {actual!r}, expected {wanted!r}",
                    blob_id=release,
                    kind=RELEASE_GATE,
                )
            )
    return findings


def _unexpected_entries(bundle: Bundle, evaluation: Evaluation) -> list[ChainFinding]:
    """Report entries the verification did not use: a bundle holds only what proves the
    release (the chain's records, the policy versions, the promotion records judged).

    Only judged when the chain verifies: otherwise promotions were never examined, and the
    chain's own findings already say why the bundle fails.
    """
    if evaluation.status not in (PROMOTED, VERIFIED_NOT_PROMOTED):
        return []
    used = {node.log_index for node in evaluation.report.nodes if node.log_index is not None}
    used.update(e.index for e in evaluation.context.source.entries_of_kind(POLICY_KIND))
    used.update(evaluation.examined)
    return [
        error(
            "bundle_entry_unexpected",
            "the bundle carries a log entry that no verification step uses",
            blob_id=entry.record.blob_id,
            kind=entry.record.kind,
            index=entry.index,
        )
        for entry in bundle.entries
        if entry.index not in used
    ]


def check_witnesses(
    note_bytes: bytes, checkpoint: Checkpoint, chain: PolicyChain, minimum: int = 0
) -> tuple[tuple[Witness, ...], list[ChainFinding]]:
    """Verify the checkpoint's cosignatures by keys of the policy's ``witness`` role.

    Cosignatures by other keys (a receiving site's receipt, say) are ignored, as signed-note
    requires; a witness-role key's bad cosignature blocks. At least the ``witness`` role's
    threshold of distinct keys (if the policy in effect at the checkpoint has that role), and
    at least ``minimum``, must have cosigned.
    """
    keys, threshold = _witness_role(chain, checkpoint.size)
    text = checkpoint.to_text()
    found: dict[str, Witness] = {}
    findings: list[ChainFinding] = []
    for sig in parse_note(note_bytes).signatures:
        for key in keys:
            if note_key_hash(sig.name, SIG_TYPE_COSIGNATURE_V1, key.raw) != sig.key_hash:
                continue
            try:
                timestamp = verify_cosignature(text, sig, key)
            except (FormatError, SignatureError) as exc:
                findings.append(error("cosignature_invalid", f"witness {sig.name}: {exc}"))
                continue
            found.setdefault(key.key_id, Witness(sig.name, key.key_id, timestamp))
    required = max(minimum, threshold)
    if len(found) < required:
        findings.append(
            error(
                "witness_threshold_not_met",
                f"{len(found)} witness cosignature(s) verify, {required} required "
                f"(the policy's witness threshold is {threshold})",
            )
        )
    return tuple(found.values()), findings


def _witness_role(chain: PolicyChain, size: int) -> tuple[list[PublicKey], int]:
    """Return the unrevoked witness-role keys and the role's threshold for a checkpoint of
    ``size`` (no keys and 0 when the policy in effect has no witness role)."""
    try:
        threshold = chain.policy_at(size).role(WITNESS_ROLE).threshold
        return list(chain.role_keys_at(WITNESS_ROLE, size).values()), threshold
    except (PolicyError, ValueError):
        return [], 0


def _consistency_findings(bundle: Bundle, checkpoint: Checkpoint) -> list[ChainFinding]:
    """Check the bundle's own consistency proof leads to its verified checkpoint."""
    consistency = bundle.consistency
    if consistency is None:
        return []
    try:
        verify_consistency(
            consistency.old_size,
            checkpoint.size,
            consistency.proof,
            consistency.old_root,
            checkpoint.root_hash,
        )
    except ProofError as exc:
        return [
            error(
                "consistency_proof_invalid",
                f"the consistency proof from size {consistency.old_size} to "
                f"{checkpoint.size} does not verify: {exc}",
            )
        ]
    return []


def log_keys(chain: PolicyChain) -> list[PublicKey]:
    """Return every key that held the log role in a verified policy version (unrevoked)."""
    keys: dict[str, PublicKey] = {}
    for record in chain.policies:
        for key_id, key in record.policy.role_keys(LOG_ROLE).items():
            keys.setdefault(key_id, key)
    return list(keys.values())


def signing_log_key(data: bytes, origin: str, keys: Iterable[PublicKey]) -> PublicKey | None:
    """Return the first of the log ``keys`` that signed checkpoint note ``data`` for ``origin``."""
    for key in keys:
        try:
            open_checkpoint(data, origin=origin, key=key)
        except (FormatError, SignatureError):
            continue
        return key
    return None


def open_known(data: bytes, origin: str, keys: Iterable[PublicKey]) -> Checkpoint | None:
    """Return the checkpoint in ``data`` if one of the log ``keys`` signed it for ``origin``."""
    key = signing_log_key(data, origin, keys)
    if key is None:
        return None
    checkpoint, _ = open_checkpoint(data, origin=origin, key=key)
    return checkpoint


def _known_findings(
    known: bytes, bundle: Bundle, checkpoint: Checkpoint, chain: PolicyChain
) -> list[ChainFinding]:
    """Compare the bundle's verified checkpoint with one the verifier already accepted."""
    accepted = open_known(known, checkpoint.origin, log_keys(chain))
    if accepted is None:
        return [
            error(
                "known_checkpoint_invalid",
                f"the known checkpoint is not signed by a log key of {checkpoint.origin}",
            )
        ]
    from .equivocation import EXTENDS, FORK, ROLLBACK, SAME, relate  # only needed here

    relation = relate(accepted, checkpoint, bundle.consistency)
    if relation.kind in (SAME, EXTENDS):
        return []
    code = {
        FORK: "checkpoint_fork",
        ROLLBACK: "checkpoint_rollback",
    }.get(relation.kind, "consistency_proof_missing")
    return [error(code, relation.message)]


def summary_lines(report: BundleReport) -> list[str]:
    """Return the human-readable report, one line each (what ``cmf bundle verify`` prints);
    signers are named as the verified trust policy names them."""
    names = report.key_names
    lines = [
        f"bundle {report.bundle_id or '(unsaved)'}",
        f"release gate {report.release_blob_id}"
        + (
            f": {report.identity.get('release_id')} for customer "
            f"{report.identity.get('customer_id')} (workspace "
            f"{report.identity.get('workspace_id')}, tenant {report.identity.get('tenant_id')})"
            if report.identity
            else ""
        ),
        f"log {report.origin}: checkpoint size {report.checkpoint_size}, trust policy version "
        f"{report.policy_version}, verified as of {report.as_of}",
    ]
    for witness in report.witnesses:
        lines.append(f"  cosigned by witness {witness.name} at {_utc(witness.timestamp)}")
    if report.consistency_from is not None:
        lines.append(f"  consistency proof from tree size {report.consistency_from}")
    for node in report.nodes:
        where = f"#{node.log_index}" if node.log_index is not None else "not logged"
        signers = ", ".join(names.get(k, k[:12]) for k in node.signer_key_ids) or "nobody trusted"
        lines.append(f"  {node.kind:<20} {node.blob_id[:12]}  {where:<6} signed by {signers}")
    if report.promotion_index is not None:
        lines.append(
            f"  {PROMOTION:<20} {(report.promotion_blob_id or '')[:12]}  #{report.promotion_index}"
        )
    return lines


def _utc(timestamp: int) -> str:
    """Return a POSIX timestamp as an RFC 3339 UTC instant (the number itself if out of range)."""
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return f"{timestamp} (POSIX seconds)"
