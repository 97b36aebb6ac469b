"""Precise exception types of the ledger. Every one is a ``LedgerError``."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every ledger error."""


class FormatError(LedgerError):
    """Bytes that should be a note, checkpoint, envelope, statement, key or record are malformed."""


class KeyFormatError(FormatError):
    """A key file is malformed, of the wrong type, or its passphrase is wrong or missing."""


class SignatureError(LedgerError):
    """A signature does not verify."""


class ProofError(LedgerError):
    """An inclusion or consistency proof does not verify."""


class IntegrityError(LedgerError):
    """Stored data does not match its hash (a blob, an entry, a stored tree hash)."""


class LockError(LedgerError):
    """Another writer holds the ledger lock."""
