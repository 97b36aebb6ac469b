"""Tests for blob ids and reading blobs: hashing files and streams, and ``BlobReader``."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.ledger import blobs
from customer_model_factory.ledger.blobs import blob_id_of, hash_file, validate_blob_id
from customer_model_factory.ledger.errors import FormatError, IntegrityError

HELLO_ID = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"  # sha256("hello\n")


def test_a_blob_id_is_the_lowercase_hex_sha256_and_nothing_else() -> None:
    assert blob_id_of(b"hello\n") == HELLO_ID == validate_blob_id(HELLO_ID)
    for bad in (HELLO_ID.upper(), HELLO_ID[:-1], HELLO_ID + "0", "g" * 64, "", None, 5):
        with pytest.raises(FormatError):
            validate_blob_id(bad)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=200_000))
def test_hash_file_is_sha256_of_the_whole_file(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("blob") / "blob"
    path.write_bytes(data)
    assert hash_file(path) == hashlib.sha256(data).hexdigest() == blob_id_of(data)


def _read_in(reader: blobs.BlobReader, sizes: list[int]) -> list[bytes]:
    """Read ``reader`` to its end in reads of ``sizes`` (cycled); return the pieces."""
    pieces: list[bytes] = []
    for size in itertools.cycle(sizes):
        piece = reader.read(size)
        if not piece:
            return pieces
        pieces.append(piece)
    raise AssertionError("unreachable")


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=5000),
    sizes=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=6),
)
def test_the_reader_digest_is_sha256_of_the_file_for_any_reads(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, sizes: list[int]
) -> None:
    path = tmp_path_factory.mktemp("blob") / "blob"
    path.write_bytes(data)
    blob_id = blob_id_of(data)
    with blobs.BlobReader(blob_id, io.FileIO(path)) as reader:
        handed_out = b""
        for size in itertools.cycle(sizes):
            piece = reader.read(size)
            if not piece:
                break
            handed_out += piece
            assert reader.hexdigest() == hashlib.sha256(handed_out).hexdigest()
        reader.verify()
    assert handed_out == data and reader.hexdigest() == blob_id
    other = blob_id_of(data + b"!")
    mismatch = f"blob {other}: content hashes to {blob_id}"
    with (
        blobs.BlobReader(other, io.FileIO(path)) as reader,
        pytest.raises(IntegrityError, match=mismatch),
    ):
        _read_in(reader, sizes)
    # Any seekless raw or buffered handle will do, not just a file.
    with blobs.BlobReader(blob_id, io.BytesIO(data)) as reader:
        assert b"".join(_read_in(reader, sizes)) == data


def test_verify_reads_the_rest_and_checks(tmp_path: Path) -> None:
    data = os.urandom(3 * blobs.CHUNK_SIZE + 5)
    path = tmp_path / "blob"
    path.write_bytes(data)
    with blobs.BlobReader(blob_id_of(data), io.FileIO(path)) as reader:
        assert reader.read(10) == data[:10]
        reader.verify()
        reader.verify()  # idempotent once at the end
        assert reader.read(10) == b""


def test_end_of_file_is_final(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"hello\n")
    with blobs.BlobReader(HELLO_ID, io.FileIO(path)) as reader:
        assert reader.read() == b"hello\n"
        with path.open("ab") as handle:
            handle.write(b"appended after the end was read")
        assert reader.read(100) == b""  # never handed out unhashed
        reader.verify()
    path.write_bytes(b"hellO\n")
    with blobs.BlobReader(HELLO_ID, io.FileIO(path)) as reader:
        assert reader.read(100) == b"hellO\n"
        for _ in range(3):  # a failed check is never forgotten
            with pytest.raises(IntegrityError, match=HELLO_ID):
                reader.read(100)
        with pytest.raises(IntegrityError):
            reader.verify()


@pytest.mark.parametrize(("swap", "intact"), [("rewrite", False), ("rename", True)])
def test_a_file_changed_under_an_open_reader(tmp_path: Path, swap: str, intact: bool) -> None:
    # Rewritten in place, the reader hands out other bytes and says so at the end; renamed
    # over, the open handle still reads the blob.
    data = os.urandom(2 * blobs.CHUNK_SIZE + 5)
    other = data[:-1] + bytes([data[-1] ^ 1])
    path = tmp_path / "blob"
    path.write_bytes(data)
    with blobs.BlobReader(blob_id_of(data), io.FileIO(path)) as reader:
        first = reader.read(1000)
        if swap == "rewrite":
            path.write_bytes(other)
        else:
            (tmp_path / "other").write_bytes(other)
            os.replace(tmp_path / "other", path)
        if intact:
            assert first + b"".join(_read_in(reader, [65536])) == data
        else:
            with pytest.raises(IntegrityError):
                _read_in(reader, [65536])


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3000), start=st.integers(min_value=0, max_value=3000))
def test_hash_stream_hashes_from_the_position_to_the_end(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, start: int
) -> None:
    path = tmp_path_factory.mktemp("blob") / "blob"
    path.write_bytes(data)
    expected = blob_id_of(data[start:])
    streams: list[io.RawIOBase | io.BufferedIOBase] = [
        io.BytesIO(data),
        io.FileIO(path),
        path.open("rb"),
    ]
    for stream in streams:
        with stream:
            stream.seek(start)
            assert blobs.hash_stream(stream) == expected
            assert not stream.closed and stream.read() == b""  # read to its end, left open


def test_hash_stream_reads_past_one_chunk(tmp_path: Path) -> None:
    data = os.urandom(2 * blobs.CHUNK_SIZE + 7)
    path = tmp_path / "blob"
    path.write_bytes(data)
    with io.FileIO(path) as stream:
        assert blobs.hash_stream(stream) == hash_file(path) == blob_id_of(data)


class _NonBlocking(io.RawIOBase):
    """A raw stream with nothing available yet: ``readinto`` returns None."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> None:
        return None


def test_hash_stream_refuses_a_non_blocking_stream() -> None:
    with pytest.raises(BlockingIOError):
        blobs.hash_stream(_NonBlocking())


def test_a_malformed_id_is_refused() -> None:
    for bad in ("abc", HELLO_ID.upper()):
        with pytest.raises(FormatError):
            blobs.BlobReader(bad, io.BytesIO(b"hello\n"))
