"""Behaviour shared by every manifest class that carries a self-hash.

Each class supplies ``to_dict``, ``from_dict``, ``_hash_payload`` (its hash recipe, written once)
and ``verify_hash``; this base turns those into the file writer, the recomputed hash and the
verified parse, so the three are never written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from . import _jsonfile
from ._hashing import stable_hash


class SelfHashedManifest:
    """Mixin of a frozen manifest dataclass with a ``*_hash`` field over ``_hash_payload()``."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest's JSON-safe shape (defined by each manifest class)."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a manifest strictly from its shape (defined by each manifest class)."""
        raise NotImplementedError

    def verify_hash(self) -> None:
        """Raise unless the stored hash and flags are self-consistent (defined by each class)."""
        raise NotImplementedError

    def _hash_payload(self) -> dict[str, Any]:
        """Return exactly the fields the reference's hash recipe covers (defined by each class)."""
        raise NotImplementedError

    @classmethod
    def from_dict_verified(cls, payload: Mapping[str, Any]) -> Self:
        """``from_dict`` then ``verify_hash``: a parsed manifest that is also self-consistent."""
        manifest = cls.from_dict(payload)
        manifest.verify_hash()
        return manifest

    def write_json(self, path: Path) -> Path:
        """Write the manifest as deterministic JSON, atomically; refuses NaN and infinities."""
        return _jsonfile.write_json(path, self.to_dict())

    def recompute_hash(self) -> str:
        """Return the self-hash recomputed from this manifest's own fields."""
        return stable_hash(self._hash_payload())


def check_schema_and_ready(
    kind: str,
    schema_version: str,
    expected_schema: str,
    ready: bool,
    expected_ready: bool,
    finding_count: int,
) -> None:
    """Raise ValueError on a foreign ``schema_version`` or a ``ready`` flag that breaks the
    readiness rule (reference section 1.3); neither is covered by any self-hash."""
    if schema_version != expected_schema:
        raise ValueError(
            f"{kind}.schema_version: {schema_version!r} is not the supported {expected_schema!r}"
        )
    if ready != expected_ready:
        raise ValueError(f"{kind}.ready: {ready} contradicts {finding_count} finding(s)")
