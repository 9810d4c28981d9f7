"""YAML configs: Python tags, config-driven imports and alias bombs, without constructing objects.

`yaml.unsafe_load`/`yaml.load(Loader=Loader)` turn `!!python/object/apply:os.system` into a
call; Hydra/OmegaConf `_target_` and HyperPyYAML `!new:`/`!apply:` tags make the loader import
and call a dotted name. The file is only *composed* into a node graph (no constructor runs),
each node is visited once, and the alias expansion a naive consumer would do is computed
rather than performed.
"""

from __future__ import annotations

from typing import Any, Final

from .. import rules
from ..engine.sniff import YAML
from .base import BaseScanner, IssueSeverity, ScanResult, define_rule
from .json_scanner import report_nesting, report_target

PYTHON_TAG = define_rule(
    "MA4400",
    "YamlPythonTag",
    "The YAML uses a Python tag, which yaml.load with an unsafe loader turns into imports or "
    "calls.",
    "Load YAML only with yaml.safe_load, and remove the tag. Treat the file as an exploit.",
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
CUSTOM_TAG = define_rule(
    "MA4401",
    "YamlCustomTag",
    "The YAML uses an application-specific tag.",
    "Custom tags are handled by the application's own constructors; check what it does with them.",
    severity=IssueSeverity.INFO,
)
ALIAS_BOMB = define_rule(
    "MA4402",
    "YamlAliasBomb",
    "YAML anchors and aliases expand into an enormous document (billion laughs).",
    "Consumers that expand aliases (serialising, copying, merging configs) exhaust memory. "
    "Replace the file.",
    cwe=776,
)

MAX_YAML_BYTES: Final = 16 * 1024 * 1024
_MAX_EXPANDED: Final = 1_000_000
_PY_TAG: Final = "tag:yaml.org,2002:python/"
_STD_TAG: Final = "tag:yaml.org,2002:"
#: HyperPyYAML (SpeechBrain) tags that import and call or return a dotted name.
_CALL_TAGS: Final = ("!new:", "!name:", "!apply:", "!module:")


class YamlScanner(BaseScanner):
    name = "yaml"
    description = "YAML configs: Python tags, _target_ and call tags, alias bombs (never loaded)"
    supported_extensions = [".yaml", ".yml"]
    formats = (YAML,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        size = self.file_size(path)
        if size > MAX_YAML_BYTES:
            result.mark_inconclusive(f"YAML file of {size} bytes is too large to parse")
            result.finish()
            return result
        try:
            import yaml
        except ImportError:
            message = (
                "PyYAML not installed, cannot scan YAML files; install it with: pip install pyyaml"
            )
            result.add_issue(
                message,
                severity=IssueSeverity.WARNING,
                location=self.location(path),
                details={"missing_module": "yaml", "install": "pip install pyyaml"},
                why="Without the library the file's content was not examined.",
                rule=rules.MISSING_DEPENDENCY,
            )
            result.mark_inconclusive(message)
            result.finish()
            return result
        docs: list[Any] = []
        try:
            with open(path, "rb") as f:
                docs = [d for d in yaml.compose_all(f, Loader=yaml.SafeLoader) if d is not None]
        except RecursionError:
            report_nesting(self, path, result)
        except yaml.YAMLError as exc:
            result.mark_inconclusive(f"malformed: not valid YAML ({str(exc)[:200]})")
        result.bytes_scanned = size
        for doc in docs:
            self._check(doc, path, result)
        result.finish()
        return result

    def _check(self, root: Any, path: str, result: ScanResult) -> None:
        import yaml

        expanded: dict[int, int] = {}
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            key = id(node)
            if done:
                children = _children(node)
                expanded[key] = min(1 + sum(expanded[id(c)] for c in children), 1 << 62)
                continue
            if key in expanded:
                continue
            expanded[key] = 0
            self._node(node, path, result, yaml)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node) if id(c) not in expanded)
        total = expanded.get(id(root), 0)
        if total > _MAX_EXPANDED:
            result.add_issue(
                f"YAML aliases expand {len(expanded)} nodes into about {total} values",
                severity=IssueSeverity.WARNING,
                location=self.location(path),
                details={"distinct_nodes": len(expanded), "expanded_nodes": total},
                why="A consumer that expands the aliases runs out of memory: a denial of "
                "service on whatever reads this config.",
                rule=ALIAS_BOMB,
            )

    def _node(self, node: Any, path: str, result: ScanResult, yaml: Any) -> None:
        tag = str(node.tag or "")
        pos = node.start_mark.index if node.start_mark else None
        if tag.startswith(_PY_TAG) or tag.startswith("!python/") or tag.startswith("!!python/"):
            result.add_issue(
                f"YAML Python tag '{tag.replace(_STD_TAG, '!!')}'",
                severity=IssueSeverity.CRITICAL,
                location=self.location(path, pos=pos),
                details={"tag": tag},
                why="An unsafe YAML loader imports the named object and calls it with "
                "arguments from the file: arbitrary code execution.",
                rule=PYTHON_TAG,
            )
        elif tag.startswith(_CALL_TAGS):
            how, _, target = tag.partition(":")
            report_target(self, target, path, f"pos {pos}", result, how=f"{how}: tag")
        elif tag and not tag.startswith(_STD_TAG) and tag not in ("!", "?"):
            result.add_issue(
                f"YAML custom tag '{tag}'",
                severity=IssueSeverity.INFO,
                location=self.location(path, pos=pos),
                details={"tag": tag},
                rule=CUSTOM_TAG,
            )
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if (
                    isinstance(k, yaml.ScalarNode)
                    and k.value == "_target_"
                    and isinstance(v, yaml.ScalarNode)
                ):
                    report_target(self, str(v.value), path, f"pos {pos}", result)


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, tuple):
                out.extend(item)
            else:
                out.append(item)
        return out
    return []
