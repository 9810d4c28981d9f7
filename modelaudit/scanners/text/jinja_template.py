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
#: Longest candidate string folded; a longer one makes its value unenumerable.
_MAX_CANDIDATE_TEXT: Final = 4096
#: Combinations of candidates (of a product's parts, a method's arguments) enumerated.
_MAX_COMBINATIONS: Final = 64
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
#: What the source budget is charged for a template shorter than this: analysing any
#: template costs about as much as parsing a kilobyte, so a file holding thousands of tiny
#: templates spends the budget instead of the scan's time.
_MIN_SOURCE_CHARGE: Final = 1024


@dataclass
class _FileBudgets:
    fold: WorkBudget = field(default_factory=fold_budget)
    source: WorkBudget = field(
        default_factory=lambda: WorkBudget("chat template source", SOURCE_BUDGET)
    )
    reported: bool = False


class FoldBudgetExceeded(Exception):
    """Folding would produce more text than `FOLD_BUDGET`."""


class _Unenumerable(Exception):
    """A value has more candidates than `_MAX_CANDIDATES` (or longer ones than
    `_MAX_CANDIDATE_TEXT`): the analysis cannot list them, and a list cut at the cap would
    judge a name by the values that happened to come first (41 branches setting a name,
    the 41st to '__glo'). Raised through every fold that uses the value; where the value is
    used as a name on an object that reaches Python internals, that use is graded instead."""


_MAX_FINDINGS: Final = 25
#: Longest built string searched for internals' names inside it; longer text is prose.
_MAX_NAME_TEXT: Final = 256
#: Templates written by templates analysed in turn (`{{ '{{' }}` inside `{{ '{{' }}`...).
_MAX_NESTED_TEMPLATES: Final = 3
#: Readings of one output (its pieces' folded alternatives combined) analysed as a template.
_MAX_WRITTEN_READINGS: Final = 4
#: Longest reading parsed besides the first (parsing costs about a millisecond a kilobyte).
_MAX_OTHER_READING: Final = 64 * 1024

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
    {
        "popen",
        "subprocess",
        "builtins",
        "importlib",
        "check_output",
        "f_globals",
        "getoutput",
        "TemplateReference__context",
    }
)
#: A name-mangled private attribute (`_TemplateReference__context`): `self`'s mangled context
#: hands out the render context (every global, the environment) outside the sandbox, and no
#: template has another reason to spell a mangled name.
_MANGLED: Final = re.compile(r"^_[A-Za-z]\w*?__[A-Za-z_]\w*$")
_DUNDER: Final = re.compile(r"__[A-Za-z]\w*?__")
_ATTRIBUTE_FILTERS: Final = frozenset(
    {"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max", "join"}
)
#: Whole-string constants naming the internals every sandbox escape walks through.
_DUNDER_CONST: Final = re.compile(
    r"^__(?:class|globals|builtins|subclasses|mro|init|import|base|bases|dict|getattribute|"
    r"func|code|loader|spec|self|module|reduce|reduce_ex|closure|call)__$"
    r"|^_TemplateReference__context$"
)
_GADGETS: Final = frozenset({"cycler", "joiner", "namespace", "lipsum", "self", "range", "dict"})
#: Objects a template can name whose attributes reach `__globals__` or a class in one step:
#: jinja2's globals and its `loop`/`caller`/`super`, and the functions transformers,
#: llama-cpp-python and minja hand every chat template.
_CALLABLE_GLOBALS: Final = _GADGETS | frozenset(
    {"raise_exception", "strftime_now", "loop", "caller", "super", "varargs", "kwargs"}
)
#: What jinja2's default globals read as text (`(lipsum|string)[18]` is '_'): a source of
#: characters for names. `range` is the sandbox's `safe_range` there; a function's address
#: varies, the characters before it do not.
_GLOBALS_TEXT: Final = {
    "range": ["<class 'range'>", "<function safe_range at 0x7f0000000000>"],
    "dict": ["<class 'dict'>"],
    "lipsum": ["<function generate_lorem_ipsum at 0x7f0000000000>"],
    "cycler": ["<class 'jinja2.utils.Cycler'>"],
    "joiner": ["<class 'jinja2.utils.Joiner'>"],
    "namespace": ["<class 'jinja2.utils.Namespace'>"],
}
_FOLD_FILTERS: Final = frozenset(
    {"lower", "upper", "reverse", "string", "trim", "title", "capitalize"}
)
#: Filters that keep a sequence's items as they are (reordered or thinned at most).
_SEQ_FILTERS: Final = frozenset({"list", "unique", "reverse", "sort", "select"})
_MUTATORS: Final = frozenset(
    {"append", "extend", "insert", "update", "setdefault", "pop", "popitem", "remove", "clear"}
    | {"reverse", "sort", "__setitem__", "__delitem__", "__iadd__"}
)
_STR_METHODS: Final = frozenset(
    {"lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize", "swapcase"}
    | {"casefold", "removeprefix", "removesuffix", "center", "ljust", "rjust", "zfill"}
)
#: Longest padding (`center`, `ljust`, string repetition) folded; wider is unknown.
_MAX_WIDTH: Final = 4096
#: Words of interpreter internals that a key only partly known at render time may not hold.
_CORE_WORDS: Final = re.compile(
    r"globals|builtins|subclasses|getattribute|templatereference|popen|subprocess|"
    r"(?<![a-z])(?:mro|class|import)(?![a-z])"
)


@dataclass(frozen=True)
class TemplateFinding:
    severity: IssueSeverity
    rule: str
    message: str
    lineno: int | None = None
    #: Why it matters, when the severity's general reason does not fit.
    why: str | None = None


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


def _is_built_name(text: str) -> bool:
    """Text that is, as a whole, the name of an internal or a module only escapes reach."""
    return _is_dunder(text) or bool(_MANGLED.match(text)) or text in _BUILT_NAMES


def _is_escape_name(name: str) -> bool:
    """A dunder, a mangled private name or a module only escapes reach."""
    return _is_dunder(name) or name in _ESCAPE_NAMES or bool(_MANGLED.match(name))


def _may_write_code(pieces: list[str]) -> bool:
    """Whether text built from `pieces` can hold a Jinja tag: one holds an opening, or one
    ends with `{` where another starts with `{`, `%` or `#`."""
    if any("{{" in p or "{%" in p or "{#" in p for p in pieces):
        return True
    return any(p.endswith("{") for p in pieces) and any(p.startswith(("{", "%")) for p in pieces)


def _spells_internal(text: str) -> bool:
    """Text that could be (part of) the name of an internal: a double underscore, a core
    word (`globals`, `class`...) or a module only escapes reach."""
    return (
        "__" in text
        or bool(_CORE_WORDS.search(text.lower()))
        or any(n in text for n in _BUILT_NAMES | _ESCAPE_NAMES - {"os"})
    )


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
        self._seq_memo: dict[tuple[int, int], list[tuple[str, ...]] | None] = {}
        #: Memo keys (of `fold`, `fold_seq` at `-1 - depth`, and `_name_seqs`) whose value is
        #: unenumerable: folding them again raises at once.
        self._over: set[tuple[Any, int]] = set()
        #: Assigned names whose value is unenumerable (see `_Unenumerable`).
        self.over_names: set[str] = set()
        self._by_base: dict[str, list[str]] | None = None
        #: `fold_seq` of a name per depth: every use of a name shares one fold of its
        #: assignments (per node, a name assigned n times and used n times costs n*n).
        self._name_seqs: dict[tuple[str, int], list[tuple[str, ...]] | None] = {}
        #: Macros defined in the template, and `caller` when a `{% call %}` block exists:
        #: calling one writes its body, which is folded like a `{% set %}` block.
        self.macros: set[str] = set()
        #: Names whose value is changed in place (`{% do s.append(x) %}`): their items are
        #: not known from their assignments.
        self.mutated: set[str] = set()
        #: Assigned names some assignment of which is not known from the source.
        self.partial: set[str] = set()
        #: Characters folding may still produce; a template built to make candidates huge
        #: ends inconclusive instead of running the deadline.
        self.budget = budget

    def run(self, tree: jnodes.Template) -> None:
        from jinja2 import nodes

        #: One walk of the tree serves every pass below (each `find_all` is a full walk).
        everything = list(tree.find_all(nodes.Node))
        assign: Any
        target: Any
        value: Any
        for assign in everything:
            if not isinstance(assign, nodes.Assign | nodes.For | nodes.With):
                continue
            if isinstance(assign, nodes.With):
                for target, value in zip(assign.targets, assign.values, strict=False):
                    if isinstance(target, nodes.Name):
                        self.assigned[target.name].append(value)
                continue
            target = assign.target
            value = assign.node if isinstance(assign, nodes.Assign) else assign.iter
            if isinstance(target, nodes.Name):
                if isinstance(assign, nodes.For) and isinstance(value, nodes.List | nodes.Tuple):
                    self.assigned[target.name].extend(value.items)
                elif isinstance(assign, nodes.For):
                    self.assigned[target.name].append(_ItemOf(value))
                elif isinstance(assign, nodes.Assign):
                    self.assigned[target.name].append(value)
                    for key, item in _named_fields(value):
                        self.assigned[f"{target.name}.{key}"].append(item)
                    self._bind_helper(target.name, value)
            elif isinstance(target, nodes.Tuple) and isinstance(assign, nodes.For):
                keys = _keys_iterated(value)
                first = target.items[0] if target.items else None
                if keys is not None and isinstance(first, nodes.Name):
                    self.assigned[first.name].append(_ItemOf(keys))
            elif isinstance(target, nodes.Tuple) and isinstance(value, nodes.Tuple):
                for item, part in zip(target.items, value.items, strict=False):
                    if isinstance(item, nodes.Name):
                        self.assigned[item.name].append(part)
            elif isinstance(target, nodes.NSRef) and isinstance(assign, nodes.Assign):
                self.assigned[f"{target.name}.{target.attr}"].append(value)
        for block in everything:
            if isinstance(block, nodes.AssignBlock) and isinstance(block.target, nodes.Name):
                self.assigned[block.target.name].append(_written(block.body, block.filter))
        self._bind_macros(everything)
        for call in everything:
            if (
                isinstance(call, nodes.Call)
                and isinstance(call.node, nodes.Getattr)
                and call.node.attr in _MUTATORS
            ):
                name = _assigned_name(call.node.node)
                if name is not None:
                    self.mutated.add(name)
        self._solve_names()
        for name, values in self.values.items():
            # A value that is a whole internal's name (a macro writing '__globals__'); text
            # that merely mentions one (a system prompt about `subprocess`) is not.
            for built in {v.strip() for v in values if _is_built_name(v.strip())}:
                self._add(
                    IssueSeverity.CRITICAL,
                    f"Chat template builds the name '{built}' into '{name}'",
                    None,
                )
        for node in everything:
            self._check(node)
        for kind, excerpt in injected(self._written_text(tree)):
            self._add(
                IssueSeverity.WARNING,
                f"Chat template writes {kind} the user did not write into the conversation: "
                f"{excerpt!r}",
                None,
                TEMPLATE_PROMPT_INJECTION,
            )
        self._written_code(tree)

    def _bind_helper(self, name: str, value: Any) -> None:
        """`{% set j = joiner(sep) %}`: `j()` writes '' then `sep`; `{% set c = cycler(...) %}`:
        `c.next()` and `c.current` are its arguments."""
        from jinja2 import nodes

        if not isinstance(value, nodes.Call) or not isinstance(value.node, nodes.Name):
            return
        if value.node.name == "joiner":
            seps = value.args[:1] or [kw.value for kw in value.kwargs if kw.key == "sep"]
            self.assigned[f"{name}()"].extend([nodes.Const(""), *(seps or [nodes.Const(", ")])])
        elif value.node.name == "cycler":
            self.assigned[f"{name}.current"].extend(value.args)

    def _bind_macros(self, everything: list[Any]) -> None:
        """What a macro writes is a value like a `{% set %}` block's (`{{ lipsum[m()] }}`
        with `{% macro m() %}__globals__{% endmacro %}`); its parameters take the values
        its calls pass (positional, keyword or default), `caller` the `{% call %}` bodies."""
        from jinja2 import nodes

        params: dict[str, list[str]] = {}
        for macro in everything:
            if not isinstance(macro, nodes.Macro):
                continue
            self.macros.add(macro.name)
            self.assigned[macro.name].append(_written(macro.body))
            names = [a.name for a in macro.args]
            params[macro.name] = names
            defaulted = names[len(names) - len(macro.defaults) :]
            for name, default in zip(defaulted, macro.defaults, strict=True):
                self.assigned[name].append(default)
        for block in everything:
            if isinstance(block, nodes.CallBlock):
                self.macros.add("caller")
                self.assigned["caller"].append(_written(block.body))
        for call in everything:
            if (
                not isinstance(call, nodes.Call)
                or not isinstance(call.node, nodes.Name)
                or call.node.name not in params
            ):
                continue
            names = params[call.node.name]
            for name, arg in zip(names, call.args, strict=False):
                self.assigned[name].append(arg)
            for kw in call.kwargs:
                if kw.key in names:
                    self.assigned[kw.key].append(kw.value)

    def _written_code(self, tree: jnodes.Template) -> None:
        """A template that writes a template (`{{ '{{' }} ... {{ '}}' }}`, `{% raw %}`): what
        it writes runs wherever the prompt is rendered again, so it is analysed too."""
        from jinja2 import nodes

        for output in tree.find_all(nodes.Output):
            groups: list[list[str] | None] = []
            unlisted = False
            for child in output.nodes:
                if isinstance(child, nodes.TemplateData):
                    groups.append([child.data])
                    continue
                folded = self.known(child)
                unlisted = unlisted or (folded is None and self.unenumerable(child))
                groups.append(folded or [""])
            # Every way the output can read (`'x' if a else '{{ ... }}'`).
            try:
                readings = ("".join(t) for t in _product_tuples(groups) or ())
                texts = _cap(r for r in readings if "{{" in r or "{%" in r)
            except _Unenumerable:
                texts, unlisted = [], True
            pieces = self._sources(output) if unlisted else []
            if _may_write_code(pieces) and any(map(_spells_internal, pieces)):
                # Written code escapes only by naming an internal: pieces none of which
                # could be part of one's name cannot write an escape, however they combine.
                self._add(
                    IssueSeverity.WARNING,
                    "Chat template writes template code built from more values than the "
                    "analysis can list (what it writes is rendered again unchecked)",
                    output,
                )
            if not texts:
                continue
            if self.nested >= _MAX_NESTED_TEMPLATES or len(texts) > _MAX_WRITTEN_READINGS:
                self._add(
                    IssueSeverity.WARNING,
                    "Chat template writes templates nested deeper, or in more ways, than the "
                    "analysis reads",
                    output,
                )
                if self.nested >= _MAX_NESTED_TEMPLATES:
                    continue
            for i, text in enumerate(texts[:_MAX_WRITTEN_READINGS]):
                if i and len(text) > _MAX_OTHER_READING:
                    self._add(
                        IssueSeverity.WARNING,
                        "Chat template writes a template too long to analyse in every reading",
                        output,
                    )
                    continue
                self.budget.charge(len(text))
                if self._escapes_when_rendered_again(text, output):
                    return

    def _escapes_when_rendered_again(self, text: str, output: Any) -> bool:
        """Analyse one reading of an output as a template; True (and reported) on an escape."""
        if "{{" in text or "{%" in text:
            inner = analyse_template(text, self.budget, self.nested + 1)
            if inner.max_severity is IssueSeverity.CRITICAL:
                first = next(f for f in inner.findings if f.severity is IssueSeverity.CRITICAL)
                self._add(
                    IssueSeverity.CRITICAL,
                    f"Chat template writes a template that escapes the sandbox when the "
                    f"prompt is rendered again: {first.message}",
                    output,
                )
                return True
            # What the written template could not have judged (a name it builds from more
            # values than are listed, templates it writes in turn) is not dropped either.
            for finding in inner.findings:
                if finding.severity is IssueSeverity.WARNING and (
                    "more values" in finding.message or "more ways" in finding.message
                ):
                    self._add(
                        IssueSeverity.WARNING,
                        f"Chat template writes a template that: {finding.message}",
                        output,
                    )
        return False

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
                        folded = self.known(child)
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
        changed: set[str] = set()
        for _ in range(_MAX_FOLD_ROUNDS):
            known: dict[str, list[str]] = {}
            over: set[str] = set()
            for name, exprs in self.assigned.items():
                try:
                    found = _union(self.fold(e, 0) for e in exprs)
                except _Unenumerable:
                    over.add(name)
                    continue
                if found is not None:
                    known[name] = found
            self._forget()
            changed = {
                n for n in known.keys() | self.values.keys() if known.get(n) != self.values.get(n)
            }
            changed |= over ^ self.over_names
            self.values, self.over_names = known, over
            if not changed:
                break
        if changed:
            # Still growing after the last round (a chain of more `{% set %}`s than rounds, a
            # self-append that has not yet reached the cap): what those names hold, and what
            # is built from them, is not known in full.
            self.over_names |= self._dependents(changed)
            for name in self.over_names:
                self.values.pop(name, None)
            self._forget()
        self.partial = {
            name
            for name, exprs in self.assigned.items()
            if name in self.over_names or any(self.known(e) is None for e in exprs)
        }

    def _forget(self) -> None:
        """Drop the folds made against the previous round's values."""
        self._memo.clear()
        self._seq_memo.clear()
        self._name_seqs.clear()
        self._over.clear()

    def _dependents(self, names: set[str]) -> set[str]:
        """`names` and every assigned name whose assignments read one of them, however
        indirectly (by the names their expressions mention: a superset, found in one pass
        over the assignments and a walk of the graph)."""
        from jinja2 import nodes

        readers: dict[str, set[str]] = defaultdict(set)
        for name, exprs in self.assigned.items():
            for expr in exprs:
                root = expr.seq if isinstance(expr, _ItemOf) else expr
                for sub in itertools.chain([root], root.find_all(nodes.Name)):
                    self.budget.charge(1)
                    if isinstance(sub, nodes.Name):
                        readers[sub.name].add(name)
        found = set(names)
        todo = list(names)
        while todo:
            # `ns.out`, `j()` and `c.current` are read through the names `ns`, `j`, `c`.
            base = todo.pop().split(".", 1)[0].removesuffix("()")
            for reader in readers.get(base, ()):
                if reader not in found:
                    found.add(reader)
                    todo.append(reader)
        return found

    def _value(self, key: str) -> list[str] | None:
        """What an assigned name (`x`, `ns.attr`, `d.key`, `j()`) holds: None when it is only
        known at render time, `_Unenumerable` when it holds more than can be listed."""
        if key in self.over_names:
            raise _Unenumerable
        return self.values.get(key)

    def known(self, node: Any) -> list[str] | None:
        """`fold` for a use of a value: None when it is not known, enumerable or not (the
        use asks `unenumerable` which)."""
        try:
            return self.fold(node, 0)
        except _Unenumerable:
            return None

    def unenumerable(self, node: Any) -> bool:
        """Whether `node`, or a piece of it, holds more values than folding lists: a name
        made from it may be any of them."""
        from jinja2 import nodes

        for sub in itertools.chain([node], node.find_all(nodes.Expr)):
            self.budget.charge(1)
            try:
                self.fold(sub, 0)
            except _Unenumerable:
                return True
        return False

    def _attr_names(self, arg: Any) -> list[str] | None:
        """The names an `|attr()` argument can be, None when any of them is only known at
        render time: a name set to 'x' in one place and to a message in another
        (`{% set n = messages[0].content %}`) is not just 'x'."""
        from jinja2 import nodes

        names = self.known(arg)
        if names is None:
            return None
        pieces = itertools.islice(itertools.chain([arg], arg.find_all(nodes.Expr)), 256)
        if any(_assigned_name(p) in self.partial for p in pieces):
            return None
        return names

    def _add(
        self,
        severity: IssueSeverity,
        message: str,
        node: Any,
        rule: str = "",
        why: str | None = None,
    ) -> None:
        key = (severity.value, message)
        if key in self.seen or len(self.analysis.findings) >= _MAX_FINDINGS:
            return
        self.seen.add(key)
        rule = rule or (
            TEMPLATE_INJECTION if severity is IssueSeverity.CRITICAL else TEMPLATE_SUSPICIOUS
        )
        self.analysis.findings.append(
            TemplateFinding(severity, rule, message, getattr(node, "lineno", None), why)
        )

    def _name_check(self, name: str, node: Any, how: str, strict: bool) -> None:
        root = _root_name(node)
        via = f" (starting from the '{root}' object)" if root in _GADGETS else ""
        if _is_escape_name(name) or (strict and name in _CALL_NAMES):
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
            keys = self.known(node.arg)
            if keys is None:
                if self._partly_built(node.arg, node.node, "item lookup"):
                    return
                if self.unenumerable(node.arg):
                    self._unenumerable_name(node.arg, node.node, "item lookup")
                    return
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
            names = self._attr_names(node.args[0]) if node.args else None
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
            if node.name == "map":
                self._mapped_filter(node)
        elif isinstance(node, nodes.Keyword) and (_is_dunder(node.key) or _MANGLED.match(node.key)):
            self._add(
                IssueSeverity.CRITICAL,
                f"Chat template spells the Python internal '{node.key}' as a keyword name "
                "(`dict(__globals__=1)|first` is the string)",
                node,
            )
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
            elif isinstance(callee, nodes.Getitem) and not isinstance(callee.arg, nodes.Slice):
                for key in self.known(callee.arg) or ():
                    if key in _CALL_NAMES:
                        self._add(
                            IssueSeverity.CRITICAL,
                            f"Chat template calls '[{key!r}]()', which runs code or commands",
                            node,
                        )
            elif isinstance(callee, nodes.Name) and callee.name in _GLOBAL_CALLS:
                self._add(
                    IssueSeverity.CRITICAL,
                    f"Chat template calls the Python builtin '{callee.name}()'",
                    node,
                )
        elif isinstance(node, nodes.Import | nodes.FromImport | nodes.Include | nodes.Extends):
            # No renderer a model's chat template meets resolves it: transformers renders in
            # an ImmutableSandboxedEnvironment without a loader ("no loader for this
            # environment specified"), llama-cpp-python with jinja2's BaseLoader
            # (TemplateNotFound); llama.cpp (minja and its own parser) and huggingface.js do
            # not parse it. Rendering fails; nothing is read or run.
            self._add(
                IssueSeverity.INFO,
                f"Chat template loads another template ({type(node).__name__.lower()}), which "
                "chat template renderers do not resolve",
                node,
                why="transformers and llama-cpp-python render chat templates without a "
                "template loader, and llama.cpp and huggingface.js do not parse "
                "include/import/extends: rendering fails, reading no file and running nothing.",
            )
        # (A macro call writes text, like a {% set %} block: judged where it is used.)
        if isinstance(
            node, nodes.Concat | nodes.Add | nodes.Mod | nodes.Filter | nodes.Call
        ) and not (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name)):
            for text in self.known(node) or ():
                # Prose that mentions `subprocess` is not a name; a short string can be.
                found = _names_in(text) if len(text) <= _MAX_NAME_TEXT else []
                if _is_built_name(text.strip()):
                    found.append(text.strip())
                for name in found:
                    self._add(
                        IssueSeverity.CRITICAL,
                        f"Chat template builds the name '{name}' from pieces",
                        node,
                    )

    def _unenumerable_name(self, key: Any, base: Any, how: str) -> None:
        """Grade a name looked up by a value with more candidates than folding lists (see
        `_Unenumerable`): any of them may be an internal. On an object one step from
        `__globals__` (jinja2's and the renderers' functions and classes, macros, `self`,
        anything reached through a dunder) that is an escape; on data it is one when the
        pieces the value is built from could spell an internal, else a warning."""
        root = _root_name(base)
        on = f" on the '{root}' object" if root else ""
        if self._reaches_internals(base):
            self._add(
                IssueSeverity.CRITICAL,
                f"Chat template looks up a name{on} via {how} from more values than the "
                "analysis can list: any of them may be a Python internal (a sandbox escape)",
                key,
            )
            return
        pieces = self._sources(key)
        spelled = next((p for p in pieces if _spells_internal(p)), None)
        if spelled is not None:
            self._add(
                IssueSeverity.CRITICAL,
                f"Chat template looks up a name via {how} from more values than the analysis "
                f"can list, built from pieces that spell an internal ({spelled[:40]!r})",
                key,
            )
            return
        self._add(
            IssueSeverity.WARNING,
            f"Chat template looks up a name via {how} from more values than the analysis can list",
            key,
        )

    def _reaches_internals(self, base: Any) -> bool:
        """Whether `base` is an object whose attributes reach Python internals in a step:
        a function or class the renderer hands out, a macro, or anything reached through
        an internal's name or a name the analysis could not list."""
        from jinja2 import nodes

        node = base
        while isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Call | nodes.Filter):
            if isinstance(node, nodes.Getattr) and _is_escape_name(node.attr):
                return True
            if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Slice):
                keys = self.known(node.arg)
                if any(_is_escape_name(k) for k in keys or ()) or self.unenumerable(node.arg):
                    return True
            if isinstance(node, nodes.Filter) and node.name == "attr":
                return True
            node = node.node
        return isinstance(node, nodes.Name) and (
            node.name in _CALLABLE_GLOBALS or node.name in self.macros
        )

    def _sources(self, node: Any) -> list[str]:
        """The text pieces a value can be built from: its string constants and keyword
        names, those of every assignment of the names it reads (however indirectly), and
        the text of the globals it reads (`(lipsum|string)[18]` is '_'). Each assignment is
        read once: linear in the template, charged to the fold budget."""
        from jinja2 import nodes

        pieces: list[str] = []
        seen: set[str] = set()
        todo: list[Any] = [node]
        while todo:
            expr = todo.pop()
            root = expr.seq if isinstance(expr, _ItemOf) else expr
            called: set[int] = set()
            for sub in itertools.chain([root], root.find_all(nodes.Node)):
                self.budget.charge(1)
                if isinstance(sub, nodes.Call):
                    called.add(id(sub.node))  # `namespace(...)` is not its text
                if isinstance(sub, nodes.Const) and isinstance(sub.value, str):
                    pieces.append(sub.value)
                elif isinstance(sub, nodes.TemplateData):
                    pieces.append(sub.data)
                elif isinstance(sub, nodes.Keyword):
                    pieces.append(sub.key)
                elif isinstance(sub, nodes.Name):
                    if id(sub) not in called and sub.name not in self.assigned:
                        pieces.extend(_GLOBALS_TEXT.get(sub.name, ()))
                    if sub.name in seen:
                        continue
                    seen.add(sub.name)
                    for name in self._keys_of(sub.name):
                        todo.extend(self.assigned[name])
        return pieces

    def _keys_of(self, base: str) -> list[str]:
        """The assigned names read through `base`: itself, `base.attr`, `base()`..."""
        if self._by_base is None:
            self._by_base = defaultdict(list)
            for name in self.assigned:
                self._by_base[name.split(".", 1)[0].removesuffix("()")].append(name)
        return self._by_base.get(base, [])

    def _partly_built(self, key: Any, base: Any, how: str) -> bool:
        """A name only partly known (`lipsum[u ~ u ~ 'globals' ~ u ~ u]` where `u` is a
        character cut from `lipsum|string`): a known piece of it that names an interpreter
        internal is enough, as no chat template looks up such a key for data."""
        from jinja2 import nodes

        subs = list(itertools.islice(itertools.chain([key], key.find_all(nodes.Expr)), 256))
        # The constant pieces read in order (`['__glo', 'bals__']|batch(2)|first|join`).
        spelled = "".join(
            piece
            for s in subs
            for piece in (
                [s.value] if isinstance(s, nodes.Const) and isinstance(s.value, str) else [],
                [kw.key for kw in getattr(s, "kwargs", None) or ()],
            )[isinstance(s, nodes.Call)]
        )
        known = self._known_text(key, 0)
        self.budget.charge(len(spelled) + len(known))
        for sub in subs:
            texts = [spelled, known] if sub is key else []
            for text in itertools.chain(texts, self.known(sub) or ()):
                found = _CORE_WORDS.search(text.lower())
                if found:
                    root = _root_name(base)
                    via = f" (starting from the '{root}' object)" if root in _GADGETS else ""
                    self._add(
                        IssueSeverity.CRITICAL,
                        f"Chat template accesses a name built at render time around "
                        f"'{found.group()}' via {how}{via}: a sandbox escape to Python internals",
                        sub,
                    )
                    return True
        return False

    def _known_text(self, node: Any, depth: int) -> str:
        """The known pieces of a concatenation in order, unknown ones dropped:
        `u ~ u ~ 'glo' ~ b ~ 'als' ~ u ~ u` with `b = '%c'|format(98)` reads 'globals'."""
        from jinja2 import nodes

        folded = self.known(node)
        if folded:
            return folded[0]
        if depth > _MAX_FOLD_DEPTH:
            return ""
        if isinstance(node, nodes.Concat):
            return "".join(self._known_text(n, depth + 1) for n in node.nodes)
        if isinstance(node, nodes.Add):
            return self._known_text(node.left, depth + 1) + self._known_text(node.right, depth + 1)
        if isinstance(node, nodes.Filter) and node.name == "join" and node.node is not None:
            items = node.node.items if isinstance(node.node, nodes.List | nodes.Tuple) else []
            return "".join(self._known_text(n, depth + 1) for n in items)
        return ""

    def _mapped_filter(self, node: Any) -> None:
        """`map('attr', name)` is `|attr(name)` on every item; a filter chosen at render
        time (`map(messages[0].content, ...)`) may be `attr` too."""
        if not node.args:
            return
        chosen = self.known(node.args[0])
        if chosen is None:
            self._add(
                IssueSeverity.CRITICAL,
                "Chat template maps a filter chosen at render time (it may be |attr)",
                node,
            )
            return
        if "attr" not in chosen:
            return
        named = node.args[1:2] or [kw.value for kw in node.kwargs if kw.key == "name"]
        for arg in named:
            names = self._attr_names(arg)
            if names is None:
                self._add(
                    IssueSeverity.CRITICAL,
                    "Chat template maps |attr() with a name built at render time",
                    node,
                )
                continue
            for name in names:
                self._name_check(name, node.node, "map('attr')", strict=True)

    def _attribute_args(self, node: Any) -> None:
        """`map(attribute=...)`, `selectattr('...')` and friends getattr by a string name."""
        from jinja2 import nodes

        candidates = [kw.value for kw in node.kwargs if kw.key == "attribute"]
        if node.name in ("selectattr", "rejectattr", "groupby") and node.args:
            candidates.append(node.args[0])
        for arg in candidates:
            names = self.known(arg)
            if names is None:
                if self._partly_built(arg, node.node, f"|{node.name}()"):
                    continue
                if self.unenumerable(arg):
                    self._unenumerable_name(arg, node.node, f"|{node.name}()")
                    continue
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
        if key in self._over:
            raise _Unenumerable
        if key not in self._memo:
            try:
                found = self._fold(node, depth)
            except _Unenumerable:
                self._over.add(key)
                raise
            if found:
                self.budget.charge(sum(map(len, found)))
            self._memo[key] = found
        return self._memo[key]

    def _fold(self, node: Any, depth: int) -> list[str] | None:
        from jinja2 import nodes

        if depth > _MAX_FOLD_DEPTH:
            raise _Unenumerable
        d = depth + 1
        if isinstance(node, _ItemOf):
            seqs = self.fold_seq(node.seq, d)
            return None if seqs is None else _cap(itertools.chain.from_iterable(seqs))
        if isinstance(node, nodes.Const):
            return [node.value] if isinstance(node.value, str) else [str(node.value)]
        if isinstance(node, nodes.TemplateData):
            return [node.data]
        if isinstance(node, nodes.Name):
            if node.name not in self.assigned:
                return _GLOBALS_TEXT.get(node.name)
            return self._value(node.name)
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            return self._value(f"{node.node.name}.{node.attr}")
        if isinstance(node, nodes.CondExpr):
            return _union([self.fold(node.expr1, d), self.fold(node.expr2, d)])
        if isinstance(node, nodes.Concat):
            return _product([self.fold(n, d) for n in node.nodes])
        if isinstance(node, nodes.Output):
            return _product([self.fold(n, d) for n in node.nodes])
        if isinstance(node, nodes.Add):
            return _product([self.fold(node.left, d), self.fold(node.right, d)])
        if isinstance(node, nodes.Mul):
            times = _const_int(node.right)
            text = self.fold(node.left, d)
            if not isinstance(times, int) or isinstance(times, bool):
                times, text = _const_int(node.left), self.fold(node.right, d)
            if not isinstance(times, int) or isinstance(times, bool) or text is None:
                return None
            if any(len(t) * times > _MAX_WIDTH for t in text):
                return None
            return _cap(t * times for t in text)
        if isinstance(node, nodes.Mod):
            fmt = self.fold(node.left, d)
            items = node.right.items if isinstance(node.right, nodes.Tuple) else [node.right]
            args = self._format_args(items, d)
            if fmt is None or args is None:
                return None
            return _cap_all(_safe_percent(f, a) for f in fmt for a in args)
        if isinstance(node, nodes.Getitem) and (base := self.fold(node.node, d)) is not None:
            if isinstance(node.arg, nodes.Slice):
                parts = [_const_int(p) for p in (node.arg.start, node.arg.stop, node.arg.step)]
                if any(p is False for p in parts) or parts[2] == 0:
                    return None
                return _cap(b[slice(*parts)] for b in base)
            index = _const_int(node.arg)
            if isinstance(index, int) and not isinstance(index, bool):
                return _cap(b[index] for b in base if -len(b) <= index < len(b))
            return None
        if (
            isinstance(node, nodes.Getitem)
            and isinstance(node.node, nodes.Name)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            return self._value(f"{node.node.name}.{node.arg.value}")
        if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Slice):
            index = _const_int(node.arg)
            if not isinstance(index, int) or isinstance(index, bool):
                return None
            seqs = self.fold_seq(node.node, d)
            if seqs is None:
                return None
            return _cap(t[index] for t in seqs if -len(t) <= index < len(t))
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
            if node.node.name in self.macros:
                return self._value(node.node.name)
            return self._value(f"{node.node.name}()")
        if (
            isinstance(node, nodes.Call)
            and isinstance(node.node, nodes.Getattr)
            and isinstance(node.node.node, nodes.Name)
            and node.node.attr in ("next", "cycle")
        ):
            if node.node.attr == "next":  # a cycler's next item
                return self._value(f"{node.node.node.name}.current")
            if node.node.node.name == "loop":  # loop.cycle(a, b, ...)
                return _union(self.fold(a, d) for a in node.args)
        if isinstance(node, nodes.Filter):
            return self._fold_filter(node, d)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            method = node.node.attr
            base = self.fold(node.node.node, d)
            if base is None:
                return None
            if method in _STR_METHODS and not node.kwargs and not node.dyn_args:
                return self._fold_method(method, base, node.args, d)
            if method == "replace" and len(node.args) == 2:
                old, new = self.fold(node.args[0], d), self.fold(node.args[1], d)
                if old is None or new is None:
                    return None
                return _cap(b.replace(o, n) for b in base for o in old for n in new)
            if method == "format":
                args = _product_tuples([self.fold(a, d) for a in node.args])
                names = [kw.key for kw in node.kwargs]
                values = _product_tuples([self.fold(kw.value, d) for kw in node.kwargs])
                if args is None or values is None or node.dyn_args or node.dyn_kwargs:
                    return None
                return _cap_all(
                    _safe_format(b, a, dict(zip(names, v, strict=True)))
                    for b in base
                    for a in args
                    for v in values
                )
            if method == "join" and node.args:
                return self._fold_join(node.args[0], base, d)
        return None

    def _format_args(self, args: list[Any], d: int) -> list[tuple[Any, ...]] | None:
        """Arguments of a `%` format: int literals stay ints (`'%c' % 95` is '_'), the rest
        folded to strings."""
        groups: list[list[Any] | None] = []
        for arg in args:
            number = _const_int(arg)  # (a huge `%c` code point fails: OverflowError)
            if isinstance(number, int) and not isinstance(number, bool):
                groups.append([number])
            else:
                groups.append(self.fold(arg, d))
        return _product_tuples(groups)

    def _fold_method(
        self, method: str, base: list[str], args: list[Any], d: int
    ) -> list[str] | None:
        """`str.<method>(*args)` on each candidate, the arguments folded (ints as ints)."""
        groups: list[list[Any]] = []
        for arg in args:
            number = _const_int(arg)
            if isinstance(number, int) and not isinstance(number, bool):
                if abs(number) > _MAX_WIDTH:
                    return None
                groups.append([number])
                continue
            folded = self.fold(arg, d)
            if folded is None:
                return None
            groups.append(folded)
        combos = _at_most(itertools.product(*groups), _MAX_COMBINATIONS)
        try:
            return _cap(getattr(b, method)(*c) for b in base for c in combos)
        except (TypeError, ValueError):
            return None

    def _fold_filter(self, node: Any, d: int) -> list[str] | None:
        from jinja2 import nodes

        if node.name == "join":
            sep = self.fold(node.args[0], d) if node.args else [""]
            return self._fold_join(node.node, sep, d) if sep is not None else None
        if node.name in ("first", "last") and not node.args and node.node is not None:
            items = self.fold_seq(node.node, d)
            if items is None:
                return None
            pick = 0 if node.name == "first" else -1
            return _cap(t[pick] for t in items if t)
        base = self.fold(node.node, d) if node.node is not None else None
        if base is None and node.name == "string" and not node.args:
            # The text of a literal list or dict: `(dict(glo=1)|string)[2:5]` is 'glo'.
            literal = _literal(node.node)
            return None if literal is _UNKNOWN else _cap([str(literal)])
        if base is None:
            return None
        if node.name in _FOLD_FILTERS:
            op = _STR_FILTERS.get(node.name) or (lambda s: s[::-1])
            return _cap(op(b) for b in base)
        if node.name == "center" and not node.kwargs and len(node.args) <= 1:
            return self._fold_method("center", base, node.args[:1] or [nodes.Const(80)], d)
        if node.name == "replace" and len(node.args) >= 2:
            old, new = self.fold(node.args[0], d), self.fold(node.args[1], d)
            if old is None or new is None:
                return None
            return _cap(b.replace(o, n) for b in base for o in old for n in new)
        if node.name == "format":
            args = self._format_args(node.args, d)
            if args is None:
                return None
            return _cap_all(_safe_percent(b, a) for b in base for a in args)
        if node.name == "default" and isinstance(node.node, nodes.Node):
            return base
        return None

    def _fold_join(self, seq: Any, seps: list[str], d: int) -> list[str] | None:
        parts = self.fold_seq(seq, d)
        if parts is None:
            return None
        return _cap(s.join(p) for s in seps for p in parts)

    def fold_seq(self, node: Any, depth: int) -> list[tuple[str, ...]] | None:
        """The item lists `node` can hold as a sequence of strings (a string is its
        characters, a dict its keys: `dict(__glo=1, bals__=1)|join` is a name), memoised and
        charged like `fold`."""
        key = (id(node), -1 - depth)
        if key in self._over:
            raise _Unenumerable
        if key not in self._seq_memo:
            try:
                found = self._fold_seq(node, depth)
            except _Unenumerable:
                self._over.add(key)
                raise
            if found:
                self.budget.charge(sum(len(t) + sum(map(len, t)) for t in found))
            self._seq_memo[key] = found
        return self._seq_memo[key]

    def _fold_seq(self, node: Any, depth: int) -> list[tuple[str, ...]] | None:
        from jinja2 import nodes

        if depth > _MAX_FOLD_DEPTH:
            raise _Unenumerable
        d = depth + 1
        if isinstance(node, nodes.List | nodes.Tuple):
            return _product_tuples([self.fold(i, d) for i in node.items])
        if isinstance(node, nodes.Dict):
            return _product_tuples([self.fold(p.key, d) for p in node.items])
        if _is_dict_call(node):
            return [tuple(kw.key for kw in node.kwargs)]
        if (
            isinstance(node, nodes.Call)
            and isinstance(node.node, nodes.Getattr)
            and node.node.attr in ("keys", "values")
            and not node.args
        ):
            if node.node.attr == "keys":
                return self.fold_seq(node.node.node, d)
            mapping: Any = node.node.node
            if isinstance(mapping, nodes.Dict):
                return _product_tuples([self.fold(p.value, d) for p in mapping.items])
            if _is_dict_call(mapping):
                return _product_tuples([self.fold(kw.value, d) for kw in mapping.kwargs])
            return None
        if isinstance(node, nodes.Filter) and node.node is not None:
            if node.name in _SEQ_FILTERS and not node.args:
                items = self.fold_seq(node.node, d)
                options: dict[str, Any] = {str(kw.key): kw.value for kw in node.kwargs}
                if items is None or not set(options) <= {"reverse", "case_sensitive"}:
                    return None
                if not all(isinstance(v, nodes.Const) for v in options.values()):
                    return None
                flags: dict[str, bool] = {k: bool(v.value) for k, v in options.items()}
                # jinja2 sorts and dedupes without regard to case unless told otherwise.
                fold_case = (lambda x: x) if flags.get("case_sensitive") else str.lower
                if node.name == "sort":
                    rev = flags.get("reverse", False)
                    return [tuple(sorted(t, key=fold_case, reverse=rev)) for t in items]
                if node.name == "reverse":
                    return [t[::-1] for t in items]
                if node.name == "unique":
                    return [_unique(t, fold_case) for t in items]
                if node.name == "select":
                    return [tuple(i for i in t if i) for t in items]
                return items
            if node.name == "map" and len(node.args) == 1 and not node.kwargs:
                chosen = self.fold(node.args[0], d)
                items = self.fold_seq(node.node, d)
                if chosen is None or items is None or len(chosen) != 1:
                    return None
                op = _STR_FILTERS.get(chosen[0])
                return None if op is None else [tuple(map(op, t)) for t in items]
        if isinstance(node, nodes.Add):
            left, right = self.fold_seq(node.left, d), self.fold_seq(node.right, d)
            if left is None or right is None:
                return None
            return _at_most((a + b for a in left for b in right), _MAX_COMBINATIONS)
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Slice):
            parts = [_const_int(p) for p in (node.arg.start, node.arg.stop, node.arg.step)]
            items = self.fold_seq(node.node, d)
            if items is None or any(p is False for p in parts) or parts[2] == 0:
                return None
            return [t[slice(*parts)] for t in items]
        name = _assigned_name(node)
        if name in self.mutated:
            return None
        if name is not None and name in self.assigned:
            key = (name, d)
            if key in self._over:
                raise _Unenumerable
            if key not in self._name_seqs:
                seqs = (self.fold_seq(e, d) for e in self.assigned[name])
                found = itertools.chain.from_iterable(s for s in seqs if s is not None)
                try:
                    self._name_seqs[key] = _at_most(found, _MAX_COMBINATIONS) or None
                except _Unenumerable:
                    self._over.add(key)
                    raise
            if self._name_seqs[key] is not None:
                return self._name_seqs[key]
        strings = self.fold(node, depth)
        return None if strings is None else [tuple(s) for s in strings]


_TOOL_WORDS: Final = ("tool", "function", "documents", "builtin")
#: String filters folded as they render (`reverse` is folded apart: on a list it reorders).
_STR_FILTERS: Final[dict[str, Callable[[str], str]]] = {
    "lower": str.lower,
    "upper": str.upper,
    "string": str,
    "trim": str.strip,
    "title": str.title,
    "capitalize": str.capitalize,
}


@dataclass(frozen=True, eq=False)
class _ItemOf:
    """What a `{% for %}` variable takes: each item of `seq` (folded by `fold_seq`)."""

    seq: Any


def _written(body: Iterable[Any], filter_: Any = None) -> Any:
    """The text a block body writes (its direct outputs, `{% filter %}` blocks applied), as
    one expression to fold; `filter_` is the block's own filter (`{% set a | lower %}`)."""
    from jinja2 import nodes

    written: Any = nodes.Concat(list(_outputs(body)))
    if filter_ is not None:
        written = _refilter(filter_, written)
    return written


def _refilter(filter_: Any, node: Any) -> Any:
    """`filter_` (a filter chain with no input, as a block carries it) applied to `node`."""
    from jinja2 import nodes

    inner = node if filter_.node is None else _refilter(filter_.node, node)
    return nodes.Filter(
        inner, filter_.name, filter_.args, filter_.kwargs, filter_.dyn_args, filter_.dyn_kwargs
    )


def _named_fields(value: Any) -> Iterator[tuple[str, Any]]:
    """(key, value) of a namespace, `dict(...)` call or dict literal with constant keys: what
    `ns.key`, `d.key` and `d['key']` read of the name it is assigned to."""
    from jinja2 import nodes

    if isinstance(value, nodes.Call) and isinstance(value.node, nodes.Name):
        if value.node.name in ("namespace", "dict"):
            for kw in value.kwargs:
                yield kw.key, kw.value
    elif isinstance(value, nodes.Dict):
        for pair in value.items:
            if isinstance(pair.key, nodes.Const) and isinstance(pair.key.value, str):
                yield pair.key.value, pair.value


def _keys_iterated(value: Any) -> Any:
    """The mapping whose keys `{% for k, v in X|dictsort %}` / `X.items()` / `X|items` gives
    the first loop variable, or None."""
    from jinja2 import nodes

    if isinstance(value, nodes.Filter) and value.name in ("dictsort", "items"):
        return value.node
    if (
        isinstance(value, nodes.Call)
        and isinstance(value.node, nodes.Getattr)
        and value.node.attr == "items"
        and not value.args
    ):
        return value.node.node
    return None


def _assigned_name(node: Any) -> str | None:
    """The key of `_Walker.assigned` a name or namespace attribute reads."""
    from jinja2 import nodes

    if isinstance(node, nodes.Name):
        return str(node.name)
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return f"{node.node.name}.{node.attr}"
    return None


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
        elif isinstance(stmt, nodes.FilterBlock):
            yield _written(stmt.body, stmt.filter)


_UNKNOWN: Final = object()


def _is_dict_call(node: Any) -> bool:
    """`dict(k=v, ...)`: a mapping whose keys are the keyword names."""
    from jinja2 import nodes

    return (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "dict"
        and not node.args
        and not node.dyn_args
        and not node.dyn_kwargs
    )


def _literal(node: Any) -> Any:
    """The Python value of a literal made of constants (lists, tuples, dicts, `dict(k=...)`),
    `_UNKNOWN` for anything else; the parser has already bounded its nesting."""
    from jinja2 import nodes

    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_literal(i) for i in node.items]
        if any(i is _UNKNOWN for i in items):
            return _UNKNOWN
        return items if isinstance(node, nodes.List) else tuple(items)
    pairs: list[tuple[Any, Any]] = []
    if isinstance(node, nodes.Dict):
        pairs = [(_literal(p.key), _literal(p.value)) for p in node.items]
    elif _is_dict_call(node):
        pairs = [(kw.key, _literal(kw.value)) for kw in node.kwargs]
    else:
        return _UNKNOWN
    if any(k is _UNKNOWN or v is _UNKNOWN for k, v in pairs):
        return _UNKNOWN
    try:
        return dict(pairs)
    except TypeError:  # an unhashable key
        return _UNKNOWN


def _unique(items: tuple[str, ...], key: Callable[[str], str]) -> tuple[str, ...]:
    """jinja2's `unique`: first occurrences, compared by `key`."""
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            out.append(item)
    return tuple(out)


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
    """The distinct candidates, in order; `_Unenumerable` when there are too many or one is
    too long to keep whole (never a silent cut: the value past the cap may be the name)."""
    out: list[str] = []
    for v in values:
        if isinstance(v, str) and v not in out:
            if len(out) >= _MAX_CANDIDATES or len(v) > _MAX_CANDIDATE_TEXT:
                raise _Unenumerable
            out.append(v)
    return out


def _at_most(values: Iterable[Any], limit: int) -> list[Any]:
    """`values` as a list, `_Unenumerable` if there are more than `limit` of them."""
    out = list(itertools.islice(values, limit + 1))
    if len(out) > limit:
        raise _Unenumerable
    return out


def _union(groups: Iterable[list[str] | None]) -> list[str] | None:
    found = [g for g in groups if g is not None]
    return _cap(itertools.chain.from_iterable(found)) if found else None


def _product(groups: list[list[str] | None]) -> list[str] | None:
    tuples = _product_tuples(groups)
    return None if tuples is None else _cap("".join(t) for t in tuples)


def _product_tuples(groups: list[list[Any] | None]) -> list[tuple[Any, ...]] | None:
    if any(g is None for g in groups):
        return None
    return _at_most(itertools.product(*[g for g in groups if g is not None]), _MAX_COMBINATIONS)


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


def _safe_percent(fmt: str, args: tuple[Any, ...]) -> str | None:
    """`fmt % args` for short formats without widths or precisions (no memory blow-up).

    Anything else is unknown, not empty: `'%.2sclass%.2s'|format('__x', '__y')` renders
    `__class__`. Int literals are passed as ints (`'%c%cclass%c%c'|format(95, 95, 95, 95)`).
    """
    if len(fmt) > 512 or any(c.isdigit() or c == "*" for c in fmt.replace("%%", "")):
        return None
    try:
        return fmt % args
    except (TypeError, ValueError, KeyError, OverflowError):
        return None


def _safe_format(
    fmt: str, args: tuple[str, ...], kwargs: dict[str, str] | None = None
) -> str | None:
    if len(fmt) > 512 or ":" in fmt or "." in fmt or "[" in fmt or "!" in fmt:
        return None
    try:
        return fmt.format(*args, **(kwargs or {}))
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
    charge = max(len(source), _MIN_SOURCE_CHARGE)
    if budgets.fold.exhausted or budgets.source.used + charge > budgets.source.limit:
        if not budgets.reported:
            budgets.reported = True
            spent = budgets.fold if budgets.fold.exhausted else budgets.source
            report_budget(result, scanner.location(path), BudgetExceeded(spent.what, spent.limit))
        return
    budgets.source.charge(charge)
    analysis = analyse_template(source, budgets.fold)
    for finding in analysis.findings:
        result.add_issue(
            f"{finding.message} [{key}]",
            severity=finding.severity,
            location=scanner.location(path),
            details={"template_key": key, "line": finding.lineno},
            why=finding.why
            or (
                "Rendering the chat template (on every prompt) runs attacker-chosen Python "
                "or shell commands in renderers that are not sandboxed."
                if finding.severity is IssueSeverity.CRITICAL
                else "Ordinary chat templates never need this; it may be a step of an escape."
            ),
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
