"""`modelaudit rules [RULE...]`: the catalogue, from the rules alone (no scanner, no engine)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import ConfigError
from ..output import write_stdout
from ..rule_docs import render_rules
from .messages import error

__all__ = ["run"]


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    try:
        text = render_rules(args.rules, args.format)
    except ConfigError as exc:
        error(str(exc))
        return 2
    write_stdout((text + "\n").encode())
    return 0
