"""Behaviour shared by every manifest class that carries a self-hash.

Each class supplies ``to_dict``, ``from_dict``, ``_hash_payload`` (its hash recipe, written once)
and ``verify_hash``; this base turns those into the file writer, the recomputed hash and the
verified parse, so the three are never written twice.

A verifier that hashes the same parsed manifests many times (a selection's thousands of
candidates are hashed by their own ``verify_hash`` and again by every binding) opens a
``memoized_hashes()`` scope: inside it each manifest instance is hashed at most once. The scope
is explicit, not a cache on the instance, because the frozen manifests still hold dicts
(``findings``, ``metrics.severity_counts``, ...) that a caller could change in place: outside a
scope every ``recompute_hash`` hashes the fields as they are now.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
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
        """Return the self-hash recomputed from this manifest's own fields (once per instance
        inside a ``memoized_hashes()`` scope)."""
        memo = _MEMO.get()
        if memo is None:
            return stable_hash(self._hash_payload())
        # Keyed by id(); the entry keeps the instance alive, so its id cannot be reused.
        held = memo.get(id(self))
        if held is not None and held[0] is self:
            return held[1]
        value = stable_hash(self._hash_payload())
        memo[id(self)] = (self, value)
        return value


# The recomputed hashes of the innermost open ``memoized_hashes()`` scope: id -> (instance, hash).
_MEMO: ContextVar[dict[int, tuple[SelfHashedManifest, str]] | None] = ContextVar(
    "manifest_hash_memo", default=None
)


@contextmanager
def memoized_hashes() -> Iterator[None]:
    """Within this scope (this thread or task only), ``recompute_hash`` hashes each manifest
    instance once and then returns that value.

    For code that parses manifests itself and never changes them while the scope is open
    (``chain.verify``); a manifest changed in place inside the scope would keep its old hash.
    The memo is dropped when the scope closes; scopes nest (the inner one starts empty).
    """
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


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
