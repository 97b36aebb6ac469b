"""Tests for ledger.keys: RFC 8032 and Go sumdb/note known answers, PEM, key text, key files."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import string
import subprocess
from pathlib import Path

import parser_oracles as oracles
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger.errors import FormatError, KeyFormatError
from customer_model_factory.ledger.keys import (
    SIG_TYPE_COSIGNATURE_V1,
    PrivateKey,
    PublicKey,
    check_key_name,
    decode_base64,
    key_id,
    load_private_key,
    load_public_key,
    note_key_hash,
    save_private_key,
    save_public_key,
)

# RFC 8032 section 7.1, TEST 1 to TEST 3: (seed, public key, message, signature).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]

# golang.org/x/mod/sumdb/note note_test.go.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
# prior-art 4.3: the RFC 8032 TEST 1 key as the log key of ledger.example/evidence.
LEDGER_VKEY = "ledger.example/evidence+f49384d5+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea"

seeds = st.binary(min_size=32, max_size=32)


def test_rfc8032_test_vectors() -> None:
    for seed, public, message, signature in RFC8032:
        key = PrivateKey.from_seed(bytes.fromhex(seed))
        assert key.public_key.raw.hex() == public
        assert key.sign(bytes.fromhex(message)).hex() == signature
        assert key.public_key.verify(bytes.fromhex(signature), bytes.fromhex(message))
        assert key.seed.hex() == seed


def test_key_id_is_sha256_of_raw_public_key() -> None:
    raw = bytes.fromhex(RFC8032[0][1])
    assert key_id(raw) == hashlib.sha256(raw).hexdigest()
    assert key_id(raw) == "21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9"
    assert PublicKey(raw).key_id == key_id(raw)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, bytearray(32), "00" * 32])
def test_public_key_rejects_wrong_size_or_type(bad: object) -> None:
    with pytest.raises(KeyFormatError):
        PublicKey(bad)  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        key_id(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [b"", b"\x01" * 31, b"\x01" * 33, "01" * 32])
def test_private_key_rejects_wrong_seed(bad: object) -> None:
    with pytest.raises(KeyFormatError):
        PrivateKey.from_seed(bad)  # type: ignore[arg-type]


def test_verify_rejects_tampering_and_wrong_lengths() -> None:
    key = PrivateKey.from_seed(bytes(range(32)))
    signature = key.sign(b"message")
    public = key.public_key
    assert public.verify(signature, b"message")
    assert not public.verify(signature, b"messagf")
    assert not public.verify(signature[:-1], b"message")
    assert not public.verify(signature + b"\x00", b"message")
    for index in range(len(signature)):
        flipped = bytearray(signature)
        flipped[index] ^= 0x01
        assert not public.verify(bytes(flipped), b"message")
    assert not PrivateKey.from_seed(bytes(32)).public_key.verify(signature, b"message")


def test_private_key_repr_hides_the_seed() -> None:
    key = PrivateKey.from_seed(bytes.fromhex(RFC8032[0][0]))
    assert RFC8032[0][0] not in repr(key)
    assert key.public_key.key_id in repr(key)


def test_generate_gives_distinct_working_keys() -> None:
    first, second = PrivateKey.generate(), PrivateKey.generate()
    assert first.seed != second.seed
    assert first.public_key.verify(first.sign(b"x"), b"x")


# --- PEM ---------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seeds)
def test_pem_round_trips(seed: bytes) -> None:
    key = PrivateKey.from_seed(seed)
    assert PrivateKey.from_pem(key.to_pem()).seed == seed
    assert PublicKey.from_pem(key.public_key.to_pem()) == key.public_key


def test_public_pem_is_standard_spki() -> None:
    pem = PublicKey(bytes.fromhex(RFC8032[0][1])).to_pem()
    assert pem == (
        b"-----BEGIN PUBLIC KEY-----\n"
        b"MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
        b"-----END PUBLIC KEY-----\n"
    )


def test_encrypted_pem_round_trip_and_passphrase_errors() -> None:
    key = PrivateKey.from_seed(bytes.fromhex(RFC8032[1][0]))
    pem = key.to_pem(b"correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert bytes.fromhex(RFC8032[1][0]) not in pem
    assert PrivateKey.from_pem(pem, b"correct horse").seed == key.seed
    with pytest.raises(KeyFormatError, match="wrong passphrase"):
        PrivateKey.from_pem(pem, b"wrong horse")
    with pytest.raises(KeyFormatError, match="encrypted and no passphrase"):
        PrivateKey.from_pem(pem)
    with pytest.raises(KeyFormatError, match="not encrypted"):
        PrivateKey.from_pem(key.to_pem(), b"correct horse")
    with pytest.raises(ValueError, match="passphrase"):
        key.to_pem(b"")


def _foreign_keys() -> dict[str, tuple[bytes, bytes]]:
    """PEM (private, public) of keys of other algorithms."""
    keys: dict[str, PrivateKeyTypes] = {
        "RSA": rsa.generate_private_key(public_exponent=65537, key_size=1024),
        "ECDSA": ec.generate_private_key(ec.SECP256R1()),
        "X25519": x25519.X25519PrivateKey.generate(),
        "Ed448": ed448.Ed448PrivateKey.generate(),
    }
    out = {}
    for name, key in keys.items():
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        out[name] = (private, public)
    return out


def test_non_ed25519_keys_are_refused_by_name() -> None:
    for name, (private, public) in _foreign_keys().items():
        with pytest.raises(KeyFormatError, match=f"expected an Ed25519 key, got {name}"):
            PrivateKey.from_pem(private)
        with pytest.raises(KeyFormatError, match=f"expected an Ed25519 key, got {name}"):
            PublicKey.from_pem(public)


def test_malformed_and_truncated_pem_is_refused() -> None:
    key = PrivateKey.from_seed(bytes(range(32)))
    private, public = key.to_pem(), key.public_key.to_pem()
    encrypted = key.to_pem(b"pw")
    for cut in range(0, len(private) - 1, 7):
        with pytest.raises(KeyFormatError):
            PrivateKey.from_pem(private[:cut])
    for cut in range(0, len(public) - 1, 7):
        with pytest.raises(KeyFormatError):
            PublicKey.from_pem(public[:cut])
    for cut in range(30, len(encrypted) - 1, 11):
        with pytest.raises(KeyFormatError):
            PrivateKey.from_pem(encrypted[:cut], b"pw")
    for junk in (b"", b"not a key", b"\xff\xfe", public):
        with pytest.raises(KeyFormatError):
            PrivateKey.from_pem(junk)
    with pytest.raises(KeyFormatError):
        PublicKey.from_pem(private)
    with pytest.raises(KeyFormatError):
        PublicKey.from_pem(public.decode())  # type: ignore[arg-type]


def _cryptography_spki_pem(seed: bytes) -> bytes:
    """The SubjectPublicKeyInfo PEM ``cryptography`` itself writes for the key of ``seed``."""
    public = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@settings(max_examples=40, deadline=None)
@given(seeds)
def test_public_pem_reader_and_writer_agree_with_cryptography(seed: bytes) -> None:
    """Our PEM writer is byte-identical to cryptography's; our strict reader takes its output,
    also with CRLF or CR line ends or without the final line end."""
    theirs = _cryptography_spki_pem(seed)
    key = PrivateKey.from_seed(seed).public_key
    assert key.to_pem() == theirs
    for variant in (
        theirs,
        theirs.replace(b"\n", b"\r\n"),
        theirs.replace(b"\n", b"\r"),
        theirs.removesuffix(b"\n"),
    ):
        assert PublicKey.from_pem(variant) == key


def test_example_public_keys_read_strictly_and_match_their_private_keys() -> None:
    """Every keys-example/*.pub (written by ``cmf keygen``) is read by the strict reader, is the
    public half of its .pem, and is written back byte for byte."""
    examples = sorted((Path(__file__).resolve().parents[2] / "keys-example").glob("*.pub"))
    assert len(examples) >= 10
    for path in examples:
        key = load_public_key(path)
        assert key == load_private_key(path.with_suffix(".pem")).public_key
        assert key.to_pem() == path.read_bytes()


def _spki_pem(der: bytes, width: int = 64) -> bytes:
    """A PUBLIC KEY PEM block around arbitrary DER, base64 wrapped at ``width``."""
    body = base64.b64encode(der)
    lines = [body[i : i + width] for i in range(0, len(body), width)]
    return b"\n".join([b"-----BEGIN PUBLIC KEY-----", *lines, b"-----END PUBLIC KEY-----", b""])


_PEM = PublicKey(bytes.fromhex(RFC8032[0][1])).to_pem()
_BODY = _PEM.splitlines()[1]
_PREFIX = bytes.fromhex("302a300506032b6570032100")  # RFC 8410 section 4
_RAW = bytes.fromhex(RFC8032[0][1])


@pytest.mark.parametrize(
    "pem",
    [
        pytest.param(_PEM + b"\n", id="trailing blank line"),
        pytest.param(_PEM + b"comment\n", id="text after the block"),
        pytest.param(_PEM + _PEM, id="a second block"),
        pytest.param(b"comment\n" + _PEM, id="text before the block"),
        pytest.param(b" " + _PEM, id="leading space"),
        pytest.param(_PEM.replace(b"-----\n", b"----- \n", 1), id="space after the BEGIN line"),
        pytest.param(_spki_pem(_PREFIX + _RAW, width=40), id="base64 wrapped over two lines"),
        pytest.param(_PEM.replace(b"PUBLIC KEY", b"ED25519 PUBLIC KEY"), id="another label"),
        pytest.param(_PEM.replace(_BODY, _BODY[:-4]), id="truncated base64"),
        pytest.param(_PEM.replace(_BODY, _BODY[:-1]), id="base64 without its padding"),
        pytest.param(
            _PEM.replace(_BODY, _BODY[:10] + b"*" + _BODY[11:]), id="a non-alphabet character"
        ),
        pytest.param(
            _PEM.replace(_BODY, _BODY[:10] + b" " + _BODY[10:]), id="a space inside the base64"
        ),
        pytest.param(
            _PEM.replace(_BODY, _BODY[:-2] + b"p="), id="non-zero pad bits (non-canonical)"
        ),
        pytest.param(_PEM.replace(_BODY, _BODY[:20] + "é".encode() + _BODY[22:]), id="non-ASCII"),
        pytest.param(_spki_pem(_PREFIX + _RAW[:31]), id="31 key bytes"),
        pytest.param(_spki_pem(_PREFIX + _RAW + b"\x00"), id="33 key bytes"),
        pytest.param(_spki_pem(_PREFIX + _RAW + b"\x30\x00"), id="trailing DER"),
        pytest.param(
            _spki_pem(bytes.fromhex("302a300506032b656e032100") + _RAW),
            id="X25519 (OID 1.3.101.110)",
        ),
        pytest.param(
            _spki_pem(bytes.fromhex("302c300706032b65700500032100") + _RAW), id="NULL parameters"
        ),
        pytest.param(
            _spki_pem(bytes.fromhex("302a300506032b6570032101") + _RAW), id="unused bits in the key"
        ),
    ],
)
def test_strict_public_pem_reader_refuses(pem: bytes) -> None:
    """Anything but the one accepted form is a KeyFormatError naming the public key PEM."""
    with pytest.raises(KeyFormatError, match=r"^public key PEM: "):
        PublicKey.from_pem(pem)


def test_refused_public_pem_says_why() -> None:
    """The message tells another algorithm, a malformed block and a non-canonical layout apart."""
    x25519_pem = _spki_pem(bytes.fromhex("302a300506032b656e032100") + _RAW)
    with pytest.raises(KeyFormatError, match="expected an Ed25519 key, got X25519"):
        PublicKey.from_pem(x25519_pem)
    with pytest.raises(KeyFormatError, match="malformed or unsupported"):
        PublicKey.from_pem(_PEM.replace(_BODY, _BODY[:-4]))
    with pytest.raises(KeyFormatError, match="not in the one accepted form"):
        PublicKey.from_pem(b"comment\n" + _PEM)  # cryptography itself would read this one


# --- C2SP / Go key text ------------------------------------------------------------------------


def test_go_note_signer_and_verifier_keys() -> None:
    name, key = PrivateKey.from_signer_key(GO_SKEY)
    assert name == "PeterNeumann"
    assert key.public_key.verifier_key(name) == GO_VKEY
    assert key.signer_key(name) == GO_SKEY
    assert note_key_hash(name, 0x01, key.public_key.raw).hex() == "c74f20a3"
    assert PublicKey.parse_verifier_key(GO_VKEY) == (name, key.public_key)
    enoch_name, enoch = PublicKey.parse_verifier_key(GO_ENOCH_VKEY)
    assert (enoch_name, enoch.verifier_key("EnochRoot")) == ("EnochRoot", GO_ENOCH_VKEY)


def test_ledger_example_verifier_key() -> None:
    key = PublicKey(bytes.fromhex(RFC8032[0][1]))
    assert key.verifier_key("ledger.example/evidence") == LEDGER_VKEY
    assert PublicKey.parse_verifier_key(LEDGER_VKEY) == ("ledger.example/evidence", key)


def _manglings(text: str) -> set[str]:
    """Every proper substring of ``text`` and every one-character increment (Go's tests)."""
    out = {text[i:j] for i in range(len(text) + 1) for j in range(i + 1, len(text) + 1)}
    out |= {text[:i] + chr(ord(text[i]) + 1) + text[i + 1 :] for i in range(len(text))}
    out.discard(text)
    return out


def test_mangled_verifier_keys_are_refused() -> None:
    # TestNewVerifier: every substring and every byte increment must fail.
    for mangled in _manglings(GO_VKEY):
        with pytest.raises(KeyFormatError):
            PublicKey.parse_verifier_key(mangled)
    # Wrong key length and unknown algorithm, each with a key hash adjusted to match.
    with pytest.raises(KeyFormatError):
        PublicKey.parse_verifier_key(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
    with pytest.raises(KeyFormatError):
        PublicKey.parse_verifier_key(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )


def test_mangled_signer_keys_are_refused() -> None:
    for mangled in _manglings(GO_SKEY):
        with pytest.raises(KeyFormatError):
            PrivateKey.from_signer_key(mangled)


def test_verifier_key_hash_must_be_lowercase_and_type_must_match() -> None:
    with pytest.raises(KeyFormatError, match="lowercase"):
        PublicKey.parse_verifier_key(GO_VKEY.replace("c74f20a3", "C74F20A3"))
    with pytest.raises(KeyFormatError, match="type byte"):
        PublicKey.parse_verifier_key(GO_VKEY, SIG_TYPE_COSIGNATURE_V1)
    with pytest.raises(KeyFormatError, match="only 0x01 and 0x04"):
        PublicKey.parse_verifier_key(GO_VKEY, 0x02)


def test_cosigner_verifier_key_type_04() -> None:
    key = PublicKey(bytes.fromhex(RFC8032[1][1]))
    text = key.verifier_key("auditor.example/w1", SIG_TYPE_COSIGNATURE_V1)
    assert text.startswith("auditor.example/w1+bc0055ce+B")  # prior-art A.3 key ID
    assert PublicKey.parse_verifier_key(text, SIG_TYPE_COSIGNATURE_V1)[1] == key
    with pytest.raises(KeyFormatError):
        PublicKey.parse_verifier_key(text)


@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u3000b", "a\u2028b", "\x7f\x01", "\ud800"]
)
def test_invalid_key_names(name: str) -> None:
    with pytest.raises(KeyFormatError):
        check_key_name(name)
    with pytest.raises(KeyFormatError):
        PublicKey(bytes(32)).verifier_key(name)
    with pytest.raises(FormatError):
        check_key_name(name, error=FormatError)


def test_unicode_key_names_without_spaces_are_valid() -> None:
    assert check_key_name("ключ.example/ü") == "ключ.example/ü"


@pytest.mark.parametrize(
    "text",
    ["QQ", "QQ=", "QR==", "Q Q==", "QQ==\n", "-_+/", "QUJD\n", "////-___", 3],
)
def test_decode_base64_is_strict(text: object) -> None:
    with pytest.raises(FormatError):
        decode_base64(text, what="x", urlsafe_ok=True)  # type: ignore[arg-type]


def test_decode_base64_alphabets() -> None:
    assert decode_base64("+/8=", what="x") == b"\xfb\xff"
    assert decode_base64("-_8=", what="x", urlsafe_ok=True) == b"\xfb\xff"
    with pytest.raises(KeyFormatError):
        decode_base64("-_8=", what="x")
    assert decode_base64("", what="x") == b""


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=40))
def test_decode_base64_inverts_both_encoders(data: bytes) -> None:
    assert decode_base64(base64.b64encode(data).decode(), what="x") == data
    urlsafe = base64.urlsafe_b64encode(data).decode()
    assert decode_base64(urlsafe, what="x", urlsafe_ok=True) == data


_B64_ALPHABET = string.ascii_letters + string.digits + "+/=-_ \n\x00é"


@st.composite
def _base64_candidates(draw: st.DrawFn) -> str:
    """Near-misses of canonical base64: valid encodings with one edit, and random text."""
    if draw(st.booleans()):
        return draw(st.text(alphabet=_B64_ALPHABET, max_size=12))
    data = draw(st.binary(max_size=20))
    encode = draw(st.sampled_from([base64.b64encode, base64.urlsafe_b64encode]))
    text = encode(data).decode()
    position = draw(st.integers(0, len(text)))
    edit = draw(st.sampled_from(["keep", "replace", "insert", "delete"]))
    char = draw(st.sampled_from(_B64_ALPHABET))
    if edit == "replace" and position < len(text):
        return text[:position] + char + text[position + 1 :]
    if edit == "insert":
        return text[:position] + char + text[position:]
    if edit == "delete" and position < len(text):
        return text[:position] + text[position + 1 :]
    return text


@settings(max_examples=1500, deadline=None)
@given(_base64_candidates(), st.booleans(), st.sampled_from([KeyFormatError, FormatError]))
def test_decode_base64_judges_exactly_like_the_regex_decoder(
    text: str, urlsafe_ok: bool, error: type[FormatError]
) -> None:
    """The re-encoding check accepts, refuses and explains exactly what the regexes did."""
    new = oracles.outcome(lambda: decode_base64(text, what="f", urlsafe_ok=urlsafe_ok, error=error))
    old = oracles.outcome(
        lambda: oracles.decode_base64(text, what="f", urlsafe_ok=urlsafe_ok, error=error)
    )
    assert new == old


# --- key files ---------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_files_round_trip_with_modes(tmp_path: Path) -> None:
    key = PrivateKey.from_seed(bytes(range(32)))
    private = save_private_key(tmp_path / "keys" / "log.key", key, b"pw")
    public = save_public_key(tmp_path / "keys" / "log.pub", key.public_key)
    assert _mode(private) == 0o600
    assert _mode(public) == 0o644
    assert load_private_key(private, b"pw").seed == key.seed
    assert load_public_key(public) == key.public_key
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["log.key", "log.pub"]


def test_private_key_mode_ignores_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        path = save_private_key(tmp_path / "k", PrivateKey.generate())
    finally:
        os.umask(previous)
    assert _mode(path) == 0o600


def test_key_files_are_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        save_private_key(path, PrivateKey.generate())
    with pytest.raises(FileExistsError):
        save_public_key(path, PrivateKey.generate().public_key)
    assert path.read_bytes() == b"precious"
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        save_private_key(link, PrivateKey.generate())
    assert not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "k"]


def test_load_public_key_accepts_verifier_key_lines(tmp_path: Path) -> None:
    key = PublicKey(bytes.fromhex(RFC8032[1][1]))
    for number, text in enumerate(
        [
            key.verifier_key("w1") + "\n",
            key.verifier_key("w1"),
            key.verifier_key("w1", SIG_TYPE_COSIGNATURE_V1) + "\n",
        ]
    ):
        path = tmp_path / f"k{number}"
        path.write_text(text)
        assert load_public_key(path) == key


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe",
        b"garbage",
        GO_VKEY.encode() + b"\n\n",
        b" " + GO_VKEY.encode(),
        GO_VKEY.replace("c74f20a3", "c74f20a4").encode(),
        b"PeterNeumann+4e0e8bbd+AhpjMA==",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    ],
)
def test_load_public_key_refuses_malformed_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k"
    path.write_bytes(content)
    with pytest.raises(KeyFormatError):
        load_public_key(path)


def test_load_private_key_errors_are_key_format_errors(tmp_path: Path) -> None:
    path = save_private_key(tmp_path / "k", PrivateKey.generate(), b"secret")
    with pytest.raises(KeyFormatError):
        load_private_key(path)
    with pytest.raises(KeyFormatError):
        load_private_key(path, b"other")
    truncated = tmp_path / "t"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(KeyFormatError):
        load_private_key(truncated, b"secret")


def test_openssl_reads_our_encrypted_private_key(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl CLI must be on PATH for this interop test"
    key = PrivateKey.from_seed(bytes.fromhex(RFC8032[2][0]))
    save_private_key(tmp_path / "key.pem", key, b"s3cret passphrase")
    (tmp_path / "pass.txt").write_bytes(b"s3cret passphrase\n")
    result = subprocess.run(
        [openssl, "pkey", "-in", "key.pem", "-passin", "file:pass.txt", "-pubout"],
        cwd=tmp_path, capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout == key.public_key.to_pem()
    assert PublicKey.from_pem(result.stdout) == key.public_key  # what openssl writes, we read
    (tmp_path / "pass.txt").write_bytes(b"wrong\n")
    result = subprocess.run(
        [openssl, "pkey", "-in", "key.pem", "-passin", "file:pass.txt", "-pubout"],
        cwd=tmp_path, capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
