"""Recording stages: check a manifest against its logged parents, then store, sign and log it.

``record_stage`` refuses (``ChainError`` with every finding) *before* anything is written when
the manifest does not parse or its self-hash does not recompute, when a parent is not a logged
record of a kind the edges allow, or when a copied field does not match its parent
(``bindings``). Parents must be committed (visible in the ledger): the writer does not expose
the kinds of records still pending in its batch.

``record_policy`` records a trust-policy version after checking it is a valid successor of the
policy versions already logged (``ledger.policy.verify_policy_chain``), signed by the old and new
root keys.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from .._hashing import HashMismatchError
from ..ledger.blobs import ObjectNotFoundError
from ..ledger.dsse import Envelope
from ..ledger.errors import IntegrityError, LedgerError
from ..ledger.keys import PrivateKey
from ..ledger.policy import POLICY_KIND, PolicyRecord, TrustPolicy, verify_policy_chain
from ..ledger.statement import PAYLOAD_TYPE, Parent, RecordStatement
from ..ledger.store import Ledger, LedgerWriter, LogEntry
from ..timestamps import parse_instant
from ..trace_files import hash_trace_rows, iter_trace_rows_from, write_canonical_trace
from .bindings import check_bindings
from .findings import ChainError, ChainFinding, error
from .kinds import (
    KIND_SPECS,
    PROMOTION,
    TRACE_DATASET,
    is_hex_id,
    parent_kind_problems,
    parse_manifest,
)
from .ledger_source import LedgerSource
from .verify import load_policy_records, trace_from_source

# Codes of the refusals this module raises besides ``bind_*`` and ``policy_*`` (docs/chain.md
# section 4).
RECORD_CODES = (
    "kind_not_recordable",
    "manifest_invalid",
    "manifest_hash_mismatch",
    "trace_not_canonical",
    "already_recorded",
    "parent_not_logged",
    "parent_kind_mismatch",
    "parent_edges_invalid",
    "parent_invalid",
    "policy_origin_mismatch",
)


def record_stage(
    writer: LedgerWriter,
    ledger: Ledger,
    *,
    kind: str,
    data: bytes,
    parents: Sequence[str],
    signers: Sequence[PrivateKey],
    time: str,
    tool_version: str,
) -> LogEntry:
    """Check a ``kind`` manifest against its parents (blob ids); then put, sign and log it.

    ``time`` is the statement time (``YYYY-MM-DDTHH:MM:SSZ``). Raises ChainError, writing
    nothing, when ``check_stage`` finds anything. Commit the writer to make it durable.
    """
    blob_id = hashlib.sha256(data).hexdigest()
    manifest, problem = _parse(kind, data)
    findings, parent_kinds = _check(ledger, kind, blob_id, parents, manifest, problem)
    if findings:
        raise ChainError(findings)
    statement_parents = [Parent(parent_kinds[parent], parent) for parent in parents]
    return _record(
        writer,
        ledger,
        kind,
        blob_id,
        statement_parents,
        signers,
        time,
        tool_version,
        lambda: writer.put_blob(data),
    )


def record_trace_file(
    writer: LedgerWriter,
    ledger: Ledger,
    *,
    path: Path,
    signers: Sequence[PrivateKey],
    time: str,
    tool_version: str,
) -> LogEntry:
    """Record a trace file (JSONL or JSON array) as its canonical blob, streaming.

    The stored blob is the canonical JSON array of the rows (``trace_files.write_canonical_trace``),
    so its id is the ``dataset_hash`` of a report on the same rows. The file is read once, one
    row at a time, into a temporary file that is then stored. Every row must parse; ChainError,
    writing nothing, otherwise.
    """
    with tempfile.TemporaryDirectory(prefix="cmf-trace-") as directory:
        canonical = Path(directory) / "trace.json"
        try:
            with canonical.open("wb") as handle:
                blob_id = write_canonical_trace(path, handle)
        except ValueError as exc:  # TraceFileError
            raise ChainError(
                [error("manifest_invalid", f"trace dataset: {exc}", kind=TRACE_DATASET)]
            ) from None
        findings, _ = _check(ledger, TRACE_DATASET, blob_id, (), None, None)
        if findings:
            raise ChainError(findings)
        return _record(
            writer,
            ledger,
            TRACE_DATASET,
            blob_id,
            [],
            signers,
            time,
            tool_version,
            lambda: writer.put_file(canonical),
        )


def check_stage(
    ledger: Ledger, *, kind: str, data: bytes, parents: Sequence[str]
) -> list[ChainFinding]:
    """Return every reason ``record_stage`` would refuse this manifest (empty when it would not)."""
    blob_id = hashlib.sha256(data).hexdigest()
    manifest, problem = _parse(kind, data)
    findings, _ = _check(ledger, kind, blob_id, parents, manifest, problem)
    return findings


def _parse(kind: str, data: bytes) -> tuple[object | None, ChainFinding | None]:
    """Return (manifest, None), or (None, the finding that says why it cannot be recorded).

    A trace dataset has no manifest object (it has no parents to bind): (None, None) when
    ``data`` is the canonical JSON array of its rows. An unknown kind gives (None, None) here
    and is refused by ``_check``.
    """
    if kind == TRACE_DATASET:
        return None, _trace_problem(data)
    if kind not in KIND_SPECS:
        return None, None
    try:
        return parse_manifest(kind, data), None
    except HashMismatchError as exc:
        return None, error("manifest_hash_mismatch", str(exc), kind=kind)
    except ValueError as exc:
        return None, error("manifest_invalid", str(exc), kind=kind)


def _trace_problem(data: bytes) -> ChainFinding | None:
    """Return why ``data`` is not a canonical trace blob (rows that parse, encoded canonically).

    Only the canonical array's id is the ``dataset_hash`` of its rows, which the chain's default
    binding check relies on; ``record_trace_file`` produces it from any trace file.
    """
    try:
        rows_hash = hash_trace_rows(iter_trace_rows_from(io.BytesIO(data), "trace"))
    except ValueError as exc:
        return error("manifest_invalid", f"trace dataset: {exc}", kind=TRACE_DATASET)
    if rows_hash != hashlib.sha256(data).hexdigest():
        return error(
            "trace_not_canonical",
            "trace dataset bytes are not the canonical JSON array of their rows "
            '(json.dumps(rows, sort_keys=True, separators=(",", ":"))); record the file with '
            "record_trace_file",
            kind=TRACE_DATASET,
        )
    return None


def _check(
    ledger: Ledger,
    kind: str,
    blob_id: str,
    parents: Sequence[str],
    manifest: object | None,
    problem: ChainFinding | None,
) -> tuple[list[ChainFinding], dict[str, str]]:
    """Return (findings, parent blob id -> logged kind) for recording ``blob_id`` as ``kind``.

    ``manifest`` and ``problem`` are the outcome of parsing the blob.
    """
    if kind not in KIND_SPECS or kind == PROMOTION:
        reason = "promotions are recorded by promote_release" if kind == PROMOTION else "unknown"
        return [error("kind_not_recordable", f"{kind!r}: {reason}", kind=kind)], {}
    findings = [problem] if problem is not None else []
    if any(entry.kind == kind for entry in ledger.entries_for_blob(blob_id)):
        findings.append(
            error("already_recorded", f"this {kind} is already logged", blob_id=blob_id, kind=kind)
        )
    parent_kinds, parent_findings = _parent_kinds(ledger, kind, parents)
    findings.extend(parent_findings)
    if findings or manifest is None:
        return findings, parent_kinds
    loaded, load_findings = _load_parents(ledger, parent_kinds)
    findings.extend(load_findings)
    if not findings:
        findings.extend(
            error(f.code, f.message, blob_id=blob_id, kind=kind)
            # Recording is rare and final: the dataset report's rows are re-validated in full.
            for f in check_bindings(kind, manifest, loaded, deep=True)
        )
    return findings, parent_kinds


def _parent_kinds(
    ledger: Ledger, kind: str, parents: Sequence[str]
) -> tuple[dict[str, str], list[ChainFinding]]:
    """Return each parent's logged kind (one the edges allow) and the findings about parents."""
    allowed = {rule.kind for rule in KIND_SPECS[kind].parents}
    kinds: dict[str, str] = {}
    findings: list[ChainFinding] = []
    for parent in parents:
        if not is_hex_id(parent):
            findings.append(error("parent_not_logged", f"{parent!r} is not a blob id", kind=kind))
            continue
        if parent in kinds:
            findings.append(
                error("parent_edges_invalid", f"parent {parent} is listed twice", kind=kind)
            )
            continue
        logged = [entry.kind for entry in ledger.entries_for_blob(parent)]
        usable = [k for k in logged if k in allowed]
        if usable:
            kinds[parent] = usable[0]
        elif logged:
            findings.append(
                error(
                    "parent_kind_mismatch",
                    f"parent is logged as {', '.join(sorted(set(logged)))}; a {kind} takes "
                    f"{', '.join(sorted(allowed)) or 'no parents'}",
                    blob_id=parent,
                    kind=kind,
                )
            )
        else:
            findings.append(
                error("parent_not_logged", "parent is not a committed log entry", blob_id=parent)
            )
    if not findings:
        problems = parent_kind_problems(kind, list(kinds.values()))
        if problems:
            findings.append(error("parent_edges_invalid", "; ".join(problems), kind=kind))
    return kinds, findings


def _load_parents(
    ledger: Ledger, parent_kinds: dict[str, str]
) -> tuple[dict[str, list[object]], list[ChainFinding]]:
    """Load every parent; return them grouped by kind, and the findings.

    A manifest is re-hashed and parsed here; a trace dataset only located (see below).
    """
    loaded: dict[str, list[object]] = {}
    findings: list[ChainFinding] = []
    for blob_id, kind in parent_kinds.items():
        try:
            if kind == TRACE_DATASET:
                # Not hashed here: its one reader, the dataset report's binding (always deep
                # when recording), hashes the bytes it parses (``bind_dataset_trace_changed``),
                # so a large trace is read once, and never swapped between a check and a read.
                if not ledger.objects.contains(blob_id):
                    raise ObjectNotFoundError(f"blob {blob_id} is not in the object store")
                parent: object = trace_from_source(LedgerSource(ledger), blob_id)
            else:
                parent = parse_manifest(kind, ledger.objects.get(blob_id))
        except (LedgerError, OSError, ValueError) as exc:
            findings.append(
                error("parent_invalid", f"parent cannot be used: {exc}", blob_id=blob_id, kind=kind)
            )
            continue
        loaded.setdefault(kind, []).append(parent)
    return loaded, findings


def _record(
    writer: LedgerWriter,
    ledger: Ledger,
    kind: str,
    blob_id: str,
    parents: Sequence[Parent],
    signers: Sequence[PrivateKey],
    time: str,
    tool_version: str,
    put: Callable[[], str],
) -> LogEntry:
    """Validate the statement and signers, stage the blob with ``put``, then sign and append.

    The statement is built once here only to validate ``time`` and ``tool_version`` (FormatError)
    before anything is staged.
    """
    if not signers:
        raise ValueError("a record needs at least one signer")
    RecordStatement(
        kind=kind,
        sha256=blob_id,
        parents=tuple(parents),
        origin=ledger.origin,
        time=time,
        tool_version=tool_version,
    )
    stored = put()
    if stored != blob_id:
        raise IntegrityError(f"blob {blob_id} changed while it was being recorded (got {stored})")
    return writer.record(
        kind=kind,
        blob_id=blob_id,
        parents=parents,
        signers=signers,
        time=time,
        tool_version=tool_version,
    )


def record_policy(
    writer: LedgerWriter,
    ledger: Ledger,
    *,
    policy: TrustPolicy,
    signers: Sequence[PrivateKey],
    time: str,
    tool_version: str,
) -> LogEntry:
    """Record a trust-policy version signed by ``signers`` (the old and the new root keys).

    The first version must be signed by a threshold of its own root keys; every later one must
    be a valid successor of the logged versions as of ``time`` (verify_policy_chain, pinned to
    the first logged version). ChainError, writing nothing, otherwise. Earlier versions must be
    committed.
    """
    findings: list[ChainFinding] = []
    if policy.origin != ledger.origin:
        findings.append(
            error(
                "policy_origin_mismatch",
                f"policy origin {policy.origin!r} is not the ledger's {ledger.origin!r}",
                kind=POLICY_KIND,
            )
        )
    statement = RecordStatement(
        kind=POLICY_KIND,
        sha256=policy.blob_id,
        parents=(),
        origin=ledger.origin,
        time=time,
        tool_version=tool_version,
    )
    envelope = Envelope(statement.to_bytes(), PAYLOAD_TYPE)
    for signer in signers:
        envelope = envelope.signed_by(signer)
    source = LedgerSource(ledger)
    records, findings_loaded = load_policy_records(source, source.entries_of_kind(POLICY_KIND))
    findings.extend(findings_loaded)
    candidate = PolicyRecord(policy, policy.blob_id, envelope, ledger.size + writer.pending)
    pinned = records[0].policy if records else policy
    chain = verify_policy_chain(
        pinned, [*records, candidate], as_of=parse_instant(time, field="time")
    )
    findings.extend(
        error(f.code, f.message, kind=POLICY_KIND, index=f.index) for f in chain.findings
    )
    if findings:
        raise ChainError(findings)
    blob_id = writer.put_blob(policy.to_bytes())
    keys = [signer.public_key for signer in signers]
    return writer.append_envelope(POLICY_KIND, blob_id, envelope, keys=keys)
