"""Promotion: the only thing that marks a release promotable, and the status of a release.

``promote_release`` verifies the whole chain and appends a signed ``promotion`` record only
when the report is ok and the given keys meet the ``promotion`` role's threshold.
``release_status`` says where a release stands; a promotion record counts only when it verifies
like any other record (its own signatures meet the promotion threshold at its log index, it is
included under the signed checkpoint) and it binds to this release gate. Both take the ``name``
a release was asked for by (a ref is an unsigned name) and refuse a gate whose own
``release_id`` differs (``ref_release_mismatch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._frozen import frozen
from ..ledger.errors import LedgerError
from ..ledger.keys import PrivateKey, PublicKey
from ..ledger.policy import TrustPolicy
from ..ledger.statement import Parent
from ..release_gate import CustomerReleaseGateManifest
from .bindings import check_bindings
from .findings import WARNING, ChainError, ChainFinding, Where, error
from .kinds import PROMOTION, PROMOTION_SCHEMA, RELEASE_GATE, PromotionRecord
from .source import ChainSource, SourceEntry
from .verify import (
    ChainContext,
    ChainReport,
    RecordCheck,
    check_record,
    open_context,
    release_name_findings,
    require_blob_id,
    verify_in_context,
)

if TYPE_CHECKING:  # only for annotations: verifying never needs the ledger's writer
    from ..ledger.store import Ledger, LedgerWriter

PROMOTION_ROLE = PROMOTION
NOT_FOUND = "not_found"
RECORDED = "recorded"
VERIFIED_NOT_PROMOTED = "verified_not_promoted"
PROMOTED = "promoted"
BROKEN = "broken"
STATUSES = (NOT_FOUND, RECORDED, VERIFIED_NOT_PROMOTED, PROMOTED, BROKEN)

# Codes this module adds (docs/chain.md section 6).
PROMOTE_CODES = ("promotion_threshold_not_met", "role_missing", "promotion_subject_mismatch")

# Findings that say "not promotable (yet)" rather than "something is wrong": the gate's own
# verdict, an unexcused monitoring status, and records not yet covered by a checkpoint.
PENDING_CODES = frozenset(
    {"release_not_promotable", "monitoring_not_within_control", "entry_not_checkpointed"}
)


@frozen
class ReleaseStatus:
    """Where a release stands, with the findings that explain it.

    ``status``: ``not_found`` (no release_gate record of this blob), ``recorded`` (logged and
    intact, but the gate refuses, monitoring is unexcused or records await a checkpoint),
    ``verified_not_promoted`` (the chain verifies, no valid promotion), ``promoted`` (and a
    valid promotion record exists: ``promotion_blob_id`` / ``promotion_index``), ``broken``
    (any other finding: tampering, bad signatures, broken bindings, untrusted policy).
    Ignored promotion records appear among the findings with severity ``warning``.
    """

    status: str
    release_blob_id: str
    findings: tuple[ChainFinding, ...]
    promotion_blob_id: str | None = None
    promotion_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "status": self.status,
            "release_blob_id": self.release_blob_id,
            "promotion_blob_id": self.promotion_blob_id,
            "promotion_index": self.promotion_index,
            "findings": [finding.to_dict() for finding in self.findings],
        }


def release_status(
    source: ChainSource,
    release_blob_id: str,
    *,
    trust: TrustPolicy | PublicKey,
    as_of: datetime,
    deep: bool = False,
    name: str | None = None,
) -> ReleaseStatus:
    """Return the status of release gate ``release_blob_id`` as of ``as_of`` (pure, like verify).

    ``deep`` as in ``verify_release_chain``. ``name``: the release name the gate was found by
    (a ref), if any; a gate whose ``release_id`` is not ``name`` is ``broken`` with
    ``ref_release_mismatch`` first. A source read error gives ``broken`` with
    ``source_unreadable``; a malformed id ValueError.
    """
    require_blob_id(release_blob_id)
    try:
        return _release_status(
            source, release_blob_id, trust=trust, as_of=as_of, deep=deep, name=name
        )
    except (LedgerError, OSError) as exc:
        finding = error("source_unreadable", f"the source cannot be read: {exc}")
        return ReleaseStatus(BROKEN, release_blob_id, (finding,))


def _release_status(
    source: ChainSource,
    release_blob_id: str,
    *,
    trust: TrustPolicy | PublicKey,
    as_of: datetime,
    deep: bool,
    name: str | None,
) -> ReleaseStatus:
    """``release_status`` without the guard against source read errors."""
    named = _name_findings(source, release_blob_id, name)
    if not any(e.kind == RELEASE_GATE for e in source.entries_for_blob(release_blob_id)):
        return ReleaseStatus(BROKEN if named else NOT_FOUND, release_blob_id, tuple(named))
    context, opened = open_context(source, trust=trust, as_of=as_of)
    report, checks = verify_in_context(context, release_blob_id, [*named, *opened], deep=deep)
    if not report.ok:
        blocking = {finding.code for finding in report.findings if finding.blocking}
        status = RECORDED if blocking <= PENDING_CODES else BROKEN
        return ReleaseStatus(status, release_blob_id, report.findings)
    gate = _verified_gate(checks, release_blob_id)
    promotion, ignored, _ = find_promotion(context, gate, release_blob_id)
    if promotion is None:
        return ReleaseStatus(VERIFIED_NOT_PROMOTED, release_blob_id, ignored)
    return ReleaseStatus(
        PROMOTED,
        release_blob_id,
        ignored,
        promotion_blob_id=promotion.blob_id,
        promotion_index=promotion.index,
    )


def _name_findings(
    source: ChainSource, release_blob_id: str, name: str | None
) -> list[ChainFinding]:
    """Return ``release_name_findings`` for a release asked for by ``name``; none without one."""
    return [] if name is None else release_name_findings(source, release_blob_id, name)


def find_promotion(
    context: ChainContext, gate: CustomerReleaseGateManifest, release_blob_id: str
) -> tuple[SourceEntry | None, tuple[ChainFinding, ...], tuple[int, ...]]:
    """Return the first promotion record that counts for this verified release gate, warnings
    about the ones naming it that do not, and the log indices of all those judged.

    A promotion counts when it verifies like any record (signed by the promotion role's
    threshold at its index, included), its only statement parent is this gate, and its blob
    names this gate and copies the gate's fields.
    """
    ignored: list[ChainFinding] = []
    examined: list[int] = []
    for entry in context.source.entries_of_kind(PROMOTION):
        check = check_record(context, entry.blob_id, PROMOTION)
        if not _names_release(check, release_blob_id):
            continue
        examined.append(entry.index)
        problems = _promotion_problems(check, gate, release_blob_id)
        if not problems:
            return entry, tuple(ignored), tuple(examined)
        ignored.extend(_ignored(problem) for problem in problems)
    return None, tuple(ignored), tuple(examined)


def _names_release(check: RecordCheck, release_blob_id: str) -> bool:
    """Return True if the promotion's statement or blob points at this release gate."""
    named_by_statement = any(p.sha256 == release_blob_id for p in check.parents)
    record = check.manifest
    named_by_blob = isinstance(record, PromotionRecord) and (
        record.release_gate_blob_id == release_blob_id
    )
    return named_by_statement or named_by_blob


def _promotion_problems(
    check: RecordCheck, gate: CustomerReleaseGateManifest, release_blob_id: str
) -> list[ChainFinding]:
    """Return why a promotion record does not count for this release (empty when it does)."""
    problems = list(check.findings)
    where = Where(check.node.blob_id, PROMOTION, check.node.log_index)
    if tuple(check.parents) != (Parent(RELEASE_GATE, release_blob_id),):
        problems.append(
            where.error("promotion_subject_mismatch", "statement parent is not this release")
        )
    record = check.manifest
    if isinstance(record, PromotionRecord):
        if record.release_gate_blob_id != release_blob_id:
            problems.append(
                where.error(
                    "promotion_subject_mismatch", "release_gate_blob_id is not this release"
                )
            )
        problems.extend(
            where.error(f.code, f.message)
            for f in check_bindings(PROMOTION, record, {RELEASE_GATE: [gate]})
        )
    return problems


def _ignored(finding: ChainFinding) -> ChainFinding:
    """Return a promotion problem as a non-blocking warning (the record is just not counted)."""
    return ChainFinding(
        finding.code,
        WARNING,
        f"promotion record ignored: {finding.message}",
        blob_id=finding.blob_id,
        kind=finding.kind,
        index=finding.index,
    )


def promote_release(
    ledger: Ledger,
    writer: LedgerWriter,
    release_blob_id: str,
    *,
    trust: TrustPolicy | PublicKey,
    as_of: datetime,
    signers: Sequence[PrivateKey],
    time: str,
    tool_version: str,
    deep: bool = True,
    name: str | None = None,
) -> ChainReport:
    """Verify the release chain; append a signed promotion record only if the report is ok.

    Promotion is the one irreversible act, so by default it verifies ``deep`` (every trace row
    re-validated against the dataset report). ``name``, the release name the gate was found by
    (a ref), must be the gate's own ``release_id`` (``ref_release_mismatch``, reported first).
    Returns the report either way (nothing is written when it is not ok). Raises ChainError,
    writing nothing, when ``signers`` do not meet the ``promotion`` role's threshold. The
    caller commits the writer; the promotion then counts once a checkpoint covers it.
    """
    from .ledger_source import LedgerSource  # lazy: verifying a bundle never loads the store

    source = LedgerSource(ledger)
    named = _name_findings(source, release_blob_id, name)
    context, opened = open_context(source, trust=trust, as_of=as_of)
    report, checks = verify_in_context(context, release_blob_id, [*named, *opened], deep=deep)
    if not report.ok:
        return report
    gate = _verified_gate(checks, release_blob_id)
    _require_promoters(context, signers, ledger.size + writer.pending)
    if report.policy_version is None or report.checkpoint_size is None:
        raise RuntimeError("an ok chain report must name its policy version and checkpoint")
    record = PromotionRecord(
        schema=PROMOTION_SCHEMA,
        release_gate_blob_id=release_blob_id,
        release_id=gate.release_id,
        release_hash=gate.release_hash,
        customer_id=gate.customer_id,
        workspace_id=gate.workspace_id,
        tenant_id=gate.tenant_id,
        deployment_id=gate.deployment_id,
        promoted_at=time,
        policy_version=report.policy_version,
        checkpoint_size=report.checkpoint_size,
    )
    blob_id = writer.put_blob(record.to_bytes())
    writer.record(
        kind=PROMOTION,
        blob_id=blob_id,
        parents=[Parent(RELEASE_GATE, release_blob_id)],
        signers=signers,
        time=time,
        tool_version=tool_version,
    )
    return report


def _verified_gate(
    checks: Mapping[tuple[str, str], RecordCheck], release_blob_id: str
) -> CustomerReleaseGateManifest:
    """Return the parsed gate of an ok report (RuntimeError if that invariant is broken)."""
    gate = checks[(release_blob_id, RELEASE_GATE)].manifest
    if not isinstance(gate, CustomerReleaseGateManifest):
        raise RuntimeError("an ok chain report must have parsed its release gate")
    return gate


def _require_promoters(context: ChainContext, signers: Sequence[PrivateKey], index: int) -> None:
    """Raise ChainError unless ``signers`` hold a threshold of unrevoked promotion keys."""
    chain = context.policies
    if chain is None or not chain.policies:
        raise RuntimeError("an ok chain report must rest on a verified trust policy")
    try:
        threshold = chain.policy_at(index).role(PROMOTION_ROLE).threshold
        keys = chain.role_keys_at(PROMOTION_ROLE, index)
    except ValueError as exc:
        raise ChainError([error("role_missing", str(exc), kind=PROMOTION)]) from None
    holders = {signer.public_key.key_id for signer in signers} & set(keys)
    if len(holders) < threshold:
        raise ChainError(
            [
                error(
                    "promotion_threshold_not_met",
                    f"{len(holders)} of the {threshold} required distinct, unrevoked "
                    f"{PROMOTION_ROLE} key(s) are among the signers",
                    kind=PROMOTION,
                )
            ]
        )
