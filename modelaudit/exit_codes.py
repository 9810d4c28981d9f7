"""The exit-code rule, stated once.

`modelaudit scan --help`, the README and docs/ci.md quote these lines word for word (a test
holds them to it); `ScanReport.exit_code` implements them. Kept free of imports so `--help`
stays fast.
"""

from __future__ import annotations

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_INCOMPLETE = 2

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_CLEAN, "every file was fully scanned and no finding fails the policy"),
    (
        EXIT_FINDINGS,
        "at least one finding at or above --fail-on (default: any WARNING or CRITICAL)",
    ),
    (
        EXIT_INCOMPLETE,
        "no failing finding, but something is unverified: a file not fully scanned (timeout, "
        "too large, truncated, a Git LFS pointer whose content a clone did not fetch, unknown "
        "model format) or a target or folder that could not be read; also a usage error or a "
        "report that could not be written, whatever was found",
    ),
)
EXIT_CODE_NOTES = (
    "A file gets the same verdict whether it is named or met in a folder: a file no scanner "
    "understands is unverified if its extension is a model format, otherwise it is not a "
    "model and is listed as skipped, which never changes the exit code (with --strict, only "
    "if it is text or a known data-only format). Suppressed findings never count."
)


def exit_code_help() -> str:
    """The rule as plain text, one code per paragraph."""
    lines = [f"{code}  {meaning}" for code, meaning in EXIT_CODES]
    return "\n".join(["exit codes:", *lines, "", EXIT_CODE_NOTES])
