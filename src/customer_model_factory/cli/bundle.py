"""``cmf bundle export|verify|import|unpack``, ``cmf proof``, ``cmf verify-equivocation`` and
``cmf receipt create|add``: offline and air-gapped releases (docs/bundle-format.md).

Library calls only (``customer_model_factory.bundle``); each command imports what it uses.
Exit codes: 0 ok; 1 the bundle does not verify or is not promoted, an import was refused, an
equivocation file does not prove its claim; 2 usage or input errors, including a malformed,
truncated or oversized bundle (one line on stderr).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import (
    EXISTING_FILE,
    EXIT_FAILED,
    EXIT_OK,
    INSTANT,
    CommandFailed,
    common_options,
    emit_json,
    fail,
    format_finding,
    key_name_of_file,
    load_any_public_key,
    load_log_key,
    load_signing_key,
    now,
    open_ledger,
    print_findings,
    read_passphrase,
    resolve_named_release,
    resolve_trust,
    trust_json,
    trust_options,
    warn_if_first_use,
)

if TYPE_CHECKING:
    from ..bundle.verify import BundleReport, Expectation
    from ..ledger.keys import PublicKey
    from ..ledger.policy import TrustPolicy

OUTPUT = click.Path(dir_okay=False, path_type=Path)


def _trust_root(path: Path) -> TrustPolicy | PublicKey:
    """Load ``--trust-root``: a trust-policy JSON file or a public key (PEM or verifier key)."""
    from ..inputs import load_trust_file

    return load_trust_file(path)


def expectation_options(function: click.decorators.FC) -> click.decorators.FC:
    """Add ``--release-id``, ``--customer``, ``--workspace`` and ``--tenant``."""
    for name, help_text in reversed(
        (
            ("release-id", "Require this release id."),
            ("customer", "Require this customer id (another customer's release fails)."),
            ("workspace", "Require this workspace id."),
            ("tenant", "Require this tenant id."),
        )
    ):
        function = click.option(f"--{name}", default=None, help=help_text)(function)
    return function


def _expectation(
    release_id: str | None, customer: str | None, workspace: str | None, tenant: str | None
) -> Expectation | None:
    """Return the expectation the options give (None when none is given)."""
    from ..bundle.verify import Expectation

    if release_id is None and customer is None and workspace is None and tenant is None:
        return None
    return Expectation(release_id, customer, workspace, tenant)


# --- cmf bundle -------------------------------------------------------------------------------


@click.group()
def bundle() -> None:
    """Export a promoted release as one file; verify it offline; import it elsewhere."""


@bundle.command("export")
@click.argument("release_ref", metavar="RELEASE")
@click.option("-o", "--output", type=OUTPUT, required=True, help="The bundle file to write.")
@click.option(
    "--without-data",
    is_flag=True,
    help="Leave the trace dataset's bytes out (its id stays signed and logged).",
)
@click.option(
    "--since",
    type=click.IntRange(min=0),
    default=None,
    help="Add a consistency proof from "
    "this tree size (the receiver's last accepted checkpoint size).",
)
@click.option(
    "--since-checkpoint",
    type=EXISTING_FILE,
    default=None,
    help="Add a consistency proof from this signed checkpoint (e.g. the receiver's receipt).",
)
@click.option(
    "--policy-from",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="First trust-policy version carried (the verifier pins it or one of its root keys).",
)
@trust_options
@common_options
def bundle_export(
    release_ref: str,
    output: Path,
    without_data: bool,
    since: int | None,
    since_checkpoint: Path | None,
    policy_from: int,
    trust_file: Path | None,
    as_of: datetime | None,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Write RELEASE (a promoted release gate) and everything that proves it to one file."""
    from ..bundle.export import export_bundle
    from ..bundle.format import write_bundle

    if since is not None and since_checkpoint is not None:
        fail("give --since or --since-checkpoint, not both")
    moment = as_of or now()
    old = since_checkpoint.read_bytes() if since_checkpoint is not None else None
    with open_ledger(ledger_dir) as ledger:
        gate = resolve_named_release(ledger, release_ref)
        trust = resolve_trust(ledger, trust_file)
        warn_if_first_use(trust, as_json)
        exported = export_bundle(
            ledger,
            gate,
            trust=trust.root,
            as_of=moment,
            include_data=not without_data,
            since=since,
            since_checkpoint=old,
            policy_from=policy_from,
        )
    identifier = write_bundle(output, exported)
    summary = {
        "bundle": str(output),
        "bundle_id": identifier,
        "release_blob_id": gate,
        "checkpoint_size": exported.claimed_checkpoint.size,
        "entries": len(exported.entries),
        "blobs": len(exported.blobs),
        "omitted": list(exported.omitted),
        "consistency_from": exported.consistency.old_size if exported.consistency else None,
        "trust": trust_json(trust),
    }
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"exported release gate {gate} to {output} (bundle {identifier}): "
            f"{len(exported.entries)} entries, {len(exported.blobs)} blobs, checkpoint size "
            f"{exported.claimed_checkpoint.size}"
        )
        if exported.omitted:
            click.echo(f"  trace data left out: {', '.join(exported.omitted)}")
        if exported.consistency is not None:
            click.echo(f"  consistency proof from tree size {exported.consistency.old_size}")
    return EXIT_OK


@bundle.command("verify")
@click.argument("bundle_file", metavar="FILE", type=EXISTING_FILE)
@click.option(
    "--trust-root",
    type=EXISTING_FILE,
    required=True,
    help="The pinned trust root: a root public key (PEM or verifier key) or a policy file.",
)
@click.option("--at", "at", type=INSTANT, default=None, help="Verify as of (default: now).")
@click.option(
    "--known-checkpoint",
    type=EXISTING_FILE,
    default=None,
    help="A checkpoint of this log you accepted before: the bundle must be consistent with it.",
)
@click.option(
    "--min-witnesses",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Witness-role cosignatures the checkpoint must carry.",
)
@expectation_options
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
def bundle_verify(
    bundle_file: Path,
    trust_root: Path,
    at: datetime | None,
    known_checkpoint: Path | None,
    min_witnesses: int,
    release_id: str | None,
    customer: str | None,
    workspace: str | None,
    tenant: str | None,
    as_json: bool,
) -> int:
    """Verify a bundle offline (no ledger, no network); exit 0 only when its release
    verifies completely AND was promoted."""
    from ..bundle.format import read_bundle
    from ..bundle.verify import verify_bundle

    root = _trust_root(trust_root)
    known = known_checkpoint.read_bytes() if known_checkpoint is not None else None
    loaded, identifier = read_bundle(bundle_file)
    moment = at or now()
    report = verify_bundle(
        loaded,
        trust=root,
        as_of=moment,
        expect=_expectation(release_id, customer, workspace, tenant),
        known_checkpoint=known,
        min_witnesses=min_witnesses,
        bundle_id=identifier,
    )
    if as_json:
        emit_json({**report.to_dict(), "trust_root": str(trust_root)})
    else:
        _print_bundle_report(report, f"trust: pinned to {trust_root}")
    return EXIT_OK if report.ok else EXIT_FAILED


def _print_bundle_report(report: BundleReport, trust: str) -> None:
    """Print the readable report: what was verified, then the verdict and every finding."""
    from ..bundle.verify import summary_lines

    click.echo(trust)
    for line in summary_lines(report):
        click.echo(line)
    blocking = [f for f in report.findings if f.blocking]
    if report.ok:
        click.echo(f"OK: release {report.identity.get('release_id', '')} verifies and is promoted")
    else:
        click.echo(f"FAILED ({report.status}): {len(blocking)} blocking finding(s)")
    print_findings(report.findings)


@bundle.command("import")
@click.argument("bundle_file", metavar="FILE", type=EXISTING_FILE)
@click.option(
    "--trust-root",
    type=EXISTING_FILE,
    required=True,
    help="The sender's pinned trust root: a root public key or a trust-policy file.",
)
@click.option("--at", "at", type=INSTANT, default=None, help="Verify as of (default: now).")
@click.option(
    "--evidence-out",
    type=OUTPUT,
    default=None,
    help="Where to write the proof of a refused rollback or fork "
    "(default: under the ledger's imports/ directory).",
)
@click.option(
    "--min-witnesses",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Witness-role cosignatures the checkpoint must carry.",
)
@expectation_options
@common_options
def bundle_import(
    bundle_file: Path,
    trust_root: Path,
    at: datetime | None,
    evidence_out: Path | None,
    min_witnesses: int,
    release_id: str | None,
    customer: str | None,
    workspace: str | None,
    tenant: str | None,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Verify a bundle in a quarantine inside the ledger, then add it atomically.

    Refused (exit 1, nothing added) when it does not verify and show a promoted release, or
    when its log is inconsistent with what this ledger accepted before (rollback or fork: a
    proof for `cmf verify-equivocation` is written). Importing it again changes nothing.
    """
    from ..bundle.format import read_bundle
    from ..bundle.importer import ImportRefusedError, import_bundle

    root = _trust_root(trust_root)
    loaded, identifier = read_bundle(bundle_file)
    open_ledger(ledger_dir).close()
    try:
        result = import_bundle(
            ledger_dir,
            loaded,
            bundle_id=identifier,
            trust=root,
            as_of=at or now(),
            expect=_expectation(release_id, customer, workspace, tenant),
            min_witnesses=min_witnesses,
            evidence_path=evidence_out,
        )
    except ImportRefusedError as refused:
        if as_json:
            emit_json(
                {
                    "status": "refused",
                    "bundle_id": identifier,
                    "evidence": str(refused.evidence) if refused.evidence else None,
                    "findings": [f.to_dict() for f in refused.findings],
                }
            )
        else:
            click.echo(f"cmf: refused: {len(refused.findings)} finding(s)", err=True)
            for finding in refused.findings:
                click.echo(f"cmf: refused: {format_finding(finding)}", err=True)
            if refused.evidence is not None:
                click.echo(f"cmf: refused: proof written to {refused.evidence}", err=True)
        raise CommandFailed() from None
    if as_json:
        emit_json(result.to_dict())
    elif result.status == "unchanged":
        click.echo(f"already imported: bundle {identifier} ({result.origin}); nothing changed")
    else:
        click.echo(
            f"imported release gate {result.release_blob_id} from {result.origin}: "
            f"{result.new_blobs} new blob(s), checkpoint size {result.checkpoint_size} accepted"
        )
    return EXIT_OK


@bundle.command("unpack")
@click.argument("bundle_file", metavar="FILE", type=EXISTING_FILE)
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
def bundle_unpack(bundle_file: Path, directory: Path, as_json: bool) -> int:
    """Write a bundle's parts as plain files for stock tools (docs/verify-without-cmf.md).

    Nothing is verified: use `cmf bundle verify`, or the stock-tool steps, on the result.
    """
    from ..bundle.export import unpack_bundle
    from ..bundle.format import read_bundle

    loaded, identifier = read_bundle(bundle_file)
    written = unpack_bundle(loaded, directory)
    if as_json:
        emit_json({"bundle_id": identifier, "directory": str(directory), "files": len(written)})
    else:
        click.echo(f"unpacked bundle {identifier} into {directory}: {len(written)} files")
    return EXIT_OK


# --- cmf proof --------------------------------------------------------------------------------


@click.command()
@click.argument("blob_ref", metavar="ID")
@click.option("-o", "--output", type=OUTPUT, required=True, help="The .tlog-proof file to write.")
@click.option(
    "--index",
    type=click.IntRange(min=0),
    default=None,
    help="The log entry to prove when the blob was recorded more than once.",
)
@common_options
def proof(blob_ref: str, output: Path, index: int | None, ledger_dir: Path, as_json: bool) -> int:
    """Write a C2SP tlog-proof@v1 file proving ID's statement is in the signed log."""
    from .._jsonfile import atomic_write_bytes
    from ..bundle.tlogproof import format_tlog_proof, proof_for_blob

    with open_ledger(ledger_dir) as ledger:
        blob_id = resolve_named_release(ledger, blob_ref)  # a ref must name its own release
        made = proof_for_blob(ledger, blob_id, index=index)
    atomic_write_bytes(output, format_tlog_proof(made))
    if as_json:
        emit_json({"blob_id": blob_id, "index": made.index, "proof": str(output)})
    else:
        click.echo(f"wrote {output}: entry {made.index} of blob {blob_id}")
    return EXIT_OK


# --- cmf verify-equivocation ------------------------------------------------------------------


@click.command("verify-equivocation")
@click.argument("proof_file", metavar="FILE", type=EXISTING_FILE)
@click.option(
    "--log-key",
    "log_key_file",
    type=EXISTING_FILE,
    default=None,
    help="The log's public key (pin it; default: the key named in the file, NOT pinned).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
def verify_equivocation(proof_file: Path, log_key_file: Path | None, as_json: bool) -> int:
    """Check a proof of log inconsistency written by a refused `cmf bundle import`.

    Exit 0 when it proves what it claims (a fork: the log signed two histories; or a
    rollback: an older checkpoint was offered), 1 when it does not.
    """
    from ..bundle.equivocation import EquivocationProof
    from ..bundle.equivocation import verify_equivocation as check
    from ..ledger.keys import PublicKey

    evidence = EquivocationProof.from_json(proof_file.read_bytes())
    if log_key_file is not None:
        key = load_any_public_key(log_key_file)
        pinned = f"log key pinned to {log_key_file}"
    else:
        _, key = PublicKey.parse_verifier_key(evidence.log_key)
        pinned = "log key taken from the file (NOT pinned: pass --log-key)"
    verdict = check(evidence, [key])
    if as_json:
        emit_json(
            {
                "kind": verdict.kind,
                "proven": verdict.proven,
                "equivocation": verdict.equivocation,
                "message": verdict.message,
                "origin": evidence.origin,
                "log_key": pinned,
            }
        )
    else:
        click.echo(pinned)
        click.echo(verdict.message)
    return EXIT_OK if verdict.proven else EXIT_FAILED


# --- cmf receipt ------------------------------------------------------------------------------


@click.group()
def receipt() -> None:
    """Countersign the checkpoint this site accepted; store such receipts at the sender."""


@receipt.command("create")
@click.option("--key", "key_file", type=EXISTING_FILE, required=True, help="Witness private key.")
@click.option("--name", default=None, help="Witness key name (default: the key file's name).")
@click.option("--origin", default=None, help="The log (default: the only one imported from).")
@click.option("--time", "moment", type=INSTANT, default=None, help="Cosignature time (now).")
@click.option("--passphrase-file", type=EXISTING_FILE, default=None, help="Key passphrase file.")
@click.option("-o", "--output", type=OUTPUT, required=True, help="The receipt file to write.")
@common_options
def receipt_create(
    key_file: Path,
    name: str | None,
    origin: str | None,
    moment: datetime | None,
    passphrase_file: Path | None,
    output: Path,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Write a cosignature/v1 receipt of the latest checkpoint this ledger imported."""
    from .._jsonfile import atomic_write_bytes
    from ..bundle.receipt import make_receipt

    witness = load_signing_key(key_file, read_passphrase(passphrase_file))
    witness_name = name or key_name_of_file(key_file)
    open_ledger(ledger_dir).close()
    when = int((moment or now()).timestamp())
    data = make_receipt(
        ledger_dir, witness=witness, name=witness_name, timestamp=when, origin=origin
    )
    atomic_write_bytes(output, data)
    if as_json:
        emit_json({"receipt": str(output), "witness": witness_name, "timestamp": when})
    else:
        click.echo(f"wrote receipt {output}: cosigned by {witness_name} at {when}")
    return EXIT_OK


@receipt.command("add")
@click.argument("receipt_file", metavar="FILE", type=EXISTING_FILE)
@click.option(
    "--witness-key",
    type=EXISTING_FILE,
    required=True,
    help="The receiving site's witness public key (pinned by you).",
)
@click.option("--name", default=None, help="Require this witness key name.")
@click.option("--log-key", "log_key_file", type=EXISTING_FILE, help="This ledger's log key.")
@click.option("--passphrase-file", type=EXISTING_FILE, default=None, help="Key passphrase file.")
@common_options
def receipt_add(
    receipt_file: Path,
    witness_key: Path,
    name: str | None,
    log_key_file: Path | None,
    passphrase_file: Path | None,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Verify a receipt from a receiving site and store its cosignature with our checkpoint."""
    from ..bundle.receipt import add_receipt

    witness = load_any_public_key(witness_key)
    log_key = load_log_key(log_key_file, passphrase_file)
    data = receipt_file.read_bytes()
    with open_ledger(ledger_dir) as ledger, ledger.writer(log_key=log_key) as writer:
        size, timestamp = add_receipt(ledger, writer, data, witness, name=name)
    if as_json:
        emit_json({"checkpoint_size": size, "timestamp": timestamp, "witness": witness.key_id})
    else:
        click.echo(f"stored the receipt: checkpoint {size} cosigned at {timestamp}")
    return EXIT_OK
