"""Tests for the package's lazy re-exports (PEP 562) of the seed's public names."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import customer_model_factory as package

SOURCE = Path(package.__file__)


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
    exports = package._EXPORTS
    assert type_checking_imports(SOURCE) == exports
    assert sorted(package.__all__) == sorted(exports)
    assert len(set(package.__all__)) == len(package.__all__)


@pytest.mark.parametrize("name", package.__all__)
def test_each_name_is_the_defining_module_object(name: str) -> None:
    module = importlib.import_module(f"customer_model_factory.{package._EXPORTS[name]}")
    assert getattr(package, name) is getattr(module, name)
    assert name in dir(package)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # noqa: B018
    assert not hasattr(package, "verify_release_chain")


def test_importing_the_package_loads_no_submodule() -> None:
    code = (
        "import sys, customer_model_factory as p; "
        "print(sorted(m for m in sys.modules if m.startswith('customer_model_factory')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert loaded.strip() == "['customer_model_factory']"
