"""RFC 6962 Merkle tree hashing, proof generation and RFC 9162 proof verification.

Pure functions. Proofs are generated from *stored complete-subtree hashes*, read through a
``HashReader``, the way Go's ``golang.org/x/mod/sumdb/tlog`` does (``StoredHashes``,
``TreeHash``, ``ProveRecord``, ``ProveTree``): the hash of every complete, power-of-two-sized
subtree is computed once when its last leaf is appended and never changes afterwards, so a root or
a proof costs O(log n) reads however large the log grows.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 literally and needs no tree at all.
Everything here is deterministic and byte-exact; see docs/ledger-format.md section 6.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from .errors import IntegrityError, ProofError

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

HashReader = Callable[[int, int], bytes]
"""``read(level, n)`` returns the stored hash of the complete subtree covering leaves
``[n * 2**level, (n + 1) * 2**level)``; level 0 holds the leaf hashes."""

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string (RFC 6962 section 2.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


# --- hashing (RFC 6962 section 2.1) -------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """Return MTH({d}) = SHA-256(0x00 || data) (RFC 6962 section 2.1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right) for two 32-byte child hashes (RFC 6962 section 2.1)."""
    _require_hash(left, "left child hash")
    _require_hash(right, "right child hash")
    return _checked_node_hash(left, right)


def _checked_node_hash(left: bytes, right: bytes) -> bytes:
    """``node_hash`` of two hashes the caller already checked are 32 bytes (proof verifiers
    check every input once, up front; the running hash is a SHA-256 digest)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the RFC 6962 root of the given leaf hashes by the textbook recursion; O(n).

    The reference implementation that everything stored-hash based is tested against.
    """
    for index, value in enumerate(hashes):
        _require_hash(value, f"leaf hash {index}")
    if not hashes:
        return EMPTY_ROOT
    return _range_root(hashes, 0, len(hashes))


def _range_root(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for a non-empty range, split at the largest power of two below its size."""
    if hi - lo == 1:
        return hashes[lo]
    k = _split_point(hi - lo)
    return node_hash(_range_root(hashes, lo, lo + k), _range_root(hashes, lo + k, hi))


# --- stored hash layout (tlog's StoredHashIndex, Crosby & Wallach section 3.3) -----------------


def stored_hash_index(level: int, n: int) -> int:
    """Return the position of subtree hash (level, n) in the dense append-only hash sequence.

    Leaf ``i``'s hash is followed by the hashes of the subtrees that leaf completes, lowest
    first; this is tlog's ``StoredHashIndex`` in closed form: with m = ((n+1) << level) - 1 (the
    last leaf of the subtree), the position is 2m - popcount(m) + level.
    """
    _require_count(level, "level")
    _require_count(n, "n")
    last_leaf = ((n + 1) << level) - 1
    return 2 * last_leaf - last_leaf.bit_count() + level


def stored_hash_count(size: int) -> int:
    """Return how many stored hashes a tree of ``size`` leaves has: 2*size - popcount(size)."""
    _require_count(size, "size")
    return 2 * size - size.bit_count()


def new_stored_hashes(
    index: int, leaf_hash: bytes, read: HashReader
) -> list[tuple[int, int, bytes]]:
    """Return the (level, n, hash) triples that become known when leaf ``index`` is appended.

    The first is the leaf hash itself at (0, index); then one per trailing 1-bit of ``index``,
    because each completes a subtree with an already stored left sibling (tlog's
    ``StoredHashesForRecordHash``). The triples are in stored-position order, starting at
    ``stored_hash_index(0, index)``. Reads at most log2(index) earlier hashes.
    """
    _require_count(index, "index")
    _require_hash(leaf_hash, "leaf hash")
    hashes = [(0, index, leaf_hash)]
    current, level, n = leaf_hash, 0, index
    while n & 1:
        current = node_hash(_read(read, level, n - 1), current)
        level, n = level + 1, n >> 1
        hashes.append((level, n, current))
    return hashes


# --- roots and proofs from stored hashes (tlog's TreeHash / ProveRecord / ProveTree) ----------


def tree_hash(size: int, read: HashReader) -> bytes:
    """Return the RFC 6962 root of the first ``size`` leaves from at most log2(size)+1 reads."""
    _require_count(size, "size")
    if size == 0:
        return EMPTY_ROOT
    return _subtree_hash(0, size, read)


def inclusion_proof(index: int, size: int, read: HashReader) -> list[bytes]:
    """Return the RFC 6962 audit path for leaf ``index`` in the tree of ``size`` leaves.

    Sibling hashes from the leaf upward (RFC 6962 section 2.1.1, tlog's ``ProveRecord``).
    Raises ValueError unless 0 <= index < size.
    """
    _require_count(index, "index")
    _require_count(size, "size")
    if index >= size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    return _leaf_proof(0, size, index, read)


def _leaf_proof(lo: int, hi: int, index: int, read: HashReader) -> list[bytes]:
    """Audit path of leaf ``index`` within the subtree of leaves [lo, hi), bottom-up."""
    if hi - lo == 1:
        # The verifier holds the leaf hash itself, so the path stops here.
        return []
    k = _split_point(hi - lo)
    if index < lo + k:
        return [*_leaf_proof(lo, lo + k, index, read), _subtree_hash(lo + k, hi, read)]
    return [*_leaf_proof(lo + k, hi, index, read), _subtree_hash(lo, lo + k, read)]


def consistency_proof(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    """Return the RFC 6962 consistency proof from tree size ``old_size`` to ``new_size``.

    RFC 6962 section 2.1.2 (tlog's ``ProveTree``). The proof is empty when the sizes are equal
    or ``old_size`` is 0 (the empty tree is a prefix of every tree). Raises ValueError unless
    0 <= old_size <= new_size.
    """
    _require_count(old_size, "old_size")
    _require_count(new_size, "new_size")
    if old_size > new_size:
        raise ValueError(f"old size {old_size} is larger than new size {new_size}")
    if old_size in (0, new_size):
        return []
    return _tree_proof(0, new_size, old_size, read)


def _tree_proof(lo: int, hi: int, old_size: int, read: HashReader) -> list[bytes]:
    """SUBPROOF(old_size - lo, D[lo:hi], lo == 0) of RFC 6962 section 2.1.2, bottom-up."""
    if old_size == hi:
        # Common ground: a verifier who knows the old root needs nothing for the whole old tree.
        return [] if lo == 0 else [_subtree_hash(lo, hi, read)]
    k = _split_point(hi - lo)
    if old_size <= lo + k:
        return [*_tree_proof(lo, lo + k, old_size, read), _subtree_hash(lo + k, hi, read)]
    return [*_tree_proof(lo + k, hi, old_size, read), _subtree_hash(lo, lo + k, read)]


def _subtree_hash(lo: int, hi: int, read: HashReader) -> bytes:
    """MTH(D[lo:hi]) from stored hashes: the maximal complete subtrees left to right, folded."""
    parts: list[bytes] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo & ((1 << level) - 1):
            raise AssertionError(f"subtree [{lo}, {hi}) does not start on a {1 << level} boundary")
        parts.append(_read(read, level, lo >> level))
        lo += 1 << level
    current = parts[-1]
    for left in reversed(parts[:-1]):
        current = node_hash(left, current)
    return current


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) --------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` proves leaf ``leaf_hash`` at ``index`` in the tree ``(size, root)``.

    RFC 9162 section 2.1.3.2, step by step. Raises ProofError on any failure, including an
    index outside the tree and hashes that are not 32 bytes.
    """
    _check_proof_inputs(proof, leaf_hash=leaf_hash, root=root)
    if index < 0 or size < 0 or index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn, running = index, size - 1, leaf_hash
    for element in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            running = _checked_node_hash(element, running)
            # On the right edge the next sibling may be several levels up: skip the levels
            # where this node has no sibling.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            running = _checked_node_hash(running, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    if running != root:
        raise ProofError("inclusion proof does not lead to the expected root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that ``proof`` proves the tree ``(old_size, old_root)`` a prefix of the new one.

    RFC 9162 section 2.1.4.2, step by step. Equal sizes need an empty proof and equal roots;
    old size 0 needs an empty proof and ``old_root == EMPTY_ROOT``. Raises ProofError on any
    failure, including sizes out of order and hashes that are not 32 bytes.
    """
    _check_proof_inputs(proof, old_root=old_root, new_root=new_root)
    if old_size < 0 or new_size < old_size:
        raise ProofError(f"tree sizes out of order: old {old_size}, new {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        if old_root != EMPTY_ROOT:
            raise ProofError("the root of the empty tree is not SHA-256 of the empty string")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is itself a complete subtree of the new one, so its root is the seed.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_running = new_running = path[0]
    for element in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            old_running = _checked_node_hash(element, old_running)
            new_running = _checked_node_hash(element, new_running)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_running = _checked_node_hash(new_running, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the root")
    if old_running != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if new_running != new_root:
        raise ProofError("consistency proof does not lead to the new root")


# --- invariants ----------------------------------------------------------------------------------


def _split_point(count: int) -> int:
    """Return k, the largest power of two strictly less than ``count`` (``count`` >= 2)."""
    if count < 2:
        raise AssertionError(f"cannot split a range of {count} leaves")
    return 1 << ((count - 1).bit_length() - 1)


def _read(read: HashReader, level: int, n: int) -> bytes:
    """Read stored hash (level, n) and insist that it is 32 bytes (else storage is damaged)."""
    value = read(level, n)
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise IntegrityError(f"stored hash (level {level}, n {n}) is not {HASH_SIZE} bytes")
    return value


def _require_hash(value: object, what: str) -> None:
    """Raise ValueError unless ``value`` is exactly 32 bytes."""
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")


def _require_count(value: object, what: str) -> None:
    """Raise ValueError unless ``value`` is a non-negative int (bools are not counts)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")


def _check_proof_inputs(proof: Sequence[bytes], **hashes: bytes) -> None:
    """Raise ProofError unless every named hash and every proof element is 32 bytes."""
    for name, value in hashes.items():
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ProofError(f"{name} must be {HASH_SIZE} bytes")
    for position, element in enumerate(proof):
        if not isinstance(element, bytes) or len(element) != HASH_SIZE:
            raise ProofError(f"proof element {position} must be {HASH_SIZE} bytes")
