"""``cmf init`` and ``cmf keygen``."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cli_fixtures import KEYS, assert_one_error_line, invoke, json_out

from customer_model_factory.ledger.keys import PublicKey, load_private_key, load_public_key
from customer_model_factory.ledger.store import Ledger


def test_keygen_writes_three_files(tmp_path: Path) -> None:
    result = invoke("keygen", "ops-1", "-o", tmp_path / "keys")
    assert result.exit_code == 0, result.stderr
    key_id = result.stdout.strip()
    private = load_private_key(tmp_path / "keys" / "ops-1.pem")
    assert private.public_key.key_id == key_id
    assert load_public_key(tmp_path / "keys" / "ops-1.pub") == private.public_key
    name, public = PublicKey.parse_verifier_key(
        (tmp_path / "keys" / "ops-1.vkey").read_text().strip()
    )
    assert (name, public) == ("ops-1", private.public_key)
    assert stat.S_IMODE((tmp_path / "keys" / "ops-1.pem").stat().st_mode) == 0o600


def test_keygen_json(tmp_path: Path) -> None:
    document = json_out(invoke("keygen", "ops-2", "-o", tmp_path, "--json"))
    assert document["name"] == "ops-2"
    assert document["encrypted"] is False
    assert load_public_key(Path(document["public_key"])).key_id == document["key_id"]


def test_init_creates_an_empty_ledger(tmp_path: Path) -> None:
    target = tmp_path / "ledger"
    result = invoke(
        "init", "--ledger", target, "--log-key", KEYS / "INSECURE-log.vkey", "--origin",
        "factory.example/test", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)
    with Ledger.open(target) as ledger:
        assert (ledger.origin, ledger.size) == ("factory.example/test", 0)
        assert ledger.log_public_key.key_id == created["log_key_id"]
    assert_one_error_line(
        invoke("init", "--ledger", target, "--log-key", KEYS / "INSECURE-log.pem"),
        "refusing to create a ledger in a non-empty location",
    )


def test_init_default_origin(tmp_path: Path) -> None:
    result = invoke(
        "init", "--ledger", tmp_path / "audit-ledger", "--log-key", KEYS / "INSECURE-log.pub"
    )
    assert result.exit_code == 0, result.stderr
    with Ledger.open(tmp_path / "audit-ledger") as ledger:
        assert ledger.origin == "cmf.local/audit-ledger"


def test_init_rejects_a_bad_key_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key\n")
    assert_one_error_line(invoke("init", "--ledger", tmp_path / "l", "--log-key", bad), "bad.pub")
    assert not (tmp_path / "l").exists()


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("cmf, version ")
