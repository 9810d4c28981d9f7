"""Fixtures for the pickle engine tests (samples are built, never loaded)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def legit_objects() -> list[tuple[str, Any]]:
    from tests.pickle._pickle_corpus import legitimate

    return legitimate()
