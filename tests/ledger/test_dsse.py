"""Tests for ledger.dsse: PAE, the JSON envelope, multi-signature verification, OpenSSL interop."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import parser_oracles as oracles
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger.dsse import (
    MAX_SIGNATURES,
    Envelope,
    Signature,
    pae,
    verify_envelope,
)
from customer_model_factory.ledger.errors import FormatError
from customer_model_factory.ledger.keys import PrivateKey, PublicKey

INTOTO = "application/vnd.in-toto+json"
# RFC 8032 section 7.1 TEST 1 and TEST 2: keys "A" and "B" of the DSSE test vectors.
KEY_A = PrivateKey.from_seed(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
)
KEY_B = PrivateKey.from_seed(
    bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
)
KEY_C = PrivateKey.from_seed(bytes(range(32)))
TRUSTED = {"A": KEY_A.public_key, "B": KEY_B.public_key}
STATEMENT = b'{"_type":"https://in-toto.io/Statement/v1"}'
SIG_A = "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA=="
SIG_B = "c1+67/aT0yqEpwx8PsVY3MLHsj9D0CZ014/Fv/QlG59P+9CobUZ7xECJ/V3USG0Ob9CiE5LjReEZUzNF2l7eBw=="
SIG_URLSAFE = (
    "P-_KHICeR7tI6S_YyejJTRtrXhcQyQ2LYPaL8h90KjC9qN8HU_svOQ6TuDOT1HIrsGW886DbWNWcCmX5twLrAw=="
)
SIG_NON_ASCII = (
    "xmSk/ug66ysT7ayhkCIjhAq42zgZXSsEWuzUaNL7w2eGAdF/NU6/fRXPtmfN+5DNSAs5/i2lUnHjbbjPsu0tAw=="
)
SIG_EMPTY_PAYLOAD = (
    "gSggCAaTLTYyRH6FIDBem6meyIynsYy8RTHVzwx9tnTb7Bg/1jMWnuVgI/gffqmbsC2VX5/jHfkkDqsj7CDbDg=="
)
SIG_EMPTY_TYPE = (
    "iC3q/+3Rm0+lpAJRueDmDh15PnwCfxKmS0NAfKsbv+zgulXQC/WM9trc+j1XEqlwDIg/vf/uNfebeD6sxInrDg=="
)
PAE_STATEMENT = (
    "445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203433207b225f"
    "74797065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d"
)

# secure-systems-lab/dsse testvectors/vectors.json: (id, payload b64, payloadType, [(keyid,
# sig)], trusted, threshold, supported types, PAE hex, expect accept).
DSSE_VECTORS = [
    ("single-signature", "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
     INTOTO, [("A", SIG_A)], ["A"], 1, [INTOTO], PAE_STATEMENT, True),
    ("url-safe-base64", "-_-_Pj8=", INTOTO,
     [("A", SIG_URLSAFE)],
     ["A"], 1, [INTOTO],
     "445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203520fbffbf3e3f",
     True),
    ("payload-type-swapped", "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
     "application/vnd.example.other+json", [("A", SIG_A)], ["A"], 1,
     [INTOTO, "application/vnd.example.other+json"], PAE_STATEMENT, False),
    ("non-ascii-payload-type", "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
     "application/vnd.exämple+json",
     [("A", SIG_NON_ASCII)],
     ["A"], 1, ["application/vnd.exämple+json"],
     "445353457631203239206170706c69636174696f6e2f766e642e6578c3a46d706c652b6a736f6e203433207b225f"
     "74797065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d", True),
    ("empty-payload", "", INTOTO,
     [("A", SIG_EMPTY_PAYLOAD)],
     ["A"], 1, [INTOTO],
     "445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203020", True),
    ("empty-payload-type", "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==", "",
     [("A", SIG_EMPTY_TYPE)],
     ["A"], 1, [INTOTO],
     "445353457631203020203433207b225f74797065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174"
     "656d656e742f7631227d", False),
    ("threshold-two-distinct-keys", "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
     INTOTO, [("A", SIG_A), ("B", SIG_B)], ["A", "B"], 2, [INTOTO], PAE_STATEMENT, True),
    ("threshold-two-one-key-twice", "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
     INTOTO, [("A", SIG_A), ("A", SIG_A)], ["A", "B"], 2, [INTOTO], PAE_STATEMENT, False),
    ("threshold-two-without-keyids", "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
     INTOTO, [(None, SIG_A), (None, SIG_B)], ["A", "B"], 2, [INTOTO], PAE_STATEMENT, True),
]  # fmt: skip


def _vector_json(payload: str, payload_type: str, sigs: list[tuple[str | None, str]]) -> bytes:
    """The vector's envelope as JSON (keyid omitted when None, as in vectors.json)."""
    signatures = [
        {"sig": sig} if keyid is None else {"keyid": keyid, "sig": sig} for keyid, sig in sigs
    ]
    document = {"payload": payload, "payloadType": payload_type, "signatures": signatures}
    return json.dumps(document, indent=2, ensure_ascii=False).encode()


# --- PAE ---------------------------------------------------------------------------------------


def test_pae_spec_and_prior_art_vectors() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae(INTOTO, b'{"a":1}') == b'DSSEv1 28 application/vnd.in-toto+json 7 {"a":1}'
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("é", "ü".encode()) == b"DSSEv1 2 \xc3\xa9 2 \xc3\xbc"


@pytest.mark.parametrize("vector", DSSE_VECTORS, ids=[v[0] for v in DSSE_VECTORS])
def test_dsse_reference_vectors(vector: tuple[object, ...]) -> None:
    _, payload, ptype, sigs, trusted, threshold, supported, pae_hex, accept = vector
    assert isinstance(payload, str) and isinstance(ptype, str) and isinstance(pae_hex, str)
    assert isinstance(sigs, list) and isinstance(trusted, list) and isinstance(supported, list)
    assert isinstance(threshold, int)
    envelope = Envelope.from_json(_vector_json(payload, ptype, sigs))
    # "pae" is what the signatures cover; only the swapped-type vector claims something else.
    covered = bytes.fromhex(pae_hex)
    assert all(
        KEY_A.public_key.verify(sig.sig, covered) or KEY_B.public_key.verify(sig.sig, covered)
        for sig in envelope.signatures
    )
    assert (pae(envelope.payload_type, envelope.payload) == covered) is (
        vector[0] != "payload-type-swapped"
    )
    keys = {name: TRUSTED[name] for name in trusted}
    verified = verify_envelope(envelope, keys, payload_type=ptype)
    accepted = ptype in supported and len(verified) >= threshold
    assert accepted is accept
    if ptype not in supported:
        with pytest.raises(FormatError, match="payload type"):
            verify_envelope(envelope, keys, payload_type=supported[0])


def test_signing_reproduces_the_dsse_vector_signatures() -> None:
    envelope = Envelope(STATEMENT, INTOTO).signed_by(KEY_A).signed_by(KEY_B)
    assert [base64.b64encode(s.sig).decode() for s in envelope.signatures] == [SIG_A, SIG_B]
    assert [s.keyid for s in envelope.signatures] == [
        KEY_A.public_key.key_id,
        KEY_B.public_key.key_id,
    ]


# --- JSON envelope -----------------------------------------------------------------------------


def test_to_json_is_deterministic_and_exact() -> None:
    envelope = Envelope(STATEMENT, INTOTO).signed_by(KEY_A)
    assert envelope.to_json() == (
        b'{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",'
        b'"payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":'
        b'"21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9","sig":"'
        + SIG_A.encode()
        + b'"}]}'
    )
    assert Envelope.from_json(envelope.to_json()) == envelope


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=64), st.text(max_size=20))
def test_json_round_trip(payload: bytes, payload_type: str) -> None:
    envelope = Envelope(payload, payload_type).signed_by(KEY_C)
    assert Envelope.from_json(envelope.to_json()) == envelope
    assert verify_envelope(envelope, {"c": KEY_C.public_key}, payload_type=payload_type) == {
        KEY_C.public_key.key_id
    }


def _document(**changes: object) -> bytes:
    document: dict[str, object] = {
        "payload": "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
        "payloadType": INTOTO,
        "signatures": [{"keyid": "A", "sig": SIG_A}],
    }
    for key, value in changes.items():
        if value is None:
            del document[key]
        else:
            document[key] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"null",
        b"\xff",
        b"{",
        _document(payload=None),
        _document(payloadType=None),
        _document(signatures=None),
        _document(extra="x"),
        _document(payload=5),
        _document(payloadType=["x"]),
        _document(signatures={"keyid": "A", "sig": SIG_A}),
        _document(signatures=[{"keyid": "A"}]),
        _document(signatures=[{"keyid": 1, "sig": SIG_A}]),
        _document(signatures=[{"keyid": "A", "sig": SIG_A, "cert": ""}]),
        _document(signatures=["x"]),
        _document(payload="eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ"),
        _document(payload="eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifR=="),
        _document(payload="-+=="),
        _document(payload="eyJf dHlw"),
        _document(signatures=[{"sig": "!!"}]),
        b'{"payload":"","payload":"","payloadType":"","signatures":[]}',
        b'{"payload":"","payloadType":"","signatures":[],"x":NaN}',
        _document(signatures=[{"sig": SIG_A}] * (MAX_SIGNATURES + 1)),
    ],
)
def test_from_json_is_strict(data: bytes) -> None:
    with pytest.raises(FormatError):
        Envelope.from_json(data)


def test_from_json_accepts_omitted_keyid_and_spacing() -> None:
    envelope = Envelope.from_json(_document(signatures=[{"sig": SIG_A}]))
    assert envelope.signatures == (Signature("", base64.b64decode(SIG_A)),)
    assert envelope.payload == STATEMENT


def test_envelope_field_checks() -> None:
    with pytest.raises(FormatError):
        Envelope("text", INTOTO)  # type: ignore[arg-type]
    with pytest.raises(FormatError):
        Envelope(b"", INTOTO, [Signature("", b"")])  # type: ignore[arg-type]
    with pytest.raises(FormatError):
        Envelope(b"", INTOTO, (Signature("", b""),) * (MAX_SIGNATURES + 1))
    with pytest.raises(FormatError):
        Signature(None, b"")  # type: ignore[arg-type]
    with pytest.raises(FormatError):
        Envelope(b"", "\ud800")


# --- the fast parser judges exactly like the original one ----------------------------------------

ENVELOPE_FIELDS = ["payload", "payloadType", "signatures", "keyid", "sig", "cert", "extra"]


@st.composite
def envelope_documents(draw: st.DrawFn) -> dict[str, Any]:
    """An envelope as JSON data: standard or URL-safe base64, 0-3 signatures, keyids or not."""
    encode = draw(st.sampled_from([base64.b64encode, base64.urlsafe_b64encode]))
    signatures: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 3))):
        signature = {"sig": encode(draw(st.binary(min_size=1, max_size=64))).decode()}
        if draw(st.booleans()):
            signature["keyid"] = draw(st.sampled_from(["", "A", KEY_A.public_key.key_id]))
        signatures.append(signature)
    return {
        "payload": encode(draw(st.binary(max_size=48))).decode(),
        "payloadType": draw(st.sampled_from([INTOTO, "", "application/vnd.exämple+json"])),
        "signatures": signatures,
    }


def _edit_base64(draw: st.DrawFn, document: dict[str, Any]) -> None:
    """Change, drop or add one character of the payload or of a signature (in place)."""
    holders: list[tuple[dict[str, Any], str]] = [(document, "payload")]
    holders += [(signature, "sig") for signature in document["signatures"]]
    holder, field = draw(st.sampled_from(holders))
    text = holder[field]
    at = draw(st.sampled_from(range(len(text) + 1)))
    char = draw(st.sampled_from("AQgw=+/-_ é\n"))
    edit = draw(st.sampled_from(["replace", "insert", "delete"]))
    if edit == "insert":
        holder[field] = text[:at] + char + text[at:]
    elif edit == "delete":
        holder[field] = text[:at] + text[at + 1 :]
    else:
        holder[field] = text[:at] + char + text[at + 1 :]


@st.composite
def envelope_mutants(draw: st.DrawFn) -> bytes:
    """A valid envelope's JSON after 0-2 base64 edits, 0-1 other edits, some spacing, and
    maybe a byte-level edit."""
    document = draw(envelope_documents())
    for _ in range(draw(st.integers(0, 2))):
        _edit_base64(draw, document)
    for _ in range(draw(st.integers(0, 1))):
        oracles.mutate_document(draw, document, ENVELOPE_FIELDS, oracles.json_values)
    indent = draw(st.sampled_from([None, 2]))
    data = json.dumps(document, indent=indent, ensure_ascii=draw(st.booleans())).encode()
    return oracles.maybe_mutate_bytes(draw, data, ENVELOPE_FIELDS)


def _fields(envelope: Envelope) -> oracles.EnvelopeFields:
    signatures = tuple((s.keyid, s.sig) for s in envelope.signatures)
    return envelope.payload, envelope.payload_type, signatures


@settings(max_examples=300, deadline=None)
@given(envelope_mutants())
def test_mutated_envelopes_are_judged_exactly_as_before(data: bytes) -> None:
    """Same verdict, value and message as the original parser (regex base64 checks)."""
    new = oracles.outcome(lambda: _fields(Envelope.from_json(data)))
    assert new == oracles.outcome(lambda: oracles.envelope_from_json(data))


# --- verification ------------------------------------------------------------------------------


def test_verify_counts_distinct_keys_by_their_own_ids() -> None:
    envelope = Envelope(STATEMENT, INTOTO).signed_by(KEY_A).signed_by(KEY_B).signed_by(KEY_C)
    ids = {KEY_A.public_key.key_id, KEY_B.public_key.key_id}
    assert verify_envelope(envelope, TRUSTED, payload_type=INTOTO) == ids
    # One key under two labels is still one key.
    doubled = {"A": KEY_A.public_key, "also A": KEY_A.public_key}
    assert verify_envelope(envelope, doubled, payload_type=INTOTO) == {KEY_A.public_key.key_id}
    assert verify_envelope(envelope, {}, payload_type=INTOTO) == frozenset()


def test_signing_twice_with_one_key_is_a_no_op() -> None:
    once = Envelope(STATEMENT, INTOTO).signed_by(KEY_A)
    assert once.signed_by(KEY_A) == once


def test_keyid_hints_cannot_add_or_remove_a_key() -> None:
    good = Envelope(STATEMENT, INTOTO).signed_by(KEY_A)
    sig = good.signatures[0].sig
    for hint in ("", "unknown", "B", KEY_B.public_key.key_id, "A"):
        envelope = Envelope(STATEMENT, INTOTO, (Signature(hint, sig),))
        assert verify_envelope(envelope, TRUSTED, payload_type=INTOTO) == {KEY_A.public_key.key_id}
    # A signature by an untrusted key claiming a trusted key's id counts for nobody.
    claimed = Envelope(
        STATEMENT, INTOTO, (Signature(KEY_A.public_key.key_id, KEY_C.sign(pae(INTOTO, STATEMENT))),)
    )
    assert verify_envelope(claimed, TRUSTED, payload_type=INTOTO) == frozenset()


def test_payload_type_mismatch_raises() -> None:
    envelope = Envelope(STATEMENT, INTOTO).signed_by(KEY_A)
    with pytest.raises(FormatError, match="payload type"):
        verify_envelope(envelope, TRUSTED, payload_type="application/json")


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_tampering_any_byte_breaks_verification(data: st.DataObject) -> None:
    original = Envelope(STATEMENT, INTOTO).signed_by(KEY_A)
    encoded = original.to_json()
    keyid = KEY_A.public_key.key_id.encode()
    hint_start = encoded.index(keyid)
    index = data.draw(st.integers(0, len(encoded) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda byte: byte != encoded[index]))
    tampered = encoded[:index] + bytes([value]) + encoded[index + 1 :]
    try:
        envelope = Envelope.from_json(tampered)
        verified = verify_envelope(envelope, TRUSTED, payload_type=INTOTO)
    except FormatError:
        return
    if hint_start <= index < hint_start + len(keyid):
        # Only the unauthenticated hint changed: the outcome must not change either.
        assert verified == {KEY_A.public_key.key_id}
        assert (envelope.payload, envelope.signatures[0].sig) == (
            STATEMENT,
            original.signatures[0].sig,
        )
    else:
        assert verified == frozenset()


# --- OpenSSL interop ---------------------------------------------------------------------------


def _openssl_verify(directory: Path) -> subprocess.CompletedProcess[bytes]:
    openssl = shutil.which("openssl")
    assert openssl is not None, (
        "the openssl CLI is not on PATH: install OpenSSL >= 3.0 (the project setup does); "
        "this interop test must not be skipped"
    )
    command = [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin",
               "-in", "pae.bin", "-sigfile", "sig.bin"]  # fmt: skip
    return subprocess.run(command, cwd=directory, capture_output=True, check=False, timeout=60)


def test_openssl_cli_verifies_a_dsse_signature_over_pae(tmp_path: Path) -> None:
    envelope = Envelope.from_json(Envelope(STATEMENT, INTOTO).signed_by(KEY_C).to_json())
    message = pae(envelope.payload_type, envelope.payload)
    signature = envelope.signatures[0].sig
    (tmp_path / "pub.pem").write_bytes(KEY_C.public_key.to_pem())
    (tmp_path / "pae.bin").write_bytes(message)
    (tmp_path / "sig.bin").write_bytes(signature)
    accepted = _openssl_verify(tmp_path)
    assert accepted.returncode == 0, accepted.stderr.decode(errors="replace")
    assert b"Signature Verified Successfully" in accepted.stdout

    flipped = bytearray(signature)
    flipped[10] ^= 0x01
    (tmp_path / "sig.bin").write_bytes(bytes(flipped))
    assert _openssl_verify(tmp_path).returncode != 0

    (tmp_path / "sig.bin").write_bytes(signature)
    (tmp_path / "pae.bin").write_bytes(message[:-1] + bytes([message[-1] ^ 0x01]))
    assert _openssl_verify(tmp_path).returncode != 0


def test_openssl_public_key_pem_is_readable_by_openssl(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl CLI must be on PATH"
    (tmp_path / "pub.pem").write_bytes(KEY_A.public_key.to_pem())
    result = subprocess.run(
        [openssl, "pkey", "-pubin", "-in", "pub.pem", "-outform", "DER"],
        cwd=tmp_path, capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    # SubjectPublicKeyInfo for Ed25519 is a fixed 12-byte prefix plus the raw key (RFC 8410).
    assert result.stdout == bytes.fromhex("302a300506032b6570032100") + KEY_A.public_key.raw
    assert PublicKey.from_pem(KEY_A.public_key.to_pem()) == KEY_A.public_key


def test_hostile_nesting_is_a_format_error() -> None:
    """Deep nesting used to escape as RecursionError, which would stop fsck; now it is refused."""
    with pytest.raises(FormatError, match="nested too deeply"):
        Envelope.from_json(b'{"a":' * 100_000)
