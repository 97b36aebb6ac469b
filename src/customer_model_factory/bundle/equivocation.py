"""Log consistency between a checkpoint a site accepted and one it is offered, and portable
proofs of the inconsistency (``cmf verify-equivocation``).

A log must never sign two checkpoints that are inconsistent with each other (C2SP
tlog-checkpoint). ``relate`` classifies an offered checkpoint against an accepted one:

- ``same``: same size and root; ``extends``: a larger tree, proven by the consistency proof;
- ``fork`` (proven): the same size with another root; or a larger tree whose consistency proof
  verifies from ``(old size, X)`` to the offered root with X different from the accepted root.
  The proof's hashes rebuild the offered signed root, so (short of a SHA-256 collision) X IS
  the root the offered tree has at the accepted size: the log signed two histories;
- ``rollback``: a smaller tree than one already accepted (a stale or rolled-back bundle);
- ``unproven``: a larger tree without a valid consistency proof from the accepted size.

An ``EquivocationProof`` file (JSON, docs/bundle-format.md section 6) holds both signed
checkpoint notes and, for a fork at different sizes, the consistency proof; anyone holding the
log's public key can re-check it with ``verify_equivocation``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from .._frozen import frozen
from ..ledger.checkpoint import Checkpoint, open_checkpoint
from ..ledger.errors import FormatError, ProofError, SignatureError
from ..ledger.keys import PublicKey
from ..ledger.merkle import verify_consistency
from .format import MAX_CONSISTENCY_HASHES, MAX_NOTE_BYTES, Consistency

SAME = "same"
EXTENDS = "extends"
FORK = "fork"
ROLLBACK = "rollback"
UNPROVEN = "unproven"

PROOF_FORMAT = "cmf-log-inconsistency/v1"
MAX_PROOF_FILE_BYTES = 1 << 20
_PROOF_FIELDS = ("format", "kind", "origin", "log_key", "accepted", "offered", "consistency")


class EquivocationError(FormatError):
    """An equivocation proof file is malformed."""


@frozen
class Relation:
    """How an offered checkpoint relates to an accepted one (``kind``), and why."""

    kind: str
    message: str

    @property
    def consistent(self) -> bool:
        """True when the offered checkpoint may be accepted on top of the accepted one."""
        return self.kind in (SAME, EXTENDS)


def relate(accepted: Checkpoint, offered: Checkpoint, consistency: Consistency | None) -> Relation:
    """Classify ``offered`` against ``accepted`` (same origin; both already signature-checked).

    ``consistency`` is the offered bundle's proof from an older size (RFC 9162 2.1.4.2).
    """
    if accepted.origin != offered.origin:
        raise ValueError(f"origins differ: {accepted.origin!r} and {offered.origin!r}")
    old, new = accepted.size, offered.size
    if old == new:
        if accepted.root_hash == offered.root_hash:
            return Relation(SAME, f"the same tree of size {new}")
        return Relation(FORK, f"two different roots signed for tree size {new}")
    if old > new:
        return Relation(
            ROLLBACK, f"offered tree size {new} is smaller than the accepted size {old}"
        )
    if consistency is None or consistency.old_size != old:
        carried = "none" if consistency is None else f"one from size {consistency.old_size}"
        return Relation(
            UNPROVEN,
            f"no consistency proof from the accepted size {old} to {new} (the bundle carries "
            f"{carried}; export it with --since {old})",
        )
    try:
        verify_consistency(old, new, consistency.proof, consistency.old_root, offered.root_hash)
    except ProofError as exc:
        return Relation(UNPROVEN, f"the consistency proof from size {old} does not verify: {exc}")
    if consistency.old_root != accepted.root_hash:
        return Relation(
            FORK,
            f"the offered tree of size {new} has another root at size {old} than the accepted "
            "checkpoint (proven by its consistency proof)",
        )
    return Relation(EXTENDS, f"tree size {new} extends the accepted size {old}")


# --- the portable proof -----------------------------------------------------------------------


@frozen
class EquivocationProof:
    """Evidence that a log's signed checkpoints are inconsistent (or an offered one is stale).

    ``accepted`` and ``offered`` are signed checkpoint notes (bytes as received); ``log_key`` is
    the key both are signed with, written as a signed-note verifier key (a checker should pin
    its own copy); ``consistency`` is the offered bundle's proof for a fork between sizes.
    """

    kind: str
    origin: str
    log_key: str
    accepted: bytes
    offered: bytes
    consistency: Consistency | None = None

    def to_json(self) -> bytes:
        """Return the proof as canonical JSON bytes (sorted keys, two-space indent, newline)."""
        document: dict[str, Any] = {
            "format": PROOF_FORMAT,
            "kind": self.kind,
            "origin": self.origin,
            "log_key": self.log_key,
            "accepted": self.accepted.decode("utf-8"),
            "offered": self.offered.decode("utf-8"),
            "consistency": None
            if self.consistency is None
            else {
                "old_size": self.consistency.old_size,
                "old_root": _b64(self.consistency.old_root),
                "proof": [_b64(h) for h in self.consistency.proof],
            },
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("ascii")

    @classmethod
    def from_json(cls, data: bytes) -> EquivocationProof:
        """Parse a proof file strictly; EquivocationError naming the problem."""
        if len(data) > MAX_PROOF_FILE_BYTES:
            raise EquivocationError(f"proof file is larger than {MAX_PROOF_FILE_BYTES} bytes")
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, huge numbers
            raise EquivocationError(f"proof file is not JSON: {exc}") from None
        except RecursionError:
            raise EquivocationError("proof file is not JSON: nested too deeply") from None
        if not isinstance(document, dict) or document.get("format") != PROOF_FORMAT:
            raise EquivocationError(f"not a {PROOF_FORMAT} file")
        if set(document) != set(_PROOF_FIELDS):
            raise EquivocationError(f"proof file members must be exactly {sorted(_PROOF_FIELDS)}")
        kind = document["kind"]
        if kind not in (FORK, ROLLBACK):
            raise EquivocationError(f"proof kind {kind!r} is not {FORK!r} or {ROLLBACK!r}")
        origin, log_key = document["origin"], document["log_key"]
        if not isinstance(origin, str) or not isinstance(log_key, str):
            raise EquivocationError("origin and log_key must be strings")
        return cls(
            kind=kind,
            origin=origin,
            log_key=log_key,
            accepted=_note_bytes(document["accepted"], "accepted"),
            offered=_note_bytes(document["offered"], "offered"),
            consistency=_consistency(document["consistency"]),
        )


def _b64(data: bytes) -> str:
    """Standard padded base64."""
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    """Decode a standard base64 32-byte hash; EquivocationError otherwise."""
    if not isinstance(text, str):
        raise EquivocationError(f"{what}: expected a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise EquivocationError(f"{what}: not base64") from None
    if len(raw) != 32 or _b64(raw) != text:
        raise EquivocationError(f"{what}: expected the canonical base64 of a 32-byte hash")
    return raw


def _note_bytes(value: object, what: str) -> bytes:
    """Return a checkpoint note given as text, bounded."""
    if not isinstance(value, str):
        raise EquivocationError(f"{what}: expected the signed checkpoint as text")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        raise EquivocationError(f"{what}: not encodable as UTF-8") from None
    if len(data) > MAX_NOTE_BYTES:
        raise EquivocationError(f"{what}: longer than {MAX_NOTE_BYTES} bytes")
    return data


def _consistency(value: object) -> Consistency | None:
    """Parse the optional consistency member."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"old_size", "old_root", "proof"}:
        raise EquivocationError("consistency: expected old_size, old_root and proof")
    old_size, proof = value["old_size"], value["proof"]
    if isinstance(old_size, bool) or not isinstance(old_size, int) or old_size < 0:
        raise EquivocationError("consistency.old_size: expected a non-negative integer")
    if not isinstance(proof, list) or len(proof) > MAX_CONSISTENCY_HASHES:
        raise EquivocationError(f"consistency.proof: at most {MAX_CONSISTENCY_HASHES} hashes")
    return Consistency(
        old_size,
        _unb64(value["old_root"], "consistency.old_root"),
        tuple(_unb64(item, f"consistency.proof[{n}]") for n, item in enumerate(proof)),
    )


def make_proof(
    relation: Relation,
    *,
    origin: str,
    log_key: PublicKey,
    accepted: bytes,
    offered: bytes,
    consistency: Consistency | None,
) -> EquivocationProof:
    """Return the portable proof of a ``fork`` or ``rollback`` relation."""
    if relation.kind not in (FORK, ROLLBACK):
        raise ValueError(f"only a fork or a rollback has a proof, not {relation.kind!r}")
    return EquivocationProof(
        kind=relation.kind,
        origin=origin,
        log_key=log_key.verifier_key(origin),
        accepted=accepted,
        offered=offered,
        consistency=consistency if relation.kind == FORK else None,
    )


@frozen
class Verdict:
    """What an equivocation proof file proves, checked with the log's key.

    ``proven`` is True when both checkpoints verify and they relate as the file claims
    (``kind``); ``message`` explains the result either way.
    """

    kind: str
    proven: bool
    message: str
    accepted: Checkpoint | None = None
    offered: Checkpoint | None = None

    @property
    def equivocation(self) -> bool:
        """True when the log is proven to have signed two inconsistent checkpoints."""
        return self.proven and self.kind == FORK


def verify_equivocation(proof: EquivocationProof, log_keys: Iterable[PublicKey]) -> Verdict:
    """Check ``proof`` with the log's public key(s) (pure; never raises for a bad proof).

    Both notes must be signed by one of ``log_keys`` under ``proof.origin``. A ``fork`` is
    proven when ``relate`` finds a fork; a ``rollback`` when the offered checkpoint is smaller:
    evidence of a stale or rolled-back copy, not of equivocation.
    """
    keys = list(log_keys)
    if not keys:
        raise ValueError("verify_equivocation needs at least one log key")
    accepted, problem = _open(proof.accepted, proof.origin, keys, "accepted")
    offered, other = _open(proof.offered, proof.origin, keys, "offered")
    if accepted is None or offered is None:
        return Verdict(proof.kind, False, problem or other, accepted, offered)
    relation = relate(accepted, offered, proof.consistency)
    if relation.kind != proof.kind:
        return Verdict(
            proof.kind,
            False,
            f"NOT PROVEN: the file claims a {proof.kind} but the checkpoints show: "
            f"{relation.message}",
            accepted,
            offered,
        )
    if relation.kind == FORK:
        message = f"EQUIVOCATION: log {proof.origin} signed inconsistent checkpoints: "
        message += relation.message
    else:
        message = (
            f"rollback: log {proof.origin} signed tree size {accepted.size} and the offered "
            f"checkpoint is the older size {offered.size}; both signatures verify. This shows "
            "a stale or rolled-back copy was offered, not that the log signed two histories."
        )
    return Verdict(relation.kind, True, message, accepted, offered)


def _open(
    note: bytes, origin: str, keys: list[PublicKey], what: str
) -> tuple[Checkpoint | None, str]:
    """Return (checkpoint, "") if one of ``keys`` signed ``note`` as ``origin``, else
    (None, why not)."""
    problems: list[str] = []
    for key in keys:
        try:
            checkpoint, _ = open_checkpoint(note, origin=origin, key=key)
        except (FormatError, SignatureError) as exc:
            problems.append(str(exc))
            continue
        return checkpoint, ""
    return None, (
        f"NOT PROVEN: the {what} checkpoint is not signed by the given log key: "
        f"{'; '.join(problems)}"
    )
