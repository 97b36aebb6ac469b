"""``cmf trust init|show|add-key|rotate|revoke``: the trust policy, one logged version at a time.

Every change writes a new policy version as a ``trust_policy`` log entry, signed by the --key
files: a threshold of the current root keys AND of the new version's root keys must be among
them (so a root rotation is signed by both the old and the new root key). The library
(``chain.record_policy``) refuses, writing nothing, a version that does not follow validly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._common import (
    EXISTING_FILE,
    INSTANT,
    common_options,
    emit_json,
    fail,
    key_name_of_file,
    load_any_public_key,
    load_log_key,
    load_signers,
    now,
    open_ledger,
    resolve_trust,
    short,
    signing_options,
    statement_time,
    trust_line,
    trust_options,
    warn_if_first_use,
)

if TYPE_CHECKING:
    from ..ledger.policy import TrustPolicy
    from ..ledger.store import Ledger

_KEY_ID = re.compile(r"[0-9a-f]{64}")
F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def trust() -> None:
    """Show and change the trust policy: keys, roles, k-of-n thresholds, revocations."""


def _expires_option(required: bool) -> Callable[[F], F]:
    """Return the ``--expires`` option (new versions keep the current expiry by default)."""
    return click.option(
        "--expires",
        type=INSTANT,
        required=required,
        default=None,
        help="Expiry of the new version (RFC 3339)"
        + ("." if required else "; default: the current version's."),
    )


def _record(
    ledger_dir: Path,
    policy_of: Any,
    options: dict[str, Any],
) -> int:
    """Build the next policy version with ``policy_of(ledger, current)`` and record it."""
    from ..chain import record_policy
    from ..pipeline import tool_version

    signers = load_signers(options["key_files"], options["passphrase_file"])
    log_key = load_log_key(options["log_key_file"], options["passphrase_file"])
    time = statement_time(options["record_time"])
    with open_ledger(ledger_dir) as ledger:
        policy = policy_of(ledger)
        with ledger.writer(log_key=log_key) as writer:
            entry = record_policy(
                writer,
                ledger,
                policy=policy,
                signers=signers,
                time=time,
                tool_version=tool_version(),
            )
    if options["as_json"]:
        emit_json({"version": policy.version, "blob_id": entry.blob_id, "index": entry.index})
    else:
        click.echo(
            f"recorded trust policy version {policy.version} ({entry.blob_id}) "
            f"at log index {entry.index}"
        )
    return 0


def _current(ledger: Ledger, trust_file: Path | None) -> TrustPolicy:
    """Return the latest policy version that verifies from the trust root (expiry ignored)."""
    from ..pipeline import current_policy

    return current_policy(ledger, resolve_trust(ledger, trust_file), now())


def _expiry(expires: datetime | None, current: TrustPolicy) -> str | datetime:
    """Return the new version's expiry: ``--expires`` or the current one."""
    return expires if expires is not None else current.expires


def _key_id(current: TrustPolicy, text: str) -> str:
    """Return the key id ``text`` names: an id, a key name in the policy, or a key file."""
    if _KEY_ID.fullmatch(text):
        return text
    for entry in current.keys:
        if entry.name == text:
            return entry.key_id
    if Path(text).is_file():
        return load_any_public_key(Path(text)).key_id
    fail(f"{text!r} is not a key id, a key name in policy version {current.version}, or a file")


@trust.command("init")
@click.option(
    "--grant",
    "grants",
    multiple=True,
    required=True,
    metavar="ROLE=KEYFILE",
    help="Give ROLE to the public key in KEYFILE (named after the file); repeatable.",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="ROLE=K",
    help="K distinct keys of ROLE must sign (default 1); repeatable.",
)
@_expires_option(required=True)
@signing_options
@common_options
def trust_init(
    grants: tuple[str, ...], thresholds: tuple[str, ...], expires: datetime, **options: Any
) -> int:
    """Record version 1 of the trust policy, signed by its root key(s).

    Roles: `root`, `log` (the ledger's log key), `witness`, `promotion` and one per stage kind
    (dataset_report, training_manifest, ..., release_gate, trace_dataset).
    """
    from ..ledger.policy import format_expires
    from ..pipeline import build_policy

    parsed = [_split(grant, "--grant") for grant in grants]
    keyed = [
        (
            role,
            load_any_public_key(Path(file), options["passphrase_file"]),
            key_name_of_file(Path(file)),
        )
        for role, file in parsed
    ]
    levels = {role: _count(value) for role, value in (_split(t, "--threshold") for t in thresholds)}

    def first_version(ledger: Ledger) -> TrustPolicy:
        return build_policy(
            origin=ledger.origin, expires=format_expires(expires), grants=keyed, thresholds=levels
        )

    return _record(options["ledger_dir"], first_version, options)


def _split(text: str, option: str) -> tuple[str, str]:
    """Split ``ROLE=VALUE``; UsageError naming the option otherwise."""
    role, sep, value = text.partition("=")
    if not sep or not role or not value:
        raise click.UsageError(f"{option} {text!r}: expected ROLE=VALUE")
    return role, value


def _count(text: str) -> int:
    """Parse a threshold (a positive integer)."""
    if not text.isdigit() or int(text) < 1:
        raise click.UsageError(f"threshold {text!r}: expected a positive integer")
    return int(text)


@trust.command("show")
@trust_options
@common_options
def trust_show(
    trust_file: Path | None, as_of: datetime | None, ledger_dir: Path, as_json: bool
) -> int:
    """Show the current trust policy (the latest version that verifies from the trust root).

    With --json, print the policy's canonical JSON bytes exactly: save them to pin that version
    with --trust.
    """
    from ..pipeline import policy_chain

    with open_ledger(ledger_dir) as ledger:
        root = resolve_trust(ledger, trust_file)
        chain = policy_chain(ledger, root, as_of or now())
    if not chain.policies:
        fail("no trust policy version verifies: " + "; ".join(f.code for f in chain.findings))
    policy = chain.current
    if as_json:
        # the bytes carry no "trust" field to say they came from the ledger itself: say it here
        warn_if_first_use(root, as_json=False)
        click.echo(policy.to_bytes().decode("utf-8"), nl=False)
        return 0
    names = {entry.key_id: entry.name for entry in policy.keys}
    click.echo(trust_line(root))
    click.echo(
        f"trust policy version {policy.version} of {policy.origin}, expires {policy.expires} "
        f"(blob {policy.blob_id})"
    )
    click.echo("keys:")
    for entry in policy.keys:
        click.echo(f"  {entry.key_id}  {entry.name}")
    click.echo("roles:")
    for role in policy.roles:
        members = ", ".join(sorted(names[k] for k in role.key_ids))
        click.echo(f"  {role.name:<20} {role.threshold} of {len(role.key_ids)}: {members}")
    if policy.revoked:
        click.echo("revoked:")
        for rev in policy.revoked:
            click.echo(f"  {short(rev.key_id)} from log index {rev.from_index}: {rev.reason}")
    for finding in chain.findings:
        click.echo(f"warning: {finding.code}: {finding.message}")
    return 0


@trust.command("add-key")
@click.argument("key_file", type=EXISTING_FILE)
@click.option("--role", "roles", multiple=True, required=True, help="Role to grant; repeatable.")
@click.option("--name", default=None, help="Key name (default: the file name without suffix).")
@click.option("--trust", "trust_file", type=EXISTING_FILE, help="Pinned trust root.")
@_expires_option(required=False)
@signing_options
@common_options
def trust_add_key(
    key_file: Path,
    roles: tuple[str, ...],
    name: str | None,
    trust_file: Path | None,
    expires: datetime | None,
    **options: Any,
) -> int:
    """Enrol the public key in KEY_FILE and grant it each --role (a new policy version)."""
    from ..ledger.policy import KeyEntry

    entry = KeyEntry.of(
        load_any_public_key(key_file, options["passphrase_file"]),
        name or key_name_of_file(key_file),
    )

    def next_version(ledger: Ledger) -> TrustPolicy:
        current = _current(ledger, trust_file)
        return current.with_key(entry, roles, expires=_expiry(expires, current))

    return _record(options["ledger_dir"], next_version, options)


@trust.command("rotate")
@click.argument("old_key")
@click.argument("new_key_file", type=EXISTING_FILE)
@click.option("--name", default=None, help="New key's name (default: its file name).")
@click.option("--trust", "trust_file", type=EXISTING_FILE, help="Pinned trust root.")
@_expires_option(required=False)
@signing_options
@common_options
def trust_rotate(
    old_key: str,
    new_key_file: Path,
    name: str | None,
    trust_file: Path | None,
    expires: datetime | None,
    **options: Any,
) -> int:
    """Replace OLD_KEY (id, name or key file) by the key in NEW_KEY_FILE in every role it holds.

    Rotating a root key: sign with the old AND the new root key.
    """
    from ..ledger.policy import KeyEntry

    new_entry = KeyEntry.of(
        load_any_public_key(new_key_file, options["passphrase_file"]),
        name or key_name_of_file(new_key_file),
    )

    def next_version(ledger: Ledger) -> TrustPolicy:
        current = _current(ledger, trust_file)
        return current.rotated(
            _key_id(current, old_key), new_entry, expires=_expiry(expires, current)
        )

    return _record(options["ledger_dir"], next_version, options)


@trust.command("revoke")
@click.argument("key")
@click.option("--reason", required=True, help="Why (one line, kept in the policy).")
@click.option(
    "--from-index",
    type=click.IntRange(min=0),
    default=None,
    help="Signatures on log entries from this index on stop counting (default: the next entry).",
)
@click.option("--trust", "trust_file", type=EXISTING_FILE, help="Pinned trust root.")
@_expires_option(required=False)
@signing_options
@common_options
def trust_revoke(
    key: str,
    reason: str,
    from_index: int | None,
    trust_file: Path | None,
    expires: datetime | None,
    **options: Any,
) -> int:
    """Revoke KEY (id, name or key file) from a log index on (a new policy version).

    A revocation reaches back: give --from-index to void signatures made since a compromise.
    """

    def next_version(ledger: Ledger) -> TrustPolicy:
        current = _current(ledger, trust_file)
        index = ledger.size if from_index is None else from_index
        return current.with_revocation(
            _key_id(current, key), index, reason, expires=_expiry(expires, current)
        )

    return _record(options["ledger_dir"], next_version, options)
