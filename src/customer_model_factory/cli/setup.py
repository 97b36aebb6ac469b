"""``cmf init`` and ``cmf keygen``: create a ledger, generate keys."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import (
    EXISTING_FILE,
    common_options,
    emit_json,
    fail,
    load_any_public_key,
    read_passphrase,
    write_new_file,
)


@click.command()
@click.option(
    "--origin",
    default=None,
    help="The log's origin (checkpoint first line; default: cmf.local/<directory name>).",
)
@click.option(
    "--log-key",
    "log_key_file",
    type=EXISTING_FILE,
    required=True,
    help="The log key: its private key (PEM) or public key (PEM or verifier key).",
)
@click.option("--passphrase-file", type=EXISTING_FILE, help="Passphrase of an encrypted key.")
@common_options
def init(
    origin: str | None,
    log_key_file: Path,
    passphrase_file: Path | None,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Create an empty ledger in --ledger DIR (missing or empty).

    The log key signs every checkpoint; keep its private half for commands that write. Record
    the first trust policy next: `cmf trust init`.
    """
    from ..ledger.store import Ledger

    key = load_any_public_key(log_key_file, passphrase_file)
    origin = origin or f"cmf.local/{ledger_dir.resolve().name}"
    with Ledger.create(ledger_dir, origin=origin, log_key=key) as ledger:
        result = {"ledger": str(ledger.path), "origin": ledger.origin, "log_key_id": key.key_id}
    if as_json:
        emit_json(result)
    else:
        click.echo(f"created ledger {ledger_dir} (origin {origin}, log key {key.key_id})")
    return 0


@click.command()
@click.argument("name")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory for NAME.pem, NAME.pub and NAME.vkey.",
)
@click.option(
    "--passphrase-file",
    type=EXISTING_FILE,
    help="Encrypt the private key with the passphrase in this file.",
)
@common_options
def keygen(
    name: str,
    output_dir: Path,
    passphrase_file: Path | None,
    ledger_dir: Path,
    as_json: bool,
) -> int:
    """Generate an Ed25519 key pair called NAME.

    Writes NAME.pem (private, PKCS#8, mode 0600, encrypted with --passphrase-file), NAME.pub
    (public, PEM) and NAME.vkey (signed-note verifier key named NAME); prints the key id (hex
    SHA-256 of the raw public key). Existing files are never overwritten.
    """
    from ..ledger.keys import PrivateKey, check_key_name, save_private_key, save_public_key

    check_key_name(name)
    if "/" in name or name.startswith("."):
        fail(f"key name {name!r}: must be a plain file name (no '/', no leading '.')")
    paths = {suffix: output_dir / f"{name}.{suffix}" for suffix in ("pem", "pub", "vkey")}
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing:
        fail(f"refusing to overwrite {', '.join(existing)}")
    passphrase = read_passphrase(passphrase_file)
    key = PrivateKey.generate()
    output_dir.mkdir(parents=True, exist_ok=True)
    save_private_key(paths["pem"], key, passphrase)
    save_public_key(paths["pub"], key.public_key)
    write_new_file(paths["vkey"], f"{key.public_key.verifier_key(name)}\n".encode(), 0o644)
    result = {
        "name": name,
        "key_id": key.public_key.key_id,
        "private_key": str(paths["pem"]),
        "public_key": str(paths["pub"]),
        "verifier_key": str(paths["vkey"]),
        "encrypted": passphrase is not None,
    }
    if as_json:
        emit_json(result)
    else:
        click.echo(key.public_key.key_id)
        click.echo(
            f"wrote {paths['pem']} (private{', encrypted' if passphrase else ''}), "
            f"{paths['pub']}, {paths['vkey']}",
            err=True,
        )
    return 0
