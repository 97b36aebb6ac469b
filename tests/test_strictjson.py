"""The one strict JSON decoder: duplicate keys and NaN/Infinity refused, all else as ``json``."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_model_factory._strictjson import DECODER, ConstantError, DuplicateKeyError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_standard_json_decodes_as_the_json_module_does(value: Any) -> None:
    text = json.dumps(value)
    assert DECODER.decode(text) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"a": 1, "a": 2}', "a"),
        ('{"x": {"b": 1, "c": 2, "b": 3}}', "b"),
        ('[{"k": 1, "k": 1}]', "k"),
    ],
)
def test_a_repeated_key_is_refused_naming_it(text: str, key: str) -> None:
    with pytest.raises(DuplicateKeyError) as raised:
        DECODER.decode(text)
    assert raised.value.key == key and str(raised.value) == f"duplicate key {key!r}"


def test_the_first_repeated_key_in_document_order_is_named() -> None:
    with pytest.raises(DuplicateKeyError, match="'b'"):
        DECODER.decode('{"b": 1, "a": 1, "b": 2, "a": 2}')


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_constants_are_refused(token: str) -> None:
    with pytest.raises(ConstantError) as raised:
        DECODER.decode(f'{{"a": [{token}]}}')
    assert str(raised.value) == f"{token} is not a JSON number"


def test_the_errors_survive_pickling_as_worker_processes_send_them() -> None:
    for error in (DuplicateKeyError("k"), ConstantError("NaN")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)
