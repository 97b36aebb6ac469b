"""Tests for ledger.note: C2SP signed notes and cosignature/v1, against published vectors."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger.errors import FormatError, SignatureError
from customer_model_factory.ledger.keys import PrivateKey, PublicKey
from customer_model_factory.ledger.note import (
    MAX_SIGNATURES,
    Note,
    NoteSignature,
    check_note_text,
    cosign,
    cosignature_message,
    cosignature_timestamp,
    format_note,
    note_key_hash,
    parse_note,
    sign_note,
    verify_cosignature,
    verify_note,
)

# golang.org/x/mod/sumdb/note note_test.go (TestSign, TestOpen).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
ENOCH_B64 = (
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)
PETER_SIG = f"— PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"— EnochRoot {ENOCH_B64}\n"

# prior-art 4.3 / A.3: checkpoint of ledger.example/evidence at size 7, RFC 8032 TEST 1 log key,
# cosigned by RFC 8032 TEST 2 as auditor.example/w1 at 2026-01-01T00:00:00Z.
TEST1_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
TEST2_SEED = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
CHECKPOINT_TEXT = "ledger.example/evidence\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n"
LOG_B64 = (
    "9JOE1QJg3emIKl5SMH/bMcZliAVX5TjK3uCnpaas8nKIPLEtAH42KpYwW4LilAZfNPCSQqSCT55LPW287J8BRd8NLQU="
)
WITNESS_B64 = (
    "vABVzgAAAABpVbkAmPFbmjAj9V/uoXHobEVmHeOk8I6E7/ndbbse3URn+/Fm1yxhrI4kwMoMCg1cM3xMH/2PDaLrWqCe"
    "cS3DfGvFAg=="
)
LOG_SIG = f"— ledger.example/evidence {LOG_B64}\n"
WITNESS_SIG = f"— auditor.example/w1 {WITNESS_B64}\n"
WITNESS_TIME = 1767225600

peter_name, peter = PrivateKey.from_signer_key(GO_SKEY)
enoch_name, enoch = PublicKey.parse_verifier_key(ENOCH_VKEY)
test1 = PrivateKey.from_seed(bytes.fromhex(TEST1_SEED))
test2 = PrivateKey.from_seed(bytes.fromhex(TEST2_SEED))

note_texts = st.lists(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\n"),
        max_size=12,
    ).filter(lambda line: not any(ch < " " for ch in line)),
    max_size=5,
).map(lambda lines: "".join(line + "\n" for line in lines) or "\n")
key_names = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=12
).filter(lambda name: "+" not in name and not any(ch.isspace() for ch in name))


# --- Go sumdb/note known answers ---------------------------------------------------------------


def test_go_sign_reproduces_published_note() -> None:
    assert (peter_name, peter.public_key.verifier_key(peter_name)) == ("PeterNeumann", GO_VKEY)
    signature = sign_note(TEXT, peter_name, peter)
    assert signature.key_hash.hex() == "c74f20a3"
    assert format_note(Note(TEXT, (signature,))) == (TEXT + "\n" + PETER_SIG).encode()


def test_go_open_one_known_one_unknown_signature() -> None:
    note = parse_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode())
    assert note.text == TEXT
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]
    verify_note(note, peter_name, peter.public_key)  # Enoch's line is ignored
    verify_note(note, enoch_name, enoch)  # an independent published signature
    with pytest.raises(SignatureError, match="no signature"):
        verify_note(note, "CarmenSandiego", peter.public_key)


def test_go_malformed_messages_are_refused() -> None:
    bad = [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + f"— Bad Name {PETER_B64}",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ]
    for message in bad:
        with pytest.raises(FormatError):
            parse_note(message.encode())
    with pytest.raises(FormatError, match="UTF-8"):
        parse_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode())


def test_signature_count_limit() -> None:
    assert len(parse_note((TEXT + "\n" + PETER_SIG * MAX_SIGNATURES).encode()).signatures) == 100
    with pytest.raises(FormatError, match="at most 100"):
        parse_note((TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1)).encode())


def test_go_invalid_signature_is_rejected() -> None:
    tampered = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(SignatureError, match="invalid signature"):
        verify_note(parse_note(tampered.encode()), peter_name, peter.public_key)


def test_repeated_good_signatures_verify_but_any_bad_one_rejects() -> None:
    verify_note(parse_note((TEXT + "\n" + PETER_SIG * 2).encode()), peter_name, peter.public_key)
    bad = PETER_SIG.replace("x08go/ZJ", "x08go/ZK")
    note = parse_note((TEXT + "\n" + PETER_SIG + bad).encode())
    with pytest.raises(SignatureError):
        verify_note(note, peter_name, peter.public_key)


def test_same_name_other_key_and_same_key_other_name_are_ignored() -> None:
    stranger = PrivateKey.from_seed(bytes(32))
    note = Note(TEXT, (sign_note(TEXT, peter_name, stranger), sign_note(TEXT, "Other", peter)))
    with pytest.raises(SignatureError, match="no signature"):
        verify_note(note, peter_name, peter.public_key)


def test_text_is_everything_before_the_last_blank_line() -> None:
    text = "a\n\nb\n\n"
    signed = Note(text, (sign_note(text, "n", peter),))
    data = format_note(signed)
    assert data.startswith(b"a\n\nb\n\n\n\xe2\x80\x94 n ")
    assert parse_note(data) == signed
    verify_note(parse_note(data), "n", peter.public_key)


@pytest.mark.parametrize(
    "text", ["", "no newline", "tab\there\n", "cr\r\n", "nul\x00\n", "\ud800\n"]
)
def test_invalid_note_text(text: str) -> None:
    with pytest.raises(FormatError):
        check_note_text(text)
    with pytest.raises(FormatError):
        sign_note(text, "n", peter)


def test_note_requires_signatures() -> None:
    with pytest.raises(FormatError):
        Note(TEXT, ())
    with pytest.raises(FormatError):
        Note(TEXT, [sign_note(TEXT, "n", peter)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "line",
    [
        f"— PeterNeumann {PETER_B64[:-2]}N=",  # non-zero pad bits
        f"— PeterNeumann {PETER_B64[:-1]}",  # missing padding
        f"— PeterNeumann  {PETER_B64}",  # two spaces
        f"— PeterNeumann {PETER_B64} ",  # trailing space
        f"— PeterNeumann {PETER_B64.replace('/', '_')}",  # URL-safe alphabet
        "— PeterNeumann",
        "— PeterNeumann ",
        "— PeterNeumann AAAAAA==",  # shorter than key hash + 1 byte
        f"— Peter+Neumann {PETER_B64}",
        f"- PeterNeumann {PETER_B64}",
        f"—PeterNeumann {PETER_B64}",
        "",
    ],
)
def test_malformed_signature_lines(line: str) -> None:
    with pytest.raises(FormatError):
        parse_note((TEXT + "\n" + line + "\n").encode())


def test_note_signature_field_checks() -> None:
    with pytest.raises(FormatError):
        NoteSignature("a b", b"\x00" * 4, b"\x01")
    with pytest.raises(FormatError):
        NoteSignature("n", b"\x00" * 3, b"\x01")
    with pytest.raises(FormatError):
        NoteSignature("n", b"\x00" * 4, b"")


@settings(max_examples=60, deadline=None)
@given(
    note_texts,
    st.lists(st.tuples(key_names, st.binary(min_size=1, max_size=80)), min_size=1, max_size=4),
)
def test_format_parse_round_trip(text: str, raw: list[tuple[str, bytes]]) -> None:
    signatures = tuple(NoteSignature(name, b"\x01\x02\x03\x04", sig) for name, sig in raw)
    note = Note(text, signatures)
    data = format_note(note)
    assert parse_note(data) == note
    assert format_note(parse_note(data)) == data


@settings(max_examples=40, deadline=None)
@given(note_texts, key_names)
def test_sign_then_verify(text: str, name: str) -> None:
    data = format_note(Note(text, (sign_note(text, name, peter),)))
    verify_note(parse_note(data), name, peter.public_key)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_tampering_any_byte_breaks_verification(data: st.DataObject) -> None:
    signed = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    index = data.draw(st.integers(0, len(signed) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda byte: byte != signed[index]))
    tampered = signed[:index] + bytes([value]) + signed[index + 1 :]
    with pytest.raises((FormatError, SignatureError)):
        verify_note(parse_note(tampered), peter_name, peter.public_key)
        verify_note(parse_note(tampered), enoch_name, enoch)


# --- cosignature/v1 ----------------------------------------------------------------------------


def test_cosignature_message_layout_matches_the_c2sp_spec_example() -> None:
    # tlog-cosignature "Ed25519 signed message": the spec's example, written out literally.
    checkpoint = (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    assert cosignature_message(checkpoint, 1679315147) == (
        b"cosignature/v1\n"
        b"time 1679315147\n"
        b"example.com/behind-the-sofa\n"
        b"20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_cosignature_timestamps_of_published_lines() -> None:
    # C2SP tlog-cosignature example line; its time is the one in the spec's message example.
    spec_line = (
        "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJs"
        "X3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
    )
    note = parse_note(("example.com/behind-the-sofa\n1\nAA==\n\n" + spec_line).encode())
    assert cosignature_timestamp(note.signatures[0]) == 1679315147
    # transparency-dev/formats note_cosigv1_test.go TestCoSigV1Timestamp "works".
    raw = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
    )
    assert cosignature_timestamp(NoteSignature("w", raw[:4], raw[4:])) == 1727964367
    # ... and its "wrong type of signature" case: a plain Ed25519 line is no cosignature.
    raw = base64.b64decode(
        "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY="
    )
    with pytest.raises(FormatError):
        cosignature_timestamp(NoteSignature("w", raw[:4], raw[4:]))


def test_witness_cosignature_vector_of_prior_art_a3() -> None:
    signature = cosign(CHECKPOINT_TEXT, "auditor.example/w1", test2, WITNESS_TIME)
    assert signature.key_hash.hex() == "bc0055ce"
    assert signature.to_line() == WITNESS_SIG
    assert verify_cosignature(CHECKPOINT_TEXT, signature, test2.public_key) == WITNESS_TIME
    # The cosigned note: the log's line, then the witness line; each verifies independently.
    note = parse_note((CHECKPOINT_TEXT + "\n" + LOG_SIG + WITNESS_SIG).encode())
    verify_note(note, "ledger.example/evidence", test1.public_key)
    witness_line = note.signatures[1]
    assert (
        verify_cosignature(note.text, witness_line, test2.public_key, name="auditor.example/w1")
        == WITNESS_TIME
    )


def _openssl_verify(tmp_path: Path, key: PublicKey, message: bytes, signature: bytes) -> bool:
    """Return whether ``openssl pkeyutl -verify -rawin`` accepts the signature."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl CLI must be on PATH for this interop test"
    (tmp_path / "pub.pem").write_bytes(key.to_pem())
    (tmp_path / "msg.bin").write_bytes(message)
    (tmp_path / "sig.bin").write_bytes(signature)
    result = subprocess.run(
        [
            openssl,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "pub.pem",
            "-rawin",
            "-in",
            "msg.bin",
            "-sigfile",
            "sig.bin",
        ],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        timeout=60,
    )
    return result.returncode == 0


def test_cosignature_vector_verifies_with_openssl_over_the_spec_layout(tmp_path: Path) -> None:
    """Cross-check A.3 outside our code: message written per the spec, verified by OpenSSL."""
    raw = base64.b64decode(WITNESS_SIG.split(" ")[2])
    assert raw[:4].hex() == "bc0055ce"
    assert int.from_bytes(raw[4:12], "big") == WITNESS_TIME
    message = b"cosignature/v1\ntime 1767225600\n" + CHECKPOINT_TEXT.encode()
    assert _openssl_verify(tmp_path, test2.public_key, message, raw[12:])
    assert not _openssl_verify(
        tmp_path, test2.public_key, message.replace(b"time 1767", b"time 1768"), raw[12:]
    )


def test_log_signature_vector_verifies_with_openssl(tmp_path: Path) -> None:
    raw = base64.b64decode(LOG_SIG.split(" ")[2])
    assert _openssl_verify(tmp_path, test1.public_key, CHECKPOINT_TEXT.encode(), raw[4:])


def test_cosignature_rejections() -> None:
    good = cosign(CHECKPOINT_TEXT, "w", test2, WITNESS_TIME)
    with pytest.raises(SignatureError, match="key hash"):
        verify_cosignature(CHECKPOINT_TEXT, good, test1.public_key)
    with pytest.raises(SignatureError, match="expected"):
        verify_cosignature(CHECKPOINT_TEXT, good, test2.public_key, name="other")
    with pytest.raises(SignatureError, match="invalid"):
        verify_cosignature(CHECKPOINT_TEXT.replace("7\n", "8\n"), good, test2.public_key)
    later = NoteSignature(
        "w", good.key_hash, (WITNESS_TIME + 1).to_bytes(8, "big") + good.signature[8:]
    )
    with pytest.raises(SignatureError, match="invalid"):
        verify_cosignature(CHECKPOINT_TEXT, later, test2.public_key)
    # A type 0x01 signature by the same key is not a cosignature (different key hash).
    plain = sign_note(CHECKPOINT_TEXT, "w", test2)
    with pytest.raises(SignatureError):
        verify_cosignature(CHECKPOINT_TEXT, plain, test2.public_key)
    # ... and a cosignature is not a type 0x01 signature.
    with pytest.raises(SignatureError):
        verify_note(Note(CHECKPOINT_TEXT, (good,)), "w", test2.public_key)
    short = NoteSignature("w", good.key_hash, good.signature[:-1])
    with pytest.raises(FormatError):
        verify_cosignature(CHECKPOINT_TEXT, short, test2.public_key)
    huge = NoteSignature("w", good.key_hash, (2**63).to_bytes(8, "big") + good.signature[8:])
    with pytest.raises(FormatError):
        verify_cosignature(CHECKPOINT_TEXT, huge, test2.public_key)


@pytest.mark.parametrize("timestamp", [-1, 2**63, True, 1.5])
def test_cosign_refuses_out_of_range_timestamps(timestamp: object) -> None:
    with pytest.raises(FormatError):
        cosign(CHECKPOINT_TEXT, "w", test2, timestamp)  # type: ignore[arg-type]


def test_cosign_accepts_the_extreme_timestamps() -> None:
    for timestamp in (0, 2**63 - 1):
        signature = cosign(CHECKPOINT_TEXT, "w", test2, timestamp)
        assert verify_cosignature(CHECKPOINT_TEXT, signature, test2.public_key) == timestamp


def test_note_key_hash_definition() -> None:
    # signed-note: SHA-256(name || 0x0A || type || key)[:4]
    assert note_key_hash("PeterNeumann", 0x01, peter.public_key.raw).hex() == "c74f20a3"
    assert note_key_hash("ledger.example/evidence", 0x01, test1.public_key.raw).hex() == "f49384d5"
    assert note_key_hash("auditor.example/w1", 0x04, test2.public_key.raw).hex() == "bc0055ce"
