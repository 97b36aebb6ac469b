"""Tests for ledger.logstore: framing, durability protocol, crash recovery, damage detection."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger import logstore
from customer_model_factory.ledger.errors import (
    FormatError,
    IntegrityError,
    LedgerError,
    LockError,
)
from customer_model_factory.ledger.logstore import (
    ENTRIES_FILE,
    HASHES_FILE,
    HEAD_SIZE,
    HEADS_FILE,
    LOG_FILES,
    MAX_LEAF_SIZE,
    OFFSETS_FILE,
    LogStore,
    decode_head,
    encode_head,
    frame_leaf,
    unframe_leaf,
)
from customer_model_factory.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    stored_hash_count,
    stored_hash_index,
    verify_consistency,
    verify_inclusion,
)


def leaves_for(count: int, start: int = 0) -> list[bytes]:
    """Distinct leaves shaped like ledger leaf records."""
    return [
        b"cmf-leaf/v1\nkind\n" + b"%064x" % i + b"\n" + b"%064x" % (i * 7) + b"\n"
        for i in range(start, start + count)
    ]


def build(directory: Path, leaves: list[bytes]) -> LogStore:
    """Open a store, append ``leaves`` and sync; the store stays open."""
    store = LogStore(directory)
    for leaf in leaves:
        store.append(leaf)
    store.sync()
    return store


def file_bytes(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in LOG_FILES}


def patch_file(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


# --- pure encodings -------------------------------------------------------------------------------


@given(st.binary(max_size=70_000))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_frame_is_canonical_msgpack_bin(leaf: bytes) -> None:
    if len(leaf) > MAX_LEAF_SIZE:
        with pytest.raises(ValueError):
            frame_leaf(leaf)
        return
    frame = frame_leaf(leaf)
    assert frame == msgpack.packb(leaf, use_bin_type=True)
    assert msgpack.unpackb(frame) == leaf
    assert unframe_leaf(frame) == leaf


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65_535])
def test_frame_boundaries(size: int) -> None:
    leaf = b"x" * size
    assert unframe_leaf(frame_leaf(leaf)) == leaf
    assert frame_leaf(leaf) == msgpack.packb(leaf, use_bin_type=True)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc4",
        b"\xc4\x02a",  # short
        b"\xc4\x01ab",  # trailing byte
        b"\xc5\x00\x01a",  # bin 16 for a 1-byte leaf: not canonical
        b"\xc6\x00\x00\x00\x01a",  # bin 32
        b"\xa1a",  # str, not bin
        b"\x01",
    ],
)
def test_unframe_rejects_other_encodings(frame: bytes) -> None:
    with pytest.raises(FormatError):
        unframe_leaf(frame)


@given(st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32), st.data())
def test_head_round_trip_and_any_flip_is_detected(size: int, root: bytes, data: Any) -> None:
    record = encode_head(size, root)
    assert len(record) == HEAD_SIZE
    assert decode_head(record) == (size, root)
    bit = data.draw(st.integers(0, HEAD_SIZE * 8 - 1))
    damaged = bytearray(record)
    damaged[bit // 8] ^= 1 << (bit % 8)
    assert decode_head(bytes(damaged)) is None
    assert decode_head(record[:-1]) is None


# --- behaviour of a healthy store -----------------------------------------------------------------


def test_create_append_read_prove(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "log"
    leaves = leaves_for(70)
    hashes = [leaf_hash(leaf) for leaf in leaves]
    with LogStore(directory) as store:
        assert (store.size, store.durable_size, store.root()) == (0, 0, EMPTY_ROOT)
        assert [store.append(leaf) for leaf in leaves] == list(range(70))
        assert store.size == 70
        assert store.durable_size == 0
        for size in range(71):
            assert store.root(size) == root_from_leaf_hashes(hashes[:size])
        for index in range(70):
            assert store.leaf(index) == leaves[index]
            assert store.leaf_hash(index) == hashes[index]
            for size in range(index + 1, 71, 7):
                proof = store.inclusion_proof(index, size)
                verify_inclusion(hashes[index], index, size, proof, store.root(size))
        for old in range(71):
            proof = store.consistency_proof(old, 70)
            verify_consistency(old, 70, proof, store.root(old), store.root())
        assert store.stored_hash(6, 0) == root_from_leaf_hashes(hashes[:64])
        store.sync()
        assert store.durable_size == 70
    assert sorted(os.listdir(directory)) == sorted(LOG_FILES)
    sizes = {name: (directory / name).stat().st_size for name in LOG_FILES}
    assert sizes[OFFSETS_FILE] == 70 * 8
    assert sizes[HASHES_FILE] == stored_hash_count(70) * HASH_SIZE
    assert sizes[HEADS_FILE] == HEAD_SIZE
    with LogStore(directory) as again:
        assert again.size == 70
        assert again.root() == root_from_leaf_hashes(hashes)
        assert again.leaf(69) == leaves[69]
        assert again.verify() == []


def test_entries_file_is_concatenated_msgpack(tmp_path: Path) -> None:
    leaves = [b"", b"a", b"x" * 300, *leaves_for(3)]
    build(tmp_path, leaves).close()
    unpacker = msgpack.Unpacker()
    unpacker.feed((tmp_path / ENTRIES_FILE).read_bytes())
    assert list(unpacker) == leaves
    offsets = (tmp_path / OFFSETS_FILE).read_bytes()
    ends = [int.from_bytes(offsets[i : i + 8], "big") for i in range(0, len(offsets), 8)]
    assert ends[-1] == (tmp_path / ENTRIES_FILE).stat().st_size
    stored = (tmp_path / HASHES_FILE).read_bytes()
    for index, leaf in enumerate(leaves):
        position = stored_hash_index(0, index) * HASH_SIZE
        assert stored[position : position + HASH_SIZE] == leaf_hash(leaf)


def test_append_rejects_bad_leaves_without_changing_anything(tmp_path: Path) -> None:
    with LogStore(tmp_path) as store:
        store.append(b"one")
        with pytest.raises(ValueError):
            store.append(b"x" * (MAX_LEAF_SIZE + 1))
        with pytest.raises(TypeError):
            store.append(bytearray(b"mutable"))  # type: ignore[arg-type]
        assert store.size == 1
        assert store.append(b"x" * MAX_LEAF_SIZE) == 1
        assert store.leaf(1) == b"x" * MAX_LEAF_SIZE
        assert store.verify() == []


def test_bounds_are_checked(tmp_path: Path) -> None:
    with build(tmp_path, leaves_for(5)) as store:
        cases: list[tuple[Callable[[], object], type[Exception]]] = [
            (lambda: store.leaf(5), IndexError),
            (lambda: store.leaf(-1), IndexError),
            (lambda: store.leaf_hash(5), IndexError),
            (lambda: store.stored_hash(1, 2), IndexError),  # leaves 4..5: not complete
            (lambda: store.stored_hash(3, 0), IndexError),
            (lambda: store.root(6), ValueError),
            (lambda: store.inclusion_proof(5, 5), ValueError),
            (lambda: store.inclusion_proof(0, 6), ValueError),
            (lambda: store.consistency_proof(4, 6), ValueError),
            (lambda: store.consistency_proof(5, 4), ValueError),
        ]
        for call, error in cases:
            with pytest.raises(error):
                call()
        assert store.stored_hash(2, 0) == store.root(4)
    with pytest.raises(ValueError):
        store.leaf(0)


def test_reads_across_flushed_and_buffered_bytes(tmp_path: Path, monkeypatch: Any) -> None:
    # A tiny flush threshold makes every read cross the boundary between the file and the
    # in-memory buffer at some point.
    monkeypatch.setattr(logstore, "_FLUSH_THRESHOLD", 40)
    leaves = leaves_for(40)
    with LogStore(tmp_path) as store:
        for count, leaf in enumerate(leaves, start=1):
            store.append(leaf)
            assert store.leaf(count - 1) == leaf
            assert store.root() == root_from_leaf_hashes([leaf_hash(x) for x in leaves[:count]])
        assert [store.leaf(i) for i in range(40)] == leaves
        assert store.verify() == []


def test_unsynced_appends_are_invisible_to_other_openers(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(logstore, "_FLUSH_THRESHOLD", 64)  # appends reach the files at once
    writer = build(tmp_path, leaves_for(3))
    for leaf in leaves_for(300, start=3):
        writer.append(leaf)
    assert (tmp_path / OFFSETS_FILE).stat().st_size > 3 * 8  # on disk, but not committed
    reader = LogStore(tmp_path)
    assert reader.size == 3
    assert reader.verify() == []
    reader.close()  # must not cut the writer's uncommitted tail
    writer.sync()
    with LogStore(tmp_path) as again:
        assert again.size == 303
        assert again.verify() == []
    writer.close()


def test_context_manager_commits_only_on_success(tmp_path: Path) -> None:
    with LogStore(tmp_path) as store:
        store.append(b"kept")
    with pytest.raises(RuntimeError), LogStore(tmp_path) as store:
        store.append(b"dropped")
        raise RuntimeError("boom")
    with LogStore(tmp_path) as store:
        assert store.size == 1
        assert store.leaf(0) == b"kept"
        store.append(b"second")
    with LogStore(tmp_path) as store:
        assert [store.leaf(0), store.leaf(1)] == [b"kept", b"second"]


def test_sync_fsyncs_data_before_writing_the_head(tmp_path: Path, monkeypatch: Any) -> None:
    store = build(tmp_path, leaves_for(2))
    inodes = {(tmp_path / name).stat().st_ino: name for name in LOG_FILES}
    events: list[tuple[str, str]] = []
    real_pwrite, real_fsync = os.pwrite, os.fsync

    def pwrite(fd: int, data: Any, offset: int) -> int:
        events.append(("write", inodes.get(os.fstat(fd).st_ino, "?")))
        return real_pwrite(fd, data, offset)

    def fsync(fd: int) -> None:
        events.append(("fsync", inodes.get(os.fstat(fd).st_ino, "?")))
        real_fsync(fd)

    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "fsync", fsync)
    store.append(b"new")
    assert events == []  # buffered
    store.sync()
    head_write = events.index(("write", HEADS_FILE))
    for name in (ENTRIES_FILE, OFFSETS_FILE, HASHES_FILE):
        assert events.index(("fsync", name)) < head_write
    assert events[-1] == ("fsync", HEADS_FILE)
    events.clear()
    store.sync()  # nothing new: no I/O
    assert events == []
    store.close()


def test_creation_fsyncs_the_new_directory_entries(tmp_path: Path, monkeypatch: Any) -> None:
    synced: list[Path] = []
    real = logstore._fsync_dir

    def record(path: Path) -> None:
        synced.append(path)
        real(path)

    monkeypatch.setattr(logstore, "_fsync_dir", record)
    LogStore(tmp_path / "a" / "b").close()
    assert set(synced) == {tmp_path, tmp_path / "a", tmp_path / "a" / "b"}
    synced.clear()
    LogStore(tmp_path / "a" / "b").close()
    assert synced == []


def test_open_and_proofs_cost_a_few_small_reads(tmp_path: Path, monkeypatch: Any) -> None:
    build(tmp_path, leaves_for(2000)).close()
    reads: list[int] = []
    real = os.pread

    def pread(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real(fd, length, offset)

    monkeypatch.setattr(os, "pread", pread)
    store = LogStore(tmp_path)
    # last head, last two offsets, one hash per complete subtree of the root
    assert len(reads) <= 2 + bin(2000).count("1")
    assert sum(reads) < 1024
    reads.clear()
    store.inclusion_proof(1234, 2000)
    assert len(reads) <= 2 * 11
    reads.clear()
    store.leaf(1234)
    assert len(reads) == 3  # offsets pair, frame, stored leaf hash
    store.close()


# --- crash recovery -------------------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_crash_during_sync_recovers_a_committed_state(tmp_path_factory: Any, data: Any) -> None:
    directory = tmp_path_factory.mktemp("crash")
    first, second = leaves_for(5), leaves_for(data.draw(st.integers(1, 40)), start=5)
    build(directory, first).close()
    before = file_bytes(directory)
    build(directory, second).close()
    after = file_bytes(directory)
    # Files only grow, so a crash leaves each at some length between the two states; the head
    # record is written last, after the data files were fsynced. A crash can tear only that
    # one 48-byte record: cut it short, or leave it blank (zero-filled, as XFS does).
    head_complete = data.draw(st.booleans(), label="head record complete")
    for name in LOG_FILES:
        if name == HEADS_FILE:
            if head_complete:
                content = after[name]
            elif data.draw(st.booleans(), label="blank head record"):
                content = before[name] + bytes(HEAD_SIZE)
            else:
                cut = data.draw(st.integers(len(before[name]), len(after[name]) - 1), label=name)
                content = after[name][:cut]
            (directory / name).write_bytes(content)
            continue
        low = len(after[name]) if head_complete else len(before[name])
        length = data.draw(st.integers(low, len(after[name])), label=name)
        garbage = data.draw(st.binary(max_size=20), label=f"{name} garbage")
        (directory / name).write_bytes(after[name][:length] + (b"" if head_complete else garbage))
    expected = first + second if head_complete else first
    with LogStore(directory) as store:
        assert store.size == len(expected)
        assert [store.leaf(i) for i in range(store.size)] == expected
        assert store.verify() == []
        store.append(b"after the crash")
    with LogStore(directory) as store:
        assert store.size == len(expected) + 1
        assert store.leaf(len(expected)) == b"after the crash"
        assert store.verify() == []
    # The torn tails were cut off: the files hold exactly the committed state again.
    assert (directory / OFFSETS_FILE).stat().st_size == (len(expected) + 1) * 8


@pytest.mark.parametrize("tear", ["cut short", "blank"])
def test_torn_first_head_means_empty_log(tmp_path: Path, tear: str) -> None:
    build(tmp_path, leaves_for(3)).close()
    if tear == "cut short":
        os.truncate(tmp_path / HEADS_FILE, 10)
    else:
        (tmp_path / HEADS_FILE).write_bytes(bytes(HEAD_SIZE))
    with LogStore(tmp_path) as store:
        assert store.size == 0
        store.append(b"fresh")
    with LogStore(tmp_path) as store:
        assert store.size == 1
        assert store.leaf(0) == b"fresh"
        assert store.verify() == []


# --- damage that is not a torn tail ---------------------------------------------------------------


DAMAGE = {
    "offsets file shorter than committed": lambda d: os.truncate(d / OFFSETS_FILE, 8 * 10),
    "hash file short in the middle": lambda d: os.truncate(d / HASHES_FILE, HASH_SIZE * 30),
    "offset points past the entries": lambda d: patch_file(
        d / OFFSETS_FILE, 8 * 39, (10**9).to_bytes(8, "big")
    ),
    "last offsets decrease": lambda d: patch_file(
        d / OFFSETS_FILE, 8 * 38, (10**8).to_bytes(8, "big")
    ),
    "entries file truncated": lambda d: os.truncate(d / ENTRIES_FILE, 100),
    "right-edge stored hash flipped": lambda d: patch_file(
        d / HASHES_FILE, stored_hash_index(5, 0) * HASH_SIZE, b"\x00\x01\x02"
    ),
    "last two heads damaged": lambda d: patch_file(
        d / HEADS_FILE, (d / HEADS_FILE).stat().st_size - HEAD_SIZE - 5, b"\xff" * 10
    ),
}


def committed_store(directory: Path) -> list[bytes]:
    """Build a 40-leaf store committed in 4 syncs; return its leaves."""
    leaves = leaves_for(40)
    with LogStore(directory) as store:
        for count, leaf in enumerate(leaves, start=1):
            store.append(leaf)
            if count % 10 == 0:
                store.sync()
    return leaves


@pytest.mark.parametrize("description", sorted(DAMAGE))
def test_damage_is_refused_at_open_and_reported_by_audit(tmp_path: Path, description: str) -> None:
    committed_store(tmp_path)
    before = file_bytes(tmp_path)
    DAMAGE[description](tmp_path)
    damaged = file_bytes(tmp_path)
    assert damaged != before
    with pytest.raises(IntegrityError):
        LogStore(tmp_path)
    assert file_bytes(tmp_path) == damaged  # refusing to open changed nothing
    store, findings = LogStore.open_for_audit(tmp_path)
    try:
        assert findings
        assert all(isinstance(index, int) and message for index, message in findings)
        with pytest.raises(LedgerError):
            store.append(b"no writes in an audit")
        store.verify()  # a full scan of a damaged store reports, never raises
    finally:
        store.close()
    assert file_bytes(tmp_path) == damaged


def test_verify_reports_every_problem_not_just_the_first(tmp_path: Path) -> None:
    committed_store(tmp_path)
    # Entry 3: change one byte of the leaf (its frame stays well-formed).
    offsets = (tmp_path / OFFSETS_FILE).read_bytes()
    start_3 = int.from_bytes(offsets[16:24], "big")
    patch_file(tmp_path / ENTRIES_FILE, start_3 + 5, b"X")
    # Stored interior hash (level 2, n 3), written when leaf 15 was appended.
    patch_file(tmp_path / HASHES_FILE, stored_hash_index(2, 3) * HASH_SIZE, b"\x00" * 4)
    # Entry 20's offset points into the middle of entry 21.
    end_20 = int.from_bytes(offsets[160:168], "big")
    patch_file(tmp_path / OFFSETS_FILE, 160, (end_20 + 3).to_bytes(8, "big"))
    with LogStore(tmp_path) as store:  # the right edge is intact, so it opens
        findings = store.verify()
    indexes = {index for index, _ in findings}
    messages = " | ".join(message for _, message in findings)
    assert 3 in indexes and "leaf 3" in messages
    assert 15 in indexes and "(level 2, n 3)" in messages
    assert 20 in indexes
    # A flipped interior hash fails its own check and its parent's, nothing more.
    assert "(level 3, n 1)" in messages
    assert sum("(level" in message for _, message in findings) == 2


def test_verify_detects_a_rewritten_history(tmp_path: Path) -> None:
    # Rewrite leaf 2 and every stored hash consistently: only the committed heads notice.
    leaves = committed_store(tmp_path)
    rewritten = [*leaves[:2], leaves[2].replace(b"kind", b"KIND"), *leaves[3:]]
    other = tmp_path / "other"
    with LogStore(other) as forged:
        for leaf in rewritten:
            forged.append(leaf)
    for name in (ENTRIES_FILE, OFFSETS_FILE, HASHES_FILE):
        (tmp_path / name).write_bytes((other / name).read_bytes())
    with pytest.raises(IntegrityError):
        LogStore(tmp_path)  # the newest head no longer matches the stored hashes
    store, _ = LogStore.open_for_audit(tmp_path)
    findings = store.verify()
    store.close()
    messages = [message for _, message in findings]
    assert any("committed root at size 10" in message for message in messages)
    assert any("3 more committed roots differ" in message for message in messages)


def test_verify_checks_interior_hashes_against_children(tmp_path: Path) -> None:
    with build(tmp_path, leaves_for(8)) as store:
        level1 = node_hash(store.leaf_hash(0), store.leaf_hash(1))
        assert store.stored_hash(1, 0) == level1
    patch_file(tmp_path / HASHES_FILE, stored_hash_index(1, 0) * HASH_SIZE, b"\xee")
    store, findings = LogStore.open_for_audit(tmp_path)
    assert findings == []  # the root is read from (3, 0), which is intact
    problems = store.verify()
    store.close()
    assert [index for index, _ in problems] == [1, 3]  # (1, 0) itself, and its parent (2, 0)


def test_leaf_reads_are_checked_against_the_stored_hash(tmp_path: Path) -> None:
    build(tmp_path, leaves_for(4)).close()
    offsets = (tmp_path / OFFSETS_FILE).read_bytes()
    patch_file(tmp_path / ENTRIES_FILE, int.from_bytes(offsets[8:16], "big") + 4, b"?")
    with LogStore(tmp_path) as store:
        assert store.leaf(1) == leaves_for(4)[1]
        with pytest.raises(IntegrityError, match="leaf 2"):
            store.leaf(2)
    patch_file(tmp_path / OFFSETS_FILE, 0, (5).to_bytes(8, "big"))  # entry 0 frame cut short
    with LogStore(tmp_path) as store, pytest.raises(IntegrityError, match="leaf 0"):
        store.leaf(0)


def test_a_second_writer_without_the_lock_cannot_overwrite_commits(tmp_path: Path) -> None:
    first = build(tmp_path, [b"zero"])
    second = LogStore(tmp_path)
    first.append(b"one from the first writer")
    first.sync()
    with pytest.raises(LockError), second:
        second.append(b"one from the second writer")
        second.sync()
    first.close()
    with LogStore(tmp_path) as store:
        assert [store.leaf(0), store.leaf(1)] == [b"zero", b"one from the first writer"]
        assert store.verify() == []


# --- a damaged last head record is not a torn write -----------------------------------------------


def test_a_blank_last_head_is_a_torn_write(tmp_path: Path) -> None:
    leaves = committed_store(tmp_path)
    with (tmp_path / HEADS_FILE).open("ab") as heads:
        heads.write(bytes(HEAD_SIZE))  # extended, data never written: what XFS leaves
    with LogStore(tmp_path) as store:
        assert store.size == 40
        store.append(b"after the crash")
    assert (tmp_path / HEADS_FILE).stat().st_size == 5 * HEAD_SIZE  # the blank record was cut
    with LogStore(tmp_path) as store:
        assert [store.leaf(i) for i in range(40)] == leaves
        assert store.verify() == []


@pytest.mark.parametrize("trailing", [b"", b"\x00" * 7])
def test_a_whole_damaged_last_head_is_damage_not_a_crash(tmp_path: Path, trailing: bytes) -> None:
    committed_store(tmp_path)  # four head records: sizes 10, 20, 30, 40
    patch_file(tmp_path / HEADS_FILE, 3 * HEAD_SIZE + 20, b"\x01")
    with (tmp_path / HEADS_FILE).open("ab") as heads:
        heads.write(trailing)  # a torn partial record after it changes nothing
    damaged = file_bytes(tmp_path)
    with pytest.raises(IntegrityError, match="head record 3 is damaged"):
        LogStore(tmp_path)
    store, findings = LogStore.open_for_audit(tmp_path)
    try:
        assert [message for _, message in findings] == [
            "heads: head record 3 is damaged (whole, not torn by a crash)"
        ]
        assert store.size == 30  # the last intact head
        assert any("record 3 is damaged" in message for _, message in store.verify())
    finally:
        store.close()
    assert file_bytes(tmp_path) == damaged


def test_a_blank_last_head_after_a_damaged_one_is_damage(tmp_path: Path) -> None:
    committed_store(tmp_path)
    patch_file(tmp_path / HEADS_FILE, 3 * HEAD_SIZE + 20, b"\x01")
    with (tmp_path / HEADS_FILE).open("ab") as heads:
        heads.write(bytes(HEAD_SIZE))
    with pytest.raises(IntegrityError, match="head record 3 is damaged"):
        LogStore(tmp_path)


def test_a_damaged_only_head_is_damage(tmp_path: Path) -> None:
    build(tmp_path, leaves_for(3)).close()
    patch_file(tmp_path / HEADS_FILE, 10, b"\xff")
    with pytest.raises(IntegrityError, match="head record 0 is damaged"):
        LogStore(tmp_path)
    store, findings = LogStore.open_for_audit(tmp_path)
    assert findings and store.size == 3  # no head to trust: what the files can hold
    store.close()


# --- reads never trust a damaged offset with their memory ----------------------------------------


def test_an_absurd_last_offset_is_reported_and_reads_stay_bounded(tmp_path: Path) -> None:
    """Regression: the audit size used to come from the bad offset, so a read asked the OS for
    ~7e16 bytes and raised MemoryError."""
    committed_store(tmp_path)
    patch_file(tmp_path / OFFSETS_FILE, 8 * 39, (7 * 10**16).to_bytes(8, "big"))
    store, findings = LogStore.open_for_audit(tmp_path)
    try:
        assert any("points past the end" in message for _, message in findings)
        assert store.leaf(38) == leaves_for(40)[38]
        with pytest.raises(IntegrityError, match="leaf 39"):
            store.leaf(39)
        with pytest.raises(IntegrityError):
            store.leaves(0, 40)
        assert any(index == 39 for index, _ in store.verify())
    finally:
        store.close()


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_leaves_reads_a_range_like_leaf_does(tmp_path_factory: Any, data: Any) -> None:
    directory = tmp_path_factory.mktemp("leaves")
    leaves = [*leaves_for(37), b"x" * 300, b""]  # bin 16 and empty frames too
    store = build(directory, leaves)
    store.append(b"buffered, not yet synced")
    start = data.draw(st.integers(0, store.size))
    stop = data.draw(st.integers(start, store.size))
    assert store.leaves(start, stop) == [store.leaf(i) for i in range(start, stop)]
    with pytest.raises(IndexError):
        store.leaves(start, store.size + 1)
    store.close()


def test_leaves_costs_three_reads_and_names_a_damaged_leaf(
    tmp_path: Path, monkeypatch: Any
) -> None:
    build(tmp_path, leaves_for(100)).close()
    offsets = (tmp_path / OFFSETS_FILE).read_bytes()
    patch_file(tmp_path / ENTRIES_FILE, int.from_bytes(offsets[8 * 60 : 8 * 61], "big") + 4, b"?")
    reads: list[int] = []
    real = os.pread

    def pread(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real(fd, length, offset)

    with LogStore(tmp_path) as store:
        monkeypatch.setattr(os, "pread", pread)
        assert store.leaves(10, 60) == leaves_for(100)[10:60]
        assert len(reads) == 3
        with pytest.raises(IntegrityError, match="leaf 61 does not match"):
            store.leaves(50, 90)


@given(st.integers(0, 40), st.integers(0, 2**40))
def test_verify_positions_are_the_stored_hash_index(level: int, n: int) -> None:
    assert logstore._position(level, n) == stored_hash_index(level, n)


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_verify_node_is_the_node_hash(left: bytes, right: bytes) -> None:
    assert logstore._node(left, right) == node_hash(left, right)
