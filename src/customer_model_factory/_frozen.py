"""``@frozen``: a frozen dataclass whose class is cheap to create.

CPython (3.11-3.13) builds ``@dataclass(frozen=True)`` by ``exec``-compiling six generated
methods per class (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``,
``__delattr__``). With about sixty record classes on the path of ``cmf bundle verify`` that
compiling was half of the command's own start-up time. ``frozen`` asks ``dataclass`` for the
``__init__`` only and installs shared, precompiled versions of the other five, so the result:

- is a real dataclass (``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work,
  and ``field(default_factory=...)``, ``field(init=False)`` and ``__post_init__`` behave as
  documented);
- compares, hashes and prints like ``@dataclass(frozen=True)``: equal when of the same class
  with equal ``compare`` fields, hashed over the same fields, ``Name(field=value, ...)``;
- is frozen once constructed: every assignment to a field that is already set, to a name that is
  not a field, and every deletion raises ``dataclasses.FrozenInstanceError``. The generated
  ``__init__`` assigns each field exactly once, as ``__post_init__`` may (through
  ``object.__setattr__``, the idiom frozen dataclasses use);
- says so: its ``__dataclass_params__`` reports ``frozen=True`` (and ``repr``, ``eq``), so a
  ``@dataclass(frozen=True)`` subclass works as on a frozen dataclass.

Type checkers see it through PEP 681 ``dataclass_transform(frozen_default=True)``, so mypy
rejects assignments to fields exactly as for ``@dataclass(frozen=True)``.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

__all__ = ["frozen"]

_T = TypeVar("_T")

# Per-class field names, computed once at decoration: which fields compare, hash and print.
_COMPARE = "__frozen_compare__"
_HASH = "__frozen_hash__"
_REPR = "__frozen_repr__"


def _field_names(cls: type, attribute: str) -> tuple[str, ...]:
    """Return the names ``cls`` records under ``attribute`` (set by ``frozen``)."""
    names: tuple[str, ...] = getattr(cls, attribute)
    return names


def _setattr(self: object, name: str, value: object) -> None:
    """Set ``name`` only while it is an unset field (in ``__init__``); else refuse."""
    fields = type(self).__dataclass_fields__  # type: ignore[attr-defined]
    if name not in fields or name in self.__dict__:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _delattr(self: object, name: str) -> None:
    """Refuse every deletion: the instance is frozen."""
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _values(self: object, attribute: str) -> tuple[object, ...]:
    """Return the values of the fields of ``self`` that its class records under ``attribute``."""
    return tuple(getattr(self, name) for name in _field_names(type(self), attribute))


def _eq(self: object, other: object) -> object:
    """Equal when ``other`` is of the same class and the ``compare`` fields' tuples are equal.

    Otherwise ``NotImplemented``, so Python falls back to identity, as a dataclass does.
    """
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self, _COMPARE) == _values(other, _COMPARE)


def _hash(self: object) -> int:
    """Hash the ``hash`` fields' values as a tuple, as a frozen dataclass does."""
    return hash(_values(self, _HASH))


@reprlib.recursive_repr()
def _repr(self: object) -> str:
    """``QualName(field=value, ...)`` over the ``repr`` fields."""
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _field_names(type(self), _REPR))
    return f"{type(self).__qualname__}({shown})"


def _install(cls: type[_T], *, eq: bool) -> type[_T]:
    """Turn ``cls`` into a dataclass with only ``__init__`` generated, then install the rest."""
    for name in ("__setattr__", "__delattr__", "__repr__", "__eq__", "__hash__"):
        if name in cls.__dict__:
            raise TypeError(f"@frozen class {cls.__qualname__} must not define {name}")
    if any(dataclasses.is_dataclass(base) for base in cls.__mro__[1:]):
        # dataclass would refuse a non-frozen subclass of a (reported) frozen class
        raise TypeError(f"@frozen class {cls.__qualname__} must not inherit from a dataclass")
    cls = dataclasses.dataclass(cls, eq=False, repr=False, frozen=False)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    setattr(cls, _REPR, tuple(f.name for f in fields if f.repr))
    methods: dict[str, Callable[..., Any]] = {
        "__setattr__": _setattr,
        "__delattr__": _delattr,
        "__repr__": _repr,
    }
    if eq:
        setattr(cls, _COMPARE, tuple(f.name for f in fields if f.compare))
        hashed = (f for f in fields if (f.compare if f.hash is None else f.hash))
        setattr(cls, _HASH, tuple(f.name for f in hashed))
        methods.update(__eq__=_eq, __hash__=_hash)
    for name, method in methods.items():
        setattr(cls, name, method)
    # Report what the class now is, so introspection (and a frozen dataclass subclass) agrees.
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    params.repr, params.eq, params.frozen = True, eq, True
    return cls


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: type[_T] | None = None, *, eq: bool = True) -> Any:
    """Class decorator: ``@frozen`` or ``@frozen(eq=False)``; see the module docstring.

    ``eq=False`` keeps identity equality and hashing, as ``@dataclass(frozen=True, eq=False)``.
    """

    def wrap(target: type[_T]) -> type[_T]:
        return _install(target, eq=eq)

    if cls is None:
        wrapper: Callable[[type[_T]], type[_T]] = wrap
        return wrapper
    return wrap(cls)
