"""Builders for the bundle tests: promoted ledgers of a real factory run, and their bundles.

Everything is real: the stage builders, the ledger, Ed25519 keys from fixed seeds (the chain
tests' ``chain_fixtures``), the chain verifier. A witness key holds the policy's ``witness``
role and cosigns the latest checkpoint, as a transparency witness would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import chain_fixtures as cf
import pytest

from customer_model_factory.benchmark_selection import (
    CustomerBenchmarkResult,
    select_customer_model,
)
from customer_model_factory.bundle.export import export_bundle
from customer_model_factory.bundle.format import Bundle, encode_bundle
from customer_model_factory.chain import kinds, promote_release, record_policy
from customer_model_factory.ledger.checkpoint import open_checkpoint
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.note import cosign
from customer_model_factory.ledger.policy import KeyEntry, Role, TrustPolicy
from customer_model_factory.ledger.store import Ledger

KEYS = cf.Keys()
WITNESS = cf.key("witness")
WITNESS_NAME = "witness.example/w1"
WITNESS_TIME = 1_780_000_000  # 2026-05-28
AS_OF = cf.AS_OF
ROOT = KEYS.root.public_key


@contextlib.contextmanager
def no_fsync() -> Iterator[None]:
    """Skip fsync while building fixtures (durability is the ledger tests' concern)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)
        yield


def policy_with_witness(keys: cf.Keys = KEYS, **changes: Any) -> TrustPolicy:
    """Return the chain tests' policy plus a ``witness`` role held by WITNESS (1-of-1)."""
    base = cf.make_policy(keys, **changes)
    return TrustPolicy(
        base.version,
        base.expires,
        base.origin,
        (*base.keys, KeyEntry.of(WITNESS.public_key, "witness")),
        (*base.roles, Role("witness", (WITNESS.public_key.key_id,), 1)),
        (),
    )


@dataclass(frozen=True)
class Promoted:
    """A ledger directory holding a promoted release, and what was recorded in it."""

    path: Path
    recorded: cf.Recorded
    keys: cf.Keys = KEYS

    @property
    def gate(self) -> str:
        """The release gate's blob id."""
        return self.recorded.gate

    def open(self) -> Ledger:
        """Open the ledger (close it after use)."""
        return Ledger.open(self.path)

    def copy(self, target: Path) -> Promoted:
        """Copy the ledger directory to ``target`` and return the copy."""
        shutil.copytree(self.path, target)
        return Promoted(target, self.recorded, self.keys)


def promote(
    ledger: Ledger, keys: cf.Keys, gate: str, signers: list[PrivateKey] | None = None
) -> None:
    """Promote ``gate`` with two of the three promoters (the 2-of-3 threshold) and commit."""
    with ledger.writer(log_key=keys.log) as writer:
        report = promote_release(
            ledger,
            writer,
            gate,
            trust=keys.root.public_key,
            as_of=AS_OF,
            signers=signers if signers is not None else list(keys.promoters[:2]),
            time=cf.TIME,
            tool_version=cf.TOOL,
        )
    assert report.ok, report.findings


def cosign_latest(ledger: Ledger, keys: cf.Keys, witness: PrivateKey = WITNESS) -> None:
    """Add WITNESS's cosignature/v1 of the latest checkpoint."""
    size = ledger.latest_checkpoint_size()
    assert size is not None
    _, note = open_checkpoint(
        ledger.checkpoint(size), origin=ledger.origin, key=ledger.log_public_key
    )
    with ledger.writer(log_key=keys.log) as writer:
        writer.add_cosignature(
            size, cosign(note.text, WITNESS_NAME, witness, WITNESS_TIME), witness.public_key
        )


def build_promoted(
    path: Path,
    *,
    factory: cf.Factory | None = None,
    keys: cf.Keys = KEYS,
    policy: TrustPolicy | None = None,
    witness: bool = True,
) -> Promoted:
    """Create ``path / "ledger"`` with a policy, a full factory run, its promotion and (by
    default) a witness cosignature of the final checkpoint."""
    with no_fsync():
        ledger, recorded = cf.build_ledger(
            path,
            factory=factory,
            keys=keys,
            policy=policy if policy is not None else policy_with_witness(keys),
        )
        try:
            promote(ledger, keys, recorded.gate)
            if witness:
                cosign_latest(ledger, keys)
        finally:
            ledger.close()
    return Promoted(path / "ledger", recorded, keys)


def record_next_policy(
    ledger: Ledger, keys: cf.Keys, policy: TrustPolicy, *, witness: bool = True
) -> None:
    """Record ``policy`` (a successor) signed by the root key, commit, and (by default) have
    the witness cosign the new checkpoint."""
    with ledger.writer(log_key=keys.log) as writer:
        record_policy(
            writer, ledger, policy=policy, signers=[keys.root], time=cf.TIME, tool_version=cf.TOOL
        )
    if witness:
        cosign_latest(ledger, keys)


def export(promoted: Promoted, **options: Any) -> Bundle:
    """Export the promoted release of ``promoted`` as of the test clock."""
    options.setdefault("trust", promoted.keys.root.public_key)
    options.setdefault("as_of", AS_OF)
    with promoted.open() as ledger:
        return export_bundle(ledger, promoted.gate, **options)


def bundle_bytes(bundle: Bundle) -> bytes:
    """Return the canonical bytes of ``bundle``."""
    return encode_bundle(bundle)


def later(days: int) -> datetime:
    """Return the test clock moved ``days`` days on."""
    return datetime.fromtimestamp(AS_OF.timestamp() + days * 86_400, tz=UTC)


def many_candidates(count: int) -> cf.Factory:
    """The chain tests' factory run with ``count`` benchmark candidates (two blobs each)."""
    made: list[CustomerBenchmarkResult] = []

    def forge(kind: str, manifest: Any) -> Any:
        if kind == kinds.TRAINING_MANIFEST:
            made.extend(
                CustomerBenchmarkResult.from_metrics(
                    benchmark_id=f"bench-{n:05d}",
                    training_manifest=manifest,
                    model_artifact_uri=f"gs://alpha/models/candidate-{n}",
                    metrics=cf.metrics(0.80 + (n % 97) / 1000),
                    raw_result_uri=f"gs://alpha/bench/{n}.json",
                    claim_boundary="customer-alpha traces only",
                )
                for n in range(count)
            )
        if kind == kinds.SELECTION_REPORT:
            return select_customer_model(
                selection_id="sel-alpha",
                objective_profile="zero_silent_unsafe_pass",
                candidates=made,
            )
        return manifest

    return replace(cf.build_factory(forge=forge), benchmarks=tuple(made))


# Prior-art appendix A.3 (docs/ledger-format.md section 8.2): the complete tlog-proof of index 3
# of the leaves entry-0 ... entry-6, under the checkpoint signed by RFC 8032 TEST 1 as the log key.
A3_TLOG_PROOF = (
    "c2sp.org/tlog-proof@v1\n"
    "index 3\n"
    "BJ19zbVrz+vTEzBMmDnxlqPUtu873AsIKY+TrIGR8Kg=\n"
    "LyelCCwdQq+kiKw1Cp/EOQwIT1T3Hs3/hZ6Y24QptHk=\n"
    "5CnFtcyqlSPDcpfxhGdm+QMTfoIZXFGZ5r5XEw0QBsg=\n"
    "\n"
    "ledger.example/evidence\n"
    "7\n"
    "kTlgHMHKirKnoMLBNMBIRfKxulSag9bIRc/NpDnMWF0=\n"
    "\n"
    "— ledger.example/evidence 9JOE1QJg3emIKl5SMH/bMcZliAVX5TjK3uCnpaas8nKIPLEtAH42KpYwW4Li"
    "lAZfNPCSQqSCT55LPW287J8BRd8NLQU=\n"
)
