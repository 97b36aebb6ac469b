"""Tests for verify_release_chain: a real ledger, real keys, and one broken chain per case."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import chain_fixtures as cf
import pytest
from chain_fixtures import skip_fsync  # noqa: F401  (autouse: no fsync in this module)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_model_factory.chain import LedgerSource, kinds, record_policy, verify_release_chain
from customer_model_factory.chain.findings import codes
from customer_model_factory.chain.source import BlobStream, SourceEntry
from customer_model_factory.chain.verify import (
    VERIFY_CODES,
    ChainReport,
    audit_bindings,
    audit_signatures,
    check_record,
    load_policy_records,
    monitoring_problem,
    open_context,
    release_name_findings,
)
from customer_model_factory.dataset_contract import validate_customer_trace_dataset
from customer_model_factory.ledger.checkpoint import Checkpoint, sign_checkpoint
from customer_model_factory.ledger.dsse import Envelope
from customer_model_factory.ledger.errors import IntegrityError
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.policy import KeyEntry, PolicyChain, Role, TrustPolicy
from customer_model_factory.ledger.statement import PAYLOAD_TYPE, Parent, RecordStatement
from customer_model_factory.ledger.store import Ledger
from customer_model_factory.release_gate import build_release_gate_manifest

KEYS = cf.Keys()
POLICY = cf.make_policy(KEYS)


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, cf.Recorded]:
    """One valid ledger per module; tests that modify it work on a copy."""
    root = tmp_path_factory.mktemp("golden")
    ledger, recorded = cf.build_ledger(root)
    ledger.close()
    return root / "ledger", recorded


@pytest.fixture
def copy(golden: tuple[Path, cf.Recorded], tmp_path: Path) -> tuple[Ledger, cf.Recorded]:
    """A private, writable copy of the golden ledger."""
    path, recorded = golden
    return cf.copy_ledger(path, tmp_path / "ledger"), recorded


def verify(
    ledger: Ledger,
    release: str,
    *,
    trust: TrustPolicy | Any = POLICY,
    as_of: datetime = cf.AS_OF,
) -> ChainReport:
    """Verify ``release`` in ``ledger`` with the test defaults."""
    return verify_release_chain(LedgerSource(ledger), release, trust=trust, as_of=as_of)


def test_full_chain_verifies(golden: tuple[Path, cf.Recorded]) -> None:
    path, recorded = golden
    with Ledger.open(path) as ledger:
        report = verify(ledger, recorded.gate)
    assert report.findings == ()
    assert report.ok
    assert report.policy_version == 1
    assert report.checkpoint_size == ledger.size
    walked = {(node.kind, node.blob_id) for node in report.nodes}
    expected = {(kind, blob_id) for kind, blob_id in recorded.ids.items()}
    expected |= {(kinds.BENCHMARK_RESULT, b) for b in recorded.benchmarks}
    assert walked == expected
    for node in report.nodes:
        assert node.log_index is not None
        kind_key = KEYS.stage(node.kind).public_key.key_id
        assert node.signer_key_ids == (kind_key,)


def test_pinned_root_key_verifies_like_the_pinned_policy(golden: tuple[Path, cf.Recorded]) -> None:
    path, recorded = golden
    with Ledger.open(path) as ledger:
        report = verify(ledger, recorded.gate, trust=KEYS.root.public_key)
    assert report.findings == ()


def test_report_is_deterministic_and_json_safe(golden: tuple[Path, cf.Recorded]) -> None:
    path, recorded = golden
    with Ledger.open(path) as ledger:
        first, second = verify(ledger, recorded.gate), verify(ledger, recorded.gate)
    assert first == second
    assert json.loads(json.dumps(first.to_dict()))["ok"] is True


def test_tampered_blob_is_found(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    training = recorded.ids[kinds.TRAINING_MANIFEST]
    cf.tamper_object(ledger, training)
    report = verify(ledger, recorded.gate)
    assert codes(report.findings) == ["blob_hash_mismatch"]
    (finding,) = report.findings
    assert (finding.blob_id, finding.kind) == (training, kinds.TRAINING_MANIFEST)
    assert finding.index is not None


def test_tampered_trace_dataset_is_found(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    cf.tamper_object(ledger, recorded.ids[kinds.TRACE_DATASET], offset=3)
    report = verify(ledger, recorded.gate)
    assert codes(report.findings) == ["blob_hash_mismatch"]
    assert report.findings[0].kind == kinds.TRACE_DATASET


def test_missing_blob_is_found(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    path = ledger.objects.path(recorded.ids[kinds.SECTOR_MAPPING])
    os.chmod(path.parent, 0o755)
    path.unlink()
    assert codes(verify(ledger, recorded.gate).findings) == ["blob_missing"]


def test_tampered_envelope_is_found(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    (entry,) = ledger.entries_for_blob(recorded.ids[kinds.RUNTIME_PACKAGE])
    cf.tamper_object(ledger, entry.envelope_id, offset=40)
    report = verify(ledger, recorded.gate)
    # The statement is unreadable, so the runtime's parents cannot be walked from it; the
    # monitoring manifest and the gate still name the evidence pack and deployment.
    assert codes(report.findings) == ["envelope_hash_mismatch"]


def test_unknown_release_is_not_logged(golden: tuple[Path, cf.Recorded]) -> None:
    path, recorded = golden
    with Ledger.open(path) as ledger:
        report = verify(ledger, "0" * 64)
        assert codes(report.findings) == ["not_logged", "blob_missing"]
        wrong_kind = verify(ledger, recorded.ids[kinds.RUNTIME_PACKAGE])
    assert codes(wrong_kind.findings)[:1] == ["kind_mismatch"]


def forge_training(kind: str, manifest: Any) -> Any:
    """Copy a wrong dataset_hash into the training manifest, self-hash recomputed."""
    if kind == kinds.TRAINING_MANIFEST:
        return cf.rehash(manifest, dataset_hash="f" * 64)
    return manifest


def test_forced_forged_parent_field_fails_verification(tmp_path: Path) -> None:
    factory = cf.build_factory(forge=forge_training)
    ledger, recorded = cf.build_ledger(
        tmp_path, factory=factory, forced=frozenset({kinds.TRAINING_MANIFEST})
    )
    report = verify(ledger, recorded.gate)
    assert codes(report.findings) == ["bind_training_dataset_hash"]
    assert report.findings[0].blob_id == recorded.ids[kinds.TRAINING_MANIFEST]


def forge_dataset_counts(kind: str, manifest: Any) -> Any:
    """Misstate the dataset report's row count (its dataset_hash still names the real rows)."""
    if kind == kinds.DATASET_REPORT:
        return replace(manifest, row_count=manifest.row_count + 7)
    return manifest


def test_a_report_misstating_its_rows_is_caught_only_deep(tmp_path: Path) -> None:
    factory = cf.build_factory(forge=forge_dataset_counts)
    ledger, recorded = cf.build_ledger(
        tmp_path, factory=factory, forced=frozenset({kinds.DATASET_REPORT})
    )
    assert verify(ledger, recorded.gate).findings == ()
    source = LedgerSource(ledger)
    deep = verify_release_chain(source, recorded.gate, trust=POLICY, as_of=cf.AS_OF, deep=True)
    assert deep.deep and not deep.ok
    assert codes(deep.findings) == ["bind_dataset_counts"]
    assert deep.findings[0].blob_id == recorded.ids[kinds.DATASET_REPORT]
    # The whole-ledger audit is deep by default; shallow it agrees with the default verify.
    entries = [SourceEntry(e.index, e.kind, e.blob_id, e.envelope_id) for e in ledger.entries()]
    assert codes(audit_bindings(source, entries)) == ["bind_dataset_counts"]
    assert audit_bindings(source, entries, deep=False) == []


def other_rows() -> list[dict[str, Any]]:
    """Trace rows that differ from ``cf.trace_rows()`` in one prompt."""
    rows = cf.trace_rows()
    rows[0] = {**rows[0], "prompt": "a prompt the signed trace blob does not hold"}
    return rows


def forge_report_on_other_rows(kind: str, manifest: Any) -> Any:
    """Replace the dataset report by an honest report on ``other_rows()``."""
    if kind == kinds.DATASET_REPORT:
        return validate_customer_trace_dataset(other_rows(), cf.workspace())
    return manifest


class SwappingSource(LedgerSource):
    """A LedgerSource over a ledger whose ``target`` object file an attacker rewrites with
    ``replacement`` just before it is opened a second time (after the verifier hashed it)."""

    def __init__(self, ledger: Ledger, target: str, replacement: bytes) -> None:
        super().__init__(ledger)
        self.path = ledger.objects.path(target)
        self.target = target
        self.replacement = replacement
        self.opens = 0

    def open_blob(self, blob_id: str) -> BlobStream | None:
        if blob_id == self.target:
            self.opens += 1
            if self.opens == 2:
                os.chmod(self.path, 0o644)
                self.path.write_bytes(self.replacement)
        return super().open_blob(blob_id)


@pytest.mark.parametrize("deep", [False, True], ids=["default", "deep"])
def test_the_rows_bound_are_the_bytes_hashed(tmp_path: Path, deep: bool) -> None:
    # The report names rows the signed trace blob does not hold. Whoever can write the object
    # store swaps the blob's file right after the verifier hashed it: rows read from a stream
    # that is not hashed as it is parsed are then the ones the report names, and would bind.
    factory = cf.build_factory(forge=forge_report_on_other_rows)
    ledger, recorded = cf.build_ledger(
        tmp_path, factory=factory, forced=frozenset({kinds.DATASET_REPORT})
    )
    trace = recorded.ids[kinds.TRACE_DATASET]
    honest = verify_release_chain(
        LedgerSource(ledger), recorded.gate, trust=POLICY, as_of=cf.AS_OF, deep=deep
    )
    assert codes(honest.findings) == ["bind_dataset_hash"]

    source = SwappingSource(ledger, trace, cf.trace_bytes(other_rows()))
    raced = verify_release_chain(source, recorded.gate, trust=POLICY, as_of=cf.AS_OF, deep=deep)
    assert source.opens == 2  # hashed once, then its rows read from the swapped file
    assert not raced.ok
    assert codes(raced.findings) == ["bind_dataset_trace_changed"]


def test_the_audit_finds_every_broken_binding_in_the_ledger(tmp_path: Path) -> None:
    factory = cf.build_factory(forge=forge_training)
    ledger, recorded = cf.build_ledger(
        tmp_path, factory=factory, forced=frozenset({kinds.TRAINING_MANIFEST})
    )
    _force(ledger, kinds.SECTOR_MAPPING, b'{"sector_id": 1}', [])
    # A training manifest whose statement calls the sector mapping its dataset report.
    mapping = recorded.ids[kinds.SECTOR_MAPPING]
    other = cf.rehash(cf.build_factory().training, package_id="pkg-wrong-parent")
    _force(ledger, kinds.TRAINING_MANIFEST, cf.blob(other), [Parent(kinds.DATASET_REPORT, mapping)])
    entries = [SourceEntry(e.index, e.kind, e.blob_id, e.envelope_id) for e in ledger.entries()]
    findings = audit_bindings(LedgerSource(ledger), entries)
    assert codes(findings) == ["bind_training_dataset_hash", "manifest_invalid", "parent_invalid"]
    assert findings[0].blob_id == recorded.ids[kinds.TRAINING_MANIFEST]
    assert findings[0].index is not None
    assert mapping in findings[2].message


def test_a_jsonl_trace_blob_from_an_older_ledger_still_binds(tmp_path: Path) -> None:
    # Before canonical trace blobs, the trace file was stored as is: its rows are re-hashed.
    ledger, _ = cf.build_ledger(tmp_path)
    raw = cf.trace_bytes(cf.build_factory().rows)
    trace = _force(ledger, kinds.TRACE_DATASET, raw, [])
    report = cf.build_factory().report
    assert trace != report.dataset_hash
    _force(
        ledger,
        kinds.DATASET_REPORT,
        cf.blob(report) + b" ",  # the same report, as another blob
        [Parent(kinds.TRACE_DATASET, trace)],
    )
    entries = [SourceEntry(e.index, e.kind, e.blob_id, e.envelope_id) for e in ledger.entries()]
    assert audit_bindings(LedgerSource(ledger), entries, deep=False) == []
    assert audit_bindings(LedgerSource(ledger), entries) == []


def test_threshold_not_met_when_a_signature_is_missing(tmp_path: Path) -> None:
    second = cf.key("evidence-second-approver")
    base = POLICY
    policy = TrustPolicy(
        1,
        cf.EXPIRES,
        cf.ORIGIN,
        (*base.keys, KeyEntry.of(second.public_key, "evidence-second")),
        tuple(
            Role(r.name, (*r.key_ids, second.public_key.key_id), 2)
            if r.name == kinds.EVIDENCE_PACK
            else r
            for r in base.roles
        ),
        (),
    )
    ledger, recorded = cf.build_ledger(tmp_path, policy=policy)
    report = verify(ledger, recorded.gate, trust=policy)
    assert codes(report.findings) == ["signature_threshold_not_met"]
    assert report.findings[0].kind == kinds.EVIDENCE_PACK
    assert "1 of the 2" in report.findings[0].message


def test_signature_by_a_key_without_the_role_does_not_count(tmp_path: Path) -> None:
    # The runtime is signed by the monitoring key (enrolled, wrong role) and by a stranger.
    stranger = PrivateKey.from_seed(b"s" * 32)
    signers = {kinds.RUNTIME_PACKAGE: [KEYS.stage(kinds.MONITORING_MANIFEST), stranger]}
    ledger, recorded = cf.build_ledger(tmp_path, signers=signers)
    report = verify(ledger, recorded.gate)
    assert codes(report.findings) == ["signature_threshold_not_met"]
    assert report.findings[0].kind == kinds.RUNTIME_PACKAGE
    runtime_node = next(n for n in report.nodes if n.kind == kinds.RUNTIME_PACKAGE)
    assert runtime_node.signer_key_ids == ()


def _revoke(ledger: Ledger, key_id: str, from_index: int) -> TrustPolicy:
    """Record policy version 2 revoking ``key_id`` from ``from_index``; return it."""
    v2 = POLICY.with_revocation(key_id, from_index, "key compromised", expires=cf.EXPIRES)
    with ledger.writer(log_key=KEYS.log) as writer:
        record_policy(
            writer, ledger, policy=v2, signers=[KEYS.root], time=cf.TIME, tool_version=cf.TOOL
        )
    return v2


def test_revoked_key_signatures_no_longer_count(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    training_key = KEYS.stage(kinds.TRAINING_MANIFEST).public_key.key_id
    _revoke(ledger, training_key, 0)
    report = verify(ledger, recorded.gate)
    assert codes(report.findings) == ["signature_threshold_not_met"]
    assert report.findings[0].kind == kinds.TRAINING_MANIFEST
    assert report.policy_version == 2


def test_revocation_is_by_log_index(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    training_key = KEYS.stage(kinds.TRAINING_MANIFEST).public_key.key_id
    _revoke(ledger, training_key, ledger.size)  # compromised only after everything recorded
    report = verify(ledger, recorded.gate)
    assert report.findings == ()


def _all_entries(ledger: Ledger) -> list[SourceEntry]:
    return [_source(entry) for entry in ledger.entries()]


def test_the_signature_audit_judges_every_record_by_its_role(
    copy: tuple[Ledger, cf.Recorded],
) -> None:
    ledger, recorded = copy
    source = LedgerSource(ledger)
    context, _ = open_context(source, trust=POLICY, as_of=cf.AS_OF)
    assert context.policies is not None
    assert audit_signatures(source, _all_entries(ledger), context.policies) == []
    # A record nothing descends from, signed by an enrolled key of another role: only a
    # whole-ledger audit sees it.
    with ledger.writer(log_key=KEYS.log) as writer:
        stray = writer.put_blob(cf.blob(cf.build_factory().mapping) + b" ")
        writer.record(
            kind=kinds.SECTOR_MAPPING,
            blob_id=stray,
            parents=[],
            signers=[KEYS.stage(kinds.RUNTIME_PACKAGE)],
            time=cf.TIME,
            tool_version=cf.TOOL,
        )
    training_key = KEYS.stage(kinds.TRAINING_MANIFEST).public_key.key_id
    _revoke(ledger, training_key, 0)
    context, _ = open_context(source, trust=POLICY, as_of=cf.AS_OF)
    assert context.policies is not None
    found = audit_signatures(source, _all_entries(ledger), context.policies)
    assert [(f.code, f.blob_id) for f in found] == [
        ("signature_threshold_not_met", recorded.ids[kinds.TRAINING_MANIFEST]),
        ("signature_threshold_not_met", stray),
    ]


def test_expired_policy_fails_now_and_verifies_as_of_the_past(
    golden: tuple[Path, cf.Recorded],
) -> None:
    path, recorded = golden
    later = datetime(2027, 2, 1, tzinfo=UTC)  # POLICY expires 2027-01-01
    with Ledger.open(path) as ledger:
        assert codes(verify(ledger, recorded.gate, as_of=later).findings) == ["policy_expired"]
        assert verify(ledger, recorded.gate, as_of=cf.AS_OF).ok


def test_policy_rollback_is_refused(golden: tuple[Path, cf.Recorded]) -> None:
    path, recorded = golden
    newer = POLICY.with_threshold("root", 1, expires=cf.EXPIRES)  # version 2, never recorded
    with Ledger.open(path) as ledger:
        report = verify(ledger, recorded.gate, trust=newer)
    assert codes(report.findings) == ["policy_rollback"]
    assert not report.ok


def test_a_foreign_root_key_is_not_trusted(golden: tuple[Path, cf.Recorded]) -> None:
    path, recorded = golden
    with Ledger.open(path) as ledger:
        report = verify(ledger, recorded.gate, trust=cf.key("someone-else").public_key)
    assert codes(report.findings) == ["policy_pin_mismatch"]


def test_checkpoint_signed_by_an_untrusted_log_key_fails(tmp_path: Path) -> None:
    # The policy names another key for the log role than the one signing checkpoints.
    other_log = cf.key("other-log")
    policy = TrustPolicy(
        1,
        cf.EXPIRES,
        cf.ORIGIN,
        (*POLICY.keys, KeyEntry.of(other_log.public_key, "other-log")),
        tuple(
            Role("log", (other_log.public_key.key_id,), 1) if r.name == "log" else r
            for r in POLICY.roles
        ),
        (),
    )
    ledger, recorded = cf.build_ledger(tmp_path, policy=policy)
    report = verify(ledger, recorded.gate, trust=policy)
    assert codes(report.findings) == ["checkpoint_signature_invalid"]


def review_factory(risk_expires: str | None) -> cf.Factory:
    """A factory run whose monitoring is review_required (two false-negative incidents)."""
    return cf.build_factory(incidents=2, risk_expires=risk_expires)


@pytest.mark.parametrize(
    ("risk_expires", "expected"),
    [(None, ["monitoring_not_within_control"]), ("2026-09-01T00:00:00Z", [])],
    ids=["no-accepted-risk", "accepted-risk"],
)
def test_monitoring_review_needs_an_accepted_risk(
    tmp_path: Path, risk_expires: str | None, expected: list[str]
) -> None:
    factory = review_factory(risk_expires)
    assert factory.monitoring.health_status == "review_required"
    assert factory.gate.promotion_allowed
    ledger, recorded = cf.build_ledger(tmp_path, factory=factory)
    assert codes(verify(ledger, recorded.gate).findings) == expected


def _risk_variants() -> list[tuple[str, Callable[[cf.Factory], Any], bool]]:
    """(name, risk builder, excused) for monitoring_problem."""

    def linked(f: cf.Factory, expires: str, status: str = "accepted", to: str = "") -> Any:
        risk = cf.accepted_risk(
            to or f.monitoring.recompute_hash(), f.evidence.evidence_hash, expires
        )
        return replace(risk, status=status) if status != "accepted" else risk

    return [
        ("unexpired", lambda f: linked(f, "2026-09-01T00:00:00Z"), True),
        ("expires-at-generation", lambda f: linked(f, cf.GENERATED_AT), True),
        ("expired", lambda f: linked(f, "2026-05-18"), False),
        ("unparseable-expiry", lambda f: linked(f, "soon"), False),
        ("mitigated", lambda f: linked(f, "2026-09-01T00:00:00Z", status="mitigated"), False),
        ("other-monitoring", lambda f: linked(f, "2026-09-01T00:00:00Z", to="a" * 64), False),
    ]


GENERATED = datetime(2026, 5, 18, 18, 45, tzinfo=UTC)  # cf.GENERATED_AT


@pytest.mark.parametrize(("name", "make_risk", "excused"), _risk_variants())
def test_monitoring_problem_rules(
    name: str, make_risk: Callable[[cf.Factory], Any], excused: bool
) -> None:
    factory = review_factory(None)
    register = replace(factory.register, risks=(make_risk(factory),))
    problem = monitoring_problem(factory.gate, factory.monitoring, register, as_of=GENERATED)
    assert (problem is None) is excused, name


def test_monitoring_within_control_needs_nothing() -> None:
    factory = cf.build_factory()
    problem = monitoring_problem(factory.gate, factory.monitoring, factory.register, as_of=cf.AS_OF)
    assert problem is None


def test_an_accepted_risk_must_be_unexpired_at_generation_and_at_as_of() -> None:
    factory = review_factory(None)

    def problem(expires: str, as_of: datetime) -> str | None:
        risk = cf.accepted_risk(
            factory.monitoring.recompute_hash(), factory.evidence.evidence_hash, expires
        )
        register = replace(factory.register, risks=(risk,))
        return monitoring_problem(factory.gate, factory.monitoring, register, as_of=as_of)

    early = problem("2026-05-18T00:00:00Z", cf.AS_OF)
    assert early is not None
    assert "expired at 2026-05-18T00:00:00Z, before the gate's generated_at" in early
    between = problem("2026-05-25T00:00:00Z", cf.AS_OF)  # after generation, before as_of
    assert between is not None
    assert "risk-fn-incidents expired at 2026-05-25T00:00:00Z, before as_of 2026-06-01" in between
    assert problem("2026-05-25T00:00:00Z", datetime(2026, 5, 24, tzinfo=UTC)) is None
    assert problem("2026-06-01T00:00:00Z", cf.AS_OF) is None  # not before as_of: still covered
    with pytest.raises(ValueError, match="as_of"):
        problem("2026-09-01T00:00:00Z", datetime(2026, 6, 1))


def test_an_accepted_risk_expiring_before_as_of_blocks_the_release(tmp_path: Path) -> None:
    factory = review_factory("2026-05-25T00:00:00Z")  # gate generated 05-18, verified 06-01
    ledger, recorded = cf.build_ledger(tmp_path, factory=factory)
    report = verify(ledger, recorded.gate)
    assert codes(report.findings) == ["monitoring_not_within_control"]
    assert "before as_of" in report.findings[0].message
    assert verify(ledger, recorded.gate, as_of=datetime(2026, 5, 24, tzinfo=UTC)).ok


def test_gate_that_blocks_is_not_promotable(tmp_path: Path) -> None:
    factory = cf.build_factory()
    gate = build_release_gate_manifest(
        release_id="release-alpha",
        enterprise_ready=False,
        enterprise_blocking_debt_ids=("TRUST-DEBT-0002",),
        runtime_package=factory.runtime,
        evidence_pack=factory.evidence,
        monitoring_manifest=factory.monitoring,
        risk_register=factory.register,
        generated_at=cf.GENERATED_AT,
    )
    ledger, recorded = cf.build_ledger(tmp_path, factory=replace(factory, gate=gate))
    report = verify(ledger, recorded.gate)
    assert codes(report.findings) == ["release_not_promotable"]
    assert "enterprise_trust_not_ready" in report.findings[0].message


# -- an untrusted source: every lie it can tell is caught ------------------------------------


class LyingSource:
    """Wraps a LedgerSource and lies in one configurable way."""

    def __init__(self, inner: LedgerSource) -> None:
        self.inner = inner
        self.blobs: dict[str, bytes | None] = {}
        self.streams: dict[str, list[bytes | None]] = {}
        self.entries: dict[str, list[SourceEntry]] = {}
        self.checkpoint: bytes | str | None = "real"
        self.bad_proof_index: int | None = None
        self.fail = False

    def blob(self, blob_id: str) -> bytes | None:
        if blob_id in self.blobs:
            return self.blobs[blob_id]
        return self.inner.blob(blob_id)

    def open_blob(self, blob_id: str) -> BlobStream | None:
        served = self.streams.get(blob_id)
        if served:  # the scripted answers for this blob, one per open, then the real one
            data = served.pop(0)
            return None if data is None else io.BytesIO(data)
        return self.inner.open_blob(blob_id)

    def entries_for_blob(self, blob_id: str) -> list[SourceEntry]:
        if self.fail:
            raise IntegrityError("index damaged")
        return self.entries.get(blob_id, self.inner.entries_for_blob(blob_id))

    def entries_of_kind(self, kind: str) -> list[SourceEntry]:
        return self.inner.entries_of_kind(kind)

    def latest_checkpoint(self) -> bytes | None:
        if self.checkpoint == "real":
            return self.inner.latest_checkpoint()
        return self.checkpoint  # type: ignore[return-value]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        proof = self.inner.inclusion_proof(index, size)
        if index == self.bad_proof_index:
            proof[0] = bytes(32)
        return proof


@pytest.fixture
def lying(golden: tuple[Path, cf.Recorded]) -> Iterator[tuple[LyingSource, Ledger, cf.Recorded]]:
    """A lying source over the golden ledger."""
    path, recorded = golden
    with Ledger.open(path) as ledger:
        yield LyingSource(LedgerSource(ledger)), ledger, recorded


def lied(source: LyingSource, release: str, trust: Any = POLICY) -> list[str]:
    """The codes of verifying through a lying source."""
    return codes(verify_release_chain(source, release, trust=trust, as_of=cf.AS_OF).findings)


def test_a_hidden_checkpoint_is_missing(lying: tuple[LyingSource, Ledger, cf.Recorded]) -> None:
    source, _, recorded = lying
    source.checkpoint = None
    assert lied(source, recorded.gate) == ["checkpoint_missing"]
    source.checkpoint = b"not a note\n"
    assert lied(source, recorded.gate) == ["checkpoint_invalid"]


def test_a_checkpoint_for_another_origin(lying: tuple[LyingSource, Ledger, cf.Recorded]) -> None:
    source, ledger, recorded = lying
    other = Checkpoint("ledger.example/elsewhere", ledger.size, ledger.root())
    source.checkpoint = sign_checkpoint(other, KEYS.log)
    assert lied(source, recorded.gate) == ["checkpoint_origin_mismatch"]


def test_a_checkpoint_signed_by_a_stranger(lying: tuple[LyingSource, Ledger, cf.Recorded]) -> None:
    source, ledger, recorded = lying
    forged = Checkpoint(cf.ORIGIN, ledger.size, ledger.root())
    source.checkpoint = sign_checkpoint(forged, cf.key("stranger"))
    assert lied(source, recorded.gate) == ["checkpoint_signature_invalid"]


def test_a_trace_blob_served_wrong_is_caught(
    lying: tuple[LyingSource, Ledger, cf.Recorded],
) -> None:
    source, ledger, recorded = lying
    trace = recorded.ids[kinds.TRACE_DATASET]
    data = ledger.objects.get(trace)
    source.streams[trace] = [data + b" "]
    assert lied(source, recorded.gate) == ["blob_hash_mismatch"]
    source.streams[trace] = [None]
    assert lied(source, recorded.gate) == ["blob_missing"]


@pytest.mark.parametrize(
    ("second", "expected"),
    [(None, "source_unreadable"), (b"[]", "bind_dataset_trace_changed")],
    ids=["gone", "other-bytes"],
)
def test_a_trace_blob_that_changes_after_its_hash_never_binds(
    lying: tuple[LyingSource, Ledger, cf.Recorded], second: bytes | None, expected: str
) -> None:
    # Deep verification reads the rows from a second stream: the blob may be gone by then, or
    # be other bytes (here: valid JSON with no rows at all).
    source, ledger, recorded = lying
    trace = recorded.ids[kinds.TRACE_DATASET]
    source.streams[trace] = [ledger.objects.get(trace), second]
    report = verify_release_chain(source, recorded.gate, trust=POLICY, as_of=cf.AS_OF, deep=True)
    assert codes(report.findings) == [expected]
    assert source.streams[trace] == []  # both opens were served


def test_an_old_checkpoint_leaves_the_gate_unproven(
    lying: tuple[LyingSource, Ledger, cf.Recorded],
) -> None:
    source, ledger, recorded = lying
    source.checkpoint = ledger.checkpoint(ledger.size - 1)
    assert lied(source, recorded.gate) == ["entry_not_checkpointed"]


def test_a_bad_inclusion_proof(lying: tuple[LyingSource, Ledger, cf.Recorded]) -> None:
    source, ledger, recorded = lying
    (entry,) = ledger.entries_for_blob(recorded.ids[kinds.DEPLOYMENT_MANIFEST])
    source.bad_proof_index = entry.index
    assert lied(source, recorded.gate) == ["inclusion_proof_invalid"]


def test_an_entry_that_is_not_in_the_log(lying: tuple[LyingSource, Ledger, cf.Recorded]) -> None:
    # The source claims the mapping was logged with the runtime's envelope.
    source, ledger, recorded = lying
    mapping = recorded.ids[kinds.SECTOR_MAPPING]
    (real,) = ledger.entries_for_blob(mapping)
    (runtime,) = ledger.entries_for_blob(recorded.ids[kinds.RUNTIME_PACKAGE])
    source.entries[mapping] = [replace(_source(real), envelope_id=runtime.envelope_id)]
    assert lied(source, recorded.gate) == [
        "statement_subject_mismatch",
        "parent_edges_invalid",
        "signature_threshold_not_met",
        "inclusion_proof_invalid",
    ]


def _source(entry: Any) -> SourceEntry:
    return SourceEntry(entry.index, entry.kind, entry.blob_id, entry.envelope_id)


def _served_envelope(source: LyingSource, entry: SourceEntry, data: bytes) -> SourceEntry:
    """Serve ``data`` as the envelope blob of a substitute for ``entry``."""
    envelope_id = hashlib.sha256(data).hexdigest()
    source.blobs[envelope_id] = data
    return replace(entry, envelope_id=envelope_id)


def test_an_envelope_that_does_not_parse(lying: tuple[LyingSource, Ledger, cf.Recorded]) -> None:
    source, ledger, recorded = lying
    mapping = recorded.ids[kinds.SECTOR_MAPPING]
    (real,) = ledger.entries_for_blob(mapping)
    source.entries[mapping] = [_served_envelope(source, _source(real), b"{}")]
    assert lied(source, recorded.gate) == ["envelope_invalid", "inclusion_proof_invalid"]


def test_an_envelope_of_another_type_or_payload(
    lying: tuple[LyingSource, Ledger, cf.Recorded],
) -> None:
    source, ledger, recorded = lying
    mapping = recorded.ids[kinds.SECTOR_MAPPING]
    (real,) = ledger.entries_for_blob(mapping)
    signer = KEYS.stage(kinds.SECTOR_MAPPING)
    other_type = Envelope(b"{}", "text/plain").signed_by(signer).to_json()
    source.entries[mapping] = [_served_envelope(source, _source(real), other_type)]
    assert lied(source, recorded.gate) == ["envelope_invalid", "inclusion_proof_invalid"]
    not_a_statement = Envelope(b"{}", PAYLOAD_TYPE).signed_by(signer).to_json()
    source.entries[mapping] = [_served_envelope(source, _source(real), not_a_statement)]
    assert lied(source, recorded.gate) == ["statement_invalid", "inclusion_proof_invalid"]


DEEP_JSON = b'{"a":' * 100_000  # the json module raises RecursionError on this


def test_deeply_nested_envelopes_and_statements_are_findings(
    lying: tuple[LyingSource, Ledger, cf.Recorded],
) -> None:
    # Envelope and statement bytes are untrusted: nesting that exhausts the parser's recursion
    # must be a finding, never an exception out of the verifier (or a CLI traceback).
    source, ledger, recorded = lying
    mapping = recorded.ids[kinds.SECTOR_MAPPING]
    (real,) = ledger.entries_for_blob(mapping)
    source.entries[mapping] = [_served_envelope(source, _source(real), DEEP_JSON)]
    assert lied(source, recorded.gate) == ["envelope_invalid", "inclusion_proof_invalid"]
    deep_payload = Envelope(DEEP_JSON, PAYLOAD_TYPE).to_json()
    source.entries[mapping] = [_served_envelope(source, _source(real), deep_payload)]
    assert lied(source, recorded.gate) == [
        "statement_invalid",
        "signature_threshold_not_met",
        "inclusion_proof_invalid",
    ]


def test_deeply_nested_manifest_blobs_are_findings(
    lying: tuple[LyingSource, Ledger, cf.Recorded],
) -> None:
    source, ledger, recorded = lying
    deep_id = hashlib.sha256(DEEP_JSON).hexdigest()
    (gate,) = ledger.entries_for_blob(recorded.gate)
    source.blobs[deep_id] = DEEP_JSON
    source.entries[deep_id] = [replace(_source(gate), blob_id=deep_id)]
    found = lied(source, deep_id)
    assert found[0] == "manifest_invalid"
    entry = SourceEntry(gate.index, kinds.RELEASE_GATE, deep_id, gate.envelope_id)
    assert codes(audit_bindings(source, [entry])) == ["manifest_invalid"]


def test_a_statement_from_another_ledger(lying: tuple[LyingSource, Ledger, cf.Recorded]) -> None:
    source, ledger, recorded = lying
    mapping = recorded.ids[kinds.SECTOR_MAPPING]
    (real,) = ledger.entries_for_blob(mapping)
    statement = RecordStatement(
        kinds.SECTOR_MAPPING, mapping, (), "ledger.example/elsewhere", cf.TIME, cf.TOOL
    )
    envelope = Envelope(statement.to_bytes(), PAYLOAD_TYPE).signed_by(
        KEYS.stage(kinds.SECTOR_MAPPING)
    )
    source.entries[mapping] = [_served_envelope(source, _source(real), envelope.to_json())]
    assert lied(source, recorded.gate) == ["statement_origin_mismatch", "inclusion_proof_invalid"]


def test_a_hidden_envelope(lying: tuple[LyingSource, Ledger, cf.Recorded]) -> None:
    source, ledger, recorded = lying
    (entry,) = ledger.entries_for_blob(recorded.ids[kinds.SECTOR_MAPPING])
    source.blobs[entry.envelope_id] = None
    assert lied(source, recorded.gate) == ["envelope_missing"]


def test_a_hidden_policy_record(lying: tuple[LyingSource, Ledger, cf.Recorded]) -> None:
    source, ledger, recorded = lying
    (policy_entry,) = ledger.entries_for_blob(POLICY.blob_id)
    source.blobs[policy_entry.blob_id] = None
    assert lied(source, recorded.gate) == ["policy_record_unreadable", "policy_rollback"]
    assert lied(source, recorded.gate, KEYS.root.public_key) == [
        "policy_record_unreadable",
        "policy_pin_mismatch",
    ]


def test_a_failing_source_is_one_finding(lying: tuple[LyingSource, Ledger, cf.Recorded]) -> None:
    source, _, recorded = lying
    source.fail = True
    assert lied(source, recorded.gate) == ["source_unreadable"]


def test_a_malformed_release_id_is_a_caller_error(golden: tuple[Path, cf.Recorded]) -> None:
    path, _ = golden
    with Ledger.open(path) as ledger, pytest.raises(ValueError, match="not a blob id"):
        verify(ledger, "release-alpha")


# -- records that were forced into the log -------------------------------------------------------


def _force(ledger: Ledger, kind: str, data: bytes, parents: list[Parent]) -> str:
    with ledger.writer(log_key=KEYS.log) as writer:
        blob_id = writer.put_blob(data)
        writer.record(
            kind=kind,
            blob_id=blob_id,
            parents=parents,
            signers=[KEYS.stage(kind)],
            time=cf.TIME,
            tool_version=cf.TOOL,
        )
    return blob_id


def test_forced_unparseable_and_stale_manifests(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, _ = copy
    mapping = _force(ledger, kinds.SECTOR_MAPPING, b'{"sector_id": 1}', [])
    payload = cf.build_factory().mapping.to_dict()
    payload["jurisdiction"] = "DE"
    stale_id = _force(ledger, kinds.SECTOR_MAPPING, json.dumps(payload).encode(), [])
    context, _ = open_context(LedgerSource(ledger), trust=POLICY, as_of=cf.AS_OF)
    assert codes(check_record(context, mapping, kinds.SECTOR_MAPPING).findings) == [
        "manifest_invalid"
    ]
    assert codes(check_record(context, stale_id, kinds.SECTOR_MAPPING).findings) == [
        "manifest_hash_mismatch"
    ]


def test_forced_wrong_parent_edges(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    training = cf.rehash(cf.build_factory().training, package_id="pkg-extra-parent")
    blob_id = _force(
        ledger,
        kinds.TRAINING_MANIFEST,
        cf.blob(training),
        [
            Parent(kinds.DATASET_REPORT, recorded.ids[kinds.DATASET_REPORT]),
            Parent(kinds.SECTOR_MAPPING, recorded.ids[kinds.SECTOR_MAPPING]),
        ],
    )
    context, _ = open_context(LedgerSource(ledger), trust=POLICY, as_of=cf.AS_OF)
    assert codes(check_record(context, blob_id, kinds.TRAINING_MANIFEST).findings) == [
        "parent_edges_invalid"
    ]


def test_a_record_before_any_policy_has_no_policy_in_effect(
    golden: tuple[Path, cf.Recorded],
) -> None:
    path, recorded = golden
    with Ledger.open(path) as ledger:
        context, _ = open_context(LedgerSource(ledger), trust=POLICY, as_of=cf.AS_OF)
        assert context.policies is not None
        (first,) = context.policies.policies
        late = PolicyChain((replace(first, log_index=ledger.size - 1),), ())
        moved = replace(context, policies=late)
        training = check_record(moved, recorded.ids[kinds.TRAINING_MANIFEST], "training_manifest")
    assert codes(training.findings) == ["no_policy_in_effect"]


def test_a_policy_without_the_role(tmp_path: Path) -> None:
    policy = replace(POLICY, roles=tuple(r for r in POLICY.roles if r.name != "sector_mapping"))
    ledger, recorded = cf.build_ledger(tmp_path, policy=policy)
    report = verify(ledger, recorded.gate, trust=policy)
    assert codes(report.findings) == ["role_missing"]
    assert report.findings[0].kind == kinds.SECTOR_MAPPING


def _chain_objects(ledger: Ledger, recorded: cf.Recorded) -> list[tuple[str, str]]:
    """(blob id, what) of every manifest, trace and envelope blob of the release chain."""
    blob_ids = [*recorded.ids.values(), *recorded.benchmarks]
    objects = [(blob_id, "blob") for blob_id in blob_ids]
    for blob_id in blob_ids:
        objects.extend((entry.envelope_id, blob_id) for entry in ledger.entries_for_blob(blob_id))
    return sorted(objects)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_byte_breaks_the_chain(
    golden: tuple[Path, cf.Recorded], tmp_path: Path, data: st.DataObject
) -> None:
    path, recorded = golden
    with Ledger.open(path) as original:
        target, owner = data.draw(st.sampled_from(_chain_objects(original, recorded)))
        size = len(original.objects.read_unverified(target))
    offset = data.draw(st.integers(min_value=0, max_value=size - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    workdir = Path(tempfile.mkdtemp(dir=tmp_path))
    with cf.copy_ledger(path, workdir / "ledger") as ledger:
        file = ledger.objects.path(target)
        os.chmod(file, 0o644)
        content = bytearray(file.read_bytes())
        content[offset] ^= 1 << bit
        file.write_bytes(bytes(content))
        report = verify(ledger, recorded.gate)
    assert not report.ok
    named = {finding.blob_id for finding in report.findings}
    assert (target if owner == "blob" else owner) in named


def test_a_release_name_must_be_the_gates_own_release_id(
    golden: tuple[Path, cf.Recorded],
) -> None:
    path, recorded = golden
    with Ledger.open(path) as ledger:
        source = LedgerSource(ledger)
        assert release_name_findings(source, recorded.gate, "release-alpha") == []
        (wrong,) = release_name_findings(source, recorded.gate, "release-beta")
        (not_gate,) = release_name_findings(source, recorded.ids[kinds.EVIDENCE_PACK], "x")
        (missing,) = release_name_findings(source, "ab" * 32, "x")
    assert (wrong.code, wrong.kind, wrong.blob_id) == (
        "ref_release_mismatch",
        kinds.RELEASE_GATE,
        recorded.gate,
    )
    assert "'release-beta'" in wrong.message and "'release-alpha'" in wrong.message
    assert not_gate.code == missing.code == "ref_release_mismatch"
    assert "cannot be confirmed" in not_gate.message
    assert "not stored" in missing.message


def test_every_verification_code_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "chain.md").read_text()
    assert [code for code in VERIFY_CODES if f"`{code}`" not in doc] == []


def test_a_non_policy_entry_offered_as_a_policy_record_is_refused(
    golden: tuple[Path, cf.Recorded],
) -> None:
    # The kind index is derived data: a record listed as a policy must itself be one.
    path, recorded = golden
    with Ledger.open(path) as ledger:
        source = LedgerSource(ledger)
        gate = source.entries_for_blob(recorded.gate)[0]
        records, findings = load_policy_records(source, [gate])
    assert records == []
    assert codes(findings) == ["policy_record_unreadable"]
    assert "not a trust policy" in findings[0].message
