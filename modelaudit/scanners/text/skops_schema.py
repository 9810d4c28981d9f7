"""skops schemas (`schema.json` in a `.skops` archive): the types `skops.io.load` would build.

skops refuses types its caller did not trust, but callers trust what the file asks for:
`skops.io.load(f, trusted=skops.io.get_untrusted_types(file=f))` is the documented pattern
and `mlflow.sklearn` trusts the types its `MLmodel` lists. A schema naming `posix.system`
or `subprocess.check_output` (a FunctionNode inside a PartialNode, a ReduceNode calling it)
is as dangerous as a pickle naming it, so each type is judged by the pickle policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from ...rules.text import SKOPS_DANGEROUS_TYPE, SKOPS_UNKNOWN_TYPE
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..pickle import policy

#: Values walked per schema: a schema holds one dict per node, so this is far past any model.
_MAX_VALUES: Final = 2_000_000
_MAX_REPORTED: Final = 50
#: Loaders whose node never uses its `__module__`/`__class__`: raw data (JsonNode, BytesNode,
#: BytearrayNode, SliceNode build their value without importing anything). DictNode, ListNode,
#: SetNode and TupleNode are NOT here: they call `gettype(__module__, __class__)` with their
#: content (`ListNode` naming `subprocess.check_output` runs `check_output([...])`), and
#: `get_untrusted_types` lists that name for the user to trust.
_DATA_LOADERS: Final = frozenset({"JsonNode", "BytesNode", "BytearrayNode", "SliceNode"})
#: The loader that builds its type without calling it: `cls.__new__(cls)`, then `__setstate__`.
_BUILT_WITHOUT_CALL: Final = "ObjectNode"
#: The pickle policy's call-shape checks (SHAPE verdicts) as they stand in a skops schema,
#: where no call shape is checked: a LossNode calls its type with any arguments the file holds,
#: a FunctionTransformer calls its `func` with the caller's data and the file's `kw_args`.
#: Every one of them resolves names or loads nested bytes except `codecs.encode`.
_SHAPE_FAMILIES: Final[dict[str, str]] = {
    "getattr": "resolver",
    "resolve2": "resolver",
    "dill_type": "resolver",
    "nested_bytes": "nested-unpickler",
}


def is_skops_schema(doc: Any) -> bool:
    """A skops `schema.json`: its root is a node (`__loader__`, `__module__`, `__class__`)."""
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("__loader__"), str)
        and isinstance(doc.get("__module__"), str)
        and isinstance(doc.get("__class__"), str)
    )


class SchemaWalk:
    """The dicts of a skops schema, depth-first, within `_MAX_VALUES` values: a schema of
    millions of values ends the walk there, with `complete` False (no recursion: nesting
    depth is the file's to choose)."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.complete = True

    def __iter__(self) -> Iterator[dict[str, Any]]:
        stack: list[Any] = [self.doc]
        seen = 0
        while stack:
            value = stack.pop()
            seen += 1
            if seen > _MAX_VALUES:
                self.complete = False
                return
            if isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
                yield value


def schema_types(doc: Any) -> tuple[dict[tuple[str, str], str], bool]:
    """The names a load would resolve ((module, qualname) -> the node loader naming it),
    and whether the whole schema was walked within the budget."""
    found: dict[tuple[str, str], str] = {}
    walk = SchemaWalk(doc)
    for value in walk:
        loader, module, cls = (
            value.get("__loader__"),
            value.get("__module__"),
            value.get("__class__"),
        )
        if not (isinstance(loader, str) and isinstance(module, str) and isinstance(cls, str)):
            continue
        if loader in _DATA_LOADERS:
            continue
        qualname = cls
        content = value.get("content")
        if loader == "MethodNode":
            func = content.get("func") if isinstance(content, dict) else None
            qualname = f"{cls}.{func}" if isinstance(func, str) else cls
        elif loader == "FunctionNode" and isinstance(content, dict):
            # protocol 0 (which any file may claim) imports `content`'s module_path.function
            # and ignores `__module__`/`__class__`; get_untrusted_types lists the content name
            path, func = content.get("module_path"), content.get("function")
            if isinstance(path, str) and isinstance(func, str):
                _note(found, path, func, "FunctionNode protocol 0")
        _note(found, module, qualname, loader)
    return found, walk.complete


def _note(found: dict[tuple[str, str], str], module: str, qualname: str, loader: str) -> None:
    """Remember the loader naming `module.qualname`: one that calls it over an ObjectNode."""
    if found.get((module, qualname), _BUILT_WITHOUT_CALL) == _BUILT_WITHOUT_CALL:
        found[(module, qualname)] = loader


def _verdict(module: str, qualname: str, loader: str) -> policy.Verdict:
    if not policy.valid_name(module, qualname):
        # skops imports the module and getattr()s the name: garbage cannot resolve, but a
        # name that is not an identifier path is not one real files hold either
        return policy.Verdict(policy.UNKNOWN)
    verdict = policy.classify(module, qualname)
    if verdict.kind != policy.SHAPE or loader == _BUILT_WITHOUT_CALL:
        # an ObjectNode is built as unpickling builds a class (`__new__`, `__setstate__`),
        # which the policy's SHAPE verdict already finds safe (an XGBoost Booster's state)
        return verdict
    # SHAPE: safe in a pickle only once the emulator has judged the call; a skops load calls
    # or stores it with whatever the file holds, which nothing checks
    if verdict.family:
        return policy.danger(verdict.family, verdict.why)
    family = _SHAPE_FAMILIES.get(verdict.special)
    if family:
        return policy.danger(family, f"{module}.{qualname} resolves or loads what it is given.")
    return policy.Verdict(policy.UNKNOWN)


def dangerous_dotted(name: str) -> policy.Verdict | None:
    """The pickle policy's DANGER verdict for a dotted type name, trying every module split
    (a trusted-types list writes `posix.system`, not which part is the module). A trusted name
    may be used by any node, so call-shape names (`builtins.getattr`) count as called."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module, qualname = ".".join(parts[:i]), ".".join(parts[i:])
        if policy.valid_name(module, qualname):
            verdict = _verdict(module, qualname, "trusted")
            if verdict.kind == policy.DANGER:
                return verdict
    return None


def report_skops(scanner: BaseScanner, doc: Any, path: str, result: ScanResult) -> None:
    """Judge every type, function and method a skops schema names."""
    found, complete = schema_types(doc)
    judged = [
        (verdict.kind != policy.DANGER, module, qualname, loader, verdict)
        for (module, qualname), loader in found.items()
        if (verdict := _verdict(module, qualname, loader)).kind in (policy.DANGER, policy.UNKNOWN)
    ]
    # dangerous names first: unknown ones sorting before them must not use up the cap
    judged.sort(key=lambda item: item[:3])
    for _, module, qualname, loader, verdict in judged[:_MAX_REPORTED]:
        name = f"{module}.{qualname}"
        dangerous = verdict.kind == policy.DANGER
        result.add_issue(
            f"skops schema names {'dangerous' if dangerous else 'unknown'} type {name} ({loader})",
            severity=IssueSeverity.CRITICAL if dangerous else IssueSeverity.WARNING,
            location=scanner.location(path),
            details={"type": name, "loader": loader, "family": verdict.family},
            why=(
                verdict.why
                if dangerous
                else "skops.io.load builds this type once it is "
                "trusted, and callers trust what get_untrusted_types lists; it is not a type "
                "real models are known to use."
            ),
            rule=SKOPS_DANGEROUS_TYPE if dangerous else SKOPS_UNKNOWN_TYPE,
        )
    result.metadata["skops_types"] = len(found)
    if not complete:
        result.mark_inconclusive("skops schema too large to walk within budget")
