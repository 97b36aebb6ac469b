"""Customer Model Factory: stage builders, validation gates and a signed evidence ledger.

The seed's public names (the ten stage modules' builders and manifest classes) are re-exported
here lazily (PEP 562): ``import customer_model_factory`` loads no stage module, and each name's
module is imported on first access, so a command that only verifies pays only for what it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from .benchmark_selection import (
        BenchmarkMetrics,
        CustomerBenchmarkResult,
        CustomerModelSelectionReport,
        select_customer_model,
    )
    from .dataset_contract import (
        CustomerDatasetValidationReport,
        CustomerTraceFinding,
        CustomerWorkspace,
        validate_customer_trace_dataset,
    )
    from .deployment_manifest import (
        CustomerDeploymentManifest,
        DeploymentPolicy,
        build_deployment_manifest,
    )
    from .evidence_pack import CustomerEvidencePackManifest, build_customer_evidence_pack
    from .monitoring_manifest import (
        CustomerMonitoringManifest,
        MonitoringMetrics,
        MonitoringThresholds,
        build_monitoring_manifest,
    )
    from .release_gate import CustomerReleaseGateManifest, build_release_gate_manifest
    from .risk_register import CustomerRiskException, CustomerRiskRegister, build_risk_register
    from .runtime_package import CustomerRuntimePackage, build_customer_runtime_package
    from .sector_extension import (
        SectorEvidenceMapping,
        build_sector_evidence_mapping,
        validate_sector_trace_metadata,
    )
    from .training_manifest import (
        CustomerTrainingManifest,
        TrainingLane,
        build_training_manifest,
    )

# Public name -> the submodule that defines it (the TYPE_CHECKING imports above, for the checker).
_EXPORTS: dict[str, str] = {
    "CustomerWorkspace": "dataset_contract",
    "CustomerTraceFinding": "dataset_contract",
    "CustomerDatasetValidationReport": "dataset_contract",
    "validate_customer_trace_dataset": "dataset_contract",
    "TrainingLane": "training_manifest",
    "CustomerTrainingManifest": "training_manifest",
    "build_training_manifest": "training_manifest",
    "BenchmarkMetrics": "benchmark_selection",
    "CustomerBenchmarkResult": "benchmark_selection",
    "CustomerModelSelectionReport": "benchmark_selection",
    "select_customer_model": "benchmark_selection",
    "DeploymentPolicy": "deployment_manifest",
    "CustomerDeploymentManifest": "deployment_manifest",
    "build_deployment_manifest": "deployment_manifest",
    "SectorEvidenceMapping": "sector_extension",
    "validate_sector_trace_metadata": "sector_extension",
    "build_sector_evidence_mapping": "sector_extension",
    "CustomerEvidencePackManifest": "evidence_pack",
    "build_customer_evidence_pack": "evidence_pack",
    "CustomerRuntimePackage": "runtime_package",
    "build_customer_runtime_package": "runtime_package",
    "MonitoringMetrics": "monitoring_manifest",
    "MonitoringThresholds": "monitoring_manifest",
    "CustomerMonitoringManifest": "monitoring_manifest",
    "build_monitoring_manifest": "monitoring_manifest",
    "CustomerRiskException": "risk_register",
    "CustomerRiskRegister": "risk_register",
    "build_risk_register": "risk_register",
    "CustomerReleaseGateManifest": "release_gate",
    "build_release_gate_manifest": "release_gate",
}

__all__ = [
    "BenchmarkMetrics",
    "CustomerBenchmarkResult",
    "CustomerDatasetValidationReport",
    "CustomerDeploymentManifest",
    "CustomerEvidencePackManifest",
    "CustomerModelSelectionReport",
    "CustomerMonitoringManifest",
    "CustomerReleaseGateManifest",
    "CustomerRiskException",
    "CustomerRiskRegister",
    "CustomerRuntimePackage",
    "CustomerTraceFinding",
    "CustomerTrainingManifest",
    "CustomerWorkspace",
    "DeploymentPolicy",
    "MonitoringMetrics",
    "MonitoringThresholds",
    "SectorEvidenceMapping",
    "TrainingLane",
    "build_customer_evidence_pack",
    "build_customer_runtime_package",
    "build_deployment_manifest",
    "build_monitoring_manifest",
    "build_release_gate_manifest",
    "build_risk_register",
    "build_sector_evidence_mapping",
    "build_training_manifest",
    "select_customer_model",
    "validate_customer_trace_dataset",
    "validate_sector_trace_metadata",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
