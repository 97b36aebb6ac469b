"""The reference's canonical hash recipe (reference-behaviour.md section 1.4), in one place."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(payload: Any) -> str:
    """Return SHA-256 hex of ``json.dumps(payload, sort_keys, compact, default=str)``.

    This is the reference's ``_stable_hash``: ``ensure_ascii`` and ``allow_nan`` keep their
    defaults so that hashes stay byte-compatible with the reference.
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_hash_strict(payload: Any) -> str:
    """Return the same recipe *without* ``default=str`` (the reference's ``mapping_hash``)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class HashMismatchError(ValueError):
    """A manifest's stored self-hash differs from the hash recomputed from its fields."""


def check_self_hash(kind: str, field: str, stored: str, recomputed: str) -> None:
    """Raise HashMismatchError unless ``stored == recomputed``."""
    if stored != recomputed:
        raise HashMismatchError(
            f"{kind}.{field}: stored {stored!r} does not match recomputed {recomputed!r}"
        )
