"""Stable rule identifiers for findings.

Every issue names a rule so that SARIF consumers can keep one alert per finding across runs
and users can look up what to do. Scanner modules define their own rules at import time with
`define_rule`; ids never change meaning once published.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .findings import IssueSeverity


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    short: str
    help: str
    severity: IssueSeverity = IssueSeverity.WARNING
    cwe: int | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def full(self) -> str:
        return self.short if not self.cwe else f"{self.short} (CWE-{self.cwe})"


RULES: dict[str, Rule] = {}


def define_rule(
    id: str,
    name: str,
    short: str,
    help: str,
    severity: IssueSeverity = IssueSeverity.WARNING,
    cwe: int | None = None,
    tags: tuple[str, ...] = (),
) -> str:
    """Register a rule and return its id, so modules can write `RULE_X = define_rule(...)`."""
    rule = Rule(id=id, name=name, short=short, help=help, severity=severity, cwe=cwe, tags=tags)
    existing = RULES.get(id)
    if existing is not None and existing != rule:
        raise ValueError(f"rule {id} defined twice with different content")
    RULES[id] = rule
    return id


def get_rule(rule_id: str | None) -> Rule:
    """The rule for an id; unknown ids (third-party scanners) get a generic description."""
    if rule_id and rule_id in RULES:
        return RULES[rule_id]
    return RULES[GENERIC]


GENERIC = define_rule(
    "MA0000",
    "GenericFinding",
    "A scanner reported a finding without a specific rule.",
    "Read the finding's message and details; treat the file as untrusted until explained.",
)
SCAN_TIMEOUT = define_rule(
    "MA0001",
    "ScanTimeout",
    "The scan of this file did not finish within its deadline.",
    "Raise --timeout (or --file-timeout) and scan again; until then the file is unverified.",
)
FILE_TOO_LARGE = define_rule(
    "MA0002",
    "FileTooLarge",
    "The file is larger than --max-size and was not read.",
    "Raise --max-size (for example --max-size 3GB) to scan it; until then it is unverified.",
)
UNKNOWN_FORMAT = define_rule(
    "MA0003",
    "UnknownFormat",
    "No scanner recognises this file's format.",
    "Check that the file is a model in a supported format; an unknown file may still be loaded "
    "by custom code, so do not trust it blindly.",
)
SCAN_ERROR = define_rule(
    "MA0004",
    "ScanError",
    "The scanner failed on this file.",
    "The file could not be analysed and is unverified. Re-run with --verbose and report a bug "
    "if the file is legitimate.",
)
MALFORMED = define_rule(
    "MA0005",
    "MalformedFile",
    "The file is truncated or corrupt, so its content could not be fully analysed.",
    "A loader may still execute the part before the damage. Replace the file with a known-good "
    "copy.",
)
BLACKLISTED = define_rule(
    "MA0006",
    "BlacklistedName",
    "The file or the model it carries matches a --blacklist pattern.",
    "Remove the model or the pattern; the pattern was set by your own policy.",
    severity=IssueSeverity.CRITICAL,
)
MISSING_DEPENDENCY = define_rule(
    "MA0007",
    "MissingDependency",
    "A library needed to scan this format is not installed.",
    "Install the library named in the message and scan again.",
)
