"""Which `.save(...)`-like calls in TorchScript source call a scripted class's own method.

torch.jit.save writes a call of a submodule's method `save` as `sub = self.sub` then
`(sub).save(x, )`: token for token an aliased `m = torch; (m).save(x, )`. TorchScript
resolves the receiver by its static type: a method's first parameter is its class, an
attribute has the type the class body declares (`sub : __torch__.m.Sub`,
`__annotations__["0"] = __torch__.m.Sub` for `getattr(self, "0")`), and
`__torch__.m.C.__new__(__torch__.m.C)` is a new `C`. A call is the class's own method
when its receiver is built only from those, through locals bound once and before the
call in an enclosing block, and every class of that name the archive defines has the
method. Anything else (an alias of `torch`, `ops.aten`, a local bound twice or in a
branch, an undeclared or unresolvable attribute, a class without the method, a
torchbind class) is still judged as the builtin. The source is parsed with `ast`, never
compiled or run; each walk visits a node once, and chains and candidate lists are capped.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

#: Sources larger than this are not parsed (an `ast` tree costs ~150 bytes per source byte).
MAX_PARSED: Final = 1 << 20
#: More classes of one name than this, or a longer receiver chain, is not resolved.
_MAX_CANDIDATES: Final = 8
_MAX_CHAIN: Final = 64
#: Types that name C++ (torchbind) classes, whose methods are not in the archive.
_NATIVE: Final = "__torch__.torch.classes."


@dataclass(frozen=True)
class ScriptClass:
    """A class the archive's source defines: its methods and declared attribute types
    (None when an attribute is declared twice or not as a plain class name)."""

    name: str
    module: str | None
    methods: frozenset[str]
    attrs: Mapping[str, str | None]

    @classmethod
    def of(cls, node: ast.ClassDef, module: str | None) -> ScriptClass:
        attrs: dict[str, str | None] = {}
        for stmt in node.body:
            key, declared = _declaration(stmt)
            if key is not None:
                attrs[key] = None if key in attrs else declared
        methods = frozenset(
            s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
        return cls(node.name, module, methods, attrs)


def _declaration(stmt: ast.stmt) -> tuple[str | None, str | None]:
    """`name : T` or `__annotations__["name"] = T` in a class body."""
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id, _dotted(stmt.annotation)
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(target := stmt.targets[0], ast.Subscript)
        and isinstance(target.value, ast.Name)
        and target.value.id == "__annotations__"
        and isinstance(target.slice, ast.Constant)
        and isinstance(target.slice.value, str)
    ):
        return target.slice.value, _dotted(stmt.value)
    return None, None


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` as a string; None for anything but names and attributes."""
    parts: list[str] = []
    for _ in range(_MAX_CHAIN):
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        else:
            return None
    return None


def parse(text: str) -> ast.Module | None:
    """The source's tree; None when too large or not Python (torch's parser is more
    lenient), or when its line ends (`\\r`) could number lines unlike `tokenize`."""
    if len(text) > MAX_PARSED or "\r" in text:
        return None
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


class ClassIndex:
    """The classes of every source in an archive, by qualified name (`__torch__.m.C`,
    when the source's module is known from its path) or by name (a flatbuffer's text runs).
    A source that could not be parsed makes its module's names unresolvable."""

    def __init__(self) -> None:
        self._qualified: dict[str, list[ScriptClass]] = {}
        self._unqualified: dict[str, list[ScriptClass]] = {}
        self._opaque: set[str | None] = set()

    def add(self, text: str, module: str | None) -> None:
        tree = parse(text)
        if tree is None:
            self._opaque.add(module)
            return
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.add_class(ScriptClass.of(node, module))

    def add_class(self, c: ScriptClass) -> None:
        if c.module is None:
            self._unqualified.setdefault(c.name, []).append(c)
        else:
            self._qualified.setdefault(f"{c.module}.{c.name}", []).append(c)

    def resolve(self, type_name: str | None) -> tuple[ScriptClass, ...]:
        """Every class the type may name; empty when it may name one not in the index."""
        if (
            type_name is None
            or not type_name.startswith("__torch__.")
            or type_name.startswith(_NATIVE)
        ):
            return ()
        module, _, name = type_name.rpartition(".")
        if None in self._opaque or module in self._opaque:
            return ()
        exact = self._qualified.get(type_name, [])
        loose = self._unqualified.get(name, [])
        if len(exact) + len(loose) > _MAX_CANDIDATES:
            return ()
        return (*exact, *loose)


_NAMED: Final = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.ExceptHandler,
    ast.MatchAs,
    ast.MatchStar,
)


def _bindings(scope: ast.AST) -> Counter[str]:
    """How often each name is bound (assigned, deleted, a parameter, a loop or `with`
    target, imported, declared global) anywhere in `scope`, nested scopes included."""
    bound: Counter[str] = Counter()
    for node in ast.walk(scope):
        names: Iterable[str | None] = ()
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names = (node.id,)
        elif isinstance(node, ast.arg):
            names = (node.arg,)
        elif isinstance(node, _NAMED):
            names = (node.name,)
        elif isinstance(node, ast.alias):
            names = ((node.asname or node.name).split(".")[0],)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names = (*node.names, *node.names)
        elif isinstance(node, ast.MatchMapping):
            names = (node.rest,)
        bound.update(n for n in names if n)
    return bound


class _Function:
    """One method or top-level function: its locals that hold a scripted object, and the
    calls of a file-op method on one."""

    def __init__(
        self,
        fn: ast.FunctionDef | ast.AsyncFunctionDef,
        index: ClassIndex,
        file_bound: Counter[str],
        names: frozenset[str],
    ) -> None:
        self.index = index
        self.names = names
        self.bound = _bindings(fn)
        #: `getattr` and `__torch__` mean torch's own only if the file never rebinds them.
        self.getattr_ok = file_bound["getattr"] == 0
        self.torch_ok = file_bound["__torch__"] == 0
        self.env: dict[str, tuple[ScriptClass, ...]] = {}

    def bind_self(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, owner: ScriptClass) -> None:
        """A method's first parameter is its class (the annotation torch writes agrees)."""
        params = [*fn.args.posonlyargs, *fn.args.args]
        if fn.decorator_list or not params or self.bound[params[0].arg] != 1:
            return
        first = params[0]
        if first.annotation is not None:
            declared = _dotted(first.annotation)
            wanted = f"{owner.module}.{owner.name}" if owner.module else None
            if declared is None or declared.rpartition(".")[2] != owner.name:
                return
            if wanted is not None and declared != wanted:
                return
        self.env[first.arg] = (owner,)

    def method_calls(self, body: list[ast.stmt]) -> Iterator[ast.Attribute]:
        """Walk the statements in order; a local enters `env` at its one binding and
        leaves it when its block ends, so a use is matched only where that binding
        dominates it."""
        stack: list[tuple[list[ast.stmt], int, list[str]]] = [(body, 0, [])]
        while stack:
            block, i, added = stack.pop()
            if i == len(block):
                for name in added:
                    del self.env[name]
                continue
            stack.append((block, i + 1, added))
            stmt = block[i]
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            exprs, blocks = _parts(stmt)
            for expr in exprs:
                yield from self._calls_in(expr)
            local = self._local(stmt)
            if local is not None:
                added.append(local)
            stack.extend((b, 0, []) for b in reversed(blocks))

    def _local(self, stmt: ast.stmt) -> str | None:
        """`name = <receiver>` where this is the name's only binding in the function."""
        if not (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(target := stmt.targets[0], ast.Name)
            and self.bound[target.id] == 1
            and target.id not in self.env
        ):
            return None
        classes = self.receiver(stmt.value)
        if not classes:
            return None
        self.env[target.id] = classes
        return target.id

    def _calls_in(self, expr: ast.AST) -> Iterator[ast.Attribute]:
        for node in ast.walk(expr):
            if (
                isinstance(node, ast.Call)
                and isinstance(func := node.func, ast.Attribute)
                and func.attr in self.names
            ):
                classes = self.receiver(func.value)
                if classes and all(func.attr in c.methods for c in classes):
                    yield func

    def receiver(self, node: ast.expr) -> tuple[ScriptClass, ...]:
        """The classes an expression's value may be an instance of; empty unless it is a
        bound local or `self`, then attributes and `getattr(x, "literal")` of it, or a
        `__new__` of a named class."""
        keys: list[str] = []
        for _ in range(_MAX_CHAIN):
            if isinstance(node, ast.Attribute):
                keys.append(node.attr)
                node = node.value
            elif (step := self._getattr(node)) is not None:
                node, key = step
                keys.append(key)
            else:
                break
        else:
            return ()
        if isinstance(node, ast.Name):
            classes = self.env.get(node.id, ())
        else:
            classes = self.index.resolve(self._new_of(node))
        for key in reversed(keys):
            declared = {c.attrs.get(key) for c in classes}
            if len(declared) != 1:
                return ()
            classes = self.index.resolve(declared.pop())
        return classes

    def _getattr(self, node: ast.expr) -> tuple[ast.expr, str] | None:
        """`getattr(x, "0")`, the way torch writes a ModuleList's or Sequential's items."""
        if (
            self.getattr_ok
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) == 2
            and not node.keywords
            and isinstance(key := node.args[1], ast.Constant)
            and isinstance(key.value, str)
        ):
            return node.args[0], key.value
        return None

    def _new_of(self, node: ast.expr) -> str | None:
        """`__torch__.m.C.__new__(__torch__.m.C)`, the way torch writes `C(...)`."""
        if not (
            self.torch_ok
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__new__"
            and len(node.args) == 1
            and not node.keywords
        ):
            return None
        named = _dotted(node.func.value)
        return named if named is not None and named == _dotted(node.args[0]) else None


def _parts(stmt: ast.stmt) -> tuple[list[ast.AST], list[list[ast.stmt]]]:
    """A statement's own expressions, and its nested blocks (bodies, branches, handlers)."""
    exprs: list[ast.AST] = []
    blocks: list[list[ast.stmt]] = []
    for _field, value in ast.iter_fields(stmt):
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            blocks.append(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, (ast.excepthandler, ast.match_case)):
                    inner, nested = _parts(item)  # type: ignore[arg-type]
                    exprs += inner
                    blocks += nested
                elif isinstance(item, ast.AST):
                    exprs.append(item)
        elif isinstance(value, ast.AST):
            exprs.append(value)
    return exprs, blocks


def method_call_positions(
    text: str, index: ClassIndex, module: str | None, names: frozenset[str]
) -> set[tuple[int, int]]:
    """(line, column) of each of `names` in the source that is called as a scripted
    class's own method, in `tokenize`'s coordinates (columns in characters)."""
    tree = parse(text)
    if tree is None:
        return set()
    file_bound = _bindings(tree)
    calls: list[ast.Attribute] = [*_method_name(tree, index, file_bound, names)]
    for owner, fns in _functions(tree, module):
        for fn in fns:
            walk = _Function(fn, index, file_bound, names)
            if owner is not None:
                walk.bind_self(fn, owner)
            calls += walk.method_calls(fn.body)
    lines = None if text.isascii() else text.split("\n")
    found: set[tuple[int, int]] = set()
    for func in calls:
        line, end = func.end_lineno, func.end_col_offset
        if line is None or end is None:
            continue
        start = end - len(func.attr)
        if lines is not None:
            start = len(lines[line - 1].encode()[:start].decode("utf-8", "replace"))
        found.add((line, start))
    return found


def _method_name(
    tree: ast.Module, index: ClassIndex, file_bound: Counter[str], names: frozenset[str]
) -> Iterator[ast.Attribute]:
    """A source that is only a method's qualified name (`__torch__.m.Sub.save`, a string of a
    flatbuffer's function table, read as a text run) when the class defines the method."""
    if len(tree.body) != 1 or file_bound["__torch__"]:
        return
    stmt = tree.body[0]
    if (
        isinstance(stmt, ast.Expr)
        and isinstance(name := stmt.value, ast.Attribute)
        and name.attr in names
    ):
        classes = index.resolve(_dotted(name.value))
        if classes and all(name.attr in c.methods for c in classes):
            yield name


def _functions(
    tree: ast.Module, module: str | None
) -> Iterator[tuple[ScriptClass | None, list[ast.FunctionDef | ast.AsyncFunctionDef]]]:
    """Top-level functions and the methods of top-level classes (nested ones are not
    analyzed, so each node is walked once)."""
    defs = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, defs):
            yield None, [node]
        elif isinstance(node, ast.ClassDef):
            yield ScriptClass.of(node, module), [s for s in node.body if isinstance(s, defs)]
