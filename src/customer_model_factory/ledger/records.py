"""Leaf records: the exact bytes hashed into the Merkle log (docs/ledger-format.md section 5).

    b"cmf-leaf/v1\\n" + kind + b"\\n" + blob_id + b"\\n" + envelope_id + b"\\n"

``kind`` matches ``[a-z0-9_.-]{1,64}``; both ids are 64 lowercase hex characters. Parsing is
strict: exactly one encoding is accepted for each record, so a leaf hash names one record.
"""

from __future__ import annotations

import re

from .._frozen import frozen
from .blobs import BLOB_ID_PATTERN
from .errors import FormatError

LEAF_MAGIC = b"cmf-leaf/v1\n"
KIND_PATTERN = re.compile(r"[a-z0-9_.-]{1,64}")
_KIND_BYTES = re.compile(rb"[a-z0-9_.-]{1,64}")
_ID_BYTES = re.compile(rb"[0-9a-f]{64}")


def validate_kind(kind: str) -> str:
    """Return ``kind`` if it matches ``[a-z0-9_.-]{1,64}``, else raise FormatError."""
    if not isinstance(kind, str) or KIND_PATTERN.fullmatch(kind) is None:
        raise FormatError(f"not a record kind ([a-z0-9_.-]{{1,64}}): {kind!r}")
    return kind


def _require_id(value: str, what: str) -> str:
    if not isinstance(value, str) or BLOB_ID_PATTERN.fullmatch(value) is None:
        raise FormatError(f"leaf record {what}: not 64 lowercase hex characters: {value!r}")
    return value


@frozen
class LeafRecord:
    """One log leaf: binds a record kind, the subject blob id and the DSSE envelope's blob id."""

    kind: str
    blob_id: str
    envelope_id: str

    def __post_init__(self) -> None:
        validate_kind(self.kind)
        _require_id(self.blob_id, "blob id")
        _require_id(self.envelope_id, "envelope id")

    def to_bytes(self) -> bytes:
        """Return the canonical leaf bytes (ASCII, four newline-terminated lines)."""
        return b"".join(
            (
                LEAF_MAGIC,
                self.kind.encode("ascii"),
                b"\n",
                self.blob_id.encode("ascii"),
                b"\n",
                self.envelope_id.encode("ascii"),
                b"\n",
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LeafRecord:
        """Parse leaf bytes strictly; FormatError unless ``to_bytes`` would give ``data`` back."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise FormatError(f"leaf record: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if not data.startswith(LEAF_MAGIC):
            raise FormatError("leaf record: does not start with b'cmf-leaf/v1\\n'")
        fields = data[len(LEAF_MAGIC) :].split(b"\n")
        if len(fields) != 4 or fields[3] != b"":
            raise FormatError(
                "leaf record: expected kind, blob id and envelope id, each ending in one newline"
            )
        kind, blob_id, envelope_id = fields[:3]
        if _KIND_BYTES.fullmatch(kind) is None:
            raise FormatError(f"leaf record kind: not [a-z0-9_.-]{{1,64}}: {kind!r}")
        for what, value in (("blob id", blob_id), ("envelope id", envelope_id)):
            if _ID_BYTES.fullmatch(value) is None:
                raise FormatError(f"leaf record {what}: not 64 lowercase hex characters: {value!r}")
        return cls(kind.decode("ascii"), blob_id.decode("ascii"), envelope_id.decode("ascii"))
