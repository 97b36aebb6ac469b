"""Lazy re-exports for package ``__init__`` modules (PEP 562), written once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of ``package``.

    ``exports`` maps each public name to the submodule (relative to ``package``) defining it;
    that submodule is imported on the name's first access and the value cached in
    ``namespace`` (the package's ``globals()``), so later accesses skip ``__getattr__``.
    """

    def __getattr__(name: str) -> Any:
        """Import the submodule defining the public ``name`` on first access."""
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        """List the package's globals and every lazily exported name."""
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
