"""One strict JSON decoder for untrusted documents: no duplicate keys, no NaN or Infinity.

Python's ``json`` accepts both: a repeated key keeps its last value (RFC 8259 section 4 leaves it
undefined, so parsers disagree on what the document says) and ``NaN``/``Infinity``/``-Infinity``
become floats (not JSON numbers, RFC 8259 section 6). Every reader of untrusted JSON (manifests,
envelopes, statements, policies, inputs, trace rows) decodes with ``DECODER`` and turns the two
errors below into its own exception and message.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

__all__ = ["DECODER", "ConstantError", "DuplicateKeyError", "object_without_duplicates"]


class DuplicateKeyError(ValueError):
    """A JSON object names ``key`` twice (the first key repeated, in document order)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)  # args hold the key alone, so the error pickles (worker processes)
        self.key = key

    def __str__(self) -> str:
        return f"duplicate key {self.key!r}"


class ConstantError(ValueError):
    """The document holds ``token``: ``NaN``, ``Infinity`` or ``-Infinity``."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token

    def __str__(self) -> str:
        return f"{self.token} is not a JSON number"


def object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: the object as a dict; DuplicateKeyError if a key repeats."""
    result = dict(pairs)
    if len(result) == len(pairs):
        return result  # every key distinct: the common case, checked without a Python loop
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateKeyError(key)
        seen.add(key)
    raise AssertionError("dict() dropped a pair although every key is distinct")


def refuse_constant(token: str) -> NoReturn:
    """``parse_constant``: raise ConstantError for ``NaN``, ``Infinity`` and ``-Infinity``."""
    raise ConstantError(token)


# One decoder for every call: json.loads with hooks builds a new decoder each time.
DECODER = json.JSONDecoder(
    object_pairs_hook=object_without_duplicates, parse_constant=refuse_constant
)
