"""``@frozen``: a frozen dataclass whose class is cheap to create.

CPython (3.11-3.13) builds ``@dataclass(frozen=True)`` by ``exec``-compiling six generated
methods per class (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``,
``__delattr__``). With about sixty such classes on the path of ``cmf bundle verify`` that
compiling was half of the command's own start-up time. ``frozen`` lets ``dataclass`` collect
the fields (``init=False``: nothing is compiled) and installs shared, precompiled methods, so
the result:

- is a real dataclass (``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work,
  and ``field(default=...)``, ``field(default_factory=...)``, ``field(init=False)`` and
  ``__post_init__`` behave as documented);
- is built by an ``__init__`` taking the same arguments as the dataclass one (positional or by
  name, in field order, with the same defaults) and reporting the same ``inspect.signature``;
- compares, hashes and prints like ``@dataclass(frozen=True)``: equal when of the same class
  with equal ``compare`` fields, hashed over the same fields, ``Name(field=value, ...)``;
- is frozen: ``__init__`` fills the instance's ``__dict__`` directly, so every assignment
  through ``__setattr__`` and every deletion raises ``dataclasses.FrozenInstanceError``;
  ``__post_init__`` sets derived fields with ``object.__setattr__``, the idiom frozen
  dataclasses use;
- says so: its ``__dataclass_params__`` reports ``frozen=True`` (and ``init``, ``repr``, ``eq``),
  so a ``@dataclass(frozen=True)`` subclass works as on a frozen dataclass.

``ClassVar``, ``InitVar`` and keyword-only fields are refused (nothing here uses them). Type
checkers see the decorator through PEP 681 ``dataclass_transform(frozen_default=True)``, so mypy
checks constructor calls and rejects assignments to fields exactly as for a frozen dataclass.
"""

from __future__ import annotations

import dataclasses
import inspect
import reprlib
from collections.abc import Callable
from dataclasses import MISSING, Field
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
    """Refuse every assignment: the instance is frozen (``__init__`` does not come here)."""
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


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


class _FactorySentinel:
    """The default ``inspect.signature`` shows for a ``default_factory`` field, as dataclasses."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _FactorySentinel()


def _make_init(cls: type, fields: tuple[Field[Any], ...]) -> Callable[..., None]:
    """Return ``cls.__init__``: bind the arguments as the dataclass ``__init__`` would (TypeError
    for a missing, unexpected or repeated one), fill ``__dict__``, call ``__post_init__``."""
    owner = f"{cls.__qualname__}.__init__()"
    init_fields = tuple((f.name, f.default, f.default_factory) for f in fields if f.init)
    names = tuple(name for name, _, _ in init_fields)
    known = frozenset(names)
    later = tuple(  # fields outside __init__ that have a default: set after the others
        (f.name, f.default, f.default_factory)
        for f in fields
        if not f.init and (f.default is not MISSING or f.default_factory is not MISSING)
    )
    post_init = hasattr(cls, "__post_init__")

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if len(args) > len(names):
            raise TypeError(f"{owner} takes {len(names)} arguments but {len(args)} were given")
        given = dict(zip(names[: len(args)], args, strict=True))
        for name, value in kwargs.items():
            if name not in known:
                raise TypeError(f"{owner} got an unexpected keyword argument {name!r}")
            if name in given:
                raise TypeError(f"{owner} got multiple values for argument {name!r}")
            given[name] = value
        values = self.__dict__
        for name, default, factory in init_fields:
            if name in given:
                values[name] = given[name]
            elif default is not MISSING:
                values[name] = default
            elif factory is not MISSING:
                values[name] = factory()
            else:
                raise TypeError(f"{owner} missing required argument {name!r}")
        for name, default, factory in later:
            if default is not MISSING:
                values[name] = default
            elif factory is not MISSING:
                values[name] = factory()
        if post_init:
            self.__post_init__()  # type: ignore[attr-defined]

    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for field in fields:
        if field.init:
            default = field.default if field.default is not MISSING else inspect.Parameter.empty
            if field.default_factory is not MISSING:
                default = _FACTORY
            parameters.append(
                inspect.Parameter(
                    field.name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=default,
                    annotation=field.type,
                )
            )
    __init__.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__module__ = cls.__module__
    return __init__


def _install(cls: type[_T], *, eq: bool) -> type[_T]:
    """Turn ``cls`` into a dataclass (fields collected, nothing generated), then install the
    shared methods."""
    for name in ("__init__", "__setattr__", "__delattr__", "__repr__", "__eq__", "__hash__"):
        if name in cls.__dict__:
            raise TypeError(f"@frozen class {cls.__qualname__} must not define {name}")
    if any(dataclasses.is_dataclass(base) for base in cls.__mro__[1:]):
        # dataclass would refuse a non-frozen subclass of a (reported) frozen class
        raise TypeError(f"@frozen class {cls.__qualname__} must not inherit from a dataclass")
    cls = dataclasses.dataclass(cls, init=False, eq=False, repr=False, frozen=False)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    every = cls.__dataclass_fields__  # type: ignore[attr-defined]
    if len(every) != len(fields) or any(f.kw_only is True for f in fields):
        # the pseudo-fields (ClassVar, InitVar) and keyword-only fields need what only the
        # generated dataclass __init__ does; nothing here uses them
        raise TypeError(
            f"@frozen class {cls.__qualname__}: ClassVar, InitVar and keyword-only fields are "
            "not supported"
        )
    setattr(cls, _REPR, tuple(f.name for f in fields if f.repr))
    methods: dict[str, Callable[..., Any]] = {
        "__init__": _make_init(cls, fields),
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
    params.init, params.repr, params.eq, params.frozen = True, True, eq, True
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
