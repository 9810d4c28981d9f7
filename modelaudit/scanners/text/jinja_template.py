"""Static analysis of Jinja chat templates (GGUF `tokenizer.chat_template`, HF tokenizer configs).

A chat template is rendered by llama.cpp front-ends, llama-cpp-python, transformers and others,
not all of them sandboxed, so a template that walks `__class__`/`__globals__` to `os.popen` runs
commands on whoever formats a prompt (CVE-2024-34359). The template is only parsed into an AST
with jinja2, never compiled or rendered; string pieces that are glued together (`~`, `+`,
`format`, `join`, slicing, `{% set %}`) are folded so that built-up names are seen too.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ...budget import BudgetExceeded, WorkBudget, report_budget
from ...findings import IssueSeverity, ScanResult
from ...rules import MISSING_DEPENDENCY
from ...rules.text import (
    TEMPLATE_INJECTION,
    TEMPLATE_PROMPT_INJECTION,
    TEMPLATE_SUSPICIOUS,
    TEMPLATE_UNPARSEABLE,
)
from .template_text import injected

if TYPE_CHECKING:
    from jinja2 import nodes as jnodes

    from ..base import BaseScanner


_NO_JINJA: Final = (
    "jinja2 not installed, cannot analyse chat templates; install it with: pip install jinja2"
)
_MAX_SOURCE: Final = 2 * 1024 * 1024
_MAX_CANDIDATES: Final = 32
_MAX_FOLD_DEPTH: Final = 12
#: Rounds of substituting assigned names into each other: a value built by up to this many
#: chained `{% set %}`s (`{% set x = x ~ '...' %}` in a loop) is folded.
_MAX_FOLD_ROUNDS: Final = 12
#: Characters of folded candidates one file's templates may produce together (the largest of
#: llama.cpp's templates folds about 7 M; folding runs at roughly 10 M characters a second).
FOLD_BUDGET: Final = 24 * 1024 * 1024


def fold_budget() -> WorkBudget:
    return WorkBudget("chat template folding", FOLD_BUDGET)


#: Characters of template source one file may have parsed (jinja2's parser costs about a
#: millisecond per kilobyte; real files carry a few templates of a few kilobytes).
SOURCE_BUDGET: Final = 4 * 1024 * 1024


@dataclass
class _FileBudgets:
    fold: WorkBudget = field(default_factory=fold_budget)
    source: WorkBudget = field(
        default_factory=lambda: WorkBudget("chat template source", SOURCE_BUDGET)
    )
    reported: bool = False


class FoldBudgetExceeded(Exception):
    """Folding would produce more text than `FOLD_BUDGET`."""


_MAX_FINDINGS: Final = 25
#: Templates written by templates analysed in turn (`{{ '{{' }}` inside `{{ '{{' }}`...).
_MAX_NESTED_TEMPLATES: Final = 3

#: Attribute or item names that only sandbox escapes and code execution use.
_ESCAPE_NAMES: Final = frozenset(
    {
        "os",
        "subprocess",
        "builtins",
        "importlib",
        "func_globals",
        "func_code",
        "f_globals",
        "f_builtins",
        "f_locals",
        "f_back",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "tb_frame",
        "co_code",
    }
)
#: Methods whose call runs code or commands.
_CALL_NAMES: Final = frozenset(
    {
        "popen",
        "system",
        "eval",
        "exec",
        "check_output",
        "check_call",
        "getoutput",
        "getstatusoutput",
        "spawnl",
        "spawnv",
        "execv",
        "execl",
        "import_module",
        "load_module",
        "run_path",
        "run_module",
        "__import__",
        "load_library",
    }
)
_GLOBAL_CALLS: Final = frozenset(
    {"eval", "exec", "__import__", "getattr", "open", "compile", "globals", "input"}
)
#: Names that never occur in an ordinary template's strings, even as part of a longer one.
_BUILT_NAMES: Final = frozenset(
    {"popen", "subprocess", "builtins", "importlib", "check_output", "f_globals", "getoutput"}
)
_DUNDER: Final = re.compile(r"__[A-Za-z]\w*?__")
_ATTRIBUTE_FILTERS: Final = frozenset(
    {"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)
#: Whole-string constants naming the internals every sandbox escape walks through.
_DUNDER_CONST: Final = re.compile(
    r"^__(?:class|globals|builtins|subclasses|mro|init|import|base|bases|dict|getattribute|"
    r"func|code|loader|spec|self|module|reduce|reduce_ex|closure|call)__$"
)
_GADGETS: Final = frozenset({"cycler", "joiner", "namespace", "lipsum", "self", "range", "dict"})
_FOLD_FILTERS: Final = frozenset(
    {"lower", "upper", "reverse", "string", "trim", "title", "capitalize", "first", "last"}
)
_STR_METHODS: Final = frozenset(
    {"lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize", "swapcase"}
)


@dataclass(frozen=True)
class TemplateFinding:
    severity: IssueSeverity
    rule: str
    message: str
    lineno: int | None = None


@dataclass
class TemplateAnalysis:
    findings: list[TemplateFinding] = field(default_factory=list)
    #: Set when the template could not be parsed; the caller marks the file inconclusive.
    parse_error: str | None = None

    @property
    def max_severity(self) -> IssueSeverity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _names_in(text: str) -> list[str]:
    """Dangerous names contained in a computed string (`'__cla' ~ 'ss__'`)."""
    hits = [n for n in _BUILT_NAMES if n in text]
    hits += _DUNDER.findall(text)
    return hits


def _environment() -> Any:
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(Extension):
        """transformers' `{% generation %}` block (assistant-mask tracking)."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body).set_lineno(lineno)

    return ImmutableSandboxedEnvironment(
        extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", GenerationTag]
    )


def analyse_template(
    source: str, budget: WorkBudget | None = None, nested: int = 0
) -> TemplateAnalysis:
    """Parse `source` (never render it) and report escapes and suspicious constructs.

    `budget`: characters folding may produce, shared by every template of one file (a file
    can carry thousands of templates); a fresh `FOLD_BUDGET` when not given. `nested`: how
    many templates deep this one was written (see `_Walker.written_code`).
    """
    analysis = TemplateAnalysis()
    if len(source) > _MAX_SOURCE:
        analysis.parse_error = f"template too large to analyse ({len(source)} characters)"
        return analysis
    try:
        from jinja2 import TemplateSyntaxError
    except ImportError:
        analysis.parse_error = _NO_JINJA
        return analysis
    try:
        tree = _environment().parse(source)
    except TemplateSyntaxError as exc:
        analysis.parse_error = f"Jinja syntax error at line {exc.lineno}: {exc.message}"
        return analysis
    except RecursionError:
        analysis.parse_error = "template nested too deeply to parse"
        analysis.findings.append(
            TemplateFinding(
                IssueSeverity.WARNING,
                TEMPLATE_SUSPICIOUS,
                "Chat template nests expressions too deeply to parse",
            )
        )
        return analysis
    try:
        _Walker(analysis, budget or fold_budget(), nested).run(tree)
    except (FoldBudgetExceeded, BudgetExceeded):
        analysis.parse_error = "too many strings built from pieces to fold them all"
    except RecursionError:
        analysis.parse_error = "template nested too deeply to analyse"
    return analysis


class _Walker:
    def __init__(self, analysis: TemplateAnalysis, budget: WorkBudget, nested: int = 0) -> None:
        self.analysis = analysis
        self.nested = nested
        self.assigned: dict[str, list[Any]] = defaultdict(list)
        self.seen: set[tuple[str, str]] = set()
        #: What each assigned name can hold, as far as it is known (see `_solve_names`).
        self.values: dict[str, list[str]] = {}
        self._memo: dict[tuple[int, int], list[str] | None] = {}
        #: Characters folding may still produce; a template built to make candidates huge
        #: ends inconclusive instead of running the deadline.
        self.budget = budget

    def run(self, tree: jnodes.Template) -> None:
        from jinja2 import nodes

        assign: Any
        for assign in tree.find_all((nodes.Assign, nodes.For)):
            target = assign.target
            value = assign.node if isinstance(assign, nodes.Assign) else assign.iter
            if isinstance(target, nodes.Name):
                if isinstance(assign, nodes.For) and isinstance(value, nodes.List | nodes.Tuple):
                    self.assigned[target.name].extend(value.items)
                elif isinstance(assign, nodes.Assign):
                    self.assigned[target.name].append(value)
                    if isinstance(value, nodes.Call) and _is_namespace_call(value):
                        for kw in value.kwargs:
                            self.assigned[f"{target.name}.{kw.key}"].append(kw.value)
            elif isinstance(target, nodes.NSRef) and isinstance(assign, nodes.Assign):
                self.assigned[f"{target.name}.{target.attr}"].append(value)
        for block in tree.find_all(nodes.AssignBlock):
            if isinstance(block.target, nodes.Name):
                self.assigned[block.target.name].append(nodes.Concat(list(_outputs(block.body))))
        self._solve_names()
        for node in tree.find_all(nodes.Node):
            self._check(node)
        for kind, excerpt in injected(self._written_text(tree)):
            self._add(
                IssueSeverity.WARNING,
                f"Chat template writes {kind} the user did not write into the conversation: "
                f"{excerpt!r}",
                None,
                TEMPLATE_PROMPT_INJECTION,
            )
        if self.nested < _MAX_NESTED_TEMPLATES:
            self._written_code(tree)

    def _written_code(self, tree: jnodes.Template) -> None:
        """A template that writes a template (`{{ '{{' }} ... {{ '}}' }}`, `{% raw %}`): what
        it writes runs wherever the prompt is rendered again, so it is analysed too."""
        from jinja2 import nodes

        for output in tree.find_all(nodes.Output):
            pieces: list[str] = []
            for child in output.nodes:
                if isinstance(child, nodes.TemplateData):
                    pieces.append(child.data)
                else:
                    folded = self.fold(child, 0)
                    pieces.append(folded[0] if folded else "")
            text = "".join(pieces)
            if "{{" not in text and "{%" not in text:
                continue
            inner = analyse_template(text, self.budget, self.nested + 1)
            if inner.max_severity is IssueSeverity.CRITICAL:
                first = next(f for f in inner.findings if f.severity is IssueSeverity.CRITICAL)
                self._add(
                    IssueSeverity.CRITICAL,
                    f"Chat template writes a template that escapes the sandbox when the "
                    f"prompt is rendered again: {first.message}",
                    output,
                )
                return

    def _written_text(self, tree: jnodes.Template) -> list[tuple[str, bool]]:
        """Text the template outputs (constants and folded expressions), each with whether
        it is written only when the caller passed tools (`{% if tools %}`, loops over them)."""
        from jinja2 import nodes

        out: list[tuple[str, bool]] = []
        stack: list[tuple[Any, bool]] = [(tree, False)]
        while stack:
            node, for_tools = stack.pop()
            if isinstance(node, nodes.Output):
                for child in node.nodes:
                    if isinstance(child, nodes.TemplateData):
                        out.append((child.data, for_tools))
                    else:
                        folded = self.fold(child, 0)
                        if folded is None:  # glued to user data: its constant pieces
                            folded = [
                                c.value
                                for c in child.find_all(nodes.Const)
                                if isinstance(c.value, str)
                            ]
                        out.extend((text, for_tools) for text in folded)
                continue
            if isinstance(node, nodes.If | nodes.For | nodes.CondExpr):
                test = node.test if not isinstance(node, nodes.For) else node.iter
                for_tools = for_tools or (test is not None and _mentions_tools(test))
            stack.extend((child, for_tools) for child in node.iter_child_nodes())
        return out

    def _solve_names(self) -> None:
        """Fold every assigned name by rounds of substitution instead of recursion.

        Round r knows what each name holds after r chained assignments, so a name assigned k
        times costs k folds per round. Recursing into each assignment of each name met
        instead costs k**depth: a real template that appends to `ns.out` in forty places
        never finished.
        """
        for _ in range(_MAX_FOLD_ROUNDS):
            known: dict[str, list[str]] = {}
            for name, exprs in self.assigned.items():
                found = _union(self.fold(e, 0) for e in exprs)
                if found is not None:
                    known[name] = found
            self._memo.clear()
            if known == self.values:
                break
            self.values = known

    def _add(self, severity: IssueSeverity, message: str, node: Any, rule: str = "") -> None:
        key = (severity.value, message)
        if key in self.seen or len(self.analysis.findings) >= _MAX_FINDINGS:
            return
        self.seen.add(key)
        rule = rule or (
            TEMPLATE_INJECTION if severity is IssueSeverity.CRITICAL else TEMPLATE_SUSPICIOUS
        )
        self.analysis.findings.append(
            TemplateFinding(severity, rule, message, getattr(node, "lineno", None))
        )

    def _name_check(self, name: str, node: Any, how: str, strict: bool) -> None:
        root = _root_name(node)
        via = f" (starting from the '{root}' object)" if root in _GADGETS else ""
        if _is_dunder(name) or name in _ESCAPE_NAMES or (strict and name in _CALL_NAMES):
            self._add(
                IssueSeverity.CRITICAL,
                f"Chat template accesses '{name}' via {how}{via}: a sandbox escape to Python "
                "internals",
                node,
            )
        elif name.startswith("_") and how == "attribute":
            self._add(
                IssueSeverity.WARNING, f"Chat template accesses private attribute '{name}'", node
            )

    def _check(self, node: Any) -> None:
        from jinja2 import nodes

        if isinstance(node, nodes.Getattr):
            self._name_check(node.attr, node.node, "attribute", strict=False)
        elif isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Slice):
                return
            keys = self.fold(node.arg, 0)
            if keys is None:
                if any(isinstance(c.value, str) for c in node.arg.find_all(nodes.Const)):
                    self._add(
                        IssueSeverity.WARNING,
                        "Chat template looks up an item by a name built at render time",
                        node,
                    )
                return
            for key in keys:
                self._name_check(key, node.node, "item lookup", strict=False)
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            names = self.fold(node.args[0], 0) if node.args else None
            if names is None:
                self._add(
                    IssueSeverity.CRITICAL,
                    "Chat template uses |attr() with a name built at render time",
                    node,
                )
                return
            for name in names:
                self._name_check(name, node.node, "|attr()", strict=True)
        elif isinstance(node, nodes.Filter) and node.name in _ATTRIBUTE_FILTERS:
            self._attribute_args(node)
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            if _DUNDER_CONST.match(node.value):
                self._add(
                    IssueSeverity.CRITICAL,
                    f"Chat template spells the Python internal '{node.value}'",
                    node,
                )
        elif isinstance(node, nodes.Call):
            callee = node.node
            if isinstance(callee, nodes.Getattr) and callee.attr in _CALL_NAMES:
                self._add(
                    IssueSeverity.CRITICAL,
                    f"Chat template calls '.{callee.attr}()', which runs code or commands",
                    node,
                )
            elif isinstance(callee, nodes.Name) and callee.name in _GLOBAL_CALLS:
                self._add(
                    IssueSeverity.CRITICAL,
                    f"Chat template calls the Python builtin '{callee.name}()'",
                    node,
                )
        elif isinstance(node, nodes.Import | nodes.FromImport | nodes.Include | nodes.Extends):
            self._add(
                IssueSeverity.WARNING,
                f"Chat template loads another template ({type(node).__name__.lower()})",
                node,
            )
        if isinstance(node, nodes.Concat | nodes.Add | nodes.Mod | nodes.Filter | nodes.Call):
            for text in self.fold(node, 0) or ():
                for name in _names_in(text):
                    self._add(
                        IssueSeverity.CRITICAL,
                        f"Chat template builds the name '{name}' from pieces",
                        node,
                    )

    def _attribute_args(self, node: Any) -> None:
        """`map(attribute=...)`, `selectattr('...')` and friends getattr by a string name."""
        from jinja2 import nodes

        candidates = [kw.value for kw in node.kwargs if kw.key == "attribute"]
        if node.name in ("selectattr", "rejectattr", "groupby") and node.args:
            candidates.append(node.args[0])
        for arg in candidates:
            names = self.fold(arg, 0)
            if names is None:
                if not isinstance(arg, nodes.Const):
                    self._add(
                        IssueSeverity.WARNING,
                        f"Chat template passes a computed attribute name to |{node.name}",
                        node,
                    )
                continue
            for dotted in names:
                for part in dotted.split("."):
                    self._name_check(part, node.node, f"|{node.name}()", strict=True)

    def fold(self, node: Any, depth: int) -> list[str] | None:
        """Every string `node` can evaluate to when that is knowable from the source alone.

        Names resolve to `self.values` (no recursion into their assignments), and each node
        is folded once per depth, so a template costs time linear in its size.
        """
        key = (id(node), depth)
        if key not in self._memo:
            found = self._fold(node, depth)
            if found:
                self.budget.charge(sum(map(len, found)))
            self._memo[key] = found
        return self._memo[key]

    def _fold(self, node: Any, depth: int) -> list[str] | None:
        from jinja2 import nodes

        if depth > _MAX_FOLD_DEPTH:
            return None
        d = depth + 1
        if isinstance(node, nodes.Const):
            return [node.value] if isinstance(node.value, str) else [str(node.value)]
        if isinstance(node, nodes.TemplateData):
            return [node.data]
        if isinstance(node, nodes.Name):
            return self.values.get(node.name)
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            return self.values.get(f"{node.node.name}.{node.attr}")
        if isinstance(node, nodes.CondExpr):
            return _union([self.fold(node.expr1, d), self.fold(node.expr2, d)])
        if isinstance(node, nodes.Concat):
            return _product([self.fold(n, d) for n in node.nodes])
        if isinstance(node, nodes.Output):
            return _product([self.fold(n, d) for n in node.nodes])
        if isinstance(node, nodes.Add):
            return _product([self.fold(node.left, d), self.fold(node.right, d)])
        if isinstance(node, nodes.Mod):
            fmt = self.fold(node.left, d)
            items = node.right.items if isinstance(node.right, nodes.Tuple) else [node.right]
            args = _product_tuples([self.fold(i, d) for i in items])
            if fmt is None or args is None:
                return None
            return _cap_all(_safe_percent(f, a) for f in fmt for a in args)
        if isinstance(node, nodes.Getitem):
            base = self.fold(node.node, d)
            if base is None:
                return None
            if isinstance(node.arg, nodes.Slice):
                parts = [_const_int(p) for p in (node.arg.start, node.arg.stop, node.arg.step)]
                if any(p is False for p in parts) or parts[2] == 0:
                    return None
                return _cap(b[slice(*parts)] for b in base)
            index = _const_int(node.arg)
            if isinstance(index, int) and not isinstance(index, bool):
                return _cap(b[index] for b in base if -len(b) <= index < len(b))
            return None
        if isinstance(node, nodes.Filter):
            return self._fold_filter(node, d)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            method = node.node.attr
            base = self.fold(node.node.node, d)
            if base is None:
                return None
            if method in _STR_METHODS and not node.args:
                return _cap(getattr(b, method)() for b in base)
            if method == "replace" and len(node.args) == 2:
                old, new = self.fold(node.args[0], d), self.fold(node.args[1], d)
                if old is None or new is None:
                    return None
                return _cap(b.replace(o, n) for b in base for o in old for n in new)
            if method == "format":
                args = _product_tuples([self.fold(a, d) for a in node.args])
                if args is None:
                    return None
                return _cap_all(_safe_format(b, a) for b in base for a in args)
            if method == "join" and node.args:
                return self._fold_join(node.args[0], base, d)
        return None

    def _fold_filter(self, node: Any, d: int) -> list[str] | None:
        from jinja2 import nodes

        if node.name == "join":
            sep = self.fold(node.args[0], d) if node.args else [""]
            return self._fold_join(node.node, sep, d) if sep is not None else None
        base = self.fold(node.node, d) if node.node is not None else None
        if base is None:
            return None
        if node.name in _FOLD_FILTERS:
            ops: dict[str, Callable[[str], str]] = {
                "lower": str.lower,
                "upper": str.upper,
                "reverse": lambda s: s[::-1],
                "string": str,
                "trim": str.strip,
                "title": str.title,
                "capitalize": str.capitalize,
                "first": lambda s: s[:1],
                "last": lambda s: s[-1:],
            }
            return _cap(ops[node.name](b) for b in base)
        if node.name == "replace" and len(node.args) >= 2:
            old, new = self.fold(node.args[0], d), self.fold(node.args[1], d)
            if old is None or new is None:
                return None
            return _cap(b.replace(o, n) for b in base for o in old for n in new)
        if node.name == "format":
            args = _product_tuples([self.fold(a, d) for a in node.args])
            if args is None:
                return None
            return _cap_all(_safe_percent(b, a) for b in base for a in args)
        if node.name == "default" and isinstance(node.node, nodes.Node):
            return base
        return None

    def _fold_join(self, seq: Any, seps: list[str], d: int) -> list[str] | None:
        from jinja2 import nodes

        if isinstance(seq, nodes.List | nodes.Tuple):
            parts = _product_tuples([self.fold(i, d) for i in seq.items])
            if parts is None:
                return None
            return _cap(s.join(p) for s in seps for p in parts)
        chars = self.fold(seq, d)
        if chars is None:
            return None
        return _cap(s.join(c) for s in seps for c in chars)


_TOOL_WORDS: Final = ("tool", "function", "documents", "builtin")


def _mentions_tools(expr: Any) -> bool:
    from jinja2 import nodes

    for node in itertools.chain([expr], expr.find_all((nodes.Name, nodes.Getattr, nodes.Const))):
        name = (
            getattr(node, "name", None)
            or getattr(node, "attr", None)
            or getattr(node, "value", None)
        )
        if isinstance(name, str) and any(w in name.lower() for w in _TOOL_WORDS):
            return True
    return False


def _outputs(body: Iterable[Any]) -> Iterable[Any]:
    from jinja2 import nodes

    for stmt in body:
        if isinstance(stmt, nodes.Output):
            yield from stmt.nodes


def _is_namespace_call(node: Any) -> bool:
    from jinja2 import nodes

    return (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "namespace"
    )


def _root_name(node: Any) -> str | None:
    from jinja2 import nodes

    while isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Call | nodes.Filter):
        node = node.node
    return node.name if isinstance(node, nodes.Name) else None


def _const_int(node: Any) -> int | bool | None:
    """An int literal (negation included), None for an absent slice part, False otherwise."""
    from jinja2 import nodes

    if node is None:
        return None
    if isinstance(node, nodes.Neg):
        inner = _const_int(node.node)
        return -inner if isinstance(inner, int) and not isinstance(inner, bool) else False
    if isinstance(node, nodes.Const) and type(node.value) is int:
        return int(node.value)
    return False


def _cap(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, str) and v not in out:
            out.append(v[:4096])
            if len(out) >= _MAX_CANDIDATES:
                break
    return out


def _union(groups: Iterable[list[str] | None]) -> list[str] | None:
    found = [g for g in groups if g is not None]
    return _cap(itertools.chain.from_iterable(found)) if found else None


def _product(groups: list[list[str] | None]) -> list[str] | None:
    tuples = _product_tuples(groups)
    return None if tuples is None else _cap("".join(t) for t in tuples)


def _product_tuples(groups: list[list[str] | None]) -> list[tuple[str, ...]] | None:
    if any(g is None for g in groups):
        return None
    return list(itertools.islice(itertools.product(*[g for g in groups if g is not None]), 64))


def _cap_all(values: Iterable[str | None]) -> list[str] | None:
    """`_cap` of values that may be unknown: one unknown makes the whole fold unknown."""
    unknown = False

    def known() -> Iterator[str]:
        nonlocal unknown
        for v in values:
            if v is None:
                unknown = True
                return
            yield v

    out = _cap(known())
    return None if unknown else out


def _safe_percent(fmt: str, args: tuple[str, ...]) -> str | None:
    """`fmt % args` for short plain `%s` formats only (no widths: no memory blow-up).

    Anything else is unknown, not empty: `'%c%cclass%c%c'|format(95, 95, 95, 95)` and
    `'%.2sclass%.2s'|format('__x', '__y')` both render `__class__`.
    """
    if len(fmt) > 512 or any(c.isdigit() or c == "*" for c in fmt.replace("%%", "")):
        return None
    try:
        return fmt % args
    except (TypeError, ValueError, KeyError):
        return None


def _safe_format(fmt: str, args: tuple[str, ...]) -> str | None:
    if len(fmt) > 512 or ":" in fmt or "." in fmt or "[" in fmt or "!" in fmt:
        return None
    try:
        return fmt.format(*args)
    except (IndexError, KeyError, ValueError):
        return None


def report_template(
    scanner: BaseScanner, source: str, path: str, key: str, result: ScanResult
) -> None:
    """Run the Jinja analysis on one template and turn its findings into issues.

    All templates of one file share one folding budget and one budget of template text
    parsed (kept on the per-file scanner); once either is spent, the file's remaining
    templates are not parsed at all and one `MA9004` says so."""
    budgets = scanner.__dict__.setdefault("_template_budgets", _FileBudgets())
    if budgets.fold.exhausted or budgets.source.used + len(source) > budgets.source.limit:
        if not budgets.reported:
            budgets.reported = True
            spent = budgets.fold if budgets.fold.exhausted else budgets.source
            report_budget(result, scanner.location(path), BudgetExceeded(spent.what, spent.limit))
        return
    budgets.source.charge(len(source))
    analysis = analyse_template(source, budgets.fold)
    for finding in analysis.findings:
        result.add_issue(
            f"{finding.message} [{key}]",
            severity=finding.severity,
            location=scanner.location(path),
            details={"template_key": key, "line": finding.lineno},
            why="Rendering the chat template (on every prompt) runs attacker-chosen Python "
            "or shell commands in renderers that are not sandboxed."
            if finding.severity is IssueSeverity.CRITICAL
            else "Ordinary chat templates never need this; it may be a step of an escape.",
            rule=finding.rule,
        )
    if analysis.parse_error == _NO_JINJA:
        result.add_issue(
            _NO_JINJA,
            severity=IssueSeverity.WARNING,
            location=scanner.location(path),
            details={"missing_module": "jinja2", "install": "pip install jinja2"},
            why="Without the library the chat template was not examined.",
            rule=MISSING_DEPENDENCY,
        )
        result.mark_inconclusive(_NO_JINJA)
    elif analysis.parse_error:
        result.add_issue(
            f"Chat template {key} could not be analysed: {analysis.parse_error}",
            severity=IssueSeverity.INFO,
            location=scanner.location(path),
            rule=TEMPLATE_UNPARSEABLE,
        )
        result.mark_inconclusive(f"chat template not analysed: {analysis.parse_error}")
