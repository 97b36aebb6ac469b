"""What chain verification reads: the ``ChainSource`` protocol and its ``SourceEntry``.

``ChainSource`` is deliberately small and untrusted: it hands over stored bytes, log entries,
the latest checkpoint and inclusion proofs, and the verifier checks every one of them (hashes,
signatures, proofs) against the pinned trust root. A ledger (``chain.ledger_source.LedgerSource``)
and an offline bundle (``bundle.source.BundleSource``) implement the same protocol. Envelopes are
blobs too (their id is the SHA-256 of the envelope JSON), so ``blob`` serves both.

A trace dataset may be far larger than memory, so it is read as a stream (``open_blob``), never
through a file name: a source serves bytes it holds in memory without writing them anywhere,
and each reader of a trace gets its own stream, whose bytes it hashes as it reads them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Protocol

from .._frozen import frozen
from ..ledger.records import LeafRecord

# What ``open_blob`` hands over: a binary stream with ``readinto`` (a raw file, a buffered one,
# a BytesIO). Not ``typing.BinaryIO``, which lacks the ``readinto`` that hashing and the
# hash-checking ``ledger.blobs.BlobReader`` read through.
BlobStream = io.RawIOBase | io.BufferedIOBase


@frozen
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

    def open_blob(self, blob_id: str) -> BlobStream | None:
        """Return a new stream over the stored bytes of ``blob_id`` at offset 0, or None.

        Each call opens a stream of its own (reading one never moves another); the caller
        closes it. The bytes are not re-hashed here: whoever reads them hashes them.
        """
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
