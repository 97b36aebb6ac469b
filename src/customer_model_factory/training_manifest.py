"""Training package manifest for customer-owned scorer models (reference section 5)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import fields, replace
from enum import StrEnum
from typing import Any, Self

from ._fields import (
    reject_unknown,
    req_bool,
    req_dict,
    req_findings,
    req_str,
)
from ._frozen import frozen
from ._hashing import check_self_hash
from ._manifest import SelfHashedManifest, check_schema_and_ready
from .dataset_contract import CustomerDatasetValidationReport

SCHEMA_VERSION = "1.0.0"

OBJECTIVE_PROFILES = frozenset(
    {"conservative", "balanced", "low_latency", "high_recall", "zero_silent_unsafe_pass"}
)


class TrainingLane(StrEnum):
    """Supported execution lanes for customer training packages."""

    VERTEX = "vertex"
    CUSTOMER_CLOUD = "customer_cloud"
    ON_PREM = "on_prem"
    LOCAL_PILOT = "local_pilot"


# The reference counts the managed Vertex lane as "private": only the local pilot is not.
_PRIVATE_LANES = frozenset({TrainingLane.VERTEX, TrainingLane.CUSTOMER_CLOUD, TrainingLane.ON_PREM})

_OUTPUT_PREFIXES: Mapping[TrainingLane, tuple[str, ...]] = {
    TrainingLane.VERTEX: ("gs://", "s3://"),
    TrainingLane.CUSTOMER_CLOUD: ("gs://", "s3://"),
    TrainingLane.ON_PREM: ("file://", "/"),
    TrainingLane.LOCAL_PILOT: ("file://", "/"),
}

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@frozen
class CustomerTrainingManifest(SelfHashedManifest):
    """Immutable description of a customer model training package."""

    schema_version: str
    package_id: str
    ready: bool
    customer_id: str
    workspace_id: str
    tenant_id: str
    dataset_hash: str
    dataset_ready: bool
    lane: TrainingLane
    base_model_id: str
    base_model_revision: str
    base_model_artifact_uri: str
    output_uri: str
    hyperparameters: dict[str, Any]
    objective_profile: str
    requires_private_execution: bool
    findings: tuple[dict[str, str], ...]
    manifest_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Serialise the manifest to a stable JSON-safe dictionary."""
        return {
            "schema_version": self.schema_version,
            "package_id": self.package_id,
            "ready": self.ready,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "dataset_hash": self.dataset_hash,
            "dataset_ready": self.dataset_ready,
            "lane": self.lane.value,
            "base_model_id": self.base_model_id,
            "base_model_revision": self.base_model_revision,
            "base_model_artifact_uri": self.base_model_artifact_uri,
            "output_uri": self.output_uri,
            "hyperparameters": copy.deepcopy(dict(sorted(self.hyperparameters.items()))),
            "objective_profile": self.objective_profile,
            "requires_private_execution": self.requires_private_execution,
            "findings": [dict(finding) for finding in self.findings],
            "manifest_hash": self.manifest_hash,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a manifest from its serialised shape; strict, ValueError names the field."""
        manifest = cls(
            schema_version=req_str(payload, "schema_version"),
            package_id=req_str(payload, "package_id"),
            ready=req_bool(payload, "ready"),
            customer_id=req_str(payload, "customer_id"),
            workspace_id=req_str(payload, "workspace_id"),
            tenant_id=req_str(payload, "tenant_id"),
            dataset_hash=req_str(payload, "dataset_hash"),
            dataset_ready=req_bool(payload, "dataset_ready"),
            lane=_parse_lane(req_str(payload, "lane")),
            base_model_id=req_str(payload, "base_model_id"),
            base_model_revision=req_str(payload, "base_model_revision"),
            base_model_artifact_uri=req_str(payload, "base_model_artifact_uri"),
            output_uri=req_str(payload, "output_uri"),
            hyperparameters=copy.deepcopy(req_dict(payload, "hyperparameters")),
            objective_profile=req_str(payload, "objective_profile"),
            requires_private_execution=req_bool(payload, "requires_private_execution"),
            findings=req_findings(payload, "findings"),
            manifest_hash=req_str(payload, "manifest_hash"),
        )
        reject_unknown(payload, _FIELD_NAMES)
        return manifest

    def verify_hash(self) -> None:
        """Raise HashMismatchError on a wrong ``manifest_hash``, ValueError on inconsistent flags.

        Besides the hash, ``schema_version`` and ``ready == not findings`` (section 1.3), the
        values the hash does not cover are checked against the rules that derive them, so they
        cannot be edited silently: ``dataset_ready``, ``requires_private_execution`` and
        ``base_model_artifact_uri``.
        """
        check_self_hash(
            "CustomerTrainingManifest", "manifest_hash", self.manifest_hash, self.recompute_hash()
        )
        check_schema_and_ready(
            "CustomerTrainingManifest",
            self.schema_version,
            SCHEMA_VERSION,
            self.ready,
            not self.findings,
            len(self.findings),
        )
        codes = {finding.get("code") for finding in self.findings}
        if self.dataset_ready == ("dataset_not_ready" in codes):
            raise ValueError(
                f"CustomerTrainingManifest.dataset_ready: {self.dataset_ready} contradicts the "
                "dataset_not_ready finding"
            )
        if self.requires_private_execution != (self.lane in _PRIVATE_LANES):
            raise ValueError(
                "CustomerTrainingManifest.requires_private_execution: "
                f"{self.requires_private_execution} contradicts lane {self.lane.value!r}"
            )
        if self.base_model_artifact_uri != _artifact_uri(self.base_model_id):
            raise ValueError(
                "CustomerTrainingManifest.base_model_artifact_uri: "
                f"{self.base_model_artifact_uri!r} is not derived from base_model_id"
            )

    def _hash_payload(self) -> dict[str, Any]:
        """Return the section 5.3 hash payload; ready, dataset_ready and private flag excluded."""
        return {
            "package_id": self.package_id,
            "customer_id": self.customer_id,
            "workspace_id": self.workspace_id,
            "tenant_id": self.tenant_id,
            "dataset_hash": self.dataset_hash,
            "lane": self.lane.value,
            "base_model_id": self.base_model_id,
            "base_model_revision": self.base_model_revision,
            "base_model_artifact_uri": self.base_model_artifact_uri,
            "output_uri": self.output_uri,
            "hyperparameters": self.hyperparameters,
            "objective_profile": self.objective_profile,
            "findings": list(self.findings),
        }


_FIELD_NAMES = tuple(field.name for field in fields(CustomerTrainingManifest))


def build_training_manifest(
    *,
    package_id: str,
    dataset_report: CustomerDatasetValidationReport,
    lane: TrainingLane,
    base_model_id: str,
    base_model_revision: str,
    output_uri: str,
    hyperparameters: dict[str, Any],
    objective_profile: str,
) -> CustomerTrainingManifest:
    """Build and validate a customer training package manifest (reference section 5.3)."""
    lane = TrainingLane(lane)
    findings = _collect_findings(
        package_id=package_id,
        dataset_ready=dataset_report.ready,
        lane=lane,
        base_model_id=base_model_id,
        base_model_revision=base_model_revision,
        output_uri=output_uri,
        hyperparameters=hyperparameters,
        objective_profile=objective_profile,
    )
    draft = CustomerTrainingManifest(
        schema_version=SCHEMA_VERSION,
        package_id=package_id,
        ready=not findings,
        customer_id=dataset_report.customer_id,
        workspace_id=dataset_report.workspace_id,
        tenant_id=dataset_report.tenant_id,
        dataset_hash=dataset_report.dataset_hash,
        dataset_ready=dataset_report.ready,
        lane=lane,
        base_model_id=base_model_id,
        base_model_revision=base_model_revision,
        base_model_artifact_uri=_artifact_uri(base_model_id),
        output_uri=output_uri,
        # A private deep copy: later edits to the caller's dict cannot drift from the hash.
        hyperparameters=copy.deepcopy(dict(sorted(hyperparameters.items()))),
        objective_profile=objective_profile,
        requires_private_execution=lane in _PRIVATE_LANES,
        findings=tuple(findings),
        manifest_hash="",
    )
    return replace(draft, manifest_hash=draft.recompute_hash())


def _collect_findings(
    *,
    package_id: str,
    dataset_ready: bool,
    lane: TrainingLane,
    base_model_id: str,
    base_model_revision: str,
    output_uri: str,
    hyperparameters: Mapping[str, Any],
    objective_profile: str,
) -> list[dict[str, str]]:
    """Return the section 5.3 findings, in the reference's order."""
    findings: list[dict[str, str]] = []
    if not package_id.strip():
        findings.append(_finding("package_id_missing", "package_id is required"))
    if not dataset_ready:
        findings.append(_finding("dataset_not_ready", "dataset validation report is not ready"))
    if not base_model_id.strip():
        findings.append(_finding("base_model_missing", "base_model_id is required"))
    if not _base_model_is_immutable(base_model_id, base_model_revision):
        findings.append(
            _finding(
                "base_model_not_immutable",
                "base model must use an immutable revision or managed artefact URI",
            )
        )
    if not output_uri.startswith(_OUTPUT_PREFIXES[lane]):
        findings.append(
            _finding(
                "output_uri_incompatible",
                f"output_uri {output_uri!r} is incompatible with lane {lane.value!r}",
            )
        )
    if not hyperparameters:
        findings.append(_finding("hyperparameters_missing", "hyperparameters are required"))
    if objective_profile not in OBJECTIVE_PROFILES:
        findings.append(
            _finding(
                "objective_profile_unknown",
                f"objective_profile {objective_profile!r} is not supported",
            )
        )
    return findings


def _base_model_is_immutable(base_model_id: str, base_model_revision: str) -> bool:
    """Return True for a gs:// artefact, a ``local-sha256:`` revision or a >=12-char hex revision.

    The ``local-sha256:`` suffix is deliberately not checked, as in the reference.
    """
    if base_model_id.startswith("gs://") or base_model_revision.startswith("local-sha256:"):
        return True
    return len(base_model_revision) >= 12 and set(base_model_revision) <= _HEX_DIGITS


def _artifact_uri(base_model_id: str) -> str:
    """Return the managed artefact URI: the base model id when it is a gs:// URI, else ``""``."""
    return base_model_id if base_model_id.startswith("gs://") else ""


def _parse_lane(value: str) -> TrainingLane:
    """Return the TrainingLane named ``value``; ValueError naming the field when unknown."""
    try:
        return TrainingLane(value)
    except ValueError:
        known = ", ".join(lane.value for lane in TrainingLane)
        raise ValueError(
            f"lane: unknown training lane {value!r} (expected one of {known})"
        ) from None


def _finding(code: str, message: str) -> dict[str, str]:
    """Return a section 1.2 finding record (severity is always ``error`` at this stage)."""
    return {"code": code, "severity": "error", "message": message}
