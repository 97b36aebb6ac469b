"""Tests for customer_model_factory._manifest: the shared base and its scoped hash memo."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory import _manifest
from customer_model_factory._hashing import HashMismatchError, stable_hash
from customer_model_factory._manifest import memoized_hashes
from customer_model_factory.benchmark_selection import CustomerBenchmarkResult
from factory_fixtures import benchmark_result, ready_selection

TEXT = st.text(max_size=12)
UNIT = st.floats(min_value=0.0, max_value=1.0)


def fresh(manifest: Any) -> str:
    """The self-hash recomputed from the fields as they are now, bypassing any memo."""
    return stable_hash(manifest._hash_payload())


def count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make ``_manifest.stable_hash`` record each payload it hashes; return the record."""
    hashed: list[Any] = []

    def recording(payload: Any) -> str:
        hashed.append(payload)
        return stable_hash(payload)

    monkeypatch.setattr(_manifest, "stable_hash", recording)
    return hashed


@settings(max_examples=40, deadline=None)
@given(benchmark_id=TEXT, f1=UNIT, changed=UNIT, claim=TEXT)
def test_a_memoized_hash_is_the_fresh_hash_and_a_changed_copy_hashes_differently(
    benchmark_id: str, f1: float, changed: float, claim: str
) -> None:
    result = benchmark_result(benchmark_id, f1=f1)
    copy = replace(result, metrics=replace(result.metrics, f1=changed), claim_boundary=claim)
    with memoized_hashes():
        memoized = result.recompute_hash()
        assert result.recompute_hash() == memoized == fresh(result) == result.result_hash
        # The memo is keyed by instance, not by equality: a changed copy has its own hash.
        assert copy.recompute_hash() == fresh(copy)
        if (changed, claim) != (f1, result.claim_boundary):
            assert copy.recompute_hash() != memoized
    assert result.recompute_hash() == memoized


def test_inside_a_scope_each_instance_is_hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    selection = ready_selection()
    hashed = count_hashing(monkeypatch)
    with memoized_hashes():
        selection.verify_hash()  # hashes every candidate, then the selection
        first = len(hashed)
        selection.verify_hash()
        for candidate in selection.candidates:
            candidate.recompute_hash()
        assert len(hashed) == first == len(selection.candidates) + 1
    selection.recompute_hash()
    assert len(hashed) == first + 1  # outside the scope nothing is remembered


def test_outside_a_scope_a_change_in_place_is_always_seen() -> None:
    result = benchmark_result()
    before = result.recompute_hash()
    result.metrics.severity_counts["critical"] += 1  # dicts inside a frozen manifest
    assert result.recompute_hash() == fresh(result) != before
    with pytest.raises(HashMismatchError):
        result.verify_hash()


def test_scopes_nest_and_end_with_their_block(monkeypatch: pytest.MonkeyPatch) -> None:
    result = benchmark_result()
    hashed = count_hashing(monkeypatch)
    with memoized_hashes():
        result.recompute_hash()
        with memoized_hashes():
            result.recompute_hash()  # the inner scope starts empty
            result.recompute_hash()
        result.recompute_hash()  # the outer memo is back
        assert len(hashed) == 2
    with pytest.raises(RuntimeError), memoized_hashes():
        result.recompute_hash()
        raise RuntimeError("left by an exception")
    assert _manifest._MEMO.get() is None
    assert len(hashed) == 3


def test_a_scope_belongs_to_its_own_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    result = benchmark_result()
    hashed = count_hashing(monkeypatch)
    seen: list[object] = []
    with memoized_hashes():
        result.recompute_hash()
        worker = threading.Thread(target=lambda: seen.append(_manifest._MEMO.get()))
        worker.start()
        worker.join()
        result.recompute_hash()
    assert seen == [None] and len(hashed) == 1


def test_from_dict_verified_still_checks_a_stale_hash_inside_a_scope() -> None:
    result = benchmark_result()
    forged = replace(result, claim_boundary="another claim").to_dict()  # stale result_hash
    with memoized_hashes():
        result.recompute_hash()
        with pytest.raises(HashMismatchError):
            CustomerBenchmarkResult.from_dict_verified(forged)
