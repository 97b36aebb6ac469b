"""``cmf release gate|promote|verify|status``: promotion only for a chain that verifies.

Each broken chain is built with the CLI where a user could build it that way (and with the
library where only an attacker with write access could) and promotion must be refused with
exit 1, the exact finding codes, and nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cli_fixtures import (
    AS_OF,
    EXAMPLES,
    KEYS,
    LOG_KEY,
    RELEASE_ID,
    ROOT_PUB,
    DemoLedger,
    assert_one_error_line,
    cat_to,
    codes,
    invoke,
    json_out,
    key,
    ledger_files,
    promote_args,
    run_cmf,
)

from customer_model_factory.chain import kinds
from customer_model_factory.ledger.checkpoint import open_checkpoint
from customer_model_factory.ledger.keys import load_private_key
from customer_model_factory.ledger.note import cosign
from customer_model_factory.ledger.statement import Parent
from customer_model_factory.ledger.store import Ledger
from customer_model_factory.pipeline import DemoKeys, manifest_data, parse_json_object, witness_name
from customer_model_factory.release_gate import CustomerReleaseGateManifest

PROMOTERS = (key("promotion-1"), key("promotion-2"))


def promote(ledger: Path, release: str = RELEASE_ID, *keys: Path) -> tuple[int, dict[str, Any]]:
    """Run ``cmf release promote --json``; return (exit code, the JSON report)."""
    result = invoke(*promote_args(ledger, release, *(keys or PROMOTERS)))
    return result.exit_code, json_out(result)


def size(ledger: Path) -> int:
    """Return the number of log entries."""
    with Ledger.open(ledger) as opened:
        return opened.size


def test_promote_verifies_then_logs_a_promotion(fresh: DemoLedger) -> None:
    before = size(fresh.path)
    code, report = promote(fresh.path)
    assert (code, codes(report), report["promoted"]) == (0, [], True)
    assert report["promotion_index"] == before
    assert size(fresh.path) == before + 1
    status = invoke(
        "release", "status", RELEASE_ID, "--ledger", fresh.path, "--as-of", AS_OF, "--json"
    )
    document = json_out(status)
    assert (status.exit_code, document["status"]) == (0, "promoted")
    assert document["promotion_index"] == before


def test_promoting_again_writes_nothing(fresh: DemoLedger) -> None:
    assert promote(fresh.path)[0] == 0
    files = ledger_files(fresh.path)
    code, report = promote(fresh.path)
    assert (code, report["already_promoted"]) == (0, True)
    assert ledger_files(fresh.path) == files


def test_status_before_promotion(fresh: DemoLedger) -> None:
    result = invoke(
        "release", "status", fresh.gate[:10], "--ledger", fresh.path, "--as-of", AS_OF, "--json"
    )
    assert (result.exit_code, json_out(result)["status"]) == (1, "verified_not_promoted")


def test_tampered_blob_blocks_promotion(fresh: DemoLedger) -> None:
    path = fresh.path / "objects" / fresh.blob("training_manifest")[:2]
    path = path / fresh.blob("training_manifest")[2:]
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    before = size(fresh.path)
    code, report = promote(fresh.path)
    assert (code, codes(report), report["promoted"]) == (1, ["blob_hash_mismatch"], False)
    assert report["findings"][0]["blob_id"] == fresh.blob("training_manifest")
    assert size(fresh.path) == before


def test_refusal_prints_every_finding_for_humans(fresh: DemoLedger) -> None:
    args = promote_args(fresh.path, RELEASE_ID, *PROMOTERS)
    args.remove("--json")
    args[args.index("--as-of") + 1] = "2031-01-01T00:00:00Z"
    result = invoke(*args)
    assert result.exit_code == 1
    assert "promotion REFUSED: 2 finding(s)" in result.stdout
    assert "policy_expired" in result.stdout
    assert "monitoring_not_within_control" in result.stdout  # the accepted risk lapsed in 2027


def _forged_gate(ledger: DemoLedger, tmp: Path) -> tuple[bytes, list[str]]:
    """Return a gate whose copied runtime hash is wrong but whose release_hash recomputes."""
    data = cat_to(ledger.path, ledger.gate, tmp / "gate.json").read_bytes()
    gate = CustomerReleaseGateManifest.from_dict_verified(parse_json_object(data, "gate.json"))
    hashes = {**gate.artifact_hashes, "runtime_hash": "f" * 64}
    forged = replace(gate, artifact_hashes=hashes)
    forged = replace(forged, release_hash=forged.recompute_hash())
    parents = [ledger.blob(k) for k in ("runtime_package", "evidence_pack")]
    parents += [ledger.blob(k) for k in ("monitoring_manifest", "risk_register")]
    return manifest_data(forged), parents


def test_forged_parent_field_is_refused_at_record_time(fresh: DemoLedger, tmp_path: Path) -> None:
    data, parents = _forged_gate(fresh, tmp_path)
    forged = tmp_path / "forged-gate.json"
    forged.write_bytes(data)
    before = size(fresh.path)
    args: list[str | Path] = [
        "record",
        "release_gate",
        forged,
        "--ledger",
        fresh.path,
        "--log-key",
        LOG_KEY,
    ]
    args += ["--key", key("release_gate")]
    for parent in parents:
        args += ["--parent", parent]
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "cmf: refused: 1 finding(s)"
    assert "bind_gate_artifact_hashes" in result.stderr
    assert size(fresh.path) == before


def test_forced_forged_parent_field_fails_promotion(fresh: DemoLedger, tmp_path: Path) -> None:
    # An attacker with the gate key and write access appends it without the checks.
    data, parents = _forged_gate(fresh, tmp_path)
    kinds_of = ("runtime_package", "evidence_pack", "monitoring_manifest", "risk_register")
    log_key = load_private_key(LOG_KEY)
    with Ledger.open(fresh.path) as ledger, ledger.writer(log_key=log_key) as writer:
        blob_id = writer.put_blob(data)
        writer.record(
            kind=kinds.RELEASE_GATE,
            blob_id=blob_id,
            parents=[Parent(k, p) for k, p in zip(kinds_of, parents, strict=True)],
            signers=[load_private_key(key("release_gate"))],
            time=AS_OF,
            tool_version="attacker/1",
        )
    code, report = promote(fresh.path, blob_id)
    assert (code, codes(report)) == (1, ["bind_gate_artifact_hashes"])


def test_missing_signature_threshold_not_met(fresh: DemoLedger) -> None:
    before = size(fresh.path)
    result = invoke(*promote_args(fresh.path, RELEASE_ID, key("promotion-1")))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "cmf: refused: 1 finding(s)",
        "cmf: refused: promotion_threshold_not_met [promotion]: 1 of the 2 required distinct, "
        "unrevoked promotion key(s) are among the signers",
    ]
    # The same key twice is still one key.
    twice = invoke(*promote_args(fresh.path, RELEASE_ID, key("promotion-1"), key("promotion-1")))
    assert twice.exit_code == 1 and "promotion_threshold_not_met" in twice.stderr
    assert size(fresh.path) == before


def test_signature_by_a_key_without_the_role(fresh: DemoLedger, tmp_path: Path) -> None:
    # A second gate (another release id), built and recorded with the CLI but signed by the
    # runtime key, which does not hold the release_gate role.
    files = {
        kind: cat_to(fresh.path, fresh.blob(kind), tmp_path / f"{kind}.json")
        for kind in ("runtime_package", "evidence_pack", "monitoring_manifest", "risk_register")
    }
    result = invoke(
        "release", "gate",
        "--runtime", files["runtime_package"], "--evidence", files["evidence_pack"],
        "--monitoring", files["monitoring_manifest"], "--risk-register", files["risk_register"],
        "--config", EXAMPLES / "release.json", "--release-id", "nw-claims-guard-2026.11.1",
        "-o", tmp_path / "gate.json", "--record", "--key", key("runtime_package"),
        "--log-key", LOG_KEY, "--ledger", fresh.path, "--time", AS_OF, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    code, report = promote(fresh.path, "nw-claims-guard-2026.11.1")
    assert (code, codes(report)) == (1, ["signature_threshold_not_met"])
    assert report["findings"][0]["kind"] == "release_gate"


def test_revoked_key_no_longer_counts(fresh: DemoLedger) -> None:
    gate_index = next(s.log_index for s in fresh.stages if s.kind == "release_gate")
    revoke = invoke(
        "trust", "revoke", "INSECURE-release_gate", "--from-index", str(gate_index),
        "--reason", "gate signing key leaked", "--key", key("root"), "--log-key", LOG_KEY,
        "--ledger", fresh.path, "--trust", ROOT_PUB, "--time", AS_OF,
    )  # fmt: skip
    assert revoke.exit_code == 0, revoke.stderr
    code, report = promote(fresh.path)
    assert (code, codes(report)) == (1, ["signature_threshold_not_met"])
    assert report["policy_version"] == 2


def test_expired_policy_refuses_now_and_verifies_as_of_then(fresh: DemoLedger) -> None:
    args = promote_args(fresh.path, RELEASE_ID, *PROMOTERS)
    args[args.index("--as-of") + 1] = "2030-06-01T00:00:00Z"  # the policy expires 2030-01-01
    result = invoke(*args)
    # By 2030 the accepted risk excusing the monitoring status (until 2027-02-19) expired too.
    expired = ["policy_expired", "monitoring_not_within_control"]
    assert (result.exit_code, codes(json_out(result))) == (1, expired)
    common: list[str | Path] = ["--ledger", fresh.path, "--trust", ROOT_PUB, "--json"]
    then = invoke("release", "verify", RELEASE_ID, *common, "--as-of", AS_OF)
    assert (then.exit_code, codes(json_out(then))) == (0, [])
    later = invoke("release", "verify", RELEASE_ID, *common, "--as-of", "2030-06-01T00:00:00Z")
    assert (later.exit_code, codes(json_out(later))) == (1, expired)


# The demo's accepted risk (examples/risks.json) excuses the monitoring status until 2027-02-19;
# the gate was generated on 2026-11-20.
RISK_LAPSED = "2027-03-01T00:00:00Z"
RISK_COVERS = "2027-02-18T00:00:00Z"


def test_promotion_after_the_accepted_risk_expired_is_refused(fresh: DemoLedger) -> None:
    files = ledger_files(fresh.path)
    args = promote_args(fresh.path, RELEASE_ID, *PROMOTERS)
    args[args.index("--as-of") + 1] = RISK_LAPSED
    result = invoke(*args)
    document = json_out(result)
    assert (result.exit_code, codes(document)) == (1, ["monitoring_not_within_control"])
    assert document["promoted"] is False
    message = document["findings"][0]["message"]
    assert "expired at 2027-02-19T00:00:00Z, before as_of 2027-03-01" in message
    assert ledger_files(fresh.path) == files
    # The same release, judged before the acceptance lapsed, is promoted.
    args[args.index("--as-of") + 1] = RISK_COVERS
    assert invoke(*args).exit_code == 0


def test_offline_verification_judges_the_risk_at_its_clock(
    promoted: DemoLedger, tmp_path: Path
) -> None:
    out = tmp_path / "release.cmfbundle"
    exported = invoke(
        "bundle", "export", RELEASE_ID, "-o", out, "--ledger", promoted.path,
        "--trust", ROOT_PUB, "--as-of", AS_OF,
    )  # fmt: skip
    assert exported.exit_code == 0, exported.stderr
    verify = ("bundle", "verify", out, "--trust-root", ROOT_PUB, "--json", "--at")
    late = invoke(*verify, RISK_LAPSED)
    assert (late.exit_code, codes(json_out(late))) == (1, ["monitoring_not_within_control"])
    early = invoke(*verify, RISK_COVERS)
    assert (early.exit_code, codes(json_out(early))) == (0, [])


def test_policy_rollback_is_refused(fresh: DemoLedger, tmp_path: Path) -> None:
    # Version 2 exists in another copy of the ledger; pinning it against this ledger, which
    # only holds version 1, is a rollback (or a hidden version): refused.
    other = fresh.copy(tmp_path / "other")
    assert invoke("keygen", "INSECURE-promotion-4", "-o", tmp_path).exit_code == 0
    added = invoke(
        "trust", "add-key", tmp_path / "INSECURE-promotion-4.pub", "--role", "promotion",
        "--key", key("root"), "--log-key", LOG_KEY, "--ledger", other, "--trust", ROOT_PUB,
        "--time", AS_OF,
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    shown = invoke("trust", "show", "--ledger", other, "--trust", ROOT_PUB, "--json")
    v2 = tmp_path / "policy-v2.json"
    v2.write_text(shown.stdout)
    assert json.loads(v2.read_text())["version"] == 2
    args = promote_args(fresh.path, RELEASE_ID, *PROMOTERS)
    args[args.index("--trust") + 1] = str(v2)
    result = invoke(*args)
    assert (result.exit_code, codes(json_out(result))) == (1, ["policy_rollback"])
    # The copy that holds version 2 verifies from the root key, and uses version 2.
    pinned = invoke(
        "release", "verify", RELEASE_ID, "--ledger", other, "--trust", ROOT_PUB, "--as-of", AS_OF,
        "--json",
    )  # fmt: skip
    assert (pinned.exit_code, codes(json_out(pinned))) == (0, [])
    assert json_out(pinned)["policy_version"] == 2


def _monitoring_files(ledger: DemoLedger, tmp_path: Path) -> dict[str, Path]:
    """Write the runtime, evidence and monitoring manifests of ``ledger`` to files."""
    return {
        kind: cat_to(ledger.path, ledger.blob(kind), tmp_path / f"{kind}.json")
        for kind in ("runtime_package", "evidence_pack", "monitoring_manifest")
    }


def test_monitoring_review_without_accepted_risk_blocks(fresh: DemoLedger, tmp_path: Path) -> None:
    # The demo's monitoring is review_required (escalation rate above threshold); record a
    # risk register without the accepted risk, and a gate over it, with the CLI.
    files = _monitoring_files(fresh, tmp_path)
    monitoring = json.loads(files["monitoring_manifest"].read_text())
    assert monitoring["health_status"] == "review_required"
    config = json.loads((EXAMPLES / "risks.json").read_text())
    config["risks"] = []
    (tmp_path / "no-risks.json").write_text(json.dumps(config))
    common: list[str | Path] = [
        "--ledger",
        fresh.path,
        "--log-key",
        LOG_KEY,
        "--time",
        AS_OF,
        "--record",
    ]
    register = invoke(
        "risk", "build", "--evidence", files["evidence_pack"],
        "--monitoring", files["monitoring_manifest"], "--config", tmp_path / "no-risks.json",
        "--register-id", "nw-risk-register-2026-11-b", "-o", tmp_path / "register.json",
        "--key", key("risk_register"), *common,
    )  # fmt: skip
    assert register.exit_code == 0, register.stderr
    gate = invoke(
        "release", "gate", "--runtime", files["runtime_package"],
        "--evidence", files["evidence_pack"], "--monitoring", files["monitoring_manifest"],
        "--risk-register", tmp_path / "register.json", "--config", EXAMPLES / "release.json",
        "--release-id", "nw-claims-guard-2026.11.0-b", "-o", tmp_path / "gate.json",
        "--key", key("release_gate"), *common,
    )  # fmt: skip
    assert gate.exit_code == 0, gate.stderr  # the gate itself allows promotion
    code, report = promote(fresh.path, "nw-claims-guard-2026.11.0-b")
    assert (code, codes(report)) == (1, ["monitoring_not_within_control"])
    # The demo's own gate, whose register holds the accepted risk, is promotable.
    assert promote(fresh.path)[0] == 0


def test_verify_and_status_report_a_broken_chain(fresh: DemoLedger) -> None:
    path = (
        fresh.path / "objects" / fresh.blob("sector_mapping")[:2] / fresh.blob("sector_mapping")[2:]
    )
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b"EU", b"US", 1))
    common = ("--ledger", fresh.path, "--as-of", AS_OF, "--json")
    verify = invoke("release", "verify", RELEASE_ID, *common)
    document = json_out(verify)
    assert (verify.exit_code, codes(document)) == (1, ["blob_hash_mismatch"])
    assert document["trust"] == "tofu"
    status = invoke("release", "status", RELEASE_ID, *common)
    assert (status.exit_code, json_out(status)["status"]) == (1, "broken")


def test_human_verify_names_the_signers(promoted: DemoLedger) -> None:
    result = invoke(
        "release", "verify", RELEASE_ID, "--ledger", promoted.path, "--trust", ROOT_PUB,
        "--as-of", AS_OF,
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout
    assert "trust: pinned to" in result.stdout
    assert "signed by INSECURE-release_gate" in result.stdout
    assert result.stdout.rstrip().endswith("verified: the whole chain verifies")


def test_deep_verification_revalidates_the_trace_rows(promoted: DemoLedger) -> None:
    common = ("--ledger", promoted.path, "--trust", ROOT_PUB, "--as-of", AS_OF)
    shallow = invoke("release", "verify", RELEASE_ID, *common, "--json")
    deep = invoke("release", "verify", RELEASE_ID, "--deep", *common, "--json")
    assert (shallow.exit_code, deep.exit_code) == (0, 0)
    assert (json_out(shallow)["deep"], json_out(deep)["deep"]) == (False, True)
    human = invoke("release", "verify", RELEASE_ID, "--deep", *common)
    assert "trace rows re-validated (deep)" in human.stdout


def test_unknown_release_is_an_input_error(promoted: DemoLedger) -> None:
    result = invoke("release", "verify", "no-such-release", "--ledger", promoted.path)
    assert_one_error_line(result, "unknown blob id, ref or file: 'no-such-release'")


def test_promotion_refused_in_a_subprocess(fresh: DemoLedger) -> None:
    args = promote_args(fresh.path, RELEASE_ID, key("promotion-3"))
    completed = run_cmf(*args)
    assert completed.returncode == 1
    assert "promotion_threshold_not_met" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_release_verify_imports_only_what_verification_uses(promoted: DemoLedger) -> None:
    code = (
        "import sys; from customer_model_factory.cli import cli; "
        "code = cli.main(args=sys.argv[1:], standalone_mode=False); "
        "print(code, sorted(m for m in sys.modules if m.startswith('customer_model_factory')))"
    )
    args = ["release", "verify", RELEASE_ID, "--ledger", str(promoted.path), "--as-of", AS_OF]
    completed = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    last = completed.stdout.splitlines()[-1]  # after the command's own output
    assert last.startswith("0 ")
    for absent in ("pipeline", "chain.record", "chain.promote", "trace_files", "cli.stages"):
        assert f"'customer_model_factory.{absent}'" not in last, absent
    assert "'customer_model_factory.chain.verify'" in last


# --- a release name is an unsigned ref: the gate it resolves to must be that release ----------

OTHER_ID = "nw-claims-guard-2026.11.0-b"


def _witness_cosigns_latest(ledger_path: Path) -> None:
    """Add the demo witness's cosignature of the latest checkpoint (what export requires)."""
    witness = DemoKeys.load(KEYS).one("witness")
    with Ledger.open(ledger_path) as ledger:
        size = ledger.latest_checkpoint_size()
        assert size is not None
        _, note = open_checkpoint(
            ledger.checkpoint(size), origin=ledger.origin, key=ledger.log_public_key
        )
        with ledger.writer(log_key=load_private_key(LOG_KEY)) as writer:
            cosignature = cosign(note.text, witness_name(), witness, 1_795_000_000)
            writer.add_cosignature(size, cosignature, witness.public_key)


def _point_ref_at_another_promoted_release(fresh: DemoLedger, tmp_path: Path) -> str:
    """Record and promote a second release over the demo's parents (with the CLI), then point
    the demo release's ref at its gate, as anyone with write access to refs/ could; return the
    second gate's blob id."""
    files = _monitoring_files(fresh, tmp_path)
    register = cat_to(fresh.path, fresh.blob("risk_register"), tmp_path / "register.json")
    gate = invoke(
        "release", "gate", "--runtime", files["runtime_package"],
        "--evidence", files["evidence_pack"], "--monitoring", files["monitoring_manifest"],
        "--risk-register", register, "--config", EXAMPLES / "release.json",
        "--release-id", OTHER_ID, "-o", tmp_path / "gate-b.json", "--key", key("release_gate"),
        "--ledger", fresh.path, "--log-key", LOG_KEY, "--time", AS_OF, "--record",
    )  # fmt: skip
    assert gate.exit_code == 0, gate.stderr
    assert promote(fresh.path, OTHER_ID)[0] == 0
    _witness_cosigns_latest(fresh.path)  # so that the other release can be exported
    refs = fresh.path / "refs"
    (refs / RELEASE_ID).write_bytes((refs / OTHER_ID).read_bytes())
    return (refs / OTHER_ID).read_text().strip()


def test_a_ref_pointing_at_another_release_is_never_verified_under_its_name(
    fresh: DemoLedger, tmp_path: Path
) -> None:
    other = _point_ref_at_another_promoted_release(fresh, tmp_path)
    pinned = ("--ledger", fresh.path, "--trust", ROOT_PUB, "--as-of", AS_OF, "--json")
    verify = invoke("release", "verify", RELEASE_ID, *pinned)
    document = json_out(verify)
    assert (verify.exit_code, codes(document)) == (1, ["ref_release_mismatch"])
    assert document["release_blob_id"] == other
    assert OTHER_ID in document["findings"][0]["message"]
    status = invoke("release", "status", RELEASE_ID, *pinned)
    assert (status.exit_code, json_out(status)["status"]) == (1, "broken")
    assert codes(json_out(status)) == ["ref_release_mismatch"]
    files = ledger_files(fresh.path)
    code, report = promote(fresh.path, RELEASE_ID)  # the other release is already promoted
    assert (code, codes(report), report["promoted"]) == (1, ["ref_release_mismatch"], False)
    assert ledger_files(fresh.path) == files
    # The same gates named by their blob ids carry no name to confirm: both verify.
    for gate in (fresh.gate, other):
        assert invoke("release", "verify", gate, *pinned).exit_code == 0
    # The name resolved by its own (untouched) ref verifies too.
    assert invoke("release", "verify", OTHER_ID, *pinned).exit_code == 0


def test_export_and_proof_refuse_a_ref_pointing_at_another_release(
    fresh: DemoLedger, tmp_path: Path
) -> None:
    _point_ref_at_another_promoted_release(fresh, tmp_path)
    out = tmp_path / "release.cmfbundle"
    pinned = ("--ledger", fresh.path, "--trust", ROOT_PUB, "--as-of", AS_OF)
    exported = invoke("bundle", "export", RELEASE_ID, "-o", out, *pinned)
    assert exported.exit_code == 1
    refused = exported.stderr.splitlines()
    assert refused[0] == "cmf: refused: 1 finding(s)", refused
    assert refused[1].startswith("cmf: refused: ref_release_mismatch [release_gate "), refused
    assert not out.exists()
    assert invoke("bundle", "export", OTHER_ID, "-o", out, *pinned).exit_code == 0
    proof = invoke("proof", RELEASE_ID, "-o", tmp_path / "p.tlog-proof", "--ledger", fresh.path)
    assert proof.exit_code == 1 and "ref_release_mismatch" in proof.stderr
    assert not (tmp_path / "p.tlog-proof").exists()
    named = invoke("proof", OTHER_ID, "-o", tmp_path / "b.tlog-proof", "--ledger", fresh.path)
    assert named.exit_code == 0, named.stderr


# --- trust on first use is said out loud --------------------------------------------------------


# Commands that resolve a trust root (without --trust, --ledger, --json; export takes -o last).
TOFU_COMMANDS: dict[str, tuple[str, ...]] = {
    "release verify": ("release", "verify", RELEASE_ID, "--as-of", AS_OF),
    "release status": ("release", "status", RELEASE_ID, "--as-of", AS_OF),
    "bundle export": ("bundle", "export", RELEASE_ID, "--as-of", AS_OF, "-o"),
    "verify": ("verify", "--as-of", AS_OF),
}


def _tofu_warning(result: Any) -> str:
    """Return the one stderr line of a command that trusted on first use."""
    (line,) = result.stderr.splitlines()
    return str(line)


@pytest.mark.parametrize("name", sorted(TOFU_COMMANDS))
def test_trust_on_first_use_is_announced_or_named_in_the_json(
    promoted: DemoLedger, tmp_path: Path, name: str
) -> None:
    outputs = iter(tmp_path / f"{n}.cmfbundle" for n in range(3))

    def run(*extra: str | Path) -> Any:
        out = [next(outputs)] if name == "bundle export" else []
        return invoke(*TOFU_COMMANDS[name], *out, "--ledger", promoted.path, *extra)

    human = run()
    assert human.exit_code == 0, human.output
    warning = _tofu_warning(human)
    assert warning.startswith("cmf: warning: trust on first use: ")
    assert "--trust" in warning
    as_json = run("--json")
    assert (as_json.exit_code, as_json.stderr) == (0, "")
    assert json_out(as_json)["trust"] == "tofu"
    pinned = run("--trust", ROOT_PUB, "--json")
    assert (pinned.exit_code, pinned.stderr) == (0, "")
    assert json_out(pinned)["trust"] == str(ROOT_PUB)


def test_promotion_on_first_use_is_announced(fresh: DemoLedger) -> None:
    args = promote_args(fresh.path, RELEASE_ID, *PROMOTERS)
    del args[args.index("--trust") : args.index("--trust") + 2]
    human = invoke(*(a for a in args if a != "--json"))
    assert human.exit_code == 0, human.output
    assert _tofu_warning(human).startswith("cmf: warning: trust on first use: ")
    again = invoke(*args)  # already promoted: still says what it trusted
    assert (again.exit_code, again.stderr, json_out(again)["trust"]) == (0, "", "tofu")
    pinned = invoke(*promote_args(fresh.path, RELEASE_ID, *PROMOTERS))
    assert (pinned.stderr, json_out(pinned)["trust"]) == ("", str(ROOT_PUB))
