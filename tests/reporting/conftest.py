from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelaudit.scanners import SCANNER_REGISTRY
from tests.reporting._doc_layout import layout

DATA = Path(__file__).resolve().parent / "data"
SARIF_SCHEMA = DATA / "sarif-schema-2.1.0.json"


@pytest.fixture
def reporting_scanner() -> Iterator[type]:
    from tests.reporting._reporting_scanner import ReportingTestScanner

    SCANNER_REGISTRY.insert(0, ReportingTestScanner)
    try:
        yield ReportingTestScanner
    finally:
        SCANNER_REGISTRY.remove(ReportingTestScanner)


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    """Run with the temporary directory as the working directory, as CI runs in a checkout."""
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


@pytest.fixture
def run_cli(reporting_scanner: type) -> Callable[..., tuple[int, Any]]:
    """Run `modelaudit scan` in this process (so the test scanner is registered) and return
    the exit code and the parsed report written to --output."""
    from modelaudit.cli import main

    def run(*args: str, output: str = "report.out") -> tuple[int, Any]:
        code = main(["scan", "--no-progress", "--jobs", "1", "--output", output, *args])
        with open(output, "rb") as f:
            data = f.read()
        try:
            return code, json.loads(data)
        except ValueError:
            return code, data.decode()

    return run


@pytest.fixture(params=[False, True], ids=["benign", "malicious"])
def workdir(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, bool]:
    layout(tmp_path, request.param)
    return tmp_path, request.param
