"""The JSON report, with the reference's keys, serialised by orjson.

Compact by default so that the reference's CI recipe (`grep '"severity":"critical"'`) works on
the output as written; `indent=True` for humans.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..report import ScanReport


def render(report: ScanReport, indent: bool = False, **_: Any) -> bytes:
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    if indent:
        option |= orjson.OPT_INDENT_2
    return orjson.dumps(report.to_dict(), option=option, default=str) + b"\n"
