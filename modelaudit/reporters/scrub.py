"""The redaction SARIF logs and SBOMs apply: the same as every other output.

Those files are uploaded to dashboards and kept as build artifacts, so they mask secrets even in
a report that was never scrubbed: URL user info and secret query values, secret option values,
and configured secret values (never inside the names a scrubbed report is about, see
`modelaudit.redact`).
"""

from __future__ import annotations

from ..redact import PLACEHOLDER as MASK
from ..redact import redact_argv, redact_text, redact_uri

__all__ = ["MASK", "redact_argv", "redact_text", "redact_uri"]
