"""``cmf record``, ``cmf show``, ``cmf cat``, ``cmf log``: adding records and reading them back."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cli_fixtures import (
    EXAMPLES,
    LOG_KEY,
    RELEASE_ID,
    DemoLedger,
    assert_one_error_line,
    invoke,
    json_out,
    key,
)

from customer_model_factory.ledger.merkle import leaf_hash
from customer_model_factory.ledger.store import Ledger


def test_log_json_lists_every_entry_with_its_leaf(promoted: DemoLedger) -> None:
    document = json_out(invoke("log", "--ledger", promoted.path, "--json"))
    assert (document["size"], document["checkpoint_size"]) == (16, 16)
    entries = document["entries"]
    assert [e["index"] for e in entries] == list(range(16))
    assert [e["kind"] for e in entries] == [s.kind for s in promoted.stages]
    assert [e["blob_id"] for e in entries] == [s.blob_id for s in promoted.stages]
    with Ledger.open(promoted.path) as ledger:
        for entry in entries:
            leaf = base64.b64decode(entry["leaf"])
            assert leaf == ledger.leaf(entry["index"])
            assert leaf_hash(leaf) == ledger._log.leaf_hash(entry["index"])
            expected = f"cmf-leaf/v1\n{entry['kind']}\n{entry['blob_id']}\n{entry['envelope_id']}\n"
            assert leaf == expected.encode()


def test_log_for_humans(promoted: DemoLedger) -> None:
    result = invoke("log", "--ledger", promoted.path)
    lines = result.stdout.splitlines()
    assert lines[0] == "factory.northwind.example/claims-guard: 16 entries, latest checkpoint 16"
    assert lines[16].split()[:2] == ["15", "promotion"]


def test_cat_prints_the_exact_bytes(promoted: DemoLedger) -> None:
    result = invoke("cat", promoted.blob("sector_mapping"), "--ledger", promoted.path)
    assert result.exit_code == 0
    assert hashlib.sha256(result.stdout_bytes).hexdigest() == promoted.blob("sector_mapping")
    by_ref = invoke("cat", RELEASE_ID, "--ledger", promoted.path)
    assert hashlib.sha256(by_ref.stdout_bytes).hexdigest() == promoted.gate
    by_prefix = invoke("cat", promoted.gate[:8], "--ledger", promoted.path, "--json")
    assert base64.b64decode(json_out(by_prefix)["base64"]) == by_ref.stdout_bytes


def test_cat_refuses_a_tampered_blob(fresh: DemoLedger) -> None:
    blob_id = fresh.blob("sector_mapping")
    path = fresh.path / "objects" / blob_id[:2] / blob_id[2:]
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b" ")
    assert_one_error_line(invoke("cat", blob_id, "--ledger", fresh.path), blob_id)


def test_show_describes_entries_signers_parents_and_inclusion(promoted: DemoLedger) -> None:
    result = invoke("show", RELEASE_ID, "--ledger", promoted.path, "--json")
    view = json_out(result)
    assert view["blob_id"] == promoted.gate
    (entry,) = view["entries"]
    assert (entry["index"], entry["kind"], entry["included"]) == (14, "release_gate", True)
    assert [s["name"] for s in entry["signers"]] == ["INSECURE-release_gate"]
    assert [p["kind"] for p in entry["parents"]] == [
        "runtime_package",
        "evidence_pack",
        "monitoring_manifest",
        "risk_register",
    ]
    assert entry["time"] == "2026-11-20T12:00:00Z"
    human = invoke("show", promoted.gate, "--ledger", promoted.path).stdout
    assert "signed by INSECURE-release_gate" in human
    assert "inclusion under checkpoint 16: proof verifies" in human


def test_show_an_envelope_blob(promoted: DemoLedger) -> None:
    envelope = json_out(invoke("log", "--ledger", promoted.path, "--json"))["entries"][0]
    result = invoke("show", envelope["envelope_id"], "--ledger", promoted.path)
    assert result.exit_code == 0
    assert "not the subject of any log entry" in result.stdout


def test_record_a_file_with_parents_given_as_files(fresh: DemoLedger, tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.json"
    made = invoke(
        "sector", "map", "--config", EXAMPLES / "sector-mapping.json", "--sector-id", "motor",
        "-o", mapping,
    )  # fmt: skip
    assert made.exit_code == 0
    result = invoke(
        "record", "sector_mapping", mapping, "--ledger", fresh.path, "--key", key("sector_mapping"),
        "--log-key", LOG_KEY, "--time", "2026-11-21T00:00:00Z", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    recorded = json_out(result)
    assert recorded["blob_id"] == hashlib.sha256(mapping.read_bytes()).hexdigest()
    assert recorded["index"] == 15
    shown = json_out(invoke("show", recorded["blob_id"], "--ledger", fresh.path, "--json"))
    assert shown["entries"][0]["time"] == "2026-11-21T00:00:00Z"
    again = invoke(
        "record", "sector_mapping", mapping, "--ledger", fresh.path, "--key", key("sector_mapping"),
        "--log-key", LOG_KEY,
    )  # fmt: skip
    assert again.exit_code == 1 and "already_recorded" in again.stderr


def test_record_checks_parent_kinds(fresh: DemoLedger, tmp_path: Path) -> None:
    gate = tmp_path / "gate.json"
    gate.write_bytes(invoke("cat", fresh.gate, "--ledger", fresh.path).stdout_bytes)
    result = invoke(
        "record", "release_gate", gate, "--parent", fresh.blob("sector_mapping"),
        "--ledger", fresh.path, "--key", key("release_gate"), "--log-key", LOG_KEY,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "already_recorded" in result.stderr and "parent_kind_mismatch" in result.stderr


def test_record_argument_errors(fresh: DemoLedger) -> None:
    common: list[str | Path] = [
        "--ledger",
        fresh.path,
        "--key",
        key("trace_dataset"),
        "--log-key",
        LOG_KEY,
    ]
    traces = EXAMPLES / "traces.jsonl"
    assert_one_error_line(
        invoke("record", "trace_dataset", traces, "--parent", "a" * 64, *common),
        "a trace_dataset has no parents",
    )
    assert_one_error_line(
        invoke("record", "sector_mapping", traces, "--parent", "nope", *common),
        "--parent 'nope': neither a blob id (64 hex digits) nor a file",
    )
    assert_one_error_line(
        invoke("record", "promotion", traces, *common), "'promotion' is not one of"
    )
    without_log_key = invoke("record", "sector_mapping", traces, "--ledger", fresh.path,
                             "--key", key("sector_mapping"))  # fmt: skip
    assert_one_error_line(without_log_key, "--log-key FILE (or CMF_LOG_KEY)")
    assert json.loads(invoke("log", "--ledger", fresh.path, "--json").stdout)["size"] == 15


def test_record_refuses_deeply_nested_json_without_a_traceback(
    fresh: DemoLedger, tmp_path: Path
) -> None:
    # json's RecursionError used to escape record_stage and print a traceback.
    deep = tmp_path / "deep.json"
    deep.write_bytes(b'{"a":' * 100_000)
    result = invoke(
        "record", "release_gate", deep, "--ledger", fresh.path, "--key", key("release_gate"),
        "--log-key", LOG_KEY,
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert "manifest_invalid" in result.stderr and "nested too deeply" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(invoke("log", "--ledger", fresh.path, "--json").stdout)["size"] == 15


def test_show_reports_a_deeply_nested_envelope_as_a_problem(fresh: DemoLedger) -> None:
    # An entry whose (hash-true) envelope blob is hostile JSON, appended at the file level.
    from customer_model_factory.ledger.logstore import LogStore
    from customer_model_factory.ledger.records import LeafRecord

    with Ledger.open(fresh.path) as ledger:
        envelope_id = ledger.objects.put(b'{"a":' * 100_000)
    with LogStore(fresh.path / "log") as log:
        log.append(LeafRecord("release_gate", fresh.gate, envelope_id).to_bytes())
    result = invoke("show", fresh.gate, "--ledger", fresh.path, "--json")
    assert result.exit_code == 0, result.stderr
    first, forged = json_out(result)["entries"]
    assert first["problems"] == [] and first["signers"]
    assert forged["envelope_id"] == envelope_id and forged["signers"] == []
    assert any("nested too deeply" in problem for problem in forged["problems"])
