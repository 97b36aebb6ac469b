"""C2SP tlog-checkpoint tree heads (c2sp.org/tlog-checkpoint), signed as C2SP signed notes.

Checkpoint text is exactly three lines: the log origin, the tree size in decimal without leading
zeros, and the standard base64 of the 32-byte RFC 6962 root hash, each ending in a newline.
Extension lines are never written and never accepted. The log signs the text with its Ed25519
key under the key name ``origin`` (signature type 0x01).
"""

from __future__ import annotations

import base64
import re

from .._frozen import frozen
from .errors import FormatError, SignatureError
from .keys import PrivateKey, PublicKey, check_key_name, decode_base64
from .note import Note, format_note, parse_note, sign_note, verify_note

__all__ = ["HASH_SIZE", "MAX_TREE_SIZE", "Checkpoint", "open_checkpoint", "sign_checkpoint"]

HASH_SIZE = 32
MAX_TREE_SIZE = 2**63 - 1  # Go's tlog and most tooling hold sizes in an int64

_DECIMAL = re.compile(r"0|[1-9][0-9]*")  # ASCII digits only, no leading zeros


@frozen
class Checkpoint:
    """A log tree head: origin, tree size and RFC 6962 root hash."""

    origin: str
    size: int
    root_hash: bytes

    def __post_init__(self) -> None:
        """Check the origin is a valid note key name, the size an int64, the root 32 bytes."""
        check_key_name(self.origin, error=FormatError)
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise FormatError(f"checkpoint size: expected an integer, got {self.size!r}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise FormatError(f"checkpoint size {self.size}: must be within 0 .. 2^63 - 1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise FormatError(f"checkpoint root hash: expected {HASH_SIZE} bytes")

    def to_text(self) -> str:
        """Return the note text ``origin\\nsize\\nbase64(root)\\n`` (tlog-checkpoint)."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n"

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse checkpoint text strictly: three lines, no extension lines, final newline."""
        if not isinstance(text, str):
            raise FormatError(f"checkpoint: expected text, got {type(text).__name__}")
        if not text.endswith("\n"):
            raise FormatError("checkpoint: text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise FormatError(f"checkpoint: {len(lines)} lines, expected origin, size and root")
        if len(lines) > 3:
            raise FormatError(
                f"checkpoint: {len(lines) - 3} extension line(s) after the root hash; "
                "this ledger neither writes nor accepts extension lines"
            )
        origin, size_text, root_text = lines
        if not _DECIMAL.fullmatch(size_text):
            raise FormatError(
                f"checkpoint: tree size {size_text[:40]!r} is not decimal without leading zeros"
            )
        root = decode_base64(root_text, what="checkpoint root hash", error=FormatError)
        return cls(origin, int(size_text), root)


def sign_checkpoint(cp: Checkpoint, key: PrivateKey) -> bytes:
    """Return the signed-note bytes of ``cp`` signed by the log ``key`` under the name origin."""
    text = cp.to_text()
    return format_note(Note(text, (sign_note(text, cp.origin, key),)))


def open_checkpoint(data: bytes, *, origin: str, key: PublicKey) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint from the log ``origin`` with its ``key``; return it and its note.

    Order matters: the note is parsed, then its signature by ``origin``/``key`` is verified, and
    only then is the text interpreted (signed-note: ignore text that is not verified). Other
    signature lines (cosignatures) are kept in the returned note for the caller to check.
    Raises FormatError for malformed bytes and SignatureError for a missing or bad signature or
    a checkpoint whose origin line is not ``origin``.
    """
    note = parse_note(data)
    verify_note(note, origin, key)
    checkpoint = Checkpoint.from_text(note.text)
    if checkpoint.origin != origin:
        raise SignatureError(
            f"checkpoint: origin line {checkpoint.origin!r} is not the log's origin {origin!r}"
        )
    return checkpoint, note
