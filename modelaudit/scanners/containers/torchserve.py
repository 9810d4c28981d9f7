"""TorchServe model archives (`.mar`): the handler `MAR-INF/MANIFEST.json` names.

torch-model-archiver writes a zip (or a folder, `--archive-format no-archive`) holding the
serialized model, an optional model file, the handler and `MAR-INF/MANIFEST.json`, whose
`model.handler` says what serves the model: a built-in handler's name (`image_classifier`), or
`module[.py][:function]`. TorchServe extracts the archive, puts its folder on `sys.path`,
imports `module` from there (a built-in handler only when no such module is found, so a
`image_classifier.py` in the archive wins over the built-in one) and calls its entry point's
`initialize` as the model loads. A handler shipped in the archive is Python that runs at load,
reported with what it does (read with `ast`, never imported): CRITICAL when that is harm (runs
commands, writes files, opens connections...) or when it shadows a built-in handler's name, a
WARNING when it only does a handler's work (most archives ship one: unvetted code, not an attack). The members themselves (the
serialized model, the model file, the handler) are scanned by the archive scanner as usual.

`model.requirementsFile` (torch-model-archiver's `--requirements-file`) is the file TorchServe
hands to `pip install -U -t <model dir> -r <model dir>/<file>` as the model loads when the
server runs with `install_py_dep_per_model=true`. It is judged line by line with the checker
MLflow environments use (`formats.requirements`): a requirement fetched from a URL, a VCS
checkout, a local path or an index the archive chose is a WARNING, as for an MLflow model's
environment; packages named for the default index stay quiet. Only the named file is
installed, so a `requirements.txt` the manifest does not name is left to the member scan.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from typing import Any, Final

from ...findings import IssueSeverity, ScanResult
from ...formats.requirements import MAX_SHOWN, SOURCE_WHERE, external_sources
from ...rules.containers import TORCHSERVE_HANDLER, TORCHSERVE_REQUIREMENTS
from .members import path_escape

MANIFEST: Final = "MAR-INF/MANIFEST.json"
MAX_MANIFEST_BYTES: Final = 1024 * 1024
MAX_HANDLER_BYTES: Final = 8 * 1024 * 1024
MAX_REQUIREMENTS_BYTES: Final = 4 * 1024 * 1024
#: Handlers TorchServe ships in `ts.torch_handler`.
BUILTIN_HANDLERS: Final = frozenset(
    {
        "base_handler",
        "image_classifier",
        "image_segmenter",
        "object_detector",
        "text_classifier",
        "text_handler",
        "vision_handler",
        "densenet_handler",
        "dali_image_classifier",
    }
)

#: Reads a member of the archive by name (at most `cap` bytes; more means too large), or None.
Lookup = Callable[[str, int], bytes | None]


def holds_manifest(names: list[str]) -> bool:
    return MANIFEST in names


def folder_lookup(root: str) -> tuple[Lookup, Callable[[str], bool]]:
    """Reads and existence checks for an archive extracted to `root` (torch-model-archiver's
    `no-archive` format): plain relative names only."""
    import os

    from ...budget import read_capped

    def where(name: str) -> str | None:
        parts = name.split("/")
        if any(p in ("", ".", "..") or "\\" in p for p in parts):
            return None
        return os.path.join(root, *parts)

    def has(name: str) -> bool:
        file = where(name)
        return file is not None and os.path.isfile(file)

    def read(name: str, cap: int) -> bytes | None:
        file = where(name)
        try:
            return read_capped(file, cap) if file else None
        except OSError:
            return None

    return read, has


def report_manifest(
    lookup: Lookup, has: Callable[[str], bool], where: str, result: ScanResult
) -> dict[str, Any] | None:
    """Judge the manifest's handler; returns the manifest's `model` section (for metadata)."""
    raw = lookup(MANIFEST, MAX_MANIFEST_BYTES)
    if raw is None or len(raw) > MAX_MANIFEST_BYTES:
        return None
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    model = doc.get("model") if isinstance(doc, dict) else None
    if not isinstance(model, dict):
        return None
    handler = model.get("handler")
    if isinstance(handler, str) and handler:
        _judge_handler(lookup, has, handler, where, result)
    requirements = model.get("requirementsFile")
    if isinstance(requirements, str) and requirements:
        _judge_requirements(lookup, requirements, where, result)
    result.metadata["torchserve"] = {
        k: model[k]
        for k in (
            "modelName",
            "handler",
            "serializedFile",
            "modelFile",
            "modelVersion",
            "requirementsFile",
        )
        if isinstance(model.get(k), str)
    }
    return model


def requirements_member(name: str) -> str | None:
    """The archive member TorchServe's `Paths.get(modelDir, name)` opens, or None when that
    is outside the archive. Java joins the two with a `/`, so a leading `/` stays inside the
    model folder; a `..` does not."""
    inside = posixpath.normpath(name.lstrip("/"))
    if path_escape(inside) or inside in ("", "."):
        return None
    return inside


def _judge_requirements(lookup: Lookup, name: str, where: str, result: ScanResult) -> None:
    """What `pip install -r` of the manifest's requirements file would fetch."""
    details: dict[str, Any] = {"requirements_file": name[:MAX_SHOWN]}
    why = (
        "With install_py_dep_per_model=true TorchServe pip-installs this file as the model "
        "loads; pip runs a package's build and install code, and one taken from a URL, a "
        "checkout, a path or another index is whatever its author put there."
    )
    member = requirements_member(name)
    if member is None:
        result.add_issue(
            f"TorchServe would pip-install the requirements file {name[:MAX_SHOWN]!r}, "
            "outside the archive",
            severity=IssueSeverity.WARNING,
            location=where,
            details=details,
            why=why,
            rule=TORCHSERVE_REQUIREMENTS,
        )
        return
    raw = lookup(member, MAX_REQUIREMENTS_BYTES)
    if raw is None:
        return  # not in the archive: pip fails and TorchServe refuses to load the model
    if len(raw) > MAX_REQUIREMENTS_BYTES:
        result.mark_inconclusive(
            f"TorchServe requirements file {member} larger than {MAX_REQUIREMENTS_BYTES} bytes"
        )
        raw = raw[:MAX_REQUIREMENTS_BYTES]
    for source in external_sources(raw.decode("utf-8", "replace")):
        result.add_issue(
            f"TorchServe would pip-install from {SOURCE_WHERE[source.kind]} "
            f"({member}, line {source.line}): '{source.text}'",
            severity=IssueSeverity.WARNING,
            location=where,
            details={
                **details,
                "requirement": source.text,
                "source": source.kind,
                "target": source.target[:MAX_SHOWN],
                "line": source.line,
            },
            why=why,
            rule=TORCHSERVE_REQUIREMENTS,
        )


def _judge_handler(
    lookup: Lookup, has: Callable[[str], bool], handler: str, where: str, result: ScanResult
) -> None:
    """What TorchServe's model loader does with `handler` (`_load_handler_file`, then the
    built-in handler of that name when the import fails)."""
    module, _, function = handler.partition(":")
    module = module.removesuffix(".py").split("/")[-1]
    member = f"{module}.py"
    if not module.isidentifier():
        module = ""  # not importable by that name: nothing shipped can be it
    shipped = member if module and has(member) else None
    if shipped is None and module and has(f"{module}/__init__.py"):
        shipped = f"{module}/__init__.py"
    if shipped is None:
        if module in BUILTIN_HANDLERS:
            return
        result.add_issue(
            f"TorchServe handler '{handler}' is neither in the archive nor a built-in handler",
            severity=IssueSeverity.WARNING,
            location=where,
            details={"handler": handler, "module": module},
            why="TorchServe imports the module of that name from wherever Python finds it and "
            "runs its entry point as the model loads: code this archive does not show.",
            rule=TORCHSERVE_HANDLER,
        )
        return
    entry = f"{function}()" if function else "its handler class's initialize()"
    shadows = " (shadowing the built-in handler of that name)" if module in BUILTIN_HANDLERS else ""
    from ..text.python_scanner import behaviour_summary

    does = behaviour_summary(lookup(shipped, MAX_HANDLER_BYTES))
    result.add_issue(
        f"TorchServe imports the custom handler {shipped} shipped in the archive{shadows} and "
        f"calls {entry} when the model loads" + (f"; it {does}" if does else ""),
        severity=IssueSeverity.WARNING if does == "" and not shadows else IssueSeverity.CRITICAL,
        location=where,
        details={"handler": handler, "member": shipped, "function": function or None},
        why="Serving the archive imports this Python file and runs its entry point with the "
        "server's rights: the archive's author runs what they like on the model server.",
        rule=TORCHSERVE_HANDLER,
    )
