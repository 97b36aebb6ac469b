"""What chain verification reads, and its adapter over a ledger directory.

``ChainSource`` is deliberately small and untrusted: it hands over stored bytes, log entries,
the latest checkpoint and inclusion proofs, and the verifier checks every one of them (hashes,
signatures, proofs) against the pinned trust root. A ledger (``LedgerSource``) and an offline
bundle implement the same protocol. Envelopes are blobs too (their id is the SHA-256 of the
envelope JSON), so ``blob`` serves both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..ledger.objects import ObjectNotFoundError
from ..ledger.records import LeafRecord
from ..ledger.store import Ledger, LogEntry


@dataclass(frozen=True)
class SourceEntry:
    """One log entry as a source reports it: position, kind, subject blob and envelope blob."""

    index: int
    kind: str
    blob_id: str
    envelope_id: str

    def leaf_bytes(self) -> bytes:
        """Return the leaf record bytes this entry claims (docs/ledger-format.md section 5).

        The verifier rebuilds the leaf from these fields and proves its inclusion, so a source
        cannot report an entry that is not in the signed log.
        """
        return LeafRecord(self.kind, self.blob_id, self.envelope_id).to_bytes()


class ChainSource(Protocol):
    """The read-only, untrusted view that ``verify_release_chain`` checks."""

    def blob(self, blob_id: str) -> bytes | None:
        """Return the stored bytes of ``blob_id`` exactly as stored (not re-hashed), or None."""
        ...

    def blob_path(self, blob_id: str) -> Path | None:
        """Return a file holding the stored bytes of ``blob_id`` (for streaming), or None."""
        ...

    def entries_for_blob(self, blob_id: str) -> Sequence[SourceEntry]:
        """Return every log entry whose subject is ``blob_id``, in log order."""
        ...

    def entries_of_kind(self, kind: str) -> Sequence[SourceEntry]:
        """Return every log entry of ``kind``, in log order (trust policies, promotions)."""
        ...

    def latest_checkpoint(self) -> bytes | None:
        """Return the latest signed checkpoint note, or None when the log has none."""
        ...

    def inclusion_proof(self, index: int, size: int) -> Sequence[bytes]:
        """Return the RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

        May raise ``LedgerError`` or ``ValueError`` for an impossible request; the verifier
        reports that as a finding.
        """
        ...


def _source_entry(entry: LogEntry) -> SourceEntry:
    """Convert a ledger LogEntry to the source's entry type."""
    return SourceEntry(entry.index, entry.kind, entry.blob_id, entry.envelope_id)


class LedgerSource:
    """A ChainSource over an open ``store.Ledger``: every read goes to the ledger directory."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def blob(self, blob_id: str) -> bytes | None:
        """Return the raw stored bytes (a tampered blob is returned as is, for the verifier)."""
        try:
            return self._ledger.objects.read_unverified(blob_id)
        except ObjectNotFoundError:
            return None

    def blob_path(self, blob_id: str) -> Path | None:
        """Return the object file of ``blob_id`` if it exists."""
        path = self._ledger.objects.path(blob_id)
        return path if path.is_file() else None

    def entries_for_blob(self, blob_id: str) -> list[SourceEntry]:
        """Return the ledger's indexed entries for ``blob_id``."""
        return [_source_entry(entry) for entry in self._ledger.entries_for_blob(blob_id)]

    def entries_of_kind(self, kind: str) -> list[SourceEntry]:
        """Return the ledger's entries of ``kind`` through its kind index (not a log scan)."""
        return [_source_entry(entry) for entry in self._ledger.entries_of_kind(kind)]

    def latest_checkpoint(self) -> bytes | None:
        """Return the ledger's latest checkpoint, or None before the first commit."""
        size = self._ledger.latest_checkpoint_size()
        return None if size is None else self._ledger.checkpoint(size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return the ledger's inclusion proof."""
        return list(self._ledger.inclusion_proof(index, size))
