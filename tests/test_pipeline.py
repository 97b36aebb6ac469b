"""Tests for customer_model_factory.pipeline: inputs, stage parameters, the factory, trust."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.chain import kinds
from customer_model_factory.ledger.keys import PrivateKey
from customer_model_factory.ledger.store import Ledger
from customer_model_factory.pipeline import (
    STAGE_PARAMS,
    DemoKeys,
    FactoryRun,
    InputError,
    build_factory,
    build_policy,
    demo_policy,
    manifest_data,
    manifest_findings,
    manifest_label,
    package_demo_dir,
    read_manifest,
    read_params,
    ready_of,
    resolve_trust,
    trust_findings,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
KEYS = REPO / "keys-example"


@pytest.fixture(scope="module")
def run() -> FactoryRun:
    """The factory run on the repository's examples."""
    return build_factory(EXAMPLES)


# --- inputs --------------------------------------------------------------------------------------


def test_read_manifest_checks_the_self_hash(tmp_path: Path, run: FactoryRun) -> None:
    path = tmp_path / "training.json"
    path.write_bytes(manifest_data(run.training))
    parsed = read_manifest(path, kinds.TRAINING_MANIFEST)
    assert parsed.manifest == run.training
    assert parsed.blob_id == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(path.read_bytes().replace(b'"epochs": 4', b'"epochs": 5'))
    with pytest.raises(InputError, match=r"training\.json: not an intact training_manifest"):
        read_manifest(path, kinds.TRAINING_MANIFEST)


# --- stage parameters ----------------------------------------------------------------------------

_SAMPLES: dict[str, Any] = {
    "str": "value",
    "bool": True,
    "int": 3,
    "number": 0.5,
    "str_list": ["a", "b"],
    "path": "predictions/a.jsonl",
    "object": {"k": 1},
    "str_list_object": {"control": ["doc"]},
    "object_list": [{"risk_id": "r"}],
}


def _full_payload(kind: str) -> dict[str, Any]:
    """Return a payload giving every parameter of ``kind`` a value of its type."""
    return {spec.name: _SAMPLES[spec.type] for spec in STAGE_PARAMS[kind]}


_READ_AS: dict[str, Any] = {
    "str_list": ("a", "b"),
    "str_list_object": {"control": ("doc",)},
    "object_list": ({"risk_id": "r"},),
}


@pytest.mark.parametrize("kind", sorted(STAGE_PARAMS))
def test_read_params_accepts_every_parameter_of_its_type(kind: str) -> None:
    values = read_params(kind, _full_payload(kind))
    assert values == {
        spec.name: _READ_AS.get(spec.type, _SAMPLES[spec.type]) for spec in STAGE_PARAMS[kind]
    }


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(sorted(STAGE_PARAMS)),
    st.data(),
)
def test_read_params_never_coerces(kind: str, data: st.DataObject) -> None:
    specs = STAGE_PARAMS[kind]
    spec = data.draw(st.sampled_from(specs))
    wrong = data.draw(
        st.sampled_from([v for t, v in _SAMPLES.items() if not _compatible(spec.type, t)])
    )
    payload = {**_full_payload(kind), spec.name: wrong}
    with pytest.raises(InputError) as caught:
        read_params(kind, payload)
    assert str(caught.value).startswith(f"{kind} parameters: {spec.name}")


def _compatible(expected: str, actual: str) -> bool:
    """True if a sample of type ``actual`` is a valid value for a parameter of ``expected``."""
    same_shape = {
        "path": {"str", "path"},
        "str": {"str", "path"},
        "number": {"number", "int"},
        "str_list": {"str_list"},
        "object": {"object", "str_list_object"},
        "str_list_object": {"str_list_object"},
        "object_list": {"object_list"},
    }
    return actual in same_shape.get(expected, {expected})


def test_read_params_required_unknown_and_defaults() -> None:
    with pytest.raises(InputError, match="runtime_package parameters: runtime_mode: required"):
        read_params(kinds.RUNTIME_PACKAGE, {"runtime_id": "r"})
    with pytest.raises(InputError, match="runtime_package parameters: mode: unknown field"):
        read_params(kinds.RUNTIME_PACKAGE, {"runtime_id": "r", "runtime_mode": "m", "mode": 1})
    values = read_params(
        kinds.EVIDENCE_PACK, {"package_id": "p", "classification": "c", "export_uri": "u"}
    )
    assert (values["external_callbacks_allowed"], values["callback_endpoints"]) == (False, ())


def test_lane_must_be_known(tmp_path: Path, run: FactoryRun) -> None:
    from customer_model_factory.pipeline import build_training

    params = read_params(
        kinds.TRAINING_MANIFEST, json.loads((EXAMPLES / "training.json").read_text())
    )
    params["lane"] = "laptop"
    with pytest.raises(InputError, match="lane: 'laptop' is not one of vertex, customer_cloud"):
        build_training(params, run.report)


# --- the factory on the examples -----------------------------------------------------------------


def test_every_example_stage_is_ready(run: FactoryRun) -> None:
    manifests = [
        run.report, run.training, *run.benchmarks, run.selection, run.deployment, run.mapping,
        run.evidence, run.runtime, run.monitoring, run.register, run.gate,
    ]  # fmt: skip
    assert [manifest_findings(m) for m in manifests if not ready_of(m)] == []
    assert run.report.row_count == 3000
    assert run.selection.selected_benchmark_id == "nw-bench-2026-11-a"
    assert manifest_label(run.runtime) == "nw-runtime-2026-11"
    assert manifest_label(run.evidence) == "nw-evidence-2026-11"


def test_monitoring_needs_review_and_the_accepted_risk_links_it(run: FactoryRun) -> None:
    assert run.monitoring.health_status == "review_required"
    assert [r["code"] for r in manifest_findings(run.monitoring)] == [
        "escalation_threshold_breached"
    ]
    (risk,) = run.register.risks
    assert risk.status == "accepted"
    assert risk.linked_artifact_hashes == {
        "evidence_hash": run.evidence.recompute_hash(),
        "monitoring_hash": run.monitoring.recompute_hash(),
    }


def test_the_examples_generator_reproduces_the_committed_inputs(tmp_path: Path) -> None:
    # generate.py must write exactly the committed traces, predictions and risks.
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", EXAMPLES / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    import random

    rng = random.Random(generate.SEED)
    rows = [generate.trace_row(rng, index) for index in range(generate.ROWS)]
    generate.write_jsonl(tmp_path / "traces.jsonl", rows)
    assert (tmp_path / "traces.jsonl").read_bytes() == (EXAMPLES / "traces.jsonl").read_bytes()
    run = build_factory(EXAMPLES, risks=())
    risks = json.loads((EXAMPLES / "risks.json").read_text())
    assert risks["risks"][0]["linked_artifact_hashes"]["monitoring_hash"] == (
        run.monitoring.monitoring_hash
    )


def test_package_demo_dir_holds_the_examples() -> None:
    assert (package_demo_dir() / "examples" / "traces.jsonl").is_file()
    assert (package_demo_dir() / "keys-example" / "INSECURE-root.pem").is_file()


# --- trust ---------------------------------------------------------------------------------------


def test_build_policy_groups_grants_and_thresholds() -> None:
    a, b, c = (PrivateKey.from_seed(bytes([n]) * 32).public_key for n in (1, 2, 3))
    policy = build_policy(
        origin="o.example/log",
        expires="2030-01-01T00:00:00Z",
        grants=[("root", a, "a"), ("promotion", b, "b"), ("promotion", c, "c"), ("log", a, "a2")],
        thresholds={"promotion": 2},
    )
    assert [(e.name, e.key_id) for e in policy.keys] == sorted(
        [("a", a.key_id), ("b", b.key_id), ("c", c.key_id)], key=lambda pair: pair[1]
    )
    assert policy.role("promotion").threshold == 2
    assert policy.role("log").key_ids == (a.key_id,)
    with pytest.raises(InputError, match="threshold for role\\(s\\) without keys: witness"):
        build_policy(
            origin="o", expires="2030-01-01T00:00:00Z", grants=[("root", a, "a")],
            thresholds={"witness": 1},
        )  # fmt: skip


def test_demo_policy_is_recorded_first(tmp_path: Path) -> None:
    keys = DemoKeys.load(KEYS)
    ledger_dir = REPO / "ledger"
    with Ledger.open(ledger_dir) as ledger:
        trust = resolve_trust(ledger, None)
        assert not trust.pinned
        assert trust.root == demo_policy(keys)
        pinned = resolve_trust(ledger, KEYS / "INSECURE-root.pub")
        assert pinned.pinned and pinned.root == keys.one("root").public_key
        from customer_model_factory.pipeline import DEMO_AS_OF

        assert trust_findings(ledger, pinned, DEMO_AS_OF) == []


def test_the_demo_ledger_is_renamed_into_place_durably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rename is durable only once its directory is fsynced: a crash after "built" must not
    # lose the ledger (or leave only the hidden scratch directory).
    from customer_model_factory.pipeline import run_demo

    events: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(src: Any, dst: Any) -> None:
        real_rename(src, dst)
        events.append(("rename", str(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    target = tmp_path / "demo" / "ledger"
    assert run_demo(target).promoted
    placed = events.index(("rename", str(target)))
    assert ("fsync", str(target.parent)) in events[placed:]


def test_a_release_id_that_is_no_ref_name_is_still_recorded(tmp_path: Path) -> None:
    # The gate's release_id is free text; refs are file names. A gate whose release_id cannot
    # be a ref name used to be refused at recording ("not a ref name"), exit 2.
    import dataclasses
    import shutil

    from customer_model_factory.pipeline import record_manifest, tool_version
    from customer_model_factory.release_gate import CustomerReleaseGateManifest

    shutil.copytree(REPO / "ledger", tmp_path / "ledger")
    keys = DemoKeys.load(KEYS)
    with Ledger.open(tmp_path / "ledger") as ledger:
        gate_id = ledger.ref("nw-claims-guard-2026.11.0")
        parents = [p.sha256 for p in ledger.statement(ledger.entries_for_blob(gate_id)[0]).parents]
        gate = CustomerReleaseGateManifest.from_dict(json.loads(ledger.objects.get(gate_id)))
        renamed = dataclasses.replace(gate, release_id="claims guard/2026.11")
        renamed = dataclasses.replace(renamed, release_hash=renamed.recompute_hash())
        with ledger.writer(log_key=keys.one("log")) as writer:
            entry = record_manifest(
                writer,
                ledger,
                kind=kinds.RELEASE_GATE,
                data=manifest_data(renamed),
                parents=parents,
                signers=[keys.one(kinds.RELEASE_GATE)],
                time="2026-11-20T12:40:00Z",
                tool_version=tool_version(),
            )
        assert ledger.entries_for_blob(entry.blob_id)[0].kind == kinds.RELEASE_GATE
        assert set(ledger.refs()) == {"nw-claims-guard-2026.11.0"}
