"""A bound on the Python objects `json.loads` builds for a text, found without parsing it.

The parser makes an object of every value, and a small one costs far more than its text: a
2-byte `{}` becomes a 64-byte dict, so a 90 MB safetensors header of `{},{},...` needs
gigabytes and the worker ran out of memory before any finding. Every value but a container's
first follows a comma and every container opens with `{` or `[`, so values are at most
`commas + opening brackets + 1`: three `bytes.count` passes, linear and in C. Brackets and
commas inside strings only raise the bound; real headers and configs spend about one item
per ten bytes, a hostile text one per one or two.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ..budget import WorkBudget

#: Values a JSON document inside a model file may make the parser build (a safetensors
#: header of 500,000 tensors spends about 4 million; parsing 4 million of the costliest
#: values takes a few hundred megabytes and a few seconds).
MAX_JSON_VALUES: Final = 4_000_000
#: The same for a JSON file of its own (a tokenizer.json of a million-token vocabulary and
#: its merges spends about 4 million), read up to 64 MiB.
MAX_DOCUMENT_VALUES: Final = 8_000_000


def values_bound(raw: bytes | str) -> int:
    """At most how many values parsing `raw` makes (see the module docstring)."""
    if isinstance(raw, str):
        return raw.count(",") + raw.count("{") + raw.count("[") + 1
    return raw.count(b",") + raw.count(b"{") + raw.count(b"[") + 1


def charge_json_values(raw: bytes | str, what: str, limit: int = MAX_JSON_VALUES) -> None:
    """Raise `BudgetExceeded` (naming `what`) before a parse that could build more than
    `limit` values."""
    WorkBudget(what, limit).charge(values_bound(raw))


def loads_bounded(raw: bytes | str, what: str, limit: int = MAX_JSON_VALUES, **kwargs: Any) -> Any:
    """`json.loads(raw, **kwargs)` of JSON inside a model file, once the values it could
    build fit `limit` (`BudgetExceeded` naming `what` first, else json's own errors)."""
    charge_json_values(raw, what, limit)
    return json.loads(raw, **kwargs)


__all__ = [
    "MAX_DOCUMENT_VALUES",
    "MAX_JSON_VALUES",
    "charge_json_values",
    "loads_bounded",
    "values_bound",
]
