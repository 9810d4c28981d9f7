"""Python files met beside models: what importing them, loading their classes and calling
their functions would do, read with `ast` (never imported, compiled or run).

`trust_remote_code=True` imports the `modeling_*.py`, `configuration_*.py` and
`tokenization_*.py` files a repository ships; see `python_code` for how behaviours are found
and when each runs.
"""

from __future__ import annotations

import ast
from typing import Final

from ...budget import read_capped
from ...formats import Format
from ...rules.text import PYTHON_BEHAVIOUR, PYTHON_IMPORT_EXEC, PYTHON_UNPARSEABLE
from ..base import BaseScanner, IssueSeverity, ScanResult
from .python_code import DESCRIPTIONS, EXECUTION, Analysis, Behaviour, analyse

MAX_PYTHON_BYTES: Final = 8 * 1024 * 1024
_MAX_LISTED: Final = 20
_WHEN: Final = {
    "import": "when the file is imported",
    "load": "while a class loaders instantiate is built (__init__, from_pretrained...)",
    "call": "when its functions are called",
}


def severity_of(behaviour: Behaviour) -> IssueSeverity:
    """CRITICAL for code run at import or load time; a warning when it waits for a call.

    Unpickling goes by where the data comes from (`python_code`'s docstring): a file the model
    ships is INFO, since that file is scanned as the model file it is; data from the network
    or written into the code is CRITICAL like any execution; a file the scan cannot place is
    CRITICAL at import and a WARNING at load, where MLflow's own custom models unpickle their
    artifacts; bytes of unknown origin (`loads`) are CRITICAL at load."""
    kind, when = behaviour.kind, behaviour.when
    if kind == "deserialise" and behaviour.source == "model":
        return IssueSeverity.INFO
    if (
        kind == "deserialise"
        and when == "load"
        and behaviour.source == ""
        and not behaviour.name.endswith("loads")
    ):
        return IssueSeverity.WARNING
    if kind in EXECUTION:
        if when in ("import", "load"):
            return IssueSeverity.CRITICAL
        # a model's own methods (forward, generate) run when it is used; a script's helper
        # functions run only if someone runs the script
        return IssueSeverity.WARNING if behaviour.in_model else IssueSeverity.INFO
    if when == "import":
        if kind in ("network", "dynamic-import"):
            return IssueSeverity.CRITICAL
        return IssueSeverity.WARNING
    if when == "load" and kind in ("network", "dynamic-import"):
        return IssueSeverity.WARNING
    return IssueSeverity.INFO


def parse(source: bytes) -> tuple[ast.Module | None, str | None]:
    """The module, or why Python would not parse it either."""
    try:
        return ast.parse(source, type_comments=False), None
    except (SyntaxError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"
    except (RecursionError, MemoryError):
        return None, "nested too deeply to parse"


def behaviour_summary(source: bytes | None, cls: str | frozenset[str] = "") -> str | None:
    """What Python a loader imports does, in a few words ('runs commands or starts processes
    (os.system, line 3)'), for the findings about such files (MLflow code, TorchServe handlers,
    diffusers components): import-time code and class `cls` (or each class of a set, one
    analysis for all: a pickle may rebuild several classes of one file) when it is named,
    else the whole file. "" when it does nothing listed (or would not even import); None when it was not read
    whole or was nested too deeply to parse, which is no all-clear. Unpickling is listed only
    where `severity_of` makes it CRITICAL (inline or network data, import time)."""
    if source is None or len(source) > MAX_PYTHON_BYTES:
        return None
    try:
        tree = ast.parse(source, type_comments=False)
    except (SyntaxError, ValueError):
        return ""
    except (RecursionError, MemoryError):
        return None
    return summary_of(tree, frozenset({cls} if isinstance(cls, str) and cls else cls or ()))


def summary_of(tree: ast.Module, classes: frozenset[str]) -> str:
    """`behaviour_summary` of a parsed module."""
    analysis = analyse(tree, classes)
    kinds: dict[str, list[str]] = {}
    for b in analysis.of_classes(classes) if classes else analysis.behaviours:
        if b.kind == "deserialise" and severity_of(b) is not IssueSeverity.CRITICAL:
            continue  # unpickles a file the model ships, or one it cannot place: see severity_of
        kinds.setdefault(b.kind, []).append(f"{b.name}, line {b.line}")
    listed = list(kinds.items())[:5]
    return "; ".join(f"{DESCRIPTIONS[k]} ({', '.join(v[:3])})" for k, v in listed)


def file_behaviour_summary(path: str, cls: str | frozenset[str] = "") -> str | None:
    """`behaviour_summary` of the file at `path` (None when it cannot be read)."""
    try:
        return behaviour_summary(read_capped(path, MAX_PYTHON_BYTES), cls)
    except OSError:
        return None


class PythonScanner(BaseScanner):
    name = "python"
    description = "Python files shipped with models: import-time and load-time behaviour (ast)"
    supported_extensions = [".py"]
    formats = (Format.PYTHON,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        size = self.file_size(path)
        source = b"" if size > MAX_PYTHON_BYTES else read_capped(path, MAX_PYTHON_BYTES)
        if size > MAX_PYTHON_BYTES or len(source) > MAX_PYTHON_BYTES:
            result.mark_inconclusive(
                f"Python file of {max(size, len(source))} bytes is too large to parse"
            )
            result.finish()
            return result
        result.bytes_scanned = len(source)
        tree, error = parse(source)
        if tree is None:
            result.add_issue(
                f"Python file cannot be parsed ({error})",
                severity=IssueSeverity.INFO,
                location=self.location(path),
                details={"error": error},
                rule=PYTHON_UNPARSEABLE,
            )
            if error == "nested too deeply to parse":
                result.mark_inconclusive(f"malformed: {error}")
            result.finish()
            return result
        analysis = analyse(tree)
        report(self, path, analysis, result)
        result.metadata["python_classes"] = sorted(analysis.classes)[:200]
        if _in_code_folder(self.display_path or path):
            # what this file would do if a pickle rebuilt any of its classes: all a remote
            # sweep can know of an MLflow model's code once the object is gone
            result.metadata["loaded_summary"] = summary_of(tree, frozenset(analysis.classes))
        result.finish()
        return result


def _in_code_folder(shown: str) -> bool:
    """Under a folder named `code`, where MLflow keeps a model's `code_paths`."""
    return "code" in shown.replace("\\", "/").split("/")[:-1]


def report(
    scanner: BaseScanner,
    path: str,
    analysis: Analysis,
    result: ScanResult,
    behaviours: list[Behaviour] | None = None,
    subject: str = "Python file",
) -> None:
    """One issue per (when, behaviour), naming the calls and their lines."""
    groups: dict[tuple[str, str], list[Behaviour]] = {}
    for b in analysis.behaviours if behaviours is None else behaviours:
        groups.setdefault((b.when, b.kind), []).append(b)
    for (when, kind), items in sorted(groups.items(), key=lambda kv: -severity_of(kv[1][0]).rank):
        severity = severity_of(items[0])
        calls = [f"{b.name} (line {b.line}, {b.scope})" for b in items[:_MAX_LISTED]]
        result.add_issue(
            f"{subject} {DESCRIPTIONS[kind]} {_WHEN[when]}: {', '.join(calls[:3])}"
            + (f" and {len(items) - 3} more" if len(items) > 3 else ""),
            severity=severity,
            location=scanner.location(path),
            details={"behaviour": kind, "when": when, "calls": calls},
            why="Loading the model with trust_remote_code=True imports this file; its "
            "module-level code runs on import and the classes named in auto_map are built "
            "while the model loads."
            if severity is not IssueSeverity.INFO
            else None,
            rule=PYTHON_IMPORT_EXEC if severity is IssueSeverity.CRITICAL else PYTHON_BEHAVIOUR,
        )


__all__ = ["PythonScanner", "parse", "report", "severity_of"]
