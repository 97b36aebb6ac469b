"""Tests for the chain package's lazy re-exports (PEP 562)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import customer_model_factory.chain as chain


def type_checking_imports(source: Path) -> dict[str, str]:
    """Return name -> submodule of the ``if TYPE_CHECKING:`` imports of an ``__init__``."""
    tree = ast.parse(source.read_text())
    guards = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    return {
        alias.name: (node.module or "").lstrip(".")
        for guard in guards
        for node in guard.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_every_export_is_declared_for_the_type_checker_and_in_all() -> None:
    exports = chain._EXPORTS
    assert type_checking_imports(Path(chain.__file__)) == exports
    assert sorted(chain.__all__) == sorted(exports)


@pytest.mark.parametrize("name", chain.__all__)
def test_each_name_is_the_defining_module_object(name: str) -> None:
    module = importlib.import_module(f"customer_model_factory.chain.{chain._EXPORTS[name]}")
    assert getattr(chain, name) is getattr(module, name)


def test_submodules_still_import_through_the_package() -> None:
    from customer_model_factory.chain import kinds

    assert kinds.TRACE_DATASET == "trace_dataset"
    with pytest.raises(AttributeError):
        chain.no_such_name  # noqa: B018


def test_the_verifier_loads_neither_recording_nor_promotion() -> None:
    code = (
        "import sys; from customer_model_factory.chain import verify_release_chain; "
        "print(sorted(m for m in sys.modules if m.startswith('customer_model_factory')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    for absent in ("chain.record", "chain.promote", "pipeline", "trace_files", "ledger.fsck"):
        assert f"customer_model_factory.{absent}'" not in loaded, absent
    assert "customer_model_factory.chain.verify'" in loaded
