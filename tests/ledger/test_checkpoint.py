"""Tests for ledger.checkpoint: C2SP tlog-checkpoint text and signed checkpoints."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    open_checkpoint,
    sign_checkpoint,
)
from customer_model_factory.ledger.errors import FormatError, SignatureError
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.note import (
    Note,
    cosign,
    format_note,
    parse_note,
    sign_note,
    verify_cosignature,
)

# prior-art 4.3: RFC 8032 TEST 1 as the log key of ledger.example/evidence; root of size 7.
TEST1 = PrivateKey.from_seed(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
)
TEST2 = PrivateKey.from_seed(
    bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
)
ORIGIN = "ledger.example/evidence"
ROOT7 = base64.b64decode("kTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=")
SIGNED7 = (
    b"ledger.example/evidence\n"
    b"7\n"
    b"kTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n"
    b"\n"
    b"\xe2\x80\x94 ledger.example/evidence 9JOE1QJg3emIKl5SMH/bMcZliAVX5TjK3uCnpaas8nKIPLEtAH42"
    b"KpYwW4LilAZfNPCSQqSCT55LPW287J8BRd8NLQU=\n"
)

roots = st.binary(min_size=32, max_size=32)
sizes = st.integers(0, MAX_TREE_SIZE)
origins = st.from_regex(r"[a-z0-9.-]{1,20}(/[a-z0-9._-]{1,20}){0,2}", fullmatch=True)


def test_prior_art_checkpoint_signature_byte_for_byte() -> None:
    checkpoint = Checkpoint(ORIGIN, 7, ROOT7)
    assert (
        checkpoint.to_text()
        == "ledger.example/evidence\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n"
    )
    assert sign_checkpoint(checkpoint, TEST1) == SIGNED7
    opened, note = open_checkpoint(SIGNED7, origin=ORIGIN, key=TEST1.public_key)
    assert opened == checkpoint
    assert note.text == checkpoint.to_text()


def test_empty_tree_checkpoint() -> None:
    empty = Checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest())
    assert empty.to_text() == f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    assert (
        open_checkpoint(sign_checkpoint(empty, TEST1), origin=ORIGIN, key=TEST1.public_key)[0]
        == empty
    )


@settings(max_examples=50, deadline=None)
@given(origins, sizes, roots)
def test_text_round_trip(origin: str, size: int, root: bytes) -> None:
    checkpoint = Checkpoint(origin, size, root)
    assert Checkpoint.from_text(checkpoint.to_text()) == checkpoint


@settings(max_examples=25, deadline=None)
@given(origins, sizes, roots)
def test_sign_open_round_trip(origin: str, size: int, root: bytes) -> None:
    checkpoint = Checkpoint(origin, size, root)
    data = sign_checkpoint(checkpoint, TEST2)
    assert open_checkpoint(data, origin=origin, key=TEST2.public_key)[0] == checkpoint


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"{ORIGIN}\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=", "newline"),
        (f"{ORIGIN}\n7\n", "lines"),
        (f"{ORIGIN}\n07\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n", "leading zeros"),
        (f"{ORIGIN}\n+7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n", "leading zeros"),
        (f"{ORIGIN}\n-7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n", "leading zeros"),
        (f"{ORIGIN}\n 7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n", "leading zeros"),
        (f"{ORIGIN}\n\u0667\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n", "leading zeros"),
        (f"{ORIGIN}\n7_0\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n", "leading zeros"),
        (f"{ORIGIN}\n{2**63}\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n", "2\\^63"),
        (f"{ORIGIN}\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\nextension\n", "extension"),
        (f"{ORIGIN}\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n\n", "extension"),
        (f"{ORIGIN}\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF1=\n", "canonical"),
        (f"{ORIGIN}\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc_NpDnMWF0=\n", "base64"),
        (f"{ORIGIN}\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWA==\n", "32 bytes"),
        (f"{ORIGIN}\n7\n\n", "base64|32 bytes"),
        ("\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n", "empty"),
        ("a log\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n", "' '"),
        ("a+log\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n", "'\\+'"),
    ],
)
def test_from_text_is_strict(text: str, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        Checkpoint.from_text(text)


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [
        (ORIGIN, -1, ROOT7),
        (ORIGIN, MAX_TREE_SIZE + 1, ROOT7),
        (ORIGIN, True, ROOT7),
        (ORIGIN, 7, ROOT7[:31]),
        (ORIGIN, 7, ROOT7.hex()),
        ("", 7, ROOT7),
        ("two\nlines", 7, ROOT7),
    ],
)
def test_constructor_checks(origin: str, size: int, root: bytes) -> None:
    with pytest.raises(FormatError):
        Checkpoint(origin, size, root)


def test_open_refuses_wrong_key_origin_and_unsigned_origin_line() -> None:
    with pytest.raises(SignatureError):
        open_checkpoint(SIGNED7, origin=ORIGIN, key=TEST2.public_key)
    with pytest.raises(SignatureError):
        open_checkpoint(SIGNED7, origin="other.example/log", key=TEST1.public_key)
    # The log key signs, under its own name, a text whose origin line names another log.
    text = Checkpoint("other.example/log", 7, ROOT7).to_text()
    forged = format_note(Note(text, (sign_note(text, ORIGIN, TEST1),)))
    with pytest.raises(SignatureError, match="origin line"):
        open_checkpoint(forged, origin=ORIGIN, key=TEST1.public_key)


def test_open_refuses_signed_extension_lines() -> None:
    text = Checkpoint(ORIGIN, 7, ROOT7).to_text() + "extension\n"
    signed = format_note(Note(text, (sign_note(text, ORIGIN, TEST1),)))
    with pytest.raises(FormatError, match="extension"):
        open_checkpoint(signed, origin=ORIGIN, key=TEST1.public_key)


def test_cosignatures_ride_along_and_verify() -> None:
    checkpoint = Checkpoint(ORIGIN, 7, ROOT7)
    witness = cosign(checkpoint.to_text(), "auditor.example/w1", TEST2, 1767225600)
    note = parse_note(SIGNED7)
    cosigned = format_note(Note(note.text, (*note.signatures, witness)))
    opened, opened_note = open_checkpoint(cosigned, origin=ORIGIN, key=TEST1.public_key)
    assert opened == checkpoint
    assert verify_cosignature(opened_note.text, opened_note.signatures[1], TEST2.public_key) == (
        1767225600
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_tampering_any_byte_is_detected(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(SIGNED7) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda byte: byte != SIGNED7[index]))
    tampered = SIGNED7[:index] + bytes([value]) + SIGNED7[index + 1 :]
    with pytest.raises((FormatError, SignatureError)):
        open_checkpoint(tampered, origin=ORIGIN, key=TEST1.public_key)
