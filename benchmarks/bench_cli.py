"""Benchmark release verification: in-process against in-toto, and ``cmf release verify`` startup.

Run from the repository root (in-toto comes from the ``bench`` extra:
``pip install -e '.[bench]'``)::

    python benchmarks/bench_cli.py              # 15 rounds of each measurement
    python benchmarks/bench_cli.py --rounds 5   # a quicker run

1. In-process verification of the demo's full release chain (``verify_release_chain`` on the
   committed example ``ledger/``, opening the ledger included: 15 records, 16 signatures, the
   checkpoint, 15 inclusion proofs, every blob re-read and re-hashed, the 3 MB trace dataset
   included) against in-toto's ``in_toto_verify`` of a 10-step layout with one Ed25519
   functionary per step (layout signature and expiry, 10 signed links read from disk, artifact
   rules chaining each step's product to the next step's material). Target: ours <= 1/3 of
   in-toto's time. Also printed: ours with ``deep=True`` (every trace row re-validated), and,
   as context only, the time SHA-256 alone takes over the trace blob, which in-toto's side has
   no counterpart for (its links carry digests; it never reads the artifacts).
   Both verifiers are checked first: each must accept the honest input and reject a tampered
   copy, so neither side can be accidentally doing nothing.
2. ``cmf release verify`` as a fresh process against ``python -c "import
   cryptography.hazmat.primitives.asymmetric.ed25519, click, msgpack"``. Target: <= 2.0x.
   Both processes run with the same bytecode cache (a private ``PYTHONPYCACHEPREFIX``, filled
   by a warm-up run), as an installed package has its ``.pyc`` files: the repository is an
   editable install and this environment may set ``PYTHONDONTWRITEBYTECODE``, which would
   otherwise make our side recompile every module on every run while the baseline's
   site-packages are precompiled.

Machines are noisy: the two sides of each comparison are measured alternately in the same
run, and medians are compared.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from customer_model_factory.chain import LedgerSource, verify_release_chain
from customer_model_factory.ledger.keys import load_public_key
from customer_model_factory.ledger.store import Ledger
from customer_model_factory.pipeline import DEMO_AS_OF

REPO = Path(__file__).resolve().parents[1]
LEDGER = REPO / "ledger"
ROOT_KEY = REPO / "keys-example" / "INSECURE-root.pub"
RELEASE_ID = "nw-claims-guard-2026.11.0"
STEPS = 10
BASELINE_IMPORT = "import cryptography.hazmat.primitives.asymmetric.ed25519, click, msgpack"


def timed(function: Callable[[], object]) -> float:
    """Return the seconds one call of ``function`` takes."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def alternate(
    first: Callable[[], object], second: Callable[[], object], rounds: int
) -> tuple[list[float], list[float]]:
    """Time ``first`` and ``second`` alternately ``rounds`` times each (after one warm-up)."""
    first()
    second()
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a.append(timed(first))
        b.append(timed(second))
    return a, b


# --- ours -------------------------------------------------------------------------------------


def our_verification(ledger_dir: Path, *, deep: bool = False) -> Callable[[], bool]:
    """Return a function verifying the demo release chain in ``ledger_dir``; it returns ok."""
    root = load_public_key(ROOT_KEY)
    gate = (ledger_dir / "refs" / RELEASE_ID).read_text().strip()

    def verify() -> bool:
        with Ledger.open(ledger_dir) as ledger:
            source = LedgerSource(ledger)
            report = verify_release_chain(source, gate, trust=root, as_of=DEMO_AS_OF, deep=deep)
        return report.ok

    return verify


def trace_blob() -> Path:
    """Return the object file of the demo's trace dataset."""
    with Ledger.open(LEDGER) as ledger:
        (entry,) = ledger.entries_of_kind("trace_dataset")
        return ledger.objects.path(entry.blob_id)


def check_ours(scratch: Path) -> None:
    """Our verifier must accept the committed ledger and reject a copy with one flipped byte."""
    if not our_verification(LEDGER)():
        raise SystemExit(f"the demo release in {LEDGER} does not verify: rebuild it")
    copy = scratch / "tampered-ledger"
    shutil.copytree(LEDGER, copy)
    target = copy / trace_blob().relative_to(LEDGER)
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    if our_verification(copy)():
        raise SystemExit("sanity check failed: a tampered trace dataset verified")


# --- in-toto ------------------------------------------------------------------------------------


def _key_dict(signer: Any) -> dict[str, Any]:
    """Return a securesystemslib signer's public key as an in-toto key dictionary."""
    key = signer.public_key
    return {"keyid": key.keyid, **key.to_dict()}


def intoto_verification(directory: Path, *, tamper: str = "") -> Callable[[], object]:
    """Write a signed 10-step layout's links to ``directory``; return its verification.

    ``tamper="signature"`` changes the last link's product after it was signed;
    ``tamper="rule"`` signs a last link whose material is not its predecessor's product. A real
    verification must refuse both.
    """
    # in-toto ships no type information; it is only the baseline here.
    from in_toto.models.layout import Layout, Step  # type: ignore[import-untyped]
    from in_toto.models.link import Link  # type: ignore[import-untyped]
    from in_toto.models.metadata import Metablock  # type: ignore[import-untyped]
    from in_toto.verifylib import in_toto_verify  # type: ignore[import-untyped]
    from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

    owner = CryptoSigner.generate_ed25519()
    layout = Layout()
    layout.set_relative_expiration(months=12)
    previous = None
    for number in range(STEPS):
        functionary = CryptoSigner.generate_ed25519()
        key = _key_dict(functionary)
        layout.add_functionary_key(key)
        name = f"step-{number}"
        step = Step(name=name)
        step.pubkeys = [key["keyid"]]
        step.threshold = 1
        # Each step creates one artifact and consumes its predecessor's, like a stage chain.
        step.expected_products = [["CREATE", f"artifact-{number}"], ["DISALLOW", "*"]]
        materials: dict[str, Any] = {}
        if previous is not None:
            step.expected_materials = [
                ["MATCH", f"artifact-{number - 1}", "WITH", "PRODUCTS", "FROM", previous],
                ["DISALLOW", "*"],
            ]
            consumed = number if tamper == "rule" and number == STEPS - 1 else number - 1
            materials = {f"artifact-{number - 1}": _digest(consumed)}
        layout.steps.append(step)
        link = Link(
            name=name,
            materials=materials,
            products={f"artifact-{number}": _digest(number)},
            command=[],
        )
        signed = Metablock(signed=link)
        signed.create_signature(functionary)
        if tamper == "signature" and number == STEPS - 1:
            signed.signed.products = {f"artifact-{number}": _digest(number + 1)}
        signed.dump(str(directory / f"{name}.{key['keyid'][:8]}.link"))
        previous = name
    metadata = Metablock(signed=layout)
    metadata.create_signature(owner)
    owner_key = _key_dict(owner)
    keys = {owner_key["keyid"]: owner_key}
    return lambda: in_toto_verify(metadata, keys, link_dir_path=str(directory))


def _digest(number: int) -> dict[str, str]:
    """Return the artifact digest dictionary of artifact ``number``."""
    return {"sha256": hashlib.sha256(f"artifact {number}".encode()).hexdigest()}


def check_intoto(scratch: Path) -> None:
    """in-toto must accept the honest links, and refuse a link altered after signing (no
    valid signature meets the threshold) and a signed link that breaks the artifact rules."""
    from in_toto.exceptions import (  # type: ignore[import-untyped]
        RuleVerificationError,
        ThresholdVerificationError,
    )

    honest = scratch / "intoto-check"
    honest.mkdir()
    intoto_verification(honest)()
    refusals = {"signature": ThresholdVerificationError, "rule": RuleVerificationError}
    for tamper, refusal in refusals.items():
        directory = scratch / f"intoto-{tamper}"
        directory.mkdir()
        try:
            intoto_verification(directory, tamper=tamper)()
        except refusal:
            continue
        raise SystemExit(f"sanity check failed: in-toto verified a link with a bad {tamper}")


# --- fresh processes ----------------------------------------------------------------------------


def run_process(arguments: list[str], env: dict[str, str]) -> Callable[[], object]:
    """Return a function running ``arguments`` to completion (output discarded, must succeed)."""

    def run() -> None:
        subprocess.run(
            arguments, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    return run


def cached_bytecode_env(cache: Path) -> dict[str, str]:
    """Return this environment with bytecode written to and read from ``cache``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def report(label: str, ours: list[float], theirs: list[float], target: float, unit: str) -> None:
    """Print medians, the ratio ours/theirs and whether the target ratio is met."""
    mine, base = statistics.median(ours), statistics.median(theirs)
    ratio = mine / base
    verdict = "met" if ratio <= target else "NOT met"
    print(f"{label}")
    print(f"  ours     median {mine * 1e3:8.1f} ms  (min {min(ours) * 1e3:.1f})")
    print(f"  {unit:<8} median {base * 1e3:8.1f} ms  (min {min(theirs) * 1e3:.1f})")
    print(f"  ratio ours/{unit} = {ratio:.2f} (target <= {target:.2f}: {verdict})")


def main() -> None:
    """Run both benchmarks and print their figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="measurements of each side")
    rounds = parser.parse_args().rounds
    if not (LEDGER / "config.json").is_file():
        raise SystemExit(f"{LEDGER} is missing: run `cmf demo --ledger ledger` first")
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as scratch_name:
        scratch = Path(scratch_name)
        check_ours(scratch)
        check_intoto(scratch)
        links = scratch / "intoto"
        links.mkdir()
        intoto = intoto_verification(links)
        ours, theirs = alternate(our_verification(LEDGER), intoto, rounds)
        report(
            "1. in-process verification: demo release chain vs in_toto_verify (10 steps)",
            ours,
            theirs,
            1 / 3,
            "in-toto",
        )
        deep, theirs_again = alternate(our_verification(LEDGER, deep=True), intoto, rounds)
        in_toto = statistics.median(theirs + theirs_again)
        print(
            f"  ours with deep=True (every trace row re-validated): median "
            f"{statistics.median(deep) * 1e3:.1f} ms, {statistics.median(deep) / in_toto:.2f}x "
            "in-toto"
        )
        blob = trace_blob()
        hashing = statistics.median(
            timed(lambda: hashlib.file_digest(blob.open("rb"), "sha256")) for _ in range(rounds)
        )
        print(
            f"  context: SHA-256 of the {blob.stat().st_size / 1e6:.1f} MB trace blob alone takes "
            f"{hashing * 1e3:.1f} ms ({hashing / in_toto:.2f}x in-toto); in-toto never reads "
            "artifacts"
        )
        cmf = [sys.executable, "-m", "customer_model_factory.cli", "release", "verify"]
        cmf += [RELEASE_ID, "--ledger", str(LEDGER), "--trust", str(ROOT_KEY)]
        cmf += ["--as-of", "2026-11-20T12:30:00Z"]
        baseline = [sys.executable, "-c", BASELINE_IMPORT]
        env = cached_bytecode_env(scratch / "pycache")
        ours, theirs = alternate(run_process(cmf, env), run_process(baseline, env), rounds)
        report(
            "2. `cmf release verify` as a fresh process vs the import baseline (bytecode cached)",
            ours,
            theirs,
            2.0,
            "imports",
        )
        # Context: the environment as given, where an editable install without a writable
        # bytecode cache recompiles our modules on every run (the baseline's are precompiled).
        plain = dict(os.environ)
        ours, theirs = alternate(run_process(cmf, plain), run_process(baseline, plain), rounds)
        mine, base = statistics.median(ours), statistics.median(theirs)
        print(
            f"  context, environment as given (PYTHONDONTWRITEBYTECODE="
            f"{plain.get('PYTHONDONTWRITEBYTECODE', '')!r}): ours {mine * 1e3:.1f} ms, "
            f"imports {base * 1e3:.1f} ms, ratio {mine / base:.2f}"
        )


if __name__ == "__main__":
    main()
