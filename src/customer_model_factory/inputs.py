"""Reading inputs strictly: JSON objects from files, and the pinned trust root.

Split from ``pipeline`` so that commands which only verify (``cmf release verify``) do not load
the stage builders' orchestration: this module needs the JSON parser, the trust-policy format
and the keys, nothing else at import time. ``pipeline`` re-exports every name.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._frozen import frozen
from ._strictjson import DECODER, ConstantError, DuplicateKeyError
from .ledger.errors import LedgerError
from .ledger.keys import PublicKey, load_public_key
from .ledger.policy import (
    POLICY_KIND,
    PolicyChain,
    PolicyRecord,
    TrustPolicy,
    verify_policy_chain,
)

if TYPE_CHECKING:
    from .ledger.store import Ledger

__all__ = [
    "InputError",
    "Trust",
    "current_policy",
    "key_names",
    "load_trust_file",
    "parse_json_object",
    "policy_chain",
    "policy_records",
    "read_json_object",
    "resolve_trust",
]


class InputError(ValueError):
    """An input file or parameter is malformed; the message names the file (and line) or field."""


def parse_json_object(data: bytes, name: str) -> dict[str, Any]:
    """Parse ``data`` as one strict JSON object (UTF-8, no duplicate keys, no NaN/Infinity).

    Errors are InputError ``<name>:<line>: <what>``.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{name}:{line}: not UTF-8 ({exc.reason})") from None
    try:
        value = DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{name}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    except (DuplicateKeyError, ConstantError) as exc:
        raise InputError(f"{name}: {exc}") from None
    except RecursionError:
        raise InputError(f"{name}: JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise InputError(f"{name}:1: expected a JSON object, got {type(value).__name__}")
    return value


def read_json_object(path: Path) -> dict[str, Any]:
    """Read a JSON object file strictly (``parse_json_object``); OSError if it cannot be read."""
    path = Path(path)
    return parse_json_object(path.read_bytes(), path.name)


# --- the trust root ------------------------------------------------------------------------------


@frozen
class Trust:
    """The trust root verification is pinned to, and how it was chosen (for the output)."""

    root: TrustPolicy | PublicKey
    source: str
    pinned: bool  # False: taken on first use from the ledger's own first policy version


def load_trust_file(path: Path) -> TrustPolicy | PublicKey:
    """Read a pinned trust root: a trust-policy JSON file or a public key (PEM or verifier key).

    A policy file must hold canonical policy bytes (what ``cmf trust show --json`` writes).
    """
    path = Path(path)
    data = path.read_bytes()
    if data.lstrip().startswith(b"{"):
        try:
            return TrustPolicy.from_bytes(data)
        except ValueError as exc:
            raise InputError(f"{path.name}: not a trust policy: {exc}") from None
    return load_public_key(path)


def policy_records(ledger: Ledger) -> list[PolicyRecord]:
    """Return every trust-policy record of the ledger, in log order (LedgerError if unreadable)."""
    from .chain.ledger_source import LedgerSource
    from .chain.verify import load_policy_records

    source = LedgerSource(ledger)
    records, findings = load_policy_records(source, source.entries_of_kind(POLICY_KIND))
    if findings:
        raise LedgerError(findings[0].message)
    return records


def resolve_trust(ledger: Ledger, pinned: Path | None) -> Trust:
    """Return the trust root: the pinned file, or else the ledger's first policy version.

    The fallback is trust on first use: it only proves that later versions follow from the
    first; pin a root key or policy (``--trust``) to know the first is the one you expect.
    """
    if pinned is not None:
        return Trust(load_trust_file(pinned), str(pinned), pinned=True)
    records = policy_records(ledger)
    if not records:
        raise LedgerError(f"{ledger.path}: the ledger holds no trust policy (run cmf trust init)")
    first = records[0]
    source = f"first policy in the ledger (log index {first.log_index})"
    return Trust(first.policy, source, pinned=False)


def policy_chain(ledger: Ledger, trust: Trust, as_of: datetime) -> PolicyChain:
    """Walk the ledger's policy versions forward from ``trust`` (ledger.policy rules)."""
    return verify_policy_chain(trust.root, policy_records(ledger), as_of=as_of)


def current_policy(ledger: Ledger, trust: Trust, as_of: datetime) -> TrustPolicy:
    """Return the latest policy version that verifies from ``trust``; LedgerError if none.

    Expiry does not matter here (an expired policy is still the one to amend).
    """
    chain = policy_chain(ledger, trust, as_of)
    if not chain.policies:
        reasons = "; ".join(f"{f.code}: {f.message}" for f in chain.findings)
        raise LedgerError(f"no trust policy version verifies: {reasons}")
    return chain.current


def key_names(policy: TrustPolicy | None) -> dict[str, str]:
    """Return key id -> name for every key of ``policy`` (empty for None)."""
    return {} if policy is None else {entry.key_id: entry.name for entry in policy.keys}
