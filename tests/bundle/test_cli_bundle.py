"""End-to-end tests of ``cmf bundle``, ``cmf proof``, ``cmf verify-equivocation`` and
``cmf receipt``, in-process (click's CliRunner) and as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bundle_fixtures as bf
import chain_fixtures as cf
import pytest
from click.testing import CliRunner, Result

from customer_model_factory.bundle.format import encode_bundle, read_bundle
from customer_model_factory.bundle.tlogproof import parse_tlog_proof, verify_blob_proof
from customer_model_factory.cli import cli
from customer_model_factory.ledger.keys import PrivateKey, save_private_key, save_public_key
from customer_model_factory.ledger.store import Ledger

REPO = Path(__file__).resolve().parents[2]
KEYS = bf.KEYS
AS_OF = "2026-06-01T00:00:00Z"
SITE = PrivateKey.from_seed(b"\x61" * 32)


def cmf(*args: str | Path) -> Result:
    """Run ``cmf args`` in-process; stdout and stderr kept apart."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def run_cmf(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m customer_model_factory.cli args`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "customer_model_factory.cli", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Key files of the test deployment and of a receiving site."""
    paths = {
        "root": save_public_key(tmp_path / "root.pub", KEYS.root.public_key),
        "log": save_public_key(tmp_path / "log.pub", KEYS.log.public_key),
        "log_private": save_private_key(tmp_path / "log.pem", KEYS.log),
        "site": save_private_key(tmp_path / "site.pem", SITE),
        "site_pub": save_public_key(tmp_path / "site.pub", SITE.public_key),
        "other": save_public_key(
            tmp_path / "other.pub", PrivateKey.from_seed(b"\x62" * 32).public_key
        ),
    }
    return paths


def export(promoted: bf.Promoted, files: dict[str, Path], out: Path, *extra: str) -> Result:
    return cmf(
        "bundle",
        "export",
        promoted.gate,
        "-o",
        out,
        "--ledger",
        promoted.path,
        "--trust",
        files["root"],
        "--as-of",
        AS_OF,
        *extra,
    )


def test_export_then_verify(promoted: bf.Promoted, files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "release.cmfbundle"
    result = export(promoted, files, out)
    assert result.exit_code == 0, result.stderr
    assert "exported release gate" in result.stdout
    result = cmf("bundle", "verify", out, "--trust-root", files["root"], "--at", AS_OF)
    assert result.exit_code == 0, result.stdout
    assert "OK: release release-alpha verifies and is promoted" in result.stdout
    assert f"cosigned by witness {bf.WITNESS_NAME}" in result.stdout
    result = cmf(
        "bundle",
        "verify",
        out,
        "--trust-root",
        files["root"],
        "--at",
        AS_OF,
        "--json",
        "--customer",
        cf.CUSTOMER,
        "--min-witnesses",
        "1",
    )
    document = json.loads(result.stdout)
    assert result.exit_code == 0 and document["ok"] and document["status"] == "promoted"
    assert document["bundle_id"] == read_bundle(out)[1]


def test_export_options(promoted: bf.Promoted, files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "nodata.cmfbundle"
    result = export(promoted, files, out, "--without-data", "--since", "3", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["consistency_from"] == 3 and len(summary["omitted"]) == 1
    with promoted.open() as ledger:
        (tmp_path / "cp").write_bytes(ledger.checkpoint(4))
    result = export(promoted, files, tmp_path / "b2", "--since-checkpoint", tmp_path / "cp")
    assert result.exit_code == 0 and "consistency proof from tree size 4" in result.stdout
    result = export(
        promoted, files, tmp_path / "b3", "--since", "2", "--since-checkpoint", tmp_path / "cp"
    )
    assert result.exit_code == 2 and "not both" in result.stderr


def test_a_failing_verification_exits_1_and_names_the_finding(
    release_bundle: object, files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "release.cmfbundle"
    out.write_bytes(encode_bundle(release_bundle))  # type: ignore[arg-type]
    result = cmf(
        "bundle",
        "verify",
        out,
        "--trust-root",
        files["root"],
        "--at",
        AS_OF,
        "--customer",
        "customer-beta",
    )
    assert result.exit_code == 1
    assert "release_identity_mismatch" in result.stdout and "FAILED" in result.stdout
    result = cmf(
        "bundle", "verify", out, "--trust-root", files["root"], "--at", "2031-01-01T00:00:00Z"
    )
    assert result.exit_code == 1 and "policy_expired" in result.stdout
    result = cmf("bundle", "verify", out, "--trust-root", files["other"], "--at", AS_OF)
    assert result.exit_code == 1 and "policy_pin_mismatch" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "bundle is empty"),
        (b"\x87\xa6format", "msgpack"),
        (b"\xdd\xff\xff\xff\xff", "exceeds"),
        (b"\x91" * 50_000, "nesting"),
        (b"not a bundle at all", "msgpack"),
    ],
)
def test_a_malformed_bundle_is_one_line_and_exit_2(
    files: dict[str, Path], tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.cmfbundle"
    path.write_bytes(content)
    result = cmf("bundle", "verify", path, "--trust-root", files["root"])
    assert result.exit_code == 2
    assert result.stderr.startswith("cmf: error: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""


def test_a_truncated_bundle_in_a_real_process(
    release_bundle: object, files: dict[str, Path], tmp_path: Path
) -> None:
    data = encode_bundle(release_bundle)  # type: ignore[arg-type]
    path = tmp_path / "truncated.cmfbundle"
    path.write_bytes(data[: len(data) // 2])
    done = run_cmf("bundle", "verify", path, "--trust-root", files["root"])
    assert done.returncode == 2
    assert done.stderr.startswith("cmf: error: ") and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1
    done = run_cmf("bundle", "verify", tmp_path / "missing", "--trust-root", files["root"])
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1


def test_import_twice_then_a_fork_writes_a_checkable_proof(
    release_bundle: object, files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "release.cmfbundle"
    out.write_bytes(encode_bundle(release_bundle))  # type: ignore[arg-type]
    site = tmp_path / "site"
    Ledger.create(site, origin="site.example/air-gap", log_key=SITE.public_key).close()
    common = ("--trust-root", files["root"], "--at", AS_OF, "--ledger", site)
    result = cmf("bundle", "import", out, *common)
    assert result.exit_code == 0 and "imported release gate" in result.stdout
    result = cmf("bundle", "import", out, *common)
    assert result.exit_code == 0 and "already imported" in result.stdout
    fork = bf.build_promoted(
        tmp_path / "fork", policy=bf.policy_with_witness(expires="2026-12-31T00:00:00Z")
    )
    forked = tmp_path / "fork.cmfbundle"
    assert export(fork, files, forked).exit_code == 0
    evidence = tmp_path / "evidence.json"
    result = cmf("bundle", "import", forked, *common, "--evidence-out", evidence)
    assert result.exit_code == 1
    assert "checkpoint_fork" in result.stderr and f"proof written to {evidence}" in result.stderr
    result = cmf("verify-equivocation", evidence, "--log-key", files["log"])
    assert result.exit_code == 0 and "EQUIVOCATION" in result.stdout
    result = cmf("verify-equivocation", evidence, "--json")
    document = json.loads(result.stdout)
    assert document["equivocation"] is True and "NOT pinned" in document["log_key"]
    result = cmf("verify-equivocation", evidence, "--log-key", files["other"])
    assert result.exit_code == 1 and "NOT PROVEN" in result.stdout
    (tmp_path / "junk.json").write_text("{}")
    result = cmf("verify-equivocation", tmp_path / "junk.json")
    assert result.exit_code == 2


def test_a_receipt_travels_back_to_the_sender(
    promoted: bf.Promoted, files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "release.cmfbundle"
    assert export(promoted, files, out).exit_code == 0
    site = tmp_path / "site"
    Ledger.create(site, origin="site.example/air-gap", log_key=SITE.public_key).close()
    assert (
        cmf(
            "bundle", "import", out, "--trust-root", files["root"], "--at", AS_OF, "--ledger", site
        ).exit_code
        == 0
    )
    receipt = tmp_path / "receipt.note"
    result = cmf(
        "receipt",
        "create",
        "--key",
        files["site"],
        "--time",
        "2026-06-02T00:00:00Z",
        "-o",
        receipt,
        "--ledger",
        site,
    )
    assert result.exit_code == 0, result.stderr
    assert "cosigned by site" in result.stdout
    result = cmf(
        "receipt",
        "add",
        receipt,
        "--witness-key",
        files["site_pub"],
        "--log-key",
        files["log_private"],
        "--ledger",
        promoted.path,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["timestamp"] == 1_780_358_400
    result = cmf(
        "receipt",
        "add",
        receipt,
        "--witness-key",
        files["other"],
        "--log-key",
        files["log_private"],
        "--ledger",
        promoted.path,
    )
    assert result.exit_code == 2 and "no cosignature" in result.stderr


def test_proof_and_unpack(promoted: bf.Promoted, files: dict[str, Path], tmp_path: Path) -> None:
    proof = tmp_path / "gate.tlog-proof"
    result = cmf("proof", promoted.gate, "-o", proof, "--ledger", promoted.path)
    assert result.exit_code == 0, result.stderr
    verify_blob_proof(
        parse_tlog_proof(proof.read_bytes()),
        promoted.gate,
        origin=cf.ORIGIN,
        log_key=KEYS.log.public_key,
    )
    result = cmf("proof", "0" * 64, "-o", proof, "--ledger", promoted.path)
    assert result.exit_code == 2 and "no log entry" in result.stderr
    out = tmp_path / "release.cmfbundle"
    assert export(promoted, files, out).exit_code == 0
    result = cmf("bundle", "unpack", out, tmp_path / "plain")
    assert result.exit_code == 0 and (tmp_path / "plain" / "checkpoint").is_file()
    result = cmf("bundle", "unpack", out, tmp_path / "plain")
    assert result.exit_code == 2 and "non-empty" in result.stderr


def test_an_unpromoted_release_is_not_exported(files: dict[str, Path], tmp_path: Path) -> None:
    with bf.no_fsync():
        ledger, recorded = cf.build_ledger(tmp_path, policy=bf.policy_with_witness())
        ledger.close()
    result = cmf(
        "bundle",
        "export",
        recorded.gate,
        "-o",
        tmp_path / "x",
        "--ledger",
        tmp_path / "ledger",
        "--trust",
        files["root"],
        "--as-of",
        AS_OF,
    )
    assert result.exit_code == 1 and "release_not_promoted" in result.stderr
    assert not (tmp_path / "x").exists()


def test_the_demo_bundle_verifies_offline_in_a_real_process(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "demo.cmfbundle"
    root = REPO / "keys-example" / "INSECURE-root.pub"
    done = run_cmf(
        "bundle",
        "export",
        "nw-claims-guard-2026.11.0",
        "-o",
        out,
        "--ledger",
        REPO / "ledger",
        "--trust",
        root,
        "--as-of",
        "2026-11-20T12:30:00Z",
    )
    assert done.returncode == 0, done.stderr
    done = run_cmf("bundle", "verify", out, "--trust-root", root, "--at", "2026-11-20T12:30:00Z")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verifies and is promoted" in done.stdout
