"""Accepting findings on purpose: ignore entries from the project config, and baselines.

As in ruff, semgrep, bandit or trivy, a suppression never hides anything: the finding stays
in the JSON and SARIF reports, marked with who accepted it and why (SARIF `suppressions`),
and only stops counting for the exit code.

- An ignore entry silences named rules for files matching path globs, and must say why; it
  may carry an `expires` date after which it no longer applies.
- A baseline is an earlier JSON (or SARIF) report: every finding whose fingerprint it lists is
  accepted, so only new findings fail a build. Fingerprints (see `modelaudit.fingerprints`)
  name the rule, file, member, message and details, never the message alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import ConfigError as ConfigError
from .findings import FileStatus, Issue
from .pathglob import GlobSet, posix
from .rules import RULES, SCAN_ERROR, get_rule

if TYPE_CHECKING:
    import datetime as dt

    from .report import FileReport, ScanReport

__all__ = ["Baseline", "ConfigError", "IgnoreEntry", "apply_suppressions", "resolve_rule"]


def resolve_rule(name: str) -> str:
    """A rule id from an id or a rule name (any case); `ConfigError` if there is none."""
    wanted = name.strip()
    if wanted.upper() in RULES:
        return wanted.upper()
    for rule in RULES.values():
        if rule.name.lower() == wanted.lower():
            return rule.id
    raise ConfigError(f"unknown rule {name!r} (`modelaudit rules` lists them)")


@dataclass
class IgnoreEntry:
    """Silence `rules` for files matching `paths` (relative to `root`), because `reason`."""

    rules: frozenset[str]
    paths: GlobSet
    reason: str
    root: str
    source: str
    expires: dt.date | None = None
    used: int = 0

    def expired(self, today: dt.date | None = None) -> bool:
        if self.expires is None:
            return False
        if today is None:
            import datetime

            today = datetime.date.today()
        return today > self.expires

    def matches(self, issue: Issue, fr: FileReport) -> bool:
        if get_rule(issue.rule).id not in self.rules:
            return False
        if fr.remote or "://" in fr.path:
            return self.paths.match((fr.path,)) is not None
        absolute = os.path.abspath(fr.path)
        rel = posix(os.path.relpath(absolute, self.root))
        return self.paths.match((rel, posix(absolute))) is not None


@dataclass
class Baseline:
    """The fingerprints of an earlier report's findings."""

    source: str
    fingerprints: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def load(cls, path: str) -> Baseline:
        import orjson

        try:
            with open(path, "rb") as f:
                doc = orjson.loads(f.read())
        except FileNotFoundError:
            raise ConfigError(f"baseline {path}: no such file") from None
        except OSError as exc:
            raise ConfigError(f"baseline {path}: {exc.strerror or exc}") from None
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"baseline {path}: not a JSON report ({exc})") from None
        found, legacy = _fingerprints(doc)
        if found is None:
            raise ConfigError(
                f"baseline {path}: not a modelaudit JSON or SARIF report (write one with "
                "--format json --output FILE)"
            )
        if legacy:
            raise ConfigError(
                f"baseline {path}: its findings carry no fingerprints (it was written by an "
                "older modelaudit); write it again with --format json --output FILE"
            )
        return cls(path, frozenset(found))


def _fingerprints(doc: Any) -> tuple[set[str] | None, bool]:
    """(fingerprints, whether some file finding has none) of a JSON or SARIF report; None
    if it is neither."""
    if not isinstance(doc, dict):
        return None, False
    found: set[str] = set()
    if isinstance(doc.get("issues"), list):
        legacy = False
        for issue in doc["issues"]:
            if not isinstance(issue, dict):
                continue
            value = issue.get("fingerprint")
            if isinstance(value, str):
                found.add(value)
            elif issue.get("rule") != SCAN_ERROR:
                legacy = True
        return found, legacy
    if isinstance(doc.get("runs"), list):
        for run in doc["runs"]:
            for result in (run or {}).get("results") or []:
                value = (result.get("partialFingerprints") or {}).get("modelaudit/v1")
                if isinstance(value, str):
                    found.add(value)
        return found, False
    return None, False


def apply_suppressions(
    report: ScanReport,
    ignores: Sequence[IgnoreEntry] = (),
    baseline: Baseline | None = None,
    today: dt.date | None = None,
) -> None:
    """Mark the findings the project accepts. Config entries win over the baseline (their
    reason is the more specific one); expired entries are skipped."""
    live = [e for e in ignores if not e.expired(today)]
    if baseline is not None:
        from .fingerprints import assign_fingerprints

        assign_fingerprints(report)
    for fr in report.files:
        if fr.status is FileStatus.SKIPPED:
            continue
        for issue in fr.issues:
            _suppress(issue, fr, live, baseline)


def _suppress(
    issue: Issue, fr: FileReport, ignores: Iterable[IgnoreEntry], baseline: Baseline | None
) -> None:
    for entry in ignores:
        if entry.matches(issue, fr):
            entry.used += 1
            issue.suppression = {"kind": "config", "reason": entry.reason, "source": entry.source}
            return
    if baseline is not None and issue.fingerprint in baseline.fingerprints:
        issue.suppression = {
            "kind": "baseline",
            "reason": f"accepted in baseline {baseline.source}",
            "source": baseline.source,
        }


def parse_ignores(raw: Any, root: str, source: str) -> list[IgnoreEntry]:
    """`[[tool.modelaudit.ignore]]` tables: `rules` (or `rule`), `paths` (or `path`), a
    non-empty `reason`, and an optional `expires` date."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: 'ignore' must be an array of tables ([[...ignore]])")
    import datetime

    entries = []
    for n, item in enumerate(raw, 1):
        where = f"{source}: ignore entry {n}"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: must be a table")
        unknown = set(item) - {"rule", "rules", "path", "paths", "reason", "expires"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        rules = _strings(item, "rule", "rules", where)
        paths = _strings(item, "path", "paths", where)
        reason = item.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{where}: 'reason' is required (say why the finding is accepted)")
        expires = item.get("expires")
        if expires is not None and not isinstance(expires, datetime.date):
            raise ConfigError(f"{where}: 'expires' must be a date, like 2027-01-31")
        if isinstance(expires, datetime.datetime):
            expires = expires.date()
        try:
            globs = GlobSet(paths)
        except (ValueError, re.error) as exc:
            raise ConfigError(f"{where}: bad path pattern: {exc}") from None
        try:
            ids = frozenset(resolve_rule(r) for r in rules)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        entries.append(IgnoreEntry(ids, globs, reason.strip(), root, source, expires))
    return entries


def _strings(item: Mapping[str, Any], one: str, many: str, where: str) -> list[str]:
    if one in item and many in item:
        raise ConfigError(f"{where}: give '{one}' or '{many}', not both")
    value = item.get(many, item.get(one))
    if isinstance(value, str):
        value = [value]
    if not value or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: '{many}' must be a non-empty list of strings")
    return list(value)
