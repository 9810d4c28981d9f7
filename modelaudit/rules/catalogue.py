"""The rule type and the one registry every rule id is defined in (`define_rule`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..findings import IssueSeverity


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
    return RULES["MA0000"]
