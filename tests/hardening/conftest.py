"""Fixtures for the hardening tests: seeds per format, the hostile test scanner, child listing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from modelaudit.scanners import SCANNER_REGISTRY

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _processes_before_the_test() -> None:
    """What "no child left" compares with (see `_hardening_util.left_behind`)."""
    from tests.hardening._hardening_util import note_processes

    note_processes()


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from tests.hardening._hardening_seeds import build_seeds

    return build_seeds(str(tmp_path_factory.mktemp("seeds")))


@pytest.fixture
def hostile() -> Iterator[type]:
    """Register the misbehaving test scanner first in the registry for one test."""
    from tests.hardening._hostile_scanners import HostileScanner

    SCANNER_REGISTRY.insert(0, HostileScanner)
    try:
        yield HostileScanner
    finally:
        SCANNER_REGISTRY.remove(HostileScanner)
