"""Tests for customer_model_factory.ledger.policy: the format, the edits and the chain walk."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_model_factory._jsonfile import manifest_bytes
from customer_model_factory.ledger.dsse import Envelope, Signature, pae
from customer_model_factory.ledger.errors import FormatError
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.policy import (
    FINDING_CODES,
    MAX_POLICY_BYTES,
    POLICY_KIND,
    KeyEntry,
    PolicyChain,
    PolicyError,
    PolicyFinding,
    PolicyRecord,
    Revocation,
    Role,
    TrustPolicy,
    format_expires,
    verify_policy_chain,
)
from customer_model_factory.ledger.statement import PAYLOAD_TYPE, RecordStatement

ORIGIN = "example.org/ledger"
EXPIRES = "2030-01-01T00:00:00Z"
LATER = "2031-01-01T00:00:00Z"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
KEYS = [PrivateKey.from_seed(bytes([i + 1]) * 32) for i in range(8)]
ENTRIES = [KeyEntry.of(key.public_key, f"key-{i}") for i, key in enumerate(KEYS)]
IDS = [entry.key_id for entry in ENTRIES]


def genesis(
    root: Sequence[int] = (0,), threshold: int = 1, *, expires: str = EXPIRES
) -> TrustPolicy:
    """Version 1 whose root role is the keys ``root`` (indices into KEYS)."""
    return TrustPolicy(
        version=1,
        expires=expires,
        origin=ORIGIN,
        keys=tuple(ENTRIES[i] for i in root),
        roles=(Role("root", tuple(IDS[i] for i in root), threshold),),
        revoked=(),
    )


def record(
    policy: TrustPolicy,
    index: int,
    *signers: PrivateKey,
    kind: str = POLICY_KIND,
    subject: str | None = None,
    origin: str | None = None,
    payload_type: str = PAYLOAD_TYPE,
    blob_id: str | None = None,
) -> PolicyRecord:
    """A log record of ``policy`` at ``index`` whose envelope ``signers`` signed."""
    statement = RecordStatement(
        kind=kind,
        sha256=policy.blob_id if subject is None else subject,
        parents=(),
        origin=policy.origin if origin is None else origin,
        time="2026-01-01T00:00:00Z",
        tool_version="test",
    )
    envelope = Envelope(statement.to_bytes(), payload_type)
    for signer in signers:
        envelope = envelope.signed_by(signer)
    return PolicyRecord(policy, policy.blob_id if blob_id is None else blob_id, envelope, index)


def codes(chain: PolicyChain) -> list[str]:
    """The finding codes of ``chain``, in report order."""
    return [finding.code for finding in chain.findings]


# --- the document: invariants --------------------------------------------------------------------


def test_key_entry_id_must_be_the_keys_own_id() -> None:
    with pytest.raises(ValueError, match="does not match the public key"):
        KeyEntry(IDS[1], KEYS[0].public_key, "alice")


@pytest.mark.parametrize("name", ["", "two words", "a+b", "tab\there", "x" * 129, "e\u0301", 7])
def test_key_entry_name_must_be_an_nfc_note_key_name(name: object) -> None:
    with pytest.raises(ValueError, match=r"\.name"):
        KeyEntry.of(KEYS[0].public_key, name)  # type: ignore[arg-type]


def test_role_stores_ids_sorted_and_equal_sets_are_equal() -> None:
    forward = Role("root", (IDS[0], IDS[1]), 1)
    backward = Role("root", (IDS[1], IDS[0]), 1)
    assert forward == backward
    assert list(forward.key_ids) == sorted(IDS[:2])


@pytest.mark.parametrize(
    ("name", "key_ids", "threshold", "message"),
    [
        ("root", (IDS[0],), 0, "threshold"),
        ("root", (IDS[0],), 2, "exceeds"),
        ("root", (IDS[0],), True, "expected an integer"),
        ("root", (IDS[0], IDS[0]), 1, "twice"),
        ("root", (), 1, "exceeds"),
        ("root", ("ABC",), 1, "key id"),
        ("Root", (IDS[0],), 1, "role names"),
        ("a" * 65, (IDS[0],), 1, "role names"),
    ],
)
def test_role_invariants(name: str, key_ids: tuple[str, ...], threshold: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Role(name, key_ids, threshold)


@pytest.mark.parametrize(
    ("key_id", "from_index", "reason", "message"),
    [
        ("x" * 64, 0, "lost", "key id"),
        (IDS[0], -1, "lost", "from_index"),
        (IDS[0], 2**53, "lost", "from_index"),
        (IDS[0], 0, "", "reason"),
        (IDS[0], 0, "two\nlines", "reason"),
    ],
)
def test_revocation_invariants(key_id: str, from_index: int, reason: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Revocation(key_id, from_index, reason)


def test_policy_requires_a_root_role() -> None:
    with pytest.raises(PolicyError, match="'root' role is required"):
        replace(genesis(), roles=(Role("training", (IDS[0],), 1),))


def test_policy_roles_may_only_name_enrolled_keys() -> None:
    with pytest.raises(PolicyError, match=f"{IDS[1]} is not in keys"):
        replace(genesis(), roles=(Role("root", (IDS[0], IDS[1]), 1),))


def test_policy_rejects_duplicate_key_ids_and_names() -> None:
    with pytest.raises(PolicyError, match="appears twice"):
        replace(genesis(), keys=(ENTRIES[0], ENTRIES[0]))
    twin = KeyEntry.of(KEYS[1].public_key, ENTRIES[0].name)
    with pytest.raises(PolicyError, match="share the name 'key-0'"):
        replace(genesis(), keys=(ENTRIES[0], twin))


@pytest.mark.parametrize(
    "expires",
    [
        "2030-01-01",
        "2030-01-01T00:00:00+00:00",
        "2030-01-01T00:00:00.5Z",
        "2030-01-01t00:00:00z",
        "2030-02-30T00:00:00Z",
        "2030-01-01T24:00:00Z",
        "0000-01-01T00:00:00Z",
        "\uff12030-01-01T00:00:00Z",  # a fullwidth digit,
    ],
)
def test_expires_has_one_spelling(expires: str) -> None:
    with pytest.raises(PolicyError, match="expires"):
        genesis(expires=expires)


@pytest.mark.parametrize("version", [0, -1, 2**53, True, "1"])
def test_version_is_a_positive_safe_integer(version: object) -> None:
    with pytest.raises(PolicyError, match="version"):
        replace(genesis(), version=version)  # type: ignore[arg-type]


def test_origin_must_be_a_note_key_name() -> None:
    with pytest.raises(PolicyError, match="origin"):
        replace(genesis(), origin="example.org ledger")


def test_collections_are_stored_sorted() -> None:
    policy = TrustPolicy(
        version=1,
        expires=EXPIRES,
        origin=ORIGIN,
        keys=(ENTRIES[2], ENTRIES[0], ENTRIES[1]),
        roles=(Role("training", (IDS[2],), 1), Role("root", (IDS[0],), 1)),
        revoked=(Revocation(IDS[5], 3, "lost"), Revocation(IDS[4], 1, "stolen")),
    )
    assert [e.key_id for e in policy.keys] == sorted(IDS[:3])
    assert [r.name for r in policy.roles] == ["root", "training"]
    assert [r.key_id for r in policy.revoked] == sorted([IDS[4], IDS[5]])


# --- the document: JSON and canonical bytes ------------------------------------------------------


def test_known_answer_bytes_and_blob_id() -> None:
    """The canonical bytes, spelled out by hand, so that docs/trust-policy.md can quote them."""
    policy = replace(genesis(), revoked=(Revocation(IDS[7], 12, "laptop stolen"),))
    public = base64.b64encode(KEYS[0].public_key.raw).decode()
    expected = (
        "{\n"
        '  "expires": "2030-01-01T00:00:00Z",\n'
        '  "keys": {\n'
        f'    "{IDS[0]}": {{\n'
        '      "name": "key-0",\n'
        f'      "public_key": "{public}",\n'
        '      "type": "ed25519"\n'
        "    }\n"
        "  },\n"
        '  "origin": "example.org/ledger",\n'
        '  "revoked": {\n'
        f'    "{IDS[7]}": {{\n'
        '      "from_index": 12,\n'
        '      "reason": "laptop stolen"\n'
        "    }\n"
        "  },\n"
        '  "roles": {\n'
        '    "root": {\n'
        '      "key_ids": [\n'
        f'        "{IDS[0]}"\n'
        "      ],\n"
        '      "threshold": 1\n'
        "    }\n"
        "  },\n"
        '  "schema": "cmf-trust-policy/v1",\n'
        '  "version": 1\n'
        "}\n"
    ).encode()
    assert policy.to_bytes() == expected
    assert policy.to_bytes() == manifest_bytes(policy.to_dict())
    assert policy.blob_id == hashlib.sha256(expected).hexdigest()
    # The worked example of docs/trust-policy.md section 2 (key-0 has seed 0x01 * 32).
    assert policy.blob_id == "cdc859f12cbaf829eadd518c03c3ca667dcc2ef09180e35767244adcd4597fe2"
    assert public == "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
    assert IDS[0] == hashlib.sha256(KEYS[0].public_key.raw).hexdigest()
    assert TrustPolicy.from_bytes(expected) == policy


def _doc() -> dict[str, object]:
    """A fresh JSON document of a two-role policy, to be mutated by a test."""
    policy = genesis().with_key(ENTRIES[1], ["training"], expires=EXPIRES)
    policy = policy.with_revocation(IDS[6], 4, "lost", expires=EXPIRES)
    doc: dict[str, object] = json.loads(policy.to_bytes())
    return doc


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("extra",), 1, "extra: unknown field"),
        (("schema",), "cmf-trust-policy/v2", "schema"),
        (("version",), "3", "version: expected an integer"),
        (("version",), 3.0, "version: expected an integer"),
        (("expires",), None, "expires: expected a string"),
        (("keys",), [], "keys: expected an object"),
        (("keys", IDS[0], "type"), "rsa", f"keys.{IDS[0]}.type"),
        (("keys", IDS[0], "comment"), "x", f"keys.{IDS[0]}.comment: unknown field"),
        (("keys", IDS[0], "name"), False, f"keys.{IDS[0]}.name: expected a string"),
        (("keys", IDS[0], "public_key"), "AAAA", f"keys.{IDS[0]}.public_key: expected 32"),
        (("keys", IDS[0], "public_key"), "!!", f"keys.{IDS[0]}.public_key"),
        (("roles", "root", "threshold"), True, "roles.root.threshold: expected an integer"),
        (("roles", "root", "key_ids"), IDS[0], "roles.root.key_ids: expected a list"),
        (("roles", "root", "weight"), 1, "roles.root.weight: unknown field"),
        (("revoked", IDS[6], "from_index"), -1, f"revoked.{IDS[6]}.from_index"),
        (("revoked", IDS[6], "reason"), 5, f"revoked.{IDS[6]}.reason: expected a string"),
    ],
)
def test_from_dict_is_strict_and_names_the_field(
    path: tuple[str, ...], value: object, field: str
) -> None:
    doc = _doc()
    target: dict[str, object] = doc
    for step in path[:-1]:
        inner = target[step]
        assert isinstance(inner, dict)
        target = inner
    target[path[-1]] = value
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        TrustPolicy.from_dict(doc)


@pytest.mark.parametrize(
    "missing", ["schema", "version", "expires", "origin", "keys", "roles", "revoked"]
)
def test_from_dict_requires_every_field(missing: str) -> None:
    doc = _doc()
    del doc[missing]
    with pytest.raises(ValueError, match=f"{missing}: required field is missing"):
        TrustPolicy.from_dict(doc)


def test_from_dict_refuses_a_key_listed_under_another_keys_id() -> None:
    doc = _doc()
    keys = doc["keys"]
    assert isinstance(keys, dict)
    keys[IDS[3]] = keys.pop(IDS[0])
    with pytest.raises(ValueError, match="does not match the public key"):
        TrustPolicy.from_dict(doc)


def test_from_dict_refuses_url_safe_and_non_canonical_base64() -> None:
    raw = bytes([0xFB]) * 32  # standard base64 has '+' and '/', URL-safe has '-' and '_'
    for text in (base64.urlsafe_b64encode(raw).decode(), base64.b64encode(raw).decode()[:-1] + "1"):
        doc = _doc()
        keys = doc["keys"]
        assert isinstance(keys, dict)
        keys[IDS[0]]["public_key"] = text
        with pytest.raises(ValueError, match="public_key"):
            TrustPolicy.from_dict(doc)


def test_errors_are_value_errors_and_ledger_format_errors() -> None:
    with pytest.raises(FormatError):
        TrustPolicy.from_bytes(b"{}")
    with pytest.raises(ValueError):
        TrustPolicy.from_bytes(b"{}")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: json.dumps(json.loads(b), sort_keys=True).encode(),  # compact spacing
        lambda b: b.rstrip(b"\n"),  # no final newline
        lambda b: b + b"\n",
        lambda b: b.replace(b"\n", b"\r\n"),
        lambda b: b"\xef\xbb\xbf" + b,  # UTF-8 byte order mark
        lambda b: b.decode().encode("utf-16"),
        lambda b: json.dumps(dict(reversed(json.loads(b).items())), indent=2).encode() + b"\n",
        lambda b: b.replace(b'"key-0"', b'"\\u006bey-0"'),  # same string, other escape
    ],
)
def test_from_bytes_refuses_non_canonical_spellings(mutate: object) -> None:
    original = genesis().to_bytes()
    data = mutate(original)  # type: ignore[operator]
    assert data != original
    with pytest.raises(PolicyError):
        TrustPolicy.from_bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"version": 1, "version": 2}', "appears twice"),
        (b'{"version": NaN}', "NaN"),
        (b"[]", "top level"),
        (b"\xff", "UTF-8"),
        (b"{", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not JSON"),
        (b" " * (MAX_POLICY_BYTES + 1), "exceeds"),
    ],
    ids=["duplicate", "nan", "array", "utf8", "truncated", "deep", "oversized"],
)
def test_from_bytes_refuses_malformed_input(data: bytes, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        TrustPolicy.from_bytes(data)


# --- round trips and canonical bytes (properties) ------------------------------------------------

key_names = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
        min_size=1,
        max_size=12,
    )
    .map(lambda text: unicodedata.normalize("NFC", text))
    .filter(lambda text: "+" not in text and not any(c.isspace() for c in text) and text != "")
)
role_names = st.from_regex(r"[a-z0-9_.-]{1,12}", fullmatch=True)
hex_ids = st.binary(min_size=32, max_size=32).map(lambda b: hashlib.sha256(b).hexdigest())
instants = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda moment: format_expires(moment.replace(tzinfo=UTC)))
reasons = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")),
        min_size=1,
        max_size=20,
    )
    .map(lambda text: unicodedata.normalize("NFC", text))
    .filter(str.isprintable)
)


@st.composite
def policies(draw: st.DrawFn) -> TrustPolicy:
    """Any valid policy over keys drawn from KEYS."""
    chosen = draw(st.lists(st.integers(0, len(KEYS) - 1), min_size=1, max_size=5, unique=True))
    names = draw(st.lists(key_names, min_size=len(chosen), max_size=len(chosen), unique=True))
    entries = tuple(KeyEntry.of(KEYS[i].public_key, n) for i, n in zip(chosen, names, strict=True))
    ids = [entry.key_id for entry in entries]
    roles = []
    for name in [
        "root",
        *draw(st.lists(role_names.filter(lambda n: n != "root"), unique=True, max_size=3)),
    ]:
        members = draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))
        roles.append(Role(name, tuple(members), draw(st.integers(1, len(members)))))
    revoked = draw(
        st.dictionaries(
            st.one_of(st.sampled_from(IDS), hex_ids),
            st.tuples(st.integers(0, 2**53 - 1), reasons),
            max_size=3,
        )
    )
    return TrustPolicy(
        version=draw(st.integers(1, 2**53 - 1)),
        expires=draw(instants),
        origin=draw(key_names),
        keys=tuple(draw(st.permutations(entries))),
        roles=tuple(draw(st.permutations(roles))),
        revoked=tuple(Revocation(k, i, r) for k, (i, r) in revoked.items()),
    )


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_round_trips_and_bytes_are_canonical(policy: TrustPolicy) -> None:
    assert TrustPolicy.from_dict(policy.to_dict()) == policy
    data = policy.to_bytes()
    assert TrustPolicy.from_bytes(data) == policy
    assert data == manifest_bytes(json.loads(data))  # the bytes are their own canonical form
    assert policy.blob_id == hashlib.sha256(data).hexdigest()
    shuffled = replace(policy, keys=policy.keys[::-1], roles=policy.roles[::-1])
    assert shuffled.to_bytes() == data  # construction order never changes the bytes


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(policies(), st.data())
def test_any_changed_byte_is_refused_or_is_another_blob(
    policy: TrustPolicy, data: st.DataObject
) -> None:
    original = policy.to_bytes()
    position = data.draw(st.integers(0, len(original) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = original[:position] + bytes([original[position] ^ flip]) + original[position + 1 :]
    try:
        parsed = TrustPolicy.from_bytes(tampered)
    except PolicyError:
        return
    # A byte change that still parses is a different canonical document: a different blob id.
    assert parsed != policy
    assert parsed.blob_id != policy.blob_id


# --- queries -------------------------------------------------------------------------------------


def test_role_lookup_names_the_missing_role() -> None:
    with pytest.raises(ValueError, match="no role 'training'"):
        genesis().role("training")


def test_role_keys_maps_ids_to_public_keys() -> None:
    policy = genesis((0, 1), 2).with_key(ENTRIES[2], ["training"], expires=EXPIRES)
    assert policy.role_keys("root") == {IDS[0]: KEYS[0].public_key, IDS[1]: KEYS[1].public_key}
    assert policy.role_keys("training") == {IDS[2]: KEYS[2].public_key}


def test_revoked_at_starts_at_from_index() -> None:
    policy = genesis().with_revocation(IDS[3], 10, "stolen", expires=EXPIRES)
    assert not policy.revoked_at(IDS[3], 9)
    assert policy.revoked_at(IDS[3], 10)
    assert policy.revoked_at(IDS[3], 11)
    assert not policy.revoked_at(IDS[4], 10)


def test_expires_at_is_aware_utc() -> None:
    assert genesis().expires_at == datetime(2030, 1, 1, tzinfo=UTC)


def test_format_expires() -> None:
    tokyo = timezone(timedelta(hours=9))
    assert format_expires(datetime(2030, 1, 1, 9, 0, 0, 999_999, tzinfo=tokyo)) == EXPIRES
    assert format_expires(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00Z"
    with pytest.raises(PolicyError, match="aware"):
        format_expires(datetime(2030, 1, 1))


# --- editing helpers -----------------------------------------------------------------------------


def test_with_key_enrols_into_existing_and_new_roles() -> None:
    base = genesis()
    new = base.with_key(ENTRIES[1], ["root", "training"], expires=datetime(2031, 1, 1, tzinfo=UTC))
    assert (new.version, new.expires) == (2, LATER)
    assert new.role("root") == Role("root", (IDS[0], IDS[1]), 1)
    assert new.role("training") == Role("training", (IDS[1],), 1)
    assert base.version == 1 and len(base.keys) == 1  # the original is untouched


def test_with_key_refuses_enrolled_revoked_or_bad_input() -> None:
    base = genesis()
    with pytest.raises(PolicyError, match="already enrolled"):
        base.with_key(ENTRIES[0], [], expires=EXPIRES)
    revoked = base.with_revocation(IDS[1], 0, "lost", expires=EXPIRES)
    with pytest.raises(PolicyError, match="revoked"):
        revoked.with_key(ENTRIES[1], ["root"], expires=EXPIRES)
    with pytest.raises(PolicyError, match="not one string"):
        base.with_key(ENTRIES[1], "root", expires=EXPIRES)
    with pytest.raises(PolicyError, match="expires"):
        base.with_key(ENTRIES[1], [], expires="tomorrow")
    with pytest.raises(PolicyError, match="aware"):
        base.with_key(ENTRIES[1], [], expires=datetime(2031, 1, 1))


def test_without_key_removes_it_everywhere() -> None:
    policy = genesis((0, 1)).with_key(ENTRIES[2], ["training", "root"], expires=EXPIRES)
    policy = policy.with_key(ENTRIES[3], ["training"], expires=EXPIRES)
    new = policy.without_key(IDS[2], expires=LATER)
    assert new.version == policy.version + 1
    assert IDS[2] not in {e.key_id for e in new.keys}
    assert new.role("root").key_ids == tuple(sorted(IDS[:2]))
    assert new.role("training").key_ids == (IDS[3],)


def test_without_key_refuses_to_break_a_role() -> None:
    policy = genesis((0, 1), 2)
    with pytest.raises(PolicyError, match=r"roles\.root\.threshold"):
        policy.without_key(IDS[1], expires=EXPIRES)
    with pytest.raises(PolicyError, match="not enrolled"):
        policy.without_key(IDS[5], expires=EXPIRES)


def test_with_threshold() -> None:
    policy = genesis((0, 1, 2)).with_threshold("root", 2, expires=LATER)
    assert (policy.version, policy.role("root").threshold) == (2, 2)
    with pytest.raises(PolicyError, match="exceeds"):
        policy.with_threshold("root", 4, expires=LATER)
    with pytest.raises(PolicyError, match="no role 'audit'"):
        policy.with_threshold("audit", 1, expires=LATER)


def test_with_revocation_can_only_move_earlier() -> None:
    policy = genesis().with_revocation(IDS[4], 10, "stolen", expires=EXPIRES)
    assert policy.revoked == (Revocation(IDS[4], 10, "stolen"),)
    with pytest.raises(PolicyError, match="already revoked from index 10"):
        policy.with_revocation(IDS[4], 12, "stolen", expires=EXPIRES)
    earlier = policy.with_revocation(IDS[4], 3, "stolen before we noticed", expires=EXPIRES)
    assert earlier.revoked == (Revocation(IDS[4], 3, "stolen before we noticed"),)


def test_rotated_hands_every_role_to_the_new_key() -> None:
    policy = genesis((0, 1), 2).with_key(ENTRIES[2], ["training"], expires=EXPIRES)
    policy = policy.with_key(ENTRIES[3], ["training"], expires=EXPIRES)
    policy = policy.rotated(IDS[3], ENTRIES[4], expires=EXPIRES).with_threshold(
        "training", 2, expires=EXPIRES
    )
    rotated = policy.rotated(IDS[0], ENTRIES[5], expires=LATER)
    assert rotated.version == policy.version + 1
    assert IDS[0] not in {e.key_id for e in rotated.keys}
    assert rotated.role("root") == Role("root", (IDS[1], IDS[5]), 2)
    assert rotated.role("training") == policy.role("training")
    with pytest.raises(PolicyError, match="not enrolled"):
        rotated.rotated(IDS[0], ENTRIES[6], expires=LATER)
    with pytest.raises(PolicyError, match="already enrolled"):
        rotated.rotated(IDS[1], ENTRIES[5], expires=LATER)


# --- the chain walk: accepted chains -------------------------------------------------------------


def rotation_chain() -> list[PolicyRecord]:
    """v1 root {0}; v2 adds key 1 to root and training; v3 rotates root key 0 -> 2. Cross-signed."""
    v1 = genesis()
    v2 = v1.with_key(ENTRIES[1], ["root", "training"], expires=LATER)
    v3 = v2.rotated(IDS[0], ENTRIES[2], expires=LATER)
    return [
        record(v1, 0, KEYS[0]),
        record(v2, 4, KEYS[0], KEYS[1]),
        record(v3, 9, KEYS[0], KEYS[1], KEYS[2]),
    ]


def test_a_cross_signed_rotation_verifies_from_a_pinned_policy_or_key() -> None:
    records = rotation_chain()
    for pinned in (records[0].policy, KEYS[0].public_key):
        chain = verify_policy_chain(pinned, records, as_of=NOW)
        assert chain.ok, chain.findings
        assert chain.policies == tuple(records)
        assert chain.current == records[2].policy
        assert IDS[0] not in chain.current.role("root").key_ids
        assert IDS[2] in chain.current.role("root").key_ids


def test_a_key_made_root_by_a_later_version_pins_that_version() -> None:
    records = rotation_chain()
    # Key 1 joined root in v2, key 2 in v3: each walks from the version that made it root.
    for key_index, start in ((1, 1), (2, 2)):
        chain = verify_policy_chain(KEYS[key_index].public_key, records, as_of=NOW)
        assert chain.ok, chain.findings
        assert chain.policies == tuple(records[start:])
        assert chain.current == records[2].policy
    # The walk from there still judges every later version: a v3 that only key 2 signed fails
    # v2's root threshold, though key 2 is root of v3.
    only_new = record(records[2].policy, 9, KEYS[2])
    chain = verify_policy_chain(KEYS[1].public_key, [*records[:2], only_new], as_of=NOW)
    assert codes(chain) == ["policy_old_root_threshold"]
    assert chain.policies == (records[1],)
    # The version that made the key root must be one it signed: no later one is searched for.
    v2_unsigned_by_1 = record(records[1].policy, 4, KEYS[0])
    chain = verify_policy_chain(KEYS[1].public_key, [records[0], v2_unsigned_by_1], as_of=NOW)
    assert codes(chain) == ["policy_pin_mismatch"]
    assert "did not sign" in chain.findings[0].message
    assert chain.findings[0].version == 2
    # A key that is root of no version reports that against the first one.
    chain = verify_policy_chain(KEYS[3].public_key, records, as_of=NOW)
    assert codes(chain) == ["policy_pin_mismatch"]
    assert "not a root key of this version" in chain.findings[0].message
    assert chain.findings[0].version == 1


def test_a_key_revoked_where_it_first_is_root_is_refused() -> None:
    two = genesis((0, 1), 1)
    revoking = replace(two, revoked=(Revocation(IDS[1], 0, "lost"),))
    later = replace(two, version=2, expires=LATER)
    records = [record(revoking, 0, KEYS[0], KEYS[1]), record(later, 3, KEYS[0], KEYS[1])]
    # Key 1 is first root in v1, which revokes it: refused there, although v2 (which drops the
    # revocation, and is never reached) would fit it. A revoked key is never searched past.
    chain = verify_policy_chain(KEYS[1].public_key, records, as_of=NOW)
    assert codes(chain)[0] == "policy_pin_mismatch"
    assert "revoked" in chain.findings[0].message


def test_policy_at_is_the_version_recorded_strictly_before() -> None:
    chain = verify_policy_chain(genesis(), rotation_chain(), as_of=NOW)
    assert [chain.policy_at(i).version for i in (1, 4, 5, 9, 10, 10**6)] == [1, 1, 2, 2, 3, 3]
    with pytest.raises(PolicyError, match="before log index 0"):
        chain.policy_at(0)  # a policy record never governs itself


def test_an_empty_role_query_on_an_unverified_chain_raises() -> None:
    chain = PolicyChain((), (PolicyFinding("policy_rollback", "x"),))
    assert not chain.ok
    with pytest.raises(PolicyError):
        _ = chain.current
    with pytest.raises(PolicyError):
        chain.policy_at(5)


def test_policy_chain_requires_log_order() -> None:
    records = rotation_chain()
    with pytest.raises(ValueError, match="strictly increase"):
        PolicyChain((records[1], records[0]), ())


def test_naive_as_of_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="as_of"):
        verify_policy_chain(genesis(), rotation_chain(), as_of=datetime(2026, 1, 1))


# --- the chain walk: every finding code, exact lists ---------------------------------------------


def test_policy_blob_mismatch() -> None:
    v1 = genesis()
    chain = verify_policy_chain(v1, [record(v1, 0, KEYS[0], blob_id="0" * 64)], as_of=NOW)
    assert codes(chain) == ["policy_blob_mismatch"]
    assert chain.findings[0].version == 1 and chain.findings[0].index == 0
    assert chain.policies == ()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"kind": "training"}, ["policy_statement_mismatch"]),
        ({"subject": "ab" * 32}, ["policy_statement_mismatch"]),
        ({"origin": "other.example/ledger"}, ["policy_statement_mismatch"]),
        # Signatures over another payload type are no signatures of a policy statement.
        (
            {"payload_type": "application/json"},
            ["policy_statement_mismatch", "policy_new_root_threshold"],
        ),
    ],
)
def test_policy_statement_mismatch_on_the_first_record(
    options: dict[str, str], expected: list[str]
) -> None:
    v1 = genesis()
    chain = verify_policy_chain(v1, [record(v1, 0, KEYS[0], **options)], as_of=NOW)
    assert codes(chain) == expected


def test_policy_statement_mismatch_on_a_garbage_payload() -> None:
    v1 = genesis()
    envelope = Envelope(b'{"not": "a statement"}', PAYLOAD_TYPE).signed_by(KEYS[0])
    chain = verify_policy_chain(v1, [PolicyRecord(v1, v1.blob_id, envelope, 0)], as_of=NOW)
    assert codes(chain) == ["policy_statement_mismatch"]


def test_policy_pin_mismatch_when_the_first_record_is_not_the_pinned_policy() -> None:
    v1 = genesis()
    other = genesis((1,))
    chain = verify_policy_chain(v1, [record(other, 0, KEYS[1])], as_of=NOW)
    assert codes(chain) == ["policy_pin_mismatch"]
    assert (chain.findings[0].version, chain.findings[0].index) == (1, 0)


def test_a_later_pinned_version_walks_forward_from_its_own_record() -> None:
    """A verifier that accepted version 2 starts at version 2's record, whatever came before."""
    records = rotation_chain()  # v1 at 0, v2 at 4, v3 at 9
    chain = verify_policy_chain(records[1].policy, records, as_of=NOW)
    assert chain.ok, chain.findings
    assert chain.policies == tuple(records[1:])
    assert chain.current == records[2].policy
    assert chain.policy_at(5).version == 2
    with pytest.raises(PolicyError, match="before log index 4"):
        chain.policy_at(4)  # entries before the pinned record: nothing the pin vouches for
    newest = verify_policy_chain(records[2].policy, records, as_of=NOW)
    assert newest.ok and newest.policies == (records[2],)
    # Earlier versions are not judged: an unsigned version 1 does not matter to a v2 pin.
    unsigned_v1 = record(records[0].policy, 0)
    assert verify_policy_chain(records[1].policy, [unsigned_v1, *records[1:]], as_of=NOW).ok


def test_a_later_pinned_version_is_still_judged_from_its_record_on() -> None:
    records = rotation_chain()
    # The pinned record must carry its own root threshold (v2's root: 1 of keys {0, 1}).
    strange = record(records[1].policy, 4, KEYS[7])
    chain = verify_policy_chain(records[1].policy, [records[0], strange, records[2]], as_of=NOW)
    assert codes(chain) == ["policy_new_root_threshold"]
    assert (chain.findings[0].version, chain.findings[0].index) == (2, 4)
    # Its successors must follow it: v3 without v2's root keys is refused.
    unsigned_v3 = record(records[2].policy, 9, KEYS[2])
    chain = verify_policy_chain(records[1].policy, [*records[:2], unsigned_v3], as_of=NOW)
    assert codes(chain) == ["policy_old_root_threshold"]
    assert chain.current == records[1].policy


def test_a_pinned_version_the_log_does_not_hold_is_refused() -> None:
    records = rotation_chain()
    v2 = records[1].policy
    # Other bytes at the pinned version: refused, naming the recorded version 2.
    other_v2 = replace(v2, expires="2030-06-01T00:00:00Z")
    chain = verify_policy_chain(other_v2, records, as_of=NOW)
    assert codes(chain) == ["policy_pin_mismatch"]
    assert (chain.findings[0].version, chain.findings[0].index) == (2, 4)
    assert other_v2.blob_id in chain.findings[0].message
    assert chain.policies == ()
    # No record of the pinned version at all (the log skips from 1 to 3).
    chain = verify_policy_chain(v2, [records[0], records[2]], as_of=NOW)
    assert codes(chain) == ["policy_pin_mismatch"]
    assert "no trust policy version 2" in chain.findings[0].message
    # Newer than everything recorded: the log is behind the pin.
    assert codes(verify_policy_chain(v2, records[:1], as_of=NOW)) == ["policy_rollback"]


def test_policy_pin_mismatch_for_a_pinned_key() -> None:
    v1 = genesis()
    first = record(v1, 0, KEYS[0])
    # Not a root key of the first version.
    assert codes(verify_policy_chain(KEYS[1].public_key, [first], as_of=NOW)) == [
        "policy_pin_mismatch"
    ]
    # A root key that did not sign (the 2-of-2 root fails too, with only one signature).
    two = genesis((0, 1), 2)
    assert codes(verify_policy_chain(KEYS[1].public_key, [record(two, 0, KEYS[0])], as_of=NOW)) == [
        "policy_pin_mismatch",
        "policy_new_root_threshold",
    ]
    # A root key that the version itself revokes from its own index.
    revoking = replace(
        two, revoked=(Revocation(IDS[1], 0, "lost"),), roles=(Role("root", tuple(IDS[:2]), 1),)
    )
    assert codes(
        verify_policy_chain(KEYS[1].public_key, [record(revoking, 0, KEYS[0], KEYS[1])], as_of=NOW)
    ) == ["policy_pin_mismatch"]
    # No record at all.
    assert codes(verify_policy_chain(KEYS[0].public_key, [], as_of=NOW)) == ["policy_pin_mismatch"]


def test_policy_rollback_when_the_pin_is_newer_than_the_log() -> None:
    records = rotation_chain()
    pinned = records[2].policy
    chain = verify_policy_chain(pinned, records[:2], as_of=NOW)
    assert codes(chain) == ["policy_rollback"]
    assert codes(verify_policy_chain(pinned, [], as_of=NOW)) == ["policy_rollback"]


def test_policy_rollback_when_a_version_repeats_or_goes_back() -> None:
    v1 = genesis()
    v2 = v1.with_key(ENTRIES[1], ["root"], expires=LATER)
    again = replace(v2, expires=EXPIRES)  # same version number, other content
    chain = verify_policy_chain(
        v1,
        [
            record(v1, 0, KEYS[0]),
            record(v2, 1, KEYS[0], KEYS[1]),
            record(again, 2, KEYS[0], KEYS[1]),
        ],
        as_of=NOW,
    )
    assert codes(chain) == ["policy_rollback"]
    assert (chain.findings[0].version, chain.findings[0].index) == (2, 2)
    assert chain.current == v2
    back = replace(v1, expires=LATER)
    chain = verify_policy_chain(
        v1,
        [record(v1, 0, KEYS[0]), record(v2, 1, KEYS[0], KEYS[1]), record(back, 2, KEYS[0])],
        as_of=NOW,
    )
    assert codes(chain) == ["policy_rollback"]


def test_policy_version_gap() -> None:
    v1 = genesis()
    v3 = replace(v1.with_key(ENTRIES[1], ["root"], expires=LATER), version=3)
    chain = verify_policy_chain(
        v1, [record(v1, 0, KEYS[0]), record(v3, 1, KEYS[0], KEYS[1])], as_of=NOW
    )
    assert codes(chain) == ["policy_version_gap"]


def test_policy_origin_mismatch() -> None:
    v1 = genesis()
    moved = replace(v1.with_key(ENTRIES[1], [], expires=LATER), origin="other.example/ledger")
    chain = verify_policy_chain(v1, [record(v1, 0, KEYS[0]), record(moved, 1, KEYS[0])], as_of=NOW)
    assert codes(chain) == ["policy_origin_mismatch"]


def test_policy_log_order() -> None:
    v1 = genesis()
    v2 = v1.with_key(ENTRIES[1], [], expires=LATER)
    chain = verify_policy_chain(v1, [record(v1, 5, KEYS[0]), record(v2, 5, KEYS[0])], as_of=NOW)
    assert codes(chain) == ["policy_log_order"]


def test_rotation_without_the_old_root_is_refused() -> None:
    """The new root alone cannot vouch for itself (TUF 5.3.4 (1))."""
    v1 = genesis()
    v2 = v1.rotated(IDS[0], ENTRIES[1], expires=LATER)
    chain = verify_policy_chain(v1, [record(v1, 0, KEYS[0]), record(v2, 1, KEYS[1])], as_of=NOW)
    assert codes(chain) == ["policy_old_root_threshold"]


def test_rotation_without_the_new_root_is_refused() -> None:
    """The old root cannot hand trust to keys that never signed (TUF 5.3.4 (2))."""
    v1 = genesis()
    v2 = v1.rotated(IDS[0], ENTRIES[1], expires=LATER)
    chain = verify_policy_chain(v1, [record(v1, 0, KEYS[0]), record(v2, 1, KEYS[0])], as_of=NOW)
    assert codes(chain) == ["policy_new_root_threshold"]


def test_unsigned_successor_fails_both_thresholds() -> None:
    v1 = genesis()
    v2 = v1.with_key(ENTRIES[1], [], expires=LATER)
    chain = verify_policy_chain(v1, [record(v1, 0, KEYS[0]), record(v2, 1)], as_of=NOW)
    assert codes(chain) == ["policy_old_root_threshold", "policy_new_root_threshold"]


def test_policy_revocation_dropped() -> None:
    v1 = genesis()
    v2 = v1.with_revocation(IDS[5], 3, "stolen", expires=LATER)
    dropped = replace(v2, version=3, revoked=())
    postponed = replace(v2, version=3, revoked=(Revocation(IDS[5], 4, "stolen"),))
    earlier = replace(v2, version=3, revoked=(Revocation(IDS[5], 2, "stolen"),))
    head = [record(v1, 0, KEYS[0]), record(v2, 1, KEYS[0])]
    for bad in (dropped, postponed):
        chain = verify_policy_chain(v1, [*head, record(bad, 2, KEYS[0])], as_of=NOW)
        assert codes(chain) == ["policy_revocation_dropped"]
    assert verify_policy_chain(v1, [*head, record(earlier, 2, KEYS[0])], as_of=NOW).ok


def test_policy_expired_uses_the_latest_verified_version_only() -> None:
    v1 = genesis(expires="2026-01-01T00:00:00Z")  # already expired at NOW
    v2 = v1.with_key(ENTRIES[1], [], expires=LATER)
    assert verify_policy_chain(v1, [record(v1, 0, KEYS[0]), record(v2, 1, KEYS[0])], as_of=NOW).ok
    chain = verify_policy_chain(v1, [record(v1, 0, KEYS[0])], as_of=NOW)
    assert codes(chain) == ["policy_expired"]
    assert chain.current == v1  # expired is reported, the version is still the verified one


def test_expiry_is_judged_as_of_the_given_instant() -> None:
    """An old release verifies as of its own time and fails as of now."""
    v1 = genesis(expires="2026-03-01T12:00:00Z")
    records = [record(v1, 0, KEYS[0])]
    release_time = datetime(2026, 2, 5, tzinfo=UTC)
    assert verify_policy_chain(v1, records, as_of=release_time).ok
    assert codes(verify_policy_chain(v1, records, as_of=NOW)) == ["policy_expired"]
    boundary = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)  # TUF: must be later than "now"
    assert codes(verify_policy_chain(v1, records, as_of=boundary)) == ["policy_expired"]
    just_before = boundary - timedelta(microseconds=1)
    assert verify_policy_chain(v1, records, as_of=just_before).ok


def test_the_walk_stops_at_the_first_bad_record() -> None:
    records = rotation_chain()
    v4 = records[2].policy.with_key(ENTRIES[3], [], expires=LATER)
    unsigned_v3 = record(records[2].policy, 9, KEYS[2])  # v2's root {0, 1} did not sign
    chain = verify_policy_chain(
        genesis(),
        [records[0], records[1], unsigned_v3, record(v4, 12, KEYS[1], KEYS[2])],
        as_of=NOW,
    )
    assert codes(chain) == ["policy_old_root_threshold"]
    assert chain.current == records[1].policy  # v4 is never trusted, though well signed
    assert chain.policy_at(100).version == 2


def test_all_findings_of_the_bad_record_are_reported_with_expiry() -> None:
    v1 = genesis(expires="2026-01-01T00:00:00Z")
    bad = replace(v1.with_key(ENTRIES[1], [], expires=LATER), version=5, origin="other.example/x")
    chain = verify_policy_chain(
        v1, [record(v1, 3, KEYS[0]), record(bad, 2, KEYS[1], blob_id="0" * 64)], as_of=NOW
    )
    assert codes(chain) == [
        "policy_blob_mismatch",
        "policy_log_order",
        "policy_origin_mismatch",
        "policy_version_gap",
        "policy_old_root_threshold",
        "policy_new_root_threshold",
        "policy_expired",
    ]
    assert set(codes(chain)) <= set(FINDING_CODES)
    assert chain.findings[-1].version == 1


# --- thresholds, distinct keys, roles, revocation -----------------------------------------------


def _two_of_three() -> tuple[TrustPolicy, TrustPolicy]:
    """v1 root 2-of-3 {0,1,2}, training {3}; v2 enrols key 4 (root unchanged)."""
    v1 = genesis((0, 1, 2), 2).with_key(ENTRIES[3], ["training"], expires=EXPIRES)
    v1 = replace(v1, version=1)
    v2 = v1.with_key(ENTRIES[4], [], expires=LATER)
    return v1, v2


def _walk(v1: TrustPolicy, second: PolicyRecord) -> list[str]:
    """Codes of the walk v1 (fully signed, index 0) -> ``second``."""
    return codes(verify_policy_chain(v1, [record(v1, 0, *KEYS[:3]), second], as_of=NOW))


def test_k_of_n_counts_distinct_keys() -> None:
    v1, v2 = _two_of_three()
    assert _walk(v1, record(v2, 1, KEYS[0], KEYS[2])) == []
    assert _walk(v1, record(v2, 1, KEYS[1])) == [
        "policy_old_root_threshold",
        "policy_new_root_threshold",
    ]


def test_duplicate_signatures_by_one_key_count_once() -> None:
    v1, v2 = _two_of_three()
    once = record(v2, 1, KEYS[0])
    signature = once.envelope.signatures[0]
    # The same signature twice, and once more under another key's id as the hint.
    forged = (signature, signature, Signature(IDS[1], signature.sig))
    envelope = Envelope(once.envelope.payload, PAYLOAD_TYPE, forged)
    assert _walk(v1, replace(once, envelope=envelope)) == [
        "policy_old_root_threshold",
        "policy_new_root_threshold",
    ]


def test_a_signature_by_a_non_root_key_does_not_count() -> None:
    v1, v2 = _two_of_three()
    # Key 3 holds "training" in both versions: it is enrolled, but not a root key.
    assert _walk(v1, record(v2, 1, KEYS[0], KEYS[3])) == [
        "policy_old_root_threshold",
        "policy_new_root_threshold",
    ]


def test_a_signature_by_an_unknown_key_or_a_bad_signature_does_not_count() -> None:
    v1, v2 = _two_of_three()
    good = record(v2, 1, KEYS[0])
    message = pae(PAYLOAD_TYPE, good.envelope.payload)
    bad_sig = bytearray(KEYS[1].sign(message))
    bad_sig[0] ^= 1
    extra = (Signature(IDS[1], bytes(bad_sig)), Signature("", KEYS[7].sign(message)))
    envelope = Envelope(good.envelope.payload, PAYLOAD_TYPE, good.envelope.signatures + extra)
    assert _walk(v1, replace(good, envelope=envelope)) == [
        "policy_old_root_threshold",
        "policy_new_root_threshold",
    ]


def test_revocation_by_index_voids_later_signatures_only() -> None:
    v1, _ = _two_of_three()
    v2 = v1.with_revocation(IDS[0], 5, "laptop stolen", expires=LATER)
    v3 = v2.with_key(ENTRIES[4], [], expires=LATER)
    head = [record(v1, 0, *KEYS[:3]), record(v2, 1, KEYS[1], KEYS[2])]
    # Keys 0 and 1 sign v3: before index 5 key 0 still counts, from index 5 on it does not.
    assert verify_policy_chain(v1, [*head, record(v3, 4, KEYS[0], KEYS[1])], as_of=NOW).ok
    late = verify_policy_chain(v1, [*head, record(v3, 5, KEYS[0], KEYS[1])], as_of=NOW)
    assert codes(late) == ["policy_old_root_threshold", "policy_new_root_threshold"]


def test_a_new_version_cannot_lean_on_the_key_it_revokes() -> None:
    v1, _ = _two_of_three()
    v2 = v1.with_revocation(IDS[0], 1, "compromised", expires=LATER)
    # Index 1: the revocation applies to its own record, so key 0 cannot be one of the two.
    assert _walk(v1, record(v2, 1, KEYS[0], KEYS[1])) == [
        "policy_old_root_threshold",
        "policy_new_root_threshold",
    ]
    assert _walk(v1, record(v2, 1, KEYS[1], KEYS[2])) == []


def test_chain_revocations_apply_backwards_to_role_keys() -> None:
    v1, _ = _two_of_three()
    v2 = v1.with_revocation(IDS[3], 6, "training key leaked", expires=LATER)
    chain = verify_policy_chain(
        v1, [record(v1, 0, *KEYS[:3]), record(v2, 10, KEYS[1], KEYS[2])], as_of=NOW
    )
    assert chain.ok
    # At index 7, v1 was in effect and did not know of the leak; the later v2 voids it anyway.
    assert chain.policy_at(7) == v1
    assert chain.revoked_at(IDS[3], 7)
    assert not chain.revoked_at(IDS[3], 5)
    assert chain.role_keys_at("training", 5) == {IDS[3]: KEYS[3].public_key}
    assert chain.role_keys_at("training", 7) == {}


# --- chain properties ----------------------------------------------------------------------------


@st.composite
def edit_chains(draw: st.DrawFn) -> list[PolicyRecord]:
    """A random, correctly cross-signed chain of edits, at increasing log indices."""
    policy = genesis()
    index = draw(st.integers(0, 3))
    records = [record(policy, index, KEYS[0])]
    spare = list(range(1, len(KEYS)))
    for _ in range(draw(st.integers(0, 4))):
        previous = policy
        action = draw(st.sampled_from(["add", "rotate", "threshold"]))
        if action == "add" and spare:
            new = ENTRIES[spare.pop(0)]
            policy = policy.with_key(
                new, draw(st.sampled_from([["root"], ["training"], []])), expires=LATER
            )
        elif action == "rotate" and spare:
            old = draw(st.sampled_from(policy.role("root").key_ids))
            policy = policy.rotated(old, ENTRIES[spare.pop(0)], expires=LATER)
        else:
            root = policy.role("root")
            policy = policy.with_threshold(
                "root", draw(st.integers(1, len(root.key_ids))), expires=LATER
            )
        index += draw(st.integers(1, 5))
        signers = {*previous.role("root").key_ids, *policy.role("root").key_ids}
        records.append(record(policy, index, *(KEYS[IDS.index(kid)] for kid in sorted(signers))))
    return records


@settings(max_examples=40, deadline=None)
@given(edit_chains())
def test_cross_signed_edit_chains_verify_and_policy_at_agrees(records: list[PolicyRecord]) -> None:
    chain = verify_policy_chain(KEYS[0].public_key, records, as_of=NOW)
    assert chain.ok, chain.findings
    assert chain.policies == tuple(records)
    for earlier, later in itertools.pairwise(records):
        assert chain.policy_at(later.log_index) == earlier.policy
        assert chain.policy_at(later.log_index + 1) == later.policy


@settings(max_examples=40, deadline=None)
@given(edit_chains(), st.data())
def test_a_tampered_envelope_stops_the_walk_there(
    records: list[PolicyRecord], data: st.DataObject
) -> None:
    position = data.draw(st.integers(0, len(records) - 1))
    target = records[position]
    payload = bytearray(target.envelope.payload)
    byte = data.draw(st.integers(0, len(payload) - 1))
    payload[byte] ^= data.draw(st.integers(1, 255))
    envelope = replace(target.envelope, payload=bytes(payload))
    tampered = [*records[:position], replace(target, envelope=envelope), *records[position + 1 :]]
    chain = verify_policy_chain(KEYS[0].public_key, tampered, as_of=NOW)
    assert not chain.ok
    assert {f.index for f in chain.findings} == {target.log_index}
    assert chain.policies == tuple(records[:position])
