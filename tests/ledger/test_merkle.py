"""Tests for ledger.merkle: RFC 6962 hashing, tlog-style stored hashes, RFC 9162 verification."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger.errors import IntegrityError, ProofError
from customer_model_factory.ledger.merkle import (
    EMPTY_ROOT,
    HashReader,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    new_stored_hashes,
    node_hash,
    root_from_leaf_hashes,
    stored_hash_count,
    stored_hash_index,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)

# --- fixtures and independent oracles ----------------------------------------------------------


def h(hex_text: str) -> bytes:
    """Decode a 32-byte hex hash."""
    value = bytes.fromhex(hex_text)
    assert len(value) == 32
    return value


def b64(text: str) -> bytes:
    """Decode a 32-byte base64 hash."""
    value = base64.b64decode(text, validate=True)
    assert len(value) == 32
    return value


class MemoryHashes:
    """An in-memory stored-hash table filled exactly as a log would fill it."""

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self.table: dict[tuple[int, int], bytes] = {}
        self.size = 0
        self.reads = 0
        for leaf in leaves:
            self.append(leaf_hash(leaf))

    def append(self, value: bytes) -> None:
        for level, n, stored in new_stored_hashes(self.size, value, self.read):
            assert (level, n) not in self.table
            self.table[(level, n)] = stored
        self.size += 1

    def read(self, level: int, n: int) -> bytes:
        self.reads += 1
        return self.table[(level, n)]


def split(n: int) -> int:
    """Largest power of two strictly below n, by counting (independent of merkle.py)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) transcribed from RFC 6962 section 2.1.1."""
    if len(hashes) == 1:
        return []
    k = split(len(hashes))
    if m < k:
        return [*rfc_path(m, hashes[:k]), root_from_leaf_hashes(hashes[k:])]
    return [*rfc_path(m - k, hashes[k:]), root_from_leaf_hashes(hashes[:k])]


def rfc_subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) transcribed from RFC 6962 section 2.1.2."""
    n = len(hashes)
    if m == n:
        return [] if complete else [root_from_leaf_hashes(hashes)]
    k = split(n)
    if m <= k:
        return [*rfc_subproof(m, hashes[:k], complete), root_from_leaf_hashes(hashes[k:])]
    return [*rfc_subproof(m - k, hashes[k:], False), root_from_leaf_hashes(hashes[:k])]


def go_stored_hash_index(level: int, n: int) -> int:
    """tlog.StoredHashIndex, transcribed loop for loop."""
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def flip(value: bytes, bit: int = 3) -> bytes:
    """Return ``value`` with one bit of its first byte flipped."""
    return bytes([value[0] ^ (1 << bit)]) + value[1:]


# --- known-answer vectors ------------------------------------------------------------------------

# transparency-dev/merkle proof/verify_test.go: leaves and the roots of every prefix 1..8.
TD_LEAVES = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
TD_ROOTS = [
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
# (0-based leaf index, tree size, audit path); the Go file lists 1-based leaf numbers.
TD_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
TD_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]


def test_empty_root_is_sha256_of_nothing() -> None:
    assert h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert tree_hash(0, MemoryHashes().read) == EMPTY_ROOT


def test_leaf_and_node_hash_prefixes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert node_hash(left, right) != node_hash(right, left)


@pytest.mark.parametrize("size", range(1, 9))
def test_transparency_dev_roots(size: int) -> None:
    hashes = [leaf_hash(leaf) for leaf in TD_LEAVES[:size]]
    assert root_from_leaf_hashes(hashes) == TD_ROOTS[size - 1]
    assert tree_hash(size, MemoryHashes(TD_LEAVES).read) == TD_ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), TD_INCLUSION)
def test_transparency_dev_inclusion(index: int, size: int, path: list[bytes]) -> None:
    store = MemoryHashes(TD_LEAVES)
    assert inclusion_proof(index, size, store.read) == path
    verify_inclusion(leaf_hash(TD_LEAVES[index]), index, size, path, TD_ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "path"), TD_CONSISTENCY)
def test_transparency_dev_consistency(old: int, new: int, path: list[bytes]) -> None:
    store = MemoryHashes(TD_LEAVES)
    assert consistency_proof(old, new, store.read) == path
    old_root, new_root = TD_ROOTS[old - 1], TD_ROOTS[new - 1]
    verify_consistency(old, new, path, old_root, new_root)
    if not path:
        return
    # The size probes of transparency-dev's corruptConsistencyProof, with the same roots.
    for bad_old, bad_new in [
        (old - 1, new),
        (old + 1, new),
        (old ^ 2, new),
        (old, new * 2),
        (old, new // 2),
    ]:
        with pytest.raises(ProofError):
            verify_consistency(bad_old, bad_new, path, old_root, new_root)


def test_prior_art_a3_vectors() -> None:
    leaves = [f"entry-{i}".encode() for i in range(7)]
    store = MemoryHashes(leaves)
    assert leaf_hash(leaves[3]) == h(
        "27479b6ab321d2ee477452f68ba527748e863cafe8fbd1df2bf89d1570d1b697"
    )
    root3 = b64("pkvybgkSj2/i/m+LLYyAHhZrV8BHp82bK4Ceepai8cs=")
    root7 = b64("kTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=")
    assert tree_hash(3, store.read) == root3
    assert tree_hash(7, store.read) == root7
    path = [
        b64("BJ19zbVrz+vTEzBMmDnxlqPUtu873AsIKY+TrIGR8Kg="),
        b64("LyelCCwdQq+kiKw1Cp/EOQwIT1T3Hs3/hZ6Y24QptHk="),
        b64("5CnFtcyqlSPDcpfxhGdm+QMTfoIZXFGZ5r5XEw0QBsg="),
    ]
    assert inclusion_proof(3, 7, store.read) == path
    verify_inclusion(leaf_hash(leaves[3]), 3, 7, path, root7)
    consistency = [path[0], b64("J0ebarMh0u5HdFL2i6UndI6GPK/o+9HfK/idFXDRtpc="), *path[1:]]
    assert consistency_proof(3, 7, store.read) == consistency
    verify_consistency(3, 7, consistency, root3, root7)


# --- stored hash layout --------------------------------------------------------------------------


def test_stored_hash_index_matches_go_and_is_dense() -> None:
    store = MemoryHashes([b"%d" % i for i in range(300)])
    positions = sorted(stored_hash_index(level, n) for level, n in store.table)
    assert positions == list(range(len(store.table)))
    for level, n in store.table:
        assert stored_hash_index(level, n) == go_stored_hash_index(level, n)


def test_new_stored_hashes_come_in_position_order() -> None:
    store = MemoryHashes()
    for index in range(130):
        triples = new_stored_hashes(index, leaf_hash(b"%d" % index), store.read)
        first = stored_hash_index(0, index)
        assert [stored_hash_index(level, n) for level, n, _ in triples] == list(
            range(first, first + len(triples))
        )
        assert first + len(triples) == stored_hash_count(index + 1)
        store.append(leaf_hash(b"%d" % index))
    assert stored_hash_count(0) == 0


def test_tree_hash_reads_one_hash_per_complete_subtree() -> None:
    store = MemoryHashes([b"%d" % i for i in range(1000)])
    store.reads = 0
    tree_hash(1000, store.read)
    assert store.reads == bin(1000).count("1")
    store.reads = 0
    inclusion_proof(999, 1000, store.read)
    assert store.reads <= 2 * 10


# --- exhaustive: every proof for every size up to 64 ---------------------------------------------

LEAVES_64 = [b"leaf %d" % i for i in range(64)]
HASHES_64 = [leaf_hash(leaf) for leaf in LEAVES_64]
STORE_64 = MemoryHashes(LEAVES_64)
ROOTS_64 = [root_from_leaf_hashes(HASHES_64[:size]) for size in range(65)]


def test_every_prefix_root_matches_reference() -> None:
    for size in range(65):
        assert tree_hash(size, STORE_64.read) == ROOTS_64[size]


def test_every_inclusion_proof_up_to_64() -> None:
    for size in range(1, 65):
        for index in range(size):
            proof = inclusion_proof(index, size, STORE_64.read)
            assert proof == rfc_path(index, HASHES_64[:size])
            verify_inclusion(HASHES_64[index], index, size, proof, ROOTS_64[size])


def test_every_consistency_proof_up_to_64() -> None:
    for new in range(0, 65):
        for old in range(0, new + 1):
            proof = consistency_proof(old, new, STORE_64.read)
            expected = [] if old in (0, new) else rfc_subproof(old, HASHES_64[:new], True)
            assert proof == expected
            verify_consistency(old, new, proof, ROOTS_64[old], ROOTS_64[new])


def inclusion_tampers(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> list[tuple[str, bytes, int, int, list[bytes], bytes]]:
    """(description, leaf hash, index, size, proof, root) variants that must all be rejected."""
    other = hashlib.sha256(b"other").digest()
    cases = [
        ("wrong leaf", flip(leaf), index, size, proof, root),
        ("wrong root", leaf, index, size, proof, flip(root)),
        ("empty-tree root", leaf, index, size, proof, EMPTY_ROOT),
        ("index == size", leaf, size, size, proof, root),
        ("extra element", leaf, index, size, [*proof, other], root),
        ("extra root", leaf, index, size, [*proof, root], root),
        ("leading element", leaf, index, size, [other, *proof], root),
    ]
    for position in range(len(proof)):
        changed = [*proof[:position], flip(proof[position]), *proof[position + 1 :]]
        cases.append((f"element {position} flipped", leaf, index, size, changed, root))
        missing = proof[:position] + proof[position + 1 :]
        cases.append((f"element {position} missing", leaf, index, size, missing, root))
    if len(proof) > 1:
        cases.append(
            ("elements swapped", leaf, index, size, [proof[1], proof[0], *proof[2:]], root)
        )
    for wrong in {index - 1, index + 1, index ^ 2} - {index}:
        if 0 <= wrong < size:
            cases.append((f"index {wrong}", leaf, wrong, size, proof, root))
    return cases


def test_every_inclusion_tamper_up_to_64_is_rejected() -> None:
    for size in range(1, 65):
        for index in range(size):
            proof = inclusion_proof(index, size, STORE_64.read)
            for description, leaf, bad_index, bad_size, bad_proof, bad_root in inclusion_tampers(
                HASHES_64[index], index, size, proof, ROOTS_64[size]
            ):
                with pytest.raises(ProofError):
                    verify_inclusion(leaf, bad_index, bad_size, bad_proof, bad_root)
                    pytest.fail(f"{description} accepted for leaf {index} of {size}")


def test_inclusion_proof_never_verifies_for_another_index_or_checkpoint() -> None:
    # A proof is bound to its index and to its checkpoint (size, root): no other index in the
    # tree, and no other tree size with that size's own root, accepts it.
    for size in range(1, 33):
        for index in range(size):
            proof = inclusion_proof(index, size, STORE_64.read)
            for other in range(size):
                if other != index:
                    with pytest.raises(ProofError):
                        verify_inclusion(HASHES_64[index], other, size, proof, ROOTS_64[size])
            for other_size in range(index + 1, 65):
                if other_size != size:
                    with pytest.raises(ProofError):
                        verify_inclusion(
                            HASHES_64[index], index, other_size, proof, ROOTS_64[other_size]
                        )


def test_inclusion_size_is_only_bound_through_the_root() -> None:
    # RFC 9162 verification accepts a proof for (0, 4) under size 3 when given root(4): the
    # size and root must come from the same verified checkpoint. Pinned here so the docs'
    # warning (ledger-format.md section 6) stays true.
    proof = inclusion_proof(0, 4, STORE_64.read)
    verify_inclusion(HASHES_64[0], 0, 3, proof, ROOTS_64[4])
    with pytest.raises(ProofError):
        verify_inclusion(HASHES_64[0], 0, 3, proof, ROOTS_64[3])


def consistency_tampers(
    old: int, new: int, proof: list[bytes]
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """(description, old, new, proof, old root, new root) variants that must all be rejected."""
    old_root, new_root = ROOTS_64[old], ROOTS_64[new]
    other = hashlib.sha256(b"other").digest()
    cases = [
        ("wrong old root", old, new, proof, flip(old_root), new_root),
        ("wrong new root", old, new, proof, old_root, flip(new_root)),
        ("swapped roots", old, new, proof, new_root, old_root),
        ("empty proof", old, new, [], old_root, new_root),
        ("extra element", old, new, [*proof, other], old_root, new_root),
        ("extra old root", old, new, [*proof, old_root], old_root, new_root),
        ("leading new root", old, new, [new_root, *proof], old_root, new_root),
        ("leading first element", old, new, [proof[0], *proof], old_root, new_root),
        ("sizes reversed", new, old, proof, new_root, old_root),
    ]
    for position in range(len(proof)):
        changed = [*proof[:position], flip(proof[position], 4), *proof[position + 1 :]]
        cases.append((f"element {position} flipped", old, new, changed, old_root, new_root))
        missing = proof[:position] + proof[position + 1 :]
        cases.append((f"element {position} missing", old, new, missing, old_root, new_root))
    for other_old in range(1, new):
        if other_old != old:
            cases.append(
                (f"old size {other_old}", other_old, new, proof, ROOTS_64[other_old], new_root)
            )
    for other_new in range(old + 1, 65):
        if other_new != new:
            cases.append(
                (f"new size {other_new}", old, other_new, proof, old_root, ROOTS_64[other_new])
            )
    return cases


def test_every_consistency_tamper_up_to_32_is_rejected() -> None:
    for new in range(2, 33):
        for old in range(1, new):
            proof = consistency_proof(old, new, STORE_64.read)
            for (
                description,
                bad_old,
                bad_new,
                bad_proof,
                bad_old_root,
                bad_new_root,
            ) in consistency_tampers(old, new, proof):
                with pytest.raises(ProofError):
                    verify_consistency(bad_old, bad_new, bad_proof, bad_old_root, bad_new_root)
                    pytest.fail(f"{description} accepted for {old} -> {new}")


def test_degenerate_consistency_cases() -> None:
    root = ROOTS_64[5]
    verify_consistency(5, 5, [], root, root)
    verify_consistency(0, 5, [], EMPTY_ROOT, root)
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    for args in [
        (5, 5, [root], root, root),  # equal sizes need an empty proof
        (5, 5, [], root, ROOTS_64[4]),  # one size, two roots: a fork
        (0, 5, [root], EMPTY_ROOT, root),  # nothing to prove from the empty tree
        (0, 5, [], root, root),  # the empty tree has one root
        (6, 5, [], root, root),  # time travel
        (-1, 5, [], root, root),
    ]:
        with pytest.raises(ProofError):
            verify_consistency(*args)


# --- invariants ----------------------------------------------------------------------------------


def test_generation_rejects_bad_arguments() -> None:
    read = STORE_64.read
    calls: list[Callable[[], object]] = [
        lambda: inclusion_proof(5, 5, read),
        lambda: inclusion_proof(-1, 5, read),
        lambda: inclusion_proof(0, 0, read),
        lambda: consistency_proof(6, 5, read),
        lambda: consistency_proof(-1, 5, read),
        lambda: tree_hash(-1, read),
        lambda: stored_hash_index(0, -1),
        lambda: stored_hash_count(True),
        lambda: node_hash(b"short", HASHES_64[0]),
        lambda: node_hash(HASHES_64[0], HASHES_64[0] + b"x"),
        lambda: root_from_leaf_hashes([b"short"]),
        lambda: new_stored_hashes(0, b"short", read),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()


def test_verification_rejects_malformed_hashes() -> None:
    proof = inclusion_proof(3, 8, STORE_64.read)
    good = (HASHES_64[3], 3, 8, proof, ROOTS_64[8])
    verify_inclusion(*good)
    for bad in [
        (HASHES_64[3][:31], 3, 8, proof, ROOTS_64[8]),
        (HASHES_64[3], 3, 8, proof, ROOTS_64[8] + b"\x00"),
        (HASHES_64[3], 3, 8, [*proof[:2], proof[2][:16]], ROOTS_64[8]),
        (HASHES_64[3], -1, 8, proof, ROOTS_64[8]),
        (HASHES_64[3], 0, 0, [], EMPTY_ROOT),
    ]:
        with pytest.raises(ProofError):
            verify_inclusion(*bad)
    with pytest.raises(ProofError):
        verify_consistency(3, 8, [b"\x00" * 31], ROOTS_64[3], ROOTS_64[8])


def test_damaged_storage_is_an_integrity_error() -> None:
    def short(level: int, n: int) -> bytes:
        return STORE_64.read(level, n)[:31]

    with pytest.raises(IntegrityError):
        tree_hash(5, short)
    with pytest.raises(IntegrityError):
        inclusion_proof(0, 5, short)
    with pytest.raises(IntegrityError):
        new_stored_hashes(1, HASHES_64[1], short)


# --- hypothesis: random larger trees -------------------------------------------------------------

BIG_SIZE = 3000
_rng = random.Random(6962)
BIG_LEAVES = [_rng.randbytes(_rng.randrange(0, 80)) for _ in range(BIG_SIZE)]
BIG_HASHES = [leaf_hash(leaf) for leaf in BIG_LEAVES]
BIG_STORE = MemoryHashes(BIG_LEAVES)


def big_root(size: int) -> bytes:
    return root_from_leaf_hashes(BIG_HASHES[:size])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_large_inclusion(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, BIG_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    root = big_root(size)
    proof = inclusion_proof(index, size, BIG_STORE.read)
    assert tree_hash(size, BIG_STORE.read) == root
    verify_inclusion(BIG_HASHES[index], index, size, proof, root)
    cases = inclusion_tampers(BIG_HASHES[index], index, size, proof, root)
    description, leaf, bad_index, bad_size, bad_proof, bad_root = data.draw(
        st.sampled_from(cases), label="tamper"
    )
    with pytest.raises(ProofError):
        verify_inclusion(leaf, bad_index, bad_size, bad_proof, bad_root)
        pytest.fail(f"{description} accepted")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_large_consistency(data: st.DataObject) -> None:
    new = data.draw(st.integers(2, BIG_SIZE), label="new")
    old = data.draw(st.integers(1, new - 1), label="old")
    old_root, new_root = big_root(old), big_root(new)
    proof = consistency_proof(old, new, BIG_STORE.read)
    verify_consistency(old, new, proof, old_root, new_root)
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    changed = [*proof[:position], flip(proof[position]), *proof[position + 1 :]]
    bad_old = data.draw(st.integers(1, new - 1).filter(lambda x: x != old), label="bad old")
    for args in [
        (old, new, changed, old_root, new_root),
        (old, new, proof[:position] + proof[position + 1 :], old_root, new_root),
        (old, new, [*proof, proof[position]], old_root, new_root),
        (bad_old, new, proof, big_root(bad_old), new_root),
        (old, new, proof, old_root, flip(new_root)),
    ]:
        with pytest.raises(ProofError):
            verify_consistency(*args)


@settings(max_examples=80, deadline=None)
@given(leaves=st.lists(st.binary(max_size=40), min_size=0, max_size=70))
def test_stored_hashes_agree_with_reference_for_any_leaves(leaves: list[bytes]) -> None:
    store = MemoryHashes(leaves)
    hashes = [leaf_hash(leaf) for leaf in leaves]
    assert len(store.table) == stored_hash_count(len(leaves))
    for size in range(len(leaves) + 1):
        assert tree_hash(size, store.read) == root_from_leaf_hashes(hashes[:size])


@settings(max_examples=40, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=8), min_size=1, max_size=40, unique=True),
    data=st.data(),
)
def test_proofs_match_rfc_definitions_for_any_leaves(
    leaves: list[bytes], data: st.DataObject
) -> None:
    read: HashReader = MemoryHashes(leaves).read
    hashes = [leaf_hash(leaf) for leaf in leaves]
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    assert inclusion_proof(index, size, read) == rfc_path(index, hashes[:size])
    expected = [] if old == size else rfc_subproof(old, hashes[:size], True)
    assert consistency_proof(old, size, read) == expected


def test_overlong_proofs_fail_at_the_rfc_step() -> None:
    # RFC 9162 stops as soon as the path runs past the root (sn == 0); pin that step.
    proof = inclusion_proof(0, 4, STORE_64.read)
    with pytest.raises(ProofError, match="longer"):
        verify_inclusion(HASHES_64[0], 0, 4, [*proof, HASHES_64[9]], ROOTS_64[4])
    consistency = consistency_proof(3, 4, STORE_64.read)
    with pytest.raises(ProofError, match="longer"):
        verify_consistency(3, 4, [*consistency, HASHES_64[9]], ROOTS_64[3], ROOTS_64[4])
