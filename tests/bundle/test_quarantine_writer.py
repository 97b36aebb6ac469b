"""Tests for the quarantine writer: its framing, its file creation, and the child process."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.bundle import quarantine_writer as qw
from customer_model_factory.bundle.format import DEFAULT_LIMITS
from customer_model_factory.bundle.quarantine_writer import (
    HEADER_BYTES,
    MAX_BLOB_BYTES,
    FrameError,
    decode_frames,
    decode_header,
    encode_frames,
    encode_header,
    write_blob,
    write_quarantine,
)
from customer_model_factory.ledger.objects import BLOB_MODE

datas = st.lists(st.binary(max_size=300), max_size=8)


def framed(data: bytes) -> tuple[str, bytes]:
    """Return ``(sha256 hex, data)``: a frame as the importer sends it."""
    return hashlib.sha256(data).hexdigest(), data


def stream(frames: list[tuple[str, bytes]], chunk_bytes: int = qw.CHUNK_BYTES) -> bytes:
    """Return the whole framed stream of ``frames``."""
    return b"".join(encode_frames(frames, chunk_bytes))


def boundaries(frames: list[tuple[str, bytes]]) -> list[int]:
    """Return the offsets at which each frame of the stream ends (0 first)."""
    offsets = [0]
    for _, data in frames:
        offsets.append(offsets[-1] + HEADER_BYTES + len(data))
    return offsets


def test_the_constants_are_the_format_and_object_stores_own() -> None:
    assert DEFAULT_LIMITS.max_blob_bytes == MAX_BLOB_BYTES
    assert BLOB_MODE == qw.BLOB_MODE


def test_a_header_is_the_id_then_the_length_big_endian() -> None:
    blob_id = framed(b"abc")[0]
    assert encode_header(blob_id, 3) == blob_id.encode() + b"\0\0\0\0\0\0\0\x03"
    assert decode_header(encode_header(blob_id, MAX_BLOB_BYTES)) == (blob_id, MAX_BLOB_BYTES)


@given(data=st.binary(max_size=64), size=st.integers(0, MAX_BLOB_BYTES))
def test_headers_round_trip(data: bytes, size: int) -> None:
    blob_id = hashlib.sha256(data).hexdigest()
    header = encode_header(blob_id, size)
    assert len(header) == HEADER_BYTES and decode_header(header) == (blob_id, size)


@settings(max_examples=200)
@given(datas=datas, chunk_bytes=st.integers(1, 600))
def test_frames_round_trip_whatever_the_chunking(datas: list[bytes], chunk_bytes: int) -> None:
    frames = [framed(d) for d in datas]
    chunks = list(encode_frames(frames, chunk_bytes))
    canonical = b"".join(encode_header(i, len(d)) + d for i, d in frames)
    assert b"".join(chunks) == canonical
    assert list(decode_frames(io.BytesIO(canonical))) == frames
    # Chunks are large: every one but the last and those around a large blob reaches the size.
    large = sum(len(d) >= chunk_bytes for d in datas)
    assert len(chunks) <= len(canonical) // chunk_bytes + 1 + 2 * large


@settings(max_examples=200)
@given(datas=datas.filter(bool), cut=st.integers(0, 10_000))
def test_a_stream_cut_inside_a_frame_is_refused(datas: list[bytes], cut: int) -> None:
    frames = [framed(d) for d in datas]
    whole = stream(frames)
    cut %= len(whole)
    ends = boundaries(frames)
    if cut in ends:  # a clean end after fewer frames (the importer counts the files)
        assert list(decode_frames(io.BytesIO(whole[:cut]))) == frames[: ends.index(cut)]
        return
    decoded: list[tuple[str, bytes]] = []
    with pytest.raises(FrameError, match="truncated"):
        decoded.extend(decode_frames(io.BytesIO(whole[:cut])))
    assert decoded == frames[: sum(end <= cut for end in ends) - 1]


@pytest.mark.parametrize(
    "bad_id",
    ["A" * 64, "a" * 63, "a" * 65, "g" * 64, "é" + "a" * 63, "../" + "a" * 61, "a" * 32 + " " * 32],
)
def test_an_id_must_be_64_lowercase_hex_digits(bad_id: str) -> None:
    with pytest.raises(FrameError, match="not a blob id"):
        encode_header(bad_id, 1)
    raw = bad_id.encode("utf-8")[:64].ljust(64, b"a")
    if raw.translate(None, b"0123456789abcdef"):
        with pytest.raises(FrameError, match="not a blob id"):
            decode_header(raw + b"\0" * 8)


def test_a_length_above_the_bound_is_refused_before_any_data_is_read() -> None:
    blob_id, _ = framed(b"")
    with pytest.raises(FrameError, match="at most"):
        encode_header(blob_id, MAX_BLOB_BYTES + 1)
    with pytest.raises(FrameError, match="at most"):
        encode_header(blob_id, -1)
    claim = blob_id.encode() + (MAX_BLOB_BYTES + 1).to_bytes(8, "big")
    with pytest.raises(FrameError, match="at most"):
        list(decode_frames(io.BytesIO(claim + b"x" * 100)))
    with pytest.raises(FrameError, match="at most"):
        decode_header(blob_id.encode() + b"\xff" * 8)


def test_data_that_does_not_hash_to_its_id_is_refused() -> None:
    good = framed(b"first")
    lying = encode_header(framed(b"other")[0], 5) + b"third"
    with pytest.raises(FrameError, match="does not hash"):
        list(decode_frames(io.BytesIO(stream([good]) + lying)))


def test_a_large_blob_is_yielded_whole_after_its_header() -> None:
    small, large = framed(b"s" * 10), framed(b"L" * 100)
    chunks = list(encode_frames([small, large, small], chunk_bytes=100))
    assert chunks[1] is large[1]  # never copied
    assert chunks[0] == encode_header(small[0], 10) + small[1] + encode_header(large[0], 100)


# --- creating the files ---------------------------------------------------------------------


def test_write_blob_creates_a_read_only_new_file(tmp_path: Path) -> None:
    blob_id, data = framed(b"payload" * 1000)
    fd = qw.open_directory(str(tmp_path))
    try:
        write_blob(fd, blob_id, data)
        assert (tmp_path / blob_id).read_bytes() == data
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE((tmp_path / blob_id).stat().st_mode) == BLOB_MODE & ~umask
        with pytest.raises(FileExistsError):
            write_blob(fd, blob_id, b"other")
        assert (tmp_path / blob_id).read_bytes() == data
        # A planted symbolic link is never followed, even a dangling one.
        other, _ = framed(b"other")
        (tmp_path / other).symlink_to(tmp_path / "target")
        with pytest.raises(FileExistsError):
            write_blob(fd, other, b"other")
        assert not (tmp_path / "target").exists()
        with pytest.raises(FrameError):
            write_blob(fd, "../" + blob_id[3:], data)
    finally:
        os.close(fd)


def test_write_quarantine_stops_at_the_first_bad_frame(tmp_path: Path) -> None:
    frames = [framed(b"one"), framed(b"two")]
    bad = encode_header(framed(b"x")[0], 1) + b"y"
    with pytest.raises(FrameError, match="does not hash"):
        write_quarantine(str(tmp_path), io.BytesIO(stream(frames) + bad + stream([framed(b"3")])))
    assert sorted(os.listdir(tmp_path)) == sorted(i for i, _ in frames)
    with pytest.raises(NotADirectoryError):
        write_quarantine(str(tmp_path / frames[0][0]), io.BytesIO(b""))


# --- the child process ------------------------------------------------------------------------


def run_child(
    arguments: list[str], stdin: bytes, *, as_module: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run the writer by module name, or by file without site-packages as the importer does."""
    module = ["-m", "customer_model_factory.bundle.quarantine_writer"]
    target = module if as_module else ["-S", qw.__file__]
    return subprocess.run(
        [sys.executable, "-I", *target, *arguments],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("as_module", [True, False])
def test_the_child_writes_every_frame_and_exits_0(tmp_path: Path, as_module: bool) -> None:
    frames = [framed(bytes([n]) * n) for n in range(50)] + [framed(b"z" * (3 << 20))]
    done = run_child([str(tmp_path)], stream(frames), as_module=as_module)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert sorted(os.listdir(tmp_path)) == sorted(i for i, _ in frames)
    assert all((tmp_path / i).read_bytes() == d for i, d in frames)


def failures(tmp_path: Path) -> list[tuple[list[str], bytes, str]]:
    """Command lines and inputs the child must refuse, with what its one line says."""
    good = framed(b"good")
    squatted = framed(b"squatted")
    (tmp_path / squatted[0]).write_bytes(b"")
    directory = str(tmp_path)
    return [
        ([directory], stream([good])[:-1], "truncated frame"),
        ([directory], stream([good])[: HEADER_BYTES - 1], "truncated frame header"),
        ([directory], b"A" * 64 + b"\0" * 8, "not a blob id"),
        ([directory], good[0].encode() + b"\x7f" + b"\0" * 7, "at most"),
        ([directory], encode_header(good[0], 3) + b"bad", "does not hash"),
        ([directory], stream([squatted]), "FileExistsError"),
        ([str(tmp_path / "missing")], b"", "FileNotFoundError"),
        ([], b"", "usage"),
        ([directory, directory], b"", "usage"),
    ]


@pytest.mark.parametrize("as_module", [True, False])
def test_every_failure_is_one_line_and_exit_1(tmp_path: Path, as_module: bool) -> None:
    for arguments, stdin, says in failures(tmp_path):
        done = run_child(arguments, stdin, as_module=as_module)
        message = done.stderr.decode()
        assert done.returncode == 1, (arguments, message)
        assert len(message.splitlines()) == 1 and says in message, message
        assert "Traceback" not in message and done.stdout == b""


def test_importing_the_writer_loads_nothing_heavy() -> None:
    probe = (
        "import sys, customer_model_factory.bundle.quarantine_writer; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('customer_model_factory', 'msgpack', 'cryptography', 'click')))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [
        "['customer_model_factory',",
        "'customer_model_factory._lazy',",
        "'customer_model_factory.bundle',",
        "'customer_model_factory.bundle.quarantine_writer']",
    ]
