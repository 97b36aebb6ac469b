"""The ledger's strict parsers as they were before they were made fast, kept as test oracles.

Copied from commit b9252dc (``ledger/keys.py`` ``decode_base64``, ``ledger/statement.py``
``RecordStatement.from_bytes``, ``ledger/dsse.py`` ``Envelope.from_json``) with the checks,
their order and their messages unchanged: regexes for base64, ``strptime`` for the time, and
``json.dumps`` re-encoding for canonical form. The property tests feed mutated inputs to both
implementations and require the same verdict, the same value and the same error message.

Each oracle returns plain data (never our classes, whose constructors are under test) or raises
FormatError exactly as the old code did. The mutation helpers at the end turn valid documents
into near misses for hypothesis.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from customer_model_factory.ledger.errors import FormatError, KeyFormatError
from customer_model_factory.ledger.keys import check_key_name

_STD_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_URL_B64 = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?")
_MAX_ECHO = 80

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://customer-model-factory.dev/ledger-record/v1"
_KIND = re.compile(r"[a-z0-9_.-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

StatementFields = tuple[str, str, tuple[tuple[str, str], ...], str, str, str]
EnvelopeFields = tuple[bytes, str, tuple[tuple[str, bytes], ...]]


# --- keys.decode_base64 --------------------------------------------------------------------------


def _echo(value: str) -> str:
    return repr(value if len(value) <= _MAX_ECHO else value[:_MAX_ECHO] + "...")


def decode_base64(
    text: str, *, what: str, urlsafe_ok: bool = False, error: type[FormatError] = KeyFormatError
) -> bytes:
    """The regex-first canonical base64 decoder."""
    if not isinstance(text, str):
        raise error(f"{what}: expected base64 text, got {type(text).__name__}")
    if _STD_B64.fullmatch(text):
        decoded = base64.b64decode(text, validate=True)
        canonical = base64.b64encode(decoded).decode("ascii")
    elif urlsafe_ok and _URL_B64.fullmatch(text):
        decoded = base64.urlsafe_b64decode(text)
        canonical = base64.urlsafe_b64encode(decoded).decode("ascii")
    else:
        raise error(f"{what}: {_echo(text)} is not padded base64")
    if canonical != text:
        raise error(f"{what}: {_echo(text)} is not canonical base64 (non-zero pad bits)")
    return decoded


# --- statement.RecordStatement.from_bytes --------------------------------------------------------


def statement_from_bytes(data: bytes) -> StatementFields:
    """(kind, sha256, ((parent kind, parent sha256), ...), origin, time, tool_version)."""
    document = _load(data, "statement", "an object", parse_constant=None)
    _exact_fields(document, ("_type", "predicate", "predicateType", "subject"), "statement")
    if document["_type"] != STATEMENT_TYPE:
        raise FormatError(f"statement._type: expected {STATEMENT_TYPE!r}")
    if document["predicateType"] != PREDICATE_TYPE:
        raise FormatError(f"statement.predicateType: expected {PREDICATE_TYPE!r}")
    name, sha256 = _subject(document["subject"])
    predicate = _object(document["predicate"], "statement.predicate")
    _exact_fields(
        predicate, ("kind", "origin", "parents", "time", "tool_version"), "statement.predicate"
    )
    kind = _string(predicate["kind"], "statement.predicate.kind")
    if name != kind:
        raise FormatError(f"statement: subject name {name!r} is not the kind {kind!r}")
    parents = _parents(predicate["parents"])
    origin = _string(predicate["origin"], "statement.predicate.origin")
    time = _string(predicate["time"], "statement.predicate.time")
    tool_version = _string(predicate["tool_version"], "statement.predicate.tool_version")
    # RecordStatement.__post_init__
    _check_kind(kind, "kind")
    _check_sha256(sha256, "sha256")
    _check_parents(parents, sha256)
    check_key_name(origin, error=FormatError)
    _check_time(time)
    _check_tool_version(tool_version)
    canonical = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": kind, "digest": {"sha256": sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "kind": kind,
            "parents": [{"kind": k, "sha256": s} for k, s in parents],
            "origin": origin,
            "time": time,
            "tool_version": tool_version,
        },
    }
    encoded = json.dumps(
        canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
    if encoded != data:
        raise FormatError("statement: bytes are not in canonical form")
    return kind, sha256, parents, origin, time, tool_version


def _load(data: bytes, what: str, an_object: str, parse_constant: Any) -> dict[str, Any]:
    if not isinstance(data, bytes):
        raise FormatError(f"{what}: expected bytes, got {type(data).__name__}")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise FormatError(f"{what}: duplicate field {key!r}")
            result[key] = value
        return result

    try:
        text = data.decode("utf-8")
        if parse_constant is None:
            document = json.loads(text, object_pairs_hook=no_duplicates)
        else:
            document = json.loads(
                text, object_pairs_hook=no_duplicates, parse_constant=parse_constant
            )
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what}: not valid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"{what}: not JSON ({exc.msg} at offset {exc.pos})") from None
    if not isinstance(document, dict):
        raise FormatError(f"{what}: expected {an_object}")
    return document


def _subject(value: Any) -> tuple[str, str]:
    if not isinstance(value, list) or len(value) != 1:
        raise FormatError("statement.subject: expected a list of exactly one subject")
    subject = _object(value[0], "statement.subject[0]")
    _exact_fields(subject, ("digest", "name"), "statement.subject[0]")
    digest = _object(subject["digest"], "statement.subject[0].digest")
    _exact_fields(digest, ("sha256",), "statement.subject[0].digest")
    name = _string(subject["name"], "statement.subject[0].name")
    return name, _string(digest["sha256"], "statement.subject[0].digest.sha256")


def _parents(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise FormatError("statement.predicate.parents: expected a list")
    parents = []
    for index, item in enumerate(value):
        where = f"statement.predicate.parents[{index}]"
        parent = _object(item, where)
        _exact_fields(parent, ("kind", "sha256"), where)
        kind = _string(parent["kind"], f"{where}.kind")
        sha256 = _string(parent["sha256"], f"{where}.sha256")
        _check_kind(kind, "parent kind")  # Parent.__post_init__
        _check_sha256(sha256, "parent sha256")
        parents.append((kind, sha256))
    return tuple(parents)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"{where}: expected an object")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise FormatError(f"{where}: expected a string")
    return value


def _exact_fields(obj: dict[str, Any], fields: tuple[str, ...], where: str) -> None:
    missing = sorted(set(fields) - set(obj))
    if missing:
        raise FormatError(f"{where}: missing field {missing[0]!r}")
    unknown = sorted(set(obj) - set(fields))
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r}")


def _check_kind(kind: str, what: str) -> None:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise FormatError(f"{what}: {kind!r} does not match [a-z0-9_.-]{{1,64}}")


def _check_sha256(digest: str, what: str) -> None:
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise FormatError(f"{what}: {digest!r} is not 64 lowercase hex digits")


def _check_parents(parents: tuple[tuple[str, str], ...], subject: str) -> None:
    seen: set[str] = set()
    for _, sha256 in parents:
        if sha256 == subject:
            raise FormatError(f"parents: {sha256} is the statement's own subject")
        if sha256 in seen:
            raise FormatError(f"parents: blob {sha256} is listed twice")
        seen.add(sha256)


def check_time(value: str) -> None:
    """The strptime-based time check."""
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise FormatError(f"time: {value!r} is not YYYY-MM-DDTHH:MM:SSZ")
    try:
        datetime.strptime(value, _TIME_FORMAT)
    except ValueError:
        raise FormatError(f"time: {value!r} is not a valid date and time") from None


_check_time = check_time


def _check_tool_version(value: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise FormatError("tool_version: expected 1 to 128 characters")
    if _CONTROL.search(value):
        raise FormatError(f"tool_version: {value!r} contains a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError("tool_version: not encodable as UTF-8") from None


# --- dsse.Envelope.from_json ---------------------------------------------------------------------


def envelope_from_json(data: bytes) -> EnvelopeFields:
    """(payload, payload type, ((keyid, sig), ...))."""

    def no_constants(name: str) -> Any:
        raise FormatError(f"envelope: {name} is not JSON")

    document = _load(data, "envelope", "a JSON object", parse_constant=no_constants)
    fields = frozenset({"payload", "payloadType", "signatures"})
    _check_fields(document, fields, fields, "envelope")
    payload = _b64_field(document, "payload", "envelope")
    payload_type = _str_field(document, "payloadType", "envelope")
    raw_signatures = document["signatures"]
    if not isinstance(raw_signatures, list):
        raise FormatError("envelope.signatures: expected a list")
    if len(raw_signatures) > 100:
        raise FormatError(f"envelope: {len(raw_signatures)} signatures, at most 100 allowed")
    signatures = []
    for index, item in enumerate(raw_signatures):
        where = f"envelope.signatures[{index}]"
        if not isinstance(item, dict):
            raise FormatError(f"{where}: expected an object")
        _check_fields(item, frozenset({"keyid", "sig"}), frozenset({"sig"}), where)
        keyid = _str_field(item, "keyid", where) if "keyid" in item else ""
        sig = _b64_field(item, "sig", where)
        _utf8(keyid, "signature keyid")  # Signature.__post_init__
        signatures.append((keyid, sig))
    _utf8(payload_type, "payload type")  # Envelope.__post_init__ (via pae)
    return payload, payload_type, tuple(signatures)


def _check_fields(
    obj: dict[str, Any], allowed: frozenset[str], required: frozenset[str], where: str
) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r}")
    missing = sorted(required - set(obj))
    if missing:
        raise FormatError(f"{where}: missing field {missing[0]!r}")


def _str_field(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise FormatError(f"{where}.{name}: expected a string")
    return value


def _b64_field(obj: dict[str, Any], name: str, where: str) -> bytes:
    return decode_base64(
        _str_field(obj, name, where), what=f"{where}.{name}", urlsafe_ok=True, error=FormatError
    )


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError(f"{what}: not encodable as UTF-8") from None


# --- mutations -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=4,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (the root excluded)."""
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    found: list[tuple[Any, ...]] = []
    for key, child in children:
        found.append((*path, key))
        found.extend(_paths(child, (*path, key)))
    return found


def mutate_document(draw: st.DrawFn, document: Any, names: list[str], values: Any) -> None:
    """Replace, delete or add one value somewhere in ``document`` (in place)."""
    path = draw(st.sampled_from(_paths(document)))
    container = document
    for key in path[:-1]:
        container = container[key]
    key = path[-1]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        container[key] = draw(values)
    elif action == "delete":
        del container[key]
    elif isinstance(container, dict):
        container[draw(st.sampled_from(names))] = draw(values)
    else:
        container.insert(key, draw(values))


def mutate_bytes(draw: st.DrawFn, data: bytes, names: list[str]) -> bytes:
    """Change one byte, drop one, insert one, or insert a (likely duplicate) member."""
    position = draw(st.sampled_from(range(len(data) + 1)))
    action = draw(st.sampled_from(["replace", "delete", "insert", "member"]))
    if action == "member":
        opening = [at + 1 for at, byte in enumerate(data) if byte == ord("{")]
        at = draw(st.sampled_from(opening))
        member = json.dumps({draw(st.sampled_from(names)): draw(json_values)})[1:-1] + ","
        return data[:at] + member.encode() + data[at:]
    byte = bytes([draw(st.integers(0, 255))])
    if action == "insert" or position == len(data):
        return data[:position] + byte + data[position:]
    if action == "delete":
        return data[:position] + data[position + 1 :]
    return data[:position] + byte + data[position + 1 :]


def maybe_mutate_bytes(draw: st.DrawFn, data: bytes, names: list[str]) -> bytes:
    """One time in four, ``mutate_bytes`` on top of the JSON-level mutations."""
    if draw(st.sampled_from(["json only", "json only", "json only", "and bytes"])) == "and bytes":
        return mutate_bytes(draw, data, names)
    return data


def outcome(parse: Callable[[], object]) -> tuple[str, object]:
    """("ok", value) or ("error", (exception type, message)): what a caller can observe."""
    try:
        return "ok", parse()
    except FormatError as exc:
        return "error", (type(exc), str(exc))
