"""CycloneDX SBOMs of scanned model files (`modelaudit scan --sbom FILE`)."""

from __future__ import annotations

from .builder import build_bom, build_sbom, component_type, risk_score

__all__ = ["build_bom", "build_sbom", "component_type", "risk_score"]
