"""``cmf record``, ``cmf show``, ``cmf cat``, ``cmf log``: add records, look at what is stored."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import click

from ._common import (
    EXISTING_FILE,
    common_options,
    emit_json,
    fail,
    load_log_key,
    load_signers,
    now,
    open_ledger,
    resolve_blob,
    resolve_parent,
    resolve_trust,
    short,
    signing_options,
    statement_time,
)

RECORDABLE_KINDS = (
    "trace_dataset",
    "dataset_report",
    "training_manifest",
    "benchmark_result",
    "selection_report",
    "deployment_manifest",
    "sector_mapping",
    "evidence_pack",
    "runtime_package",
    "monitoring_manifest",
    "risk_register",
    "release_gate",
)


@click.command()
@click.argument("kind", type=click.Choice(RECORDABLE_KINDS))
@click.argument("file", type=EXISTING_FILE)
@click.option(
    "--parent",
    "parents",
    multiple=True,
    help="A parent's blob id (or its file); repeat for each parent.",
)
@signing_options
@common_options
def record(
    kind: str,
    file: Path,
    parents: tuple[str, ...],
    key_files: tuple[Path, ...],
    log_key_file: Path | None,
    passphrase_file: Path | None,
    record_time: Any,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Store FILE as a KIND blob, sign its statement with every --key and log it.

    The parents must already be recorded with the kinds KIND's edges allow, and every field
    FILE copied from them must match; otherwise nothing is written and every reason is printed
    (exit 1). A trace dataset takes no parents; it is streamed and stored as the canonical JSON
    array of its rows, whose id (printed) is the dataset_hash of a report on it.
    """
    from ..chain import record_trace_file
    from ..pipeline import record_manifest, tool_version

    parent_ids = [resolve_parent(parent) for parent in parents]
    if kind == "trace_dataset" and parent_ids:
        fail("a trace_dataset has no parents")
    signers = load_signers(key_files, passphrase_file)
    log_key = load_log_key(log_key_file, passphrase_file)
    time = statement_time(record_time)
    with open_ledger(ledger_dir) as ledger, ledger.writer(log_key=log_key) as writer:
        if kind == "trace_dataset":
            entry = record_trace_file(
                writer, ledger, path=file, signers=signers, time=time, tool_version=tool_version()
            )
        else:
            entry = record_manifest(
                writer,
                ledger,
                kind=kind,
                data=file.read_bytes(),
                parents=parent_ids,
                signers=signers,
                time=time,
                tool_version=tool_version(),
            )
    result = {
        "kind": entry.kind,
        "blob_id": entry.blob_id,
        "index": entry.index,
        "envelope_id": entry.envelope_id,
        "parents": parent_ids,
    }
    if as_json:
        emit_json(result)
    else:
        click.echo(f"recorded {entry.kind} {entry.blob_id} at log index {entry.index}")
    return 0


@click.command()
@click.argument("blob")
@click.option("--trust", "trust_file", type=EXISTING_FILE, help="Policy naming the keys.")
@common_options
def show(blob: str, trust_file: Path | None, ledger_dir: Path, as_json: bool) -> int:
    """Show a blob: size, every log entry about it, its signers, parents and inclusion.

    BLOB is a blob id, a unique prefix of one, a ref (release id) or a file. Signers are named
    after the keys of the current trust policy; `cmf release verify` judges whether they count.
    """
    from ..ledger.errors import LedgerError
    from ..pipeline import current_policy, describe_blob, key_names

    with open_ledger(ledger_dir) as ledger:
        blob_id = resolve_blob(ledger, blob)
        if not ledger.objects.contains(blob_id):
            fail(f"unknown blob id: {blob_id} is not stored in {ledger_dir}")
        try:
            names = key_names(current_policy(ledger, resolve_trust(ledger, trust_file), now()))
        except LedgerError:
            names = {}  # no verifiable policy: show key ids only
        view = describe_blob(ledger, blob_id, names)
    if as_json:
        emit_json(view.to_dict())
        return 0
    click.echo(f"blob {view.blob_id} ({view.size} bytes)")
    if not view.entries:
        click.echo("  not the subject of any log entry (an envelope or an unrecorded blob)")
    for entry in view.entries:
        click.echo(f"  log index {entry.index}: {entry.kind}, recorded {entry.time}")
        click.echo(f"    envelope {entry.envelope_id}  tool {entry.tool_version}")
        for key_id, name in entry.signers:
            click.echo(f"    signed by {name or '(key not in the policy)'} {key_id}")
        for kind, parent in entry.parents:
            click.echo(f"    parent {kind} {parent}")
        if entry.included is None:
            click.echo("    inclusion: no checkpoint yet")
        else:
            verdict = "proof verifies" if entry.included else "NOT PROVEN"
            click.echo(f"    inclusion under checkpoint {view.checkpoint_size}: {verdict}")
        for problem in entry.problems:
            click.echo(f"    problem: {problem}")
    return 0


@click.command()
@click.argument("blob")
@common_options
def cat(blob: str, ledger_dir: Path, as_json: bool) -> int:
    """Print a blob's raw bytes (re-hashed first: a tampered blob is refused)."""
    with open_ledger(ledger_dir) as ledger:
        blob_id = resolve_blob(ledger, blob)
        data = ledger.objects.get(blob_id)
    if as_json:
        emit_json({"blob_id": blob_id, "base64": base64.b64encode(data).decode("ascii")})
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


@click.command("log")
@common_options
def log(ledger_dir: Path, as_json: bool) -> int:
    """List every log entry: index, kind, blob id and envelope id (and the leaf with --json)."""
    with open_ledger(ledger_dir) as ledger:
        entries = list(ledger.entries())
        checkpoint = ledger.latest_checkpoint_size()
        origin = ledger.origin
    if as_json:
        emit_json(
            {
                "origin": origin,
                "size": len(entries),
                "checkpoint_size": checkpoint,
                "entries": [
                    {
                        "index": e.index,
                        "kind": e.kind,
                        "blob_id": e.blob_id,
                        "envelope_id": e.envelope_id,
                        "leaf": base64.b64encode(e.leaf).decode("ascii"),
                    }
                    for e in entries
                ],
            }
        )
        return 0
    click.echo(f"{origin}: {len(entries)} entries, latest checkpoint {checkpoint}")
    for e in entries:
        click.echo(f"{e.index:>6}  {e.kind:<20} {e.blob_id}  envelope {short(e.envelope_id)}")
    return 0
