"""Chain findings: what verification reports, as data, and the error that carries them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._frozen import frozen

ERROR = "error"
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)


@frozen
class ChainFinding:
    """One verification result: a stable ``code``, a severity and where it was found.

    ``blob_id``, ``kind`` and ``index`` name the object (blob id, record kind, log index) when
    the finding is about one; they stay empty / None for chain-wide findings.
    """

    code: str
    severity: str
    message: str
    blob_id: str = ""
    kind: str = ""
    index: int | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"ChainFinding.severity: {self.severity!r} is not one of {SEVERITIES}")
        if not self.code:
            raise ValueError("ChainFinding.code: must not be empty")

    @property
    def blocking(self) -> bool:
        """Return True when this finding makes a chain fail (severity ``error``)."""
        return self.severity == ERROR

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict with every field (``index`` may be null)."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "blob_id": self.blob_id,
            "kind": self.kind,
            "index": self.index,
        }


def error(
    code: str, message: str, *, blob_id: str = "", kind: str = "", index: int | None = None
) -> ChainFinding:
    """Return a blocking finding (severity ``error``)."""
    return ChainFinding(code, ERROR, message, blob_id=blob_id, kind=kind, index=index)


def codes(findings: Iterable[ChainFinding]) -> list[str]:
    """Return the codes of ``findings`` in order (what tests and the CLI compare)."""
    return [finding.code for finding in findings]


class ChainError(Exception):
    """Recording or promotion was refused; ``findings`` says every reason, nothing was written."""

    def __init__(self, findings: Iterable[ChainFinding]) -> None:
        self.findings: tuple[ChainFinding, ...] = tuple(findings)
        if not self.findings:
            raise ValueError("ChainError needs at least one finding")
        summary = "; ".join(f"{f.code}: {f.message}" for f in self.findings)
        super().__init__(f"refused ({len(self.findings)} finding(s)): {summary}")


@frozen
class Where:
    """Where findings are: a blob id, a record kind and a log index (each may be unknown)."""

    blob_id: str = ""
    kind: str = ""
    index: int | None = None

    def error(self, code: str, message: str) -> ChainFinding:
        """Return a blocking finding placed here."""
        return ChainFinding(
            code, ERROR, message, blob_id=self.blob_id, kind=self.kind, index=self.index
        )
