"""Tests for log-consistency judgements and portable equivocation proofs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.bundle.equivocation import (
    EXTENDS,
    FORK,
    ROLLBACK,
    SAME,
    UNPROVEN,
    EquivocationError,
    EquivocationProof,
    Relation,
    make_proof,
    relate,
    verify_equivocation,
)
from customer_model_factory.bundle.format import Consistency
from customer_model_factory.ledger.checkpoint import Checkpoint, sign_checkpoint
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes

LOG = PrivateKey.from_seed(b"\x42" * 32)
ORIGIN = "ledger.example/equivocation"


class Tree:
    """An in-memory RFC 6962 tree over byte-string leaves."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.hashes = [leaf_hash(leaf) for leaf in leaves]

    def read(self, level: int, n: int) -> bytes:
        width = 1 << level
        return root_from_leaf_hashes(self.hashes[n * width : (n + 1) * width])

    def root(self, size: int) -> bytes:
        return root_from_leaf_hashes(self.hashes[:size])

    def checkpoint(self, size: int) -> Checkpoint:
        return Checkpoint(ORIGIN, size, self.root(size))

    def note(self, size: int) -> bytes:
        return sign_checkpoint(self.checkpoint(size), LOG)

    def bridge(self, old: int, new: int) -> Consistency:
        """The consistency section a bundle of size ``new`` carries from ``old``."""
        return Consistency(old, self.root(old), tuple(consistency_proof(old, new, self.read)))


def leaves(count: int, tag: bytes = b"") -> list[bytes]:
    return [b"leaf-%d" % n + tag for n in range(count)]


@settings(max_examples=80)
@given(st.data())
def test_relate_classifies_every_pair_of_sizes(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, 40))
    old = data.draw(st.integers(1, new))
    changed = data.draw(st.integers(0, new - 1))
    honest = Tree(leaves(new))
    other = leaves(new)
    other[changed] = b"rewritten"
    forked = Tree(other)
    offered = honest.checkpoint(new)
    bridge = honest.bridge(old, new)
    # What the receiver accepted may be the honest tree or the rewritten one.
    relation = relate(forked.checkpoint(old), offered, bridge)
    if old == new:
        assert relation.kind == FORK
    elif changed < old:
        assert relation.kind == FORK, relation.message
    else:
        assert relation.kind == EXTENDS
    assert relate(honest.checkpoint(old), offered, bridge).kind == (SAME if old == new else EXTENDS)


def test_rollback_and_unproven() -> None:
    tree = Tree(leaves(9))
    assert relate(tree.checkpoint(9), tree.checkpoint(4), None).kind == ROLLBACK
    unproven = relate(tree.checkpoint(4), tree.checkpoint(9), None)
    assert unproven.kind == UNPROVEN and "--since 4" in unproven.message
    wrong_size = relate(tree.checkpoint(4), tree.checkpoint(9), tree.bridge(3, 9))
    assert wrong_size.kind == UNPROVEN
    bad = tree.bridge(4, 9)
    broken = Consistency(4, bad.old_root, bad.proof[:-1])
    assert relate(tree.checkpoint(4), tree.checkpoint(9), broken).kind == UNPROVEN
    assert not Relation(UNPROVEN, "").consistent and Relation(EXTENDS, "").consistent
    with pytest.raises(ValueError, match="origins"):
        relate(tree.checkpoint(4), Checkpoint("x.example/log", 9, tree.root(9)), None)


def fork_proof(old: int = 5, new: int = 9) -> EquivocationProof:
    """A proven fork: the receiver accepted a rewritten size-``old`` tree."""
    honest = Tree(leaves(new))
    forked = Tree([b"rewritten", *leaves(new)[1:]])
    relation = relate(forked.checkpoint(old), honest.checkpoint(new), honest.bridge(old, new))
    return make_proof(
        relation,
        origin=ORIGIN,
        log_key=LOG.public_key,
        accepted=forked.note(old),
        offered=honest.note(new),
        consistency=honest.bridge(old, new),
    )


def test_a_fork_proof_round_trips_and_proves_equivocation() -> None:
    proof = fork_proof()
    data = proof.to_json()
    assert EquivocationProof.from_json(data) == proof
    document = json.loads(data)
    assert document["format"] == "cmf-log-inconsistency/v1" and document["kind"] == FORK
    verdict = verify_equivocation(EquivocationProof.from_json(data), [LOG.public_key])
    assert verdict.proven and verdict.equivocation
    assert verdict.accepted is not None and verdict.accepted.size == 5
    assert verdict.message.startswith("EQUIVOCATION")


def test_a_same_size_fork_needs_no_consistency_proof() -> None:
    honest, forked = Tree(leaves(6)), Tree(leaves(6, b"'"))
    relation = relate(forked.checkpoint(6), honest.checkpoint(6), None)
    proof = make_proof(
        relation,
        origin=ORIGIN,
        log_key=LOG.public_key,
        accepted=forked.note(6),
        offered=honest.note(6),
        consistency=None,
    )
    assert verify_equivocation(proof, [LOG.public_key]).equivocation


def test_a_rollback_proof_is_valid_but_not_equivocation() -> None:
    tree = Tree(leaves(9))
    relation = relate(tree.checkpoint(9), tree.checkpoint(4), None)
    proof = make_proof(
        relation,
        origin=ORIGIN,
        log_key=LOG.public_key,
        accepted=tree.note(9),
        offered=tree.note(4),
        consistency=tree.bridge(4, 9),
    )
    assert proof.consistency is None  # only a fork carries the proof
    verdict = verify_equivocation(proof, [LOG.public_key])
    assert verdict.proven and not verdict.equivocation and verdict.kind == ROLLBACK
    with pytest.raises(ValueError, match="fork or a rollback"):
        make_proof(
            Relation(SAME, ""),
            origin=ORIGIN,
            log_key=LOG.public_key,
            accepted=b"",
            offered=b"",
            consistency=None,
        )


def test_a_proof_that_does_not_hold_is_not_proven() -> None:
    proof = fork_proof()
    stranger = PrivateKey.from_seed(b"\x13" * 32).public_key
    verdict = verify_equivocation(proof, [stranger])
    assert not verdict.proven and "not signed" in verdict.message
    honest = Tree(leaves(9))
    consistent = EquivocationProof(
        FORK, ORIGIN, proof.log_key, honest.note(5), honest.note(9), honest.bridge(5, 9)
    )
    verdict = verify_equivocation(consistent, [LOG.public_key])
    assert not verdict.proven and "extends" in verdict.message
    # A consistency proof that does not lead to the offered root proves nothing.
    assert proof.consistency is not None
    garbage = Consistency(5, b"\x01" * 32, proof.consistency.proof)
    tampered = EquivocationProof(
        FORK, ORIGIN, proof.log_key, proof.accepted, proof.offered, garbage
    )
    assert not verify_equivocation(tampered, [LOG.public_key]).proven
    with pytest.raises(ValueError, match="at least one"):
        verify_equivocation(proof, [])


@pytest.mark.parametrize(
    "change",
    [
        {"format": "other/v1"},
        {"kind": "same"},
        {"origin": 3},
        {"accepted": 7},
        {"consistency": {"old_size": -1, "old_root": "", "proof": []}},
        {"consistency": {"old_size": 1, "old_root": "AAAA", "proof": []}},
        {"consistency": {"old_size": 1, "old_root": "A" * 43 + "=", "proof": ["!"]}},
        {"consistency": [1]},
        {"extra": 1},
    ],
)
def test_malformed_proof_files_are_refused(change: dict[str, object]) -> None:
    document = json.loads(fork_proof().to_json())
    document.update(change)
    with pytest.raises(EquivocationError):
        EquivocationProof.from_json(json.dumps(document).encode())


def test_non_json_and_huge_files_are_refused() -> None:
    with pytest.raises(EquivocationError, match="JSON"):
        EquivocationProof.from_json(b"\xff")
    with pytest.raises(EquivocationError, match="larger"):
        EquivocationProof.from_json(b" " * (2 << 20))


@pytest.mark.parametrize("data", [b"[" * 100_000 + b"]" * 100_000, b"1" * 5000])
def test_hostile_json_proof_files_are_one_clear_error(data: bytes) -> None:
    # Deep nesting (RecursionError) and huge numbers (int digit limit) are not tracebacks.
    with pytest.raises(EquivocationError, match="not JSON"):
        EquivocationProof.from_json(data)
