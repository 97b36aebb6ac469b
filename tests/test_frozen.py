"""``@frozen`` behaves as ``@dataclass(frozen=True)`` in everything but its creation cost."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import KW_ONLY, FrozenInstanceError, InitVar, dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_model_factory._frozen import frozen


@frozen
class Point:
    """Three fields, one with a default factory and one left out of comparison."""

    x: int
    label: str = "p"
    tags: tuple[str, ...] = field(default_factory=tuple)
    note: str = field(default="", compare=False)


@dataclass(frozen=True)
class Reference:
    """The same fields as ``Point``, built by ``dataclasses`` itself."""

    x: int
    label: str = "p"
    tags: tuple[str, ...] = field(default_factory=tuple)
    note: str = field(default="", compare=False)


@frozen
class Derived:
    """A field computed in ``__post_init__``, as the bundle container does."""

    values: tuple[int, ...]
    total: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", sum(self.values))


@frozen(eq=False)
class Handle:
    """Identity equality, as ``@dataclass(frozen=True, eq=False)``."""

    name: str


points = st.builds(
    lambda x, label, tags, note: (x, label, tuple(tags), note),
    st.integers(),
    st.text(max_size=5),
    st.lists(st.text(max_size=3), max_size=3),
    st.text(max_size=5),
)


@given(points, points)
def test_eq_hash_repr_match_a_frozen_dataclass(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    ours_a, ours_b = Point(*a), Point(*b)
    theirs_a, theirs_b = Reference(*a), Reference(*b)
    assert (ours_a == ours_b) is (theirs_a == theirs_b)
    assert (ours_a != ours_b) is (theirs_a != theirs_b)
    assert hash(ours_a) == hash(theirs_a)
    assert repr(ours_a) == repr(theirs_a).replace("Reference(", "Point(", 1)
    assert dataclasses.asdict(ours_a) == dataclasses.asdict(theirs_a)
    assert dataclasses.astuple(ours_a) == dataclasses.astuple(theirs_a)


@given(points)
def test_copies_and_replace_round_trip(a: tuple[Any, ...]) -> None:
    point = Point(*a)
    assert copy.copy(point) == point
    assert copy.deepcopy(point) == point
    assert pickle.loads(pickle.dumps(point)) == point
    assert dataclasses.replace(point, x=point.x + 1) == Point(point.x + 1, *a[1:])


_NAMES = ("x", "label", "tags", "note", "unknown")
calls = st.tuples(
    st.lists(st.integers(min_value=0, max_value=3), max_size=6),
    st.dictionaries(st.sampled_from(_NAMES), st.integers(min_value=0, max_value=3), max_size=5),
)


def _outcome(cls: type, args: list[int], kwargs: dict[str, int]) -> object:
    """What calling ``cls(*args, **kwargs)`` gives: the instance's fields, or the error type."""
    try:
        return dataclasses.astuple(cls(*args, **kwargs))
    except TypeError:
        return TypeError


@given(calls)
def test_the_constructor_binds_arguments_as_the_dataclass_one(
    call: tuple[list[int], dict[str, int]],
) -> None:
    args, kwargs = call
    assert _outcome(Point, args, kwargs) == _outcome(Reference, args, kwargs)


def test_the_constructor_signature_is_the_dataclass_one() -> None:
    assert str(inspect.signature(Point)) == str(inspect.signature(Reference))
    assert str(inspect.signature(Derived)) == "(values: 'tuple[int, ...]') -> None"


def test_is_a_dataclass_that_reports_itself_frozen() -> None:
    default = Point(1)
    assert default.tags == () and default.note == ""
    assert dataclasses.is_dataclass(Point)
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "label", "tags", "note"]
    params = Point.__dataclass_params__  # type: ignore[attr-defined]
    assert (params.frozen, params.eq, params.repr) == (True, True, True)
    assert Point.__match_args__ == ("x", "label", "tags", "note")  # type: ignore[attr-defined]


def test_every_assignment_and_deletion_after_construction_is_refused() -> None:
    point = Point(1, "a")
    with pytest.raises(FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        point.unknown = 2  # type: ignore[attr-defined]
    with pytest.raises(FrozenInstanceError):
        del point.label
    with pytest.raises(FrozenInstanceError):
        point.note = "changed"  # type: ignore[misc]
    assert point == Point(1, "a") and point.note == ""


def test_post_init_and_init_false_fields() -> None:
    derived = Derived((1, 2, 3))
    assert derived.total == 6
    assert repr(derived) == "Derived(values=(1, 2, 3))"
    with pytest.raises(FrozenInstanceError):
        derived.total = 0  # type: ignore[misc]
    assert dataclasses.replace(derived, values=(4,)).total == 4
    with pytest.raises((ValueError, TypeError), match="init=False"):  # TypeError from 3.13 on
        dataclasses.replace(derived, total=1)


def test_a_field_left_unset_still_cannot_be_assigned() -> None:
    @frozen
    class Unset:
        """A field outside ``__init__`` with no default, never set."""

        x: int
        later: int = field(init=False)

    unset = Unset(1)
    with pytest.raises(FrozenInstanceError):
        unset.later = 2  # type: ignore[misc]
    assert not hasattr(unset, "later")


def test_eq_false_keeps_identity() -> None:
    first, second = Handle("a"), Handle("a")
    assert first != second and first == first
    assert len({first, second}) == 2
    assert Handle.__dataclass_params__.eq is False  # type: ignore[attr-defined]


def test_constructor_signature_is_the_dataclass_one() -> None:
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Point(1, unknown=2)  # type: ignore[call-arg]


def test_unhashable_field_values_make_the_instance_unhashable_as_a_dataclass() -> None:
    @frozen
    class Holder:
        """Holds a dict, as the seed manifests do."""

        mapping: dict[str, int]

    holder = Holder({"a": 1})
    assert holder == Holder({"a": 1})
    with pytest.raises(TypeError):
        hash(holder)


def test_frozen_dataclass_subclass_works() -> None:
    @dataclass(frozen=True)
    class Labelled(Point):
        extra: int = 0

    labelled = Labelled(1, extra=2)
    assert labelled == Labelled(1, extra=2) and labelled != Labelled(1, extra=3)
    with pytest.raises(FrozenInstanceError):
        labelled.extra = 3  # type: ignore[misc]


def test_refuses_classes_it_cannot_make_frozen() -> None:
    with pytest.raises(TypeError, match="must not define __eq__"):

        @frozen
        class OwnEq:
            """Defines its own equality."""

            x: int

            def __eq__(self, other: object) -> bool:
                return True

            __hash__ = object.__hash__

    with pytest.raises(TypeError, match="ClassVar, InitVar and keyword-only"):

        @frozen
        class WithInitVar:
            """Has an init-only pseudo-field."""

            x: int
            seed: InitVar[int] = 0

    with pytest.raises(TypeError, match="ClassVar, InitVar and keyword-only"):

        @frozen
        class WithKeywordOnly:
            """Has keyword-only fields."""

            x: int
            _: KW_ONLY
            y: int = 0

    with pytest.raises(TypeError, match="must not define __init__"):

        @frozen
        class OwnInit:
            """Defines its own constructor."""

            x: int

            def __init__(self, x: int) -> None:
                object.__setattr__(self, "x", x)

    with pytest.raises(TypeError, match="must not inherit from a dataclass"):

        @frozen
        class Child(Point):
            """Inherits from a dataclass."""

            y: int = 0
