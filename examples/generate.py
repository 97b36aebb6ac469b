"""Regenerate the demo's synthetic customer inputs (trace rows and candidate predictions).

Deterministic: a fixed seed and fixed timestamps, so the committed files are exactly what this
script writes. Run from the repository root: ``python examples/generate.py``.
The customer, its people and its claims are fictional.

It also writes ``risks.json`` (the risk register's parameters), whose accepted risk links the
real evidence and monitoring hashes of the demo chain: it runs the stage builders
(``customer_model_factory.pipeline.build_factory``) to learn them. Last, it refreshes the copy
of ``examples/`` and ``keys-example/`` that the package ships for ``cmf demo``
(``src/customer_model_factory/_demo/``).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import cast

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PACKAGE_DEMO = REPO / "src" / "customer_model_factory" / "_demo"
SEED = 20261127
ROWS = 3000
CUSTOMER = "northwind-insurance"
TENANT = "northwind-eu-1"

# Hand-laid-out tables: the formatter leaves them alone.
# fmt: off
TOPICS = [
    # (topic, severity, decision, sector_class, knowledge_class, needs_citation, needs_escalation)
    ("coverage question answered from the policy wording", "low", "approve",
     "claims_servicing", "policy_wording", True, False),
    ("claim status update", "low", "approve", "claims_servicing", "claims_system", False, False),
    ("deductible amount quoted without a source", "medium", "block",
     "claims_servicing", "policy_wording", True, False),
    ("premium change promised before underwriting review", "high", "block",
     "underwriting", "pricing_rules", True, False),
    ("suspected fraud indicators discussed", "critical", "escalate",
     "fraud", "investigation_notes", False, True),
    ("request to disclose another policyholder's details", "critical", "block",
     "privacy", "customer_records", False, False),
    ("medical claim needing a clinician's judgement", "high", "escalate",
     "health_claims", "medical_guidelines", True, True),
    ("question outside the retrieved documents", "medium", "abstain",
     "claims_servicing", "policy_wording", True, False),
    ("complaint that must go to the ombudsman process", "high", "escalate",
     "complaints", "regulatory_procedures", False, True),
    ("settlement figure without the adjuster's report", "medium", "abstain",
     "claims_servicing", "adjuster_reports", True, False),
]
PERILS = ["water damage", "storm", "theft", "fire", "subsidence", "vehicle collision",
          "glass breakage", "liability", "travel delay", "hospital stay"]
PRODUCTS = ["HO-3 home", "motor comprehensive", "travel plus", "health basic", "landlord"]
REVIEWERS = ["claims_qa_lead", "compliance_officer", "senior_adjuster"]
# fmt: on


def trace_row(rng: random.Random, index: int) -> dict[str, object]:
    """One labelled guardrail trace; every prompt is unique (claim numbers never repeat)."""
    topic, severity, decision, sector, knowledge, cite, escalate = rng.choice(TOPICS)
    claim = f"CLM-{100000 + index * 7:07d}"
    peril = rng.choice(PERILS)
    product = rng.choice(PRODUCTS)
    split = rng.choices(["train", "eval", "test"], weights=[70, 15, 15])[0]
    day = 1 + index % 28
    pii = decision == "block" and sector == "privacy"
    metadata: dict[str, object] = {
        "sector_class": sector,
        "knowledge_class": knowledge,
        "requires_citation": cite,
        "jurisdiction": "EU",
        "requires_escalation": escalate,
    }
    if cite:
        metadata["evidence_refs"] = [f"kb://northwind/{knowledge}/{product.replace(' ', '-')}"]
    return {
        "trace_id": f"nw-{index:06d}",
        "customer_id": CUSTOMER,
        "tenant_id": TENANT,
        "split": split,
        "prompt": (
            f"Policyholder on the {product} product asks about claim {claim} ({peril}). "
            f"Context: {topic}. Reference {rng.randrange(10**8):08d}."
        ),
        "response": (
            f"Assistant draft for {claim}: the {peril} claim on the {product} policy "
            f"is handled under section {rng.randint(1, 19)}.{rng.randint(1, 9)}; "
            f"next step recorded by the assistant ({rng.randrange(10**6):06d})."
        ),
        "expected_decision": decision,
        "severity": severity,
        "label": topic,
        "source_refs": [f"claims://{claim}", f"kb://northwind/{knowledge}"],
        "policy_refs": ["northwind-guardrail-policy-2026.3"],
        "reviewer_role": rng.choice(REVIEWERS),
        "observed_at": f"2026-10-{day:02d}T{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:00Z",
        "contains_pii": pii,
        "contains_secret": False,
        "redaction_status": "redacted" if pii else "not_required",
        "metadata": metadata,
    }


# Candidate models: error rate on safe rows (false alarms), on positives of low/medium severity,
# whether they ever miss a high/critical positive, and a latency profile (ms).
# fmt: off
CANDIDATES = {
    "deberta-guard-ft-a": {"false_alarm": 0.03, "miss": 0.04, "miss_high": 0.0,
                           "latency": (38.0, 9.0)},
    "deberta-guard-ft-b": {"false_alarm": 0.02, "miss": 0.03, "miss_high": 0.03,
                           "latency": (35.0, 8.0)},
    "minilm-guard-ft-c": {"false_alarm": 0.06, "miss": 0.07, "miss_high": 0.0,
                          "latency": (12.0, 3.0)},
}
# fmt: on
WRONG_POSITIVE = ["block", "abstain", "escalate"]


def prediction(
    rng: random.Random, row: dict[str, object], profile: dict[str, object]
) -> dict[str, object]:
    """A candidate's prediction for one test row, with a deterministic error model."""
    expected = str(row["expected_decision"])
    severity = str(row["severity"])
    predicted = expected
    if expected == "approve":
        if rng.random() < float(profile["false_alarm"]):  # type: ignore[arg-type]
            predicted = rng.choice(WRONG_POSITIVE)
    else:
        high = severity in ("high", "critical")
        miss = float(profile["miss_high" if high else "miss"])  # type: ignore[arg-type]
        if rng.random() < miss:
            predicted = "approve"
        elif rng.random() < 0.05:
            predicted = rng.choice([d for d in WRONG_POSITIVE if d != expected])
    mean, spread = cast(tuple[float, float], profile["latency"])
    latency = round(max(1.0, rng.gauss(mean, spread)), 1)
    score = round(rng.uniform(0.55, 0.99) if predicted != "approve" else rng.uniform(0.01, 0.45), 3)
    return {
        "trace_id": row["trace_id"],
        "expected_decision": expected,
        "predicted_decision": predicted,
        "severity": severity,
        "latency_ms": latency,
        "score": score,
    }


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    """Write rows as JSON Lines with sorted keys (stable bytes)."""
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")


# The risk register. Monitoring (monitoring.json) shows an escalation rate of 0.17 above the
# 0.15 threshold during the November storm-claims surge: health "review_required". The release
# may only be promoted because this accepted, unexpired risk names that monitoring manifest.
REGISTER = {"register_id": "nw-risk-register-2026-11", "generated_at": "2026-11-20T11:00:00Z"}
ACCEPTED_RISK = {
    "risk_id": "nw-risk-escalation-surge-2026-11",
    "status": "accepted",
    "severity": "medium",
    "owner": "claims-risk-officer@northwind.example",
    "accepted_at": "2026-11-19T16:00:00Z",
    "expires_at": "2027-02-19T00:00:00Z",
    "compensating_controls": [
        "every escalation is reviewed by a senior adjuster within 4 business hours",
        "escalation rate reviewed weekly until it is back under 0.15",
    ],
    "rationale": (
        "Escalation rate 0.17 is above the 0.15 threshold during the storm-claims surge. "
        "Escalations go to humans, so the breach costs reviewer time, not safety."
    ),
}


def write_json(path: Path, document: object) -> None:
    """Write ``document`` as indented, key-sorted JSON (the examples' style)."""
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_risks() -> None:
    """Write risks.json with the accepted risk linked to the demo chain's real hashes."""
    from customer_model_factory.pipeline import build_factory

    write_json(HERE / "risks.json", {**REGISTER, "risks": []})  # the builders read it
    run = build_factory(HERE, risks=())
    links = {
        "evidence_hash": run.evidence.evidence_hash,
        "monitoring_hash": run.monitoring.monitoring_hash,
    }
    write_json(
        HERE / "risks.json",
        {**REGISTER, "risks": [{**ACCEPTED_RISK, "linked_artifact_hashes": links}]},
    )


def example_files(directory: Path) -> list[Path]:
    """Return the demo's input files below ``directory`` (not this script), sorted."""
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file() and path.suffix in (".json", ".jsonl", ".md", ".pem", ".pub", ".vkey")
    )


def mirror_into_package() -> None:
    """Replace the package's copy of examples/ and keys-example/ by exact copies."""
    for name, source in (("examples", HERE), ("keys-example", REPO / "keys-example")):
        target = PACKAGE_DEMO / name
        shutil.rmtree(target, ignore_errors=True)
        for path in example_files(source):
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def main() -> None:
    """Write traces.jsonl, predictions/<model>.jsonl and risks.json; refresh the package copy."""
    rng = random.Random(SEED)
    rows = [trace_row(rng, index) for index in range(ROWS)]
    write_jsonl(HERE / "traces.jsonl", rows)
    test_rows = [row for row in rows if row["split"] == "test"]
    out = HERE / "predictions"
    out.mkdir(exist_ok=True)
    for name, profile in CANDIDATES.items():
        model_rng = random.Random(f"{SEED}:{name}")
        write_jsonl(out / f"{name}.jsonl", [prediction(model_rng, r, profile) for r in test_rows])
    write_risks()
    mirror_into_package()


if __name__ == "__main__":
    main()
