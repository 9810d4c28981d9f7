"""Stable rule identifiers for findings: the whole catalogue, loadable without any scanner.

Every issue names a rule so that SARIF consumers keep one alert per finding across runs and
users can look up what to do (`modelaudit rules`). Rules live here by family; ids never change
meaning once published. Third-party scanners may `define_rule` their own ids at import.
"""

from __future__ import annotations

from . import containers, data, frameworks, pickle, text
from .catalogue import RULES, Rule, define_rule, get_rule
from .core import (
    BLACKLISTED,
    FILE_TOO_LARGE,
    FINDINGS_TRUNCATED,
    GENERIC,
    MALFORMED,
    MISSING_DEPENDENCY,
    RESOURCE_LIMIT,
    SANDBOX_VIOLATION,
    SCAN_ERROR,
    SCAN_TIMEOUT,
    UNKNOWN_FORMAT,
)

__all__ = [
    "BLACKLISTED",
    "FILE_TOO_LARGE",
    "FINDINGS_TRUNCATED",
    "GENERIC",
    "MALFORMED",
    "MISSING_DEPENDENCY",
    "RESOURCE_LIMIT",
    "RULES",
    "SANDBOX_VIOLATION",
    "SCAN_ERROR",
    "SCAN_TIMEOUT",
    "UNKNOWN_FORMAT",
    "Rule",
    "containers",
    "data",
    "define_rule",
    "frameworks",
    "get_rule",
    "pickle",
    "text",
]
