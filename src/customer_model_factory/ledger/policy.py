"""The trust policy: a versioned, expiring, TUF-root-like list of keys, roles and revocations.

A policy is a canonical JSON blob recorded in the log under the record kind ``trust_policy``.
Every change (enrolment, rotation, threshold change, revocation) is a new version, hence a new
log entry that cannot be hidden. Verification starts from a pinned root (a policy or a root key)
and walks the versions forward with the TUF root-rotation rule (TUF specification 1.0, section
5.3 "Update the root role"): version N+1 must be signed by a threshold of version N's root keys
AND a threshold of its own, and must be exactly N+1.

This module is generic: it knows role names as strings; which roles must exist is decided by
the caller. The format, the canonical bytes and the walk are specified in docs/trust-policy.md.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import functools
import hashlib
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from .._fields import reject_unknown, req_int, req_obj, req_str, req_str_tuple
from .._frozen import frozen
from .._jsonfile import manifest_bytes
from .._strictjson import DECODER, ConstantError, DuplicateKeyError
from ..timestamps import parse_instant
from .dsse import Envelope, verify_envelope
from .errors import FormatError
from .keys import PUBLIC_KEY_SIZE, PublicKey, check_key_name, decode_base64
from .statement import PAYLOAD_TYPE, RecordStatement

__all__ = [
    "FINDING_CODES",
    "KEY_TYPE",
    "MAX_POLICY_BYTES",
    "MAX_SAFE_INT",
    "POLICY_KIND",
    "POLICY_SCHEMA",
    "ROOT_ROLE",
    "KeyEntry",
    "PolicyChain",
    "PolicyError",
    "PolicyFinding",
    "PolicyRecord",
    "Revocation",
    "Role",
    "TrustPolicy",
    "format_expires",
    "verify_policy_chain",
]

POLICY_KIND = "trust_policy"
POLICY_SCHEMA = "cmf-trust-policy/v1"
ROOT_ROLE = "root"
KEY_TYPE = "ed25519"
# TUF (section 5.3.3) bounds a root file to "tens of kilobytes"; a policy with hundreds of keys
# still fits in far less than this, and the bound stops an endless-data attack before parsing.
MAX_POLICY_BYTES = 1 << 20
# I-JSON (RFC 7493 section 2.2): integers beyond 2**53 - 1 are not portable between parsers.
MAX_SAFE_INT = 2**53 - 1
MAX_NAME_CHARS = 128
MAX_REASON_CHARS = 1024
_T = TypeVar("_T")

_KEY_ID = re.compile(r"[0-9a-f]{64}")
# Same alphabet as a leaf record's kind, so a role can be named after the stage kind it signs.
_ROLE_NAME = re.compile(r"[a-z0-9_.-]{1,64}")
# The one spelling of an instant that the canonical bytes allow (TUF's own "expires" format).
_CANONICAL_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_TOP_FIELDS = ("expires", "keys", "origin", "revoked", "roles", "schema", "version")
_KEY_FIELDS = ("name", "public_key", "type")
_ROLE_FIELDS = ("key_ids", "threshold")
_REVOCATION_FIELDS = ("from_index", "reason")


class PolicyError(FormatError, ValueError):
    """A trust policy is malformed, or an edit or lookup names something it cannot hold.

    A ``ValueError`` (for ``from_dict`` callers) and a ``FormatError`` (for ledger callers).
    """


# --- field checks ------------------------------------------------------------------------------


def _check_key_id(value: object, field: str) -> str:
    """Return ``value`` if it is a key id (64 lowercase hex characters), else raise."""
    if not isinstance(value, str) or _KEY_ID.fullmatch(value) is None:
        raise PolicyError(f"{field}: expected a key id (64 lowercase hex characters)")
    return value


def _check_int(value: object, field: str, minimum: int) -> int:
    """Return ``value`` if it is an int (not a bool) in ``minimum..MAX_SAFE_INT``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"{field}: expected an integer, got {type(value).__name__}")
    if not minimum <= value <= MAX_SAFE_INT:
        raise PolicyError(f"{field}: {value} is outside {minimum}..{MAX_SAFE_INT}")
    return value


def _check_note_name(value: object, field: str) -> str:
    """Return ``value`` if it is an NFC C2SP signed-note key name of at most 128 characters."""
    if not isinstance(value, str):
        raise PolicyError(f"{field}: expected a string, got {type(value).__name__}")
    try:
        check_key_name(value)
    except FormatError as exc:
        raise PolicyError(f"{field}: {exc}") from None
    if len(value) > MAX_NAME_CHARS:
        raise PolicyError(f"{field}: longer than {MAX_NAME_CHARS} characters")
    if not unicodedata.is_normalized("NFC", value):
        # Two spellings of one name would be two names that look identical to a reviewer.
        raise PolicyError(f"{field}: not in Unicode normalisation form NFC")
    return value


def _check_reason(value: object, field: str) -> str:
    """Return ``value`` if it is one printable NFC line of 1..1024 characters, else raise."""
    if not isinstance(value, str):
        raise PolicyError(f"{field}: expected a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_REASON_CHARS:
        raise PolicyError(f"{field}: expected 1..{MAX_REASON_CHARS} characters")
    if not value.isprintable() or not unicodedata.is_normalized("NFC", value):
        raise PolicyError(f"{field}: must be printable text in normalisation form NFC")
    return value


def _check_expires(value: object, field: str = "expires") -> datetime:
    """Parse ``value`` as the canonical instant ``YYYY-MM-DDTHH:MM:SSZ`` (RFC 3339 section 5.6)."""
    if not isinstance(value, str) or _CANONICAL_INSTANT.fullmatch(value) is None:
        raise PolicyError(f"{field}: expected an RFC 3339 instant spelled YYYY-MM-DDTHH:MM:SSZ")
    try:
        return parse_instant(value, field=field)
    except ValueError as exc:
        raise PolicyError(str(exc)) from None


def format_expires(moment: datetime) -> str:
    """Return the canonical ``expires`` spelling of an aware datetime, truncated to the second.

    Truncation moves the expiry earlier, never later.
    """
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise PolicyError("expires: expected an aware datetime (with a UTC offset)")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise PolicyError("expires: outside the years 0001..9999 in UTC") from None
    # Not strftime: glibc's %Y drops the zero padding of years before 1000.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"
    )


def _expires_text(expires: str | datetime) -> str:
    """Return an ``expires`` argument of an editing helper as canonical text (checked)."""
    text = format_expires(expires) if isinstance(expires, datetime) else expires
    _check_expires(text)
    return text


def _check_aware(moment: datetime, field: str) -> None:
    """Raise ValueError unless ``moment`` is an aware datetime."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{field}: expected an aware datetime (with a UTC offset)")


# --- the policy document -----------------------------------------------------------------------


@frozen
class KeyEntry:
    """One enrolled public key: its id, the key, and a human name (a signed-note key name)."""

    key_id: str
    public_key: PublicKey
    name: str

    def __post_init__(self) -> None:
        """Check that the id is the key's own id and the name is a valid key name."""
        _check_key_id(self.key_id, "key_id")
        if not isinstance(self.public_key, PublicKey):
            raise PolicyError(f"keys.{self.key_id}.public_key: expected a PublicKey")
        if self.public_key.key_id != self.key_id:
            raise PolicyError(f"keys.{self.key_id}: key id does not match the public key")
        _check_note_name(self.name, f"keys.{self.key_id}.name")

    @classmethod
    def of(cls, public_key: PublicKey, name: str) -> KeyEntry:
        """Return the entry of ``public_key`` named ``name`` (its id computed, not trusted)."""
        return cls(public_key.key_id, public_key, name)


@frozen
class Role:
    """A role: the key ids that hold it and how many distinct ones must sign (k of n)."""

    name: str
    key_ids: tuple[str, ...]
    threshold: int

    def __post_init__(self) -> None:
        """Check name, ids and ``1 <= threshold <= len(key_ids)``; store the ids sorted."""
        if not isinstance(self.name, str) or _ROLE_NAME.fullmatch(self.name) is None:
            raise PolicyError(f"roles.{self.name!r}: role names match [a-z0-9_.-]{{1,64}}")
        where = f"roles.{self.name}"
        if not isinstance(self.key_ids, tuple | list):
            raise PolicyError(f"{where}.key_ids: expected a sequence of key ids")
        ids = [_check_key_id(kid, f"{where}.key_ids") for kid in self.key_ids]
        if len(set(ids)) != len(ids):
            raise PolicyError(f"{where}.key_ids: a key id is listed twice")
        threshold = _check_int(self.threshold, f"{where}.threshold", 1)
        if threshold > len(ids):
            raise PolicyError(f"{where}.threshold: {threshold} exceeds the {len(ids)} key(s)")
        # A role is a set of keys: one order, so equal roles have equal bytes.
        object.__setattr__(self, "key_ids", tuple(sorted(ids)))


@frozen
class Revocation:
    """A revoked key: its signatures at log index ``from_index`` or later no longer count."""

    key_id: str
    from_index: int
    reason: str

    def __post_init__(self) -> None:
        """Check the id, a non-negative index and a one-line reason."""
        _check_key_id(self.key_id, "revoked")
        _check_int(self.from_index, f"revoked.{self.key_id}.from_index", 0)
        _check_reason(self.reason, f"revoked.{self.key_id}.reason")


@frozen
class TrustPolicy:
    """One version of the trust policy (see docs/trust-policy.md for the JSON format).

    Construction checks every invariant and stores keys, roles and revocations sorted (by key
    id, name, key id), so two equal policies always have equal canonical bytes.
    """

    version: int
    expires: str
    origin: str
    keys: tuple[KeyEntry, ...]
    roles: tuple[Role, ...]
    revoked: tuple[Revocation, ...]

    def __post_init__(self) -> None:
        """Check every invariant of a policy; normalise the order of its collections."""
        _check_int(self.version, "version", 1)
        _check_expires(self.expires)
        _check_note_name(self.origin, "origin")
        keys = _sorted_unique(self.keys, KeyEntry, lambda k: k.key_id, "keys")
        roles = _sorted_unique(self.roles, Role, lambda r: r.name, "roles")
        revoked = _sorted_unique(self.revoked, Revocation, lambda r: r.key_id, "revoked")
        names = sorted(entry.name for entry in keys)
        for left, right in itertools.pairwise(names):
            if left == right:
                raise PolicyError(f"keys: two keys share the name {left!r}")
        known = {entry.key_id for entry in keys}
        for role in roles:
            for kid in role.key_ids:
                if kid not in known:
                    raise PolicyError(f"roles.{role.name}.key_ids: {kid} is not in keys")
        if ROOT_ROLE not in {role.name for role in roles}:
            raise PolicyError(f"roles: the {ROOT_ROLE!r} role is required")
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "roles", roles)
        object.__setattr__(self, "revoked", revoked)

    # --- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object of this policy (public keys as base64 of the 32 raw bytes)."""
        return {
            "schema": POLICY_SCHEMA,
            "version": self.version,
            "expires": self.expires,
            "origin": self.origin,
            "keys": {
                entry.key_id: {
                    "type": KEY_TYPE,
                    "name": entry.name,
                    "public_key": _b64(entry.public_key.raw),
                }
                for entry in self.keys
            },
            "roles": {
                role.name: {"key_ids": list(role.key_ids), "threshold": role.threshold}
                for role in self.roles
            },
            "revoked": {
                rev.key_id: {"from_index": rev.from_index, "reason": rev.reason}
                for rev in self.revoked
            },
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> TrustPolicy:
        """Parse a policy object strictly: no unknown field, no coercion; errors name the field.

        Raises PolicyError (a ValueError).
        """
        if not isinstance(payload, Mapping):
            raise PolicyError("policy: expected a JSON object")
        try:
            reject_unknown(payload, _TOP_FIELDS)
            schema = req_str(payload, "schema")
            if schema != POLICY_SCHEMA:
                raise PolicyError(f"schema: expected {POLICY_SCHEMA!r}, got {schema!r}")
            keys = tuple(
                _key_from_dict(kid, body) for kid, body in _members(payload, "keys").items()
            )
            roles = tuple(
                _role_from_dict(name, body) for name, body in _members(payload, "roles").items()
            )
            revoked = tuple(
                _revocation_from_dict(kid, body)
                for kid, body in _members(payload, "revoked").items()
            )
            return cls(
                version=req_int(payload, "version"),
                expires=req_str(payload, "expires"),
                origin=req_str(payload, "origin"),
                keys=keys,
                roles=roles,
                revoked=revoked,
            )
        except PolicyError:
            raise
        except ValueError as exc:  # the _fields readers raise plain ValueError
            raise PolicyError(str(exc)) from None

    def to_bytes(self) -> bytes:
        """Return the canonical bytes: ``manifest_bytes(self.to_dict())``; sha256 = blob id."""
        return manifest_bytes(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> TrustPolicy:
        """Parse canonical policy bytes; refuse oversized, duplicate-key or non-canonical input."""
        if not isinstance(data, bytes):
            raise PolicyError(f"policy: expected bytes, got {type(data).__name__}")
        if len(data) > MAX_POLICY_BYTES:
            raise PolicyError(f"policy: {len(data)} bytes exceeds {MAX_POLICY_BYTES}")
        policy = cls.from_dict(_load_json_object(data))
        if policy.to_bytes() != data:
            # One policy, one byte string, one blob id: a re-spelled copy is a different blob.
            raise PolicyError("policy: bytes are not in canonical form (docs/trust-policy.md)")
        return policy

    @functools.cached_property
    def blob_id(self) -> str:
        """The policy's ledger blob id: lowercase hex SHA-256 of ``to_bytes()``.

        Computed once per (immutable) policy object: canonical encoding is the costly part of
        walking a policy chain.
        """
        return hashlib.sha256(self.to_bytes()).hexdigest()

    # --- queries -------------------------------------------------------------------------------

    @property
    def expires_at(self) -> datetime:
        """The expiry as an aware UTC datetime."""
        return _check_expires(self.expires)

    def role(self, name: str) -> Role:
        """Return the role called ``name``; raise PolicyError (a ValueError) naming it if absent."""
        for role in self.roles:
            if role.name == name:
                return role
        raise PolicyError(f"trust policy version {self.version} has no role {name!r}")

    def role_keys(self, name: str) -> dict[str, PublicKey]:
        """Return ``{key_id: public key}`` of the keys holding role ``name``."""
        by_id = {entry.key_id: entry.public_key for entry in self.keys}
        return {kid: by_id[kid] for kid in self.role(name).key_ids}

    def revoked_at(self, key_id: str, index: int) -> bool:
        """Return True if this policy revokes ``key_id`` for a log entry at ``index``."""
        return any(rev.key_id == key_id and index >= rev.from_index for rev in self.revoked)

    # --- editing helpers (each returns a NEW policy, version + 1) ------------------------------

    def with_key(
        self, entry: KeyEntry, roles: Sequence[str], *, expires: str | datetime
    ) -> TrustPolicy:
        """Enrol ``entry`` and add it to each role in ``roles``; a missing role becomes 1-of-1."""
        self._check_enrollable(entry)
        if isinstance(roles, str):
            raise PolicyError("roles: expected a sequence of role names, not one string")
        new_roles = {role.name: role for role in self.roles}
        for name in roles:
            old = new_roles.get(name)
            new_roles[name] = (
                Role(name, (entry.key_id,), 1)
                if old is None
                else Role(name, (*old.key_ids, entry.key_id), old.threshold)
            )
        return self._next(expires, keys=(*self.keys, entry), roles=tuple(new_roles.values()))

    def without_key(self, key_id: str, *, expires: str | datetime) -> TrustPolicy:
        """Remove ``key_id`` from the keys and every role; refused if a role falls below k."""
        self._entry(key_id)
        roles = tuple(
            Role(role.name, tuple(k for k in role.key_ids if k != key_id), role.threshold)
            for role in self.roles
        )
        keys = tuple(entry for entry in self.keys if entry.key_id != key_id)
        return self._next(expires, keys=keys, roles=roles)

    def with_threshold(self, role: str, threshold: int, *, expires: str | datetime) -> TrustPolicy:
        """Set the threshold of ``role``."""
        old = self.role(role)
        roles = tuple(
            r if r.name != role else Role(role, old.key_ids, threshold) for r in self.roles
        )
        return self._next(expires, roles=roles)

    def with_revocation(
        self, key_id: str, from_index: int, reason: str, *, expires: str | datetime
    ) -> TrustPolicy:
        """Revoke ``key_id`` from log index ``from_index`` on (or move an existing one earlier)."""
        new = Revocation(key_id, from_index, reason)
        for old in self.revoked:
            if old.key_id == key_id and old.from_index <= from_index:
                raise PolicyError(f"revoked.{key_id}: already revoked from index {old.from_index}")
        kept = tuple(rev for rev in self.revoked if rev.key_id != key_id)
        return self._next(expires, revoked=(*kept, new))

    def rotated(
        self, old_key_id: str, new_entry: KeyEntry, *, expires: str | datetime
    ) -> TrustPolicy:
        """Replace ``old_key_id`` by ``new_entry`` in the keys and in every role it holds."""
        self._entry(old_key_id)
        self._check_enrollable(new_entry)
        roles = tuple(
            Role(
                role.name,
                tuple(new_entry.key_id if k == old_key_id else k for k in role.key_ids),
                role.threshold,
            )
            for role in self.roles
        )
        keys = (*(e for e in self.keys if e.key_id != old_key_id), new_entry)
        return self._next(expires, keys=keys, roles=roles)

    def _check_enrollable(self, entry: KeyEntry) -> None:
        """Raise PolicyError if ``entry`` is already enrolled or is a revoked key."""
        if not isinstance(entry, KeyEntry):
            raise PolicyError(f"keys: expected a KeyEntry, got {type(entry).__name__}")
        if any(e.key_id == entry.key_id for e in self.keys):
            raise PolicyError(f"keys: {entry.key_id} is already enrolled")
        if any(rev.key_id == entry.key_id for rev in self.revoked):
            # A revoked key stays revoked: re-enrolling it would only look like trust.
            raise PolicyError(f"keys: {entry.key_id} is revoked and cannot be enrolled again")

    def _entry(self, key_id: str) -> KeyEntry:
        """Return the enrolled key ``key_id``; raise PolicyError naming it if absent."""
        for entry in self.keys:
            if entry.key_id == key_id:
                return entry
        raise PolicyError(f"keys: {key_id!r} is not enrolled in version {self.version}")

    def _next(
        self,
        expires: str | datetime,
        *,
        keys: tuple[KeyEntry, ...] | None = None,
        roles: tuple[Role, ...] | None = None,
        revoked: tuple[Revocation, ...] | None = None,
    ) -> TrustPolicy:
        """Return the next version with the given expiry and replaced collections."""
        return dataclasses.replace(
            self,
            version=self.version + 1,
            expires=_expires_text(expires),
            keys=self.keys if keys is None else keys,
            roles=self.roles if roles is None else roles,
            revoked=self.revoked if revoked is None else revoked,
        )


def _sorted_unique(
    items: Iterable[_T], kind: type[_T], key: Callable[[_T], str], field: str
) -> tuple[_T, ...]:
    """Return ``items`` sorted by ``key``; raise if one is not a ``kind`` or two share a key."""
    if not isinstance(items, tuple | list):
        raise PolicyError(f"{field}: expected a tuple of {kind.__name__}")
    for item in items:
        if not isinstance(item, kind):
            raise PolicyError(f"{field}: expected {kind.__name__}, got {type(item).__name__}")
    ordered = sorted(items, key=key)
    for left, right in itertools.pairwise(ordered):
        if key(left) == key(right):
            raise PolicyError(f"{field}: {key(left)} appears twice")
    return tuple(ordered)


def _b64(raw: bytes) -> str:
    """Return standard padded base64 (RFC 4648 section 4)."""
    return base64.b64encode(raw).decode("ascii")


def _members(payload: Mapping[str, Any], field: str) -> dict[str, Mapping[str, Any]]:
    """Return ``payload[field]`` as a mapping whose every value is a JSON object."""
    outer = req_obj(payload, field)
    return {name: req_obj(outer, name, f"{field}.") for name in outer}


def _key_from_dict(kid: str, body: Mapping[str, Any]) -> KeyEntry:
    """Parse one ``keys`` member; the key id must be the hash of the decoded key."""
    where = f"keys.{kid}."
    _check_key_id(kid, f"keys.{kid}")
    reject_unknown(body, _KEY_FIELDS, where)
    key_type = req_str(body, "type", where)
    if key_type != KEY_TYPE:
        raise PolicyError(f"{where}type: only {KEY_TYPE!r} is supported, got {key_type!r}")
    encoded = req_str(body, "public_key", where)
    raw = decode_base64(encoded, what=f"{where}public_key", error=PolicyError)
    if len(raw) != PUBLIC_KEY_SIZE:
        raise PolicyError(f"{where}public_key: expected {PUBLIC_KEY_SIZE} bytes, got {len(raw)}")
    public_key = PublicKey(raw)
    return KeyEntry(kid, public_key, req_str(body, "name", where))


def _role_from_dict(name: str, body: Mapping[str, Any]) -> Role:
    """Parse one ``roles`` member."""
    where = f"roles.{name}."
    reject_unknown(body, _ROLE_FIELDS, where)
    return Role(name, req_str_tuple(body, "key_ids", where), req_int(body, "threshold", where))


def _revocation_from_dict(kid: str, body: Mapping[str, Any]) -> Revocation:
    """Parse one ``revoked`` member."""
    where = f"revoked.{kid}."
    _check_key_id(kid, f"revoked.{kid}")
    reject_unknown(body, _REVOCATION_FIELDS, where)
    return Revocation(kid, req_int(body, "from_index", where), req_str(body, "reason", where))


def _load_json_object(data: bytes) -> Mapping[str, Any]:
    """Decode UTF-8 JSON strictly (no BOM sniffing, no duplicates) into a top-level object."""
    try:
        # Decode explicitly: json.loads(bytes) would also accept UTF-16 and UTF-32.
        text = data.decode("utf-8")
        value = DECODER.decode(text)
    except UnicodeDecodeError:
        raise PolicyError("policy: not UTF-8") from None
    except RecursionError:
        raise PolicyError("policy: JSON nested too deeply") from None
    except DuplicateKeyError as exc:  # RFC 7493 section 2.3
        raise PolicyError(f"policy: member {exc.key!r} appears twice in one object") from None
    except ConstantError as exc:
        raise PolicyError(f"policy: {exc}") from None
    except ValueError as exc:  # json.JSONDecodeError and int conversion limits
        raise PolicyError(f"policy: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise PolicyError("policy: expected a JSON object at the top level")
    return value


# --- the policy chain --------------------------------------------------------------------------

FINDING_CODES = (
    "policy_blob_mismatch",
    "policy_statement_mismatch",
    "policy_pin_mismatch",
    "policy_log_order",
    "policy_origin_mismatch",
    "policy_rollback",
    "policy_version_gap",
    "policy_revocation_dropped",
    "policy_old_root_threshold",
    "policy_new_root_threshold",
    "policy_expired",
)


@frozen
class PolicyRecord:
    """One policy version as found in the log: the policy, its blob id, envelope and log index."""

    policy: TrustPolicy
    blob_id: str
    envelope: Envelope
    log_index: int

    def __post_init__(self) -> None:
        """Check the field types (the contents are judged by ``verify_policy_chain``)."""
        if not isinstance(self.policy, TrustPolicy):
            raise TypeError("PolicyRecord.policy: expected a TrustPolicy")
        if not isinstance(self.blob_id, str):
            raise TypeError("PolicyRecord.blob_id: expected a str")
        if not isinstance(self.envelope, Envelope):
            raise TypeError("PolicyRecord.envelope: expected an Envelope")
        _check_int(self.log_index, "PolicyRecord.log_index", 0)


@frozen
class PolicyFinding:
    """A reason the policy chain is not fully trusted (data, never an exception)."""

    code: str
    message: str
    version: int | None = None
    index: int | None = None


@frozen
class PolicyChain:
    """The verified prefix of the policy records, and the findings that stopped or marred it."""

    policies: tuple[PolicyRecord, ...]
    findings: tuple[PolicyFinding, ...]

    def __post_init__(self) -> None:
        """Require the policies in strictly increasing log order (``policy_at`` bisects)."""
        indices = [record.log_index for record in self.policies]
        if any(later <= earlier for earlier, later in itertools.pairwise(indices)):
            raise ValueError("PolicyChain.policies: log indices must strictly increase")

    @property
    def ok(self) -> bool:
        """True when there is no finding."""
        return not self.findings

    @property
    def current(self) -> TrustPolicy:
        """The latest verified version; PolicyError if none verified."""
        if not self.policies:
            raise PolicyError("no trust policy version could be verified")
        return self.policies[-1].policy

    def policy_at(self, index: int) -> TrustPolicy:
        """Return the version in effect for a log entry at ``index``.

        That is the latest verified version recorded at a LOWER index: a policy record never
        governs itself. PolicyError if no verified version precedes ``index``.
        """
        position = bisect.bisect_left(self.policies, index, key=lambda record: record.log_index)
        if position == 0:
            raise PolicyError(f"no verified trust policy was recorded before log index {index}")
        return self.policies[position - 1].policy

    def revoked_at(self, key_id: str, index: int) -> bool:
        """Return True if any verified version revokes ``key_id`` for a log entry at ``index``.

        Revocations apply backwards in time: a compromise found later still voids signatures
        made from ``from_index`` on, although the version in effect then did not know it.
        """
        return any(record.policy.revoked_at(key_id, index) for record in self.policies)

    def role_keys_at(self, role: str, index: int) -> dict[str, PublicKey]:
        """Return the keys that count for ``role`` on a log entry at ``index``.

        The keys holding ``role`` in ``policy_at(index)``, minus every key revoked at ``index``
        by any verified version (``revoked_at``). The threshold is
        ``policy_at(index).role(role).threshold``.
        """
        keys = self.policy_at(index).role_keys(role)
        return {kid: key for kid, key in keys.items() if not self.revoked_at(kid, index)}


def verify_policy_chain(
    pinned: TrustPolicy | PublicKey, records: Sequence[PolicyRecord], *, as_of: datetime
) -> PolicyChain:
    """Walk the policy records forward from a pinned root (TUF 1.0 section 5.3, adapted).

    Pure: no I/O, no clock but ``as_of``. A pinned policy starts the walk at the first record
    of the same canonical bytes (earlier records are not judged: the verifier accepted that
    version, so entries logged before it have no policy in effect); a pinned key starts it at
    the first record whose root role holds the key, which the key must have signed and not
    revoked, with the same effect on earlier records (none: the first record). Each next
    record must be version N+1 with the same origin, keep every revocation, and be signed by a
    threshold of version N's root keys AND of its own (distinct, unrevoked keys). The walk
    stops at the first bad record, reporting all its findings; then the latest verified version
    must not be expired as of ``as_of``. docs/trust-policy.md section 4 lists the checks in the
    order their findings are reported.
    """
    _check_aware(as_of, "as_of")
    if not isinstance(pinned, TrustPolicy | PublicKey):
        raise TypeError("pinned: expected a TrustPolicy or a PublicKey")
    records = tuple(records)
    if not all(isinstance(record, PolicyRecord) for record in records):
        raise TypeError("records: expected a sequence of PolicyRecord")
    if isinstance(pinned, TrustPolicy):
        start = _pinned_position(pinned, records)
        if isinstance(start, PolicyFinding):
            return PolicyChain((), (start,))
        records = records[start:]
    elif not records:
        return PolicyChain((), (_no_record_for_key(pinned),))
    else:
        records = records[_key_position(pinned, records) :]
    findings = _first_findings(pinned, records)
    if findings:
        return PolicyChain((), tuple(findings))
    verified = [records[0]]
    for record in records[1:]:
        problems = _transition_findings(verified[-1], record)
        if problems:
            findings.extend(problems)
            break  # later records descend from an untrusted one: not trusted, not judged
        verified.append(record)
    latest = verified[-1]
    if latest.policy.expires_at <= as_of:  # TUF 5.3.10: must be later than the fixed "now"
        findings.append(
            PolicyFinding(
                "policy_expired",
                f"trust policy version {latest.policy.version} expired at "
                f"{latest.policy.expires} (verified as of {as_of.isoformat()})",
                latest.policy.version,
                latest.log_index,
            )
        )
    return PolicyChain(tuple(verified), tuple(findings))


def _no_record_for_key(pinned: PublicKey) -> PolicyFinding:
    """The finding for a pinned key when the log holds no policy record at all."""
    return PolicyFinding(
        "policy_pin_mismatch",
        f"the log holds no trust policy record signed by the pinned key {pinned.key_id}",
    )


def _key_position(pinned: PublicKey, records: Sequence[PolicyRecord]) -> int:
    """Return the position of the first record whose root role holds the pinned key, else 0.

    docs/trust-policy.md section 4, "Where the walk starts": a key obtained after a root
    rotation pins the version that made it root. That record must then pass check 3 (the key
    signed it and it does not revoke the key): a later record is never searched for instead.
    With none, 0: the first record's check 3 says the key is not root there.
    """
    for position, record in enumerate(records):
        if pinned.key_id in record.policy.role(ROOT_ROLE).key_ids:
            return position
    return 0


def _pinned_position(pinned: TrustPolicy, records: Sequence[PolicyRecord]) -> int | PolicyFinding:
    """Return the position of the first record holding exactly the pinned policy, or the finding.

    docs/trust-policy.md section 4, "Where the walk starts": same canonical bytes (compared by
    their SHA-256, the blob id), hence the same version. Without one: ``policy_rollback`` when
    the pin is newer than every record (the log is behind it), else ``policy_pin_mismatch``.
    """
    for position, record in enumerate(records):
        if record.policy.blob_id == pinned.blob_id:
            return position
    if not records:
        return PolicyFinding(
            "policy_rollback",
            f"the log holds no trust policy record; the pinned version {pinned.version} is newer",
            pinned.version,
        )
    newest = max(record.policy.version for record in records)
    if pinned.version > newest:
        return PolicyFinding(
            "policy_rollback",
            f"the pinned version {pinned.version} is newer than every recorded version "
            f"(newest {newest})",
            pinned.version,
        )
    for record in records:
        if record.policy.version == pinned.version:
            return _finding(
                "policy_pin_mismatch",
                f"is not the pinned policy (blob {pinned.blob_id}); this is blob "
                f"{record.policy.blob_id}",
                record,
            )
    return PolicyFinding(
        "policy_pin_mismatch",
        f"the log holds no trust policy version {pinned.version} (the pinned one, blob "
        f"{pinned.blob_id}); it holds versions "
        f"{', '.join(str(v) for v in sorted({r.policy.version for r in records}))}",
        pinned.version,
    )


def _first_findings(
    pinned: TrustPolicy | PublicKey, records: Sequence[PolicyRecord]
) -> list[PolicyFinding]:
    """Check the first record: bound to its blob and statement, the pinned root, self-signed.

    For a pinned policy the first record already is the pinned one (``_pinned_position``);
    for a pinned key, the first whose root role holds the key, if any (``_key_position``).
    """
    first = records[0]
    found = _record_findings(first)
    if isinstance(pinned, PublicKey):
        pin_problem = _key_pin_problem(pinned, first)
        if pin_problem is not None:
            found.append(_finding(pin_problem[0], pin_problem[1], first))
    found.extend(
        _threshold_findings("policy_new_root_threshold", first.policy, first, (first.policy,))
    )
    return found


def _key_pin_problem(pinned: PublicKey, first: PolicyRecord) -> tuple[str, str] | None:
    """Return (code, message) unless the pinned key is an unrevoked root key that signed."""
    kid = pinned.key_id
    if kid not in first.policy.role(ROOT_ROLE).key_ids:
        return "policy_pin_mismatch", f"the pinned key {kid} is not a root key of this version"
    if first.policy.revoked_at(kid, first.log_index):
        return "policy_pin_mismatch", f"the pinned key {kid} is revoked by this version"
    if kid not in _signers(first.envelope, {kid: pinned}):
        return "policy_pin_mismatch", f"the pinned key {kid} did not sign this version"
    return None


def _transition_findings(previous: PolicyRecord, record: PolicyRecord) -> list[PolicyFinding]:
    """Check that ``record`` is a valid successor of the verified ``previous`` (TUF 5.3.4-5)."""
    old, new = previous.policy, record.policy
    found = _record_findings(record)
    if record.log_index <= previous.log_index:
        found.append(
            _finding(
                "policy_log_order",
                f"recorded at log index {record.log_index}, not after version {old.version} "
                f"(index {previous.log_index})",
                record,
            )
        )
    if new.origin != old.origin:
        found.append(
            _finding(
                "policy_origin_mismatch",
                f"origin {new.origin!r} differs from version {old.version}'s {old.origin!r}",
                record,
            )
        )
    if new.version <= old.version:
        found.append(
            _finding("policy_rollback", f"follows version {old.version}: not newer", record)
        )
    elif new.version != old.version + 1:
        found.append(
            _finding(
                "policy_version_gap",
                f"follows version {old.version}: expected version {old.version + 1}",
                record,
            )
        )
    dropped = _dropped_revocations(old, new)
    if dropped:
        found.append(
            _finding(
                "policy_revocation_dropped",
                f"drops or postpones the revocation of {', '.join(dropped)} "
                f"made by version {old.version}",
                record,
            )
        )
    # A key revoked by either version for this index does not count: a new version cannot
    # lean on the very key it revokes, and an old revocation cannot be signed away.
    revoking = (old, new)
    found.extend(_threshold_findings("policy_old_root_threshold", old, record, revoking))
    found.extend(_threshold_findings("policy_new_root_threshold", new, record, revoking))
    return found


def _dropped_revocations(old: TrustPolicy, new: TrustPolicy) -> list[str]:
    """Return the key ids ``old`` revokes that ``new`` no longer revokes from as early an index."""
    kept = {rev.key_id: rev.from_index for rev in new.revoked}
    return [
        rev.key_id
        for rev in old.revoked
        if rev.key_id not in kept or kept[rev.key_id] > rev.from_index
    ]


def _record_findings(record: PolicyRecord) -> list[PolicyFinding]:
    """Check that a record's blob id and signed statement both name its policy bytes."""
    found: list[PolicyFinding] = []
    actual = record.policy.blob_id
    if record.blob_id != actual:
        found.append(
            _finding(
                "policy_blob_mismatch",
                f"blob id {record.blob_id!r} is not the SHA-256 of the policy bytes ({actual})",
                record,
            )
        )
    problem = _statement_problem(record)
    if problem is not None:
        found.append(_finding("policy_statement_mismatch", problem, record))
    return found


def _statement_problem(record: PolicyRecord) -> str | None:
    """Return why the envelope's statement does not describe this policy blob, or None."""
    envelope = record.envelope
    if envelope.payload_type != PAYLOAD_TYPE:
        return f"envelope payload type {envelope.payload_type!r} is not {PAYLOAD_TYPE!r}"
    try:
        statement = RecordStatement.from_bytes(envelope.payload)
    except (FormatError, ValueError) as exc:
        return f"envelope payload is not a ledger record statement ({exc})"
    if statement.kind != POLICY_KIND:
        return f"statement kind {statement.kind!r} is not {POLICY_KIND!r}"
    if statement.sha256 != record.policy.blob_id:
        return f"statement subject {statement.sha256} is not the policy blob"
    if statement.origin != record.policy.origin:
        return f"statement origin {statement.origin!r} is not the policy's {record.policy.origin!r}"
    return None


def _threshold_findings(
    code: str, signer: TrustPolicy, record: PolicyRecord, revoking: Sequence[TrustPolicy]
) -> list[PolicyFinding]:
    """Check that a threshold of ``signer``'s root keys, none revoked, signed ``record``."""
    role = signer.role(ROOT_ROLE)
    keys = {
        kid: key
        for kid, key in signer.role_keys(ROOT_ROLE).items()
        if not any(policy.revoked_at(kid, record.log_index) for policy in revoking)
    }
    count = len(_signers(record.envelope, keys))
    if count >= role.threshold:
        return []
    return [
        _finding(
            code,
            f"signed by {count} of the {role.threshold} required distinct, unrevoked root "
            f"key(s) of version {signer.version}",
            record,
        )
    ]


def _signers(envelope: Envelope, keys: Mapping[str, PublicKey]) -> frozenset[str]:
    """Return the distinct ids among ``keys`` whose signature over the envelope's PAE verifies."""
    if not keys:
        return frozenset()
    try:
        return verify_envelope(envelope, keys, payload_type=PAYLOAD_TYPE)
    except FormatError:
        # A wrong payload type (already reported as a statement mismatch) signs nothing here.
        return frozenset()


def _finding(code: str, detail: str, record: PolicyRecord) -> PolicyFinding:
    """Return a finding about ``record``, its message prefixed with the version and index."""
    message = f"trust policy version {record.policy.version} at log index {record.log_index}: "
    return PolicyFinding(code, message + detail, record.policy.version, record.log_index)
