"""Tests for BundleSource: the ChainSource protocol served from a decoded bundle."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import bundle_fixtures as bf
import chain_fixtures as cf
import pytest

from customer_model_factory.bundle.export import export_bundle
from customer_model_factory.bundle.format import Bundle
from customer_model_factory.bundle.source import BundleSource
from customer_model_factory.bundle.verify import verify_bundle
from customer_model_factory.chain import LedgerSource, kinds
from customer_model_factory.chain import verify as verify_module
from customer_model_factory.chain.findings import codes
from customer_model_factory.chain.source import ChainSource
from customer_model_factory.dataset_contract import validate_customer_trace_dataset
from customer_model_factory.ledger.errors import LedgerError
from customer_model_factory.ledger.objects import hash_file


def test_it_answers_like_the_ledger_it_came_from(
    template: bf.Promoted, release_bundle: Bundle
) -> None:
    with template.open() as ledger, BundleSource(release_bundle) as source:
        protocol: ChainSource = source  # a structural check, for mypy
        ours, theirs = protocol, LedgerSource(ledger)
        for entry in release_bundle.entries:
            blob_id = entry.record.blob_id
            assert list(ours.entries_for_blob(blob_id)) == list(theirs.entries_for_blob(blob_id))
            assert ours.blob(blob_id) == theirs.blob(blob_id)
            assert ours.blob(entry.record.envelope_id) == theirs.blob(entry.record.envelope_id)
            size = release_bundle.claimed_checkpoint.size
            assert list(ours.inclusion_proof(entry.index, size)) == theirs.inclusion_proof(
                entry.index, size
            )
        for kind in ("trust_policy", kinds.PROMOTION, kinds.BENCHMARK_RESULT):
            assert ours.entries_of_kind(kind) == tuple(theirs.entries_of_kind(kind))
        assert ours.latest_checkpoint() == theirs.latest_checkpoint()
        assert ours.blob("0" * 64) is None and ours.entries_for_blob("0" * 64) == ()


def test_blob_paths_are_private_files_removed_on_close(release_bundle: Bundle) -> None:
    trace = next(e for e in release_bundle.entries if e.record.kind == kinds.TRACE_DATASET)
    with BundleSource(release_bundle) as source:
        path = source.blob_path(trace.record.blob_id)
        assert path is not None and path.name == trace.record.blob_id
        assert hashlib.sha256(path.read_bytes()).hexdigest() == trace.record.blob_id
        assert source.blob_path(trace.record.blob_id) == path  # written once
        assert path.stat().st_mode & 0o777 == 0o400
        assert source.blob_path("0" * 64) is None
    assert not path.exists()


def test_blob_paths_come_from_given_files(release_bundle: Bundle, tmp_path: Path) -> None:
    trace = next(e for e in release_bundle.entries if e.record.kind == kinds.TRACE_DATASET)
    data = release_bundle.blob(trace.record.blob_id)
    assert data is not None
    given = tmp_path / "trace.jsonl"
    given.write_bytes(data)
    with BundleSource(release_bundle, files={trace.record.blob_id: given}) as source:
        assert source.blob_path(trace.record.blob_id) == given
    assert given.exists()  # the caller's file is not the source's to remove


def test_omitted_blobs_have_no_bytes_and_no_path(template: bf.Promoted) -> None:
    bundle = bf.export(template, include_data=False)
    (trace,) = bundle.omitted
    with BundleSource(bundle) as source:
        assert source.blob(trace) is None and source.blob_path(trace) is None
        assert [e.kind for e in source.entries_for_blob(trace)] == [kinds.TRACE_DATASET]


def test_only_carried_proofs_are_served(release_bundle: Bundle) -> None:
    size = release_bundle.claimed_checkpoint.size
    with BundleSource(release_bundle) as source:
        with pytest.raises(LedgerError, match="tree size"):
            source.inclusion_proof(0, size - 1)
        with pytest.raises(LedgerError, match="no entry"):
            source.inclusion_proof(size + 5, size)


def _other_rows() -> list[dict[str, Any]]:
    """Trace rows that differ from the factory's in one prompt."""
    rows = cf.trace_rows()
    rows[0] = {**rows[0], "prompt": "a prompt the signed trace blob does not hold"}
    return rows


def _report_on_other_rows(kind: str, manifest: Any) -> Any:
    """Replace the dataset report by an honest report on ``_other_rows()``."""
    if kind == kinds.DATASET_REPORT:
        return validate_customer_trace_dataset(_other_rows(), cf.workspace())
    return manifest


@pytest.mark.parametrize("quarantined", [True, False], ids=["given-file", "scratch-file"])
def test_the_trace_rows_verified_are_the_bundle_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quarantined: bool
) -> None:
    # A release whose dataset report names rows the signed trace blob does not hold. The file
    # its rows are streamed from (the import's quarantine file, or the source's own scratch
    # copy) is swapped for exactly those rows right after the verifier hashed it.
    factory = cf.build_factory(forge=_report_on_other_rows)
    with bf.no_fsync():
        ledger, recorded = cf.build_ledger(
            tmp_path,
            factory=factory,
            policy=bf.policy_with_witness(),
            forced=frozenset({kinds.DATASET_REPORT}),
        )
    with ledger:
        bundle = export_bundle(
            ledger, recorded.gate, trust=bf.ROOT, as_of=bf.AS_OF, require_promoted=False
        )
    trace = recorded.ids[kinds.TRACE_DATASET]
    files = {}
    if quarantined:
        data = bundle.blob(trace)
        assert data is not None
        (tmp_path / trace).write_bytes(data)
        files[trace] = tmp_path / trace

    def verify() -> list[str]:
        report = verify_bundle(bundle, trust=bf.ROOT, as_of=bf.AS_OF, blob_files=files)
        return [code for code in codes(report.findings) if code.startswith("bind_")]

    assert verify() == ["bind_dataset_hash"]

    def hash_then_swap(path: Path) -> str:
        digest = hash_file(path)
        if Path(path).name == trace:
            os.chmod(path, 0o644)
            Path(path).write_bytes(cf.trace_bytes(_other_rows()))
        return digest

    monkeypatch.setattr(verify_module, "hash_file", hash_then_swap)
    assert verify() == ["bind_dataset_trace_changed"]
