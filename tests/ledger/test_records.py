"""Tests for the leaf record bytes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger.errors import FormatError
from customer_model_factory.ledger.records import LeafRecord, validate_kind

BLOB = "a" * 64
ENV = "0123456789abcdef" * 4

kinds = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=64)
ids = st.binary(min_size=32, max_size=32).map(bytes.hex)


def test_exact_bytes() -> None:
    record = LeafRecord("dataset_report", BLOB, ENV)
    expected = b"cmf-leaf/v1\ndataset_report\n" + BLOB.encode() + b"\n" + ENV.encode() + b"\n"
    assert record.to_bytes() == expected
    assert len(expected) == 12 + len("dataset_report") + 1 + 65 + 65


@settings(max_examples=200)
@given(kind=kinds, blob_id=ids, envelope_id=ids)
def test_round_trip(kind: str, blob_id: str, envelope_id: str) -> None:
    record = LeafRecord(kind, blob_id, envelope_id)
    assert LeafRecord.from_bytes(record.to_bytes()) == record


@settings(max_examples=200)
@given(kind=kinds, blob_id=ids, envelope_id=ids, data=st.data())
def test_any_single_byte_change_is_rejected_or_changes_the_record(
    kind: str, blob_id: str, envelope_id: str, data: st.DataObject
) -> None:
    record = LeafRecord(kind, blob_id, envelope_id)
    raw = bytearray(record.to_bytes())
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]))
    try:
        parsed = LeafRecord.from_bytes(bytes(raw))
    except FormatError:
        return
    assert parsed != record
    assert parsed.to_bytes() == bytes(raw)  # canonical: one record, one encoding


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"cmf-leaf/v2\nk\n" + BLOB.encode() + b"\n" + ENV.encode() + b"\n",
        b"cmf-leaf/v1\nk\n" + BLOB.encode() + b"\n" + ENV.encode(),  # no final newline
        b"cmf-leaf/v1\nk\n" + BLOB.encode() + b"\n" + ENV.encode() + b"\n\n",  # extra line
        b"cmf-leaf/v1\nk\r\n" + BLOB.encode() + b"\n" + ENV.encode() + b"\n",
        b"cmf-leaf/v1\nK\n" + BLOB.encode() + b"\n" + ENV.encode() + b"\n",
        b"cmf-leaf/v1\n\n" + BLOB.encode() + b"\n" + ENV.encode() + b"\n",
        b"cmf-leaf/v1\n" + b"k" * 65 + b"\n" + BLOB.encode() + b"\n" + ENV.encode() + b"\n",
        b"cmf-leaf/v1\nk\n" + BLOB.upper().encode() + b"\n" + ENV.encode() + b"\n",
        b"cmf-leaf/v1\nk\n" + BLOB[:-1].encode() + b"\n" + ENV.encode() + b"\n",
        b"cmf-leaf/v1\nk\n" + ENV.encode() + b"\n",
    ],
)
def test_malformed_records_are_rejected(data: bytes) -> None:
    with pytest.raises(FormatError):
        LeafRecord.from_bytes(data)


@pytest.mark.parametrize("kind", ["", "UPPER", "with space", "x" * 65, "é", "a/b", "a\n"])
def test_invalid_kind(kind: str) -> None:
    with pytest.raises(FormatError):
        validate_kind(kind)
    with pytest.raises(FormatError):
        LeafRecord(kind, BLOB, ENV)


def test_invalid_ids_in_constructor() -> None:
    with pytest.raises(FormatError, match="blob id"):
        LeafRecord("k", "A" * 64, ENV)
    with pytest.raises(FormatError, match="envelope id"):
        LeafRecord("k", BLOB, "0" * 63)


def test_from_bytes_refuses_text() -> None:
    with pytest.raises(FormatError, match="expected bytes"):
        LeafRecord.from_bytes("cmf-leaf/v1\n")  # type: ignore[arg-type]


def test_known_answer_from_the_format_doc() -> None:
    """docs/ledger-format.md section 5: the leaf of the section 4.2 envelope and its hash."""
    record = LeafRecord(
        "dataset_report",
        "52fdd7220653b7659e70662f4a804fc9be33c1cb65035b5b3f59466b4769267f",
        "5e348fcb3edf886b7931826f1e71c304d73099aeae42bd8eb0c82dd23c2c7364",
    )
    leaf = record.to_bytes()
    assert len(leaf) == 157
    assert (
        hashlib.sha256(b"\x00" + leaf).hexdigest()
        == "f42a3e797aa38450b5b48a83a72be199419619173aeda921ec87769ae1b5ec65"
    )
