"""C2SP signed notes (c2sp.org/signed-note) and tlog cosignatures (c2sp.org/tlog-cosignature).

A signed note is ``text`` (UTF-8, ending in a newline) + a blank line + one or more lines
``"— " name " " base64(key hash || signature) "\\n"``. Signing produces Ed25519 signatures of
type 0x01 over the text bytes; cosigning produces ``cosignature/v1`` signatures of type 0x04,
whose bytes are ``u64 big-endian timestamp || Ed25519 signature`` over
``"cosignature/v1\\ntime <t>\\n" + text``. Bytes written here are read by Go's
``golang.org/x/mod/sumdb/note`` and vice versa.
"""

from __future__ import annotations

import base64
import re

from .._frozen import frozen
from .errors import FormatError, SignatureError
from .keys import (
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    SIGNATURE_SIZE,
    PrivateKey,
    PublicKey,
    check_key_name,
    decode_base64,
    note_key_hash,
)

__all__ = [
    "COSIGNATURE_SIZE",
    "KEY_HASH_SIZE",
    "MAX_SIGNATURES",
    "MAX_TIMESTAMP",
    "Note",
    "NoteSignature",
    "check_note_text",
    "cosign",
    "cosignature_message",
    "cosignature_timestamp",
    "format_note",
    "note_key_hash",
    "parse_note",
    "sign_note",
    "verify_cosignature",
    "verify_note",
]

MAX_SIGNATURES = 100  # Go's sumdb/note limit; C2SP requires accepting at least 16
MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: "MUST NOT exceed 2^63 - 1"
COSIGNATURE_SIZE = 8 + SIGNATURE_SIZE  # u64 timestamp || Ed25519 signature
KEY_HASH_SIZE = 4

_SIG_PREFIX = "— "  # U+2014 EM DASH, U+0020 SPACE
_SEPARATOR = "\n\n"
_COSIGNATURE_HEADER = "cosignature/v1\n"
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII controls except newline (0x0a)


@frozen
class NoteSignature:
    """One signature line: key name, 4-byte key hash, and the signature bytes after it."""

    name: str
    key_hash: bytes
    signature: bytes

    def __post_init__(self) -> None:
        """Check the name, the 4-byte key hash and a non-empty signature."""
        check_key_name(self.name, error=FormatError)
        if not isinstance(self.key_hash, bytes) or len(self.key_hash) != KEY_HASH_SIZE:
            raise FormatError("note signature: key hash must be 4 bytes")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise FormatError("note signature: signature bytes must not be empty")

    def to_line(self) -> str:
        """Return the signature line ``— name base64(key_hash || signature)\\n``."""
        encoded = base64.b64encode(self.key_hash + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {encoded}\n"


@frozen
class Note:
    """A signed note: its text (ending in a newline) and 1 to 100 signatures, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        """Check the text and the signature count."""
        check_note_text(self.text)
        if not isinstance(self.signatures, tuple) or not all(
            isinstance(sig, NoteSignature) for sig in self.signatures
        ):
            raise FormatError("note: signatures must be a tuple of NoteSignature")
        if not 1 <= len(self.signatures) <= MAX_SIGNATURES:
            raise FormatError(
                f"note: {len(self.signatures)} signatures, expected 1 to {MAX_SIGNATURES}"
            )


def check_note_text(text: str) -> str:
    """Return ``text`` if it is valid note text, else raise FormatError.

    signed-note "Format": UTF-8, no ASCII control character but newline, ends in a newline.
    """
    if not isinstance(text, str):
        raise FormatError(f"note text: expected a string, got {type(text).__name__}")
    if not text.endswith("\n"):
        raise FormatError("note text: must end with a newline")
    _check_characters(text, "note text")
    return text


def parse_note(data: bytes) -> Note:
    """Parse signed-note bytes strictly; raise FormatError on any deviation from C2SP.

    The text is everything up to and including the newline before the *last* blank line.
    Signatures are returned in file order, duplicates included, so ``format_note`` gives the
    input back byte for byte.
    """
    if not isinstance(data, bytes):
        raise FormatError(f"note: expected bytes, got {type(data).__name__}")
    try:
        whole = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"note: not valid UTF-8 at byte {exc.start}") from None
    _check_characters(whole, "note")
    split = whole.rfind(_SEPARATOR)
    if split < 0:
        raise FormatError("note: no blank line before the signatures")
    text, block = whole[: split + 1], whole[split + 2 :]
    if not block:
        raise FormatError("note: no signature lines")
    if not block.endswith("\n"):
        raise FormatError("note: the last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(f"note: {len(lines)} signatures, at most {MAX_SIGNATURES} allowed")
    return Note(text, tuple(_parse_signature_line(line) for line in lines))


def format_note(note: Note) -> bytes:
    """Return the wire bytes of ``note``: text, blank line, signature lines."""
    lines = "".join(sig.to_line() for sig in note.signatures)
    return (note.text + "\n" + lines).encode("utf-8")


def sign_note(text: str, name: str, key: PrivateKey) -> NoteSignature:
    """Return a type 0x01 Ed25519 note signature of ``text`` by ``key`` under ``name``.

    signed-note "Ed25519 signatures": RFC 8032 over the text bytes (final newline included).
    """
    check_note_text(text)
    key_hash = note_key_hash(name, SIG_TYPE_ED25519, key.public_key.raw)
    return NoteSignature(name, key_hash, key.sign(text.encode("utf-8")))


def verify_note(note: Note, name: str, key: PublicKey) -> None:
    """Raise SignatureError unless ``key`` under ``name`` has signed ``note`` (type 0x01).

    Lines whose (name, key hash) differ are ignored, as signed-note requires. Every line that
    matches must verify (a bad one rejects the note, the spec's SHOULD), and at least one must.
    """
    key_hash = note_key_hash(name, SIG_TYPE_ED25519, key.raw)
    message = note.text.encode("utf-8")
    matching = [s for s in note.signatures if s.name == name and s.key_hash == key_hash]
    if not matching:
        raise SignatureError(f"note: no signature by {name}+{key_hash.hex()}")
    for sig in matching:
        if not key.verify(sig.signature, message):
            raise SignatureError(f"note: invalid signature by {name}+{key_hash.hex()}")


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """Return the bytes a cosignature/v1 signs (tlog-cosignature "Ed25519 signed message").

    ``"cosignature/v1\\n" + "time " + decimal timestamp + "\\n" + checkpoint text``.
    """
    check_note_text(checkpoint_text)
    _check_timestamp(timestamp)
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n{checkpoint_text}".encode()


def cosign(checkpoint_text: str, name: str, key: PrivateKey, timestamp: int) -> NoteSignature:
    """Return a type 0x04 cosignature/v1 of ``checkpoint_text`` by witness ``key`` at ``timestamp``.

    The signature bytes are ``u64 big-endian timestamp || Ed25519 signature`` (tlog-cosignature
    "Format"). The v1 message does not bind ``name``: use one key per cosigner.
    """
    message = cosignature_message(checkpoint_text, timestamp)
    key_hash = note_key_hash(name, SIG_TYPE_COSIGNATURE_V1, key.public_key.raw)
    return NoteSignature(name, key_hash, timestamp.to_bytes(8, "big") + key.sign(message))


def cosignature_timestamp(sig: NoteSignature) -> int:
    """Return the timestamp a cosignature/v1 claims, WITHOUT verifying it."""
    if len(sig.signature) != COSIGNATURE_SIZE:
        raise FormatError(
            f"cosignature: {len(sig.signature)} signature bytes, expected {COSIGNATURE_SIZE}"
        )
    timestamp = int.from_bytes(sig.signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise FormatError("cosignature: timestamp exceeds 2^63 - 1")
    return timestamp


def verify_cosignature(
    checkpoint_text: str, sig: NoteSignature, key: PublicKey, *, name: str | None = None
) -> int:
    """Verify a cosignature/v1 of ``checkpoint_text`` by ``key``; return its timestamp.

    The key hash must be the type 0x04 hash of (``sig.name``, ``key``); when ``name`` is given
    ``sig.name`` must equal it. Raises FormatError for a malformed signature and SignatureError
    when it does not verify.
    """
    if name is not None and sig.name != name:
        raise SignatureError(f"cosignature: signed as {sig.name!r}, expected {name!r}")
    expected = note_key_hash(sig.name, SIG_TYPE_COSIGNATURE_V1, key.raw)
    if sig.key_hash != expected:
        raise SignatureError(
            f"cosignature: key hash {sig.key_hash.hex()} is not {sig.name}+{expected.hex()}"
        )
    timestamp = cosignature_timestamp(sig)
    if not key.verify(sig.signature[8:], cosignature_message(checkpoint_text, timestamp)):
        raise SignatureError(f"cosignature: invalid signature by {sig.name}+{expected.hex()}")
    return timestamp


def _parse_signature_line(line: str) -> NoteSignature:
    """Parse one signature line (without its newline)."""
    if not line.startswith(_SIG_PREFIX):
        raise FormatError(f"note: signature line does not start with '— ': {line[:40]!r}")
    name, space, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    if not space:
        raise FormatError(f"note: signature line has no space after the key name: {line[:40]!r}")
    check_key_name(name, error=FormatError)
    raw = decode_base64(encoded, what=f"note: signature by {name!r}", error=FormatError)
    if len(raw) <= KEY_HASH_SIZE:
        raise FormatError(f"note: signature by {name!r} is shorter than 5 bytes")
    return NoteSignature(name, raw[:KEY_HASH_SIZE], raw[KEY_HASH_SIZE:])


def _check_characters(text: str, what: str) -> None:
    """Raise FormatError on a control character other than newline, or a lone surrogate."""
    bad = _CONTROL.search(text)
    if bad is not None:
        raise FormatError(f"{what}: control character {bad.group()!r} at offset {bad.start()}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(f"{what}: not encodable as UTF-8 at offset {exc.start}") from None


def _check_timestamp(timestamp: int) -> None:
    """Raise FormatError unless 0 <= timestamp <= 2^63 - 1."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise FormatError(f"timestamp: expected an integer, got {type(timestamp).__name__}")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise FormatError(f"timestamp {timestamp}: must be within 0 .. 2^63 - 1")
