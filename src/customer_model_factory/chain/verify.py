"""Release-chain verification: from a release gate, walk every signed ancestor and check it all.

``verify_release_chain`` is a pure function of (source, pinned trust root, ``as_of``): it reads
only through the untrusted ``ChainSource`` and reports every problem as a ``ChainFinding``,
never as an exception. In order it checks:

1. the trust-policy chain, walked forward from the pinned root (``ledger.policy``);
2. the latest checkpoint: signed by a threshold of the ``log`` role's keys, origin = policy's;
3. for the release gate and every ancestor named by a *signed* statement: the blob is present
   and hash-true; it is logged under the expected kind; its envelope is present, hash-true and
   parses; the statement's subject is this blob and kind, its origin the policy's, its parents
   follow the kind's edges; a threshold of distinct, unrevoked keys holding the kind's role in
   the policy in effect at the entry's log index signed it; the leaf is included under the
   verified checkpoint; the manifest parses and its self-hash recomputes;
4. every child's bindings to its parents (``bindings.check_bindings``); the dataset report's
   trace rows are re-validated only when ``deep`` (by default its ``dataset_hash`` must equal
   the re-hashed canonical trace blob's id);
5. the gate's own verdict, and that a monitoring manifest not ``within_control`` is covered by
   an accepted risk linked to it, unexpired both at the gate's ``generated_at`` and at ``as_of``.

docs/chain.md lists every code.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import field
from datetime import datetime
from typing import Any, TypeVar

from .._frozen import frozen
from .._hashing import HashMismatchError
from .._manifest import memoized_hashes
from ..ledger.blobs import ObjectNotFoundError, hash_stream
from ..ledger.checkpoint import Checkpoint, open_checkpoint
from ..ledger.dsse import Envelope, verify_envelope
from ..ledger.errors import FormatError, LedgerError, ProofError, SignatureError
from ..ledger.keys import PublicKey
from ..ledger.merkle import leaf_hash, verify_inclusion
from ..ledger.note import parse_note
from ..ledger.policy import (
    POLICY_KIND,
    PolicyChain,
    PolicyError,
    PolicyRecord,
    TrustPolicy,
    verify_policy_chain,
)
from ..ledger.statement import PAYLOAD_TYPE, Parent, RecordStatement
from ..monitoring_manifest import CustomerMonitoringManifest
from ..release_gate import CustomerReleaseGateManifest
from ..risk_register import CustomerRiskRegister
from ..timestamps import parse_instant
from .bindings import check_bindings
from .findings import ChainFinding, Where, error
from .kinds import (
    KIND_SPECS,
    MONITORING_MANIFEST,
    RELEASE_GATE,
    RISK_REGISTER,
    TRACE_DATASET,
    TraceDataset,
    is_hex_id,
    kind_spec,
    parent_kind_problems,
    parse_manifest,
)
from .source import BlobStream, ChainSource, SourceEntry

_T = TypeVar("_T")

LOG_ROLE = "log"
WITHIN_CONTROL = "within_control"

# Every code this module reports, besides the bindings' ``bind_*`` codes and the policy walk's
# ``policy_*`` codes (docs/chain.md section 5 explains each).
VERIFY_CODES = (
    "source_unreadable",
    "policy_record_unreadable",
    "checkpoint_missing",
    "checkpoint_invalid",
    "checkpoint_origin_mismatch",
    "checkpoint_signature_invalid",
    "not_logged",
    "kind_mismatch",
    "blob_missing",
    "blob_hash_mismatch",
    "manifest_invalid",
    "manifest_hash_mismatch",
    "envelope_missing",
    "envelope_hash_mismatch",
    "envelope_invalid",
    "statement_invalid",
    "statement_subject_mismatch",
    "statement_origin_mismatch",
    "parent_edges_invalid",
    "no_policy_in_effect",
    "role_missing",
    "signature_threshold_not_met",
    "entry_not_checkpointed",
    "inclusion_proof_invalid",
    "release_not_promotable",
    "monitoring_not_within_control",
    "ref_release_mismatch",
)


@frozen
class ChainNode:
    """One verified-or-not record of the chain, as the walk found it."""

    kind: str
    blob_id: str
    log_index: int | None
    signer_key_ids: tuple[str, ...]
    parents: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (parents as ``{"kind", "blob_id"}`` objects)."""
        return {
            "kind": self.kind,
            "blob_id": self.blob_id,
            "log_index": self.log_index,
            "signer_key_ids": list(self.signer_key_ids),
            "parents": [{"kind": kind, "blob_id": blob} for kind, blob in self.parents],
        }


@frozen
class ChainReport:
    """The outcome of verifying one release chain: ok only when no finding is an error."""

    release_blob_id: str
    findings: tuple[ChainFinding, ...]
    nodes: tuple[ChainNode, ...]
    policy_version: int | None
    checkpoint_size: int | None
    deep: bool = False
    # The latest policy version the walk verified (names the signers' keys); not in to_dict.
    policy: TrustPolicy | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when no finding blocks."""
        return not any(finding.blocking for finding in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict of the whole report."""
        return {
            "release_blob_id": self.release_blob_id,
            "ok": self.ok,
            "policy_version": self.policy_version,
            "checkpoint_size": self.checkpoint_size,
            "deep": self.deep,
            "findings": [finding.to_dict() for finding in self.findings],
            "nodes": [node.to_dict() for node in self.nodes],
        }


@frozen
class ChainContext:
    """What every record check needs: the source, the verified policy chain and checkpoint.

    ``as_of`` is the clock reading they were verified at (``open_context``); judging a release
    gate's verdict needs it, so a context without one (a whole-ledger audit) cannot judge one.
    """

    source: ChainSource
    policies: PolicyChain | None
    checkpoint: Checkpoint | None
    as_of: datetime | None = None

    @property
    def origin(self) -> str | None:
        """The log origin named by the latest verified policy, if any."""
        if self.policies is None or not self.policies.policies:
            return None
        return self.policies.current.origin


@frozen
class RecordCheck:
    """The result of checking one record: its node, parsed manifest (or None) and findings."""

    node: ChainNode
    manifest: object | None
    parents: tuple[Parent, ...]
    findings: tuple[ChainFinding, ...] = ()


def verify_release_chain(
    source: ChainSource,
    release_blob_id: str,
    *,
    trust: TrustPolicy | PublicKey,
    as_of: datetime,
    deep: bool = False,
) -> ChainReport:
    """Verify the release gate ``release_blob_id`` and every ancestor; findings are data.

    ``trust`` is the pinned root (a policy version or a root key); ``as_of`` (timezone-aware)
    is the one clock reading used for every expiry check, so an old release can be verified as
    of its time. ``deep`` also re-validates every trace row against the dataset report
    (docs/chain.md section 5 says exactly what the default leaves out).
    A source that fails to read (a damaged ledger index, an I/O error) gives the single
    finding ``source_unreadable``. A ``release_blob_id`` that is not 64 lowercase hex
    characters is a caller error (ValueError).
    """
    require_blob_id(release_blob_id)
    try:
        context, findings = open_context(source, trust=trust, as_of=as_of)
        report, _ = verify_in_context(context, release_blob_id, findings, deep=deep)
    except (LedgerError, OSError) as exc:
        return ChainReport(
            release_blob_id=release_blob_id,
            findings=(error("source_unreadable", f"the source cannot be read: {exc}"),),
            nodes=(),
            policy_version=None,
            checkpoint_size=None,
            deep=deep,
        )
    return report


def verify_in_context(
    context: ChainContext,
    release_blob_id: str,
    findings: Sequence[ChainFinding] = (),
    *,
    deep: bool = False,
) -> tuple[ChainReport, dict[tuple[str, str], RecordCheck]]:
    """Walk and check the release chain under an opened context; return the report and checks.

    ``findings`` are the context's own (policy, checkpoint) findings, reported first; ``deep``
    is passed to the bindings (``bindings.check_bindings``). Every manifest is parsed here and
    never changed, so each one's self-hash is recomputed once (``memoized_hashes``), however
    many checks compare it.
    """
    collected = list(findings)
    with memoized_hashes():
        checks = walk(context, release_blob_id, RELEASE_GATE)
        for check in checks.values():
            collected.extend(check.findings)
        collected.extend(_all_bindings(checks, deep=deep))
        collected.extend(_gate_verdict(checks, release_blob_id, as_of=_verdict_clock(context)))
    chain = context.policies
    report = ChainReport(
        release_blob_id=release_blob_id,
        findings=tuple(collected),
        nodes=tuple(check.node for check in checks.values()),
        policy_version=chain.current.version if chain is not None and chain.policies else None,
        policy=chain.current if chain is not None and chain.policies else None,
        checkpoint_size=context.checkpoint.size if context.checkpoint is not None else None,
        deep=deep,
    )
    return report, checks


def require_blob_id(blob_id: str) -> str:
    """Return ``blob_id`` if it is 64 lowercase hex characters, else raise ValueError."""
    if not is_hex_id(blob_id):
        raise ValueError(f"not a blob id (64 lowercase hex characters): {blob_id!r}")
    return blob_id


def open_context(
    source: ChainSource, *, trust: TrustPolicy | PublicKey, as_of: datetime
) -> tuple[ChainContext, list[ChainFinding]]:
    """Verify the policy chain, the latest checkpoint and the policy records' inclusion.

    Source read errors (LedgerError, OSError) propagate; ``verify_release_chain`` reports them.
    """
    policy_entries = list(source.entries_of_kind(POLICY_KIND))
    records, findings = load_policy_records(source, policy_entries)
    chain = verify_policy_chain(trust, records, as_of=as_of)
    findings.extend(
        error(f.code, f.message, kind=POLICY_KIND, index=f.index) for f in chain.findings
    )
    checkpoint, checkpoint_findings = _verify_checkpoint(source, chain)
    findings.extend(checkpoint_findings)
    verified = {record.log_index for record in chain.policies}
    for entry in policy_entries:
        if entry.index in verified:
            findings.extend(_inclusion_findings(source, entry, checkpoint))
    return ChainContext(source, chain, checkpoint, as_of), findings


def load_policy_records(
    source: ChainSource, entries: Sequence[SourceEntry]
) -> tuple[list[PolicyRecord], list[ChainFinding]]:
    """Load the trust-policy ``entries`` (log order) as records; stop at the first unreadable."""
    records: list[PolicyRecord] = []
    for entry in entries:
        problem, record = _policy_record(source, entry)
        if record is None:
            return records, [
                error(
                    "policy_record_unreadable",
                    f"{problem}; later policy records are not considered",
                    blob_id=entry.blob_id,
                    kind=POLICY_KIND,
                    index=entry.index,
                )
            ]
        records.append(record)
    return records, []


def _policy_record(source: ChainSource, entry: SourceEntry) -> tuple[str, PolicyRecord | None]:
    """Return ("", record) for a readable policy entry, or (why not, None)."""
    if entry.kind != POLICY_KIND:
        # entries_of_kind comes from an index, derived data: the leaf's own kind is what counts.
        return f"log entry {entry.index} is a {entry.kind!r} record, not a trust policy", None
    data = source.blob(entry.blob_id)
    if data is None:
        return "policy blob is missing", None
    envelope = _load_envelope(source, entry.envelope_id, Where(entry.blob_id, entry.kind))
    if isinstance(envelope, ChainFinding):
        return envelope.message, None
    try:
        policy = TrustPolicy.from_bytes(data)
    except ValueError as exc:
        return f"policy blob does not parse: {exc}", None
    return "", PolicyRecord(policy, entry.blob_id, envelope, entry.index)


def _verify_checkpoint(
    source: ChainSource, chain: PolicyChain
) -> tuple[Checkpoint | None, list[ChainFinding]]:
    """Return the latest checkpoint if a threshold of the log role's keys signed it."""
    data = source.latest_checkpoint()
    if data is None:
        return None, [error("checkpoint_missing", "the log has no signed checkpoint")]
    try:
        claimed = Checkpoint.from_text(parse_note(data).text)
    except (FormatError, ValueError) as exc:
        return None, [error("checkpoint_invalid", f"checkpoint does not parse: {exc}")]
    if not chain.policies:
        return None, []  # nothing trusted names the log key; the policy findings say why
    try:
        policy = chain.policy_at(claimed.size)
        threshold = policy.role(LOG_ROLE).threshold
        keys = chain.role_keys_at(LOG_ROLE, claimed.size)
    except ValueError as exc:
        return None, [error("checkpoint_signature_invalid", f"no trusted log key: {exc}")]
    if claimed.origin != policy.origin:
        return None, [
            error(
                "checkpoint_origin_mismatch",
                f"checkpoint origin {claimed.origin!r} is not the policy's {policy.origin!r}",
            )
        ]
    verified: Checkpoint | None = None
    signed = 0
    for key in keys.values():
        try:
            verified, _ = open_checkpoint(data, origin=policy.origin, key=key)
        except (FormatError, SignatureError):
            continue
        signed += 1
    if verified is None or signed < threshold:
        return None, [
            error(
                "checkpoint_signature_invalid",
                f"checkpoint of size {claimed.size} is signed by {signed} of the {threshold} "
                "required log key(s)",
            )
        ]
    return verified, []


def _inclusion_findings(
    source: ChainSource, entry: SourceEntry, checkpoint: Checkpoint | None
) -> list[ChainFinding]:
    """Prove the entry's leaf (rebuilt from its fields) is in the verified checkpoint's tree."""
    where = Where(entry.blob_id, entry.kind, entry.index)
    if checkpoint is None:
        return []  # the checkpoint findings already block; nothing to prove against
    if entry.index >= checkpoint.size:
        return [
            where.error(
                "entry_not_checkpointed",
                f"log index {entry.index} is beyond the checkpoint size {checkpoint.size}",
            )
        ]
    try:
        proof = source.inclusion_proof(entry.index, checkpoint.size)
        verify_inclusion(
            leaf_hash(entry.leaf_bytes()), entry.index, checkpoint.size, proof, checkpoint.root_hash
        )
    except (LedgerError, ValueError) as exc:
        reason = "does not verify" if isinstance(exc, ProofError) else "is unavailable"
        return [
            where.error(
                "inclusion_proof_invalid",
                f"inclusion proof of index {entry.index} under size {checkpoint.size} "
                f"{reason}: {exc}",
            )
        ]
    return []


def walk(
    context: ChainContext, root_blob_id: str, root_kind: str
) -> dict[tuple[str, str], RecordCheck]:
    """Check ``root_blob_id`` and every ancestor its signed statements name, breadth first.

    Returns the checks keyed by (blob id, kind), in visiting order. Parents of unknown kinds
    are not followed (the parent-edge finding reports them).
    """
    checks: dict[tuple[str, str], RecordCheck] = {}
    queue = deque([(root_blob_id, root_kind)])
    while queue:
        key = queue.popleft()
        if key in checks:
            continue
        check = check_record(context, *key)
        checks[key] = check
        queue.extend((p.sha256, p.kind) for p in check.parents if p.kind in KIND_SPECS)
    return checks


def check_record(context: ChainContext, blob_id: str, kind: str) -> RecordCheck:
    """Check one record: blob, log entry, envelope, statement, signatures, inclusion, manifest."""
    findings: list[ChainFinding] = []
    entry = _entry(context.source, blob_id, kind, findings)
    where = Where(blob_id, kind, entry.index if entry is not None else None)
    manifest = _manifest(context.source, where, findings)
    parents: tuple[Parent, ...] = ()
    signers: frozenset[str] = frozenset()
    if entry is not None:
        envelope = _load_envelope(context.source, entry.envelope_id, where)
        if isinstance(envelope, ChainFinding):
            findings.append(envelope)
        else:
            parents = _statement(context, envelope, entry, findings)
            signers = _signers(context, envelope, entry, findings)
        findings.extend(_inclusion_findings(context.source, entry, context.checkpoint))
    node = ChainNode(
        kind=kind,
        blob_id=blob_id,
        log_index=entry.index if entry is not None else None,
        signer_key_ids=tuple(sorted(signers)),
        parents=tuple((p.kind, p.sha256) for p in parents),
    )
    return RecordCheck(node, manifest, parents, tuple(findings))


def _entry(
    source: ChainSource, blob_id: str, kind: str, findings: list[ChainFinding]
) -> SourceEntry | None:
    """Return the earliest entry logging ``blob_id`` as ``kind``; report it when there is none."""
    entries = [e for e in source.entries_for_blob(blob_id) if e.blob_id == blob_id]
    matching = [e for e in entries if e.kind == kind]
    if matching:
        return min(matching, key=lambda e: e.index)
    if entries:
        others = ", ".join(sorted({e.kind for e in entries}))
        findings.append(
            error(
                "kind_mismatch",
                f"logged as {others}, expected {kind}",
                blob_id=blob_id,
                kind=kind,
            )
        )
    else:
        findings.append(
            error("not_logged", f"no log entry records this {kind}", blob_id=blob_id, kind=kind)
        )
    return None


def _manifest(source: ChainSource, where: Where, findings: list[ChainFinding]) -> object | None:
    """Return the blob's verified manifest object (TraceDataset for traces), or report why not."""
    blob_id, kind = where.blob_id, where.kind
    if kind == TRACE_DATASET:
        stream = source.open_blob(blob_id)
        if stream is None:
            findings.append(where.error("blob_missing", "the blob is not stored"))
            return None
        with stream:
            actual = hash_stream(stream)
        if actual != blob_id:
            findings.append(where.error("blob_hash_mismatch", f"content hashes to {actual}"))
            return None
        # Rows are read, if at all, from a new stream that is hashed again as it is parsed
        # (``bindings``): what this stream held proves nothing about what a later one holds.
        return trace_from_source(source, blob_id)
    data = source.blob(blob_id)
    if data is None:
        findings.append(where.error("blob_missing", "the blob is not stored"))
        return None
    actual = hashlib.sha256(data).hexdigest()
    if actual != blob_id:
        findings.append(where.error("blob_hash_mismatch", f"content hashes to {actual}"))
        return None
    try:
        return parse_manifest(kind, data)
    except HashMismatchError as exc:
        findings.append(where.error("manifest_hash_mismatch", str(exc)))
    except ValueError as exc:  # ManifestError and the stage modules' strict from_dict
        findings.append(where.error("manifest_invalid", str(exc)))
    return None


def trace_from_source(source: ChainSource, blob_id: str) -> TraceDataset:
    """Return trace blob ``blob_id`` of ``source`` as a TraceDataset (its id unchecked here).

    Every ``open`` of it is a new ``source.open_blob``; a blob gone from the source by then
    raises ObjectNotFoundError (a LedgerError: verification reports ``source_unreadable``).
    """

    def open_stream() -> BlobStream:
        stream = source.open_blob(blob_id)
        if stream is None:
            raise ObjectNotFoundError(f"blob {blob_id} is no longer in the source")
        return stream

    return TraceDataset(blob_id, f"trace blob {blob_id}", open_stream)


def _load_envelope(source: ChainSource, envelope_id: str, where: Where) -> Envelope | ChainFinding:
    """Return the envelope stored as blob ``envelope_id`` (hash-checked), or the problem."""
    data = source.blob(envelope_id)
    if data is None:
        return where.error("envelope_missing", f"envelope blob {envelope_id} is not stored")
    actual = hashlib.sha256(data).hexdigest()
    if actual != envelope_id:
        return where.error(
            "envelope_hash_mismatch", f"envelope blob {envelope_id} hashes to {actual}"
        )
    try:
        return Envelope.from_json(data)
    except (FormatError, ValueError) as exc:
        return where.error("envelope_invalid", f"envelope does not parse: {exc}")
    except RecursionError:  # the json module's answer to hostile nesting: a finding too
        return where.error("envelope_invalid", "envelope does not parse: JSON nested too deeply")


def _statement(
    context: ChainContext, envelope: Envelope, entry: SourceEntry, findings: list[ChainFinding]
) -> tuple[Parent, ...]:
    """Check the statement names this blob, kind and origin and follows the kind's edges.

    Returns the statement's parents (to walk), or () when the statement is unreadable.
    """
    where = Where(entry.blob_id, entry.kind, entry.index)
    if envelope.payload_type != PAYLOAD_TYPE:
        findings.append(
            where.error(
                "envelope_invalid",
                f"payload type {envelope.payload_type!r} is not {PAYLOAD_TYPE!r}",
            )
        )
        return ()
    try:
        statement = RecordStatement.from_bytes(envelope.payload)
    except (FormatError, ValueError, RecursionError) as exc:
        reason = "JSON nested too deeply" if isinstance(exc, RecursionError) else exc
        findings.append(where.error("statement_invalid", f"statement does not parse: {reason}"))
        return ()
    if statement.kind != entry.kind or statement.sha256 != entry.blob_id:
        findings.append(
            where.error(
                "statement_subject_mismatch",
                f"statement is about {statement.kind} {statement.sha256}",
            )
        )
    origin = context.origin
    if origin is not None and statement.origin != origin:
        findings.append(
            where.error(
                "statement_origin_mismatch",
                f"statement origin {statement.origin!r} is not the log's {origin!r}",
            )
        )
    problems = parent_kind_problems(entry.kind, [p.kind for p in statement.parents])
    if problems:
        findings.append(where.error("parent_edges_invalid", "; ".join(problems)))
    return statement.parents


def _signers(
    context: ChainContext, envelope: Envelope, entry: SourceEntry, findings: list[ChainFinding]
) -> frozenset[str]:
    """Return the distinct role keys that signed; report a threshold that is not met."""
    where = Where(entry.blob_id, entry.kind, entry.index)
    chain = context.policies
    if chain is None or not chain.policies:
        return frozenset()  # no trusted policy at all: the policy findings already block
    role_name = kind_spec(entry.kind).role
    try:
        policy = chain.policy_at(entry.index)
    except PolicyError as exc:
        findings.append(where.error("no_policy_in_effect", str(exc)))
        return frozenset()
    try:
        role = policy.role(role_name)
    except ValueError as exc:
        findings.append(where.error("role_missing", str(exc)))
        return frozenset()
    keys = chain.role_keys_at(role_name, entry.index)
    try:
        signers = verify_envelope(envelope, keys, payload_type=PAYLOAD_TYPE)
    except FormatError:
        return frozenset()  # wrong payload type: reported as envelope_invalid
    if len(signers) < role.threshold:
        findings.append(
            where.error(
                "signature_threshold_not_met",
                f"signed by {len(signers)} of the {role.threshold} required distinct, "
                f"unrevoked {role_name} key(s)",
            )
        )
    return signers


def _all_bindings(checks: dict[tuple[str, str], RecordCheck], *, deep: bool) -> list[ChainFinding]:
    """Check the bindings of every record whose manifest and parents' manifests all parsed."""
    findings: list[ChainFinding] = []
    for (blob_id, kind), check in checks.items():
        if check.manifest is None or check.node.log_index is None:
            continue
        if parent_kind_problems(kind, [p.kind for p in check.parents]):
            continue  # the edges are wrong: bindings would compare the wrong things
        parents: dict[str, list[object]] = {}
        complete = True
        for parent in check.parents:
            parent_check = checks.get((parent.sha256, parent.kind))
            if parent_check is None or parent_check.manifest is None:
                complete = False
                break
            parents.setdefault(parent.kind, []).append(parent_check.manifest)
        if not complete:
            continue  # an unreadable parent is already reported
        for finding in check_bindings(kind, check.manifest, parents, deep=deep):
            findings.append(
                ChainFinding(
                    finding.code,
                    finding.severity,
                    finding.message,
                    blob_id=blob_id,
                    kind=kind,
                    index=check.node.log_index,
                )
            )
    return findings


# What the audit reports of a record's own blob: fsck already names missing or damaged bytes.
_AUDITED_MANIFEST_CODES = frozenset({"manifest_invalid", "manifest_hash_mismatch"})


def audit_bindings(
    source: ChainSource, entries: Iterable[SourceEntry], *, deep: bool = True
) -> list[ChainFinding]:
    """Check every logged stage record against the parents its statement names (``cmf verify``).

    The whole-ledger counterpart of step 4, deep by default: every dataset report's trace rows
    are re-validated. Reports ``manifest_invalid`` / ``manifest_hash_mismatch``,
    ``parent_edges_invalid``, ``parent_invalid`` (a named parent's intact blob is not a manifest
    of the kind named) and the ``bind_*`` codes. Signatures, trust and inclusion
    are not judged here, and a record whose own blob, envelope or statement is missing or
    damaged is skipped: fsck reports those. Each (blob, kind) is parsed once, and its self-hash
    recomputed at most once (``memoized_hashes``). Source read errors propagate.
    """
    with memoized_hashes():
        return _audit_bindings(source, entries, deep=deep)


def _audit_bindings(
    source: ChainSource, entries: Iterable[SourceEntry], *, deep: bool
) -> list[ChainFinding]:
    """``audit_bindings`` without its hash memo (the caller opens it)."""
    parsed: dict[tuple[str, str], tuple[object | None, list[ChainFinding]]] = {}

    def manifest_of(where: Where) -> tuple[object | None, list[ChainFinding]]:
        key = (where.blob_id, where.kind)
        if key not in parsed:
            found: list[ChainFinding] = []
            parsed[key] = (_manifest(source, where, found), found)
        return parsed[key]

    findings: list[ChainFinding] = []
    for entry in entries:
        if entry.kind not in KIND_SPECS:
            continue  # trust policies: the policy walk judges them
        where = Where(entry.blob_id, entry.kind, entry.index)
        manifest, problems = manifest_of(Where(entry.blob_id, entry.kind))
        findings.extend(
            where.error(p.code, p.message) for p in problems if p.code in _AUDITED_MANIFEST_CODES
        )
        statement = _audited_statement(source, entry, where)
        if manifest is None or statement is None:
            continue
        edge_problems = parent_kind_problems(entry.kind, [p.kind for p in statement.parents])
        if edge_problems:
            findings.append(where.error("parent_edges_invalid", "; ".join(edge_problems)))
            continue
        parents: dict[str, list[object]] = {}
        for parent in statement.parents:
            parent_manifest, parent_problems = manifest_of(Where(parent.sha256, parent.kind))
            if parent_manifest is None:
                # Missing or damaged bytes are fsck's to report; intact bytes that are not a
                # manifest of the named kind are this child's problem.
                findings.extend(
                    where.error(
                        "parent_invalid", f"parent {parent.kind} {parent.sha256}: {p.message}"
                    )
                    for p in parent_problems
                    if p.code in _AUDITED_MANIFEST_CODES
                )
                break
            parents.setdefault(parent.kind, []).append(parent_manifest)
        else:
            findings.extend(
                where.error(f.code, f.message)
                for f in check_bindings(entry.kind, manifest, parents, deep=deep)
            )
    return findings


def audit_signatures(
    source: ChainSource, entries: Iterable[SourceEntry], policies: PolicyChain
) -> list[ChainFinding]:
    """Check every logged stage record is signed by its role (``cmf verify``).

    The whole-ledger counterpart of step 3's signature check, against the verified policy
    chain ``policies``: a threshold of distinct keys holding the kind's role in the policy in
    effect at the entry's index, none revoked there (``no_policy_in_effect``, ``role_missing``,
    ``signature_threshold_not_met``). fsck only checks that signatures verify with *some*
    recorded key, and any key that signs joins the keyring. Trust policies are the policy walk's
    to judge; a missing or damaged envelope is fsck's to report, and is skipped. Source read
    errors propagate.
    """
    if not policies.policies:
        return []  # nothing trusted names a role: the policy findings already block
    context = ChainContext(source, policies, None)
    findings: list[ChainFinding] = []
    for entry in entries:
        if entry.kind not in KIND_SPECS:
            continue
        where = Where(entry.blob_id, entry.kind, entry.index)
        envelope = _load_envelope(source, entry.envelope_id, where)
        if not isinstance(envelope, ChainFinding):
            _signers(context, envelope, entry, findings)
    return findings


def _audited_statement(
    source: ChainSource, entry: SourceEntry, where: Where
) -> RecordStatement | None:
    """Return the entry's statement if its envelope is intact and about this entry, else None."""
    envelope = _load_envelope(source, entry.envelope_id, where)
    if isinstance(envelope, ChainFinding) or envelope.payload_type != PAYLOAD_TYPE:
        return None
    try:
        statement = RecordStatement.from_bytes(envelope.payload)
    except (FormatError, ValueError, RecursionError):
        return None
    if statement.kind != entry.kind or statement.sha256 != entry.blob_id:
        return None
    return statement


def _parent_manifest(
    checks: dict[tuple[str, str], RecordCheck], child: RecordCheck, kind: str, cls: type[_T]
) -> _T | None:
    """Return the parsed ``kind`` parent of ``child`` if it is a ``cls``, else None."""
    for parent in child.parents:
        if parent.kind == kind:
            found = checks.get((parent.sha256, kind))
            if found is not None and isinstance(found.manifest, cls):
                return found.manifest
    return None


def _verdict_clock(context: ChainContext) -> datetime:
    """Return the context's ``as_of``; a release verdict without a clock is a caller error."""
    if context.as_of is None:
        raise ValueError("judging a release needs a context opened at an as_of (open_context)")
    return context.as_of


def _gate_verdict(
    checks: dict[tuple[str, str], RecordCheck], release_blob_id: str, *, as_of: datetime
) -> list[ChainFinding]:
    """Return the gate's own refusal and an unexcused monitoring breach, if any."""
    root = checks[(release_blob_id, RELEASE_GATE)]
    gate = root.manifest
    if not isinstance(gate, CustomerReleaseGateManifest):
        return []
    where = Where(release_blob_id, RELEASE_GATE, root.node.log_index)
    findings: list[ChainFinding] = []
    if not gate.promotion_allowed:
        blockers = ", ".join(blocker.get("code", "") for blocker in gate.blockers)
        findings.append(
            where.error("release_not_promotable", f"the gate blocks promotion: {blockers}")
        )
    monitoring = _parent_manifest(checks, root, MONITORING_MANIFEST, CustomerMonitoringManifest)
    register = _parent_manifest(checks, root, RISK_REGISTER, CustomerRiskRegister)
    if monitoring is not None and register is not None:
        problem = monitoring_problem(gate, monitoring, register, as_of=as_of)
        if problem is not None:
            findings.append(where.error("monitoring_not_within_control", problem))
    return findings


def monitoring_problem(
    gate: CustomerReleaseGateManifest,
    monitoring: CustomerMonitoringManifest,
    register: CustomerRiskRegister,
    *,
    as_of: datetime,
) -> str | None:
    """Return why a monitoring status other than within_control is not excused, or None.

    Excused only by a risk in the register with status ``accepted`` whose
    ``linked_artifact_hashes["monitoring_hash"]`` is this monitoring manifest's recomputed hash
    and whose ``expires_at`` is before neither the gate's ``generated_at`` nor ``as_of`` (the
    verifier's clock: an acceptance that lapsed after the gate was generated no longer covers a
    promotion judged later). Instants are parsed (RFC 3339); ``as_of`` must be timezone-aware.
    """
    if not isinstance(as_of, datetime) or as_of.utcoffset() is None:
        raise ValueError("as_of: expected an aware datetime (with a UTC offset)")
    if monitoring.health_status == WITHIN_CONTROL:
        return None
    status = f"monitoring health is {monitoring.health_status!r}"
    try:
        generated = parse_instant(gate.generated_at, field="release_gate.generated_at")
    except ValueError as exc:
        return f"{status}; no accepted risk can be checked for expiry: {exc}"
    monitoring_hash = monitoring.recompute_hash()
    lapsed: list[str] = []
    for risk in register.risks:
        if risk.status != "accepted":
            continue
        if risk.linked_artifact_hashes.get("monitoring_hash") != monitoring_hash:
            continue
        try:
            expires = parse_instant(risk.expires_at, field=f"risk {risk.risk_id}.expires_at")
        except ValueError:
            continue
        before = _lapse(expires, gate.generated_at, generated, as_of)
        if before is None:
            return None
        lapsed.append(f"accepted risk {risk.risk_id} expired at {risk.expires_at}, before {before}")
    if lapsed:
        return f"{status} and every accepted risk linked to it has expired: {'; '.join(lapsed)}"
    return (
        f"{status} and no accepted, unexpired risk is linked to monitoring hash {monitoring_hash}"
    )


def _lapse(
    expires: datetime, generated_text: str, generated: datetime, as_of: datetime
) -> str | None:
    """Return which instant an acceptance expiring at ``expires`` lapsed before, or None."""
    if expires < generated:
        return f"the gate's generated_at {generated_text}"
    if expires < as_of:
        return f"as_of {as_of.isoformat()}"
    return None


def release_name_findings(
    source: ChainSource, release_blob_id: str, name: str
) -> list[ChainFinding]:
    """Confirm that the release name ``name`` (a ref: unsigned) names this release gate.

    Empty when blob ``release_blob_id`` is a release gate manifest (hash-true, its self-hash
    recomputed) whose own ``release_id``, a field of the signed blob, is ``name``; otherwise one
    ``ref_release_mismatch`` finding, so that a ref pointed at another release's gate never has
    that release verified under the name asked for. Source read errors propagate.
    """
    where = Where(release_blob_id, RELEASE_GATE)
    problems: list[ChainFinding] = []
    gate = _manifest(source, where, problems)
    if isinstance(gate, CustomerReleaseGateManifest):
        if gate.release_id == name:
            return []
        detail = f"the name {name!r} resolves to the release gate of {gate.release_id!r}"
    else:
        reason = problems[0].message if problems else "the blob is not a release gate"
        detail = f"the name {name!r} cannot be confirmed: {reason}"
    return [where.error("ref_release_mismatch", detail)]
