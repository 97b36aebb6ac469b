"""Errors (``cli/_common.py``): every usage or input error is exit 2 and ONE line on stderr.

No traceback, and nothing is written: outputs are written atomically, after every input parsed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_fixtures import (
    EXAMPLES,
    LOG_KEY,
    RELEASE_ID,
    DemoLedger,
    assert_one_error_line,
    invoke,
    key,
    ledger_files,
    run_cmf,
)

from customer_model_factory.cli._common import error_line, one_line


def test_missing_input_file(tmp_path: Path) -> None:
    result = invoke(
        "training", "build", "--dataset-report", tmp_path / "nope.json",
        "--config", EXAMPLES / "training.json", "-o", tmp_path / "out.json",
    )  # fmt: skip
    assert_one_error_line(result, "nope.json: No such file or directory")
    assert not (tmp_path / "out.json").exists()


def test_bad_json_names_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "training.json"
    config.write_text('{\n  "package_id": "p",\n  "lane": vertex\n}\n')
    result = invoke(
        "sector", "map", "--config", config, "-o", tmp_path / "out.json"
    )  # (any stage reads its config the same way)
    assert_one_error_line(result, "training.json:3: invalid JSON: Expecting value (column 11)")
    assert not (tmp_path / "out.json").exists()


def test_bad_trace_row_names_file_and_line(tmp_path: Path) -> None:
    traces = tmp_path / "traces.jsonl"
    lines = (EXAMPLES / "traces.jsonl").read_text().splitlines()[:5]
    lines[3] = lines[3][:-1]  # cut the closing brace of row 4
    traces.write_text("\n".join(lines) + "\n")
    result = invoke(
        "dataset", "validate", traces, "--workspace", EXAMPLES / "workspace.json",
        "-o", tmp_path / "report.json",
    )  # fmt: skip
    assert_one_error_line(result, "traces.jsonl:4: invalid JSON")
    assert not (tmp_path / "report.json").exists()


def test_duplicate_key_and_unknown_parameter(tmp_path: Path) -> None:
    config = tmp_path / "mapping.json"
    config.write_text('{"sector_id": "a", "sector_id": "b"}')
    assert_one_error_line(invoke("sector", "map", "--config", config), "duplicate key 'sector_id'")
    config.write_text('{"sector_id": "a", "jurisdiction": "EU", "uri": "x"}')
    assert_one_error_line(
        invoke("sector", "map", "--config", config), "sector_mapping parameters: uri: unknown field"
    )


def test_wrong_parameter_type_is_never_coerced(tmp_path: Path) -> None:
    config = json.loads((EXAMPLES / "evidence.json").read_text())
    config["external_callbacks_allowed"] = "false"
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(config))
    result = invoke(
        "evidence", "build", "--deployment", path, "--mapping", path, "--config", path
    )  # the parameters are checked first
    assert_one_error_line(result, "external_callbacks_allowed: expected true or false, got str")


def test_parent_of_the_wrong_kind_or_tampered(tmp_path: Path) -> None:
    result = invoke(
        "training", "build", "--dataset-report", EXAMPLES / "workspace.json",
        "--config", EXAMPLES / "training.json",
    )  # fmt: skip
    assert_one_error_line(result, "workspace.json: not a valid dataset_report")


def test_unknown_key_file(tmp_path: Path, fresh: DemoLedger) -> None:
    result = invoke(
        "release", "promote", RELEASE_ID, "--ledger", fresh.path, "--log-key", LOG_KEY,
        "--key", tmp_path / "missing.pem",
    )  # fmt: skip
    assert_one_error_line(result, "missing.pem: No such file or directory")


def test_wrong_or_missing_passphrase(tmp_path: Path) -> None:
    (tmp_path / "pass").write_text("correct horse\n")
    (tmp_path / "wrong").write_text("battery staple\n")
    made = invoke("keygen", "alice", "-o", tmp_path, "--passphrase-file", tmp_path / "pass")
    assert made.exit_code == 0, made.stderr
    assert (tmp_path / "alice.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY")
    common: list[str | Path] = [
        "--ledger",
        tmp_path / "ledger",
        "--log-key",
        tmp_path / "alice.pem",
    ]
    wrong = invoke("init", *common, "--passphrase-file", tmp_path / "wrong")
    assert_one_error_line(wrong, "alice.pem", "wrong passphrase")
    missing = invoke("init", *common)
    assert_one_error_line(missing, "no passphrase was given (give --passphrase-file)")
    assert not (tmp_path / "ledger").exists()
    right = invoke("init", *common, "--passphrase-file", tmp_path / "pass")
    assert right.exit_code == 0, right.stderr


def test_missing_ledger_directory(tmp_path: Path) -> None:
    for args in (["log"], ["verify"], ["fsck"], ["show", "ab" * 32], ["trust", "show"]):
        result = invoke(*args, "--ledger", tmp_path / "absent")
        assert_one_error_line(result, "absent: not a ledger (no config.json)")


def test_ledger_from_the_environment(promoted: DemoLedger) -> None:
    result = invoke("log", "--json", env={"CMF_LEDGER": str(promoted.path)})
    assert result.exit_code == 0
    assert json.loads(result.stdout)["size"] == 16


def test_unknown_blob_id(promoted: DemoLedger) -> None:
    result = invoke("show", "0" * 64, "--ledger", promoted.path)
    assert_one_error_line(result, f"unknown blob id: {'0' * 64} is not stored")
    result = invoke("cat", "zz-not-a-thing", "--ledger", promoted.path)
    assert_one_error_line(result, "unknown blob id, ref or file: 'zz-not-a-thing'")


def test_click_usage_errors_are_one_line() -> None:
    assert_one_error_line(invoke("training", "build"), "Missing option '--dataset-report'")
    assert_one_error_line(invoke("no-such-command"), "No such command 'no-such-command'")
    assert_one_error_line(invoke("log", "--bogus"), "No such option '--bogus'", "cmf log --help")
    assert_one_error_line(
        invoke("release", "verify", "x", "--as-of", "yesterday"), "yesterday"
    )  # an instant is parsed strictly


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    assert invoke("keygen", "bob", "-o", tmp_path).exit_code == 0
    before = (tmp_path / "bob.pem").read_bytes()
    assert_one_error_line(invoke("keygen", "bob", "-o", tmp_path), "refusing to overwrite")
    assert (tmp_path / "bob.pem").read_bytes() == before
    assert_one_error_line(invoke("keygen", "a/b", "-o", tmp_path), "plain file name")


def test_lock_held_by_another_writer_is_an_input_error(fresh: DemoLedger) -> None:
    from customer_model_factory.ledger.lock import WriterLock

    with WriterLock(fresh.path / "lock"):
        result = invoke(
            "record", "sector_mapping", EXAMPLES / "sector-mapping.json", "--ledger", fresh.path,
            "--key", key("sector_mapping"), "--log-key", LOG_KEY,
        )  # fmt: skip
    assert_one_error_line(result, "another writer holds the ledger lock")


def test_errors_in_a_subprocess_have_no_traceback(tmp_path: Path) -> None:
    completed = run_cmf("log", "--ledger", tmp_path / "absent")
    assert_one_error_line(completed, "not a ledger")
    assert completed.stdout == ""


def test_help_lists_commands_by_job() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    sections = [line for line in result.stdout.splitlines() if line.endswith(":")]
    expected = [
        "Set up a ledger:",
        "Build factory stages (--record stores, signs and logs the manifest):",
        "Record and inspect:",
        "Verify and release:",
        "Try it:",
    ]
    assert [line for line in sections if line in expected] == expected
    assert "  release  Gate, verify, promote a release; show its status." in result.stdout


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (
            FileNotFoundError(2, "No such file or directory", "x.json"),
            "x.json: No such file or directory",
        ),
        (ValueError("first\n  second"), "first second"),
        (ValueError(""), "ValueError"),
    ],
)
def test_error_line(exc: BaseException, line: str) -> None:
    assert error_line(exc) == line


def test_one_line() -> None:
    assert one_line("a\n\tb  c\n") == "a b c"


def test_record_refusal_writes_nothing(fresh: DemoLedger, tmp_path: Path) -> None:
    before = ledger_files(fresh.path)
    result = invoke(
        "record",
        "training_manifest",
        EXAMPLES / "training.json",
        "--ledger",
        fresh.path,
        "--key",
        key("training_manifest"),
        "--log-key",
        LOG_KEY,
    )  # not a training manifest at all
    assert result.exit_code == 1
    assert "manifest_invalid" in result.stderr
    assert ledger_files(fresh.path) == before


def test_write_new_file_is_whole_or_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # os.write may write fewer bytes than asked (a signal, a full disk); a trust anchor such
    # as a .vkey must never be left truncated, and a failed write must leave nothing behind.
    import errno
    import os

    from customer_model_factory.cli._common import write_new_file

    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:3]))
    data = b"name+01234567+AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n"
    assert write_new_file(tmp_path / "short.vkey", data, 0o644).read_bytes() == data

    def fail_after_first(fd: int, chunk: bytes) -> int:
        if os.fstat(fd).st_size:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(chunk)[:3])

    monkeypatch.setattr(os, "write", fail_after_first)
    with pytest.raises(OSError, match="No space"):
        write_new_file(tmp_path / "full.vkey", data, 0o644)
    assert not (tmp_path / "full.vkey").exists()
