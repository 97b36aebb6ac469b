"""DSSE envelopes (github.com/secure-systems-lab/dsse, protocol v1.0.0) with Ed25519 signatures.

Signatures cover ``PAE(UTF8(payloadType), payload)``, never the JSON, so ``openssl pkeyutl
-verify -rawin`` over the PAE bytes checks them. The JSON envelope we write is
``{"payload":b64,"payloadType":str,"signatures":[{"keyid":str,"sig":b64}]}`` with sorted keys,
no whitespace, standard base64 and UTF-8; we read standard or URL-safe base64 and any JSON
spacing, but no unknown or duplicate fields.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from .._frozen import frozen
from .._strictjson import DECODER, ConstantError, DuplicateKeyError
from .errors import FormatError
from .keys import PrivateKey, PublicKey, decode_base64

__all__ = ["MAX_SIGNATURES", "Envelope", "Signature", "pae", "verify_envelope"]

MAX_SIGNATURES = 100  # bounds the verification work one envelope can demand

_ENVELOPE_FIELDS = frozenset({"payload", "payloadType", "signatures"})
_SIGNATURE_FIELDS = frozenset({"keyid", "sig"})
_SIG_ONLY = frozenset({"sig"})


def pae(payload_type: str, payload: bytes) -> bytes:
    """Return DSSE ``PAE(UTF8(payload_type), payload)`` (protocol.md "Signature Definition").

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, LEN = decimal byte length.
    """
    type_bytes = _check_pae_fields(payload_type, payload)
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def _check_pae_fields(payload_type: str, payload: bytes) -> bytes:
    """Type-check the two PAE inputs; return the payload type's UTF-8 bytes."""
    if not isinstance(payload_type, str):
        raise FormatError(f"payload type: expected a string, got {type(payload_type).__name__}")
    if not isinstance(payload, bytes):
        raise FormatError(f"payload: expected bytes, got {type(payload).__name__}")
    return _utf8(payload_type, "payload type")


@frozen
class Signature:
    """One DSSE signature: an unauthenticated key id hint (may be empty) and the raw bytes."""

    keyid: str
    sig: bytes

    def __post_init__(self) -> None:
        """Check the field types."""
        if not isinstance(self.keyid, str):
            raise FormatError(f"signature keyid: expected a string, got {self.keyid!r}")
        _utf8(self.keyid, "signature keyid")
        if not isinstance(self.sig, bytes):
            raise FormatError(f"signature: expected bytes, got {type(self.sig).__name__}")


@frozen
class Envelope:
    """A DSSE envelope: payload bytes, payload type and up to 100 signatures."""

    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...] = ()

    def __post_init__(self) -> None:
        """Check the field types and the signature count."""
        _check_pae_fields(self.payload_type, self.payload)
        if not isinstance(self.signatures, tuple) or not all(
            isinstance(sig, Signature) for sig in self.signatures
        ):
            raise FormatError("envelope: signatures must be a tuple of Signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise FormatError(
                f"envelope: {len(self.signatures)} signatures, at most {MAX_SIGNATURES} allowed"
            )

    def to_json(self) -> bytes:
        """Return the deterministic JSON envelope: sorted keys, no whitespace, standard base64."""
        document = {
            "payload": _b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": _b64(s.sig)} for s in self.signatures],
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        """Parse a JSON envelope strictly; raise FormatError on anything unexpected.

        Required: ``payload``, ``payloadType``, ``signatures`` (a list); each signature needs
        ``sig`` and may omit ``keyid`` (DSSE: empty fields may be omitted; read as "").
        Unknown or duplicate fields, non-string values and non-canonical base64 are refused.
        """
        document = _load_json_object(data)
        _check_fields(document, _ENVELOPE_FIELDS, _ENVELOPE_FIELDS, "envelope")
        payload = _b64_field(document, "payload", "envelope")
        payload_type = _str_field(document, "payloadType", "envelope")
        raw_signatures = document["signatures"]
        if not isinstance(raw_signatures, list):
            raise FormatError("envelope.signatures: expected a list")
        if len(raw_signatures) > MAX_SIGNATURES:
            raise FormatError(
                f"envelope: {len(raw_signatures)} signatures, at most {MAX_SIGNATURES} allowed"
            )
        signatures = tuple(
            _parse_signature(item, f"envelope.signatures[{index}]")
            for index, item in enumerate(raw_signatures)
        )
        return cls(payload, payload_type, signatures)

    def signed_by(self, key: PrivateKey) -> Envelope:
        """Return a copy with one more signature, by ``key`` over ``pae()``, keyid = key's id.

        Ed25519 is deterministic, so signing twice with one key would add an identical line:
        that case returns the envelope unchanged.
        """
        signature = Signature(key.public_key.key_id, key.sign(pae(self.payload_type, self.payload)))
        if signature in self.signatures:
            return self
        return Envelope(self.payload, self.payload_type, (*self.signatures, signature))


def verify_envelope(
    env: Envelope, keys: Mapping[str, PublicKey], *, payload_type: str
) -> frozenset[str]:
    """Return the distinct key ids (``PublicKey.key_id``) of ``keys`` that signed ``env``.

    Raises FormatError when ``env.payload_type`` is not ``payload_type`` (checked first, so an
    envelope of another type is never mistaken for a verified one). The keyid hint only orders
    the search: the keys it names (by mapping label or by key id) are tried first, then every
    other key, so a wrong or unknown hint can neither add nor remove a verified key. Several
    signatures by one key, or one key under several labels, count once. The caller compares
    the size of the result with its threshold.
    """
    if env.payload_type != payload_type:
        raise FormatError(f"envelope: payload type {env.payload_type!r}, expected {payload_type!r}")
    message = pae(env.payload_type, env.payload)
    accepted: set[str] = set()
    for signature in env.signatures:
        for candidate in _candidates(signature.keyid, keys):
            if candidate.key_id not in accepted and candidate.verify(signature.sig, message):
                accepted.add(candidate.key_id)
                break
    return frozenset(accepted)


def _candidates(hint: str, keys: Mapping[str, PublicKey]) -> list[PublicKey]:
    """Return every distinct key once, those the hint names (by label or key id) first."""
    ordered = sorted(
        keys.items(), key=lambda item: not (hint and hint in (item[0], item[1].key_id))
    )
    unique: dict[bytes, PublicKey] = {}
    for _, key in ordered:
        unique.setdefault(key.raw, key)
    return list(unique.values())


def _parse_signature(item: Any, where: str) -> Signature:
    """Parse one ``{"keyid": ..., "sig": ...}`` object."""
    if not isinstance(item, dict):
        raise FormatError(f"{where}: expected an object")
    _check_fields(item, _SIGNATURE_FIELDS, _SIG_ONLY, where)
    keyid = _str_field(item, "keyid", where) if "keyid" in item else ""
    return Signature(keyid, _b64_field(item, "sig", where))


def _load_json_object(data: bytes) -> dict[str, Any]:
    """Decode UTF-8 JSON holding one object; refuse duplicate keys and NaN/Infinity."""
    if not isinstance(data, bytes):
        raise FormatError(f"envelope: expected bytes, got {type(data).__name__}")
    try:
        document = DECODER.decode(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FormatError(f"envelope: not valid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"envelope: not JSON ({exc.msg} at offset {exc.pos})") from None
    except DuplicateKeyError as exc:
        raise FormatError(f"envelope: duplicate field {exc.key!r}") from None
    except ConstantError as exc:
        raise FormatError(f"envelope: {exc.token} is not JSON") from None
    except RecursionError:  # json's answer to hostile nesting
        raise FormatError("envelope: JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise FormatError("envelope: expected a JSON object")
    return document


def _check_fields(
    obj: dict[str, Any], allowed: frozenset[str], required: frozenset[str], where: str
) -> None:
    """Refuse unknown fields and missing required ones."""
    if obj.keys() == allowed:
        return
    unknown = sorted(obj.keys() - allowed)
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r}")
    missing = sorted(required - obj.keys())
    if missing:
        raise FormatError(f"{where}: missing field {missing[0]!r}")


def _str_field(obj: dict[str, Any], name: str, where: str) -> str:
    """Return ``obj[name]`` if it is a string."""
    value = obj[name]
    if not isinstance(value, str):
        raise FormatError(f"{where}.{name}: expected a string")
    return value


def _b64_field(obj: dict[str, Any], name: str, where: str) -> bytes:
    """Return ``obj[name]`` decoded from standard or URL-safe canonical base64."""
    return decode_base64(
        _str_field(obj, name, where), what=f"{where}.{name}", urlsafe_ok=True, error=FormatError
    )


def _b64(data: bytes) -> str:
    """Standard padded base64 (RFC 4648 section 4)."""
    return base64.b64encode(data).decode("ascii")


def _utf8(text: str, what: str) -> bytes:
    """Encode ``text`` as UTF-8, refusing lone surrogates."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError(f"{what}: not encodable as UTF-8") from None
