"""``cmf``: the Customer Model Factory command line (docs/cli.md).

The CLI parses arguments, calls library functions (``customer_model_factory.pipeline``,
``.chain``, ``.ledger``) and prints; it holds no logic of its own. Command modules are imported
only when their command runs (or for ``--help``), and each imports the library modules it needs
inside its function, so a command starts fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from ._common import EXIT_USAGE, run_command

# (section title, ((command name, "module:attribute", one-line help), ...)), in help order.
SECTIONS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Set up a ledger",
        (
            ("init", "setup:init", "Create an empty ledger."),
            ("keygen", "setup:keygen", "Generate an Ed25519 key pair."),
            ("trust", "trust:trust", "Show and change the trust policy (keys, roles, k-of-n)."),
        ),
    ),
    (
        "Build factory stages (--record stores, signs and logs the manifest)",
        (
            ("dataset", "stages:dataset", "Validate a customer trace dataset."),
            ("training", "stages:training", "Build a training manifest."),
            ("benchmark", "stages:benchmark", "Record a candidate's benchmark result."),
            ("select", "stages:select", "Select a model among benchmark results."),
            ("deploy", "stages:deploy", "Build a deployment manifest."),
            ("sector", "stages:sector", "Build a sector evidence mapping."),
            ("evidence", "stages:evidence", "Build an evidence pack manifest."),
            ("runtime", "stages:runtime", "Build a runtime package."),
            ("monitor", "stages:monitor", "Build a monitoring manifest."),
            ("risk", "stages:risk", "Build a risk register."),
        ),
    ),
    (
        "Record and inspect",
        (
            ("record", "inspect:record", "Record a manifest file with its parents."),
            ("show", "inspect:show", "Show what the ledger knows about a blob."),
            ("cat", "inspect:cat", "Print a blob's raw bytes."),
            ("log", "inspect:log", "List every log entry."),
        ),
    ),
    (
        "Verify and release",
        (
            ("verify", "verify:verify", "Check the whole ledger and its trust policy chain."),
            ("fsck", "verify:fsck", "Re-verify every blob, entry, proof and checkpoint."),
            ("release", "release:release", "Gate, verify, promote a release; show its status."),
        ),
    ),
    (
        "Offline and air-gapped",
        (
            ("bundle", "bundle:bundle", "Export, verify offline, import or unpack a bundle."),
            ("proof", "bundle:proof", "Write a C2SP tlog-proof file for a recorded blob."),
            (
                "verify-equivocation",
                "bundle:verify_equivocation",
                "Check a proof that a log signed two histories.",
            ),
            ("receipt", "bundle:receipt", "Cosign an accepted checkpoint; store receipts."),
        ),
    ),
    (
        "Try it",
        (("demo", "demo:demo", "Run the whole factory on the bundled example."),),
    ),
)
_TARGETS = {name: target for _, commands in SECTIONS for name, target, _ in commands}
_HELP = {name: text for _, commands in SECTIONS for name, _, text in commands}


class CmfGroup(click.Group):
    """The top-level group: commands loaded lazily, listed by job, errors turned into exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the command names in help order."""
        return list(_TARGETS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the command's module on first use."""
        target = _TARGETS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        command = getattr(module, attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands in sections by job, without importing them."""
        for title, commands in SECTIONS:
            with formatter.section(title):
                formatter.write_dl([(name, help_text) for name, _, help_text in commands])

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; exit with 0, 1 or 2 (``_common.run_command``), never a traceback for
        bad input. With ``standalone_mode=False`` the exit code is returned instead."""
        code = run_command(
            lambda: super(CmfGroup, self).main(
                args=args,
                prog_name="cmf",  # also under CliRunner and python -m: one name in messages
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        )
        if not standalone_mode:
            return code
        sys.exit(code)


@click.group(cls=CmfGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="customer-model-factory", prog_name="cmf")
def cli() -> None:
    """Customer Model Factory: build, sign, log and verify customer model releases.

    Every stage manifest is a content-addressed blob; every record is a signed statement in an
    append-only Merkle log; a release is promoted only after its whole chain verifies.
    Start with `cmf demo`. Exit codes: 0 ok, 1 verification failed or not ready, 2 usage or
    input error.
    """


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (``cmf``)."""
    cli.main(args=argv, prog_name="cmf")


__all__ = ["EXIT_USAGE", "SECTIONS", "CmfGroup", "cli", "main"]
