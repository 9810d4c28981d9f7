"""Say once that a pickle carries Python code, instead of once per opcode that rebuilds it.

cloudpickle and dill ship functions and classes by value: a few dozen GLOBAL/REDUCE opcodes
rebuild code objects, cells, functions and class skeletons. Each is dangerous, but reported
one by one they bury the single fact that matters: loading this file runs code that is in it.
Findings of other families (a module import, a shell call) are kept as they are.
"""

from __future__ import annotations

from typing import Final

from ...findings import Issue, IssueSeverity
from ...lazy_re import LazyPattern
from ...rules import pickle as R

CODE_FAMILY: Final = "code-object"
_REBUILT_CLASS: Final = LazyPattern(
    r"_make_skeleton_class\([^,()]{0,200}, '([A-Za-z_][\w.]{0,99})'"
)
_MAX_NAMES: Final = 16


def collapse_carried_code(issues: list[Issue], start: int) -> None:
    """Replace the code-rebuilding findings in `issues[start:]` by one finding: CRITICAL,
    or INFO when they only rebuild functions from verified names-free bytecode."""
    carried = [
        i
        for i in issues[start:]
        if i.details.get("family") == CODE_FAMILY
        and i.rule in (R.DANGEROUS_GLOBAL, R.DANGEROUS_CALL)
    ]
    if not carried:
        return
    helpers: list[str] = []
    classes: list[str] = []
    positions: list[int] = []
    for issue in carried:
        module, function = issue.details.get("module"), issue.details.get("function")
        helper = f"{module}.{function}" if module and function else ""
        if helper and helper not in helpers:
            helpers.append(helper)
        pos = issue.details.get("position")
        if isinstance(pos, int):
            positions.append(pos)
        for name in _REBUILT_CLASS.findall(issue.message):
            if name not in classes and len(classes) < _MAX_NAMES:
                classes.append(name)
    tools = sorted({h.split(".", 1)[0] for h in helpers}) or ["the pickle"]
    what = f"class {', '.join(classes)}" if classes else "functions"
    first = carried[0]
    pure = _pure_names(carried)
    if pure:
        message = (
            f"This file carries Python functions whose code names no global, attribute or "
            f"module ({', '.join(pure)}): they compute only on their arguments and the "
            "objects this pickle gives them"
        )
        why = (
            "The bytecode was verified: no names, only loads, arithmetic, comparisons and "
            "returns, every index in range (CPython 3.8-3.10 layout). What it computes on is "
            "judged as the rest of the pickle is."
        )
    else:
        message = (
            f"This file carries Python code that runs when loaded ({' and '.join(tools)} "
            f"rebuilds {what} from bytecode stored in the file)"
        )
        why = (
            "Loading runs this code with the loading user's rights: it can do anything. The "
            "scanner does not decompile it, so nothing about what it does was verified."
        )
    summary = Issue(
        message,
        severity=IssueSeverity.INFO if pure else IssueSeverity.CRITICAL,
        location=first.location,
        details={
            "family": CODE_FAMILY,
            "module": first.details.get("module"),
            "function": first.details.get("function"),
            "name": first.details.get("name"),
            "opcode": first.details.get("opcode"),
            "position": first.details.get("position"),
            "helpers": helpers,
            "classes": classes,
            "positions": sorted(positions),
            "opcodes": len(carried),
            **({"verified": True} if pure else {}),
        },
        why=why,
        rule=R.CARRIED_CODE,
    )
    dropped = {id(i) for i in carried}
    rest = [i for i in issues[start:] if id(i) not in dropped]
    issues[start:] = [summary, *rest]


def _pure_names(carried: list[Issue]) -> list[str]:
    """The functions' names when every finding is a cloudpickle helper rebuilding a function
    from verified bytecode (`pure_code.py`) and at least one code object was verified; else
    nothing, and the file carries code that may do anything."""
    if not all(i.details.get("pure") for i in carried):
        return []
    functions = [i.details.get("pure_function") for i in carried]
    codes = [i.details.get("pure_code") for i in carried]
    if not any(codes):
        return []
    names: list[str] = []
    for name in functions if any(functions) else codes:
        if isinstance(name, str) and name and name not in names and len(names) < _MAX_NAMES:
            names.append(name)
    return names
