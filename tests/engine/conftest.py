from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelaudit.scanners import SCANNER_REGISTRY


@pytest.fixture
def custom_scanner() -> Iterator[type]:
    """Register the reference's example scanner for one test, exactly as its docs do."""
    from tests.engine._custom_scanner import CustomModelScanner

    SCANNER_REGISTRY.append(CustomModelScanner)
    try:
        yield CustomModelScanner
    finally:
        SCANNER_REGISTRY.remove(CustomModelScanner)


@pytest.fixture
def hostile() -> Iterator[type]:
    """Register the misbehaving test scanner first in the registry for one test."""
    from tests.hardening._hostile_scanners import HostileScanner

    SCANNER_REGISTRY.insert(0, HostileScanner)
    try:
        yield HostileScanner
    finally:
        SCANNER_REGISTRY.remove(HostileScanner)
