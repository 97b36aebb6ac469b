"""The release bundle container: one msgpack file, canonical, bounded before anything is allocated.

A bundle carries what verifying one release needs (docs/bundle-format.md): the release gate's
blob id, the log's signed checkpoint (with cosignatures), the log entries (leaf records with
their inclusion proofs under that checkpoint), the blobs those entries name (manifests,
envelopes, trust policies), the ids of blobs deliberately left out (a trace dataset exported
``--without-data``), and optionally a consistency proof from an older tree size.

msgpack is only the container. Everything hashed or signed inside (blobs, leaves, envelopes,
the checkpoint note) is carried as the exact bytes the ledger hashed or signed, never re-encoded.
A bundle has exactly one encoding: a reader re-encodes what it decoded and refuses any input that
differs (reordered or duplicated parts, wider integers, another msgpack spelling).

A bundle is untrusted input. ``decode_bundle`` bounds the file size, every string, binary and
array length, the map sizes and the nesting depth before msgpack allocates anything; then it
checks the structure (``Bundle.__post_init__``): ids derived from the bytes, parts sorted and
unique, every blob referenced, every reference present. Any problem is one
``BundleFormatError`` naming it.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type hints

from .._frozen import frozen
from .._jsonfile import atomic_write_bytes
from ..ledger.blobs import BLOB_ID_PATTERN
from ..ledger.checkpoint import Checkpoint
from ..ledger.errors import FormatError
from ..ledger.note import parse_note
from ..ledger.records import LeafRecord

FORMAT = "cmf-bundle/v1"
TRACE_DATASET = "trace_dataset"  # the only kind whose bytes a bundle may leave out

HASH_SIZE = 32
MAX_PROOF_HASHES = 64  # an inclusion proof in a tree of < 2^63 leaves has at most 63 hashes
MAX_CONSISTENCY_HASHES = 128  # a consistency proof has fewer than 2 * 63 hashes
MAX_NOTE_BYTES = 65_536  # a checkpoint with the 100 signatures signed-note allows fits easily
MAX_LEAF_BYTES = 65_535  # the log's own limit (tlog-tiles entry size)
MAX_STRING_CHARS = 64  # the longest string in a bundle is a 64-hex blob id

# Top-level map members, in their one canonical order.
KEYS = ("format", "release", "checkpoint", "entries", "blobs", "omitted", "consistency")


class BundleFormatError(FormatError):
    """The bytes are not a well-formed ``cmf-bundle/v1`` file (malformed, truncated, oversized)."""


@frozen
class Limits:
    """Upper bounds a reader enforces before allocating (all configurable, all positive).

    ``max_bytes`` bounds the whole file, ``max_blob_bytes`` any one blob, ``max_blobs`` and
    ``max_entries`` the part counts. Whatever the limits, no count may exceed the file length
    (each element costs at least one byte), so allocation stays proportional to the input.
    """

    max_bytes: int = 1 << 30
    max_blob_bytes: int = 1 << 30
    max_blobs: int = 1_000_000
    max_entries: int = 1_000_000

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_blob_bytes", "max_blobs", "max_entries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name}: expected a positive integer, got {value!r}")


DEFAULT_LIMITS = Limits()


@frozen
class BundleEntry:
    """One log entry: its index, its leaf record, and its inclusion proof under the checkpoint."""

    index: int
    record: LeafRecord
    proof: tuple[bytes, ...]

    @property
    def leaf(self) -> bytes:
        """The exact leaf bytes the log hashed (docs/ledger-format.md section 5)."""
        return self.record.to_bytes()


@frozen
class Consistency:
    """An RFC 9162 consistency proof from ``(old_size, old_root)`` to the bundle's checkpoint.

    ``old_root`` is the root of the exporting log's first ``old_size`` leaves. A receiver that
    accepted a checkpoint of ``old_size`` compares it with its own root: equal and the proof
    verifies means the new checkpoint extends what it holds; different is a proven fork.
    """

    old_size: int
    old_root: bytes
    proof: tuple[bytes, ...]


@frozen(eq=False)
class Bundle:
    """A decoded, structurally valid bundle. Construction checks every structural invariant.

    ``blobs`` holds the blob bytes sorted by blob id (each id is computed here, never read
    from the file); ``blob`` looks one up. Signatures, proofs and the chain are NOT checked
    here: that is ``bundle.verify``.
    """

    release: str
    checkpoint: bytes
    entries: tuple[BundleEntry, ...]
    blobs: tuple[bytes, ...]
    omitted: tuple[str, ...] = ()
    consistency: Consistency | None = None
    _by_id: Mapping[str, bytes] = field(init=False, repr=False)
    _checkpoint: Checkpoint = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _require_id(self.release, "release")
        object.__setattr__(self, "_checkpoint", _parse_checkpoint(self.checkpoint))
        _check_entries(self.entries, self._checkpoint.size)
        object.__setattr__(self, "_by_id", _index_blobs(self.blobs))
        _check_omitted(self.omitted, self._by_id)
        _check_references(self.entries, self._by_id, self.omitted)
        if self.consistency is not None:
            _check_consistency(self.consistency, self._checkpoint.size)

    @property
    def claimed_checkpoint(self) -> Checkpoint:
        """The checkpoint text as written (origin, size, root), NOT yet signature-verified."""
        return self._checkpoint

    @property
    def blob_ids(self) -> tuple[str, ...]:
        """The ids of the blobs carried, ascending."""
        return tuple(self._by_id)

    def blob(self, blob_id: str) -> bytes | None:
        """Return the bytes of ``blob_id`` (hash-true by construction), or None if not carried."""
        return self._by_id.get(blob_id)


# --- structure checks (pure) ------------------------------------------------------------------


def _require_id(value: object, what: str) -> str:
    """Return ``value`` if it is a 64-lowercase-hex id, else BundleFormatError."""
    if not isinstance(value, str) or BLOB_ID_PATTERN.fullmatch(value) is None:
        raise BundleFormatError(f"{what}: not a blob id (64 lowercase hex): {str(value)[:80]!r}")
    return value


def _require_count(value: object, what: str) -> int:
    """Return ``value`` if it is a non-negative int (bool refused), else BundleFormatError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BundleFormatError(f"{what}: expected a non-negative integer, got {value!r}")
    return value


def _require_hashes(value: object, limit: int, what: str) -> tuple[bytes, ...]:
    """Return ``value`` as a tuple of 32-byte hashes (at most ``limit``), else the error."""
    if not isinstance(value, list | tuple):
        raise BundleFormatError(f"{what}: expected an array of hashes")
    if len(value) > limit:
        raise BundleFormatError(f"{what}: {len(value)} hashes, at most {limit} allowed")
    for position, item in enumerate(value):
        if not isinstance(item, bytes) or len(item) != HASH_SIZE:
            raise BundleFormatError(f"{what}[{position}]: expected a {HASH_SIZE}-byte hash")
    return tuple(value)


def _parse_checkpoint(data: object) -> Checkpoint:
    """Return the (unverified) checkpoint a signed-note byte string carries."""
    if not isinstance(data, bytes):
        raise BundleFormatError("checkpoint: expected the signed note as bytes")
    if len(data) > MAX_NOTE_BYTES:
        raise BundleFormatError(f"checkpoint: {len(data)} bytes, at most {MAX_NOTE_BYTES}")
    try:
        return Checkpoint.from_text(parse_note(data).text)
    except FormatError as exc:
        raise BundleFormatError(f"checkpoint: {exc}") from None


def _check_entries(entries: object, tree_size: int) -> None:
    """Entries: a tuple of BundleEntry, indices strictly increasing and below the tree size."""
    if not isinstance(entries, tuple) or not all(isinstance(e, BundleEntry) for e in entries):
        raise BundleFormatError("entries: expected a tuple of BundleEntry")
    previous = -1
    for entry in entries:
        _require_count(entry.index, "entry index")
        if entry.index <= previous:
            raise BundleFormatError(
                f"entries: index {entry.index} after {previous} (entries must be in strictly "
                "increasing log order, each once)"
            )
        if entry.index >= tree_size:
            raise BundleFormatError(
                f"entry {entry.index}: beyond the checkpoint's tree size {tree_size}"
            )
        if not isinstance(entry.record, LeafRecord):
            raise BundleFormatError(f"entry {entry.index}: record must be a LeafRecord")
        _require_hashes(entry.proof, MAX_PROOF_HASHES, f"entry {entry.index} proof")
        previous = entry.index


def _index_blobs(blobs: object) -> dict[str, bytes]:
    """Return id -> bytes, requiring the blobs sorted by their (computed) ids, each once."""
    if not isinstance(blobs, tuple) or not all(isinstance(b, bytes) for b in blobs):
        raise BundleFormatError("blobs: expected a tuple of byte strings")
    by_id: dict[str, bytes] = {}
    previous = ""
    for data in blobs:
        blob_id = hashlib.sha256(data).hexdigest()
        if blob_id <= previous:
            raise BundleFormatError(
                f"blobs: blob {blob_id} after {previous} (blobs must be sorted by id, each once)"
            )
        by_id[blob_id] = data
        previous = blob_id
    return by_id


def _check_omitted(omitted: object, carried: Mapping[str, bytes]) -> None:
    """Omitted ids: sorted, unique, valid, and not also carried."""
    if not isinstance(omitted, tuple):
        raise BundleFormatError("omitted: expected a tuple of blob ids")
    previous = ""
    for blob_id in omitted:
        _require_id(blob_id, "omitted blob")
        if blob_id <= previous:
            raise BundleFormatError("omitted: ids must be sorted, each once")
        if blob_id in carried:
            raise BundleFormatError(f"omitted blob {blob_id} is also carried")
        previous = blob_id


def _check_references(
    entries: tuple[BundleEntry, ...], carried: Mapping[str, bytes], omitted: tuple[str, ...]
) -> None:
    """Every entry's envelope is carried, its subject carried or (trace data) omitted, and
    every carried or omitted blob is named by some entry: a bundle holds nothing else."""
    referenced: set[str] = set()
    left_out = set(omitted)
    for entry in entries:
        record = entry.record
        if record.envelope_id not in carried:
            raise BundleFormatError(
                f"entry {entry.index}: its envelope {record.envelope_id} is not in the bundle"
            )
        if record.blob_id in left_out:
            if record.kind != TRACE_DATASET:
                raise BundleFormatError(
                    f"entry {entry.index}: only {TRACE_DATASET} bytes may be omitted, not "
                    f"{record.kind}"
                )
        elif record.blob_id not in carried:
            raise BundleFormatError(
                f"entry {entry.index}: its {record.kind} blob {record.blob_id} is not in the bundle"
            )
        referenced.update((record.blob_id, record.envelope_id))
    for blob_id in (*carried, *omitted):
        if blob_id not in referenced:
            raise BundleFormatError(f"blob {blob_id} is not named by any entry of the bundle")


def _check_consistency(consistency: Consistency, tree_size: int) -> None:
    """The consistency section: an old size within the tree, 32-byte hashes, bounded length."""
    if not isinstance(consistency, Consistency):
        raise BundleFormatError("consistency: expected a Consistency")
    _require_count(consistency.old_size, "consistency old size")
    if consistency.old_size > tree_size:
        raise BundleFormatError(
            f"consistency: old size {consistency.old_size} is beyond the checkpoint's "
            f"tree size {tree_size}"
        )
    _require_hashes((consistency.old_root,), 1, "consistency old root")
    _require_hashes(consistency.proof, MAX_CONSISTENCY_HASHES, "consistency proof")


# --- encoding -----------------------------------------------------------------------------------


def _bin_header(length: int) -> bytes:
    """Return the msgpack bin 8/16/32 header for ``length`` bytes (the shortest, as packb)."""
    if length < 1 << 8:
        return b"\xc4" + length.to_bytes(1, "big")
    if length < 1 << 16:
        return b"\xc5" + length.to_bytes(2, "big")
    if length < 1 << 32:
        return b"\xc6" + length.to_bytes(4, "big")
    raise BundleFormatError(f"a blob of {length} bytes is too large for msgpack")


def encode_parts(bundle: Bundle) -> Iterator[bytes]:
    """Yield the canonical encoding of ``bundle`` in pieces (blobs are yielded, not copied).

    The layout is docs/bundle-format.md section 2: a 7-member map in ``KEYS`` order.
    """
    packer = msgpack.Packer(use_bin_type=True)
    pack = packer.pack
    yield packer.pack_map_header(len(KEYS))
    yield pack("format") + pack(FORMAT)
    yield pack("release") + pack(bundle.release)
    yield pack("checkpoint") + pack(bundle.checkpoint)
    yield pack("entries") + packer.pack_array_header(len(bundle.entries))
    for entry in bundle.entries:
        yield pack([entry.index, entry.leaf, list(entry.proof)])
    yield pack("blobs") + packer.pack_array_header(len(bundle.blobs))
    for data in bundle.blobs:
        yield _bin_header(len(data))
        yield data
    yield pack("omitted") + pack(list(bundle.omitted))
    consistency = bundle.consistency
    yield pack("consistency") + pack(
        None
        if consistency is None
        else [consistency.old_size, consistency.old_root, list(consistency.proof)]
    )


def encode_bundle(bundle: Bundle) -> bytes:
    """Return the canonical bytes of ``bundle``."""
    return b"".join(encode_parts(bundle))


def bundle_id(bundle: Bundle) -> str:
    """Return the bundle id: hex SHA-256 of the canonical bytes (``sha256sum`` of the file)."""
    digest = hashlib.sha256()
    for part in encode_parts(bundle):
        digest.update(part)
    return digest.hexdigest()


def write_bundle(path: Path, bundle: Bundle) -> str:
    """Write ``bundle`` to ``path`` atomically and durably; return its bundle id."""
    data = encode_bundle(bundle)
    atomic_write_bytes(Path(path), data)
    return hashlib.sha256(data).hexdigest()


# --- decoding -----------------------------------------------------------------------------------


def decode_bundle(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Bundle:
    """Decode untrusted bundle bytes; BundleFormatError for anything but a canonical bundle.

    Bounds are enforced before msgpack allocates: file size, string length (64), binary length
    (``max_blob_bytes``), array and map lengths (never more than the input length), no ext
    types. The structure is then checked (``Bundle``) and the input must be byte-identical
    to the canonical re-encoding.
    """
    if not isinstance(data, bytes):
        raise TypeError(f"bundle data must be bytes, got {type(data).__name__}")
    if len(data) > limits.max_bytes:
        raise BundleFormatError(
            f"bundle is {len(data)} bytes, more than the limit of {limits.max_bytes}"
        )
    if not data:
        raise BundleFormatError("bundle is empty")
    try:
        document = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=MAX_STRING_CHARS,
            max_bin_len=min(len(data), limits.max_blob_bytes),
            max_array_len=min(len(data), max(limits.max_blobs, limits.max_entries)),
            max_map_len=len(KEYS),
            max_ext_len=0,
        )
    except msgpack.exceptions.StackError:
        raise BundleFormatError("not a cmf bundle: msgpack nesting is too deep") from None
    except (ValueError, TypeError, msgpack.exceptions.UnpackException) as exc:
        reason = str(exc) or type(exc).__name__
        raise BundleFormatError(f"not a cmf bundle: msgpack: {reason}") from None
    bundle = bundle_from_document(document, limits=limits)
    if not _equal_to_parts(data, encode_parts(bundle)):
        raise BundleFormatError(
            "bundle is not canonically encoded (parts reordered, duplicated or re-encoded)"
        )
    return bundle


def bundle_from_document(document: Any, *, limits: Limits = DEFAULT_LIMITS) -> Bundle:
    """Build a Bundle from a decoded msgpack document, checking every member's type."""
    if not isinstance(document, dict):
        raise BundleFormatError("not a cmf bundle: the top level is not a map")
    found = document.get("format")
    if found != FORMAT:
        raise BundleFormatError(f"unsupported bundle format {found!r} (expected {FORMAT!r})")
    if set(document) != set(KEYS):
        missing = sorted(set(KEYS) - set(document))
        unknown = sorted(set(document) - set(KEYS))
        raise BundleFormatError(f"bundle members: missing {missing}, unknown {unknown}")
    entries = _entries_from(document["entries"], limits)
    blobs = document["blobs"]
    if not isinstance(blobs, list) or not all(isinstance(b, bytes) for b in blobs):
        raise BundleFormatError("blobs: expected an array of binary strings")
    if len(blobs) > limits.max_blobs:
        raise BundleFormatError(f"blobs: {len(blobs)}, at most {limits.max_blobs} allowed")
    omitted = document["omitted"]
    if not isinstance(omitted, list):
        raise BundleFormatError("omitted: expected an array of blob ids")
    return Bundle(
        release=_require_id(document["release"], "release"),
        checkpoint=document["checkpoint"],
        entries=entries,
        blobs=tuple(blobs),
        omitted=tuple(_require_id(item, "omitted blob") for item in omitted),
        consistency=_consistency_from(document["consistency"]),
    )


def _entries_from(value: Any, limits: Limits) -> tuple[BundleEntry, ...]:
    """Parse the entries array: each ``[index, leaf bytes, [proof hashes]]``."""
    if not isinstance(value, list):
        raise BundleFormatError("entries: expected an array")
    if len(value) > limits.max_entries:
        raise BundleFormatError(f"entries: {len(value)}, at most {limits.max_entries} allowed")
    entries: list[BundleEntry] = []
    for position, item in enumerate(value):
        if not isinstance(item, list) or len(item) != 3:
            raise BundleFormatError(f"entries[{position}]: expected [index, leaf, proof]")
        index, leaf, proof = item
        _require_count(index, f"entries[{position}] index")
        if not isinstance(leaf, bytes) or len(leaf) > MAX_LEAF_BYTES:
            raise BundleFormatError(f"entries[{position}] leaf: expected at most 65535 bytes")
        try:
            record = LeafRecord.from_bytes(leaf)
        except FormatError as exc:
            raise BundleFormatError(f"entries[{position}]: {exc}") from None
        hashes = _require_hashes(proof, MAX_PROOF_HASHES, f"entries[{position}] proof")
        entries.append(BundleEntry(index, record, hashes))
    return tuple(entries)


def _consistency_from(value: Any) -> Consistency | None:
    """Parse the consistency member: nil or ``[old size, old root, [proof hashes]]``."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 3:
        raise BundleFormatError("consistency: expected nil or [old size, old root, proof]")
    old_size, old_root, proof = value
    (root,) = _require_hashes([old_root], 1, "consistency old root")
    return Consistency(
        _require_count(old_size, "consistency old size"),
        root,
        _require_hashes(proof, MAX_CONSISTENCY_HASHES, "consistency proof"),
    )


def _equal_to_parts(data: bytes, parts: Iterable[bytes]) -> bool:
    """Return True if the concatenation of ``parts`` is exactly ``data`` (no copy is made)."""
    offset = 0
    for part in parts:
        # bytes.startswith at an offset is a memcmp; slicing a memoryview compares per item.
        if not data.startswith(part, offset):
            return False
        offset += len(part)
    return offset == len(data)


def read_bundle(path: Path, *, limits: Limits = DEFAULT_LIMITS) -> tuple[Bundle, str]:
    """Read and decode the bundle file at ``path``; return it and its bundle id.

    Only a regular file is read, and never more than ``limits.max_bytes`` + 1 bytes of it.
    """
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BundleFormatError(f"{path}: not a regular file")
        if info.st_size > limits.max_bytes:
            raise BundleFormatError(
                f"{path}: {info.st_size} bytes, more than the limit of {limits.max_bytes}"
            )
        # Ask for the size fstat saw (+ 1 to notice growth) first: read(n) allocates n bytes up
        # front, and max_bytes is a gigabyte. A file that grew is read on to the same bound.
        data = handle.read(info.st_size + 1)
        if len(data) > info.st_size:
            data += handle.read(limits.max_bytes + 1 - len(data))
    # The bundle id is hashed on a second thread while the bundle is decoded (which hashes
    # every blob): hashlib releases the GIL, and both read the same immutable bytes.
    whole = hashlib.sha256()
    hasher = threading.Thread(target=whole.update, args=(data,), name="bundle-id")
    hasher.start()
    try:
        bundle = decode_bundle(data, limits=limits)
    except BundleFormatError as exc:
        raise BundleFormatError(f"{path}: {exc}") from None
    finally:
        hasher.join()
    return bundle, whole.hexdigest()
