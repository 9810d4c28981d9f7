"""Logging for a scan: `modelaudit: LEVEL: message` lines on stderr, with every secret
redacted (tracebacks included). Imported only when something can log: a sweep (the engine
logs), or -v; a one-file run without -v never imports logging (nothing in it logs at
WARNING or above)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from typing import Any

from ..redact import redact_text

__all__ = ["RedactingFormatter", "configure", "install_log_redaction", "note_unused_ignores"]

log = logging.getLogger("modelaudit")


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's formatter so no log line (tracebacks included) carries a secret."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(self.inner.format(record))


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Redact every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter))


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
