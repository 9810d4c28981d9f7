"""What a Python file shipped with a model does, read with `ast` and never imported.

`trust_remote_code=True` imports `modeling_x.py` and instantiates the class `auto_map` names:
module-level code, class bodies, decorators, default values, lambdas called or handed to a
call, a class's metaclass and its bases' `__init_subclass__` run at import (so does a function
handed to `map`, `atexit.register` and the like; any execution primitive handed to a call
counts as called there); `__init__`
and the other methods `from_pretrained` calls run while the model loads; `forward` and the
rest run when it is used. Calls are resolved through the file's own imports and aliases
(`import subprocess as sp`, `from os import system as s`, `__import__("os").system`) and
sorted into behaviours. The walk is iterative and visits each node once; module functions
and methods reached from import time or load time are followed through a worklist, each
function once, so the work is linear in the file.

Unpickling ("deserialise": pickle/dill/cloudpickle/joblib `load`, `torch.load(weights_only=
False)`) is judged by where its data comes from, because MLflow's documented custom model
loads its artifacts exactly this way in `load_context`:
- a file the model ships (a path built from MLflow's `context.artifacts` or from `__file__`,
  directly or through a local name): INFO at any time. That file sits in the model's folder and
  is scanned as the model file it is, so the pickle itself is judged there, on its opcodes;
- a payload written into the code (a constant, a module-level name bound to one, or decoded
  bytes, directly or through locals and `io.BytesIO`) or read from the network: what runs is
  chosen by the file's author and never scanned as a file, so it is CRITICAL at import or
  load, like `exec` of the same bytes;
- any other file (`pickle.load`, `joblib.load`... of a path the code computes): CRITICAL at
  import, a WARNING at load (the loader unpickles data this scan never saw), a WARNING or
  INFO when only called. Bytes from elsewhere (`pickle.loads(x)`) stay CRITICAL at load.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

#: Behaviours that run code or commands: CRITICAL when reached at import or load time.
EXECUTION: Final = frozenset({"process", "code-exec", "decoded-code", "native", "deserialise"})
DESCRIPTIONS: Final[dict[str, str]] = {
    "process": "runs commands or starts processes",
    "code-exec": "executes or compiles Python code",
    "decoded-code": "decodes data (base64, zlib, hex, marshal) into code it runs",
    "native": "loads native libraries",
    "deserialise": "unpickles data",
    "network": "opens network connections or downloads",
    "file-write": "writes, moves or deletes files",
    "dynamic-import": "imports a module whose name is computed",
}
_PREFIXES: Final[tuple[tuple[str, str], ...]] = (
    ("os.system", "process"),
    ("os.popen", "process"),
    ("os.exec", "process"),
    ("os.spawn", "process"),
    ("os.posix_spawn", "process"),
    ("os.fork", "process"),
    ("os.startfile", "process"),
    ("posix.", "process"),
    ("nt.", "process"),
    ("subprocess.", "process"),
    ("_posixsubprocess.", "process"),
    ("pty.", "process"),
    ("commands.", "process"),
    ("asyncio.create_subprocess", "process"),
    ("multiprocessing.Process", "process"),
    ("multiprocessing.Pool", "process"),
    ("multiprocessing.Manager", "process"),
    ("multiprocessing.pool.", "process"),
    ("multiprocessing.popen_", "process"),
    ("multiprocessing.spawn.", "process"),
    ("multiprocessing.forkserver.", "process"),
    ("multiprocessing.process.BaseProcess", "process"),
    ("pexpect.", "process"),
    ("builtins.eval", "code-exec"),
    ("builtins.exec", "code-exec"),
    ("builtins.compile", "code-exec"),
    ("builtins.execfile", "code-exec"),
    ("runpy.", "code-exec"),
    ("code.", "code-exec"),
    ("types.FunctionType", "code-exec"),
    ("types.CodeType", "code-exec"),
    ("marshal.loads", "decoded-code"),
    ("marshal.load", "decoded-code"),
    ("ctypes.", "native"),
    ("_ctypes.", "native"),
    ("cffi.", "native"),
    ("torch.ops.load_library", "native"),
    ("pickle.load", "deserialise"),
    ("_pickle.load", "deserialise"),
    ("cPickle.load", "deserialise"),
    ("dill.load", "deserialise"),
    ("cloudpickle.load", "deserialise"),
    ("joblib.load", "deserialise"),
    ("pandas.read_pickle", "deserialise"),
    ("shelve.open", "deserialise"),
    ("socket.", "network"),
    ("ssl.", "network"),
    ("urllib.request.", "network"),
    ("urllib2.", "network"),
    ("http.client.", "network"),
    ("requests.", "network"),
    ("httpx.", "network"),
    ("aiohttp.", "network"),
    ("ftplib.", "network"),
    ("smtplib.", "network"),
    ("telnetlib.", "network"),
    ("paramiko.", "network"),
    ("webbrowser.", "network"),
    ("os.remove", "file-write"),
    ("os.unlink", "file-write"),
    ("os.rmdir", "file-write"),
    ("os.removedirs", "file-write"),
    ("os.rename", "file-write"),
    ("os.replace", "file-write"),
    ("os.chmod", "file-write"),
    ("os.chown", "file-write"),
    ("os.symlink", "file-write"),
    ("os.link", "file-write"),
    ("os.truncate", "file-write"),
    ("shutil.rmtree", "file-write"),
    ("shutil.move", "file-write"),
    ("shutil.copy", "file-write"),
    ("shutil.chown", "file-write"),
)
_DYNAMIC_IMPORTS: Final = frozenset(
    {
        "builtins.__import__",
        "importlib.import_module",
        "importlib.__import__",
        "importlib.util.spec_from_file_location",
        "importlib.util.module_from_spec",
        "importlib.machinery.SourceFileLoader",
        "imp.load_source",
        "imp.load_module",
        "pkgutil.resolve_name",
        "pydoc.locate",
    }
)
#: Calls whose result is code or bytes that become code when fed to an executor.
_DECODERS: Final = (
    "base64.",
    "binascii.a2b",
    "binascii.unhexlify",
    "codecs.decode",
    "zlib.decompress",
    "gzip.decompress",
    "lzma.decompress",
    "bz2.decompress",
    "bytes.fromhex",
    "builtins.bytes.fromhex",
)
_EXECUTORS: Final = frozenset(
    {
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "marshal.loads",
        "pickle.loads",
        "types.FunctionType",
    }
)
#: Method names that write files whatever the object (pathlib paths, file handles).
_WRITE_METHODS: Final = frozenset({"write_text", "write_bytes", "unlink", "rmtree", "rename"})
_BUILTINS: Final = frozenset({"eval", "exec", "compile", "__import__", "open", "execfile"})
#: Methods `from_pretrained` and friends call while the model loads (and `load_context`, which
#: `mlflow.pyfunc.load_model` calls on the `PythonModel` it unpickles).
LOAD_METHODS: Final = frozenset(
    {
        "load_context",
        "__init__",
        "__new__",
        "__init_subclass__",
        "__set_name__",
        "__class_getitem__",
        "__post_init__",
        "__setstate__",
        "__reduce__",
        "from_pretrained",
        "from_config",
        "from_dict",
        "_from_config",
        "post_init",
        "init_weights",
        "_init_weights",
        "_initialize_weights",
        "tie_weights",
        "_load_pretrained_model",
        "load_state_dict",
        "_load_from_state_dict",
        "register_for_auto_class",
    }
)
#: Module functions a loader calls while the model loads: `mlflow.pyfunc.load_model` imports
#: the MLmodel's `loader_module` and calls its `_load_pyfunc`, MLflow's contract for custom
#: flavors (nothing else calls it). Judged by that shape alone, the file is judged the same
#: when no MLmodel is beside it: a remote sweep scans an MLflow model's objects one by one.
LOAD_FUNCTIONS: Final = frozenset({"_load_pyfunc"})
#: Base-class names whose subclasses a loader instantiates (transformers, diffusers, torch).
_LOADABLE_BASE: Final = re.compile(
    r"(PreTrained|Pretrained|Config$|Configuration|Tokenizer|Processor|FeatureExtract|"
    r"ImageProcessing|Mixin$|Model$|Module$|Pipeline$|Scheduler)"
)
_MAX_NAMES: Final = 20


@dataclass
class Behaviour:
    kind: str
    name: str
    line: int
    when: str  # "import", "load" or "call"
    scope: str  # "<module>", "Class.method" or "function"
    #: Reached from a method of a class that loaders build (model, config, tokenizer).
    in_model: bool = False
    #: Where unpickled data comes from: "model" for a file the model ships (scanned on its
    #: own), "network", "inline" (written into the code), or "" when the scan cannot tell.
    source: str = ""


@dataclass
class Analysis:
    behaviours: list[Behaviour] = field(default_factory=list)
    classes: dict[str, list[str]] = field(default_factory=dict)

    def of_class(self, name: str) -> list[Behaviour]:
        """Behaviours reached at import time or from the class's own methods."""
        return self.of_classes(frozenset({name}))

    def of_classes(self, names: frozenset[str]) -> list[Behaviour]:
        """Behaviours reached at import time or from any of these classes' own methods (one
        pass, however many classes are named)."""
        members = {m for name in names for m in self.classes.get(name, ())}
        return [
            b
            for b in self.behaviours
            if b.when == "import" or b.scope.split(".", 1)[0] in names or b.scope in members
        ]


class _Resolver:
    """Dotted names of call targets through the file's imports."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.shadowed: set[str] = set()

    def learn(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    self.aliases[a.asname] = a.name
                else:
                    head = a.name.split(".", 1)[0]
                    self.aliases[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def bound(self, node: ast.AST) -> bool:
        """Whether the call target's root is an import, a builtin or `__import__(...)`: a
        local variable named `code`, `socket` or `requests` is no module."""
        while isinstance(node, ast.Attribute):
            node = node.value
        if isinstance(node, ast.Name):
            return node.id in self.aliases or (
                node.id in _BUILTINS and node.id not in self.shadowed
            )
        return isinstance(node, ast.Call) or _builtins_item(node) is not None

    def name(self, node: ast.AST) -> str | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            root = node.id
            if root in self.aliases:
                base = self.aliases[root]
            elif root in _BUILTINS and root not in self.shadowed:
                base = f"builtins.{root}"
            else:
                base = root
        elif _builtins_item(node) is not None:
            base = f"builtins.{_builtins_item(node)}"
        elif isinstance(node, ast.Call):
            inner = self.name(node.func)
            if inner in ("builtins.__import__", "importlib.import_module") and _literal(node):
                base = _literal(node) or ""
            else:
                return None
        else:
            return None
        return ".".join([base, *reversed(parts)])


def _builtins_item(node: ast.AST) -> str | None:
    """`__builtins__["exec"]`: the builtins namespace indexed by a constant name."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "__builtins__"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.slice.value
    return None


def _literal(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _kind(name: str, call: ast.Call, resolver: _Resolver) -> str | None:
    if resolver.bound(call.func):
        if name in _DYNAMIC_IMPORTS:
            return None if _literal(call) else "dynamic-import"
        if name in _EXECUTORS and call.args and _decodes(call.args[0], resolver):
            return "decoded-code"
        if name == "torch.load" and _keyword_is(call, "weights_only", False):
            return "deserialise"
        for prefix, kind in _PREFIXES:
            if name == prefix or name.startswith(prefix):
                return kind
    if name == "builtins.open" and _writes(call):
        return "file-write"
    leaf = name.rsplit(".", 1)[-1]
    if leaf in _WRITE_METHODS and "." in name:
        return "file-write"
    return None


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(
        kw.arg == name and isinstance(kw.value, ast.Constant) and kw.value.value is value
        for kw in call.keywords
    )


def _decodes(node: ast.AST, resolver: _Resolver) -> bool:
    """Whether data handed to an executor is decoded or written into the code (an inline
    payload: `pickle.loads(b"\\x80...")`, `eval("...")`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        return True
    return _bytes_in_code(node, resolver)


def _bytes_in_code(node: ast.AST, resolver: _Resolver) -> bool:
    """Whether an expression makes bytes out of the code itself: a bytes constant, a decoder
    or `.encode()` (a text constant is not enough: handed to a file loader it is a path)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, bytes):
            return True
        if isinstance(sub, ast.Call):
            inner = resolver.name(sub.func) or ""
            if inner.startswith(_DECODERS) or inner.endswith((".decode", ".fromhex")):
                return True
            if isinstance(sub.func, ast.Attribute) and sub.func.attr == "encode":
                return True
    return False


def _from_model(node: ast.AST, local: frozenset[str]) -> bool:
    """Whether a path expression is built from the model's own files: MLflow's
    `context.artifacts` (paths inside the model's folder), `__file__`, or a local name bound
    only to such paths."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr == "artifacts":
            return True
        if isinstance(sub, ast.Name) and (sub.id == "__file__" or sub.id in local):
            return True
    return False


#: Rounds of following a local through the names it is built from (`raw = resp.read()`).
_PROVENANCE_ROUNDS: Final = 8


class _Provenance:
    """Where the locals of one function body come from, worked out when the body first
    unpickles something (most bodies never do)."""

    def __init__(
        self, body: list[ast.stmt], resolver: _Resolver, constants: frozenset[str]
    ) -> None:
        self.resolver = resolver
        self.constants = constants
        self.bindings = _bindings(body)
        self.model = _settle(self.bindings, _from_model, every=True)
        self.network = _settle(self.bindings, self._reads_network, every=False)
        self.inline = _settle(self.bindings, self._written_in, every=False)

    def _written_in(self, node: ast.AST, tainted: frozenset[str]) -> bool:
        """Whether data is written into the code: bytes made from it (`_bytes_in_code`) or
        a name bound to such bytes (`io.BytesIO(b64decode(P))`, `P.encode()`, `B = b"..."`)."""
        if _bytes_in_code(node, self.resolver):
            return True
        return any(
            isinstance(sub, ast.Name) and (sub.id in tainted or sub.id in self.constants)
            for sub in ast.walk(node)
        )

    def _reads_network(self, node: ast.AST, tainted: frozenset[str]) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in tainted:
                return True
            if isinstance(sub, ast.Call):
                name = self.resolver.name(sub.func) or ""
                if any(name.startswith(p) for p, kind in _PREFIXES if kind == "network"):
                    return True
        return False

    def source(self, call: ast.Call) -> str:
        """Where the data a deserialising call reads comes from (see the module docstring)."""
        handed = [*call.args, *(k.value for k in call.keywords if k.arg != "weights_only")]
        if any(self._reads_network(arg, self.network) for arg in handed):
            return "network"
        if any(self._written_in(arg, self.inline) for arg in handed):
            return "inline"
        if handed and all(_from_model(arg, self.model) for arg in call.args[:1] or handed):
            return "model"
        return ""


def _module_constants(tree: ast.Module, resolver: _Resolver) -> frozenset[str]:
    """Module-level names bound to bytes written into the file (`_bytes_in_code`): what a
    function that unpickles them runs is the file's own payload."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            if not _bytes_in_code(node.value, resolver):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)


def _bindings(body: list[ast.stmt]) -> dict[str, list[ast.AST]]:
    """Each local name of the body with the expressions bound to it."""
    bindings: dict[str, list[ast.AST]] = {}
    for node in _bodies(body):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        bindings.setdefault(sub.id, []).append(node.value)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            for sub in ast.walk(node.optional_vars):
                if isinstance(sub, ast.Name):
                    bindings.setdefault(sub.id, []).append(node.context_expr)
        elif isinstance(node, ast.For | ast.NamedExpr | ast.AugAssign):
            target = node.target
            value = node.iter if isinstance(node, ast.For) else node.value
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    # the loop variable or the updated name: not a model path, but it
                    # carries what it is built from
                    bindings.setdefault(sub.id, []).extend((target, value))
    return bindings


def _settle(
    bindings: dict[str, list[ast.AST]],
    holds: Callable[[ast.AST, frozenset[str]], bool],
    *,
    every: bool,
) -> frozenset[str]:
    """The names whose bindings (`every` one, or any one) `holds` for, given the names found
    so far, followed through `_PROVENANCE_ROUNDS` rounds."""
    found: frozenset[str] = frozenset()
    test = all if every else any
    for _ in range(_PROVENANCE_ROUNDS):
        grown = frozenset(
            name
            for name, values in bindings.items()
            if test(holds(v, found) and not _names_self(v, name) for v in values)
        )
        if grown == found:
            break
        found = grown
    return found


def _names_self(value: ast.AST, name: str) -> bool:
    return isinstance(value, ast.Name) and value.id == name


def _writes(call: ast.Call) -> bool:
    mode: ast.AST | None = call.args[1] if len(call.args) > 1 else None
    for kw in call.keywords:
        if kw.arg == "mode":
            mode = kw.value
    return (
        isinstance(mode, ast.Constant)
        and isinstance(mode.value, str)
        and any(c in mode.value for c in "wax+")
    )


def _loadable(cls: ast.ClassDef, resolver: _Resolver) -> bool:
    for base in cls.bases:
        name = resolver.name(base) or ""
        if _LOADABLE_BASE.search(name.rsplit(".", 1)[-1]) or name.startswith("torch.nn."):
            return True
    return False


def _is_main_guard(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def _applied(decorator: ast.expr) -> ast.AST:
    """A bare decorator is a call of it when the def runs."""
    if isinstance(decorator, ast.Call):
        return decorator
    call = ast.Call(func=decorator, args=[], keywords=[])
    return ast.copy_location(call, decorator)


def _bodies(nodes: list[ast.stmt]) -> Iterator[ast.AST]:
    """Nodes that run when these statements run: not the bodies of nested functions (their
    decorators and defaults do run), not `if __name__ == "__main__":` blocks."""
    stack: list[ast.AST] = list(reversed(nodes))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            stack.extend(_applied(d) for d in node.decorator_list)
            stack.extend(node.args.defaults)
            stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        if isinstance(node, ast.ClassDef):
            stack.extend(_applied(d) for d in node.decorator_list)
            stack.extend(node.bases)
            stack.extend(kw.value for kw in node.keywords)
            stack.extend(reversed(node.body))
            continue
        if isinstance(node, ast.Lambda):
            stack.extend(node.args.defaults)
            stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        if isinstance(node, ast.Call):
            # a lambda called where it is written, or handed to a call (map, atexit.register,
            # Thread(target=...)), runs with that call
            handed = [node.func, *node.args, *(k.value for k in node.keywords)]
            stack.extend(sub.body for sub in handed if isinstance(sub, ast.Lambda))
        if _is_main_guard(node):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def analyse(tree: ast.Module, loaded: frozenset[str] = frozenset()) -> Analysis:
    """Behaviours of a parsed module, each tagged with the earliest time it runs; classes in
    `loaded` (named by a config's auto_map) are built at load time whatever their bases."""
    out = Analysis()
    resolver = _Resolver()
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    classdefs: dict[str, ast.ClassDef] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            resolver.learn(node)
    constants = _module_constants(tree, resolver)
    # import time, load time, a model's other methods, everything else: each function is
    # analysed once, at the earliest of these it is reached from
    queues: tuple[deque[tuple[str, list[ast.stmt]]], ...] = tuple(deque() for _ in range(4))
    queues[0].append(("<module>", tree.body))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions[node.name] = node
            resolver.shadowed.add(node.name)
            queues[1 if node.name in LOAD_FUNCTIONS else 3].append((node.name, node.body))
        elif isinstance(node, ast.ClassDef):
            out.classes[node.name] = []
            classdefs[node.name] = node
            load = node.name in loaded or _loadable(node, resolver)
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    scope = f"{node.name}.{item.name}"
                    methods[scope] = item
                    out.classes[node.name].append(scope)
                    rank = (1 if item.name in LOAD_METHODS else 2) if load else 3
                    queues[rank].append((scope, item.body))
    seen: set[str] = set()
    whens = ("import", "load", "call", "call")
    while any(queues):
        rank = next(i for i, q in enumerate(queues) if q)
        scope, body = queues[rank].popleft()
        in_model = rank in (1, 2)
        if scope in seen:
            continue
        seen.add(scope)
        when = whens[rank]
        cls = scope.split(".", 1)[0] if "." in scope else ""
        provenance: _Provenance | None = None
        for node in _bodies(body):
            if isinstance(node, ast.ClassDef):
                for hook in _creation_hooks(node, resolver, classdefs):
                    if hook in methods and hook not in seen:
                        queues[rank].append((hook, methods[hook].body))
                continue
            if not isinstance(node, ast.Call):
                continue
            name = resolver.name(node.func)
            if name is None:
                continue
            kind = _kind(name, node, resolver)
            if kind:
                line = getattr(node, "lineno", 0)
                source = ""
                if kind == "deserialise":
                    provenance = provenance or _Provenance(body, resolver, constants)
                    source = provenance.source(node)
                out.behaviours.append(Behaviour(kind, name, line, when, scope, in_model, source))
            targets = [_local_target(name, cls, functions, methods, out.classes)]
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                handed = resolver.name(arg) if isinstance(arg, ast.Name | ast.Attribute) else None
                if handed is None:
                    continue
                kind = _handed_kind(handed, arg, resolver)
                if kind:
                    line = getattr(arg, "lineno", 0)
                    out.behaviours.append(Behaviour(kind, handed, line, when, scope, in_model))
                if _runs_its_argument(name, resolver):
                    targets.append(_local_target(handed, cls, functions, methods, out.classes))
            for target in targets:
                if target and target not in seen:
                    fn = functions[target] if target in functions else methods[target]
                    queues[rank].append((target, fn.body))
    return out


def _handed_kind(name: str, node: ast.AST, resolver: _Resolver) -> str | None:
    """A function handed to a call (`map(os.system, cmds)`, `Thread(target=os.system)`,
    `atexit.register(subprocess.run, ...)`) runs as if called there; constants and exception
    classes (`subprocess.PIPE`, `subprocess.CalledProcessError`) are not functions."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf.isupper() or leaf.endswith(("Error", "Exception", "Warning", "Expired")):
        return None
    if not resolver.bound(node):
        return None
    for prefix, kind in _PREFIXES:
        if (name == prefix or name.startswith(prefix)) and kind in EXECUTION:
            return kind
    return None


#: Calls that run (or schedule) the function handed to them; a local function handed to any
#: other call is only registered (`replace_method(C, "spawn", f)`), and runs when used.
_RUNS_ARGUMENT: Final = frozenset(
    {
        "map", "filter", "sorted", "min", "max", "functools.reduce", "itertools.starmap",
        "itertools.filterfalse", "itertools.takewhile", "itertools.dropwhile",
        "itertools.accumulate", "itertools.groupby", "atexit.register", "threading.Thread",
        "threading.Timer", "signal.signal", "sys.settrace", "sys.setprofile",
        "concurrent.futures.ThreadPoolExecutor.submit", "multiprocessing.Process",
    }
)  # fmt: skip


def _runs_its_argument(name: str, resolver: _Resolver) -> bool:
    return name in _RUNS_ARGUMENT and name.split(".", 1)[0] not in resolver.shadowed


#: Methods of a base class or metaclass that run when a class statement is executed.
_SUBCLASS_HOOKS: Final = ("__init_subclass__", "__set_name__")
_METACLASS_HOOKS: Final = ("__prepare__", "__new__", "__init__")


def _creation_hooks(
    node: ast.ClassDef, resolver: _Resolver, classdefs: dict[str, ast.ClassDef]
) -> Iterator[str]:
    """`Cls.method` scopes of this file that run when the class statement runs: the
    `__init_subclass__` of its bases (and theirs) and its metaclass's creation methods."""
    seen: set[str] = set()
    todo = [b for b in node.bases]
    todo += [kw.value for kw in node.keywords if kw.arg == "metaclass"]
    metas = {id(kw.value) for kw in node.keywords if kw.arg == "metaclass"}
    while todo:
        ref = todo.pop()
        name = resolver.name(ref) or ""
        if name not in classdefs or name in seen:
            continue
        seen.add(name)
        hooks = _METACLASS_HOOKS if id(ref) in metas else _SUBCLASS_HOOKS
        yield from (f"{name}.{hook}" for hook in hooks)
        parent = classdefs[name]
        todo += parent.bases
        for kw in parent.keywords:
            if kw.arg == "metaclass":
                metas.add(id(kw.value))
                todo.append(kw.value)


def _local_target(
    name: str,
    cls: str,
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef],
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef],
    classes: dict[str, list[str]],
) -> str | None:
    """The function or method of this file a call runs: `f()`, `self.m()`, `Cls()`."""
    if name in functions:
        return name
    if name in classes:
        init = f"{name}.__init__"
        return init if init in methods else None
    if cls and name.startswith("self.") and f"{cls}.{name[5:]}" in methods:
        return f"{cls}.{name[5:]}"
    if "." in name and name in methods:
        return name
    return None


__all__ = [
    "DESCRIPTIONS",
    "EXECUTION",
    "LOAD_FUNCTIONS",
    "LOAD_METHODS",
    "Analysis",
    "Behaviour",
    "analyse",
]
