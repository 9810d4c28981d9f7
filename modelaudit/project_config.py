"""The project's settings file read and checked (see `project.py` for where it is found and
its keys). Imported only when there is such a file: it brings the ignore entries'
parser (`suppress.py`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .config import ConfigError
from .pathglob import GlobSet, posix
from .project import read_table
from .suppress import IgnoreEntry, parse_ignores

__all__ = ["ProjectConfig", "load_config"]

_KEYS = frozenset({"exclude", "default-excludes", "fail-on", "baseline", "ignore"})


@dataclass
class ProjectConfig:
    path: str | None = None
    exclude: list[str] = field(default_factory=list)
    default_excludes: bool | None = None
    fail_on: str | None = None
    baseline: str | None = None
    ignores: list[IgnoreEntry] = field(default_factory=list)


def load_config(path: str | None) -> ProjectConfig:
    """Read and check one settings file (an empty config for None)."""
    if path is None:
        return ProjectConfig()
    table = read_table(path)
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
