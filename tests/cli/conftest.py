"""Fixtures of the CLI tests: no fsync in this process, the demo ledgers built once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_fixtures import DemoLedger, build_demo_ledger


@pytest.fixture(scope="module", autouse=True)
def skip_fsync() -> Iterator[None]:
    """Make ``os.fsync`` a no-op while a CLI test module runs (subprocesses still fsync).

    Durability is the ledger's own tests' concern; here every commit's fsyncs would only cost
    seconds of wall time on a shared machine.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)
        yield


@pytest.fixture(scope="session")
def unpromoted(tmp_path_factory: pytest.TempPathFactory) -> DemoLedger:
    """The demo chain, recorded but not promoted (shared: copy it before changing it)."""
    return build_demo_ledger(tmp_path_factory.mktemp("unpromoted") / "ledger", promote=False)


@pytest.fixture(scope="session")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> DemoLedger:
    """The demo ledger exactly as ``cmf demo`` builds it (shared: copy it before changing it)."""
    return build_demo_ledger(tmp_path_factory.mktemp("promoted") / "ledger", promote=True)


@pytest.fixture
def fresh(unpromoted: DemoLedger, tmp_path: Path) -> DemoLedger:
    """A private, writable copy of the unpromoted demo ledger."""
    return DemoLedger(unpromoted.copy(tmp_path / "ledger"), unpromoted.stages)
