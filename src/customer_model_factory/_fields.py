"""Strict readers for ``from_dict``: validation at the boundary, never coercion.

Every reader raises ``ValueError`` naming the offending field. ``bool("false")`` can never
become True here, and ``None`` never becomes the string ``"None"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _get(payload: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(payload, Mapping):
        raise ValueError(f"{where or 'payload'}: expected an object, got {_type_name(payload)}")
    if key not in payload:
        raise ValueError(f"{where}{key}: required field is missing")
    return payload[key]


def req_str(payload: Mapping[str, Any], key: str, where: str = "") -> str:
    """Return ``payload[key]`` if it is a str, else raise ValueError naming the field."""
    value = _get(payload, key, where)
    if not isinstance(value, str):
        raise ValueError(f"{where}{key}: expected a string, got {_type_name(value)}")
    return value


def req_bool(payload: Mapping[str, Any], key: str, where: str = "") -> bool:
    """Return ``payload[key]`` if it is a real bool (not a string, not an int)."""
    value = _get(payload, key, where)
    if not isinstance(value, bool):
        raise ValueError(f"{where}{key}: expected true or false, got {_type_name(value)}")
    return value


def req_int(payload: Mapping[str, Any], key: str, where: str = "") -> int:
    """Return ``payload[key]`` if it is an int (bools are refused)."""
    value = _get(payload, key, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}{key}: expected an integer, got {_type_name(value)}")
    return value


def req_float(payload: Mapping[str, Any], key: str, where: str = "") -> float:
    """Return ``payload[key]`` if it is a number (int or float, never bool or str).

    The value is returned unchanged (an int stays an int) so that a recomputed hash equals the
    hash the builder computed over the same value.
    """
    value = _get(payload, key, where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}{key}: expected a number, got {_type_name(value)}")
    return value


def req_str_tuple(payload: Mapping[str, Any], key: str, where: str = "") -> tuple[str, ...]:
    """Return ``payload[key]`` as a tuple if it is a list of strings."""
    value = _get(payload, key, where)
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}{key}: expected a list of strings, got {_type_name(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"{where}{key}[{index}]: expected a string, got {_type_name(item)}")
    return tuple(value)


def req_dict(payload: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any]:
    """Return a shallow copy of ``payload[key]`` if it is an object with string keys."""
    value = _get(payload, key, where)
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}{key}: expected an object, got {_type_name(value)}")
    for inner in value:
        if not isinstance(inner, str):
            raise ValueError(f"{where}{key}: object keys must be strings")
    return dict(value)


def req_str_dict(payload: Mapping[str, Any], key: str, where: str = "") -> dict[str, str]:
    """Return ``payload[key]`` if it is an object whose values are all strings."""
    value = req_dict(payload, key, where)
    for inner, item in value.items():
        if not isinstance(item, str):
            raise ValueError(f"{where}{key}.{inner}: expected a string, got {_type_name(item)}")
    return value


def req_int_dict(payload: Mapping[str, Any], key: str, where: str = "") -> dict[str, int]:
    """Return ``payload[key]`` if it is an object whose values are all integers."""
    value = req_dict(payload, key, where)
    for inner, item in value.items():
        if isinstance(item, bool) or not isinstance(item, int):
            raise ValueError(f"{where}{key}.{inner}: expected an integer, got {_type_name(item)}")
    return value


def req_str_tuple_dict(
    payload: Mapping[str, Any], key: str, where: str = ""
) -> dict[str, tuple[str, ...]]:
    """Return ``payload[key]`` as ``{name: tuple[str, ...]}`` if it has that shape."""
    value = req_dict(payload, key, where)
    return {inner: req_str_tuple(value, inner, f"{where}{key}.") for inner in value}


def req_findings(
    payload: Mapping[str, Any], key: str, where: str = ""
) -> tuple[dict[str, str], ...]:
    """Return ``payload[key]`` as a tuple of string-to-string dicts (findings, blockers)."""
    value = _get(payload, key, where)
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}{key}: expected a list of objects, got {_type_name(value)}")
    out: list[dict[str, str]] = []
    for index, item in enumerate(value):
        label = f"{where}{key}[{index}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{label}: expected an object, got {_type_name(item)}")
        for inner, text in item.items():
            if not isinstance(inner, str) or not isinstance(text, str):
                raise ValueError(f"{label}.{inner}: expected a string, got {_type_name(text)}")
        out.append(dict(item))
    return tuple(out)


def req_obj(payload: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    """Return ``payload[key]`` if it is an object (for nested ``from_dict`` calls)."""
    value = _get(payload, key, where)
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}{key}: expected an object, got {_type_name(value)}")
    return value


def reject_unknown(payload: Mapping[str, Any], allowed: tuple[str, ...], where: str = "") -> None:
    """Raise ValueError naming the first key of ``payload`` that is not in ``allowed``."""
    for key in payload:
        if key not in allowed:
            raise ValueError(f"{where}{key}: unknown field")
