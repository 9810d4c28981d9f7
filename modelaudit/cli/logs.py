"""Logging for a scan: `modelaudit: LEVEL: message` lines on stderr, with every secret
redacted (tracebacks included)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from typing import Any

from ..redact import install_log_redaction

__all__ = ["configure", "note_unused_ignores"]

log = logging.getLogger("modelaudit")


def configure(args: argparse.Namespace) -> None:
    if args.verbose:
        level = logging.DEBUG
    elif args.quiet:
        level = logging.ERROR
    else:
        level = logging.WARNING
    logging.basicConfig(
        level=level, stream=sys.stderr, format="modelaudit: %(levelname)s: %(message)s"
    )
    install_log_redaction()


def note_unused_ignores(ignores: Iterable[Any]) -> None:
    """-v: the settings file's ignore entries that matched nothing (stale ones)."""
    for entry in ignores:
        if not entry.used and not entry.expired():
            log.info(
                "ignore entry for %s in %s matched nothing",
                ", ".join(sorted(entry.rules)),
                entry.source,
            )
