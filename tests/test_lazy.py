"""Tests for the lazy re-exports (PEP 562, ``_lazy.lazy_exports``) of the three packages that
use them: the seed's public names, the chain and the bundle packages."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

PACKAGES = (
    "customer_model_factory",
    "customer_model_factory.chain",
    "customer_model_factory.bundle",
)
EXPORTED = [
    (package, name) for package in PACKAGES for name in importlib.import_module(package).__all__
]


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


def loaded_after(code: str) -> list[str]:
    """Return our modules loaded in a fresh interpreter after running ``code``."""
    probe = (
        f"import sys; {code}; "
        "print(sorted(m for m in sys.modules if m.startswith('customer_model_factory')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    loaded: list[str] = ast.literal_eval(output.strip())
    return loaded


@pytest.mark.parametrize("package_name", PACKAGES)
def test_every_export_is_declared_for_the_type_checker_and_in_all(package_name: str) -> None:
    package: ModuleType = importlib.import_module(package_name)
    exports = package._EXPORTS
    assert package.__file__ is not None
    assert type_checking_imports(Path(package.__file__)) == exports
    assert sorted(package.__all__) == sorted(exports)
    assert len(set(package.__all__)) == len(package.__all__)


@pytest.mark.parametrize(("package_name", "name"), EXPORTED)
def test_each_name_is_the_defining_module_object(package_name: str, name: str) -> None:
    package = importlib.import_module(package_name)
    module = importlib.import_module(f"{package_name}.{package._EXPORTS[name]}")
    assert getattr(package, name) is getattr(module, name)
    assert name in dir(package)


@pytest.mark.parametrize("package_name", PACKAGES)
def test_unknown_names_raise_attribute_error(package_name: str) -> None:
    package = importlib.import_module(package_name)
    with pytest.raises(AttributeError, match=f"module '{package_name}' has no attribute 'nope'"):
        package.nope  # noqa: B018


def test_the_top_package_does_not_export_chain_names() -> None:
    import customer_model_factory as package

    assert not hasattr(package, "verify_release_chain")


def test_submodules_still_import_through_the_package() -> None:
    from customer_model_factory.chain import kinds

    assert kinds.TRACE_DATASET == "trace_dataset"


def test_importing_the_package_loads_no_submodule() -> None:
    loaded = loaded_after("import customer_model_factory")
    assert loaded == ["customer_model_factory", "customer_model_factory._lazy"]


def test_the_verifier_loads_neither_recording_nor_promotion() -> None:
    loaded = loaded_after("from customer_model_factory.chain import verify_release_chain")
    for absent in ("chain.record", "chain.promote", "pipeline", "trace_files", "ledger.fsck"):
        assert f"customer_model_factory.{absent}" not in loaded, absent
    assert "customer_model_factory.chain.verify" in loaded
