"""Shared helpers for tests/frameworks: scan through the real dispatcher and summarise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from modelaudit.engine.dispatch import scan_path
from modelaudit.findings import IssueSeverity, ScanResult


def scan(path: str | Path, **config: object) -> ScanResult:
    return scan_path(str(path), dict(config), explicit=True)


def rules_at(result: ScanResult, severity: IssueSeverity) -> set[str]:
    return {i.rule or "" for i in result.issues if i.severity is severity}


def alarms(result: ScanResult) -> list[str]:
    """WARNING and CRITICAL messages: a legitimate file must have none."""
    return [
        f"{i.severity}: {i.message}"
        for i in result.issues
        if i.severity in (IssueSeverity.WARNING, IssueSeverity.CRITICAL)
    ]


def scan_without_module(path: str | Path, module: str) -> dict[str, object]:
    """Scan in a fresh interpreter where importing `module` fails, as if it were not installed."""
    code = (
        "import json, sys\n"
        f"sys.modules[{module!r}] = None\n"
        "from modelaudit.engine.dispatch import scan_path\n"
        f"r = scan_path({str(path)!r}, {{}})\n"
        "print(json.dumps(r.to_dict()))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
