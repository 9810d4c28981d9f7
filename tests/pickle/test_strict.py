"""--strict turns unknown globals from warnings into critical findings."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import IssueSeverity

# A global nobody has vetted: a class from a made-up package, rebuilt with REDUCE.
UNKNOWN = b"\x80\x02cacme_models.layers\nBlock\nq\x00)\x81q\x01."


def _severities(path: Path, strict: bool) -> set[IssueSeverity]:
    cfg = ScanConfig(strict=strict).scanner_config()
    return {i.severity for i in dispatch.scan_path(str(path), cfg).issues}


def test_unknown_global_is_a_warning_by_default_and_critical_in_strict(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(UNKNOWN)
    assert _severities(path, strict=False) == {IssueSeverity.WARNING}
    assert IssueSeverity.CRITICAL in _severities(path, strict=True)


def test_strict_keeps_known_safe_content_quiet(tmp_path: Path) -> None:
    path = tmp_path / "safe.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    assert _severities(path, strict=True) == set()


def test_strict_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(UNKNOWN)
    proc = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", str(path), "--strict", "--format", "json"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert b'"severity":"critical"' in proc.stdout
