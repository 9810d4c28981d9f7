"""The JSON report, with the reference's keys, serialised by orjson.

Compact by default so that the reference's CI recipe (`grep '"severity":"critical"'`) works on
the output as written; `indent=True` for humans. Strings UTF-8 cannot encode (undecodable
file-name bytes, lone surrogates from a scanned file) are written as backslash escapes.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..fingerprints import assign_fingerprints
from ..gcquiet import quiet
from ..report import ScanReport
from .safe import json_safe


def render(report: ScanReport, indent: bool = False, **_: Any) -> bytes:
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    if indent:
        option |= orjson.OPT_INDENT_2
    with quiet():
        assign_fingerprints(report)
        doc = report.to_dict()
        try:
            return orjson.dumps(doc, option=option, default=str) + b"\n"
        except orjson.JSONEncodeError:
            return orjson.dumps(json_safe(doc), option=option, default=str) + b"\n"
