"""Tests for receipts: the receiver cosigns what it accepted; the sender stores the receipt."""

from __future__ import annotations

import os
from pathlib import Path

import bundle_fixtures as bf
import chain_fixtures as cf
import pytest

from customer_model_factory.bundle.format import Bundle, bundle_id
from customer_model_factory.bundle.importer import import_bundle, origin_dir
from customer_model_factory.bundle.receipt import (
    add_receipt,
    make_receipt,
    pick_origin,
    receipt_cosignature,
)
from customer_model_factory.ledger.errors import LedgerError, SignatureError
from customer_model_factory.ledger.fsck import fsck
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.note import parse_note, verify_cosignature
from customer_model_factory.ledger.store import Ledger

KEYS = bf.KEYS
SITE = PrivateKey.from_seed(b"\x51" * 32)  # the receiving site's witness key
SITE_NAME = "site.example/air-gap"
WHEN = 1_790_000_000


@pytest.fixture
def receiver(tmp_path: Path) -> Path:
    path = tmp_path / "receiver"
    Ledger.create(path, origin=SITE_NAME, log_key=SITE.public_key).close()
    return path


def accept(receiver: Path, bundle: Bundle) -> None:
    import_bundle(receiver, bundle, bundle_id=bundle_id(bundle), trust=bf.ROOT, as_of=bf.AS_OF)


def test_a_receipt_cosigns_the_accepted_checkpoint(receiver: Path, release_bundle: Bundle) -> None:
    accept(receiver, release_bundle)
    receipt = make_receipt(receiver, witness=SITE, name=SITE_NAME, timestamp=WHEN)
    note = parse_note(receipt)
    assert note.text == parse_note(release_bundle.checkpoint).text
    signature = receipt_cosignature(receipt, SITE.public_key)
    assert verify_cosignature(note.text, signature, SITE.public_key) == WHEN
    # The log's signature and the witness's are kept: the receipt is a complete checkpoint.
    assert len(note.signatures) == 3


def test_the_sender_stores_a_valid_receipt_once(receiver: Path, promoted: bf.Promoted) -> None:
    bundle = bf.export(promoted)
    accept(receiver, bundle)
    receipt = make_receipt(receiver, witness=SITE, name=SITE_NAME, timestamp=WHEN)
    with promoted.open() as ledger, ledger.writer(log_key=KEYS.log) as writer:
        size, timestamp = add_receipt(ledger, writer, receipt, SITE.public_key)
    assert (size, timestamp) == (bundle.claimed_checkpoint.size, WHEN)
    with promoted.open() as ledger:
        stored = parse_note(ledger.checkpoint(size))
        assert receipt_cosignature(ledger.checkpoint(size), SITE.public_key) in stored.signatures
        assert fsck(ledger, jobs=1) == []
        before = ledger.checkpoint(size)
        with ledger.writer(log_key=KEYS.log) as writer:
            add_receipt(ledger, writer, receipt, SITE.public_key)
        assert ledger.checkpoint(size) == before


def test_a_receipt_by_another_key_or_of_another_log_is_refused(
    receiver: Path, promoted: bf.Promoted, tmp_path: Path
) -> None:
    accept(receiver, bf.export(promoted))
    receipt = make_receipt(receiver, witness=SITE, name=SITE_NAME, timestamp=WHEN)
    other = PrivateKey.from_seed(b"\x52" * 32).public_key
    with promoted.open() as ledger, ledger.writer(log_key=KEYS.log) as writer:
        with pytest.raises(SignatureError, match="no cosignature"):
            add_receipt(ledger, writer, receipt, other)
        with pytest.raises(SignatureError, match="no cosignature"):
            add_receipt(ledger, writer, receipt, SITE.public_key, name="someone.else/x")
    stranger = Ledger.create(tmp_path / "stranger", origin="stranger.example/log", log_key=other)
    with stranger, pytest.raises(SignatureError, match="not a checkpoint of this"):
        add_receipt(stranger, None, receipt, SITE.public_key)  # type: ignore[arg-type]


def test_a_receipt_for_a_forked_history_is_refused(
    receiver: Path, promoted: bf.Promoted, tmp_path: Path
) -> None:
    fork = bf.build_promoted(
        tmp_path / "fork", policy=bf.policy_with_witness(expires="2026-12-31T00:00:00Z")
    )
    accept(receiver, bf.export(fork))
    receipt = make_receipt(receiver, witness=SITE, name=SITE_NAME, timestamp=WHEN)
    with (
        promoted.open() as ledger,
        ledger.writer(log_key=KEYS.log) as writer,
        pytest.raises(SignatureError, match="different history"),
    ):
        add_receipt(ledger, writer, receipt, SITE.public_key)


def test_the_origin_is_chosen_explicitly_when_ambiguous(receiver: Path) -> None:
    with pytest.raises(LedgerError, match="imported from 0 logs"):
        pick_origin(receiver, None)
    with pytest.raises(LedgerError, match="nothing was imported"):
        pick_origin(receiver, cf.ORIGIN)


def test_a_tampered_accepted_checkpoint_is_never_cosigned(
    receiver: Path, release_bundle: Bundle
) -> None:
    accept(receiver, release_bundle)
    assert pick_origin(receiver, None) == cf.ORIGIN
    size = release_bundle.claimed_checkpoint.size
    path = origin_dir(receiver, cf.ORIGIN) / "checkpoints" / str(size)
    os.chmod(path, 0o644)
    tampered = path.read_bytes().replace(f"\n{size}\n".encode(), f"\n{size + 1}\n".encode(), 1)
    assert tampered != path.read_bytes()
    path.write_bytes(tampered)
    with pytest.raises(SignatureError):
        make_receipt(receiver, witness=SITE, name=SITE_NAME, timestamp=WHEN)
