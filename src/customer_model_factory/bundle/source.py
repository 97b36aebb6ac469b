"""``BundleSource``: the ``chain.source.ChainSource`` protocol served from a decoded bundle.

Like ``LedgerSource`` it is untrusted: chain verification checks everything it hands over.
Blob bytes come from the bundle (hash-true by construction). ``blob_path`` (which chain
verification uses to stream a trace dataset) serves a complete file already holding the blob
when the caller names one (``files``: the import quarantine), else writes the blob once into a
private temporary directory that ``close()`` removes: verification itself never needs the
network or a ledger. Neither file is trusted: the verifier hashes a trace file, and parses its
rows from one open handle that hashes them again as it reads (docs/chain.md section 5.1), so a
file changed after it was written or checked is reported, never bound.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from ..chain.source import SourceEntry
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
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
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
        """Remove the temporary files ``blob_path`` wrote, if any. Idempotent."""
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    @property
    def entries(self) -> tuple[SourceEntry, ...]:
        """Every entry of the bundle, in log order."""
        return self._entries

    def blob(self, blob_id: str) -> bytes | None:
        """Return the carried bytes of ``blob_id``, or None (not carried or omitted)."""
        return self.bundle.blob(blob_id)

    def blob_path(self, blob_id: str) -> Path | None:
        """Return a file holding the bytes of ``blob_id``, or None if the bundle lacks them."""
        data = self.bundle.blob(blob_id)
        if data is None:
            return None
        given = self._files.get(blob_id)
        if given is not None:
            return given  # the verifier hashes every byte it parses from it against the id
        # The id was computed from the bytes, so it is 64 hex digits: a safe file name.
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="cmf-bundle-")
        path = Path(self._scratch.name) / blob_id
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        return path

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
