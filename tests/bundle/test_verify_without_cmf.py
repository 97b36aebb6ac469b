"""Runs the stock-tool steps of docs/verify-without-cmf.md for real on the demo's bundle.

Every shell block marked ``<!-- test: run -->`` is run, in order, in one ``bash -euo pipefail``
session inside the unpacked bundle: sha256sum, jq, xxd and ``openssl pkeyutl -verify -rawin``.
The steps must pass on the genuine bundle and fail once anything they check is altered.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from customer_model_factory.bundle.export import export_bundle, unpack_bundle
from customer_model_factory.bundle.format import Bundle
from customer_model_factory.ledger.dsse import Envelope
from customer_model_factory.ledger.keys import load_private_key, load_public_key
from customer_model_factory.ledger.store import Ledger
from customer_model_factory.pipeline import DEMO_AS_OF

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "verify-without-cmf.md"
TOOLS = ("bash", "jq", "xxd", "openssl", "sha256sum", "base64", "awk")

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS),
    reason=f"needs the stock tools {', '.join(TOOLS)}",
)


# The doc's runnable blocks, in order: pin the policy, blob ids, key files, statements, the
# release, the checkpoint, the witnesses, the Go verifier key.
PIN, BLOB_IDS, KEY_FILES, STATEMENTS, RELEASE, CHECKPOINT, WITNESSES, VKEY = range(8)


def doc_script(steps: Sequence[int] | None = None) -> str:
    """Return the doc's runnable blocks (all, or the ``steps`` given), in order, as a script."""
    blocks = re.findall(r"<!-- test: run -->\n```sh\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(blocks) == 8, "the doc's runnable steps changed: update this test"
    return "".join(blocks[n] for n in (range(len(blocks)) if steps is None else steps))


@pytest.fixture(scope="module")
def demo_bundle() -> Bundle:
    """The committed demo ledger's release, exported (reading the ledger only)."""
    with Ledger.open(REPO / "ledger") as ledger:
        release = ledger.ref("nw-claims-guard-2026.11.0")
        root = load_public_key(REPO / "keys-example" / "INSECURE-root.pub")
        return export_bundle(ledger, release, trust=root, as_of=DEMO_AS_OF)


def run_steps(
    directory: Path, steps: Sequence[int] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the doc's steps (all, or ``steps``) in ``directory`` (an unpacked bundle)."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", doc_script(steps)],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )


def test_the_documented_steps_verify_the_demo_bundle(demo_bundle: Bundle, tmp_path: Path) -> None:
    unpack_bundle(demo_bundle, tmp_path / "bundle")
    result = run_steps(tmp_path / "bundle")
    assert result.returncode == 0, result.stderr + result.stdout
    signatures = sum(1 for _ in re.finditer("Signature Verified Successfully", result.stdout))
    envelope_signatures = result.stdout.count(" key(s)")
    assert envelope_signatures == len(demo_bundle.entries)
    # Every DSSE signature, the log's checkpoint signature and the witness's cosignature.
    assert signatures >= len(demo_bundle.entries) + 2
    assert "every blob id is the SHA-256 of its bytes" in result.stdout
    assert "is logged and promoted" in result.stdout
    assert "cosigned by witness INSECURE-witness" in result.stdout


def _tampered(demo_bundle: Bundle, tmp_path: Path) -> Path:
    directory = tmp_path / "bundle"
    unpack_bundle(demo_bundle, directory)
    return directory


def test_the_steps_fail_on_an_altered_blob(demo_bundle: Bundle, tmp_path: Path) -> None:
    directory = _tampered(demo_bundle, tmp_path)
    gate = directory / "blobs" / demo_bundle.release
    gate.write_bytes(gate.read_bytes().replace(b"northwind", b"southwind", 1))
    result = run_steps(directory, [PIN, BLOB_IDS])
    assert result.returncode != 0 and "MISMATCH" in result.stdout


def test_the_steps_fail_on_an_altered_checkpoint(demo_bundle: Bundle, tmp_path: Path) -> None:
    directory = _tampered(demo_bundle, tmp_path)
    checkpoint = directory / "checkpoint"
    size = demo_bundle.claimed_checkpoint.size
    text = checkpoint.read_bytes().replace(f"\n{size}\n".encode(), f"\n{size + 1}\n".encode(), 1)
    checkpoint.write_bytes(text)
    result = run_steps(directory, [PIN, KEY_FILES, CHECKPOINT])
    assert result.returncode != 0
    assert "Signature Verification Failure" in result.stdout + result.stderr


def test_the_steps_fail_on_a_signature_by_a_key_without_the_role(
    demo_bundle: Bundle, tmp_path: Path
) -> None:
    directory = _tampered(demo_bundle, tmp_path)
    # Re-sign the training manifest's statement with the selection-report key: a valid
    # signature over the right bytes, by a key that does not hold the training_manifest role.
    leaves = sorted((directory / "entries").glob("*.leaf"), key=lambda p: int(p.stem))
    training = next(p for p in leaves if p.read_text().split("\n")[1] == "training_manifest")
    lines = training.read_text().split("\n")
    original = Envelope.from_json((directory / "blobs" / lines[3]).read_bytes())
    intruder = load_private_key(REPO / "keys-example" / "INSECURE-selection_report.pem")
    forged = Envelope(original.payload, original.payload_type, ()).signed_by(intruder).to_json()
    forged_id = hashlib.sha256(forged).hexdigest()
    (directory / "blobs" / forged_id).write_bytes(forged)
    lines[3] = forged_id
    training.write_text("\n".join(lines))
    result = run_steps(directory, [PIN, BLOB_IDS, KEY_FILES, STATEMENTS])
    assert result.returncode != 0
    assert "every blob id is the SHA-256 of its bytes" in result.stdout  # step 3 passed
    assert f"{training.name}: training_manifest" not in result.stdout
