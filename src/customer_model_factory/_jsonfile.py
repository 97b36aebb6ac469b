"""Deterministic, atomic JSON manifest files.

The bytes written here are the bytes the ledger stores, so ``sha256sum manifest.json`` equals the
manifest's ledger id.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any


class NonFiniteNumberError(ValueError):
    """A manifest holds NaN or an infinity, which JSON cannot represent."""


def find_non_finite(value: Any, where: str = "$") -> str | None:
    """Return the JSON path of the first NaN/infinite float inside ``value``, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            found = find_non_finite(value[key], f"{where}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_non_finite(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None


def manifest_bytes(data: Any) -> bytes:
    """Return the canonical file bytes of a manifest: indent 2, sorted keys, trailing newline.

    Raises NonFiniteNumberError naming the field when a number is NaN or infinite.
    """
    bad = find_non_finite(data)
    if bad is not None:
        raise NonFiniteNumberError(f"{bad}: NaN and infinite numbers cannot be written as JSON")
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, rename.

    Parent directories are created. A reader sees either the old file or the new one, never a
    partial write; the directory is fsynced so the rename survives a crash.
    """
    import tempfile  # here, not at the top: verifying never writes, and tempfile loads shutil,
    # random, bz2 and lzma, which cost a verify command's start-up on a clean interpreter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as canonical manifest JSON, atomically; return the path."""
    return atomic_write_bytes(Path(path), manifest_bytes(data))
