"""``cmf release gate|promote|verify|status``: the release gate and what follows it.

A release is named by its gate's blob id, a unique prefix, its release id (the ref set when the
gate was recorded) or the gate file. A ref is an unsigned name: a release asked for by one must
be a gate whose own ``release_id`` is that name (``ref_release_mismatch``). Verification is
``chain.verify_release_chain``: a pure function of the ledger, the pinned trust root
(``--trust``) and the clock (``--as-of``). Without ``--trust`` the ledger's first policy is
trusted on first use, which every command resolving a trust root says on stderr (or, with
``--json``, as ``"trust": "tofu"``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    common_options,
    emit_json,
    load_log_key,
    load_signers,
    now,
    open_ledger,
    print_findings,
    resolve_release,
    resolve_trust,
    short,
    signing_options,
    trust_json,
    trust_line,
    trust_options,
    warn_if_first_use,
)

if TYPE_CHECKING:
    from ..chain import ChainReport
    from ..inputs import Trust


class ReleaseGroup(click.Group):
    """The ``release`` group; its ``gate`` stage command is imported only when used, so that
    ``cmf release verify`` does not load the stage builders' command-line plumbing."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the subcommands, ``gate`` first (it is the stage that comes first)."""
        return ["gate", *sorted(self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return a subcommand; ``gate`` is ``stages.release_gate``."""
        if cmd_name == "gate":
            from .stages import release_gate

            return release_gate
        return super().get_command(ctx, cmd_name)


@click.group(cls=ReleaseGroup)
def release() -> None:
    """Build the release gate, verify and promote releases, show their status."""


def _print_report(
    report: ChainReport, trust: str, as_of: datetime, verb: str, names: dict[str, str]
) -> None:
    """Print a chain report: the trust root, every record walked and every finding.

    ``names`` maps key ids to their names in the trust policy.
    """
    click.echo(trust)
    click.echo(
        f"release gate {report.release_blob_id}: policy version {report.policy_version}, "
        f"checkpoint {report.checkpoint_size}, as of {as_of.isoformat()}"
        + (", trace rows re-validated (deep)" if report.deep else "")
    )
    for node in report.nodes:
        where = f"#{node.log_index}" if node.log_index is not None else "not logged"
        signers = (
            ", ".join(names.get(k, short(k)) for k in node.signer_key_ids) or "no trusted signature"
        )
        click.echo(f"  {node.kind:<20} {short(node.blob_id)}  {where:<6}  signed by {signers}")
    if report.ok:
        click.echo(f"{verb}: the whole chain verifies")
    else:
        click.echo(f"{verb} REFUSED: {len(report.findings)} finding(s)")
        print_findings(report.findings)


@release.command("verify")
@click.argument("release_ref", metavar="RELEASE")
@click.option(
    "--deep",
    is_flag=True,
    help="Also re-validate every trace row against the dataset report (counts, row findings).",
)
@trust_options
@common_options
def release_verify(
    release_ref: str,
    deep: bool,
    trust_file: Path | None,
    as_of: datetime | None,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Verify RELEASE's whole chain: blobs, bindings, signatures, inclusion, policy, gate.

    Every blob is re-hashed, the trace dataset included; --deep also re-reads its rows
    (docs/chain.md section 5).
    """
    from ..chain import LedgerSource, verify_release_chain
    from ..chain.verify import release_name_findings
    from ..inputs import key_names

    moment = as_of or now()
    with open_ledger(ledger_dir) as ledger:
        gate, name = resolve_release(ledger, release_ref)
        trust = resolve_trust(ledger, trust_file)
        warn_if_first_use(trust, as_json)
        source = LedgerSource(ledger)
        report = verify_release_chain(source, gate, trust=trust.root, as_of=moment, deep=deep)
        if name is not None:
            named = release_name_findings(source, gate, name)
            report = dataclasses.replace(report, findings=(*named, *report.findings))
    names = key_names(report.policy)
    if as_json:
        emit_json({**report.to_dict(), "trust": trust_json(trust), "as_of": moment.isoformat()})
    else:
        _print_report(report, trust_line(trust), moment, "verified", names)
    return EXIT_OK if report.ok else EXIT_FAILED


@release.command("status")
@click.argument("release_ref", metavar="RELEASE")
@trust_options
@common_options
def release_status(
    release_ref: str,
    trust_file: Path | None,
    as_of: datetime | None,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Tell RELEASE's state: not_found, recorded, verified_not_promoted, promoted or broken.

    Exit 0 only when the release is promoted.
    """
    from ..chain import LedgerSource
    from ..chain import release_status as status_of

    moment = as_of or now()
    with open_ledger(ledger_dir) as ledger:
        gate, name = resolve_release(ledger, release_ref)
        trust = resolve_trust(ledger, trust_file)
        warn_if_first_use(trust, as_json)
        status = status_of(LedgerSource(ledger), gate, trust=trust.root, as_of=moment, name=name)
    if as_json:
        emit_json({**status.to_dict(), "trust": trust_json(trust), "as_of": moment.isoformat()})
    else:
        click.echo(trust_line(trust))
        click.echo(f"{status.status}: release gate {gate}")
        if status.promotion_blob_id is not None:
            click.echo(
                f"  promotion {status.promotion_blob_id} at log index {status.promotion_index}"
            )
        print_findings(status.findings)
    return EXIT_OK if status.status == "promoted" else EXIT_FAILED


@release.command("promote")
@click.argument("release_ref", metavar="RELEASE")
@trust_options
@signing_options
@common_options
def release_promote(
    release_ref: str,
    trust_file: Path | None,
    as_of: datetime | None,
    key_files: tuple[Path, ...],
    log_key_file: Path | None,
    passphrase_file: Path | None,
    record_time: datetime | None,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Verify RELEASE's whole chain and, only if it all holds, log a promotion statement.

    The --key files must hold a threshold of the trust policy's `promotion` role. On any
    finding nothing is written, every finding is printed and the exit code is 1. A release
    that is already promoted is left as it is.
    """
    from ..chain import LedgerSource, promote_release
    from ..chain import release_status as status_of
    from ..inputs import key_names
    from ..pipeline import tool_version
    from ._common import statement_time

    signers = load_signers(key_files, passphrase_file)
    log_key = load_log_key(log_key_file, passphrase_file)
    moment = as_of or now()
    time = statement_time(record_time)
    with open_ledger(ledger_dir) as ledger:
        gate, name = resolve_release(ledger, release_ref)
        trust = resolve_trust(ledger, trust_file)
        warn_if_first_use(trust, as_json)
        with ledger.writer(log_key=log_key) as writer:
            # Checked under the writer lock, so two concurrent promoters cannot both append.
            status = status_of(
                LedgerSource(ledger), gate, trust=trust.root, as_of=moment, name=name
            )
            if status.status == "promoted":
                writer.abort()
                return _already_promoted(status.to_dict(), gate, trust, as_json)
            report = promote_release(
                ledger,
                writer,
                gate,
                trust=trust.root,
                as_of=moment,
                signers=signers,
                time=time,
                tool_version=tool_version(),
                name=name,
            )
            index = ledger.size + writer.pending - 1 if report.ok else None
    names = key_names(report.policy)
    result: dict[str, Any] = {
        **report.to_dict(),
        "promoted": report.ok,
        "promotion_index": index,
        "trust": trust_json(trust),
        "as_of": moment.isoformat(),
    }
    if as_json:
        emit_json(result)
    else:
        _print_report(report, trust_line(trust), moment, "promotion", names)
        if report.ok:
            click.echo(f"promoted: promotion statement logged at index {index}")
    return EXIT_OK if report.ok else EXIT_FAILED


def _already_promoted(status: dict[str, Any], gate: str, trust: Trust, as_json: bool) -> int:
    """Report a release that a valid promotion already covers (nothing is written)."""
    if as_json:
        document = {**status, "promoted": True, "already_promoted": True}
        emit_json({**document, "trust": trust_json(trust)})
    else:
        click.echo(trust_line(trust))
        click.echo(
            f"already promoted: release gate {gate} (promotion at log index "
            f"{status['promotion_index']}); nothing written"
        )
    return EXIT_OK
