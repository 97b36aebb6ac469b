"""``cmf demo``: the whole factory on the bundled example, recorded, promoted and verified."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from ._common import EXIT_FAILED, EXIT_OK, common_options, emit_json, print_findings, progress_rows

ROOT_KEY = "INSECURE-root.pub"  # the pinned root of the demo's keys-example/


@click.command()
@common_options
@click.option(
    "--bundle",
    "bundle_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keep the exported release bundle in this file (default: a temporary file).",
)
def demo(ledger_dir: Path, as_json: bool, bundle_out: Path | None) -> int:
    """Run every stage on the example customer, record it, promote the release, verify it.

    Uses the bundled examples (a synthetic insurer: 3000 traces, three candidate models) and
    the INSECURE keys of keys-example/ (one per role; promotion is 2-of-3), with fixed
    timestamps, so the ledger is byte-reproducible. Into a missing or empty --ledger directory
    it builds the ledger; into one that already holds exactly the demo, it only verifies it;
    it refuses anything else (exit 2). Last, it exports the release as an offline bundle and
    verifies that file against the pinned example root key alone, as a customer would.
    """
    from ..pipeline import package_demo_dir, run_demo

    data = package_demo_dir()
    summary = run_demo(
        ledger_dir, data=data, rows=progress_rows("validating traces"), bundle=bundle_out
    )
    offline_ok = summary.bundle is not None and summary.bundle.verified
    if as_json:
        emit_json(summary.to_dict())
        return EXIT_OK if summary.promoted and offline_ok else EXIT_FAILED
    verb = "built" if summary.mode == "built" else "already holds the demo; verified"
    click.echo(f"{summary.ledger}: {verb}")
    for stage in summary.stages:
        parents = f" <- {len(stage.parents)} parent(s)" if stage.parents else ""
        ready = "" if stage.ready else "  NOT READY"
        click.echo(
            f"  #{stage.log_index:<3} {stage.kind:<20} {stage.label:<36} "
            f"{stage.blob_id[:12]}  signed by {', '.join(stage.signers)}{parents}{ready}"
        )
    click.echo(
        f"release {summary.release_id} ({summary.release_gate}): {summary.status} "
        f"as of {summary.as_of} (trust policy version {summary.policy_version}, "
        f"checkpoint {summary.checkpoint_size})"
    )
    print_findings(summary.findings)
    if summary.bundle is not None:
        where = summary.bundle.path if summary.bundle.path is not None else "a temporary file"
        verdict = "verified, promoted" if summary.bundle.verified else summary.bundle.status
        click.echo(
            f"offline: exported bundle {summary.bundle.bundle_id[:12]} ({summary.bundle.entries} "
            f"log entries, {summary.bundle.blobs} blobs) to {where}; verified it with only the "
            f"pinned root key INSECURE-root.pub and no ledger: {verdict}"
        )
        print_findings(summary.bundle.findings)
    # The demo's own clock: the example's accepted risk and policy expire, the command must not.
    command = ["cmf", "release", "verify", summary.release_id, "--ledger", str(summary.ledger)]
    command += ["--trust", str(_root_key_to_print(data)), "--as-of", summary.as_of]
    click.echo(f"next: {shlex.join(command)}")
    return EXIT_OK if summary.promoted and offline_ok else EXIT_FAILED


def _root_key_to_print(data: Path) -> Path:
    """Return the root key the demo pinned, spelled so that a pasted command finds it here.

    ``keys-example/INSECURE-root.pub`` when the current directory holds that very key (the
    repository root), otherwise the absolute path of the copy the demo read from ``data``.
    """
    used = data / "keys-example" / ROOT_KEY
    local = Path("keys-example") / ROOT_KEY
    if local.is_file() and local.read_bytes() == used.read_bytes():
        return local
    return used.resolve()
