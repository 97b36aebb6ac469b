"""Runs the stock-tool steps of docs/verify-without-cmf.md for real on the demo's bundle.

Every shell block marked ``<!-- test: run -->`` is run, in order, in one ``bash -euo pipefail``
session inside the unpacked bundle: sha256sum, jq, xxd and ``openssl pkeyutl -verify -rawin``.
The steps must pass on the genuine bundle and fail once anything they check is altered.

The blocks marked ``<!-- test: go -->`` build and run the Go verifier of step 6
(docs/go/verifyproof, golang.org/x/mod's sumdb/note and sumdb/tlog) when a Go toolchain and
Debian's x/mod sources are installed. There is no network here, so the doc's ``go get`` is
served by a file-system module proxy made from those sources; everything Go writes (module and
build caches) stays in pytest's temporary directories.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import bundle_fixtures as bf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.bundle.export import export_bundle, unpack_bundle
from customer_model_factory.bundle.format import Bundle
from customer_model_factory.ledger.dsse import Envelope
from customer_model_factory.ledger.keys import PrivateKey, load_private_key, load_public_key
from customer_model_factory.ledger.note import Note, format_note, sign_note
from customer_model_factory.ledger.store import Ledger
from customer_model_factory.pipeline import DEMO_AS_OF

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "verify-without-cmf.md"
GO_PROGRAM = REPO / "docs" / "go" / "verifyproof"
TOOLS = ("bash", "jq", "xxd", "openssl", "sha256sum", "base64", "awk")
# Where Debian's golang-golang-x-mod-dev puts the x/mod sources.
X_MOD_SOURCES = Path("/usr/share/gocode/src/golang.org/x/mod")
X_MOD = "golang.org/x/mod"

needs_tools = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS),
    reason=f"needs the stock tools {', '.join(TOOLS)}",
)


def pinned_x_mod_version() -> str:
    """Return the x/mod version that docs/go/verifyproof/go.mod requires."""
    found: list[str] = re.findall(
        r"^require golang\.org/x/mod (v\S+)$", (GO_PROGRAM / "go.mod").read_text(), re.M
    )
    assert len(found) == 1, "docs/go/verifyproof/go.mod must require golang.org/x/mod once"
    return found[0]


def debian_x_mod_version() -> str | None:
    """Return the installed golang-golang-x-mod-dev package's upstream version, or None."""
    if shutil.which("dpkg-query") is None:
        return None
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "golang-golang-x-mod-dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    # Debian versions read UPSTREAM-REVISION, e.g. 0.7.0-1; empty when not installed.
    upstream = result.stdout.strip().rsplit("-", 1)[0]
    return "v" + upstream if result.returncode == 0 and upstream else None


def go_skip_reason() -> str | None:
    """Say why the Go verifier cannot be built offline here, or None when it can."""
    install = "apt-get install golang-go golang-golang-x-mod-dev"
    if shutil.which("go") is None:
        return f"needs a Go toolchain (`go` on PATH): {install}"
    if not (X_MOD_SOURCES / "sumdb" / "note" / "note.go").is_file():
        return f"needs the x/mod sources at {X_MOD_SOURCES}: {install}"
    pinned, installed = pinned_x_mod_version(), debian_x_mod_version()
    if installed != pinned:
        return (
            f"docs/go/verifyproof/go.mod pins x/mod {pinned}, the installed"
            f" golang-golang-x-mod-dev is {installed or 'unknown (no dpkg record)'}"
        )
    return None


GO_SKIP_REASON = go_skip_reason()
needs_go = pytest.mark.skipif(GO_SKIP_REASON is not None, reason=GO_SKIP_REASON or "")

# The doc's runnable blocks, in order: pin the policy, blob ids, key files, statements, the
# release, the checkpoint, the witnesses, the Go verifier key; then the Go blocks: build the
# verifier, prove every entry.
PIN, BLOB_IDS, KEY_FILES, STATEMENTS, RELEASE, CHECKPOINT, WITNESSES, VKEY = range(8)
BUILD, PROOFS = 8, 9


def doc_blocks() -> list[tuple[str, str]]:
    """Return the doc's runnable blocks as (marker, shell code), in order."""
    blocks = re.findall(r"<!-- test: (run|go) -->\n```sh\n(.*?)```", DOC.read_text(), re.DOTALL)
    markers = [marker for marker, _ in blocks]
    assert markers == ["run"] * 8 + ["go"] * 2, "the doc's runnable steps changed: update this test"
    return blocks


def doc_script(steps: Sequence[int] | None = None) -> str:
    """Return the doc's blocks ``steps`` (default: every ``run`` block), in order, as a script."""
    blocks = doc_blocks()
    if steps is None:
        steps = [n for n, (marker, _) in enumerate(blocks) if marker == "run"]
    return "".join(blocks[n][1] for n in steps)


@pytest.fixture(scope="module")
def demo_bundle() -> Bundle:
    """The committed demo ledger's release, exported (reading the ledger only)."""
    with Ledger.open(REPO / "ledger") as ledger:
        release = ledger.ref("nw-claims-guard-2026.11.0")
        root = load_public_key(REPO / "keys-example" / "INSECURE-root.pub")
        return export_bundle(ledger, release, trust=root, as_of=DEMO_AS_OF)


def run_steps(
    directory: Path, steps: Sequence[int] | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the doc's steps (default: the ``run`` blocks) in ``directory`` (an unpacked bundle)."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", doc_script(steps)],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "LC_ALL": "C.UTF-8"} if env is None else env,
    )


@needs_tools
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


@needs_tools
def test_the_steps_fail_on_an_altered_blob(demo_bundle: Bundle, tmp_path: Path) -> None:
    directory = _tampered(demo_bundle, tmp_path)
    gate = directory / "blobs" / demo_bundle.release
    gate.write_bytes(gate.read_bytes().replace(b"northwind", b"southwind", 1))
    result = run_steps(directory, [PIN, BLOB_IDS])
    assert result.returncode != 0 and "MISMATCH" in result.stdout


@needs_tools
def test_the_steps_fail_on_an_altered_checkpoint(demo_bundle: Bundle, tmp_path: Path) -> None:
    directory = _tampered(demo_bundle, tmp_path)
    checkpoint = directory / "checkpoint"
    size = demo_bundle.claimed_checkpoint.size
    text = checkpoint.read_bytes().replace(f"\n{size}\n".encode(), f"\n{size + 1}\n".encode(), 1)
    checkpoint.write_bytes(text)
    result = run_steps(directory, [PIN, KEY_FILES, CHECKPOINT])
    assert result.returncode != 0
    assert "Signature Verification Failure" in result.stdout + result.stderr


@needs_tools
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


# --- The Go verifier of step 6 -------------------------------------------------------------


def test_the_doc_lists_the_go_program_byte_for_byte() -> None:
    blocks = re.findall(r"\n```go\n(.*?)```\n", DOC.read_text(), re.DOTALL)
    assert blocks == [(GO_PROGRAM / "main.go").read_text()]


def test_the_doc_builds_against_the_x_mod_version_go_mod_pins() -> None:
    build = doc_blocks()[BUILD][1]
    assert re.findall(r"go get golang\.org/x/mod@(\S+)", build) == [pinned_x_mod_version()]
    module = re.findall(r"^module (\S+)$", (GO_PROGRAM / "go.mod").read_text(), re.M)
    assert re.findall(r"go mod init (\S+)", build) == module == ["verifyproof"]


def write_module_proxy(proxy: Path, module: str, version: str, sources: Path) -> None:
    """Serve ``sources`` as ``module@version`` from a GOPROXY=file:// directory.

    Writes the files of the Go modules reference's "GOPROXY protocol": ``list``,
    ``<version>.info``, ``.mod`` and ``.zip`` with every file under ``module@version/``.
    """
    directory = proxy / module / "@v"
    directory.mkdir(parents=True)
    (directory / "list").write_text(version + "\n")
    (directory / f"{version}.info").write_text(json.dumps({"Version": version}))
    (directory / f"{version}.mod").write_bytes((sources / "go.mod").read_bytes())
    with zipfile.ZipFile(directory / f"{version}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in sources.rglob("*") if p.is_file()):
            archive.write(path, f"{module}@{version}/{path.relative_to(sources).as_posix()}")


@pytest.fixture(scope="module")
def go_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which ``go`` writes only under a temporary directory, offline."""
    root = tmp_path_factory.mktemp("go")
    write_module_proxy(root / "proxy", X_MOD, pinned_x_mod_version(), X_MOD_SOURCES)
    return {
        **os.environ,
        "LC_ALL": "C.UTF-8",
        "GOENV": "off",  # no user go env file
        "GOPATH": str(root / "gopath"),  # the module cache, GOPATH/pkg/mod
        "GOCACHE": str(root / "cache"),
        "GOPROXY": (root / "proxy").as_uri(),
        # The checksum database vouches for the published zip, not for one rebuilt from
        # Debian's sources, and is out of reach here anyway.
        "GOSUMDB": "off",
        "GOFLAGS": "-modcacherw",  # so that pytest can delete the module cache
        "GOTOOLCHAIN": "local",
        "GOWORK": "off",
    }


@pytest.fixture(scope="module")
def verifyproof(go_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory ``verifyproof`` built by the doc's build block, as a customer would."""
    root = tmp_path_factory.mktemp("customer")
    (root / "verifyproof").mkdir()
    shutil.copyfile(GO_PROGRAM / "main.go", root / "verifyproof" / "main.go")
    (root / "bundle").mkdir()
    result = run_steps(root / "bundle", [BUILD], env=go_env)
    assert result.returncode == 0, result.stderr + result.stdout
    assert (root / "verifyproof" / "verifyproof").is_file()
    return root / "verifyproof"


def unpacked_for_go(demo_bundle: Bundle, tmp_path: Path, verifyproof: Path) -> Path:
    """Unpack the demo bundle into ``tmp_path/bundle`` with the built verifier beside it."""
    unpack_bundle(demo_bundle, tmp_path / "bundle")
    (tmp_path / "verifyproof").symlink_to(verifyproof, target_is_directory=True)
    return tmp_path / "bundle"


def entry_line(n: int, bundle: Bundle) -> str:
    """The verifier's output line for entry ``n`` under the bundle's checkpoint."""
    checkpoint = bundle.claimed_checkpoint
    root = base64.b64encode(checkpoint.root_hash).decode()
    return f"entry {n} is in the tree of size {checkpoint.size}, root {root}"


def run_go_steps(directory: Path, go_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run what step 6 needs: pin the policy, the verifier key, then prove every entry."""
    return run_steps(directory, [PIN, VKEY, PROOFS], env=go_env)


@needs_tools
@needs_go
def test_the_go_verifier_proves_every_entry_of_the_demo_bundle(
    demo_bundle: Bundle, tmp_path: Path, verifyproof: Path, go_env: dict[str, str]
) -> None:
    directory = unpacked_for_go(demo_bundle, tmp_path, verifyproof)
    result = run_go_steps(directory, go_env)
    assert result.returncode == 0, result.stderr + result.stdout
    proven = [line for line in result.stdout.splitlines() if line.startswith("entry ")]
    assert proven == [entry_line(entry.index, demo_bundle) for entry in demo_bundle.entries]
    # The shell recipe for the verifier key agrees with our own encoder of it.
    log_key = load_public_key(REPO / "keys-example" / "INSECURE-log.pub")
    vkey = log_key.verifier_key(demo_bundle.claimed_checkpoint.origin)
    assert vkey in result.stdout.splitlines()


def replace_in_checkpoints(directory: Path, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` in the checkpoint file and in every tlog-proof's copy of it."""
    checkpoint = directory / "checkpoint"
    original = checkpoint.read_bytes()
    altered = original.replace(old, new, 1)
    assert altered != original
    checkpoint.write_bytes(altered)
    for proof in (directory / "entries").glob("*.tlog-proof"):
        head, separator, copy = proof.read_bytes().partition(b"\n\n")
        assert copy == original
        proof.write_bytes(head + separator + altered)


@needs_tools
@needs_go
@pytest.mark.parametrize("line", ["size", "root"])
def test_the_go_verifier_refuses_a_checkpoint_altered_under_its_signature(
    demo_bundle: Bundle, tmp_path: Path, verifyproof: Path, go_env: dict[str, str], line: str
) -> None:
    directory = unpacked_for_go(demo_bundle, tmp_path, verifyproof)
    checkpoint = demo_bundle.claimed_checkpoint
    if line == "size":
        old, new = f"\n{checkpoint.size}\n", f"\n{checkpoint.size - 1}\n"
    else:
        other_root = hashlib.sha256(checkpoint.root_hash).digest()
        old, new = (
            f"\n{base64.b64encode(root).decode()}\n" for root in (checkpoint.root_hash, other_root)
        )
    # Consistently everywhere, so that only the log's signature can tell.
    replace_in_checkpoints(directory, old.encode(), new.encode())
    result = run_go_steps(directory, go_env)
    assert result.returncode != 0
    assert "FAILED: entries/0.tlog-proof: checkpoint: invalid signature for key" in result.stderr
    assert "is in the tree" not in result.stdout


@needs_tools
@needs_go
def test_the_go_verifier_refuses_an_altered_leaf(
    demo_bundle: Bundle, tmp_path: Path, verifyproof: Path, go_env: dict[str, str]
) -> None:
    directory = unpacked_for_go(demo_bundle, tmp_path, verifyproof)
    n = 7
    leaf_file, proof_file = (
        directory / "entries" / f"{n}.leaf",
        directory / "entries" / f"{n}.tlog-proof",
    )
    leaf = leaf_file.read_bytes()
    altered = leaf.replace(leaf.split(b"\n")[2], hashlib.sha256(leaf).hexdigest().encode())
    leaf_file.write_bytes(altered)
    # The extra line too, so that only the inclusion proof can tell.
    lines = proof_file.read_bytes().split(b"\n")
    lines[1] = b"extra " + base64.b64encode(altered)
    proof_file.write_bytes(b"\n".join(lines))
    result = run_go_steps(directory, go_env)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"FAILED: entries/{n}.tlog-proof: the leaf is not entry {n} of the signed tree: "
        "invalid transparency proof"
    )
    proven = [line for line in result.stdout.splitlines() if line.startswith("entry ")]
    assert proven == [entry_line(index, demo_bundle) for index in range(n)]


@needs_tools
@needs_go
@pytest.mark.parametrize("relabelled", [False, True])
def test_the_go_verifier_refuses_a_proof_for_another_index(
    demo_bundle: Bundle, tmp_path: Path, verifyproof: Path, go_env: dict[str, str], relabelled: bool
) -> None:
    directory = unpacked_for_go(demo_bundle, tmp_path, verifyproof)
    entries = directory / "entries"
    other = (entries / "5.tlog-proof").read_text()
    if relabelled:
        # Entry 5's path, claimed for entry 3 (and without entry 5's leaf in the extra line).
        other = re.sub(r"^extra .*\n", "", other.replace("\nindex 5\n", "\nindex 3\n"), flags=re.M)
    (entries / "3.tlog-proof").write_text(other)
    result = run_go_steps(directory, go_env)
    assert result.returncode != 0
    reason = (
        "the leaf is not entry 3 of the signed tree: invalid transparency proof"
        if relabelled
        else "the proof is for entry 5, not 3"
    )
    assert result.stderr.strip() == f"FAILED: entries/3.tlog-proof: {reason}"


@needs_tools
@needs_go
def test_the_steps_refuse_a_proof_under_a_checkpoint_the_witness_did_not_cosign(
    demo_bundle: Bundle, tmp_path: Path, verifyproof: Path, go_env: dict[str, str]
) -> None:
    directory = unpacked_for_go(demo_bundle, tmp_path, verifyproof)
    # Without the witness's line the log's signature still verifies: only the comparison with
    # the checkpoint of step 5 refuses it.
    proof = directory / "entries" / "2.tlog-proof"
    proof.write_text(
        "".join(
            line
            for line in proof.read_text().splitlines(keepends=True)
            if not line.startswith("— INSECURE-witness ")
        )
    )
    result = run_go_steps(directory, go_env)
    assert result.returncode != 0
    assert result.stderr.startswith("cmp: ")  # the checkpoints differ
    assert entry_line(1, demo_bundle) in result.stdout
    assert entry_line(2, demo_bundle) not in result.stdout


# Prior-art appendix A.3 (docs/ledger-format.md section 8.2): leaves entry-0 ... entry-6, the
# tlog-proof of index 3 under the checkpoint signed by RFC 8032 TEST 1 as the log key.
A3_VKEY = "ledger.example/evidence+f49384d5+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea"
A3_CHECKPOINT_TEXT = "ledger.example/evidence\n7\nkTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n"
A3_PROOF = bf.A3_TLOG_PROOF

A3_LOG_KEY = PrivateKey.from_seed(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
)


def a3_proof_signing(text: str) -> bytes:
    """Return the A.3 proof with its checkpoint replaced by ``text`` signed by the A.3 log key."""
    path, _ = A3_PROOF.split("\n\n", 1)
    signature = sign_note(text, "ledger.example/evidence", A3_LOG_KEY)
    return (path + "\n\n").encode() + format_note(Note(text, (signature,)))


def run_verifier(
    verifyproof: Path, vkey: str, index: str, leaf: bytes, proof: bytes
) -> subprocess.CompletedProcess[str]:
    """Run the built verifier on ``leaf`` and ``proof`` (written to a temporary directory)."""
    with tempfile.TemporaryDirectory() as scratch:
        leaf_file, proof_file = Path(scratch) / "leaf", Path(scratch) / "proof"
        leaf_file.write_bytes(leaf)
        proof_file.write_bytes(proof)
        return subprocess.run(
            [str(verifyproof / "verifyproof"), vkey, index, str(leaf_file), str(proof_file)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )


@needs_go
def test_go_accepts_the_prior_art_example_and_only_for_its_leaf(verifyproof: Path) -> None:
    proof = A3_PROOF.encode()
    result = run_verifier(verifyproof, A3_VKEY, "3", b"entry-3", proof)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "entry 3 is in the tree of size 7, root kTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n"
    )
    for leaf in (b"entry-2", b"entry-4", b"entry-3\n"):
        assert run_verifier(verifyproof, A3_VKEY, "3", leaf, proof).returncode == 1
    assert run_verifier(verifyproof, A3_VKEY, "4", b"entry-3", proof).returncode == 1


@needs_go
def test_go_verifier_usage_and_malformed_input(verifyproof: Path) -> None:
    usage = subprocess.run(
        [str(verifyproof / "verifyproof"), A3_VKEY, "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2 and usage.stderr.startswith("usage: verifyproof ")
    malformed = {
        b"": "no checkpoint after an empty line",
        A3_PROOF.encode().replace(b"\nindex 3\n", b"\nindex 03\n"): '"03" is not a decimal',
        A3_PROOF.encode().replace(b"tlog-proof@v1", b"tlog-proof@v2"): "the first line is not",
        A3_PROOF.encode().replace(b"BJ19", b"BJ1", 1): "proof line:",
        A3_PROOF.encode().replace(b"index 3\n", b""): "no index line",
        a3_proof_signing(A3_CHECKPOINT_TEXT + "extension\n"): "not exactly three lines",
        a3_proof_signing(A3_CHECKPOINT_TEXT.replace("ledger", "other")): 'origin "other.example',
        a3_proof_signing(A3_CHECKPOINT_TEXT.replace("\n7\n", "\n07\n")): "checkpoint size:",
    }
    for proof, reason in malformed.items():
        result = run_verifier(verifyproof, A3_VKEY, "3", b"entry-3", proof)
        assert result.returncode == 1 and reason in result.stderr, (proof, result.stderr)


@needs_go
@settings(max_examples=40, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_go_refuses_every_single_bit_change_to_the_prior_art_proof(
    verifyproof: Path, position: int, bit: int
) -> None:
    proof = bytearray(A3_PROOF.encode())
    proof[position % len(proof)] ^= 1 << bit
    result = run_verifier(verifyproof, A3_VKEY, "3", b"entry-3", bytes(proof))
    assert result.returncode == 1, result.stdout
