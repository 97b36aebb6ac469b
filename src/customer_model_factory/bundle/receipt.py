"""Receipts: a receiving site cosigns the checkpoint it accepted; the sender stores it.

A receipt is the accepted checkpoint note (log signature kept) with one more signature line: the
receiver's ``cosignature/v1`` (C2SP tlog-cosignature, type 0x04) made with its witness key at a
given time. It says "as of this time, this is the largest tree of this log I have accepted".
Shipped back to the sender (the same sneakernet as the bundle), ``add_receipt`` verifies it
against the sender's own stored checkpoint and adds the cosignature there
(``LedgerWriter.add_cosignature``), so the sender's log proves which history each site took.
"""

from __future__ import annotations

from pathlib import Path

from ..ledger.checkpoint import open_checkpoint
from ..ledger.errors import FormatError, LedgerError, SignatureError
from ..ledger.keys import SIG_TYPE_COSIGNATURE_V1, PrivateKey, PublicKey, note_key_hash
from ..ledger.note import Note, NoteSignature, cosign, format_note, parse_note, verify_cosignature
from ..ledger.store import Ledger, LedgerWriter
from .importer import accepted_checkpoints, imported_origins, read_state


def pick_origin(ledger_path: Path, origin: str | None) -> str:
    """Return ``origin`` if this ledger imported from it, or the only origin it imported from."""
    origins = imported_origins(ledger_path)
    if origin is not None:
        if origin not in origins:
            raise LedgerError(f"{ledger_path}: nothing was imported from {origin!r}")
        return origin
    if len(origins) != 1:
        listed = ", ".join(origins) or "none"
        raise LedgerError(
            f"{ledger_path}: imported from {len(origins)} logs ({listed}); name one with --origin"
        )
    return origins[0]


def make_receipt(
    ledger_path: Path, *, witness: PrivateKey, name: str, timestamp: int, origin: str | None = None
) -> bytes:
    """Return a receipt for the latest checkpoint this ledger accepted from ``origin``.

    The stored checkpoint is re-verified with the recorded log key before it is cosigned
    (a witness cosigns only what it has verified).
    """
    origin = pick_origin(ledger_path, origin)
    state = read_state(ledger_path, origin)
    if state is None:
        raise LedgerError(f"{ledger_path}: nothing was imported from {origin!r}")
    note_bytes = accepted_checkpoints(ledger_path, state)[state.checkpoint_size]
    _, note = open_checkpoint(note_bytes, origin=origin, key=state.public_log_key())
    signature = cosign(note.text, name, witness, timestamp)
    kept = tuple(s for s in note.signatures if s != signature)
    return format_note(Note(note.text, (*kept, signature)))


def receipt_cosignature(
    receipt: bytes, witness: PublicKey, *, name: str | None = None
) -> NoteSignature:
    """Return the cosignature by ``witness`` (under ``name`` if given) the receipt carries.

    Only its presence is checked here; ``add_receipt`` verifies it against the sender's own
    checkpoint text. SignatureError if there is none.
    """
    note = parse_note(receipt)
    for sig in note.signatures:
        if name is not None and sig.name != name:
            continue
        if note_key_hash(sig.name, SIG_TYPE_COSIGNATURE_V1, witness.raw) == sig.key_hash:
            return sig
    raise SignatureError(f"the receipt carries no cosignature by witness key {witness.key_id}")


def add_receipt(
    ledger: Ledger,
    writer: LedgerWriter,
    receipt: bytes,
    witness: PublicKey,
    *,
    name: str | None = None,
) -> tuple[int, int]:
    """Verify a receipt for one of this ledger's checkpoints and store its cosignature.

    The receipt must be this log's checkpoint (log signature verified with the ledger's key)
    and the witness's cosignature must verify over that same checkpoint text, which must be
    the text this ledger signed at that size (else it is another history: SignatureError).
    Returns (tree size, cosignature timestamp). Adding the same receipt twice is a no-op.
    """
    try:
        checkpoint, note = open_checkpoint(receipt, origin=ledger.origin, key=ledger.log_public_key)
    except (FormatError, SignatureError) as exc:
        raise SignatureError(
            f"the receipt is not a checkpoint of this ledger's log: {exc}"
        ) from None
    signature = receipt_cosignature(receipt, witness, name=name)
    timestamp = verify_cosignature(note.text, signature, witness)
    _, ours = open_checkpoint(
        ledger.checkpoint(checkpoint.size), origin=ledger.origin, key=ledger.log_public_key
    )
    if ours.text != note.text:
        raise SignatureError(
            f"the receipt cosigns a checkpoint of size {checkpoint.size} that this ledger did not "
            "sign (another root): the receiver accepted a different history"
        )
    writer.add_cosignature(checkpoint.size, signature, witness)
    return checkpoint.size, timestamp
