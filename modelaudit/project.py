"""Where the project's own settings are: `.modelaudit.toml`, or `[tool.modelaudit]` in
`pyproject.toml`; `project_config.py` reads and checks them.

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
from typing import Any

from .config import ConfigError
from .lazy_re import LazyPattern

__all__ = ["LOCAL_NAME", "PYPROJECT", "find_config", "read_table"]

LOCAL_NAME = ".modelaudit.toml"
PYPROJECT = "pyproject.toml"


#: What a pyproject.toml holding a [tool.modelaudit] table must contain: a header naming it, a
#: [tool] table (which may hold a `modelaudit` key), or a top-level `tool.modelaudit` or
#: `tool = {...}` key. Compiling costs 0.8 ms: only a pyproject.toml naming modelaudit needs it.
_MAY_HOLD_TABLE = LazyPattern(
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
    return b"modelaudit" in data and _MAY_HOLD_TABLE.search(data) is not None


def read_table(path: str) -> dict[str, Any] | None:
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
        if os.path.isfile(pyproject) and read_table(pyproject) is not None:
            return pyproject
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
