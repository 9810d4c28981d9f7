"""The reference's custom-scanner example, used by tests of registration and the engine."""

from __future__ import annotations

import time

from modelaudit.scanners.base import BaseScanner, IssueSeverity, ScanResult


class CustomModelScanner(BaseScanner):
    """Scanner for custom model format"""

    name = "custom_format"
    description = "Scans custom model format for security issues"
    supported_extensions = [".custom", ".mymodel"]

    @classmethod
    def can_handle(cls, path: str) -> bool:
        return path.endswith(tuple(cls.supported_extensions))

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        try:
            with open(path, "rb") as f:
                content = f.read()
            if b"malicious_pattern" in content:
                result.add_issue(
                    "Suspicious pattern found",
                    severity=IssueSeverity.WARNING,
                    location=path,
                    details={"pattern": "malicious_pattern"},
                )
            if b"sleep_forever" in content:
                time.sleep(3600)
            if b"crash_now" in content:
                import os

                os._exit(139)
        except Exception as e:
            result.add_issue(
                f"Error scanning file: {e!s}",
                severity=IssueSeverity.CRITICAL,
                location=path,
                details={"exception": str(e)},
            )
        result.finish(success=True)
        return result
