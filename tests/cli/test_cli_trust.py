"""``cmf trust init|show|add-key|rotate|revoke``: each change is a logged, root-signed version."""

from __future__ import annotations

from pathlib import Path

from cli_fixtures import (
    AS_OF,
    LOG_KEY,
    RELEASE_ID,
    ROOT_PUB,
    DemoLedger,
    assert_one_error_line,
    codes,
    invoke,
    json_out,
    key,
    promote_args,
)
from click.testing import Result

from customer_model_factory.ledger.policy import TrustPolicy


def trust(ledger: Path, *args: str | Path, keys: tuple[Path, ...] = (key("root"),)) -> Result:
    """Run a ``cmf trust`` change signed by ``keys``; return the Result."""
    signing = [arg for path in keys for arg in ("--key", path)]
    return invoke(
        "trust", *args, *signing, "--log-key", LOG_KEY, "--ledger", ledger, "--trust", ROOT_PUB,
        "--time", AS_OF, "--json",
    )  # fmt: skip


def show(ledger: Path) -> TrustPolicy:
    """Return the current policy as ``cmf trust show --json`` prints it (canonical bytes)."""
    result = invoke("trust", "show", "--ledger", ledger, "--trust", ROOT_PUB, "--json")
    assert result.exit_code == 0, result.stderr
    return TrustPolicy.from_bytes(result.stdout_bytes)


def test_show_prints_the_canonical_policy_and_a_human_summary(promoted: DemoLedger) -> None:
    policy = show(promoted.path)
    assert policy.blob_id == promoted.blob("trust_policy")
    human = invoke("trust", "show", "--ledger", promoted.path)
    assert human.exit_code == 0
    assert "NOT pinned" in human.stdout
    unpinned = invoke("trust", "show", "--ledger", promoted.path, "--json")
    assert unpinned.exit_code == 0
    assert TrustPolicy.from_bytes(unpinned.stdout_bytes) == policy
    assert "warning: trust on first use" in unpinned.stderr
    pinned = invoke("trust", "show", "--ledger", promoted.path, "--trust", ROOT_PUB, "--json")
    assert pinned.stderr == ""
    assert (
        "promotion            2 of 3: INSECURE-promotion-1, INSECURE-promotion-2, "
        "INSECURE-promotion-3" in human.stdout
    )


def test_add_key_grants_roles_in_a_new_version(fresh: DemoLedger, tmp_path: Path) -> None:
    assert invoke("keygen", "INSECURE-promotion-4", "-o", tmp_path).exit_code == 0
    result = trust(
        fresh.path, "add-key", tmp_path / "INSECURE-promotion-4.pub", "--role", "promotion"
    )
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["version"] == 2
    policy = show(fresh.path)
    names = {entry.key_id: entry.name for entry in policy.keys}
    assert "INSECURE-promotion-4" in {names[k] for k in policy.role("promotion").key_ids}
    assert len(policy.role("promotion").key_ids) == 4
    # The new promoter counts: promotion 1 + 4 meet the 2-of-4 threshold.
    result = invoke(
        *promote_args(
            fresh.path, RELEASE_ID, key("promotion-1"), tmp_path / "INSECURE-promotion-4.pem"
        )
    )
    assert (result.exit_code, codes(json_out(result))) == (0, [])


def test_root_rotation_needs_the_old_and_the_new_root(fresh: DemoLedger, tmp_path: Path) -> None:
    assert invoke("keygen", "new-root", "-o", tmp_path).exit_code == 0
    new_root = tmp_path / "new-root.pem"
    only_old = trust(fresh.path, "rotate", "INSECURE-root", new_root.with_suffix(".pub"))
    assert only_old.exit_code == 1
    assert "policy_new_root_threshold" in only_old.stderr
    only_new = trust(
        fresh.path, "rotate", "INSECURE-root", new_root.with_suffix(".pub"), keys=(new_root,)
    )
    assert only_new.exit_code == 1
    assert "policy_old_root_threshold" in only_new.stderr
    both = trust(
        fresh.path, "rotate", "INSECURE-root", new_root.with_suffix(".pub"),
        keys=(key("root"), new_root),
    )  # fmt: skip
    assert both.exit_code == 0, both.stderr
    policy = show(fresh.path)
    assert policy.version == 2
    assert [entry.name for entry in policy.keys if entry.key_id in policy.role("root").key_ids] == [
        "new-root"
    ]
    # The new root key, obtained out of band, pins the version that made it root.
    new_pin = new_root.with_suffix(".pub")
    pinned = invoke("trust", "show", "--ledger", fresh.path, "--trust", new_pin, "--json")
    assert pinned.exit_code == 0, pinned.stderr
    assert TrustPolicy.from_bytes(pinned.stdout_bytes) == policy
    # The old root alone can no longer change the policy.
    again = trust(fresh.path, "revoke", "INSECURE-witness", "--reason", "unused")
    assert again.exit_code == 1 and "policy_old_root_threshold" in again.stderr


def test_revoke_defaults_to_the_next_entry(fresh: DemoLedger) -> None:
    result = trust(fresh.path, "revoke", "INSECURE-release_gate", "--reason", "retired")
    assert result.exit_code == 0, result.stderr
    policy = show(fresh.path)
    (revocation,) = policy.revoked
    assert (revocation.from_index, revocation.reason) == (15, "retired")  # recorded at 15
    # Signatures made before index 15 still count: the release still verifies.
    verify = invoke(
        "release", "verify", RELEASE_ID, "--ledger", fresh.path, "--trust", ROOT_PUB,
        "--as-of", AS_OF, "--json",
    )  # fmt: skip
    assert (verify.exit_code, codes(json_out(verify))) == (0, [])


def test_keys_are_named_by_id_name_or_file(fresh: DemoLedger) -> None:
    policy = show(fresh.path)
    witness = next(e.key_id for e in policy.keys if e.name == "INSECURE-witness")
    by_file = trust(fresh.path, "revoke", key("witness").with_suffix(".vkey"), "--reason", "a")
    assert by_file.exit_code == 0, by_file.stderr
    assert [r.key_id for r in show(fresh.path).revoked] == [witness]
    unknown = trust(fresh.path, "revoke", "nobody", "--reason", "b")
    assert_one_error_line(unknown, "'nobody' is not a key id, a key name in policy version 2")


def test_init_refuses_a_second_version_one(promoted: DemoLedger, tmp_path: Path) -> None:
    ledger = promoted.copy(tmp_path / "ledger")
    result = invoke(
        "trust", "init", "--grant", f"root={ROOT_PUB}", "--expires", "2030-01-01T00:00:00Z",
        "--key", key("root"), "--log-key", LOG_KEY, "--ledger", ledger,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "policy_rollback" in result.stderr


def test_init_argument_errors(tmp_path: Path) -> None:
    bad = invoke("trust", "init", "--grant", "root", "--expires", "2030-01-01T00:00:00Z")
    assert_one_error_line(bad, "--grant 'root': expected ROLE=VALUE")
    threshold = invoke(
        "trust", "init", "--grant", f"root={ROOT_PUB}", "--threshold", "root=0",
        "--expires", "2030-01-01T00:00:00Z",
    )  # fmt: skip
    assert_one_error_line(threshold, "threshold '0': expected a positive integer")


def test_expired_policy_must_be_renewed_with_an_explicit_expiry(
    fresh: DemoLedger, tmp_path: Path
) -> None:
    late = ["--time", "2030-02-01T00:00:00Z"]
    kept = invoke(
        "trust", "revoke", "INSECURE-witness", "--reason", "r", "--key", key("root"),
        "--log-key", LOG_KEY, "--ledger", fresh.path, "--trust", ROOT_PUB, *late,
    )  # fmt: skip
    assert kept.exit_code == 1 and "policy_expired" in kept.stderr
    renewed = invoke(
        "trust", "revoke", "INSECURE-witness", "--reason", "r", "--key", key("root"),
        "--log-key", LOG_KEY, "--ledger", fresh.path, "--trust", ROOT_PUB, *late,
        "--expires", "2031-01-01T00:00:00Z",
    )  # fmt: skip
    assert renewed.exit_code == 0, renewed.stderr
