"""Ed25519 keys: raw, PEM, signed-note key text, and key files.

One key algorithm only (Ed25519, RFC 8032), so nothing downstream has to negotiate one. Encodings:

* key id: lowercase hex SHA-256 of the 32-byte raw public key;
* public key file: SubjectPublicKeyInfo PEM (``openssl pkey -pubin`` reads it), read and
  written here without ``cryptography``'s PEM machinery: an Ed25519 SubjectPublicKeyInfo is a
  fixed 12-byte DER prefix and the 32 key bytes (RFC 8410 section 4);
* private key file: PKCS#8 PEM, encrypted with the library's best available scheme when a
  passphrase is given;
* C2SP signed-note key text (also Go's ``golang.org/x/mod/sumdb/note``): verifier key
  ``<name>+<hex8 key hash>+<base64(type || public key)>`` and signer key
  ``PRIVATE+KEY+<name>+<hex8 key hash>+<base64(0x01 || seed)>``.

Every malformed key raises ``KeyFormatError`` with a message naming what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ed25519

from .._frozen import frozen
from .errors import FormatError, KeyFormatError

# ``cryptography.hazmat.primitives.serialization`` (and the other algorithms' modules) cost
# more start-up time than verifying a whole bundle's signatures: they are imported only by the
# functions that handle private keys or diagnose a foreign key, never on the verify path.

__all__ = [
    "ED25519_SPKI_PREFIX",
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "SIG_TYPE_COSIGNATURE_V1",
    "SIG_TYPE_ED25519",
    "PrivateKey",
    "PublicKey",
    "check_key_name",
    "decode_base64",
    "key_id",
    "load_private_key",
    "load_public_key",
    "note_key_hash",
    "save_private_key",
    "save_public_key",
]

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64

# Signature type identifier bytes assigned by C2SP signed-note (section "Signature types").
SIG_TYPE_ED25519 = 0x01
SIG_TYPE_COSIGNATURE_V1 = 0x04
_KEY_TEXT_TYPES = (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1)

_SIGNER_KEY_PREFIX = "PRIVATE+KEY+"
# Patterns, compiled (and cached by ``re``) on first use: most runs never need them.
_HEX8 = r"[0-9a-f]{8}"
_STD_B64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
_URL_B64 = r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?"
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_MAX_ECHO = 80  # longest input echoed back in an error message

# RFC 8410 section 4: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) },
# the DER of every Ed25519 SubjectPublicKeyInfo up to its 32 key bytes (parameters absent).
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_PEM_BEGIN = b"-----BEGIN PUBLIC KEY-----"  # RFC 7468 section 13 label
_PEM_END = b"-----END PUBLIC KEY-----"


# --- small shared encoders ---------------------------------------------------------------------


def decode_base64(
    text: str,
    *,
    what: str,
    urlsafe_ok: bool = False,
    error: type[FormatError] = KeyFormatError,
) -> bytes:
    """Decode padded RFC 4648 base64 (section 4; also section 5 when ``urlsafe_ok``), strictly.

    Only the canonical spelling of a byte string is accepted: correct padding, no whitespace,
    one alphabet per string, zero trailing bits. So every byte of an encoding is significant,
    which is what makes "flip any byte and verification fails" hold. Raises ``error`` (a
    FormatError) naming ``what``.
    """
    if not isinstance(text, str):
        raise error(f"{what}: expected base64 text, got {type(text).__name__}")
    decoded = _decode_canonical(text, urlsafe_ok=urlsafe_ok)
    if decoded is not None:
        return decoded
    # The rest only picks the message: the input is refused either way.
    if re.fullmatch(_STD_B64, text) or (urlsafe_ok and re.fullmatch(_URL_B64, text)):
        raise error(f"{what}: {_echo(text)} is not canonical base64 (non-zero pad bits)")
    raise error(f"{what}: {_echo(text)} is not padded base64")


def _decode_canonical(text: str, *, urlsafe_ok: bool) -> bytes | None:
    """Return the bytes ``text`` is the canonical base64 of, or None.

    The encoder's output is the one canonical spelling (padded, one alphabet, zero pad bits),
    so re-encoding what was decoded and comparing with ``text`` checks all of it at once, in
    C. The standard alphabet is tried first; a string in both alphabets decodes alike.
    """
    if not text.isascii():
        return None
    raw = text.encode("ascii")
    try:
        decoded = binascii.a2b_base64(raw, strict_mode=True)
    except binascii.Error:
        decoded = None
    if decoded is not None and binascii.b2a_base64(decoded, newline=False) == raw:
        return decoded
    if not urlsafe_ok:
        return None
    try:
        decoded = binascii.a2b_base64(raw.translate(_FROM_URLSAFE), strict_mode=True)
    except binascii.Error:
        return None
    if binascii.b2a_base64(decoded, newline=False).translate(_TO_URLSAFE) == raw:
        return decoded
    return None


def check_key_name(name: str, *, error: type[FormatError] = KeyFormatError) -> str:
    """Return ``name`` if it is a valid C2SP signed-note key name, else raise ``error``.

    signed-note "Format": non-empty, no Unicode space, no ``+``. Control characters are refused
    too, since no signed note may contain them.
    """
    if not isinstance(name, str):
        raise error(f"key name: expected a string, got {type(name).__name__}")
    if not name:
        raise error("key name: must not be empty")
    for char in name:
        if char.isspace() or char == "+" or ord(char) < 0x20:
            raise error(f"key name {_echo(name)}: contains {char!r}")
    if not _is_utf8_encodable(name):
        raise error(f"key name {_echo(name)}: not encodable as UTF-8")
    return name


def note_key_hash(name: str, sig_type: int, raw_public: bytes) -> bytes:
    """Return the 4-byte note key hash ``SHA-256(name || 0x0A || sig_type || key)[:4]``.

    C2SP signed-note "Signatures" (the recommended key ID, big-endian on the wire).
    """
    check_key_name(name)
    if isinstance(sig_type, bool) or not isinstance(sig_type, int) or not 0 <= sig_type <= 0xFF:
        raise KeyFormatError(f"signature type: expected one byte, got {sig_type!r}")
    _check_raw_public(raw_public)
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + raw_public).digest()
    return digest[:4]


def key_id(raw_public: bytes) -> str:
    """Return a key's id: lowercase hex SHA-256 of its 32-byte raw Ed25519 public key."""
    _check_raw_public(raw_public)
    return hashlib.sha256(raw_public).hexdigest()


# --- public keys -------------------------------------------------------------------------------


@frozen
class PublicKey:
    """An Ed25519 public key (RFC 8032 section 5.1.5 encoding, 32 bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        """Refuse anything but 32 raw bytes."""
        _check_raw_public(self.raw)

    @property
    def key_id(self) -> str:
        """Lowercase hex SHA-256 of the raw key."""
        return key_id(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Return True iff ``signature`` is a valid RFC 8032 Ed25519 signature of ``message``."""
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
            return False
        try:
            self._crypto().verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def to_pem(self) -> bytes:
        """Return the key as SubjectPublicKeyInfo PEM (RFC 8410 section 4, RFC 7468 section 13),
        byte for byte what ``openssl pkey -pubout`` and ``cryptography`` write."""
        body = base64.b64encode(ED25519_SPKI_PREFIX + self.raw)  # 60 characters: one line
        return b"\n".join((_PEM_BEGIN, body, _PEM_END, b""))

    @classmethod
    def from_pem(cls, data: bytes) -> PublicKey:
        """Parse an Ed25519 SubjectPublicKeyInfo PEM strictly; KeyFormatError for anything else.

        Accepted: exactly the BEGIN line, one line of canonical base64 of the 12-byte RFC 8410
        prefix and the 32 key bytes, and the END line, with LF, CRLF or CR line ends and an
        optional final one (what openssl and ``cryptography`` write). Refused, with a message
        naming why: another label or algorithm, bad base64, a wrong prefix or length, and any
        text before or after the block.
        """
        if not isinstance(data, bytes):
            raise KeyFormatError(f"public key PEM: expected bytes, got {type(data).__name__}")
        raw = _ed25519_spki_pem_key(data)
        if raw is None:
            raise _refused_public_pem(data)
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise KeyFormatError(f"public key PEM: not an Ed25519 public key ({exc})") from None
        return cls(raw)

    def verifier_key(self, name: str, sig_type: int = SIG_TYPE_ED25519) -> str:
        """Return the C2SP verifier key text ``name+hex8+base64(type || key)``.

        Type 0x01 (default) is a signed-note Ed25519 key; 0x04 is a tlog-cosignature/v1 key.
        """
        _check_key_text_type(sig_type)
        key_hash = note_key_hash(name, sig_type, self.raw)
        encoded = base64.b64encode(bytes([sig_type]) + self.raw).decode("ascii")
        return f"{name}+{key_hash.hex()}+{encoded}"

    @staticmethod
    def parse_verifier_key(text: str, sig_type: int = SIG_TYPE_ED25519) -> tuple[str, PublicKey]:
        """Parse C2SP verifier key text of type ``sig_type``; return ``(name, key)``.

        The key hash must be 8 lowercase hex digits and equal the hash recomputed from the name,
        the type byte and the key, so a mangled key text is refused rather than misread.
        """
        _check_key_text_type(sig_type)
        if not isinstance(text, str):
            raise KeyFormatError(f"verifier key: expected text, got {type(text).__name__}")
        parts = text.split("+", 2)  # the base64 part may itself contain "+"
        if len(parts) != 3:
            raise KeyFormatError(f"verifier key {_echo(text)}: expected name+hash+key")
        name, hash_hex, encoded = parts
        return name, _parse_key_text(name, hash_hex, encoded, sig_type, "verifier key")

    def _crypto(self) -> ed25519.Ed25519PublicKey:
        """Return the ``cryptography`` object for this key."""
        return ed25519.Ed25519PublicKey.from_public_bytes(self.raw)


# --- private keys ------------------------------------------------------------------------------


class PrivateKey:
    """An Ed25519 private key. Its ``repr`` never shows secret material."""

    __slots__ = ("_key",)

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        """Wrap a ``cryptography`` Ed25519 private key (use the classmethods instead)."""
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise KeyFormatError(f"expected an Ed25519 private key, got {_algorithm_name(key)}")
        self._key = key

    @classmethod
    def generate(cls) -> PrivateKey:
        """Return a fresh key from the operating system's CSPRNG."""
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """Return the key whose RFC 8032 32-byte private key (seed) is ``seed``."""
        if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
            raise KeyFormatError(f"Ed25519 seed: expected {SEED_SIZE} bytes")
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte RFC 8032 private key. Secret: handle with care."""
        return self._key.private_bytes_raw()

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return PublicKey(_raw_public(self._key.public_key()))

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte RFC 8032 Ed25519 signature of ``message`` (deterministic)."""
        if not isinstance(message, bytes):
            raise TypeError(f"message: expected bytes, got {type(message).__name__}")
        return self._key.sign(message)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """Return PKCS#8 PEM; encrypted (best available scheme) when a passphrase is given."""
        from cryptography.hazmat.primitives import serialization  # lazy: start-up of verify

        encryption: serialization.KeySerializationEncryption
        if passphrase is None:
            encryption = serialization.NoEncryption()
        else:
            _check_passphrase(passphrase)
            encryption = serialization.BestAvailableEncryption(passphrase)
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> PrivateKey:
        """Parse PKCS#8 PEM (encrypted iff ``passphrase`` is given) holding an Ed25519 key.

        Raises KeyFormatError for a wrong or missing passphrase, a passphrase given for an
        unencrypted key, a key of another algorithm, or a malformed or truncated file.
        """
        if not isinstance(data, bytes):
            raise KeyFormatError(f"private key PEM: expected bytes, got {type(data).__name__}")
        if passphrase is not None:
            _check_passphrase(passphrase)
        from cryptography.hazmat.primitives import serialization  # lazy: start-up of verify

        try:
            loaded = serialization.load_pem_private_key(data, passphrase)
        except TypeError:
            # cryptography signals a passphrase/encryption mismatch with TypeError.
            if passphrase is None:
                raise KeyFormatError(
                    "private key PEM: the key is encrypted and no passphrase was given"
                ) from None
            raise KeyFormatError(
                "private key PEM: a passphrase was given but the key is not encrypted"
            ) from None
        except ValueError:
            if passphrase is not None and b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data:
                raise KeyFormatError(
                    "private key PEM: cannot decrypt: wrong passphrase (or a corrupted file)"
                ) from None
            raise KeyFormatError("private key PEM: malformed or truncated") from None
        except UnsupportedAlgorithm as exc:
            raise KeyFormatError(f"private key PEM: unsupported key ({exc})") from None
        if not isinstance(loaded, ed25519.Ed25519PrivateKey):
            raise KeyFormatError(
                f"private key PEM: expected an Ed25519 key, got {_algorithm_name(loaded)}"
            )
        return cls(loaded)

    def signer_key(self, name: str) -> str:
        """Return Go ``sumdb/note`` signer key text ``PRIVATE+KEY+name+hex8+base64(0x01||seed)``."""
        key_hash = note_key_hash(name, SIG_TYPE_ED25519, self.public_key.raw)
        encoded = base64.b64encode(bytes([SIG_TYPE_ED25519]) + self.seed).decode("ascii")
        return f"{_SIGNER_KEY_PREFIX}{name}+{key_hash.hex()}+{encoded}"

    @classmethod
    def from_signer_key(cls, text: str) -> tuple[str, PrivateKey]:
        """Parse Go ``sumdb/note`` signer key text; return ``(name, key)``.

        The key hash is checked against the public key derived from the seed.
        """
        if not isinstance(text, str):
            raise KeyFormatError(f"signer key: expected text, got {type(text).__name__}")
        if not text.startswith(_SIGNER_KEY_PREFIX):
            raise KeyFormatError("signer key: must start with PRIVATE+KEY+")
        parts = text[len(_SIGNER_KEY_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError("signer key: expected PRIVATE+KEY+name+hash+key")
        name, hash_hex, encoded = parts
        check_key_name(name)
        if not re.fullmatch(_HEX8, hash_hex):
            raise KeyFormatError("signer key: key hash must be 8 lowercase hex digits")
        body = decode_base64(encoded, what="signer key")
        if len(body) != 1 + SEED_SIZE or body[0] != SIG_TYPE_ED25519:
            raise KeyFormatError("signer key: expected base64(0x01 || 32-byte seed)")
        key = cls.from_seed(body[1:])
        if note_key_hash(name, SIG_TYPE_ED25519, key.public_key.raw).hex() != hash_hex:
            raise KeyFormatError("signer key: key hash does not match the key")
        return name, key

    def __repr__(self) -> str:
        """Show the public key id only."""
        return f"PrivateKey(key_id={self.public_key.key_id!r})"


# --- key files ---------------------------------------------------------------------------------


def save_private_key(path: Path, key: PrivateKey, passphrase: bytes | None = None) -> Path:
    """Write ``key`` as PKCS#8 PEM to a new file created with mode 0600; return the path.

    The file appears atomically and complete (temp file, fsync, hard link, fsync directory);
    an existing file is never overwritten (FileExistsError), even when created concurrently.
    """
    return _create_new_file(Path(path), key.to_pem(passphrase), 0o600)


def load_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """Read a PKCS#8 PEM private key file written by ``save_private_key``."""
    return PrivateKey.from_pem(Path(path).read_bytes(), passphrase)


def save_public_key(path: Path, key: PublicKey) -> Path:
    """Write ``key`` as SubjectPublicKeyInfo PEM to a new file (mode 0644); return the path.

    Same atomic, never-overwrite guarantees as ``save_private_key``: a pinned key is a trust
    anchor, so replacing one must be a deliberate delete first.
    """
    return _create_new_file(Path(path), key.to_pem(), 0o644)


def load_public_key(path: Path) -> PublicKey:
    """Read a public key file: SubjectPublicKeyInfo PEM, or one verifier-key line.

    A verifier-key line may have type 0x01 (signed-note) or 0x04 (cosignature/v1) and may end
    in one newline; its name is checked against its key hash, then dropped.
    """
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return PublicKey.from_pem(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError(f"{path}: neither PEM nor a verifier key line") from None
    line = text.removesuffix("\n")
    try:
        return PublicKey.parse_verifier_key(line, _verifier_key_type(line))[1]
    except KeyFormatError as exc:
        raise KeyFormatError(f"{path}: {exc}") from None


# --- private helpers ---------------------------------------------------------------------------


def _verifier_key_type(text: str) -> int:
    """Return the type byte a verifier key text declares (its decoded key's first byte)."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("neither PEM nor a verifier key line (name+hash+key)")
    body = decode_base64(parts[2], what="verifier key")
    if not body:
        raise KeyFormatError("verifier key: empty key")
    return body[0]


def _parse_key_text(name: str, hash_hex: str, encoded: str, sig_type: int, what: str) -> PublicKey:
    """Check a verifier key's three fields and return its public key."""
    check_key_name(name)
    if not re.fullmatch(_HEX8, hash_hex):
        raise KeyFormatError(f"{what}: key hash must be 8 lowercase hex digits")
    body = decode_base64(encoded, what=what)
    if len(body) != 1 + PUBLIC_KEY_SIZE:
        raise KeyFormatError(f"{what}: expected base64(type || 32-byte key)")
    if body[0] != sig_type:
        raise KeyFormatError(f"{what}: type byte {body[0]:#04x}, expected {sig_type:#04x}")
    key = PublicKey(body[1:])
    if note_key_hash(name, sig_type, key.raw).hex() != hash_hex:
        raise KeyFormatError(f"{what}: key hash {hash_hex} does not match the name and key")
    return key


def _create_new_file(path: Path, data: bytes, mode: int) -> Path:
    """Create ``path`` holding ``data`` with ``mode``, atomically, refusing to replace a file."""
    import tempfile  # only key generation writes: see _jsonfile.atomic_write_bytes

    if path.exists() or path.is_symlink():
        raise FileExistsError(f"{path}: refusing to overwrite an existing file")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp creates 0600 whatever the umask; set the exact mode wanted.
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # link(2), unlike rename(2), fails if the target exists: no check-then-act race.
        os.link(tmp_name, path)
    finally:
        os.unlink(tmp_name)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def _check_raw_public(raw: bytes) -> None:
    """Raise KeyFormatError unless ``raw`` is 32 bytes."""
    if not isinstance(raw, bytes) or len(raw) != PUBLIC_KEY_SIZE:
        size = len(raw) if isinstance(raw, bytes | bytearray) else type(raw).__name__
        raise KeyFormatError(f"Ed25519 public key: expected {PUBLIC_KEY_SIZE} bytes, got {size}")


def _check_key_text_type(sig_type: int) -> None:
    """Raise KeyFormatError unless ``sig_type`` is a type our key texts support."""
    if sig_type not in _KEY_TEXT_TYPES:
        raise KeyFormatError(f"key text type {sig_type!r}: only 0x01 and 0x04 are supported")


def _check_passphrase(passphrase: bytes) -> None:
    """Raise ValueError unless the passphrase is non-empty bytes."""
    if not isinstance(passphrase, bytes) or not passphrase:
        raise ValueError("passphrase: expected non-empty bytes")


def _raw_public(key: ed25519.Ed25519PublicKey) -> bytes:
    """Return the 32 raw bytes of a ``cryptography`` Ed25519 public key."""
    return key.public_bytes_raw()


def _ed25519_spki_pem_key(data: bytes) -> bytes | None:
    """Return the 32 key bytes if ``data`` is exactly an Ed25519 SubjectPublicKeyInfo PEM block
    (``PublicKey.from_pem``'s accepted form: RFC 7468 section 13, RFC 8410 section 4), else None.
    """
    lines = data.splitlines()  # RFC 7468 line ends (LF, CRLF, CR); drops one final line end
    if len(lines) != 3 or lines[0] != _PEM_BEGIN or lines[2] != _PEM_END:
        return None
    try:
        der = decode_base64(lines[1].decode("ascii"), what="public key PEM")
    except (UnicodeDecodeError, KeyFormatError):
        return None
    if len(der) != len(ED25519_SPKI_PREFIX) + PUBLIC_KEY_SIZE:
        return None
    if not der.startswith(ED25519_SPKI_PREFIX):
        return None
    return der[len(ED25519_SPKI_PREFIX) :]


def _refused_public_pem(data: bytes) -> KeyFormatError:
    """Return the error explaining why ``data`` is not an accepted Ed25519 public key PEM.

    Only for messages: ``cryptography``'s lenient parser names a foreign algorithm or what is
    malformed. Whatever it makes of ``data``, the key is refused.
    """
    from cryptography.hazmat.primitives import serialization  # lazy: start-up of verify

    try:
        loaded = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        return KeyFormatError(f"public key PEM: malformed or unsupported ({exc})")
    if not isinstance(loaded, ed25519.Ed25519PublicKey):
        return KeyFormatError(
            f"public key PEM: expected an Ed25519 key, got {_algorithm_name(loaded)}"
        )
    return KeyFormatError(
        "public key PEM: not in the one accepted form (the BEGIN PUBLIC KEY line, one line of "
        "base64, the END line, nothing before or after)"
    )


def _algorithm_name(key: object) -> str:
    """Name a foreign key's algorithm for an error message."""
    # Lazy: only a refused foreign key (already parsed by ``cryptography``) gets here.
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa, x448, x25519

    names: tuple[tuple[tuple[type, ...], str], ...] = (
        ((rsa.RSAPrivateKey, rsa.RSAPublicKey), "RSA"),
        ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), "ECDSA"),
        ((dsa.DSAPrivateKey, dsa.DSAPublicKey), "DSA"),
        ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "Ed448"),
        ((x25519.X25519PrivateKey, x25519.X25519PublicKey), "X25519"),
        ((x448.X448PrivateKey, x448.X448PublicKey), "X448"),
    )
    for kinds, name in names:
        if isinstance(key, kinds):
            return name
    return type(key).__name__


def _is_utf8_encodable(text: str) -> bool:
    """Return False for strings holding lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _echo(value: str) -> str:
    """Quote ``value`` for an error message, truncated."""
    return repr(value if len(value) <= _MAX_ECHO else value[:_MAX_ECHO] + "...")
