"""What every ``cmf`` command shares: options, argument types, key loading, output, errors.

Errors are translated in ONE place, ``run_command``: a library exception never reaches the
user as a traceback. Exit codes: 0 success, 1 verification failed / refused / not ready, 2 usage
or input error (one line on stderr: ``cmf: error: <what>``).

Imports here stay light (click and the standard library); library modules are imported inside
the functions that need them, so that ``cmf release verify`` loads only what verification uses.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from ..chain.findings import ChainFinding
    from ..inputs import Trust
    from ..ledger.keys import PrivateKey, PublicKey
    from ..ledger.store import Ledger

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

LEDGER_ENV = "CMF_LEDGER"
LOG_KEY_ENV = "CMF_LOG_KEY"
PASSPHRASE_ENV = "CMF_PASSPHRASE_FILE"
TRUST_ENV = "CMF_TRUST"

_HEX_ID = re.compile(r"[0-9a-f]{64}")
_HEX_PREFIX = re.compile(r"[0-9a-f]{4,63}")
F = TypeVar("F", bound=Callable[..., Any])


# --- errors --------------------------------------------------------------------------------------


class CommandFailed(Exception):
    """A command's verdict is negative (exit 1); the command already printed why."""


def one_line(text: str) -> str:
    """Return ``text`` on one line (newlines and runs of spaces collapsed)."""
    return " ".join(str(text).split())


def error_line(exc: BaseException) -> str:
    """Return the one-line description of an input/usage error (no ``cmf: error:`` prefix)."""
    if isinstance(exc, click.UsageError):
        hint = ""
        if exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        return one_line(exc.format_message()) + hint
    if isinstance(exc, click.ClickException):
        return one_line(exc.format_message())
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return one_line(f"{where}: {exc.strerror}" if where else exc.strerror)
    return one_line(str(exc)) or type(exc).__name__


def _input_errors() -> tuple[type[BaseException], ...]:
    """Return the exception types that mean bad input (exit 2), imported only when needed."""
    from ..ledger.errors import LedgerError

    return (click.ClickException, LedgerError, ValueError, OSError, UnicodeError)


def run_command(invoke: Callable[[], Any]) -> int:
    """Run a command; return its exit code, turning every known exception into one.

    ChainError (recording or promotion refused) prints every finding and gives 1; input,
    usage and ledger errors print one line and give 2.
    """
    try:
        result = invoke()
    except CommandFailed:
        return EXIT_FAILED
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("cmf: error: interrupted", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:
        from ..chain.findings import ChainError

        if isinstance(exc, ChainError):
            click.echo(f"cmf: refused: {len(exc.findings)} finding(s)", err=True)
            for finding in exc.findings:
                click.echo(f"cmf: refused: {format_finding(finding)}", err=True)
            return EXIT_FAILED
        if isinstance(exc, _input_errors()):
            click.echo(f"cmf: error: {error_line(exc)}", err=True)
            return EXIT_USAGE
        raise
    return int(result) if isinstance(result, int) else EXIT_OK


class InputProblem(click.ClickException):
    """Bad input found by a command itself (exit 2, one line, no usage hint)."""

    exit_code = EXIT_USAGE


def fail(message: str) -> NoReturn:
    """Stop the command with an input error (exit 2, one line)."""
    raise InputProblem(message)


# --- output --------------------------------------------------------------------------------------


def emit_json(document: Any) -> None:
    """Print ``document`` as indented, key-sorted JSON on stdout."""
    click.echo(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))


def short(blob_id: str | None) -> str:
    """Return the first 12 hex digits of an id (for human output)."""
    return (blob_id or "")[:12]


def format_finding(finding: ChainFinding) -> str:
    """Return one line: code, where (kind, short blob id, log index) and message."""
    where = " ".join(
        part
        for part in (
            finding.kind,
            short(finding.blob_id),
            f"#{finding.index}" if finding.index is not None else "",
        )
        if part
    )
    severity = "" if finding.severity == "error" else f" ({finding.severity})"
    located = f" [{where}]" if where else ""
    return one_line(f"{finding.code}{severity}{located}: {finding.message}")


def print_findings(findings: Iterable[ChainFinding], *, err: bool = False) -> None:
    """Print each finding on its own indented line."""
    for finding in findings:
        click.echo(f"  {format_finding(finding)}", err=err)


def manifest_finding_line(item: dict[str, str]) -> str:
    """Return one line for a stage manifest finding dict (code, severity, message, ...)."""
    extra = ", ".join(
        f"{k}={v}" for k, v in sorted(item.items()) if k not in ("code", "severity", "message")
    )
    return one_line(
        f"{item.get('severity', 'error')}  {item.get('code', '')}: {item.get('message', '')}"
        + (f" ({extra})" if extra else "")
    )


# --- argument types ------------------------------------------------------------------------------


class InstantType(click.ParamType):  # type: ignore[type-arg]  # generic since click 8.2
    """An RFC 3339 instant (``2026-11-20T12:00:00Z``) converted to an aware UTC datetime."""

    name = "INSTANT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse strictly (``timestamps.parse_instant``)."""
        if isinstance(value, datetime):
            return value
        from ..timestamps import parse_instant

        try:
            return parse_instant(value, field=param.name if param and param.name else "time")
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


INSTANT = InstantType()
EXISTING_FILE = click.Path(exists=False, dir_okay=False, path_type=Path)


def now() -> datetime:
    """Return the current instant (UTC, whole seconds)."""
    return datetime.now(UTC).replace(microsecond=0)


def statement_time(moment: datetime | None) -> str:
    """Return the statement ``time`` spelling of ``moment`` (default: now)."""
    from ..ledger.statement import format_time

    return format_time(moment or now())


# --- shared options ------------------------------------------------------------------------------


def common_options(function: F) -> F:
    """Add ``--ledger DIR`` (env CMF_LEDGER, default ./ledger) and ``--json``."""
    function = click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print machine-readable JSON on stdout.",
    )(function)
    return click.option(
        "--ledger",
        "ledger_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("ledger"),
        envvar=LEDGER_ENV,
        show_default=True,
        show_envvar=True,
        help="The ledger directory.",
    )(function)


def signing_options(function: F) -> F:
    """Add ``--key`` (repeatable), ``--log-key``, ``--passphrase-file`` and ``--time``."""
    for option in reversed(
        (
            click.option(
                "--key",
                "key_files",
                multiple=True,
                type=EXISTING_FILE,
                help="Private key (PEM) that signs the record; repeat for k-of-n approvals.",
            ),
            click.option(
                "--log-key",
                "log_key_file",
                type=EXISTING_FILE,
                envvar=LOG_KEY_ENV,
                show_envvar=True,
                help="The ledger's log private key (signs the new checkpoint).",
            ),
            click.option(
                "--passphrase-file",
                type=EXISTING_FILE,
                envvar=PASSPHRASE_ENV,
                show_envvar=True,
                help="File holding the passphrase of encrypted keys.",
            ),
            click.option(
                "--time",
                "record_time",
                type=INSTANT,
                default=None,
                help="Statement time (RFC 3339; default: now).",
            ),
        )
    ):
        function = option(function)
    return function


# A bound on what a typo can fork; no command starts more workers than it has work for.
MAX_JOBS = 256


def jobs_option(work: str, note: str) -> Callable[[F], F]:
    """Return the ``--jobs N`` option: worker processes for ``work``, 0 (automatic) to MAX_JOBS;
    ``note`` ends the help text's parenthesis."""
    return click.option(
        "--jobs",
        type=click.IntRange(0, MAX_JOBS),
        default=0,
        show_default=True,
        help=f"Worker processes for {work} (0: automatic, 1: none; at most {MAX_JOBS}{note}).",
    )


def trust_options(function: F) -> F:
    """Add ``--trust FILE`` (env CMF_TRUST) and ``--as-of INSTANT``."""
    function = click.option(
        "--as-of",
        type=INSTANT,
        default=None,
        help="Verify as of this instant (RFC 3339; default: now).",
    )(function)
    return click.option(
        "--trust",
        "trust_file",
        type=EXISTING_FILE,
        envvar=TRUST_ENV,
        show_envvar=True,
        help="Pinned trust root: a root public key or a trust-policy JSON file "
        "(default: the ledger's first policy, trust on first use).",
    )(function)


# --- keys ----------------------------------------------------------------------------------------


def read_passphrase(path: Path | None) -> bytes | None:
    """Return the passphrase in ``path`` without its trailing newline (None without a file)."""
    if path is None:
        return None
    data = Path(path).read_bytes()
    return data[:-1] if data.endswith(b"\n") else data


def _is_encrypted_pem(data: bytes) -> bool:
    """True if PEM ``data`` holds an encrypted PKCS#8 private key."""
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data


def load_signing_key(path: Path, passphrase: bytes | None) -> PrivateKey:
    """Load a private key file; the passphrase is used only for an encrypted key.

    KeyFormatError (naming the file) for a malformed key, a wrong passphrase, or an encrypted
    key without ``--passphrase-file``.
    """
    from ..ledger.errors import KeyFormatError
    from ..ledger.keys import PrivateKey

    data = Path(path).read_bytes()
    encrypted = _is_encrypted_pem(data)
    try:
        return PrivateKey.from_pem(data, passphrase if encrypted else None)
    except KeyFormatError as exc:
        hint = " (give --passphrase-file)" if encrypted and passphrase is None else ""
        raise KeyFormatError(f"{path}: {exc}{hint}") from None


def load_signers(paths: Sequence[Path], passphrase_file: Path | None) -> list[PrivateKey]:
    """Load every ``--key`` file (at least one)."""
    if not paths:
        fail("give at least one signing key with --key FILE")
    passphrase = read_passphrase(passphrase_file)
    return [load_signing_key(path, passphrase) for path in paths]


def load_log_key(path: Path | None, passphrase_file: Path | None) -> PrivateKey:
    """Load the ``--log-key`` file (required for any command that writes the ledger)."""
    if path is None:
        fail(f"writing the ledger needs its log private key: --log-key FILE (or {LOG_KEY_ENV})")
    return load_signing_key(path, read_passphrase(passphrase_file))


def load_any_public_key(path: Path, passphrase_file: Path | None = None) -> PublicKey:
    """Return the public key in ``path``: a public key (PEM or verifier key) or a private key."""
    data = Path(path).read_bytes()
    if b"PRIVATE KEY-----" in data:
        return load_signing_key(path, read_passphrase(passphrase_file)).public_key
    from ..ledger.keys import load_public_key

    return load_public_key(path)


def key_name_of_file(path: Path) -> str:
    """Return the key name a key file stands for: its name without .pem/.pub/.vkey."""
    name = Path(path).name
    for suffix in (".pem", ".pub", ".vkey"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


# --- the ledger ----------------------------------------------------------------------------------


def open_ledger(path: Path) -> Ledger:
    """Open the ledger at ``path`` for reading (LedgerError, exit 2, if it is not one)."""
    from ..ledger.store import Ledger

    return Ledger.open(Path(path))


def resolve_trust(ledger: Ledger, trust_file: Path | None) -> Trust:
    """Return the pinned trust root (``--trust``) or the ledger's first policy (TOFU)."""
    from ..inputs import resolve_trust as resolve

    return resolve(ledger, trust_file)


def trust_line(trust: Trust) -> str:
    """Return a one-line description of the trust root, warning when it is not pinned."""
    if trust.pinned:
        return f"trust: pinned to {trust.source}"
    return f"trust: {trust.source} (NOT pinned: pass --trust ROOT.pub to pin it)"


def resolve_blob(ledger: Ledger, text: str) -> str:
    """Return the blob id ``text`` names: a full id, a ref (release id), a unique hex prefix of
    at least 4 digits, or a file whose SHA-256 is taken. UsageError if it names nothing."""
    if _HEX_ID.fullmatch(text):
        return text
    from ..ledger.errors import LedgerError

    try:
        return ledger.ref(text)
    except LedgerError:  # no such ref, or not a ref name at all
        pass
    if _HEX_PREFIX.fullmatch(text):
        matches = [blob_id for blob_id in ledger.objects.iter_ids() if blob_id.startswith(text)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            fail(f"{text!r} is ambiguous: {len(matches)} blobs start with it")
    if Path(text).is_file():
        from ..pipeline import file_blob_id

        return file_blob_id(Path(text))
    fail(f"unknown blob id, ref or file: {text!r}")


def resolve_parent(text: str) -> str:
    """Return a ``--parent`` as a blob id: 64 hex digits as given, else the file's SHA-256."""
    if _HEX_ID.fullmatch(text):
        return text
    path = Path(text)
    if not path.is_file():
        fail(f"--parent {text!r}: neither a blob id (64 hex digits) nor a file")
    from ..pipeline import file_blob_id

    return file_blob_id(path)


# --- release names and trust, shared by release, verify and bundle commands --------------------


def resolve_release(ledger: Ledger, text: str) -> tuple[str, str | None]:
    """Return (blob id, release name) for RELEASE: the name is ``text`` when it resolved as a
    ref, None when it was a blob id, a prefix or a file (``resolve_blob``'s order: a full id
    first, then a ref)."""
    from ..ledger.errors import LedgerError

    if _HEX_ID.fullmatch(text) is None:
        try:
            return ledger.ref(text), text
        except LedgerError:  # no such ref, or not a ref name: a prefix or a file, then
            pass
    return resolve_blob(ledger, text), None


def resolve_named_release(ledger: Ledger, text: str) -> str:
    """Return the blob id RELEASE names; ChainError (exit 1, every finding printed) when it is
    a ref to a gate whose own ``release_id`` is not that name."""
    from ..chain import ChainError, LedgerSource
    from ..chain.verify import release_name_findings

    blob_id, name = resolve_release(ledger, text)
    if name is not None:
        problems = release_name_findings(LedgerSource(ledger), blob_id, name)
        if problems:
            raise ChainError(problems)
    return blob_id


def trust_json(trust: Trust) -> str:
    """Return the ``"trust"`` value of a command's JSON: the pinned file, or ``"tofu"``."""
    return trust.source if trust.pinned else "tofu"


def warn_if_first_use(trust: Trust, as_json: bool) -> None:
    """Say on stderr, in one line, that the trust root was taken on first use and how to pin
    it; with ``--json`` the document's ``"trust": "tofu"`` says it instead."""
    if trust.pinned or as_json:
        return
    click.echo(
        f"cmf: warning: trust on first use: {trust.source} is trusted only because the ledger "
        f"holds it; pin a root key or policy obtained out of band with --trust FILE "
        f"(or {TRUST_ENV})",
        err=True,
    )


# --- progress ------------------------------------------------------------------------------------


def progress_rows(label: str) -> Callable[[Iterator[dict[str, Any]]], Iterable[dict[str, Any]]]:
    """Return a row filter that shows a progress bar on stderr, only when stderr is a terminal."""

    def with_progress(rows: Iterator[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        if not sys.stderr.isatty():
            yield from rows
            return
        with click.progressbar(rows, label=label, file=sys.stderr, show_pos=True) as bar:
            yield from bar

    return with_progress


def write_new_file(path: Path, data: bytes, mode: int) -> Path:
    """Create ``path`` durably with all of ``data``; FileExistsError if it exists (never
    overwrites). On any error the new file is removed: it is whole or absent."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        written = 0
        while written < len(data):  # os.write may write less than it was given
            written += os.write(fd, data[written:])
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        Path(path).unlink(missing_ok=True)
        raise
    os.close(fd)
    directory = os.open(Path(path).parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the new name survives a crash only once its directory is synced
    finally:
        os.close(directory)
    return path
