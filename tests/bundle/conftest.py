"""Fixtures of the bundle tests: no fsync in this process, and the chain tests' builders.

The chain tests' ``chain_fixtures`` module (real keys, a real factory run, real ledgers) is
reused rather than copied; pytest puts only each test file's own directory on ``sys.path``, so
its directory is added here, once, before the bundle fixtures import it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chain"))

from customer_model_factory.bundle import importer

REAL_SYNC_FILESYSTEM = importer.sync_filesystem


@pytest.fixture(scope="module", autouse=True)
def skip_fsync() -> Iterator[None]:
    """Make ``os.fsync`` (and syncfs) no-ops while a bundle test module runs (subprocesses
    still flush).

    Durability is the ledger's own tests' concern; here it would only cost wall time.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)
        # The import's one-barrier flush (syncfs) is skipped the same way; the fixture
        # ``real_sync_filesystem`` hands the real one to the test that calls it.
        patch.setattr(importer, "sync_filesystem", lambda directory: True)
        yield


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A promoted, witnessed ledger built once per session (copy it before changing it)."""
    from bundle_fixtures import build_promoted

    return build_promoted(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def release_bundle(template: Any) -> Any:
    """The template's release exported as a bundle (immutable: never change it)."""
    from bundle_fixtures import export

    return export(template)


@pytest.fixture
def promoted(template: Any, tmp_path: Path) -> Any:
    """A private, writable copy of the template ledger."""
    return template.copy(tmp_path / "sender")


@pytest.fixture
def real_sync_filesystem() -> Any:
    """The importer's real ``sync_filesystem`` (the autouse fixture replaces it)."""
    return REAL_SYNC_FILESYSTEM
