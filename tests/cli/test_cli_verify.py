"""``cmf verify`` (storage, policy chain, trusted log key) and ``cmf fsck`` (storage only)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from cli_fixtures import (
    AS_OF,
    KEYS,
    LOG_KEY,
    ROOT_PUB,
    DemoLedger,
    assert_one_error_line,
    codes,
    invoke,
    json_out,
    key,
)

from customer_model_factory.dataset_contract import CustomerDatasetValidationReport
from customer_model_factory.ledger.keys import load_private_key
from customer_model_factory.ledger.statement import Parent
from customer_model_factory.ledger.store import Ledger
from customer_model_factory.pipeline import manifest_data, parse_json_object


def test_verify_a_sound_ledger(promoted: DemoLedger) -> None:
    result = invoke("verify", "--ledger", promoted.path, "--trust", ROOT_PUB, "--as-of", AS_OF)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines() == [
        f"trust: pinned to {ROOT_PUB}",
        "ok: 16 entries, every blob, binding, signature, proof and policy version checks",
    ]
    assert json_out(invoke("fsck", "--ledger", promoted.path, "--json")) == {
        "ok": True,
        "size": 16,
        "findings": [],
    }


def test_verify_and_fsck_find_a_tampered_blob(fresh: DemoLedger) -> None:
    blob_id = fresh.blob("training_manifest")
    path = fresh.path / "objects" / blob_id[:2] / blob_id[2:]
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"deberta", b"DeBERTa", 1))
    fsck = invoke("fsck", "--ledger", fresh.path, "--json", "--jobs", "1")
    assert fsck.exit_code == 1
    assert [(f["code"], f["blob_id"]) for f in json_out(fsck)["findings"]] == [
        ("blob-corrupt", blob_id)
    ]
    verify = invoke("verify", "--ledger", fresh.path, "--trust", ROOT_PUB, "--json", "--jobs", "1")
    assert (verify.exit_code, codes(json_out(verify))) == (1, ["blob-corrupt"])
    human = invoke("fsck", "--ledger", fresh.path, "--jobs", "1")
    assert human.stdout.startswith("FAILED: 1 finding(s)\n  blob-corrupt")


def test_verify_checks_the_policy_chain(fresh: DemoLedger) -> None:
    expired = invoke(
        "verify", "--ledger", fresh.path, "--trust", ROOT_PUB, "--as-of", "2030-01-02", "--json"
    )
    assert (expired.exit_code, codes(json_out(expired))) == (1, ["policy_expired"])
    foreign = invoke("verify", "--ledger", fresh.path, "--trust", KEYS / "INSECURE-log.pub")
    assert foreign.exit_code == 1
    assert "policy_pin_mismatch" in foreign.stdout


def test_verify_checks_that_the_log_key_is_trusted(fresh: DemoLedger, tmp_path: Path) -> None:
    # Rotate the log role to another key: the ledger's checkpoints are still signed by the
    # old one, which the policy no longer trusts.
    assert invoke("keygen", "other-log", "-o", tmp_path).exit_code == 0
    rotated = invoke(
        "trust", "rotate", "INSECURE-log", tmp_path / "other-log.pub", "--key", key("root"),
        "--log-key", LOG_KEY, "--ledger", fresh.path, "--trust", ROOT_PUB, "--time", AS_OF,
    )  # fmt: skip
    assert rotated.exit_code == 0, rotated.stderr
    result = invoke(
        "verify", "--ledger", fresh.path, "--trust", ROOT_PUB, "--as-of", AS_OF, "--json"
    )
    assert (result.exit_code, codes(json_out(result))) == (1, ["log_key_not_trusted"])


def test_verify_an_unreadable_policy(fresh: DemoLedger) -> None:
    blob_id = fresh.blob("trust_policy")
    path = fresh.path / "objects" / blob_id[:2] / blob_id[2:]
    path.chmod(0o644)
    path.write_bytes(b"{}")
    result = invoke("verify", "--ledger", fresh.path, "--json", "--jobs", "1")
    assert result.exit_code == 1
    assert codes(json_out(result)) == ["blob-corrupt", "policy_unreadable"]


def test_verify_revalidates_every_dataset_report_deep(fresh: DemoLedger) -> None:
    # A dataset report signed with the right key but misstating its rows, appended by force.
    trace = fresh.blob("trace_dataset")
    with Ledger.open(fresh.path) as ledger, ledger.writer(log_key=load_private_key(LOG_KEY)) as w:
        honest = CustomerDatasetValidationReport.from_dict(
            parse_json_object(ledger.objects.get(fresh.blob("dataset_report")), "report")
        )
        assert honest.dataset_hash == trace  # the canonical trace blob's id
        forged = replace(honest, row_count=honest.row_count - 1)
        blob_id = w.put_blob(manifest_data(forged))
        w.record(
            kind="dataset_report",
            blob_id=blob_id,
            parents=[Parent("trace_dataset", trace)],
            signers=[load_private_key(key("dataset_report"))],
            time=AS_OF,
            tool_version="attacker/1",
        )
    result = invoke("verify", "--ledger", fresh.path, "--trust", ROOT_PUB, "--json")
    assert result.exit_code == 1
    assert codes(json_out(result)) == ["bind_dataset_counts"]
    assert json_out(result)["findings"][0]["blob_id"] == blob_id


def test_fsck_finds_a_kind_index_that_leaves_an_entry_out(fresh: DemoLedger) -> None:
    # Drop two of the three benchmark results from their kind index, lengths kept consistent.
    index = fresh.path / "kinds" / "benchmark_result.idx"
    index.write_bytes(index.read_bytes()[:8])
    state_file = fresh.path / "state.json"
    state = json.loads(state_file.read_bytes())
    state["kinds"]["files"]["benchmark_result"] = 8
    state_file.write_text(json.dumps(state))
    result = invoke("fsck", "--ledger", fresh.path, "--json", "--jobs", "1")
    assert result.exit_code == 1
    assert codes(json_out(result)) == ["kind-index-mismatch"]


def test_verify_checks_each_record_is_signed_by_its_role(fresh: DemoLedger) -> None:
    # A release gate appended by force and signed by a key that holds no release_gate role:
    # its signature verifies (the key joined the keyring), so only the policy can refuse it.
    # `cmf verify` used to print "every ... signature ... checks" for this ledger.
    gate = fresh.gate
    with Ledger.open(fresh.path) as ledger, ledger.writer(log_key=load_private_key(LOG_KEY)) as w:
        (entry,) = ledger.entries_for_blob(gate)
        parents = list(ledger.statement(entry).parents)
        blob_id = w.put_blob(ledger.objects.get(gate) + b" ")
        w.record(
            kind="release_gate",
            blob_id=blob_id,
            parents=parents,
            signers=[load_private_key(key("sector_mapping"))],
            time=AS_OF,
            tool_version="attacker/1",
        )
    result = invoke(
        "verify", "--ledger", fresh.path, "--trust", ROOT_PUB, "--as-of", AS_OF, "--json"
    )
    assert result.exit_code == 1, result.stdout
    findings = json_out(result)["findings"]
    assert [(f["code"], f["blob_id"], f["index"]) for f in findings] == [
        ("signature_threshold_not_met", blob_id, 15)
    ]


def test_jobs_is_bounded(promoted: DemoLedger) -> None:
    for command in ("fsck", "verify"):
        result = invoke(command, "--ledger", promoted.path, "--jobs", "257")
        assert_one_error_line(result, "--jobs", "257 is not in the range 0<=x<=256")
        assert result.stdout == ""
    bounded = invoke("fsck", "--ledger", promoted.path, "--jobs", "256", "--json")
    assert (bounded.exit_code, json_out(bounded)["ok"]) == (0, True)
