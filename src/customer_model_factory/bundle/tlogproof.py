"""C2SP ``tlog-proof@v1`` files: an offline proof that a log entry is in a signed checkpoint.

Format (c2sp.org/tlog-proof), lines separated by ``\\n``::

    c2sp.org/tlog-proof@v1
    extra <base64>            optional, opaque, unauthenticated
    index <decimal>           no leading zeros
    <base64 hash>             zero or more: the RFC 6962 inclusion path, leaf sibling first
                              (empty line)
    <checkpoint note>         verbatim, with the log signature and any cosignatures

We put the entry's leaf record (docs/ledger-format.md section 5) in ``extra``: it is what the
record hash is computed from (``SHA-256(0x00 || leaf)``), and the inclusion proof
authenticates it, so a verifier learns which kind, blob and envelope the entry binds.
"""

from __future__ import annotations

import base64
import binascii
import re

from .._frozen import frozen
from ..ledger.checkpoint import Checkpoint, open_checkpoint
from ..ledger.errors import FormatError, LedgerError, ProofError
from ..ledger.keys import PublicKey
from ..ledger.merkle import leaf_hash, verify_inclusion
from ..ledger.records import LeafRecord
from ..ledger.store import Ledger
from .format import HASH_SIZE, MAX_LEAF_BYTES, MAX_NOTE_BYTES, MAX_PROOF_HASHES

HEADER = "c2sp.org/tlog-proof@v1"
MAX_FILE_BYTES = MAX_NOTE_BYTES + 4 * MAX_LEAF_BYTES // 3 + 8 * 1024
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


class TlogProofError(FormatError):
    """A tlog-proof file is malformed."""


@frozen
class TlogProof:
    """A parsed tlog-proof: entry ``index``, its inclusion ``proof``, the signed checkpoint
    note bytes, and the optional unauthenticated ``extra`` data (our leaf record)."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None


def format_tlog_proof(proof: TlogProof) -> bytes:
    """Return the tlog-proof file bytes of ``proof``."""
    lines = [HEADER]
    if proof.extra is not None:
        lines.append("extra " + base64.b64encode(proof.extra).decode("ascii"))
    lines.append(f"index {proof.index}")
    lines.extend(base64.b64encode(h).decode("ascii") for h in proof.proof)
    return ("\n".join(lines) + "\n\n").encode("ascii") + proof.checkpoint


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse tlog-proof bytes strictly (bounded size, canonical base64, 32-byte hashes).

    The checkpoint part is returned verbatim; its signatures are checked by
    ``verify_tlog_proof``, not here.
    """
    if not isinstance(data, bytes):
        raise TypeError(f"tlog-proof data must be bytes, got {type(data).__name__}")
    if len(data) > MAX_FILE_BYTES:
        raise TlogProofError(f"tlog-proof: larger than {MAX_FILE_BYTES} bytes")
    head, separator, checkpoint = data.partition(b"\n\n")
    if not separator:
        raise TlogProofError("tlog-proof: no empty line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise TlogProofError("tlog-proof: the proof lines are not ASCII") from None
    if lines[0] != HEADER:
        raise TlogProofError(f"tlog-proof: first line is not {HEADER!r}")
    position = 1
    extra = None
    if position < len(lines) and lines[position].startswith("extra "):
        extra = _b64(lines[position][len("extra ") :], "extra")
        position += 1
    if position >= len(lines) or not lines[position].startswith("index "):
        raise TlogProofError("tlog-proof: missing the 'index <n>' line")
    index_text = lines[position][len("index ") :]
    if not _DECIMAL.fullmatch(index_text):
        raise TlogProofError(f"tlog-proof: index {index_text[:24]!r} is not a decimal")
    hashes = lines[position + 1 :]
    if len(hashes) > MAX_PROOF_HASHES:
        raise TlogProofError(f"tlog-proof: more than {MAX_PROOF_HASHES} proof hashes")
    proof = tuple(_hash(line) for line in hashes)
    if not checkpoint:
        raise TlogProofError("tlog-proof: the checkpoint is missing")
    return TlogProof(int(index_text), proof, checkpoint, extra)


def _b64(text: str, what: str) -> bytes:
    """Decode canonical standard base64; TlogProofError otherwise."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise TlogProofError(f"tlog-proof: {what} is not base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise TlogProofError(f"tlog-proof: {what} is not canonical base64")
    return raw


def _hash(line: str) -> bytes:
    """Decode one proof line: the base64 of a 32-byte hash."""
    if not line:
        raise TlogProofError("tlog-proof: an empty proof line")
    raw = _b64(line, "proof hash")
    if len(raw) != HASH_SIZE:
        raise TlogProofError(f"tlog-proof: a proof hash of {len(raw)} bytes, not {HASH_SIZE}")
    return raw


def verify_tlog_proof(
    proof: TlogProof, *, origin: str, log_key: PublicKey, leaf: bytes | None = None
) -> Checkpoint:
    """Verify the checkpoint signature and the inclusion of ``leaf`` (default: ``extra``).

    Returns the verified checkpoint. Raises SignatureError / FormatError for the checkpoint
    and ProofError when the entry is not proven at ``proof.index``.
    """
    checkpoint, _ = open_checkpoint(proof.checkpoint, origin=origin, key=log_key)
    data = leaf if leaf is not None else proof.extra
    if data is None:
        raise ProofError("tlog-proof: no leaf given and the file carries none in 'extra'")
    verify_inclusion(
        leaf_hash(data), proof.index, checkpoint.size, proof.proof, checkpoint.root_hash
    )
    return checkpoint


def verify_blob_proof(
    proof: TlogProof, blob_id: str, *, origin: str, log_key: PublicKey
) -> tuple[Checkpoint, LeafRecord]:
    """Verify a proof made by ``cmf proof``: its ``extra`` leaf is included and names
    ``blob_id``. Returns the checkpoint and the leaf record (kind, blob, envelope)."""
    if proof.extra is None:
        raise ProofError("tlog-proof: no leaf record in 'extra'")
    record = LeafRecord.from_bytes(proof.extra)
    if record.blob_id != blob_id:
        raise ProofError(f"tlog-proof: the entry is about blob {record.blob_id}, not {blob_id}")
    return verify_tlog_proof(proof, origin=origin, log_key=log_key), record


def proof_for_blob(ledger: Ledger, blob_id: str, *, index: int | None = None) -> TlogProof:
    """Return a tlog-proof for the entry recording ``blob_id`` under the latest checkpoint.

    ``index`` picks one of several entries of the blob (default: the first). LedgerError if
    the blob has no such entry or it is not yet covered by a checkpoint.
    """
    entries = ledger.entries_for_blob(blob_id)
    if index is not None:
        entries = [entry for entry in entries if entry.index == index]
    if not entries:
        where = "" if index is None else f" at log index {index}"
        raise LedgerError(f"blob {blob_id} has no log entry{where}")
    entry = entries[0]
    size = ledger.latest_checkpoint_size()
    if size is None or entry.index >= size:
        raise LedgerError(
            f"log entry {entry.index} is not covered by a signed checkpoint yet (latest: {size})"
        )
    return TlogProof(
        entry.index,
        tuple(ledger.inclusion_proof(entry.index, size)),
        ledger.checkpoint(size),
        extra=entry.leaf,
    )
