"""Stable identities for findings, shared by SARIF, the JSON report and `--baseline`.

A fingerprint must survive what changes between two runs on the same tree: timestamps, byte
positions (an edit elsewhere in the file moves them), sizes, the order files finish in. It is
built from the rule, the file as the checkout names it (relative to the working directory),
the archive member, the message with numbers folded and the string details; identical
findings in one file are told apart by their occurrence (`digest:N`). SARIF consumers keep one
alert per fingerprint, and a baseline accepts exactly the findings it lists.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath
from typing import TYPE_CHECKING
from urllib.parse import quote

from .findings import FileStatus, Issue
from .redact import redact_uri
from .rules import get_rule

if TYPE_CHECKING:
    from .report import FileReport, ScanReport

__all__ = ["artifact_uri", "assign_fingerprints", "fingerprint", "split_location"]

_POS = re.compile(r" \(pos (\d+)\)$")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_VOLATILE_DETAILS = frozenset(
    {"position", "pos", "offset", "size", "timestamp", "duration", "max_file_size", "elapsed"}
)


def artifact_uri(fr: FileReport, cwd: str) -> tuple[str, bool]:
    """(URI, relative to `cwd`?): a checkout-relative path where possible, else a file URI,
    or the remote object's redacted URI. Undecodable name bytes are percent-encoded."""
    if fr.remote or "://" in fr.path:
        return redact_uri(fr.path), False
    absolute = os.path.abspath(fr.path)
    rel = os.path.relpath(absolute, os.path.abspath(cwd))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return PurePath(absolute).as_uri(), False
    return quote(PurePath(rel).as_posix(), errors="surrogateescape"), True


def split_location(issue: Issue, fr: FileReport) -> tuple[str | None, int | None]:
    """(archive member, byte position) from `file:member (pos N)`; details win for the pos."""
    loc = issue.location or ""
    pos: int | None = None
    m = _POS.search(loc)
    if m:
        pos = int(m.group(1))
        loc = loc[: m.start()]
    raw = issue.details.get("position") if isinstance(issue.details, dict) else None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        pos = raw
    member: str | None = None
    if loc.startswith(fr.path) and loc[len(fr.path) : len(fr.path) + 1] == ":":
        member = loc[len(fr.path) + 1 :] or None
    return member, pos


def _normalised(text: str) -> str:
    return _NUMBER.sub("#", " ".join(text.split())).lower()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def fingerprint(rule_id: str, uri: str, member: str | None, issue: Issue) -> str:
    """The digest of one finding (without its occurrence number)."""
    stable = sorted(
        (str(k), _normalised(str(v)))
        for k, v in (issue.details or {}).items()
        if k not in _VOLATILE_DETAILS and isinstance(v, str | bool)
    )
    parts = [rule_id, uri, member or "", _normalised(issue.message), stable]
    import hashlib

    import orjson

    try:
        material = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        # Lone surrogates (undecodable names): hash their code points, still stable.
        material = _utf8(repr(parts))
    return hashlib.sha256(material).hexdigest()


def assign_fingerprints(report: ScanReport, cwd: str | None = None) -> None:
    """Give every file issue its `digest:N` fingerprint (idempotent)."""
    where = cwd or os.getcwd()
    for fr in report.files:
        if fr.status is FileStatus.SKIPPED or not fr.issues:
            continue
        uri, _ = artifact_uri(fr, where)
        seen: dict[str, int] = {}
        for issue in fr.issues:
            member, _pos = split_location(issue, fr)
            digest = fingerprint(get_rule(issue.rule).id, uri, member, issue)
            n = seen.get(digest, 0) + 1
            seen[digest] = n
            issue.fingerprint = f"{digest}:{n}"
