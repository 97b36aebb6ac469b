"""Tests for ledger.statement: the canonical in-toto Statement v1 of a ledger record."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import parser_oracles as oracles
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger.dsse import Envelope, verify_envelope
from customer_model_factory.ledger.errors import FormatError
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.statement import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Parent,
    RecordStatement,
    format_time,
)
from customer_model_factory.ledger.statement import _check_time as check_time

DATASET = hashlib.sha256(b"traces").hexdigest()
REPORT = hashlib.sha256(b"report").hexdigest()
TRAINING = hashlib.sha256(b"training").hexdigest()
EXAMPLE = RecordStatement(
    kind="training",
    sha256=TRAINING,
    parents=(Parent("dataset_report", REPORT), Parent("trace_dataset", DATASET)),
    origin="ledger.example/evidence",
    time="2026-01-01T00:00:00Z",
    tool_version="cmf 0.1.0 (é)",
)

kinds = st.from_regex(r"[a-z0-9_.-]{1,64}", fullmatch=True)
digests = st.binary(min_size=1, max_size=8).map(lambda b: hashlib.sha256(b).hexdigest())
times = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
).map(format_time)
tool_versions = st.text(
    alphabet=st.characters(codec="utf-8", min_codepoint=0x20, exclude_characters="\x7f"),
    min_size=1,
    max_size=30,
)


@st.composite
def statements(draw: st.DrawFn) -> RecordStatement:
    subject = draw(digests)
    parent_digests = draw(
        st.lists(digests, unique=True, max_size=5).filter(lambda d: subject not in d)
    )
    parents = tuple(Parent(draw(kinds), digest) for digest in parent_digests)
    return RecordStatement(
        kind=draw(kinds),
        sha256=subject,
        parents=parents,
        origin=draw(st.from_regex(r"[a-z0-9.-]{1,20}(/[a-z0-9._-]{1,10})?", fullmatch=True)),
        time=draw(times),
        tool_version=draw(tool_versions),
    )


def test_canonical_bytes_are_exact() -> None:
    assert (
        EXAMPLE.to_bytes()
        == (
            '{"_type":"https://in-toto.io/Statement/v1","predicate":{"kind":"training","origin":'
            '"ledger.example/evidence","parents":[{"kind":"dataset_report","sha256":"'
            + REPORT
            + '"},'
            '{"kind":"trace_dataset","sha256":"' + DATASET + '"}],"time":"2026-01-01T00:00:00Z",'
            '"tool_version":"cmf 0.1.0 (é)"},"predicateType":'
            '"https://customer-model-factory.dev/ledger-record/v1","subject":[{"digest":{"sha256":"'
            + TRAINING
            + '"},"name":"training"}]}'
        ).encode()
    )
    assert RecordStatement.from_bytes(EXAMPLE.to_bytes()) == EXAMPLE


def test_canonical_bytes_follow_the_stated_recipe() -> None:
    recipe = json.dumps(
        EXAMPLE.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert EXAMPLE.to_bytes() == recipe.encode()
    assert EXAMPLE.to_dict()["_type"] == STATEMENT_TYPE
    assert EXAMPLE.to_dict()["predicateType"] == PREDICATE_TYPE


@settings(max_examples=60, deadline=None)
@given(statements())
def test_round_trip(statement: RecordStatement) -> None:
    data = statement.to_bytes()
    assert RecordStatement.from_bytes(data) == statement
    assert RecordStatement.from_bytes(data).to_bytes() == data


def test_parent_order_is_preserved() -> None:
    swapped = RecordStatement(**{**EXAMPLE.__dict__, "parents": tuple(reversed(EXAMPLE.parents))})
    assert swapped.to_bytes() != EXAMPLE.to_bytes()
    assert RecordStatement.from_bytes(swapped.to_bytes()).parents == tuple(
        reversed(EXAMPLE.parents)
    )


def _mutated(change: Any) -> bytes:
    """EXAMPLE's JSON after ``change(document)``, canonically encoded."""
    document = EXAMPLE.to_dict()
    change(document)
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (json.dumps(EXAMPLE.to_dict(), sort_keys=True).encode(), "canonical"),
        (json.dumps(EXAMPLE.to_dict(), separators=(",", ":")).encode(), "canonical"),
        (
            json.dumps(EXAMPLE.to_dict(), sort_keys=True, separators=(",", ":")).encode(),
            "canonical",
        ),
        (EXAMPLE.to_bytes() + b"\n", "canonical"),
        (b"\xef\xbb\xbf" + EXAMPLE.to_bytes(), "JSON"),
        (EXAMPLE.to_bytes().replace("é".encode(), b"\xe9"), "UTF-8"),
        (b"[]", "object"),
        (b"{", "JSON"),
        (_mutated(lambda d: d.update(extra=1)), "unknown field 'extra'"),
        (_mutated(lambda d: d.pop("predicate")), "missing field 'predicate'"),
        (_mutated(lambda d: d.update(_type="https://in-toto.io/Statement/v0.1")), "_type"),
        (
            _mutated(lambda d: d.update(predicateType="https://slsa.dev/provenance/v1")),
            "predicateType",
        ),
        (_mutated(lambda d: d.update(subject=[])), "exactly one"),
        (_mutated(lambda d: d.update(subject=d["subject"] * 2)), "exactly one"),
        (_mutated(lambda d: d["subject"][0].update(name="deployment")), "not the kind"),
        (_mutated(lambda d: d["subject"][0].update(uri="x")), "unknown field 'uri'"),
        (_mutated(lambda d: d["subject"][0]["digest"].update(sha512="00")), "unknown field"),
        (_mutated(lambda d: d["subject"][0]["digest"].update(sha256=TRAINING.upper())), "hex"),
        (_mutated(lambda d: d["subject"][0]["digest"].update(sha256=TRAINING[:-1])), "hex"),
        (_mutated(lambda d: d["predicate"].update(kind="Training")), "not the kind|kind"),
        (_mutated(lambda d: d["predicate"].update(extra=None)), "unknown field 'extra'"),
        (_mutated(lambda d: d["predicate"].update(parents={})), "list"),
        (
            _mutated(lambda d: d["predicate"]["parents"].append(d["predicate"]["parents"][0])),
            "twice",
        ),
        (
            _mutated(lambda d: d["predicate"]["parents"].append({"kind": "x", "sha256": TRAINING})),
            "own subject",
        ),
        (_mutated(lambda d: d["predicate"]["parents"][0].update(note="x")), "unknown field"),
        (_mutated(lambda d: d["predicate"]["parents"][0].update(kind="A")), "kind"),
        (_mutated(lambda d: d["predicate"]["parents"][0].update(sha256=1)), "string"),
        (_mutated(lambda d: d["predicate"].update(origin="a b")), "' '"),
        (_mutated(lambda d: d["predicate"].update(time="2026-01-01T00:00:00+00:00")), "time"),
        (_mutated(lambda d: d["predicate"].update(time="2026-01-01T00:00:00.5Z")), "time"),
        (_mutated(lambda d: d["predicate"].update(time="2026-02-30T00:00:00Z")), "valid date"),
        (_mutated(lambda d: d["predicate"].update(time="2026-01-01")), "time"),
        (_mutated(lambda d: d["predicate"].update(tool_version="")), "tool_version"),
        (_mutated(lambda d: d["predicate"].update(tool_version="a\nb")), "control"),
        (_mutated(lambda d: d["predicate"].update(tool_version=1)), "string"),
        (
            EXAMPLE.to_bytes().replace(b'"_type":', b'"_type":"x","_type":', 1),
            "duplicate field",
        ),
    ],
)
def test_from_bytes_is_strict(data: bytes, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        RecordStatement.from_bytes(data)


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": ""},
        {"kind": "a" * 65},
        {"kind": "Kind"},
        {"kind": "a/b"},
        {"sha256": "0" * 63},
        {"parents": [Parent("x", DATASET)]},
        {"parents": (("x", DATASET),)},
        {"origin": ""},
        {"origin": "a+b"},
        {"time": "yesterday"},
        {"tool_version": "x" * 129},
        {"tool_version": "\ud800"},
    ],
)
def test_constructor_checks(changes: dict[str, Any]) -> None:
    with pytest.raises(FormatError):
        RecordStatement(**{**EXAMPLE.__dict__, **changes})


def test_format_time() -> None:
    moment = datetime(
        2026, 1, 1, 1, 30, 15, 999999, tzinfo=timezone(timedelta(hours=1, minutes=30))
    )
    assert format_time(moment) == "2026-01-01T00:00:15Z"
    assert format_time(datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)) == "0999-01-02T03:04:05Z"
    with pytest.raises(ValueError):
        format_time(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        format_time(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))


def test_statement_in_a_dsse_envelope() -> None:
    key = PrivateKey.from_seed(bytes(range(32)))
    envelope = Envelope(EXAMPLE.to_bytes(), PAYLOAD_TYPE).signed_by(key)
    parsed = Envelope.from_json(envelope.to_json())
    assert verify_envelope(parsed, {"k": key.public_key}, payload_type=PAYLOAD_TYPE) == {
        key.public_key.key_id
    }
    assert RecordStatement.from_bytes(parsed.payload) == EXAMPLE


# --- the fast parser judges exactly like the original one ---------------------------------------

# Any encodable text, with the characters JSON must escape (or must not) made likely.
texts = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from('"\\\x00\x1f\u2028/é\U0001f600'),
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(statements(), texts, texts)
def test_to_bytes_is_the_json_dumps_recipe(
    statement: RecordStatement, tool_version: str, origin: str
) -> None:
    """The template equals the documented recipe, also for quotes, backslashes, non-BMP text."""
    candidates = [statement]
    for changes in ({"tool_version": tool_version}, {"origin": origin}):
        with contextlib.suppress(FormatError):  # not every text is a valid origin
            candidates.append(RecordStatement(**{**statement.__dict__, **changes}))
    for candidate in candidates:
        recipe = json.dumps(
            candidate.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        assert candidate.to_bytes() == recipe


@st.composite
def time_like(draw: st.DrawFn) -> str:
    """YYYY-MM-DDTHH:MM:SSZ with each field around and beyond its valid range."""
    year = draw(st.integers(0, 9999) | st.sampled_from([1600, 1900, 2000, 2023, 2024, 2100]))
    fields = (
        year,
        draw(st.integers(0, 13)),
        draw(st.integers(0, 32)),
        draw(st.integers(0, 25)),
        draw(st.integers(0, 61)),
        draw(st.integers(0, 62)),
    )
    year, month, day, hour, minute, second = fields
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"
    if draw(st.integers(0, 9)) == 0:  # sometimes not fixed-width digits at all
        position = draw(st.integers(0, len(text) - 1))
        text = text[:position] + draw(st.sampled_from("0 :-TZz+٣")) + text[position + 1 :]
    return text


@settings(max_examples=400, deadline=None)
@given(time_like() | st.text(max_size=21))
def test_time_check_judges_exactly_like_strptime(value: str) -> None:
    new = oracles.outcome(lambda: check_time(value))
    assert new == oracles.outcome(lambda: oracles.check_time(value))


FIELD_NAMES = [
    "_type", "predicate", "predicateType", "subject", "digest", "name", "sha256", "kind",
    "origin", "parents", "time", "tool_version", "extra",
]  # fmt: skip
field_values = st.one_of(
    oracles.json_values,
    kinds,
    digests,
    times,
    time_like(),
    tool_versions,
    st.sampled_from([TRAINING, TRAINING.upper(), STATEMENT_TYPE, PREDICATE_TYPE, "a b", ""]),
    st.builds(lambda kind, digest: {"kind": kind, "sha256": digest}, kinds, digests),
)
ENCODERS: list[Callable[[Any], bytes]] = [
    lambda d: json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
    lambda d: json.dumps(d, sort_keys=True, separators=(",", ":")).encode(),
    lambda d: json.dumps(d, sort_keys=True, ensure_ascii=False).encode(),
    lambda d: json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode(),
]


@st.composite
def statement_mutants(draw: st.DrawFn) -> bytes:
    """A valid statement's JSON after 0-2 edits, some encoding, and maybe a byte-level edit."""
    document = draw(statements()).to_dict()
    for _ in range(draw(st.integers(0, 2))):
        oracles.mutate_document(draw, document, FIELD_NAMES, field_values)
    data: bytes
    try:
        data = draw(st.sampled_from(ENCODERS))(document)
    except UnicodeEncodeError:  # a lone surrogate: keep the ASCII-escaped spelling
        data = ENCODERS[1](document)
    return oracles.maybe_mutate_bytes(draw, data, FIELD_NAMES)


def _fields(statement: RecordStatement) -> oracles.StatementFields:
    parents = tuple((p.kind, p.sha256) for p in statement.parents)
    return (*(statement.kind, statement.sha256), parents, statement.origin, statement.time,
            statement.tool_version)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(statement_mutants())
def test_mutated_statements_are_judged_exactly_as_before(data: bytes) -> None:
    """Same verdict, value and message as the original parser (strptime, json.dumps)."""
    new = oracles.outcome(lambda: _fields(RecordStatement.from_bytes(data)))
    assert new == oracles.outcome(lambda: oracles.statement_from_bytes(data))


def test_hostile_nesting_is_a_format_error() -> None:
    """Deep nesting used to escape as RecursionError, which would stop fsck; now it is refused."""
    with pytest.raises(FormatError, match="nested too deeply"):
        RecordStatement.from_bytes(b'{"a":' * 100_000)
