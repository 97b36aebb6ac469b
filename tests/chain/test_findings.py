"""Tests for ChainFinding, Where and ChainError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_model_factory.chain.findings import (
    ERROR,
    WARNING,
    ChainError,
    ChainFinding,
    Where,
    codes,
    error,
)


def test_error_findings_block_and_warnings_do_not() -> None:
    assert error("x", "m").blocking
    assert not ChainFinding("x", WARNING, "m").blocking


def test_invalid_findings_are_refused() -> None:
    with pytest.raises(ValueError, match="severity"):
        ChainFinding("x", "info", "m")
    with pytest.raises(ValueError, match="code"):
        ChainFinding("", ERROR, "m")


def test_where_places_findings() -> None:
    finding = Where("a" * 64, "release_gate", 7).error("blob_missing", "gone")
    assert finding == ChainFinding("blob_missing", ERROR, "gone", "a" * 64, "release_gate", 7)


@given(
    code=st.from_regex(r"[a-z_]{1,20}", fullmatch=True),
    message=st.text(),
    blob_id=st.text(alphabet="0123456789abcdef", max_size=64),
    index=st.none() | st.integers(min_value=0),
    severity=st.sampled_from([ERROR, WARNING]),
)
def test_to_dict_round_trips_through_json(
    code: str, message: str, blob_id: str, index: int | None, severity: str
) -> None:
    finding = ChainFinding(code, severity, message, blob_id=blob_id, kind="k", index=index)
    assert ChainFinding(**json.loads(json.dumps(finding.to_dict()))) == finding


def test_chain_error_carries_every_finding() -> None:
    findings = [error("a_code", "first"), error("b_code", "second")]
    refused = ChainError(findings)
    assert codes(refused.findings) == ["a_code", "b_code"]
    assert "a_code: first" in str(refused) and "b_code: second" in str(refused)
    with pytest.raises(ValueError, match="at least one"):
        ChainError([])
