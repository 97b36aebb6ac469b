"""The in-toto Statement v1 a ledger record signs (github.com/in-toto/attestation spec/v1).

One subject (the recorded blob: name = its kind, digest = its SHA-256) and our predicate::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": KIND, "digest": {"sha256": HEX}}],
     "predicateType": "https://customer-model-factory.dev/ledger-record/v1",
     "predicate": {"kind": KIND, "parents": [{"kind": ..., "sha256": ...}, ...],
                   "origin": ORIGIN, "time": "YYYY-MM-DDTHH:MM:SSZ", "tool_version": ...}}

The canonical bytes are ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` in UTF-8, and ``from_bytes`` accepts only those exact bytes, so a statement
has exactly one encoding and its blob id is a function of its content.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from .._frozen import frozen
from .._strictjson import DuplicateKeyError, object_without_duplicates
from .errors import FormatError
from .keys import check_key_name

__all__ = [
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Parent",
    "RecordStatement",
    "format_time",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://customer-model-factory.dev/ledger-record/v1"

MAX_TOOL_VERSION = 128

_KIND = re.compile(r"[a-z0-9_.-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Fixed width, one group per field: YYYY-MM-DDTHH:MM:SSZ.
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_TOP_FIELDS = frozenset({"_type", "predicate", "predicateType", "subject"})
_SUBJECT_FIELDS = frozenset({"digest", "name"})
_DIGEST_FIELDS = frozenset({"sha256"})
_PREDICATE_FIELDS = frozenset({"kind", "origin", "parents", "time", "tool_version"})
_PARENT_FIELDS = frozenset({"kind", "sha256"})

# JSON string literals of the constants, for to_bytes.
_STATEMENT_TYPE_JSON = encode_basestring(STATEMENT_TYPE)
_PREDICATE_TYPE_JSON = encode_basestring(PREDICATE_TYPE)


def format_time(moment: datetime) -> str:
    """Return the statement time spelling of an aware datetime: UTC ``YYYY-MM-DDTHH:MM:SSZ``.

    Sub-second digits are dropped, so one instant has one spelling.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("statement time: expected a timezone-aware datetime")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("statement time: outside the years 0001..9999 in UTC") from None
    # Not strftime: glibc's %Y does not zero-pad years before 1000.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"
    )


@frozen
class Parent:
    """A parent blob of a record: its kind and its SHA-256 (the blob id)."""

    kind: str
    sha256: str

    def __post_init__(self) -> None:
        """Check the kind pattern and the 64-hex digest."""
        _check_kind(self.kind, "parent kind")
        _check_sha256(self.sha256, "parent sha256")


@frozen
class RecordStatement:
    """What a ledger record asserts: blob ``sha256`` of ``kind`` was made from ``parents``."""

    kind: str
    sha256: str
    parents: tuple[Parent, ...]
    origin: str
    time: str
    tool_version: str

    def __post_init__(self) -> None:
        """Check every field; parents are distinct blobs, none of them the subject."""
        _check_kind(self.kind, "kind")
        _check_sha256(self.sha256, "sha256")
        _check_parents(self.parents, self.sha256)
        _check_origin(self.origin)
        _check_time(self.time)
        _check_tool_version(self.tool_version)

    def to_dict(self) -> dict[str, Any]:
        """Return the in-toto Statement v1 as plain JSON data."""
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.kind, "digest": {"sha256": self.sha256}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "kind": self.kind,
                "parents": [{"kind": p.kind, "sha256": p.sha256} for p in self.parents],
                "origin": self.origin,
                "time": self.time,
                "tool_version": self.tool_version,
            },
        }

    def to_bytes(self) -> bytes:
        """Return the canonical bytes (sorted keys, no whitespace, UTF-8, no ASCII escaping).

        Equal to ``json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
        ensure_ascii=False).encode()`` (test_statement checks it), spelled out in sorted key
        order with each string encoded by the function that json.dumps uses for it: ten times
        faster, and fsck encodes every statement of the log.
        """
        text = encode_basestring
        kind = text(self.kind)
        parents = ",".join(
            f'{{"kind":{text(p.kind)},"sha256":{text(p.sha256)}}}' for p in self.parents
        )
        parts = (
            '{"_type":', _STATEMENT_TYPE_JSON,
            ',"predicate":{"kind":', kind,
            ',"origin":', text(self.origin),
            ',"parents":[', parents,
            '],"time":', text(self.time),
            ',"tool_version":', text(self.tool_version),
            '},"predicateType":', _PREDICATE_TYPE_JSON,
            ',"subject":[{"digest":{"sha256":', text(self.sha256),
            '},"name":', kind,
            "}]}",
        )  # fmt: skip
        return "".join(parts).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> RecordStatement:
        """Parse canonical statement bytes; raise FormatError on any deviation.

        Exact fields and types, one subject whose name equals the predicate kind, the expected
        ``_type`` and ``predicateType``, and bytes equal to ``to_bytes()`` of the result.
        """
        document = _load(data)
        _exact_fields(document, _TOP_FIELDS, "statement")
        if document["_type"] != STATEMENT_TYPE:
            raise FormatError(f"statement._type: expected {STATEMENT_TYPE!r}")
        if document["predicateType"] != PREDICATE_TYPE:
            raise FormatError(f"statement.predicateType: expected {PREDICATE_TYPE!r}")
        name, sha256 = _subject(document["subject"])
        predicate = _object(document["predicate"], "statement.predicate")
        _exact_fields(predicate, _PREDICATE_FIELDS, "statement.predicate")
        kind = _string(predicate["kind"], "statement.predicate.kind")
        if name != kind:
            raise FormatError(f"statement: subject name {name!r} is not the kind {kind!r}")
        statement = cls(
            kind=kind,
            sha256=sha256,
            parents=_parents(predicate["parents"]),
            origin=_string(predicate["origin"], "statement.predicate.origin"),
            time=_string(predicate["time"], "statement.predicate.time"),
            tool_version=_string(predicate["tool_version"], "statement.predicate.tool_version"),
        )
        if statement.to_bytes() != data:
            raise FormatError("statement: bytes are not in canonical form")
        return statement


def _load(data: bytes) -> dict[str, Any]:
    """Decode UTF-8 JSON holding one object, refusing duplicate keys."""
    if not isinstance(data, bytes):
        raise FormatError(f"statement: expected bytes, got {type(data).__name__}")
    try:
        document = _DECODER.decode(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FormatError(f"statement: not valid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"statement: not JSON ({exc.msg} at offset {exc.pos})") from None
    except DuplicateKeyError as exc:
        raise FormatError(f"statement: duplicate field {exc.key!r}") from None
    except RecursionError:  # json's answer to hostile nesting
        raise FormatError("statement: JSON nested too deeply") from None
    return _object(document, "statement")


# Duplicate keys refused, as everywhere; NaN and Infinity are left to the field checks, which
# refuse every non-string where a statement holds one.
_DECODER = json.JSONDecoder(object_pairs_hook=object_without_duplicates)


def _subject(value: Any) -> tuple[str, str]:
    """Return (name, sha256) of the one subject."""
    if not isinstance(value, list) or len(value) != 1:
        raise FormatError("statement.subject: expected a list of exactly one subject")
    subject = _object(value[0], "statement.subject[0]")
    _exact_fields(subject, _SUBJECT_FIELDS, "statement.subject[0]")
    digest = _object(subject["digest"], "statement.subject[0].digest")
    _exact_fields(digest, _DIGEST_FIELDS, "statement.subject[0].digest")
    name = _string(subject["name"], "statement.subject[0].name")
    return name, _string(digest["sha256"], "statement.subject[0].digest.sha256")


def _parents(value: Any) -> tuple[Parent, ...]:
    """Return the parents list as Parent values, in order."""
    if not isinstance(value, list):
        raise FormatError("statement.predicate.parents: expected a list")
    parents = []
    for index, item in enumerate(value):
        where = f"statement.predicate.parents[{index}]"
        parent = _object(item, where)
        _exact_fields(parent, _PARENT_FIELDS, where)
        kind = _string(parent["kind"], f"{where}.kind")
        parents.append(Parent(kind, _string(parent["sha256"], f"{where}.sha256")))
    return tuple(parents)


def _object(value: Any, where: str) -> dict[str, Any]:
    """Return ``value`` if it is a JSON object."""
    if not isinstance(value, dict):
        raise FormatError(f"{where}: expected an object")
    return value


def _string(value: Any, where: str) -> str:
    """Return ``value`` if it is a JSON string."""
    if not isinstance(value, str):
        raise FormatError(f"{where}: expected a string")
    return value


def _exact_fields(obj: dict[str, Any], fields: frozenset[str], where: str) -> None:
    """Refuse missing and unknown fields (the first missing one in sorted order is named)."""
    if obj.keys() == fields:
        return
    missing = sorted(fields - obj.keys())
    if missing:
        raise FormatError(f"{where}: missing field {missing[0]!r}")
    unknown = sorted(obj.keys() - fields)
    raise FormatError(f"{where}: unknown field {unknown[0]!r}")


def _check_kind(kind: str, what: str) -> None:
    """Raise FormatError unless ``kind`` matches ``[a-z0-9_.-]{1,64}``."""
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise FormatError(f"{what}: {kind!r} does not match [a-z0-9_.-]{{1,64}}")


def _check_sha256(digest: str, what: str) -> None:
    """Raise FormatError unless ``digest`` is 64 lowercase hex digits."""
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise FormatError(f"{what}: {digest!r} is not 64 lowercase hex digits")


def _check_parents(parents: tuple[Parent, ...], subject: str) -> None:
    """Raise FormatError unless parents are distinct blobs other than the subject."""
    if not isinstance(parents, tuple) or not all(isinstance(p, Parent) for p in parents):
        raise FormatError("parents: expected a tuple of Parent")
    seen: set[str] = set()
    for parent in parents:
        if parent.sha256 == subject:
            raise FormatError(f"parents: {parent.sha256} is the statement's own subject")
        if parent.sha256 in seen:
            raise FormatError(f"parents: blob {parent.sha256} is listed twice")
        seen.add(parent.sha256)


def _check_origin(origin: str) -> None:
    """Raise FormatError unless ``origin`` is a valid signed-note key name."""
    if type(origin) is str:
        _check_origin_text(origin)
    else:  # never cache by a subclass's own notion of equality
        check_key_name(origin, error=FormatError)


@functools.lru_cache(maxsize=64)
def _check_origin_text(origin: str) -> None:
    """check_key_name, remembered: a ledger's statements all carry the same few origins."""
    check_key_name(origin, error=FormatError)  # a raise is not cached


def _check_time(value: str) -> None:
    """Raise FormatError unless ``value`` is a real UTC instant spelled YYYY-MM-DDTHH:MM:SSZ.

    The fields are fixed-width ASCII digits; ``datetime`` then refuses what is not a real date
    and time of the years 0001..9999 (month 13, February 30, hour 24, second 60, ...).
    """
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise FormatError(f"time: {value!r} is not YYYY-MM-DDTHH:MM:SSZ")
    year, month, day, hour, minute, second = map(int, match.groups())
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise FormatError(f"time: {value!r} is not a valid date and time") from None


def _check_tool_version(value: str) -> None:
    """Raise FormatError unless ``value`` is 1..128 characters without control characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TOOL_VERSION:
        raise FormatError(f"tool_version: expected 1 to {MAX_TOOL_VERSION} characters")
    if _CONTROL.search(value):
        raise FormatError(f"tool_version: {value!r} contains a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError("tool_version: not encodable as UTF-8") from None
