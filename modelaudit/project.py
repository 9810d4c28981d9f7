"""The project's own settings: `.modelaudit.toml`, or `[tool.modelaudit]` in `pyproject.toml`.

Found like ruff finds its settings: the nearest of those files in the working directory or
one of its parents (`.modelaudit.toml` wins in the same folder; a `pyproject.toml` without a
`[tool.modelaudit]` table is passed over), or the file `--config` names. Paths in it are
relative to its folder. Command-line options win over it. Unknown keys are errors, so a typo
never silently disables a policy.

    [tool.modelaudit]
    exclude = ["tests/fixtures/**"]
    fail-on = "critical"
    baseline = "modelaudit-baseline.json"

    [[tool.modelaudit.ignore]]
    rules = ["MA1002"]
    paths = ["models/legacy/*.pkl"]
    reason = "loaded only inside the sandboxed evaluator"
    expires = 2027-06-30
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .pathglob import GlobSet, posix
from .suppress import ConfigError, IgnoreEntry, parse_ignores

__all__ = ["ProjectConfig", "find_config", "load_config"]

LOCAL_NAME = ".modelaudit.toml"
PYPROJECT = "pyproject.toml"
_KEYS = frozenset({"exclude", "default-excludes", "fail-on", "baseline", "ignore"})


@dataclass
class ProjectConfig:
    path: str | None = None
    exclude: list[str] = field(default_factory=list)
    default_excludes: bool | None = None
    fail_on: str | None = None
    baseline: str | None = None
    ignores: list[IgnoreEntry] = field(default_factory=list)


@cache
def _may_hold_table_re() -> re.Pattern[bytes]:
    """What a pyproject.toml holding a [tool.modelaudit] table must contain: a header naming
    it, a [tool] table (which may hold a `modelaudit` key), or a top-level `tool.modelaudit`
    or `tool = {...}` key. Compiled on first use (0.8 ms): only a pyproject.toml that names
    modelaudit needs it."""
    return re.compile(
        rb"""^[ \t]*(?:\[\[?[ \t]*["']?tool["']?[ \t]*(?:\]|\.[ \t]*["']?modelaudit)"""
        rb"""|["']?tool["']?[ \t]*(?:=|\.[ \t]*["']?modelaudit))""",
        re.MULTILINE,
    )


def _may_hold_table(data: bytes) -> bool:
    """False when a pyproject.toml cannot hold a [tool.modelaudit] table, as most do not:
    it is then passed over without parsing it (tomllib's import and parse cost a one-file
    run more than its scan). A file with escapes (which may spell a key) is parsed."""
    if b"\\u" in data or b"\\U" in data:
        return True
    return b"modelaudit" in data and _may_hold_table_re().search(data) is not None


def _table(path: str) -> dict[str, Any] | None:
    """The settings table of one file; None for a pyproject.toml without one."""
    pyproject = os.path.basename(path) == PYPROJECT
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    if pyproject and not _may_hold_table(data):
        return None
    import tomllib

    try:
        doc = tomllib.loads(data.decode())
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if not pyproject:
        return doc
    tool = doc.get("tool")
    table = tool.get("modelaudit") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.modelaudit] must be a table")
    return table


def find_config(start: str | None = None) -> str | None:
    """The nearest settings file from `start` (the working directory) up to the root."""
    folder = os.path.abspath(start or os.getcwd())
    while True:
        local = os.path.join(folder, LOCAL_NAME)
        if os.path.isfile(local):
            return local
        pyproject = os.path.join(folder, PYPROJECT)
        if os.path.isfile(pyproject) and _table(pyproject) is not None:
            return pyproject
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def load_config(path: str | None) -> ProjectConfig:
    """Read and check one settings file (an empty config for None)."""
    if path is None:
        return ProjectConfig()
    table = _table(path)
    if table is None:
        raise ConfigError(f"{path}: no [tool.modelaudit] table")
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {sorted(unknown)[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    root = os.path.dirname(os.path.abspath(path))
    config = ProjectConfig(path=path)
    exclude = table.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(p, str) for p in exclude):
        raise ConfigError(f"{path}: 'exclude' must be a list of path patterns")
    try:
        GlobSet(exclude)
    except ValueError as exc:
        raise ConfigError(f"{path}: bad 'exclude' pattern: {exc}") from None
    config.exclude = [_anchor(p, root) for p in exclude]
    default_excludes = table.get("default-excludes")
    if default_excludes is not None and not isinstance(default_excludes, bool):
        raise ConfigError(f"{path}: 'default-excludes' must be true or false")
    config.default_excludes = default_excludes
    fail_on = table.get("fail-on")
    if fail_on is not None and fail_on not in ("warning", "critical"):
        raise ConfigError(f'{path}: \'fail-on\' must be "warning" or "critical"')
    config.fail_on = fail_on
    baseline = table.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise ConfigError(f"{path}: 'baseline' must be a file name")
    config.baseline = None if baseline is None else os.path.join(root, baseline)
    config.ignores = parse_ignores(table.get("ignore"), root, path)
    return config


def _anchor(pattern: str, root: str) -> str:
    """A config pattern with a slash is relative to the config file's folder, which a walk
    knows only as an absolute path; a bare name matches anywhere as it is."""
    text = pattern.strip()
    if "/" not in text.rstrip("/") or text.startswith("/") or text.startswith("**"):
        return text
    if text.startswith("./"):
        text = text[2:]
    return f"{posix(root).rstrip('/')}/{text}"
