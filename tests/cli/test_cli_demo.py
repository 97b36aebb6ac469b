"""``cmf demo``: the whole factory, recorded and promoted; byte-reproducible; safe to rerun."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from cli_fixtures import (
    COMMITTED_LEDGER,
    EXAMPLES,
    KEYS,
    RELEASE_ID,
    REPO,
    DemoLedger,
    assert_one_error_line,
    invoke,
    json_out,
    ledger_files,
    run_cmf,
)

from customer_model_factory.chain import kinds
from customer_model_factory.ledger.keys import PublicKey, load_public_key
from customer_model_factory.pipeline import DemoKeys, demo_key_names, demo_policy, package_demo_dir

DEMO_SUFFIXES = (".json", ".jsonl", ".md", ".pem", ".pub", ".vkey")


def _demo_inputs(directory: Path) -> dict[str, bytes]:
    """Return the demo input files below ``directory`` (generate.py excluded)."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.suffix in DEMO_SUFFIXES
    }


def _snapshot(directory: Path) -> dict[Path, tuple[bytes, int]]:
    """Return every file's bytes and modification time, and every directory's mtime."""
    return {
        path: (path.read_bytes() if path.is_file() else b"", path.stat().st_mtime_ns)
        for path in directory.rglob("*")
    }


def test_committed_ledger_is_exactly_what_the_demo_rebuilds(tmp_path: Path) -> None:
    result = invoke("demo", "--ledger", tmp_path / "ledger", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json_out(result)
    assert summary["promoted"] is True and summary["mode"] == "built"
    assert summary["ledger"] == str(tmp_path / "ledger")
    assert summary["release_id"] == RELEASE_ID
    rebuilt = ledger_files(tmp_path / "ledger")
    committed = ledger_files(COMMITTED_LEDGER)
    assert sorted(rebuilt) == sorted(committed), "run `cmf demo --ledger ledger` in a clean tree"
    different = [name for name in rebuilt if rebuilt[name] != committed[name]]
    assert different == [], "the committed ledger/ is stale: rebuild it with cmf demo"
    assert summary["release_gate"] == (COMMITTED_LEDGER / "refs" / RELEASE_ID).read_text().strip()


def test_demo_prints_every_stage(promoted: DemoLedger, tmp_path: Path) -> None:
    target = promoted.copy(tmp_path / "ledger")
    result = invoke("demo", "--ledger", target)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{target}: already holds the demo; verified"
    stage_kinds = [line.split()[1] for line in lines[1:17]]
    assert stage_kinds == [stage.kind for stage in promoted.stages]
    assert stage_kinds.count("benchmark_result") == 3
    assert "signed by INSECURE-promotion-1, INSECURE-promotion-2" in lines[16]
    assert lines[17].startswith(f"release {RELEASE_ID} (")
    assert "promoted as of 2026-11-20T12:30:00Z" in lines[17]


def test_rerun_on_the_demo_ledger_verifies_and_changes_nothing(
    promoted: DemoLedger, tmp_path: Path
) -> None:
    target = promoted.copy(tmp_path / "ledger")
    before = ledger_files(target)
    result = invoke("demo", "--ledger", target, "--json")
    assert result.exit_code == 0, result.stderr
    assert (json_out(result)["mode"], json_out(result)["promoted"]) == ("verified", True)
    assert ledger_files(target) == before


def test_demo_from_the_repository_root_never_changes_the_committed_ledger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = _snapshot(COMMITTED_LEDGER)
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("CMF_LEDGER", raising=False)
    result = invoke("demo", "--json")  # --ledger defaults to ./ledger
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["mode"] == "verified"
    assert _snapshot(COMMITTED_LEDGER) == before


def test_demo_into_an_empty_directory_builds(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = invoke("demo", "--ledger", tmp_path / "empty", "--json")
    assert (result.exit_code, json_out(result)["mode"]) == (0, "built")
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]  # no scratch directory left over


def test_demo_refuses_another_ledger(unpromoted: DemoLedger, tmp_path: Path) -> None:
    target = unpromoted.copy(tmp_path / "ledger")  # the demo chain, but never promoted
    before = ledger_files(target)
    result = invoke("demo", "--ledger", target)
    assert_one_error_line(result, "holds a ledger other than the demo's (15 entries")
    assert ledger_files(target) == before


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    result = invoke("demo", "--ledger", tmp_path)
    assert_one_error_line(result, "not empty and not a ledger")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_demo_in_a_subprocess_from_elsewhere(tmp_path: Path) -> None:
    # Works from any directory: the examples and keys ship inside the package.
    completed = run_cmf("demo", "--ledger", "out", "--json", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    summary = __import__("json").loads(completed.stdout)
    assert summary["promoted"] is True
    assert ledger_files(tmp_path / "out") == ledger_files(COMMITTED_LEDGER)


def test_package_ships_exact_copies_of_examples_and_keys() -> None:
    shipped = package_demo_dir()
    for name, source in (("examples", EXAMPLES), ("keys-example", KEYS)):
        copy, original = _demo_inputs(shipped / name), _demo_inputs(source)
        assert sorted(copy) == sorted(original), f"run python examples/generate.py ({name})"
        assert copy == original, f"run python examples/generate.py ({name})"


def test_example_keys_are_marked_insecure_one_per_role() -> None:
    keys = DemoKeys.load(KEYS)
    assert all(name.startswith("INSECURE-") for name in keys.keys)
    assert len({key.public_key.key_id for key in keys.keys.values()}) == len(keys.keys)
    for name, private in keys.keys.items():
        vkey_name, public = PublicKey.parse_verifier_key(
            (KEYS / f"{name}.vkey").read_text().strip()
        )
        assert (vkey_name, public) == (name, private.public_key)
        assert load_public_key(KEYS / f"{name}.pub") == private.public_key
    assert "INSECURE" in (KEYS / "README.md").read_text()
    assert set(demo_key_names()) == {"root", "log", "witness", *kinds.STAGE_KINDS}


def test_demo_policy_thresholds() -> None:
    policy = demo_policy(DemoKeys.load(KEYS))
    promotion = policy.role("promotion")
    assert (promotion.threshold, len(promotion.key_ids)) == (2, 3)
    assert {role.name for role in policy.roles} == {"root", "log", "witness", *kinds.STAGE_KINDS}
    assert all(policy.role(r).threshold == 1 for r in kinds.STAGE_KINDS if r != "promotion")


def test_demo_ends_by_verifying_its_bundle_offline(tmp_path: Path) -> None:
    # The last step: export the release, then verify that file with only the pinned root key.
    bundle = tmp_path / "release.cmfbundle"
    result = invoke("demo", "--ledger", tmp_path / "ledger", "--bundle", bundle, "--json")
    summary = json_out(result)
    assert result.exit_code == 0, result.output
    assert summary["bundle"]["verified"] is True and summary["bundle"]["findings"] == []
    assert summary["bundle"]["status"] == "promoted"
    checked = run_cmf(
        "bundle", "verify", str(bundle), "--trust-root", str(KEYS / "INSECURE-root.pub"),
        "--at", "2026-11-20T12:30:00Z", cwd=tmp_path,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "verifies and is promoted" in checked.stdout
    flipped = bytearray(bundle.read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    bundle.write_bytes(bytes(flipped))
    refused = run_cmf(
        "bundle", "verify", str(bundle), "--trust-root", str(KEYS / "INSECURE-root.pub"),
        "--at", "2026-11-20T12:30:00Z", cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode in (1, 2), refused.stdout


def test_demo_prints_its_offline_step(tmp_path: Path) -> None:
    result = invoke("demo", "--ledger", tmp_path / "ledger")
    assert result.exit_code == 0, result.output
    offline = [line for line in result.output.splitlines() if line.startswith("offline: ")]
    assert len(offline) == 1 and offline[0].endswith("no ledger: verified, promoted")
    assert "to a temporary file" in offline[0]


def _next_command(output: str) -> list[str]:
    """Return the arguments of the command the demo's ``next:`` line prints (without ``cmf``)."""
    (line,) = [line for line in output.splitlines() if line.startswith("next: ")]
    words = shlex.split(line.removeprefix("next: "))
    assert words[0] == "cmf" and "<" not in line, line  # a command, not a template
    return words[1:]


def test_the_printed_next_command_works_when_pasted_elsewhere(
    promoted: DemoLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Away from the repository the demo used the keys shipped in the package: their real path.
    monkeypatch.chdir(tmp_path)
    promoted.copy(tmp_path / "my ledger")  # a space: the printed command must quote it
    result = invoke("demo", "--ledger", "my ledger")
    assert result.exit_code == 0, result.output
    args = _next_command(result.stdout)
    trusted = Path(args[args.index("--trust") + 1])
    assert trusted == package_demo_dir() / "keys-example" / "INSECURE-root.pub"
    pasted = invoke(*args)
    assert pasted.exit_code == 0, pasted.output
    assert f"trust: pinned to {trusted}" in pasted.stdout
    assert pasted.stdout.rstrip().endswith("verified: the whole chain verifies")


def test_the_printed_next_command_names_keys_example_in_the_repository(
    promoted: DemoLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    target = promoted.copy(tmp_path / "ledger")
    result = invoke("demo", "--ledger", target)
    assert result.exit_code == 0, result.output
    args = _next_command(result.stdout)
    assert args[args.index("--trust") + 1] == "keys-example/INSECURE-root.pub"
    pasted = invoke(*args)
    assert pasted.exit_code == 0, pasted.output
