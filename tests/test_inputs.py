"""Tests for customer_model_factory.inputs: strict JSON objects and the pinned trust root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory import inputs, pipeline
from customer_model_factory.inputs import (
    InputError,
    current_policy,
    key_names,
    load_trust_file,
    parse_json_object,
    policy_chain,
    read_json_object,
    resolve_trust,
)
from customer_model_factory.ledger.errors import LedgerError
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.store import Ledger
from customer_model_factory.pipeline import DEMO_AS_OF, DemoKeys, demo_policy

REPO = Path(__file__).resolve().parents[1]
KEYS = REPO / "keys-example"
LEDGER = REPO / "ledger"

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=4), st.booleans())
def test_parse_json_object_round_trips(document: dict[str, Any], indent: bool) -> None:
    text = json.dumps(document, indent=2 if indent else None)
    assert parse_json_object(text.encode(), "x.json") == document


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{\n"a": 1,\n"b": }', "x.json:3: invalid JSON: Expecting value (column 6)"),
        (b'{"a": 1, "a": 2}', "x.json: duplicate key 'a'"),
        (b'{"a": NaN}', "x.json: NaN is not a JSON number"),
        (b"[1, 2]", "x.json:1: expected a JSON object, got list"),
        (b'{"a": "\xff"}', "x.json:1: not UTF-8 (invalid start byte)"),
        (b"[" * 100_000 + b"]" * 100_000, "x.json: JSON nested too deeply"),
    ],
)
def test_parse_json_object_errors(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_json_object(data, "x.json")
    assert str(caught.value) == message


def test_read_json_object_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_bytes(b'{"a": [1]}')
    assert read_json_object(path) == {"a": [1]}
    with pytest.raises(FileNotFoundError):
        read_json_object(tmp_path / "missing.json")


def test_pipeline_re_exports_the_same_objects() -> None:
    for name in inputs.__all__:
        assert getattr(pipeline, name) is getattr(inputs, name), name


def test_a_trust_file_is_a_policy_or_a_public_key(tmp_path: Path) -> None:
    policy = demo_policy(DemoKeys.load(KEYS))
    path = tmp_path / "policy.json"
    path.write_bytes(policy.to_bytes())
    assert load_trust_file(path) == policy
    path.write_bytes(json.dumps(policy.to_dict()).encode())  # valid JSON, not canonical
    with pytest.raises(InputError, match=r"policy\.json: not a trust policy"):
        load_trust_file(path)
    root = PrivateKey.from_seed(b"r" * 32).public_key
    for name, data in (("root.pub", root.to_pem()), ("root.vkey", root.verifier_key("root"))):
        (tmp_path / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        assert load_trust_file(tmp_path / name) == root


def test_trust_is_pinned_or_taken_on_first_use() -> None:
    keys = DemoKeys.load(KEYS)
    with Ledger.open(LEDGER) as ledger:
        first_use = resolve_trust(ledger, None)
        assert (first_use.pinned, first_use.root) == (False, demo_policy(keys))
        assert "first policy in the ledger (log index 0)" in first_use.source
        pinned = resolve_trust(ledger, KEYS / "INSECURE-root.pub")
        assert (pinned.pinned, pinned.root) == (True, keys.one("root").public_key)
        chain = policy_chain(ledger, pinned, DEMO_AS_OF)
        assert chain.findings == () and current_policy(ledger, pinned, DEMO_AS_OF) == chain.current
        names = key_names(chain.current)
        assert names[keys.one("root").public_key.key_id] == "INSECURE-root"
    assert key_names(None) == {}


def test_a_wrong_pin_has_no_current_policy() -> None:
    stranger = PrivateKey.from_seed(b"s" * 32).public_key
    with Ledger.open(LEDGER) as ledger:
        trust = inputs.Trust(stranger, "stranger", pinned=True)
        with pytest.raises(LedgerError, match="no trust policy version verifies"):
            current_policy(ledger, trust, DEMO_AS_OF)


def test_importing_inputs_loads_no_stage_or_chain_module() -> None:
    code = (
        "import sys, customer_model_factory.inputs; "
        "print(sorted(m for m in sys.modules if m.startswith('customer_model_factory')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert "chain" not in loaded and "pipeline" not in loaded and "dataset_contract" not in loaded
