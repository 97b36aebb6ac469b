"""What the verify commands import: ``cmf bundle verify`` and ``cmf release verify`` run in a
fresh interpreter and must not load modules that verifying does not use (the ledger's writer
and store for a bundle, the I/O thread pool and ``logging``, ``cryptography``'s key
serialization, the stage builders' orchestration).

Start-up time is measured by ``benchmarks/bench_bundle.py --part startup`` and
``benchmarks/bench_cli.py``; these tests pin the module sets behind it, which are deterministic.
Each probe runs the real command (``customer_model_factory.cli.main``) over the committed demo
ledger or a bundle exported from it, and reports the modules imported after interpreter
start-up, so whatever the environment's ``site`` imports is not counted against us.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_fixtures import AS_OF, COMMITTED_LEDGER, KEYS, RELEASE_ID, ROOT_PUB, invoke

from customer_model_factory.ledger.keys import load_public_key

# Runs ``main(argv)`` after recording the modules already loaded, then writes the exit code and
# the newly imported module names to the file named by its first argument. ``json`` is imported
# only afterwards, so the probe itself adds nothing to the set.
PROBE = """\
import sys
before = set(sys.modules)
from customer_model_factory.cli import main
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
import json
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"exit": code, "imported": sorted(set(sys.modules) - before)}, out)
"""

# Not needed by any verify command.
NEVER_FOR_VERIFY = (
    "tempfile",  # writers only (atomic writes); with it shutil, random, bz2, lzma
    "shutil",
    "concurrent.futures",  # the ledger's I/O thread pool: writers only
    "logging",  # loaded by concurrent.futures
    "multiprocessing",  # fsck and parallel dataset validation
    "cryptography.hazmat.primitives.serialization",  # private keys only
    "cryptography.hazmat.primitives.serialization.ssh",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "customer_model_factory.pipeline",  # the stage builders' orchestration
    "customer_model_factory.cli.stages",
    "customer_model_factory.chain.record",
    "customer_model_factory.ledger.fsck",
    "customer_model_factory.bundle.export",
    "customer_model_factory.bundle.importer",
)

# A bundle is verified with no ledger: none of the ledger directory's machinery.
NEVER_FOR_BUNDLE_VERIFY = (
    *NEVER_FOR_VERIFY,
    "customer_model_factory.ledger.store",
    "customer_model_factory.ledger.logstore",
    "customer_model_factory.ledger.lock",
    "customer_model_factory.ledger.objects",  # the object store writes; ledger.blobs reads
    "customer_model_factory.ledger.durable",
    "secrets",  # temp file names of the object store
    "customer_model_factory.chain.ledger_source",
)


def probe(tmp_path: Path, *argv: str | Path) -> tuple[int, set[str]]:
    """Run ``cmf argv`` in a fresh interpreter; return its exit code and the modules it imported."""
    report = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *(str(arg) for arg in argv)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return result["exit"], set(result["imported"])


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Return the ``names`` found in ``modules`` (a module counts with any of its submodules)."""
    return [
        name
        for name in names
        if name in modules or any(module.startswith(f"{name}.") for module in modules)
    ]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo release exported from the committed ledger, with and without its trace data."""
    directory = tmp_path_factory.mktemp("bundles")
    paths = {"full": directory / "full.cmfbundle", "without-data": directory / "bare.cmfbundle"}
    for name, path in paths.items():
        extra = ["--without-data"] if name == "without-data" else []
        result = invoke(
            "bundle", "export", RELEASE_ID, "-o", path, *extra, "--trust", ROOT_PUB,
            "--as-of", AS_OF, "--ledger", COMMITTED_LEDGER,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
    return paths


@pytest.mark.parametrize("variant", ["full", "without-data"])
@pytest.mark.parametrize("root", ["INSECURE-root.pub", "INSECURE-root.vkey"])
def test_bundle_verify_imports_no_ledger_pool_or_key_serialization(
    tmp_path: Path, bundles: dict[str, Path], variant: str, root: str
) -> None:
    """``cmf bundle verify`` (root pinned as PEM or as a verifier key) loads only the verifier."""
    code, modules = probe(
        tmp_path, "bundle", "verify", bundles[variant], "--trust-root", KEYS / root,
        "--at", AS_OF,
    )  # fmt: skip
    assert code == 0
    # The probe really ran the verifier (so the absences below mean something).
    assert {"customer_model_factory.bundle.verify", "customer_model_factory.chain.verify"} <= (
        modules
    )
    assert loaded(modules, NEVER_FOR_BUNDLE_VERIFY) == []


def test_bundle_verify_json_output_imports_no_more(
    tmp_path: Path, bundles: dict[str, Path]
) -> None:
    """``--json`` (the machine report) takes the same lean path."""
    code, modules = probe(
        tmp_path, "bundle", "verify", bundles["full"], "--trust-root", ROOT_PUB, "--at", AS_OF,
        "--json",
    )  # fmt: skip
    assert code == 0
    assert "customer_model_factory.bundle.verify" in modules
    assert loaded(modules, NEVER_FOR_BUNDLE_VERIFY) == []


def test_release_verify_imports_no_writer_pool_or_key_serialization(tmp_path: Path) -> None:
    """``cmf release verify`` reads the ledger but loads none of the writing machinery."""
    code, modules = probe(
        tmp_path, "release", "verify", RELEASE_ID, "--ledger", COMMITTED_LEDGER,
        "--trust", ROOT_PUB, "--as-of", AS_OF,
    )  # fmt: skip
    assert code == 0
    assert {"customer_model_factory.chain.verify", "customer_model_factory.ledger.store"} <= (
        modules
    )
    assert loaded(modules, NEVER_FOR_VERIFY) == []


# Library modules of the verify path, and what none of them may load when imported.
VERIFY_PATH_MODULES = (
    "customer_model_factory.ledger.keys",
    "customer_model_factory.ledger.durable",
    "customer_model_factory.ledger.blobs",
    "customer_model_factory.ledger.objects",
    "customer_model_factory.chain.source",
    "customer_model_factory.chain.promote",
    "customer_model_factory.bundle.verify",
)
LOADED_ONLY_WHEN_USED = (
    "concurrent.futures",
    "logging",
    "cryptography.hazmat.primitives.serialization",
    "customer_model_factory.ledger.store",
    "customer_model_factory.chain.ledger_source",
)


def test_library_modules_import_lazily() -> None:
    """Importing the verify path's modules (all of them, so each one too) does not drag in what
    only writers and private keys use."""
    code = (
        f"import sys, {', '.join(VERIFY_PATH_MODULES)}\n"
        f"print(sorted(name for name in {LOADED_ONLY_WHEN_USED!r} if name in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_lazy_imports_still_work_when_needed() -> None:
    """What is imported lazily still loads on first use: key serialization for a private key,
    ``concurrent.futures`` for the I/O pool."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from customer_model_factory.ledger import durable\n"
        "from customer_model_factory.ledger.keys import load_private_key\n"
        f"key = load_private_key(Path({str(KEYS / 'INSECURE-root.pem')!r}))\n"
        "assert 'cryptography.hazmat.primitives.serialization' in sys.modules\n"
        "assert durable.run_concurrently([lambda: 1, lambda: 2]) == [1, 2]\n"
        "assert 'concurrent.futures' in sys.modules\n"
        "print(key.public_key.key_id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == load_public_key(ROOT_PUB).key_id
