"""``BundleSource``: the ``chain.source.ChainSource`` protocol served from a decoded bundle.

Like ``LedgerSource`` it is untrusted: chain verification checks everything it hands over.
Blob bytes come from the bundle (hash-true by construction). ``open_blob`` (which chain
verification uses to stream a trace dataset) opens a complete file already holding the blob
when the caller names one (``files``: the import quarantine, so that what is verified is the
very file that is migrated), else serves the carried bytes from memory: nothing is written, so
verifying needs no scratch space, no network and no ledger. A named file is not trusted: the
verifier hashes one stream of it, and parses its rows from another that hashes them again as it
reads (docs/chain.md section 5.1), so a file changed after it was checked is reported, never
bound.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from ..chain.source import BlobStream, SourceEntry
from ..ledger.errors import LedgerError
from .format import Bundle, BundleEntry


def source_entry(entry: BundleEntry) -> SourceEntry:
    """Return the chain's view of a bundle entry (index, kind, subject blob, envelope blob)."""
    record = entry.record
    return SourceEntry(entry.index, record.kind, record.blob_id, record.envelope_id)


class BundleSource:
    """A read-only ChainSource over one bundle; use it as a context manager (``close``)."""

    def __init__(self, bundle: Bundle, *, files: Mapping[str, Path] | None = None) -> None:
        """Serve ``bundle``; ``files`` maps blob ids to complete files holding those blobs."""
        self.bundle = bundle
        self._files = dict(files or {})
        self._entries = tuple(source_entry(entry) for entry in bundle.entries)
        self._proofs = {entry.index: entry.proof for entry in bundle.entries}
        self._by_blob: dict[str, list[SourceEntry]] = {}
        self._by_kind: dict[str, list[SourceEntry]] = {}
        for entry in self._entries:
            self._by_blob.setdefault(entry.blob_id, []).append(entry)
            self._by_kind.setdefault(entry.kind, []).append(entry)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release nothing: the source holds no files (each stream is its caller's to close)."""

    @property
    def entries(self) -> tuple[SourceEntry, ...]:
        """Every entry of the bundle, in log order."""
        return self._entries

    def blob(self, blob_id: str) -> bytes | None:
        """Return the carried bytes of ``blob_id``, or None (not carried or omitted)."""
        return self.bundle.blob(blob_id)

    def open_blob(self, blob_id: str) -> BlobStream | None:
        """Return a new stream over the bytes of ``blob_id``, or None if the bundle lacks them.

        The caller's file for ``blob_id`` when ``files`` names one (OSError if it cannot be
        opened), else the carried bytes, not copied (a ``BytesIO`` shares them until written).
        """
        data = self.bundle.blob(blob_id)
        if data is None:
            return None
        given = self._files.get(blob_id)
        if given is not None:
            return io.FileIO(given, "rb")  # the verifier hashes every byte it reads from it
        return io.BytesIO(data)

    def entries_for_blob(self, blob_id: str) -> Sequence[SourceEntry]:
        """Return the bundle's entries whose subject is ``blob_id``, in log order."""
        return tuple(self._by_blob.get(blob_id, ()))

    def entries_of_kind(self, kind: str) -> Sequence[SourceEntry]:
        """Return the bundle's entries of ``kind``, in log order."""
        return tuple(self._by_kind.get(kind, ()))

    def latest_checkpoint(self) -> bytes | None:
        """Return the bundle's signed checkpoint note (verified by the caller)."""
        return self.bundle.checkpoint

    def inclusion_proof(self, index: int, size: int) -> Sequence[bytes]:
        """Return the carried proof of entry ``index``; LedgerError if the bundle has none.

        A bundle carries proofs under its own checkpoint only, so another ``size`` is refused.
        """
        carried = self.bundle.claimed_checkpoint.size
        if size != carried:
            raise LedgerError(f"the bundle carries proofs under tree size {carried}, not {size}")
        proof = self._proofs.get(index)
        if proof is None:
            raise LedgerError(f"the bundle carries no entry at log index {index}")
        return proof
