"""Tests for C2SP tlog-proof@v1 files: the known-answer example, round trips, strict parsing."""

from __future__ import annotations

import base64
import dataclasses

import bundle_fixtures as bf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.bundle.tlogproof import (
    HEADER,
    TlogProof,
    TlogProofError,
    format_tlog_proof,
    parse_tlog_proof,
    proof_for_blob,
    verify_blob_proof,
    verify_tlog_proof,
)
from customer_model_factory.chain import kinds
from customer_model_factory.ledger.checkpoint import Checkpoint, sign_checkpoint
from customer_model_factory.ledger.errors import LedgerError, ProofError, SignatureError
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.merkle import inclusion_proof, leaf_hash, root_from_leaf_hashes

# RFC 8032 section 7.1 TEST 1, the log key of prior-art appendix A.3 / docs/ledger-format.md.
TEST1 = PrivateKey.from_seed(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
)
ORIGIN = "ledger.example/evidence"
LEAVES = [f"entry-{n}".encode() for n in range(7)]

# prior-art appendix A.3: "a complete tlog-proof for index 3 is therefore: the header line,
# `index 3`, the three path lines above, a blank line, then that note."
EXPECTED = bf.A3_TLOG_PROOF.encode()


def example_proof(index: int = 3, size: int = 7) -> TlogProof:
    """Return the tlog-proof of leaf ``index`` in the tree of the first ``size`` leaves."""
    hashes = [leaf_hash(leaf) for leaf in LEAVES[:size]]
    checkpoint = Checkpoint(ORIGIN, size, root_from_leaf_hashes(hashes))
    proof = inclusion_proof(index, size, lambda level, n: _subtree(hashes, level, n))
    return TlogProof(index, tuple(proof), sign_checkpoint(checkpoint, TEST1))


def _subtree(hashes: list[bytes], level: int, n: int) -> bytes:
    """The complete-subtree hash reader over a list of leaf hashes."""
    width = 1 << level
    return root_from_leaf_hashes(hashes[n * width : (n + 1) * width])


def test_the_prior_art_example_is_reproduced_byte_for_byte() -> None:
    proof = example_proof()
    assert format_tlog_proof(proof) == EXPECTED
    assert parse_tlog_proof(EXPECTED) == proof
    checkpoint = verify_tlog_proof(proof, origin=ORIGIN, log_key=TEST1.public_key, leaf=LEAVES[3])
    assert (checkpoint.origin, checkpoint.size) == (ORIGIN, 7)


def test_the_extra_line_carries_the_leaf() -> None:
    proof = dataclasses.replace(example_proof(), extra=LEAVES[3])
    data = format_tlog_proof(proof)
    assert data.split(b"\n")[1] == b"extra " + base64.b64encode(LEAVES[3])
    parsed = parse_tlog_proof(data)
    assert parsed.extra == LEAVES[3]
    verify_tlog_proof(parsed, origin=ORIGIN, log_key=TEST1.public_key)


@settings(max_examples=60)
@given(st.data())
def test_every_proof_round_trips_and_verifies(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 7))
    index = data.draw(st.integers(0, size - 1))
    proof = dataclasses.replace(example_proof(index, size), extra=LEAVES[index])
    parsed = parse_tlog_proof(format_tlog_proof(proof))
    assert parsed == proof
    verify_tlog_proof(parsed, origin=ORIGIN, log_key=TEST1.public_key)
    other = LEAVES[(index + 1) % 7]
    with pytest.raises(ProofError):
        verify_tlog_proof(parsed, origin=ORIGIN, log_key=TEST1.public_key, leaf=other)


def test_a_wrong_index_key_or_origin_fails() -> None:
    proof = example_proof()
    with pytest.raises(ProofError):
        verify_tlog_proof(
            dataclasses.replace(proof, index=2),
            origin=ORIGIN,
            log_key=TEST1.public_key,
            leaf=LEAVES[3],
        )
    with pytest.raises(SignatureError):
        verify_tlog_proof(
            proof,
            origin=ORIGIN,
            log_key=PrivateKey.from_seed(b"\1" * 32).public_key,
            leaf=LEAVES[3],
        )
    with pytest.raises(SignatureError):
        verify_tlog_proof(proof, origin="other.example/log", log_key=TEST1.public_key, leaf=b"")
    with pytest.raises(ProofError, match="no leaf"):
        verify_tlog_proof(proof, origin=ORIGIN, log_key=TEST1.public_key)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"c2sp.org/tlog-proof@v2\nindex 3\n\nx", "first line"),
        (EXPECTED.replace(b"index 3", b"index 03"), "decimal"),
        (EXPECTED.replace(b"index 3", b"index -3"), "decimal"),
        (EXPECTED.replace(b"index 3\n", b""), "index"),
        (EXPECTED.replace(b"BJ19zbVr", b"BJ19zbV_"), "base64"),
        (EXPECTED.replace(b"Kg=\n", b"Kh=\n"), "canonical"),
        (EXPECTED.replace(b"BJ19zbVrz+vTEzBMmDnxlqPUtu873AsIKY+TrIGR8Kg=", b"AAAA"), "32"),
        (HEADER.encode() + b"\nindex 3\n", "empty line"),
        (HEADER.encode() + b"\nindex 3\n\n", "checkpoint is missing"),
        (HEADER.encode() + b"\nextra !!\nindex 3\n\nx", "extra"),
        (
            HEADER.encode()
            + b"\nindex 3\n"
            + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 65
            + b"\nx",
            "64",
        ),
        (b"c2sp.org/tlog-proof@v1\n\xff\n\nx", "ASCII"),
        (b"x" * 200_000, "larger"),
    ],
)
def test_malformed_files_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(TlogProofError, match=message):
        parse_tlog_proof(data)


def test_a_proof_for_a_recorded_blob_verifies(promoted: bf.Promoted) -> None:
    gate = promoted.gate
    with promoted.open() as ledger:
        proof = proof_for_blob(ledger, gate)
        origin, key = ledger.origin, ledger.log_public_key
        (entry,) = [e for e in ledger.entries_for_blob(gate)]
    parsed = parse_tlog_proof(format_tlog_proof(proof))
    checkpoint, record = verify_blob_proof(parsed, gate, origin=origin, log_key=key)
    assert (record.kind, record.blob_id, parsed.index) == (kinds.RELEASE_GATE, gate, entry.index)
    assert checkpoint.size > entry.index
    # The checkpoint keeps the witness's cosignature: the proof is a "spicy signature".
    assert bf.WITNESS_NAME.encode() in parsed.checkpoint
    with pytest.raises(ProofError, match="not"):
        verify_blob_proof(parsed, "0" * 64, origin=origin, log_key=key)


def test_no_proof_for_an_unrecorded_blob(promoted: bf.Promoted) -> None:
    with promoted.open() as ledger, pytest.raises(LedgerError, match="no log entry"):
        proof_for_blob(ledger, "0" * 64)
    with promoted.open() as ledger, pytest.raises(LedgerError, match="at log index 0"):
        proof_for_blob(ledger, promoted.gate, index=0)
