"""``LedgerSource``: the ``chain.source.ChainSource`` protocol over a ledger directory.

Split from ``chain.source`` so that what verifies an offline bundle (which needs only the
protocol and ``SourceEntry``) does not import the ledger's store, log and writer lock.
"""

from __future__ import annotations

import io

from ..ledger.blobs import ObjectNotFoundError
from ..ledger.store import Ledger, LogEntry
from .source import BlobStream, SourceEntry


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

    def open_blob(self, blob_id: str) -> BlobStream | None:
        """Open the object file of ``blob_id`` (unbuffered, read-only), or None if there is none.

        The file is read as it is now, tampered or not: the reader hashes what it reads.
        """
        try:
            return io.FileIO(self._ledger.objects.path(blob_id), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None  # no object file there (what stands in its place is not a blob)

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
