"""`modelaudit rules [ID]`: the rule catalogue as users read it, without importing a scanner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from .rules import RULES, Rule
from .suppress import resolve_rule

__all__ = ["render_rules", "rule_dict"]


def rule_dict(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "severity": rule.severity.value,
        "cwe": rule.cwe,
        "summary": rule.short,
        "what_to_do": rule.help,
        "tags": list(rule.tags),
    }


def _detail(rule: Rule) -> str:
    head = f"{rule.id} {rule.name} (default severity {rule.severity.value}"
    head += f", CWE-{rule.cwe})" if rule.cwe else ")"
    lines = [head, "", rule.short, "", f"What to do: {rule.help}"]
    if rule.cwe:
        lines.append(f"Reference: https://cwe.mitre.org/data/definitions/{rule.cwe}.html")
    if rule.tags:
        lines.append(f"Tags: {', '.join(rule.tags)}")
    return "\n".join(lines)


def _table(rules: Sequence[Rule]) -> str:
    width = max((len(r.name) for r in rules), default=0)
    return "\n".join(f"{r.id}  {r.name:<{width}}  {r.severity.value:<8}  {r.short}" for r in rules)


def render_rules(names: Sequence[str] = (), fmt: str = "text") -> str:
    """Every rule as a table, or the named ones (ids or names) in full. Raises
    `suppress.ConfigError` for a name that is not a rule."""
    chosen = (
        [RULES[resolve_rule(n)] for n in names]
        if names
        else sorted(RULES.values(), key=lambda r: r.id)
    )
    if fmt == "json":
        return orjson.dumps([rule_dict(r) for r in chosen], option=orjson.OPT_INDENT_2).decode()
    if names:
        return "\n\n".join(_detail(r) for r in chosen)
    return _table(chosen)
