"""``cmf verify`` (the whole ledger and its trust) and ``cmf fsck`` (storage integrity only)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    common_options,
    emit_json,
    jobs_option,
    now,
    print_findings,
    trust_json,
    trust_line,
    trust_options,
    warn_if_first_use,
)

if TYPE_CHECKING:
    from ..ledger.store import Ledger

_JOBS = jobs_option("the per-entry checks", ", and never more than the ledger has work for")


def _open_for_audit(ledger_dir: Path) -> Ledger:
    """Open the ledger so that damage becomes findings instead of an error."""
    from ..ledger.store import Ledger

    return Ledger.open(ledger_dir, audit=True)


def _announce(size: int) -> None:
    """Say on a terminal's stderr that the (possibly long) check has started."""
    if sys.stderr.isatty():
        click.echo(f"checking {size} log entries and every blob...", err=True)


@click.command()
@trust_options
@_JOBS
@common_options
def verify(
    trust_file: Path | None,
    as_of: datetime | None,
    jobs: int,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Check the whole ledger: fsck, every record's bindings to its parents (trace rows
    re-validated), the trust-policy chain, that the log key is trusted, and that every record
    is signed by a threshold of unrevoked keys holding its role.

    The policy chain is walked from --trust (default: the ledger's first policy, trust on first
    use) as of --as-of. Exit 1 on any finding.
    """
    from ..chain.findings import ChainFinding
    from ..ledger.errors import LedgerError
    from ..pipeline import binding_findings, fsck_findings, resolve_trust, trust_findings

    moment = as_of or now()
    with _open_for_audit(ledger_dir) as ledger:
        _announce(ledger.size)
        findings = fsck_findings(ledger, jobs=jobs)
        findings.extend(binding_findings(ledger))
        source, trusted = "", ""
        try:
            trust = resolve_trust(ledger, trust_file)
            source, trusted = trust_line(trust), trust_json(trust)
            warn_if_first_use(trust, as_json)
            findings.extend(trust_findings(ledger, trust, moment))
        except LedgerError as exc:
            findings.append(ChainFinding("policy_unreadable", "error", str(exc)))
        size = ledger.size
    ok = not findings
    if as_json:
        emit_json(
            {
                "ok": ok,
                "size": size,
                "as_of": moment.isoformat(),
                "trust": trusted,
                "findings": [finding.to_dict() for finding in findings],
            }
        )
    else:
        if source:
            click.echo(source)
        if ok:
            click.echo(
                f"ok: {size} entries, every blob, binding, signature, proof and policy version "
                "checks"
            )
        else:
            click.echo(f"FAILED: {len(findings)} finding(s)")
            print_findings(findings)
    return EXIT_OK if ok else EXIT_FAILED


@click.command()
@_JOBS
@common_options
def fsck(jobs: int, ledger_dir: Path, as_json: bool) -> int:
    """Re-verify every blob hash, log entry, envelope signature, tree hash, checkpoint and index.

    Trust is not judged here (see `cmf verify`). Exit 1 on any finding.
    """
    from ..pipeline import fsck_findings

    with _open_for_audit(ledger_dir) as ledger:
        _announce(ledger.size)
        findings = fsck_findings(ledger, jobs=jobs)
        size = ledger.size
    if as_json:
        emit_json({"ok": not findings, "size": size, "findings": [f.to_dict() for f in findings]})
    elif findings:
        click.echo(f"FAILED: {len(findings)} finding(s)")
        print_findings(findings)
    else:
        click.echo(f"ok: {size} entries")
    return EXIT_OK if not findings else EXIT_FAILED
