"""Render a finished `ScanReport`. Reporters are pure functions of the report.

Each format is a module with `render(report, **options) -> bytes`; the table below is the
explicit registration the CLI uses for `--format`.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from ..report import ScanReport


class Renderer(Protocol):
    def __call__(self, report: ScanReport, **options: Any) -> bytes: ...


FORMATS: dict[str, str] = {
    "text": "modelaudit.reporters.text",
    "json": "modelaudit.reporters.json",
    "sarif": "modelaudit.reporters.sarif",
}


def get_renderer(fmt: str) -> Renderer:
    try:
        module = importlib.import_module(FORMATS[fmt])
    except KeyError:
        choices = ", ".join(FORMATS)
        raise ValueError(f"unknown report format {fmt!r}; choose from {choices}") from None
    render: Renderer = module.render
    return render
