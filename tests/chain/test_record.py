"""Tests for record_stage / record_trace_file / record_policy: refuse before writing anything."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import chain_fixtures as cf
import pytest
from chain_fixtures import skip_fsync  # noqa: F401  (autouse: no fsync in this module)

from customer_model_factory.chain import (
    ChainError,
    LedgerSource,
    check_stage,
    kinds,
    record_policy,
    record_stage,
    record_trace_file,
    verify_release_chain,
)
from customer_model_factory.chain.findings import codes
from customer_model_factory.chain.record import RECORD_CODES
from customer_model_factory.chain.source import BlobStream
from customer_model_factory.dataset_contract import validate_customer_trace_dataset
from customer_model_factory.ledger.errors import FormatError
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.policy import KeyEntry
from customer_model_factory.ledger.store import Ledger

KEYS = cf.Keys()
F = cf.build_factory()


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, cf.Recorded]:
    """One valid ledger per module; tests work on copies."""
    root = tmp_path_factory.mktemp("golden")
    ledger, recorded = cf.build_ledger(root)
    ledger.close()
    return root / "ledger", recorded


@pytest.fixture
def copy(golden: tuple[Path, cf.Recorded], tmp_path: Path) -> Iterator[tuple[Ledger, cf.Recorded]]:
    """A private, writable copy of the golden ledger."""
    path, recorded = golden
    with cf.copy_ledger(path, tmp_path / "ledger") as ledger:
        yield ledger, recorded


def attempt(ledger: Ledger, kind: str, data: bytes, parents: list[str]) -> list[str]:
    """Try record_stage; return the refusal codes (and check nothing was written)."""
    size = ledger.size
    blob_id = hashlib.sha256(data).hexdigest()
    stored_before = ledger.objects.contains(blob_id)
    with ledger.writer(log_key=KEYS.log) as writer:
        try:
            record_stage(
                writer,
                ledger,
                kind=kind,
                data=data,
                parents=parents,
                signers=[KEYS.stage(kind) if kind in kinds.KIND_SPECS else KEYS.root],
                time=cf.TIME,
                tool_version=cf.TOOL,
            )
        except ChainError as refused:
            assert writer.pending == 0
            found = codes(refused.findings)
            assert found == codes(check_stage(ledger, kind=kind, data=data, parents=parents))
        else:
            found = []
    if found:
        assert ledger.size == size
        assert ledger.objects.contains(blob_id) == stored_before
    return found


def test_a_new_valid_stage_is_recorded(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, _ = copy
    mapping = cf.rehash(F.mapping, jurisdiction="DE")
    data = cf.blob(mapping)
    assert check_stage(ledger, kind=kinds.SECTOR_MAPPING, data=data, parents=[]) == []
    assert attempt(ledger, kinds.SECTOR_MAPPING, data, []) == []
    (entry,) = ledger.entries_for_blob(hashlib.sha256(data).hexdigest())
    assert entry.kind == kinds.SECTOR_MAPPING
    assert ledger.statement(entry).parents == ()


def test_forged_parent_field_is_refused(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    forged = cf.rehash(F.training, dataset_hash="f" * 64, package_id="pkg-forged")
    forged.verify_hash()
    parents = [recorded.ids[kinds.DATASET_REPORT]]
    assert attempt(ledger, kinds.TRAINING_MANIFEST, cf.blob(forged), parents) == [
        "bind_training_dataset_hash"
    ]


def test_forged_dataset_report_is_refused_against_the_rows(
    copy: tuple[Ledger, cf.Recorded],
) -> None:
    ledger, recorded = copy
    forged = replace(F.report, row_count=2)
    trace = [recorded.ids[kinds.TRACE_DATASET]]
    assert attempt(ledger, kinds.DATASET_REPORT, cf.blob(forged), trace) == ["bind_dataset_counts"]


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("not_a_kind", b"{}", ["kind_not_recordable"]),
        (kinds.PROMOTION, b"{}", ["kind_not_recordable"]),
        (kinds.SECTOR_MAPPING, b"[1, 2]", ["manifest_invalid"]),
        (kinds.SECTOR_MAPPING, b'{"a": 1, "a": 2}', ["manifest_invalid"]),
        (kinds.SECTOR_MAPPING, b"\xff\xfe", ["manifest_invalid"]),
        (kinds.SECTOR_MAPPING, b'{"sector_id": NaN}', ["manifest_invalid"]),
        (kinds.SECTOR_MAPPING, b'{"sector_id": "x"}', ["manifest_invalid"]),
    ],
    ids=["unknown", "promotion", "array", "duplicate-key", "not-utf8", "nan", "missing-fields"],
)
def test_unparseable_manifests_are_refused(
    copy: tuple[Ledger, cf.Recorded], kind: str, data: bytes, expected: list[str]
) -> None:
    ledger, _ = copy
    assert attempt(ledger, kind, data, []) == expected


def test_wrong_self_hash_is_refused(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, _ = copy
    payload = F.mapping.to_dict()
    payload["jurisdiction"] = "DE"  # self-hash not recomputed
    data = json.dumps(payload).encode()
    assert attempt(ledger, kinds.SECTOR_MAPPING, data, []) == ["manifest_hash_mismatch"]


def test_already_recorded_is_refused(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    parents = [recorded.ids[kinds.DATASET_REPORT]]
    assert attempt(ledger, kinds.TRAINING_MANIFEST, cf.blob(F.training), parents) == [
        "already_recorded"
    ]


def test_parent_problems_are_refused(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    training = cf.blob(cf.rehash(F.training, package_id="pkg-2"))
    report = recorded.ids[kinds.DATASET_REPORT]
    mapping = recorded.ids[kinds.SECTOR_MAPPING]
    assert attempt(ledger, kinds.TRAINING_MANIFEST, training, ["0" * 64]) == ["parent_not_logged"]
    assert attempt(ledger, kinds.TRAINING_MANIFEST, training, ["nope"]) == ["parent_not_logged"]
    assert attempt(ledger, kinds.TRAINING_MANIFEST, training, [mapping]) == ["parent_kind_mismatch"]
    assert attempt(ledger, kinds.TRAINING_MANIFEST, training, []) == ["parent_edges_invalid"]
    assert attempt(ledger, kinds.TRAINING_MANIFEST, training, [report, report]) == [
        "parent_edges_invalid"
    ]


def test_a_tampered_parent_is_refused(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    cf.tamper_object(ledger, recorded.ids[kinds.DATASET_REPORT])
    training = cf.blob(cf.rehash(F.training, package_id="pkg-2"))
    parents = [recorded.ids[kinds.DATASET_REPORT]]
    assert attempt(ledger, kinds.TRAINING_MANIFEST, training, parents) == ["parent_invalid"]


def canonical(rows: list[dict[str, object]]) -> bytes:
    """Return the canonical trace blob of ``rows`` (reference section 1.4)."""
    return json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str).encode()


def test_trace_bytes_are_recorded_only_in_canonical_form(
    copy: tuple[Ledger, cf.Recorded],
) -> None:
    ledger, _ = copy
    rows = cf.trace_rows()[:1]
    assert attempt(ledger, kinds.TRACE_DATASET, cf.trace_bytes(rows), []) == ["trace_not_canonical"]
    assert attempt(ledger, kinds.TRACE_DATASET, b'{"ok": 1}\n{"broken"\n', []) == [
        "manifest_invalid"
    ]
    assert attempt(ledger, kinds.TRACE_DATASET, canonical(rows), []) == []


def record_file(ledger: Ledger, path: Path) -> str:
    """Record the trace file at ``path`` and return its blob id (ChainError if refused)."""
    with ledger.writer(log_key=KEYS.log) as writer:
        return record_trace_file(
            writer,
            ledger,
            path=path,
            signers=[KEYS.stage(kinds.TRACE_DATASET)],
            time=cf.TIME,
            tool_version=cf.TOOL,
        ).blob_id


def test_trace_files_are_stored_as_the_canonical_array_of_their_rows(
    copy: tuple[Ledger, cf.Recorded], tmp_path: Path
) -> None:
    ledger, _ = copy
    rows = [{**row, "prompt": f"caf\u00e9 {n} \U0001f600"} for n, row in enumerate(cf.trace_rows())]
    path = tmp_path / "array.json"
    path.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    blob_id = record_file(ledger, path)
    stored = ledger.objects.get(blob_id)
    assert stored == canonical(rows)
    assert blob_id == hashlib.sha256(stored).hexdigest()
    report = validate_customer_trace_dataset(rows, cf.workspace())
    assert blob_id == report.dataset_hash  # the report names its blob by dataset_hash
    # The same rows as JSON Lines are the same blob: already recorded.
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_bytes(cf.trace_bytes(rows))
    with pytest.raises(ChainError) as refused:
        record_file(ledger, jsonl)
    assert codes(refused.value.findings) == ["already_recorded"]


def test_malformed_trace_files_are_refused(
    copy: tuple[Ledger, cf.Recorded], tmp_path: Path
) -> None:
    ledger, _ = copy
    size = ledger.size
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"[1]\n")
    with pytest.raises(ChainError) as refused:
        record_file(ledger, bad)
    assert codes(refused.value.findings) == ["manifest_invalid"]
    assert ledger.size == size


def test_recording_a_dataset_report_revalidates_its_rows(
    copy: tuple[Ledger, cf.Recorded],
) -> None:
    ledger, recorded = copy
    trace = recorded.ids[kinds.TRACE_DATASET]
    forged = replace(F.report, row_count=F.report.row_count + 1)
    assert forged.dataset_hash == trace
    assert attempt(ledger, kinds.DATASET_REPORT, cf.blob(forged), [trace]) == [
        "bind_dataset_counts"
    ]


def _rows_in_canonical_form(rows: list[dict[str, object]]) -> bytes:
    return json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("swap", "expected"),
    [("rewrite", "bind_dataset_trace_changed"), ("rename", "bind_dataset_hash")],
)
def test_the_rows_bound_at_recording_are_the_stored_blob(
    copy: tuple[Ledger, cf.Recorded], monkeypatch: pytest.MonkeyPatch, swap: str, expected: str
) -> None:
    # A report on rows the stored trace blob does not hold. Whoever can write the object store
    # puts exactly those rows at the blob's path as soon as the recorder has opened it.
    ledger, recorded = copy
    trace = recorded.ids[kinds.TRACE_DATASET]
    rows = cf.trace_rows()
    rows[0] = {**rows[0], "prompt": "a prompt the stored trace blob does not hold"}
    forged = validate_customer_trace_dataset(rows, cf.workspace())
    assert forged.dataset_hash != trace
    path = ledger.objects.path(trace)
    real_open = LedgerSource.open_blob
    swapped: list[Path] = []

    def open_then_swap(self: LedgerSource, blob_id: str) -> BlobStream | None:
        stream = real_open(self, blob_id)
        if blob_id == trace and not swapped:
            swapped.append(path)
            if swap == "rewrite":  # the same file, new bytes: the hash of what is read differs
                os.chmod(path, 0o644)
                path.write_bytes(_rows_in_canonical_form(rows))
            else:  # another file at the path: the open stream still reads the blob
                other = path.with_name("swapped")
                other.write_bytes(_rows_in_canonical_form(rows))
                os.replace(other, path)
        return stream

    monkeypatch.setattr(LedgerSource, "open_blob", open_then_swap)
    size = ledger.size
    with ledger.writer(log_key=KEYS.log) as writer, pytest.raises(ChainError) as refused:
        record_stage(
            writer,
            ledger,
            kind=kinds.DATASET_REPORT,
            data=cf.blob(forged),
            parents=[trace],
            signers=[KEYS.stage(kinds.DATASET_REPORT)],
            time=cf.TIME,
            tool_version=cf.TOOL,
        )
    assert swapped == [path]
    assert codes(refused.value.findings) == [expected]
    assert ledger.size == size
    # Now the swapped-in file sits at the path, and it is not the blob, for every later reader.
    assert attempt(ledger, kinds.DATASET_REPORT, cf.blob(forged), [trace]) == [
        "bind_dataset_trace_changed"
    ]


def test_a_damaged_or_missing_trace_parent_is_refused(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, recorded = copy
    trace = recorded.ids[kinds.TRACE_DATASET]
    report = cf.blob(F.report) + b" "  # the honest report, as a blob not recorded yet
    cf.tamper_object(ledger, trace)
    # Its one read hashes what it parses: damage is caught there, not by a second read.
    assert attempt(ledger, kinds.DATASET_REPORT, report, [trace]) == ["bind_dataset_trace_changed"]
    ledger.objects.path(trace).unlink()
    assert attempt(ledger, kinds.DATASET_REPORT, report, [trace]) == ["parent_invalid"]


# -- trust-policy versions ----------------------------------------------------------------------


def add_policy(ledger: Ledger, policy: object, signers: list[PrivateKey]) -> list[str]:
    """Try record_policy; return the refusal codes ([] when recorded)."""
    size = ledger.size
    with ledger.writer(log_key=KEYS.log) as writer:
        try:
            record_policy(
                writer,
                ledger,
                policy=policy,  # type: ignore[arg-type]
                signers=signers,
                time=cf.TIME,
                tool_version=cf.TOOL,
            )
        except ChainError as refused:
            assert ledger.size == size
            return codes(refused.findings)
    return []


def test_a_rotated_root_needs_old_and_new_root_signatures(
    copy: tuple[Ledger, cf.Recorded],
) -> None:
    ledger, recorded = copy
    new_root = cf.key("root-2")
    v1 = cf.make_policy(KEYS)
    v2 = v1.rotated(
        KEYS.root.public_key.key_id, KeyEntry.of(new_root.public_key, "root-2"), expires=cf.EXPIRES
    )
    assert add_policy(ledger, v2, [new_root]) == ["policy_old_root_threshold"]
    assert add_policy(ledger, v2, [KEYS.root]) == ["policy_new_root_threshold"]
    assert add_policy(ledger, v2, [KEYS.root, new_root]) == []
    # The release still verifies from the original pinned root key, through the rotation.
    report = verify_release_chain(
        LedgerSource(ledger), recorded.gate, trust=KEYS.root.public_key, as_of=cf.AS_OF
    )
    assert report.findings == ()
    assert report.policy_version == 2


def test_policy_versions_must_follow_on(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, _ = copy
    v1 = cf.make_policy(KEYS)
    v3 = replace(v1.with_threshold("promotion", 3, expires=cf.EXPIRES), version=3)
    assert add_policy(ledger, v3, [KEYS.root]) == ["policy_version_gap"]
    assert add_policy(ledger, v1, [KEYS.root]) == ["policy_rollback"]


def test_policy_origin_must_be_the_ledgers(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, _ = copy
    v2 = replace(
        cf.make_policy(KEYS).with_threshold("promotion", 3, expires=cf.EXPIRES),
        origin="ledger.example/elsewhere",
    )
    assert add_policy(ledger, v2, [KEYS.root]) == [
        "policy_origin_mismatch",
        "policy_statement_mismatch",
        "policy_origin_mismatch",
    ]


def test_the_first_policy_must_be_self_signed(tmp_path: Path) -> None:
    ledger = Ledger.create(tmp_path / "ledger", origin=cf.ORIGIN, log_key=KEYS.log.public_key)
    policy = cf.make_policy(KEYS)
    assert add_policy(ledger, policy, [KEYS.promoters[0]]) == ["policy_new_root_threshold"]
    assert add_policy(ledger, policy, [KEYS.root]) == []


def test_every_refusal_code_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "chain.md").read_text()
    assert [code for code in RECORD_CODES if f"`{code}`" not in doc] == []


def test_bad_statement_fields_are_refused_before_staging(copy: tuple[Ledger, cf.Recorded]) -> None:
    ledger, _ = copy
    data = cf.blob(cf.rehash(F.mapping, jurisdiction="FR"))
    blob_id = hashlib.sha256(data).hexdigest()
    with ledger.writer(log_key=KEYS.log) as writer:
        for time, signers, error in (
            ("2026-05-18", [KEYS.stage(kinds.SECTOR_MAPPING)], FormatError),
            (cf.TIME, [], ValueError),
        ):
            with pytest.raises(error):
                record_stage(
                    writer,
                    ledger,
                    kind=kinds.SECTOR_MAPPING,
                    data=data,
                    parents=[],
                    signers=signers,
                    time=time,
                    tool_version=cf.TOOL,
                )
            assert not writer.contains(blob_id)
            assert writer.pending == 0
