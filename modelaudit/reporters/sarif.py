"""SARIF 2.1.0 for GitHub code scanning, Azure DevOps and other SARIF consumers.

Choices that matter to consumers:
- Every result carries our own `partialFingerprints` (rule, relative path, normalised message
  and details), and regions carry only a `byteOffset`, never a `startLine`: the upload action
  hashes the source line of any result that has one, which for a model means streaming a
  multi-GB binary through a text hasher.
- Paths are relative to the working directory under `%SRCROOT%`, so alerts map to files in the
  checkout; remote objects keep their (redacted) URI.
- GitHub rejects runs over 25,000 results or 10 MB gzipped; past either we keep the most severe
  results and say so in a notification, instead of producing a file that cannot be uploaded.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

import orjson

from .._version import __version__
from ..findings import FileStatus, Issue, IssueSeverity
from ..fingerprints import artifact_uri, assign_fingerprints, split_location
from ..report import FileReport, ScanReport
from ..rules import GENERIC, RULES, Rule, get_rule
from .safe import json_safe
from .scrub import redact_argv, redact_text

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL_NAME = "ModelAudit"
SRCROOT = "%SRCROOT%"

#: GitHub code scanning's hard limits for one run.
MAX_RESULTS = 25_000
MAX_GZIP_BYTES = 10 * 1000 * 1000
#: Room left for what the upload action adds (automationDetails, its own re-serialisation).
_GZIP_HEADROOM = 256 * 1024
#: Notifications beyond this many incomplete files are summarised in one.
MAX_FILE_NOTIFICATIONS = 1_000
#: Text limits GitHub enforces on rule descriptions.
MAX_DESCRIPTION = 1024
MAX_TAGS = 10

LEVELS = {
    IssueSeverity.CRITICAL: "error",
    IssueSeverity.WARNING: "warning",
    IssueSeverity.INFO: "note",
    IssueSeverity.DEBUG: "none",
}
#: `reportingConfiguration.rank` (0-100, higher first), as the reference shows for errors.
_RANK = {
    IssueSeverity.CRITICAL: 90.0,
    IssueSeverity.WARNING: 50.0,
    IssueSeverity.INFO: 10.0,
    IssueSeverity.DEBUG: 0.0,
}
_SECURITY_SEVERITY = {
    IssueSeverity.CRITICAL: "9.3",
    IssueSeverity.WARNING: "5.5",
    IssueSeverity.INFO: "2.0",
    IssueSeverity.DEBUG: "0.0",
}
_PRECISION = {
    IssueSeverity.CRITICAL: "high",
    IssueSeverity.WARNING: "medium",
    IssueSeverity.INFO: "very-high",
    IssueSeverity.DEBUG: "very-high",
}
_PROBLEM_SEVERITY = {
    IssueSeverity.CRITICAL: "error",
    IssueSeverity.WARNING: "warning",
    IssueSeverity.INFO: "recommendation",
    IssueSeverity.DEBUG: "recommendation",
}


def _iso(ts: float | None) -> str:
    moment = datetime.fromtimestamp(ts if ts is not None else datetime.now(UTC).timestamp(), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _clip(text: str, limit: int = MAX_DESCRIPTION) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _json_safe(value: Any) -> Any:
    option = orjson.OPT_NON_STR_KEYS
    try:
        return orjson.loads(orjson.dumps(value, default=str, option=option))
    except orjson.JSONEncodeError:
        return orjson.loads(orjson.dumps(json_safe(value), default=str, option=option))


def _dumps(doc: dict[str, Any], option: int = 0) -> bytes:
    try:
        return orjson.dumps(doc, option=option)
    except orjson.JSONEncodeError:
        return orjson.dumps(json_safe(doc), option=option)


#: Digest names as SARIF spells them (the IANA hash function textual names).
_SARIF_HASH = {"sha256": "sha-256", "sha1": "sha-1", "md5": "md5"}


@dataclass
class _Artifact:
    uri: str
    base: str | None
    file: FileReport


class _Locator:
    """Maps report paths to SARIF artifact locations relative to the working directory."""

    def __init__(self, cwd: str) -> None:
        self.cwd = os.path.abspath(cwd)

    def artifact(self, fr: FileReport) -> _Artifact:
        uri, relative = artifact_uri(fr, self.cwd)
        return _Artifact(uri, SRCROOT if relative else None, fr)

    def root_uri(self) -> str:
        root = PurePath(self.cwd).as_uri()
        return root if root.endswith("/") else root + "/"


def _rule_descriptor(rule: Rule, level_severity: IssueSeverity) -> dict[str, Any]:
    tags = ["security"]
    if rule.cwe:
        tags.append(f"external/cwe/cwe-{rule.cwe}")
    tags.extend(t for t in rule.tags if t not in tags)
    cwe_md = (
        f"\n\nReference: [CWE-{rule.cwe}](https://cwe.mitre.org/data/definitions/{rule.cwe}.html)"
        if rule.cwe
        else ""
    )
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": _clip(rule.short)},
        "fullDescription": {"text": _clip(rule.full)},
        "help": {
            "text": f"{rule.short}\n\nWhat to do: {rule.help}",
            "markdown": f"**{rule.name}**: {rule.short}\n\n**What to do:** {rule.help}{cwe_md}",
        },
        "defaultConfiguration": {"level": LEVELS[level_severity], "rank": _RANK[level_severity]},
        "properties": {
            "security-severity": _SECURITY_SEVERITY[level_severity],
            "precision": _PRECISION[level_severity],
            "problem.severity": _PROBLEM_SEVERITY[level_severity],
            "tags": tags[:MAX_TAGS],
        },
    }


def _suppression(suppression: dict[str, str]) -> dict[str, Any]:
    """SARIF's record of an accepted result: `external` (a config file or a baseline, not a
    comment in the scanned file), with the reason the user gave."""
    return {
        "kind": "external",
        "status": "accepted",
        "justification": suppression.get("reason", ""),
        "properties": {
            "modelaudit/kind": suppression.get("kind", ""),
            "modelaudit/source": suppression.get("source", ""),
        },
    }


@dataclass
class _Candidate:
    issue: Issue
    rule: Rule
    artifact_index: int
    member: str | None
    pos: int | None
    fingerprint: str


class _Builder:
    def __init__(self, report: ScanReport, cwd: str, include_debug: bool) -> None:
        self.report = report
        self.locator = _Locator(cwd)
        self.artifacts: list[_Artifact] = []
        self.candidates: list[_Candidate] = []
        min_rank = IssueSeverity.DEBUG.rank if include_debug else IssueSeverity.INFO.rank
        assign_fingerprints(report, self.locator.cwd)
        for fr in report.files:
            if fr.status is FileStatus.SKIPPED:
                continue
            art = self.locator.artifact(fr)
            index = len(self.artifacts)
            self.artifacts.append(art)
            for issue in fr.issues:
                if issue.severity.rank < min_rank:
                    continue
                rule = get_rule(issue.rule)
                member, pos = split_location(issue, fr)
                digest = issue.fingerprint or ""
                self.candidates.append(_Candidate(issue, rule, index, member, pos, digest))
        # Open results first, most severe first, then in report order, so truncation drops
        # accepted and least severe results first.
        self.candidates.sort(key=lambda c: (c.issue.suppressed, -c.issue.severity.rank))

    def _artifact_location(self, art: _Artifact, index: int | None) -> dict[str, Any]:
        loc: dict[str, Any] = {"uri": art.uri}
        if art.base:
            loc["uriBaseId"] = art.base
        if index is not None:
            loc["index"] = index
        return loc

    def _result(
        self, c: _Candidate, rule_index: int, art_index: int | None, fr: FileReport
    ) -> dict[str, Any]:
        issue = c.issue
        art = self.artifacts[c.artifact_index]
        text = redact_text(issue.message)
        if issue.why:
            text += f"\nWhy it matters: {redact_text(issue.why)}"
        physical: dict[str, Any] = {"artifactLocation": self._artifact_location(art, art_index)}
        if c.pos is not None and c.member is None:
            physical["region"] = {"byteOffset": c.pos}
        location: dict[str, Any] = {"physicalLocation": physical}
        if c.member:
            location["logicalLocations"] = [
                {"name": c.member, "fullyQualifiedName": c.member, "kind": "member"}
            ]
        digest = c.fingerprint
        props: dict[str, Any] = {"severity": issue.severity.value, "fileStatus": fr.status.value}
        if issue.location:
            props["location"] = redact_text(issue.location)
        if c.pos is not None:
            props["bytePosition"] = c.pos
        if issue.details:
            props["details"] = _json_safe(issue.details)
        if issue.why:
            props["why"] = issue.why
        if issue.rule and issue.rule != c.rule.id:
            props["reportedRule"] = issue.rule
        out: dict[str, Any] = {
            "ruleId": c.rule.id,
            "ruleIndex": rule_index,
            "level": LEVELS[issue.severity],
            "message": {"text": text},
            "locations": [location],
            "partialFingerprints": {
                "modelaudit/v1": digest,
                "primaryLocationLineHash": digest[:16] + digest[digest.index(":") :],
            },
            "properties": props,
        }
        if issue.suppression is not None:
            out["suppressions"] = [_suppression(issue.suppression)]
        return out

    def _incomplete(self) -> list[int]:
        return [
            i
            for i, a in enumerate(self.artifacts)
            if a.file.status in (FileStatus.INCONCLUSIVE, FileStatus.ERROR)
        ]

    def _notifications(
        self, kept: int, total: int, reason: str | None, new_index: dict[int, int]
    ) -> tuple[list[dict[str, Any]], int]:
        notes: list[dict[str, Any]] = []
        incomplete = self._incomplete()
        for old in incomplete[:MAX_FILE_NOTIFICATIONS]:
            art = self.artifacts[old]
            index = new_index.get(old)
            fr = art.file
            notes.append(
                {
                    "level": "error" if fr.status is FileStatus.ERROR else "warning",
                    "message": {
                        "text": f"{art.uri}: {fr.status.value}: "
                        f"{redact_text(fr.status_reason or 'not fully scanned')}"
                    },
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": self._artifact_location(art, index)
                            }
                        }
                    ],
                    "properties": {"status": fr.status.value},
                }
            )
        if len(incomplete) > MAX_FILE_NOTIFICATIONS:
            notes.append(
                {
                    "level": "warning",
                    "message": {
                        "text": f"{len(incomplete) - MAX_FILE_NOTIFICATIONS} more files were not "
                        "fully scanned; see the JSON report for the full list."
                    },
                }
            )
        for err in self.report.target_errors:
            notes.append(
                {
                    "level": "error",
                    "message": {
                        "text": f"{redact_text(str(err.get('target', '')))}: "
                        f"{redact_text(str(err.get('error', '')))}"
                    },
                    "properties": {"target": redact_text(str(err.get("target", "")))},
                }
            )
        if self.report.interrupted:
            notes.append(
                {"level": "error", "message": {"text": redact_text(self.report.interrupted)}}
            )
        if kept < total:
            notes.append(
                {
                    "level": "warning",
                    "message": {
                        "text": f"Only the {kept} most severe of {total} results are included: "
                        f"{reason}. Use --format json for the complete report."
                    },
                    "properties": {"resultsTotal": total, "resultsIncluded": kept},
                }
            )
        return notes, len(incomplete)

    def build(self, limit: int, all_artifacts: bool, reason: str | None) -> dict[str, Any]:
        kept = self.candidates[:limit]
        rule_ids: list[str] = []
        rule_severity: dict[str, IssueSeverity] = {}
        for c in kept:
            if c.rule.id not in rule_severity:
                rule_ids.append(c.rule.id)
                rule_severity[c.rule.id] = c.issue.severity
            if c.issue.severity.rank > rule_severity[c.rule.id].rank:
                rule_severity[c.rule.id] = c.issue.severity
        rule_index = {rid: i for i, rid in enumerate(rule_ids)}
        rules = [
            _rule_descriptor(RULES.get(rid) or get_rule(GENERIC), rule_severity[rid])
            for rid in rule_ids
        ]

        if all_artifacts:
            wanted = set(range(len(self.artifacts)))
        else:
            wanted = {c.artifact_index for c in kept}
            wanted |= set(self._incomplete()[:MAX_FILE_NOTIFICATIONS])
        order = sorted(wanted)
        new_index = {old: new for new, old in enumerate(order)}
        artifacts = [self._artifact_json(self.artifacts[i]) for i in order]

        results = [
            self._result(
                c,
                rule_index[c.rule.id],
                new_index.get(c.artifact_index),
                self.artifacts[c.artifact_index].file,
            )
            for c in kept
        ]
        notifications, incomplete = self._notifications(
            len(kept), len(self.candidates), reason, new_index
        )
        if not all_artifacts and len(order) < len(self.artifacts):
            notifications.append(
                {
                    "level": "note",
                    "message": {
                        "text": f"{len(self.artifacts) - len(order)} files without results are "
                        "left out of the artifacts list to stay within the upload size limit."
                    },
                }
            )

        report = self.report
        invocation: dict[str, Any] = {
            "executionSuccessful": not report.has_errors,
            "startTimeUtc": _iso(report.start_time),
            "endTimeUtc": _iso(report.end_time),
            "exitCode": report.exit_code,
            "workingDirectory": {"uri": self.locator.root_uri()},
            "toolExecutionNotifications": notifications,
        }
        if report.command_line:
            import shlex

            argv = redact_argv(report.command_line)
            invocation["commandLine"] = shlex.join(argv)
            invocation["arguments"] = argv[1:]
        counts = report.count_by_severity()
        run: dict[str, Any] = {
            "tool": {
                "driver": {
                    "name": TOOL_NAME,
                    "fullName": "ModelAudit static security scanner for ML model files",
                    "version": __version__,
                    "semanticVersion": __version__,
                    "rules": rules,
                }
            },
            "invocations": [invocation],
            "originalUriBaseIds": {SRCROOT: {"uri": self.locator.root_uri()}},
            "artifacts": artifacts,
            "results": results,
            "columnKind": "unicodeCodePoints",
            "properties": {
                "filesScanned": report.files_scanned,
                "filesIncomplete": incomplete,
                "bytesScanned": report.bytes_scanned,
                "severityCounts": counts,
                "targetErrors": len(report.target_errors),
                "exitCode": report.exit_code,
            },
        }
        return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}

    @staticmethod
    def _artifact_json(art: _Artifact) -> dict[str, Any]:
        fr = art.file
        loc: dict[str, Any] = {"uri": art.uri}
        if art.base:
            loc["uriBaseId"] = art.base
        out: dict[str, Any] = {"location": loc, "roles": ["analysisTarget"]}
        if fr.size is not None:
            out["length"] = fr.size
        hashes = {
            _SARIF_HASH[alg]: value for alg, value in fr.digests.items() if alg in _SARIF_HASH
        }
        if fr.sha256:
            hashes["sha-256"] = fr.sha256
        if hashes:
            out["hashes"] = dict(sorted(hashes.items()))
        props: dict[str, Any] = {"status": fr.status.value}
        if fr.digest_source:
            # a remote object's hashes as its provider published them, not computed here
            props["hashSource"] = fr.digest_source
        if fr.format:
            props["format"] = fr.format
        if fr.scanner:
            props["scanner"] = fr.scanner
        if fr.status_reason:
            props["reason"] = redact_text(fr.status_reason)
        out["properties"] = props
        return out


def _gzip_size(doc: dict[str, Any]) -> int:
    return len(gzip.compress(_dumps(doc), compresslevel=6))


def build_sarif(
    report: ScanReport,
    cwd: str | None = None,
    include_debug: bool = False,
    max_results: int = MAX_RESULTS,
    max_gzip_bytes: int = MAX_GZIP_BYTES,
) -> dict[str, Any]:
    """The SARIF log as a dict, trimmed to fit GitHub's limits."""
    builder = _Builder(report, cwd or os.getcwd(), include_debug)
    total = len(builder.candidates)
    budget = max(1, max_gzip_bytes - min(_GZIP_HEADROOM, max_gzip_bytes // 8))
    limit = min(total, max_results)
    reason = (
        f"GitHub code scanning accepts at most {max_results} results per run"
        if total > max_results
        else None
    )
    doc = builder.build(limit, True, reason)
    if _gzip_size(doc) <= budget:
        return doc
    size_reason = f"the log must stay under {max_gzip_bytes} bytes gzip-compressed"
    doc = builder.build(limit, False, reason or size_reason)
    if _gzip_size(doc) <= budget:
        return doc
    lo, hi = 0, limit
    best = builder.build(0, False, size_reason)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        candidate = builder.build(mid, False, size_reason)
        if _gzip_size(candidate) <= budget:
            lo, best = mid, candidate
        else:
            hi = mid - 1
    return best


def render(
    report: ScanReport,
    indent: bool = False,
    verbose: bool = False,
    cwd: str | None = None,
    **_: Any,
) -> bytes:
    doc = build_sarif(report, cwd=cwd, include_debug=verbose)
    return _dumps(doc, orjson.OPT_INDENT_2 if indent else 0) + b"\n"
