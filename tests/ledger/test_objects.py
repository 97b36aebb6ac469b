"""Tests for the content-addressed object store and the durable-write helpers it uses."""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import hashlib
import multiprocessing
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger import durable, objects
from customer_model_factory.ledger.blobs import (
    ObjectNotFoundError,
    blob_id_of,
    hash_file,
    validate_blob_id,
)
from customer_model_factory.ledger.errors import FormatError, IntegrityError
from customer_model_factory.ledger.objects import TEMP_PREFIX, ObjectStore

HELLO_ID = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"  # sha256("hello\n")


def _corrupt(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


def test_id_is_plain_sha256_so_sha256sum_reproduces_it(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    blob_id = store.put(b"hello\n")
    assert blob_id == HELLO_ID
    path = store.path(blob_id)
    assert path == tmp_path / "objects" / "58" / HELLO_ID[2:]
    assert path.read_bytes() == b"hello\n"  # raw: no header, no compression
    out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True)
    assert out.stdout.split()[0] == blob_id


def test_blob_files_are_read_only_and_no_temp_files_remain(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    blob_id = store.put(b"x")
    assert stat.S_IMODE(store.path(blob_id).stat().st_mode) == 0o444
    assert list(store.temp_files()) == []


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=4096))
def test_put_get_round_trip(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    store = ObjectStore(tmp_path_factory.mktemp("objects"))
    blob_id = store.put(data)
    assert blob_id == hashlib.sha256(data).hexdigest() == blob_id_of(data)
    assert store.contains(blob_id)
    assert store.get(blob_id) == data
    with store.open(blob_id) as reader:
        assert reader.read() == data


def test_existing_blob_is_not_rewritten(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    blob_id = store.put(b"same")
    before = store.path(blob_id).stat()
    assert store.put(b"same") == blob_id
    after = store.path(blob_id).stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_get_detects_a_flipped_byte_and_names_the_id(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    blob_id = store.put(b"evidence")
    _corrupt(store.path(blob_id), b"evidencf")
    with pytest.raises(IntegrityError, match=blob_id):
        store.get(blob_id)


def test_streaming_reader_verifies_at_eof(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    data = os.urandom(3 * 1024 * 1024 + 17)
    blob_id = store.put(data)
    _corrupt(store.path(blob_id), data[:-1] + bytes([data[-1] ^ 1]))
    reader = store.open(blob_id)
    with reader, pytest.raises(IntegrityError, match=blob_id):
        while reader.read(65536):
            pass


def test_streaming_reader_accepts_intact_blob_in_small_reads(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    data = os.urandom(100_001)
    blob_id = store.put(data)
    chunks = []
    with store.open(blob_id) as reader:
        while chunk := reader.read(4096):
            chunks.append(chunk)
    assert b"".join(chunks) == data


def test_missing_blob_raises_not_found(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    with pytest.raises(ObjectNotFoundError):
        store.get(HELLO_ID)
    with pytest.raises(ObjectNotFoundError):
        store.open(HELLO_ID)
    assert not store.contains(HELLO_ID)


@pytest.mark.parametrize(
    "bad",
    ["", "abc", HELLO_ID.upper(), HELLO_ID[:-1] + "g", "../" + HELLO_ID[3:], HELLO_ID + "\n"],
)
def test_invalid_ids_are_refused_before_touching_the_filesystem(tmp_path: Path, bad: str) -> None:
    store = ObjectStore(tmp_path / "does-not-exist")
    with pytest.raises(FormatError):
        validate_blob_id(bad)
    for call in (store.path, store.contains, store.get, store.open):
        with pytest.raises(FormatError):
            call(bad)
    assert not (tmp_path / "does-not-exist").exists()


def test_put_file_streams_and_matches_put(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(5 * 1024 * 1024 + 3)
    source.write_bytes(data)
    store = ObjectStore(tmp_path / "objects")
    blob_id = store.put_file(source)
    assert blob_id == hash_file(source) == blob_id_of(data)
    assert store.get(blob_id) == data
    assert store.put(data) == blob_id


def test_iter_ids_lists_blobs_sorted_and_skips_strays(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    ids = {store.put(bytes([i])) for i in range(20)}
    (tmp_path / "README").write_text("not a blob")
    fanout = store.path(next(iter(ids))).parent
    (fanout / f"{TEMP_PREFIX}leftover").write_bytes(b"partial")
    assert list(store.iter_ids()) == sorted(ids)
    assert list(store.temp_files()) == [fanout / f"{TEMP_PREFIX}leftover"]


def test_batch_is_invisible_until_commit(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    batch = store.batch()
    ids = [batch.put(f"blob {i}".encode()) for i in range(50)]
    assert len(batch) == 50
    assert all(batch.contains(i) for i in ids)
    assert not any(store.contains(i) for i in ids)
    # Temp files are written by the I/O threads; temp_paths() waits for the writes in flight.
    assert set(batch.temp_paths()) == set(store.temp_files())
    assert len(list(store.temp_files())) == 50
    assert sorted(batch.commit()) == sorted(ids)
    assert all(store.get(i) == f"blob {n}".encode() for n, i in enumerate(ids))
    assert list(store.temp_files()) == []


def test_batch_deduplicates_and_skips_stored_blobs(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    stored = store.put(b"old")
    with store.batch() as batch:
        assert batch.put(b"old") == stored
        first = batch.put(b"new")
        assert batch.put(b"new") == first
        assert len(batch) == 1
    assert store.get(first) == b"new"


def test_batch_aborts_on_exception(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    with pytest.raises(RuntimeError), store.batch() as batch:
        blob_id = batch.put(b"never stored")
        raise RuntimeError("writer failed")
    assert not store.contains(blob_id)
    assert list(store.temp_files()) == []


def test_batch_put_file_detects_a_file_changing_underneath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"original")
    store = ObjectStore(tmp_path / "objects")
    monkeypatch.setattr(
        "customer_model_factory.ledger.objects.hash_file", lambda path: blob_id_of(b"other")
    )
    with pytest.raises(IntegrityError, match="changed"):
        store.put_file(source)
    assert list(store.iter_ids()) == []
    assert list(store.temp_files()) == []


@contextlib.contextmanager
def _busy_io_threads() -> Iterator[list[concurrent.futures.Future[None]]]:
    """Occupy every I/O thread, so that jobs submitted meanwhile wait in the queue.

    Yields the occupying jobs: they run until the block ends (or 30 s pass).
    """
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait(timeout=30)

    holders = [durable.submit(hold) for _ in range(durable.IO_THREADS)]
    for _ in holders:
        assert started.acquire(timeout=30)
    try:
        yield holders
    finally:
        release.set()
        concurrent.futures.wait(holders)


def test_abort_cancels_queued_writes_and_removes_every_temp_file(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"streamed")
    store = ObjectStore(tmp_path / "objects")
    batch = store.batch()
    written = batch.put(b"written before the threads were busy")
    batch.temp_paths()  # waits: this one's temp file exists
    with _busy_io_threads() as holders:
        queued = batch.put(b"queued")  # its job never starts
        streamed = batch.put_file(source)  # its temp file exists, its fsync is queued
        assert len(list(store.temp_files())) == 2
        batch.abort()
        # abort did not wait for the queue to drain (the busy threads are still busy)
        assert not any(holder.done() for holder in holders)
    assert list(store.temp_files()) == []
    assert not any(store.contains(i) for i in (written, queued, streamed))


def test_a_failed_write_fails_the_commit_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_all = objects._write_all

    def failing(fd: int, data: bytes) -> None:
        if data == b"unlucky":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_all(fd, data)

    monkeypatch.setattr(objects, "_write_all", failing)
    store = ObjectStore(tmp_path)
    batch = store.batch()
    ids = [batch.put(b"fine"), batch.put(b"unlucky"), batch.put(b"also fine")]
    with pytest.raises(OSError, match="No space"):
        batch.commit()
    assert list(store.temp_files()) == []
    assert not any(store.contains(i) for i in ids)


def test_put_stores_the_bytes_it_hashed(tmp_path: Path) -> None:
    """The writer thread must not see a caller's later changes to a mutable buffer."""
    store = ObjectStore(tmp_path)
    buffer = bytearray(b"original")
    with store.batch() as batch, _busy_io_threads():
        blob_id = batch.put(buffer)  # type: ignore[arg-type]
        buffer[:] = b"replaced"
    assert blob_id == blob_id_of(b"original")
    assert store.get(blob_id) == b"original"


def test_many_blobs_in_flight_are_bounded_and_all_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(objects, "MAX_IN_FLIGHT_BYTES", 1000)
    store = ObjectStore(tmp_path)
    blobs = [os.urandom(300) for _ in range(200)]
    batch = store.batch()
    ids = [batch.put(blob) for blob in blobs]
    assert batch._in_flight_bytes <= 1000 + 300
    assert sorted(batch.commit()) == sorted(set(ids))
    assert all(store.get(i) == blob for i, blob in zip(ids, blobs, strict=True))
    assert list(store.temp_files()) == []


def test_durable_helpers(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b" / "c"
    parents = durable.make_dirs(nested)
    assert nested.is_dir()
    assert parents == [tmp_path, tmp_path / "a", tmp_path / "a" / "b"]
    assert durable.make_dirs(nested) == []
    target = nested / "file"
    durable.replace_file(target, b"one")
    durable.replace_file(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(nested) == ["file"]
    durable.truncate_file(target, 1)
    assert target.read_bytes() == b"t"
    durable.fsync_paths([target, nested, target])
    with pytest.raises(FileNotFoundError):
        durable.fsync_paths([target, tmp_path / "missing"])


def _fsync_in_child(path: str) -> str:
    durable.fsync_paths([Path(path), Path(path).parent])
    return "done"


def test_fsync_pool_survives_fork(tmp_path: Path) -> None:
    """A forked child must not wait on the parent's fsync threads, which it does not have."""
    target = tmp_path / "f"
    target.write_bytes(b"x")
    durable.fsync_paths([target, tmp_path])  # the parent's pool now exists
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(_fsync_in_child, str(target)).result(timeout=30) == "done"
