"""Tests for BundleSource: the ChainSource protocol served from a decoded bundle."""

from __future__ import annotations

import hashlib
import io
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
from customer_model_factory.chain.findings import codes
from customer_model_factory.chain.source import BlobStream, ChainSource
from customer_model_factory.dataset_contract import validate_customer_trace_dataset
from customer_model_factory.ledger.errors import LedgerError


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
            mine, stored = ours.open_blob(blob_id), theirs.open_blob(blob_id)
            assert mine is not None and stored is not None
            with mine, stored:
                assert mine.read() == stored.read()
            size = release_bundle.claimed_checkpoint.size
            assert list(ours.inclusion_proof(entry.index, size)) == theirs.inclusion_proof(
                entry.index, size
            )
        for kind in ("trust_policy", kinds.PROMOTION, kinds.BENCHMARK_RESULT):
            assert ours.entries_of_kind(kind) == tuple(theirs.entries_of_kind(kind))
        assert ours.latest_checkpoint() == theirs.latest_checkpoint()
        assert ours.blob("0" * 64) is None and ours.entries_for_blob("0" * 64) == ()


def _trace_id(bundle: Bundle) -> str:
    """The blob id of the bundle's trace dataset."""
    return next(e.record.blob_id for e in bundle.entries if e.record.kind == kinds.TRACE_DATASET)


def test_open_blob_serves_the_carried_bytes_from_memory(release_bundle: Bundle) -> None:
    trace = _trace_id(release_bundle)
    data = release_bundle.blob(trace)
    assert data is not None and hashlib.sha256(data).hexdigest() == trace
    with BundleSource(release_bundle) as source:
        first, second = source.open_blob(trace), source.open_blob(trace)
        assert isinstance(first, io.BytesIO) and isinstance(second, io.BytesIO)
        assert first.read(10) == data[:10]
        first.seek(0)
        first.write(b"scribbled")  # a reader's stream is its own: the next one is unchanged
        assert second.read() == data  # not moved by reading the first
        third = source.open_blob(trace)
        assert third is not None and third.read() == data
        assert source.open_blob("0" * 64) is None


def test_open_blob_reads_a_given_file(release_bundle: Bundle, tmp_path: Path) -> None:
    trace = _trace_id(release_bundle)
    data = release_bundle.blob(trace)
    assert data is not None
    given = tmp_path / "trace.jsonl"
    given.write_bytes(data)
    with BundleSource(release_bundle, files={trace: given}) as source:
        stream = source.open_blob(trace)
        assert isinstance(stream, io.FileIO) and stream.name == given
        with stream:
            assert stream.read() == data
        given.unlink()
        with pytest.raises(FileNotFoundError):  # OSError: verification's source_unreadable
            source.open_blob(trace)


def test_omitted_blobs_have_no_bytes_and_no_stream(template: bf.Promoted, tmp_path: Path) -> None:
    bundle = bf.export(template, include_data=False)
    (trace,) = bundle.omitted
    given = tmp_path / "trace.jsonl"
    given.write_bytes(b"[]")
    # A file named for a blob the bundle does not carry is not served in its place.
    with BundleSource(bundle, files={trace: given}) as source:
        assert source.blob(trace) is None and source.open_blob(trace) is None
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


@pytest.mark.parametrize("quarantined", [True, False], ids=["given-file", "in-memory"])
def test_the_trace_rows_verified_are_the_bundle_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quarantined: bool
) -> None:
    # A release whose dataset report names rows the signed trace blob does not hold. Right
    # after the verifier hashed the trace, the import's quarantine file is swapped for exactly
    # those rows, or (carried bytes cannot change) a source serves them at the next open.
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

    real_open = BundleSource.open_blob
    opens: list[str] = []

    def open_swapped_after_the_first(self: BundleSource, blob_id: str) -> BlobStream | None:
        if blob_id == trace:
            opens.append(blob_id)
            if len(opens) == 2 and quarantined:
                files[trace].write_bytes(cf.trace_bytes(_other_rows()))
            elif len(opens) == 2:
                return io.BytesIO(cf.trace_bytes(_other_rows()))
        return real_open(self, blob_id)

    monkeypatch.setattr(BundleSource, "open_blob", open_swapped_after_the_first)
    assert verify() == ["bind_dataset_trace_changed"]
    assert len(opens) == 2  # hashed once, then its rows read from other bytes
