"""Inert symbolic stand-ins for everything a pickle imports, and the record of what it does.

The unpickler only ever receives these stubs from `find_class` and `persistent_load`, so no
real callable is reachable. Calling a stub, `__setstate__`, item assignment or append on it are
recorded and judged as they happen, so a stream that breaks later keeps what it did before.
Stubs for globals are classes (NEWOBJ insists on a type); results of allowed calls are cheap
slotted instances, since a real model makes millions of them.
"""

from __future__ import annotations

import _compat_pickle
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from ...findings import Issue, IssueSeverity, ScanResult
from ...rules import pickle as R
from . import deferred, instance_hooks, policy, pure_code
from .deferred import Later
from .exec_state import TEMPLATE_KEY, foreign_template, template_of
from .policy import DANGER, SAFE, SHAPE, UNKNOWN, Verdict

_MAX_ISSUES = 200
#: Bytes of nested pickles one stream may hand to loaders (each distinct payload once).
NESTED_BUDGET = 512 << 20
_ESCAPING = frozenset({"getattr", "resolve2", "getitem", "dill_namedtuple"})
#: Callables that take a class as an argument without calling it (NEWOBJ's helpers, the
#: getattr walk); `_reconstructor`'s base is judged by `Session.base_init`.
_TAKES_CLASSES = frozenset(
    {"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__", "builtins.getattr"}
)
#: Wrappers that call their first argument only when they are called themselves: a partial of
#: a call-judged class is judged where the partial is called (a stored partial is a factory).
_PARTIALS = frozenset({"functools.partial", "functools.partialmethod"})
#: Allowed callables with a side job in `Session.call` (one set lookup per allowed call):
#: partials keep what they wrap, `_reconstructor` may call its base, registrars
#: (`deferred.py`) set up a call of what they are handed.
_SAFE_HOOKS = _PARTIALS | {"copyreg._reconstructor"} | deferred.NAMES
#: Nested partials and registrars handing a registrar over are followed this deep.
_FORWARD_DEPTH = 8
#: Registrations remembered per stream so that a partial's later BUILD is judged again.
#: Not a bypass past it: what a BUILD can swap in is judged by itself (a dangerous global at
#: import, a resolver by `check_escape`, a call-judged class by `partial_swap`).
_MAX_HELD = 1024
#: Handed-over calls one stream may have followed (`Session.forward`): registrars and
#: partials nest, and the memo lets a few hundred bytes share one formatter table at every
#: level, so the tree they describe can be exponential; past this the file is inconclusive.
FORWARD_BUDGET = 1 << 16
#: Argument values one stream's calls may have looked at for callables handed over
#: (`Session.check_handed_over`), and arguments of the calls registrars and partials set up
#: (`Session.register`, `Session.forward`: every one, not the first 16): each call's
#: arguments are read whole, and a tuple shared through the memo by many calls is read each
#: time; past this the file is inconclusive.
HANDED_BUDGET = 1 << 23
#: Values one stream's calls may have looked at for resolvers handed over
#: (`Session.check_escape`): each argument and every value inside a list, tuple, set or dict
#: among them, however deep, read again by each call a container is shared with through the
#: memo; past this the file is inconclusive.
ESCAPE_BUDGET = 1 << 23
_SAFE_CODECS = frozenset(
    {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1", "utf-8", "utf8", "ascii", "bytes"}
)
#: First characters of a latin-1 string that may hold raw pickle bytes (protocol 2 bytes).
_PICKLE_HEADS = frozenset("\x80cx\x1f")
_GETITEM_CALLS = frozenset(
    {
        "builtins.dict.get",
        "builtins.dict.pop",
        "builtins.dict.setdefault",
        "builtins.dict.__getitem__",
    }
)
_SAFE_DILL_TYPES = frozenset(
    {
        "NoneType",
        "EllipsisType",
        "NotImplementedType",
        "list",
        "dict",
        "tuple",
        "set",
        "frozenset",
        "bytes",
        "bytearray",
        "str",
        "int",
        "float",
        "complex",
        "bool",
        "object",
        "type",
        "slice",
        "range",
        "PartialType",
        "SuperType",
        "OrderedDictType",
    }
)
_WRAPPERS = frozenset(
    {
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle_compat.NDArrayWrapper",
        "joblib.numpy_pickle_compat.ZNDArrayWrapper",
        "joblib.numpy_pickle.NDArrayWrapper",
        "joblib.numpy_pickle.ZNDArrayWrapper",
    }
)
#: Calls whose arguments and state the joblib reader needs (array wrappers and dtypes).
_KEEP = _WRAPPERS | {"numpy.dtype"}
#: Allowed callables whose result may itself be a class (and so the cls of a NEWOBJ).
_TYPE_RESULTS = frozenset({"builtins.type"})
_RECONSTRUCTOR = "copyreg._reconstructor"
_NEWOBJ = frozenset({"copyreg.__newobj__", "copyreg.__newobj_ex__"})


class JoblibLayout(Exception):
    """Raised inside the C unpickler when joblib's inline array layout is detected."""


def render(value: Any, depth: int = 0) -> str:
    """A short symbolic rendering of a call argument for finding messages.

    Bounded whatever the value: containers are shown two levels deep, four items each, and
    never through `repr` (a pickle's tuples can share substructure, so a recursive repr of a
    few hundred bytes of opcodes can take forever).
    """
    if isinstance(value, _SymMeta):
        return value._ma_name
    if isinstance(value, Later):
        return f"<{value.label}>"
    if isinstance(value, Obj):
        return f"{value.name}(...)"
    if isinstance(value, (str, bytes)):
        text = repr(value[:64])
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, (tuple, list)):
        if depth >= 2:
            return "(...)" if isinstance(value, tuple) else "[...]"
        inner = ", ".join(render(v, depth + 1) for v in value[:4])
        more = ", ..." if len(value) > 4 else ""
        return f"({inner}{more})" if isinstance(value, tuple) else f"[{inner}{more}]"
    if isinstance(value, dict):
        return f"{{...{len(value)} items}}"
    if isinstance(value, (set, frozenset, bytearray)):
        return f"<{type(value).__name__} of {len(value)}>"
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 128 else f"<int of {value.bit_length()} bits>"
    return f"<{type(value).__name__}>"


def render_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> str:
    parts = [render(a) for a in args[:4]]
    if len(args) > 4:
        parts.append("...")
    if kwargs:
        parts.extend(f"{k}={render(v)}" for k, v in list(kwargs.items())[:3])
    return f"{name}({', '.join(parts)})"


class Session:
    """Everything one pickle did, judged as it happens."""

    def __init__(
        self,
        result: ScanResult,
        location: Callable[[int | None], str],
        proto: int,
        *,
        joblib: bool = False,
        pos: Callable[[], int] | None = None,
    ) -> None:
        self.result = result
        self.location = location
        self.proto = proto
        self.joblib = joblib
        self.pos = pos
        self.n_globals = 0
        self.n_calls = 0
        self.globals: list[str] = []
        self._seen_globals: set[str] = set()
        self._messages: set[str] = set()
        #: (event kind, ordinal, issue) for position pinning after the stream.
        self.events: list[tuple[str, int, Issue]] = []
        self.escapers: set[int] = set()
        #: Globals judged when called (loads-by-name classes): handed to another callable
        #: (partial, map, filter, numpy.vectorize...) they are called out of sight.
        self.call_judged: set[int] = set()
        #: Code objects verified by `pure_code.py` and the functions cloudpickle made of them.
        self.carried = pure_code.Carried()
        #: A call-judged global was imported: what calls are handed may call it out of sight
        #: (`judged_handover`); one test per call until then.
        self.handover = False
        #: The handover check is on for a loads-by-name global (not only for cloudpickle's
        #: code type, which needs it only while the stream may still carry verified code).
        self.handover_by_name = False
        #: Partials registered or handed over, by id: (partial, via, arguments it gets or
        #: None when only handed over); judged again when a later BUILD changes them.
        self.held: dict[int, list[tuple[Obj, str, tuple[Any, ...] | None, Any]]] = {}
        self.n_held = 0
        #: Instances a BUILD gave a `__setstate__` of their own, by id: (instance, callable);
        #: their next BUILD calls it (`instance_hooks.py`).
        self.build_hooks: dict[int, tuple[Obj, Any]] = {}
        self.forward_left = FORWARD_BUDGET
        self.forward_over = False
        self.handed_left = HANDED_BUDGET
        self.handed_over = False
        self.escape_left = ESCAPE_BUDGET
        self.escape_over = False
        self.nested: list[tuple[bytes, bool, str, bool]] = []
        #: Objects already queued (kept alive so their ids stay theirs) and the bytes queued:
        #: one payload fetched from the memo a million times is scanned once.
        self._queued: dict[int, Any] = {}
        self.nested_bytes = 0
        self.nested_over = False
        self._classes: dict[tuple[str, str], type] = {}
        self.issue_count = 0
        self.meaningful = False
        self.need_globals = 0
        self.need_calls = 0
        self.need_all = False
        self._persistent_stub: type | None = None
        #: Storage keys named by torch persistent ids ('storage', type, key, location, n).
        self.storage_keys: set[str] = set()

    @property
    def persistent_stub(self) -> type:
        """What every persistent id loads as; made on first use (most pickles have none, and
        a class costs more to make than a small pickle to read)."""
        if self._persistent_stub is None:
            self._persistent_stub = self.make_class("persistent_id", "", policy.Verdict(SAFE))
        return self._persistent_stub

    @property
    def used_persistent(self) -> bool:
        """A persistent id was loaded (its stub is one object, handed out to every id)."""
        return self._persistent_stub is not None

    # ---- findings

    def report(
        self,
        kind: str,
        ordinal: int,
        message: str,
        severity: IssueSeverity,
        rule: str,
        why: str | None,
        module: str,
        name: str,
        opcode: str,
        **extra: Any,
    ) -> None:
        if (
            "pure" not in extra
            and severity is IssueSeverity.CRITICAL
            and extra.get("family") == "code-object"
            and not self.carried.spoiled
        ):
            # this stream carries code that is CRITICAL anyway: stop watching the code type
            self.carried.spoiled = True
            self.handover = self.handover_by_name
        # a verified cloudpickle helper call must not hide an unverified one rendered alike
        if "pure" in extra:
            key = f"{message}\x00{extra.get('pure_function') or extra.get('pure_code') or ''}"
        else:
            key = message
        if key in self._messages:
            return
        if self.issue_count >= _MAX_ISSUES and severity is not IssueSeverity.CRITICAL:
            return
        self._messages.add(key)
        self.issue_count += 1
        self.meaningful = True
        pos = self.pos() if self.pos is not None else None
        if self.pos is None:
            if kind == "global":
                self.need_globals = max(self.need_globals, ordinal)
            elif kind == "call":
                self.need_calls = max(self.need_calls, ordinal)
            elif kind == "ext":
                self.need_all = True
        module, name = _short(module), _short(name)
        details: dict[str, Any] = {
            "module": module,
            "function": name,
            "name": name,
            "opcode": opcode,
            "position": pos,
            **extra,
        }
        issue = self.result.add_issue(
            message,
            severity=severity,
            location=self.location(pos),
            details=details,
            why=why,
            rule=rule,
        )
        if pos is None:
            self.events.append((kind, ordinal, issue))

    # ---- globals

    def find_class(self, module: str, name: str, opcode: str = "GLOBAL") -> type:
        self.n_globals += 1
        raw = (module, name)
        if self.proto < 3:
            module, name = _compat_map(module, name)
        key = (module, name)
        cls = self._classes.get(key)
        verdict: Verdict
        if cls is None:
            verdict = policy.classify(module, name)
            if raw != key and verdict.kind != DANGER:
                raw_verdict = policy.classify(*raw)
                if raw_verdict.kind == DANGER:
                    verdict = raw_verdict
            cls = self.make_class(module, name, verdict, is_global=True)
            self._classes[key] = cls
        else:
            verdict = cls._ma_verdict  # type: ignore[attr-defined]
        # names can be megabytes long and fetched from the memo again and again: cut first
        full = f"{module[:300]}.{name[:300]}"
        if len(full) > 300:
            full = full[:297] + "..."
        if full not in self._seen_globals:
            self._seen_globals.add(full)
            self.globals.append(full)
            if policy.valid_name(module, name):
                self.meaningful = True
        if full in _WRAPPERS and not self.joblib:
            raise JoblibLayout(full)
        if verdict.kind == DANGER:
            rule = (
                R.RESOLVER
                if ("." in name or verdict.family == "dunder-walk")
                else R.DANGEROUS_GLOBAL
            )
            helper = verdict.family == "code-object" and pure_code.is_helper(module, name)
            self.report(
                "global",
                self.n_globals,
                f"Dangerous global: {full}",
                IssueSeverity.CRITICAL,
                rule,
                verdict.why,
                module,
                name,
                opcode,
                family=verdict.family,
                **({"pure": "helper"} if helper else {}),
            )
        elif verdict.kind == UNKNOWN:
            if policy.valid_name(module, name):
                self.report(
                    "global",
                    self.n_globals,
                    f"Unknown global: {full}",
                    IssueSeverity.WARNING,
                    R.UNKNOWN_GLOBAL,
                    f"Loading imports {full} and runs whatever code it has; it is not a name "
                    "real models are known to use.",
                    module,
                    name,
                    opcode,
                )
        elif verdict.kind == SHAPE and verdict.special in _ESCAPING:
            self.escapers.add(id(cls))
        elif verdict.kind == SHAPE and verdict.special == "loads_by_name":
            self.call_judged.add(id(cls))
            self.handover = self.handover_by_name = True
        return cls

    def make_class(
        self, module: str, qualname: str, verdict: Verdict, *, is_global: bool = False
    ) -> type:
        cls = _SymMeta(
            "Sym",
            (),
            {
                "__slots__": (),
                "__new__": staticmethod(_new_hook),
                "_ma_module": module,
                "_ma_qual": qualname,
                "_ma_name": _short(f"{module}.{qualname}" if qualname else module),
                "_ma_verdict": verdict,
                "_ma_global": is_global,
                "_ma_session": self,
            },
        )
        return cls

    # ---- calls

    def call(
        self, callee: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None, op: str
    ) -> Any:
        self.n_calls += 1
        if isinstance(callee, _SymMeta):
            verdict: Verdict = callee._ma_verdict
            name: str = callee._ma_name
            module, qual = callee._ma_module, callee._ma_qual
        else:
            verdict, name, module, qual = callee.verdict, callee.name + "()", callee.module, ""
        if self.escapers:
            self.check_escape(name, args, kwargs)
        if self.handover:
            self.judged_handover(callee, name, args, kwargs)
        kind = verdict.kind
        if kind == SAFE:
            if isinstance(callee, Obj):
                if callee.data is not None and callee.name in _PARTIALS:
                    self.forward(callee, args, kwargs, callee.name, later=False)
                elif not callee.name.startswith("functools.partial"):
                    self.report(
                        "call",
                        self.n_calls,
                        f"Call to {render_call(name, args, kwargs)}",
                        IssueSeverity.WARNING,
                        R.SUSPICIOUS_CALL,
                        "Loading calls a reconstructed object instead of a class or function; "
                        "legitimate models do not need this.",
                        module,
                        qual,
                        op,
                    )
                return self.make_class(module, f"{qual}()", verdict)
            if name in _TYPE_RESULTS:
                return self.make_class(module, f"{qual}()", verdict)
            if name in _SAFE_HOOKS:
                if name == _RECONSTRUCTOR:
                    if len(args) >= 2:
                        self.base_init(args[1], args[2:3])
                elif name in _PARTIALS:
                    if args and self.carried.kind_of(args[0]) == "maker":
                        self.check_handed_over(name, args[:1], None)
                    # a partial keeps its arguments and, after BUILD, its state
                    # (func, args, kwargs, dict); NEWOBJ builds it too (partial.__new__).
                    # Handed to a callable it matters only if it wraps a call-judged class,
                    # which turns the handover check on by itself: no cost per call here.
                    obj = Obj(name, verdict, module, qual)
                    obj.data = [args, None, kwargs]
                    return obj
                else:
                    if op != "NEWOBJ":
                        self.register(name, args, kwargs, 0)
                    if name in deferred.SLOTS:
                        # a later BUILD may set what it calls (a defaultdict's factory)
                        obj = Obj(name, verdict, module, qual)
                        obj.data = [args, None, kwargs]
                        return obj
            if self.carried.made and name in _NEWOBJ and args:
                made = self.newobj_of_maker(name, args)
                if made is not None:
                    return made
            if name in _KEEP:
                obj = Obj(name, verdict, module, qual)
                obj.data = [args, None]
                return obj
            return Obj(name, verdict, module, qual)
        if kind == SHAPE:
            return self.shaped(callee, verdict, name, module, qual, args, kwargs, op)
        if kind == DANGER:
            role = (
                self.carried.call_role(module, qual, args, kwargs)
                if verdict.family == "code-object"
                else ""
            )
            self.report(
                "call",
                self.n_calls,
                f"Call to {render_call(name, args, kwargs)}",
                IssueSeverity.CRITICAL,
                R.DANGEROUS_CALL,
                verdict.why,
                module,
                qual,
                op,
                family=verdict.family,
                **self.pure_details(role, args),
            )
            self.dangerous_arguments(verdict, name, args)
            if role in ("maker", "function_maker"):
                return self.code_maker(module, qual, role)
            if role == "function":
                made = Obj(name, verdict, module, f"{qual}()")
                self.carried.add(made, "function", "")
                return made
            if name in deferred.NAMES and op != "NEWOBJ":
                self.register(name, args, kwargs, 0)
        elif name in _GETITEM_CALLS and len(args) >= 2 and isinstance(args[1], str):
            return self.walk(args[0], args[1], f"{name}", op)
        elif name in deferred.NAMES and op != "NEWOBJ":
            self.register(name, args, kwargs, 0)
        # An instance stands for the result: cheap even for millions of custom objects. A
        # NEWOBJ on it (a real loader might get a class) sends the stream to the fallback.
        return Obj(name, verdict, module, f"{qual}()" if qual else "")

    def pure_details(self, role: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """Finding details naming what a cloudpickle helper call builds (`carried_code.py`
        turns a stream of nothing else into one INFO)."""
        if not role:
            return {}
        if role == "setstate":
            qualname = args[1][1].get("__qualname__")
            if isinstance(qualname, str) and len(qualname) <= 200:
                return {"pure": role, "pure_function": qualname}
        return {"pure": role}

    def newobj_of_maker(self, name: str, args: tuple[Any, ...]) -> Any:
        """`copyreg.__newobj__(cls, *args)` is `cls.__new__(cls, *args)`: for the code and
        function types that is their constructor, judged as a call of them."""
        cls = args[0]
        if self.carried.kind_of(cls) != "maker":
            return None
        if name == "copyreg.__newobj__":
            cargs, ckwargs = tuple(args[1:]), None
        else:
            cargs = tuple(args[1]) if len(args) > 1 and isinstance(args[1], tuple) else ()
            ckwargs = args[2] if len(args) > 2 and isinstance(args[2], dict) else None
            if len(args) != 3 or ckwargs is None or cargs != args[1]:
                ckwargs = {"": None}  # not the shape __newobj_ex__ takes: unverified
        return self.shaped(
            cls,
            cls._ma_verdict,
            cls._ma_name,
            cls._ma_module,
            cls._ma_qual,
            cargs,
            ckwargs or None,
            "REDUCE",
        )

    def code_maker(self, module: str, qual: str, role: str) -> type:
        """`_builtin_type("CodeType")` (or "FunctionType"): a stand-in judged when called
        (`pure_code.py` verifies the bytecode it is given, a function must wrap verified
        code); handed to any other callable, it is reported as called out of sight."""
        verdict = Verdict(SHAPE, "code-object", policy.FAMILIES["code-object"], role)
        cls = self.make_class(module, f"{qual}()", verdict)
        self.carried.add(cls, "maker", "")
        self.call_judged.add(id(cls))
        if not self.carried.spoiled:
            self.handover = True
        return cls

    def dangerous_arguments(self, verdict: Verdict, name: str, args: tuple[Any, ...]) -> None:
        """What a dangerous callable does with its arguments: an unpickler's or code
        loader's bytes are scanned as nested pickles."""
        if verdict.family == "nested-unpickler":
            self.queue_nested(args, f"argument of {name}")
        elif verdict.family == "code-object":
            # names and docstrings mostly; scanned only where they look like a pickle
            self.queue_nested(args, f"argument of {name}", trusted=False)

    def register(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None, depth: int
    ) -> None:
        """Registrar `name` was called: judge each call it sets up as if made now (until
        the forward budget is spent: a table shared through the memo is not walked again)."""
        if not self.spend(deferred.cost(args, kwargs)):
            return
        for func, fargs, fkwargs in deferred.calls(name, args, kwargs):
            if self.forward_left <= 0:
                self.forward_over = True
                return
            if self.handed_over:
                return
            self.forward(func, fargs, fkwargs, name, later=True, depth=depth)

    def forward(
        self,
        func: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        via: str,
        *,
        later: bool,
        depth: int = 0,
    ) -> None:
        """`func(*args, **kwargs)`, made by `via` (a registrar, later; a partial, now),
        judged as a call the pickle makes: a dangerous callable is reported as called with
        these arguments, a call-judged one is judged, a partial is unwrapped, a registrar
        handed over registers in turn. Nothing is called and no call is counted."""
        if depth > _FORWARD_DEPTH:
            return
        if self.forward_left <= 0:
            self.forward_over = True
            return
        self.forward_left -= 1
        if not self.spend(len(args) + (len(kwargs) if kwargs else 0)):
            return
        if isinstance(func, _SymMeta):
            verdict: Verdict = func._ma_verdict
            fname = func._ma_name
            if verdict.kind == DANGER:
                how = f", deferred by {via}" if later else f" through {via}"
                self.report(
                    "call",
                    self.n_calls,
                    f"Call to {render_call(fname, args, kwargs)}{how}",
                    IssueSeverity.CRITICAL,
                    R.DANGEROUS_CALL,
                    (f"{via} calls it later in the process. " if later else "") + verdict.why,
                    func._ma_module,
                    func._ma_qual,
                    "REDUCE",
                    family=verdict.family,
                )
                self.dangerous_arguments(verdict, fname, args)
            elif verdict.kind == SHAPE:
                self.shaped(
                    func, verdict, fname, func._ma_module, func._ma_qual, args, kwargs, "REDUCE"
                )
            elif verdict.kind == SAFE and fname in deferred.NAMES:
                self.register(fname, args, kwargs, depth + 1)
            elif fname not in _TAKES_CLASSES and fname not in _PARTIALS:
                # what the partial's function is handed (sorted's key, map's function)
                self.check_handed_over(fname, args, kwargs)
        elif isinstance(func, Obj) and func.name in _PARTIALS and func.data is not None:
            if later:
                self.hold(func, via, args, kwargs)
            if not self.spend(_bound_size(func.data)):
                return
            inner, bound, bound_kw = _unpartial(func.data)
            merged = {**bound_kw, **kwargs} if bound_kw and kwargs else (bound_kw or kwargs)
            self.forward(inner, bound + tuple(args), merged, via, later=later, depth=depth + 1)

    def spend(self, values: int) -> bool:
        """Charge `values` argument values to `HANDED_BUDGET`; False once it is spent."""
        if self.handed_over:
            return False
        self.handed_left -= values
        if self.handed_left < 0:
            self.handed_over = True
            return False
        return True

    def hold(self, partial: Obj, via: str, args: tuple[Any, ...] | None, kwargs: Any) -> None:
        """Remember a partial handed out: a BUILD that swaps its function in later changes
        what the registrar (or the callable it was handed to) will call."""
        if self.n_held >= _MAX_HELD:
            return
        self.n_held += 1
        self.held.setdefault(id(partial), []).append((partial, via, args, kwargs))

    def rejudge(self, partial: Obj) -> None:
        """A held partial got its BUILD state: judge each use of it again."""
        for _, via, args, kwargs in list(self.held.get(id(partial), ()))[:16]:
            if args is None:
                self.check_handed_over(via, (partial,), None, hold=False)
            else:
                self.forward(partial, args, kwargs, via, later=True, depth=1)

    def base_init(self, base: Any, state: tuple[Any, ...]) -> None:
        """`copyreg._reconstructor(cls, base, state)` runs `base.__init__(obj, state)` unless
        base is object: a class judged when called is called here too."""
        if not isinstance(base, _SymMeta):
            return
        verdict = base._ma_verdict
        if verdict.kind == SHAPE and verdict.special == "loads_by_name":
            self.shaped(
                base, verdict, base._ma_name, base._ma_module, base._ma_qual, state, None, "REDUCE"
            )

    def shaped(
        self,
        callee: Any,
        verdict: policy.Verdict,
        name: str,
        module: str,
        qual: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        op: str,
    ) -> Any:
        special = verdict.special
        if special == "function_maker":
            pure = not kwargs and 2 <= len(args) <= 5 and self.carried.kind_of(args[0]) == "code"
            extra = {"pure": "function"} if pure else {}
            made = self.code_object_call(name, module, qual, args, kwargs, verdict, op, extra)
            if pure:
                self.carried.add(made, "function", "")
            return made
        if special == "maker":
            qualname = None if kwargs else pure_code.verify_code_args(args)
            extra = {"pure": "code", "pure_code": qualname} if qualname else {}
            code = self.code_object_call(name, module, qual, args, kwargs, verdict, op, extra)
            self.dangerous_arguments(verdict, name, args)
            if qualname:
                self.carried.add(code, "code", qualname)
            return code
        if special == "getattr":
            if len(args) in (2, 3) and isinstance(args[1], str):
                return self.walk(args[0], args[1], name, op)
            self.report(
                "call",
                self.n_calls,
                f"Call to {render_call(name, args, kwargs)}",
                IssueSeverity.CRITICAL,
                R.RESOLVER,
                "getattr with a computed attribute name can reach any callable. "
                + policy.FAMILIES["resolver"],
                module,
                qual,
                op,
                family="resolver",
            )
            return self.make_class(module, f"{qual}()", policy.danger("resolver"))
        if special == "resolve2":
            if len(args) in (2, 3) and isinstance(args[0], str) and isinstance(args[1], str):
                # (module, qualname) or uarray's (module, qualname, self_)
                target = policy.classify(args[0], args[1])
                self.report_resolved(name, args, args[0], args[1], target, op)
                return self.make_class(args[0], args[1], target)
            return self.computed_names(name, module, qual, args, op)
        if special == "dill_namedtuple":
            return self.dill_namedtuple(name, module, qual, args, op)
        if special == "codec":
            enc = args[1] if len(args) > 1 else kwargs.get("encoding") if kwargs else "utf-8"
            if not (isinstance(enc, str) and enc.lower().replace("_", "-") in _SAFE_CODECS):
                self.report(
                    "call",
                    self.n_calls,
                    f"Call to {render_call(name, args, kwargs)}",
                    IssueSeverity.WARNING,
                    R.SUSPICIOUS_CALL,
                    "An unusual codec is applied at load time; codecs are looked up by name "
                    "and may transform data in ways a reviewer does not expect.",
                    module,
                    qual,
                    op,
                )
            text = args[0] if args else None
            if isinstance(text, str) and len(text) >= 8 and text[:1] in _PICKLE_HEADS:
                self.queue_nested((text,), f"argument of {name}", trusted=False)
            return Obj(name, policy.Verdict(SAFE), module, qual)
        if special == "loads_by_name":
            if op == "NEWOBJ":  # cls.__new__: a saved instance rebuilt without __init__
                return Obj(name, policy.Verdict(SAFE), module, qual)
            family = verdict.family or "nested-unpickler"
            why = verdict.why or (
                "Constructing this class downloads or opens the model its arguments name and "
                "loads it; with trust_remote_code that repository's own code runs."
            )
            self.report(
                "call",
                self.n_calls,
                f"Call to {render_call(name, args, kwargs)}",
                IssueSeverity.CRITICAL,
                R.DANGEROUS_CALL,
                f"{why} {policy.FAMILIES[family]}",
                module,
                qual,
                op,
                family=family,
            )
            return Obj(name, policy.danger(family), module, qual)
        if special == "nested_bytes":
            self.queue_nested(args, f"argument of {name}", stacked=True)
            return Obj(name, policy.Verdict(SAFE), module, qual)
        if special == "dill_type":
            tname = args[0] if args else None
            if not (isinstance(tname, str) and tname in _SAFE_DILL_TYPES):
                self.report(
                    "call",
                    self.n_calls,
                    f"Call to {render_call(name, args)}",
                    IssueSeverity.CRITICAL,
                    R.DANGEROUS_CALL,
                    policy.FAMILIES["code-object"],
                    module,
                    qual,
                    op,
                    family="code-object",
                )
                return self.make_class(module, f"{qual}()", policy.danger("code-object"))
            return self.make_class("builtins", tname, policy.Verdict(SAFE))
        return Obj(name, policy.Verdict(SAFE), module, qual)

    def code_object_call(
        self,
        name: str,
        module: str,
        qual: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        verdict: Verdict,
        op: str,
        extra: dict[str, Any],
    ) -> Obj:
        """A call of the code or function type cloudpickle hands out: CRITICAL, with `extra`
        saying what `pure_code.py` verified of it (`carried_code.py` reads it)."""
        self.report(
            "call",
            self.n_calls,
            f"Call to {render_call(name, args, kwargs)}",
            IssueSeverity.CRITICAL,
            R.DANGEROUS_CALL,
            verdict.why,
            module,
            qual,
            op,
            family="code-object",
            **extra,
        )
        return Obj(name, policy.danger("code-object"), module, f"{qual}()")

    def dill_namedtuple(
        self, name: str, module: str, qual: str, args: tuple[Any, ...], op: str
    ) -> Any:
        """dill's `_create_namedtuple(name, fieldnames, modulename, defaults=None)` first
        tries `modulename.name` as an import and returns whatever it finds there (a saved
        namedtuple class is found again): `('system', [...], 'os')` is `os.system`. Only a
        namedtuple it would have to make, or one a real model's module defines, is data."""
        if len(args) >= 3 and isinstance(args[0], str) and isinstance(args[2], str):
            target_module, target = args[2], args[0]
            if not policy.valid_name(target_module, target):
                return Obj(name, policy.Verdict(SAFE), module, qual)
            verdict = policy.classify(target_module, target)
            self.report_resolved(
                name,
                args,
                target_module,
                target,
                verdict,
                op,
                " when it exists (else makes a namedtuple of that name)",
            )
            return self.make_class(target_module, target, verdict)
        return self.computed_names(name, module, qual, args, op)

    def report_resolved(
        self,
        name: str,
        args: tuple[Any, ...],
        target_module: str,
        target: str,
        verdict: policy.Verdict,
        op: str,
        when: str = "",
    ) -> None:
        """A resolver call whose names are constants: judged as the global it resolves."""
        full = f"{target_module}.{target}"
        if verdict.kind == DANGER:
            self.report(
                "call",
                self.n_calls,
                f"Resolver {render_call(name, args)} resolves {full}",
                IssueSeverity.CRITICAL,
                R.RESOLVER,
                verdict.why,
                target_module,
                target,
                op,
                family=verdict.family,
            )
        elif verdict.kind == UNKNOWN:
            self.report(
                "call",
                self.n_calls,
                f"Resolver {render_call(name, args)} resolves {full}",
                IssueSeverity.WARNING,
                R.UNKNOWN_GLOBAL,
                f"Loading imports {full}{when}, which is not a name real models use.",
                target_module,
                target,
                op,
            )

    def computed_names(
        self, name: str, module: str, qual: str, args: tuple[Any, ...], op: str
    ) -> Any:
        """A resolver call whose module or name is not a constant: it can reach anything."""
        self.report(
            "call",
            self.n_calls,
            f"Resolver {render_call(name, args)} with computed names",
            IssueSeverity.CRITICAL,
            R.RESOLVER,
            policy.FAMILIES["resolver"],
            module,
            qual,
            op,
        )
        return self.make_class(module, f"{qual}()", policy.danger("resolver"))

    def walk(self, target: Any, attr: str, via: str, op: str) -> type:
        """`getattr(target, attr)` and friends: the result is the attribute, judged by path."""
        if isinstance(target, _SymMeta):
            module, qual, base = target._ma_module, target._ma_qual, target._ma_verdict
        elif isinstance(target, Obj):
            module, qual, base = target.module, target.qual, target.verdict
        else:
            module, qual, base = "builtins", type(target).__name__, policy.Verdict(SAFE)
        verdict = policy.classify_attribute(module, qual, base, attr)
        if (
            verdict.kind != DANGER
            and isinstance(target, _SymMeta)
            and target._ma_global
            and policy.module_like(module, qual)
        ):
            verdict = policy.danger(
                "resolver", f"getattr on {module}.{qual}, which names a module."
            )
        shown = f"{module}.{qual}" if qual else module
        text = f"{via}({shown}, {attr!r})"
        if verdict.kind == DANGER:
            self.report(
                "call",
                self.n_calls,
                f"Dangerous attribute access: {text}",
                IssueSeverity.CRITICAL,
                R.RESOLVER,
                verdict.why,
                module,
                f"{qual}.{attr}",
                op,
                family=verdict.family,
            )
        elif verdict.kind == UNKNOWN:
            self.report(
                "call",
                self.n_calls,
                f"Attribute access at load time: {text}",
                IssueSeverity.WARNING,
                R.SUSPICIOUS_CALL,
                "Loading fetches an attribute of an object that is not known to be safe; the "
                "result may be any callable.",
                module,
                f"{qual}.{attr}",
                op,
            )
        return self.make_class(module, f"{qual}.{attr}" if qual else attr, verdict)

    def check_escape(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> None:
        """A resolver (`getattr`...) among a call's arguments, or anywhere inside a list,
        tuple, set or dict among them, is reported as handed over: `starmap(f, [(getattr,
        obj, 'system')])` has it two containers down. Every value is read once per call
        (a container met again through the memo, or inside itself, is not re-read), each
        charged to `ESCAPE_BUDGET`: a container shared through the memo is read by each call."""
        if self.escape_over:
            return
        todo: deque[Any] = deque(args)
        if kwargs:
            todo.extend(kwargs.values())
        self.escape_left -= len(todo)
        seen: set[int] = set()
        while todo and self.escape_left >= 0:
            v = todo.popleft()
            if isinstance(v, (list, tuple, set, frozenset, dict)):
                if id(v) in seen:
                    continue
                seen.add(id(v))
                items = itertools.chain(v.keys(), v.values()) if isinstance(v, dict) else v
                self.escape_left -= len(v) * (2 if isinstance(v, dict) else 1)
                if self.escape_left >= 0:
                    todo.extend(items)
            elif isinstance(v, _SymMeta) and id(v) in self.escapers:
                self.report(
                    "call",
                    self.n_calls,
                    f"{v._ma_name} is passed as a value to {name}",
                    IssueSeverity.CRITICAL,
                    R.RESOLVER,
                    "A resolver function handed to another callable is applied to arguments "
                    "the scanner cannot see statically. " + policy.FAMILIES["resolver"],
                    v._ma_module,
                    v._ma_qual,
                    "REDUCE",
                    family="resolver",
                )
        if self.escape_left < 0:
            self.escape_over = True

    def judged_handover(
        self, callee: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None
    ) -> None:
        if isinstance(callee, Obj) and callee.name in _PARTIALS and callee.data is not None:
            return  # Session.forward follows what the partial calls
        if name not in _TAKES_CLASSES and name not in _PARTIALS:
            self.check_handed_over(name, args, kwargs)

    def check_handed_over(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        *,
        hold: bool = True,
    ) -> None:
        if not self.spend(len(args) + (len(kwargs) if kwargs else 0)):
            return
        values: list[Any] = [*args, *(kwargs.values() if kwargs else ())]
        for v in values:
            shown = v
            if isinstance(v, Obj) and v.name in _PARTIALS and v.data is not None:
                # a partial of the class is the class, with arguments bound
                if hold:
                    self.hold(v, name, None, None)
                v = _innermost(v)
            if isinstance(v, _SymMeta) and id(v) in self.call_judged:
                verdict = v._ma_verdict
                family = verdict.family or "nested-unpickler"
                self.report(
                    "call",
                    self.n_calls,
                    f"{v._ma_name if shown is v else f'{render(shown)} of {v._ma_name}'} is passed "
                    f"as a value to {name}",
                    IssueSeverity.CRITICAL,
                    R.DANGEROUS_CALL,
                    f"{name} may call it with arguments out of the scanner's sight, and "
                    "constructing it "
                    + (verdict.why or "loads the model its arguments name.")[:1].lower()
                    + (verdict.why or "loads the model its arguments name.")[1:]
                    + " "
                    + policy.FAMILIES[family],
                    v._ma_module,
                    v._ma_qual,
                    "REDUCE",
                    family=family,
                )

    def queue_nested(
        self, args: Any, label: str, stacked: bool = False, trusted: bool = True
    ) -> None:
        for a in args if isinstance(args, (tuple, list)) else (args,):
            if not isinstance(a, (bytes, bytearray, str)) or len(a) < 2 or id(a) in self._queued:
                continue
            if self.nested_bytes + len(a) > NESTED_BUDGET:
                self.nested_over = True
                continue
            self._queued[id(a)] = a
            self.nested_bytes += len(a)
            data = a.encode("latin-1", "ignore") if isinstance(a, str) else bytes(a)
            self.nested.append((data, stacked, label, trusted))

    # ---- mutation of state

    def setstate(self, target: Any, state: Any) -> None:
        self.n_calls += 1
        if self.escapers:
            self.check_escape("__setstate__", (state,), None)
        if isinstance(target, _SymMeta):
            if target._ma_global:
                self.mutate(target, "BUILD")
            return
        if self.build_hooks:
            hook = self.build_hooks.get(id(target))
            if hook is not None:
                self.forward(
                    hook[1],
                    (state,),
                    None,
                    "BUILD, the __setstate__ an earlier BUILD stored in the instance",
                    later=False,
                )
        if instance_hooks.stores_hook(state):
            self.stored_hooks(target, state)
        if target.data is not None:
            target.data[1] = state
            if self.held and id(target) in self.held:
                self.rejudge(target)
            if self.call_judged and target.name in _PARTIALS:
                self.partial_swap(target, state)
            if target.name in deferred.SLOTS:
                for func in deferred.set_by_state(target.name, state):
                    self.forward(func, (), None, f"{target.name} (set by BUILD)", later=True)

    def stored_hooks(self, target: Obj, state: Any) -> None:
        """BUILD stores a callable under a name Python fetches from the instance: a
        `__setstate__` is called by the object's next BUILD (remembered here), a pickling or
        copying hook when the loaded object is saved or deep-copied (judged now)."""
        for name, func in instance_hooks.stored(state):
            if name == instance_hooks.SETSTATE:
                # one per instance, each made by its own BUILD: linear, so never capped
                # (the 1,025th instance's hook went unjudged)
                self.build_hooks[id(target)] = (target, func)
                continue
            self.forward(
                func,
                instance_hooks.save_arguments(name),
                None,
                f"pickling or deep-copying the loaded {target.name} (the {name} BUILD stored "
                "in it)",
                later=True,
            )

    def partial_swap(self, partial: Obj, state: Any) -> None:
        """BUILD gives a partial another function than the one it was made with, and that
        function is a call-judged class. pickle writes a partial's own function into both;
        a swap is made by hand, typically after the partial was handed to a callable that
        will call it (where it held a harmless function), so it is judged as handed over."""
        data = partial.data
        if not (isinstance(state, tuple) and state and data):
            return
        made = data[0]
        if made and state[0] is made[0]:
            return
        if not self.spend(_bound_size(data)):
            return
        inner, bound, kw = _unpartial(data)
        inner = _innermost(inner) if isinstance(inner, Obj) else inner
        if not (isinstance(inner, _SymMeta) and id(inner) in self.call_judged):
            return
        verdict = inner._ma_verdict
        family = verdict.family or "nested-unpickler"
        self.report(
            "call",
            self.n_calls,
            f"BUILD swaps {render_call(inner._ma_name, bound, kw)} into a {partial.name} "
            "made with another function",
            IssueSeverity.CRITICAL,
            R.DANGEROUS_CALL,
            "Whatever holds the partial calls it, out of the scanner's sight, and constructing "
            "it "
            + _lowered(verdict.why or "loads the model its arguments name.")
            + " "
            + policy.FAMILIES[family],
            inner._ma_module,
            inner._ma_qual,
            "BUILD",
            family=family,
        )

    def exec_state(self, name: str, module: str, qual: str, template: Any) -> None:
        if not foreign_template(template):
            return
        self.report(
            "call",
            self.n_calls,
            f"BUILD of {name} with a {TEMPLATE_KEY} that is not scipy's",
            IssueSeverity.CRITICAL,
            R.DANGEROUS_CALL,
            f"The class's __setstate__ passes {TEMPLATE_KEY} to exec() (scipy.stats "
            "distributions rebuild their argument parsers so): the file ships the source. "
            + policy.FAMILIES["code-exec"],
            module,
            qual,
            "BUILD",
            family="code-exec",
        )

    def mutate(self, target: Any, how: str) -> None:
        self.report(
            "mutation",
            0,
            f"Load-time modification of global {target._ma_name} ({how})",
            IssueSeverity.CRITICAL,
            R.GLOBAL_MUTATION,
            "The file changes a module-level object while it loads (monkey-patching), which "
            "can redirect later calls to attacker code.",
            target._ma_module,
            target._ma_qual,
            how,
        )


def _unpartial(data: list[Any]) -> tuple[Any, tuple[Any, ...], dict[str, Any] | None]:
    """(function, bound arguments, bound keywords) of a partial: from its BUILD state
    (func, args, kwargs, dict) when it has one, else from what built it."""
    made, state = data[0], data[1]
    if isinstance(state, tuple) and state:
        bound = state[1] if len(state) > 1 and isinstance(state[1], tuple) else ()
        kw = state[2] if len(state) > 2 and isinstance(state[2], dict) and state[2] else None
        return state[0], bound, kw
    kw = data[2] if len(data) > 2 else None
    return (made[0] if made else None), tuple(made[1:]), kw


def _bound_size(data: list[Any]) -> int:
    """Arguments `_unpartial` hands on (all of them: the 17th went unjudged), to be charged
    before they are copied: a partial shared through the memo is unwrapped by every use."""
    made, state = data[0], data[1]
    if isinstance(state, tuple) and len(state) > 1 and isinstance(state[1], tuple):
        return len(state[1])
    return len(made) if made else 0


def _function_of(data: list[Any]) -> Any:
    """The function of a partial, as `_unpartial` finds it, without copying its arguments."""
    made, state = data[0], data[1]
    if isinstance(state, tuple) and state:
        return state[0]
    return made[0] if made else None


def _lowered(text: str) -> str:
    return text[:1].lower() + text[1:]


def _innermost(partial: Obj) -> Any:
    """The function a chain of partials ends in (bounded)."""
    value: Any = partial
    for _ in range(_FORWARD_DEPTH):
        if not (isinstance(value, Obj) and value.name in _PARTIALS and value.data is not None):
            break
        value = _function_of(value.data)
    return value


def _short(text: str) -> str:
    return text if len(text) <= 300 else text[:297] + "..."


def _compat_map(module: str, name: str) -> tuple[str, str]:
    pair = _compat_pickle.NAME_MAPPING.get((module, name))
    if pair is not None:
        return pair
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _new_hook(cls: Any, *args: Any, **kwargs: Any) -> Any:
    return cls._ma_session.call(cls, args, kwargs or None, "NEWOBJ")


class _SymMeta(type):
    """Metaclass of global stubs: what the unpickler may do to a global is recorded here."""

    _ma_module: str
    _ma_qual: str
    _ma_name: str
    _ma_verdict: Verdict
    _ma_global: bool
    _ma_session: Session

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._ma_session.call(cls, args, kwargs or None, "REDUCE")

    def __setstate__(cls, state: Any) -> None:
        cls._ma_session.setstate(cls, state)
        template = template_of(state)
        if template is not None:
            cls._ma_session.exec_state(cls._ma_name, cls._ma_module, cls._ma_qual, template)

    def __setitem__(cls, key: Any, value: Any) -> None:
        if cls._ma_global:
            cls._ma_session.mutate(cls, "SETITEM")

    def append(cls, value: Any) -> None:
        if cls._ma_global:
            cls._ma_session.mutate(cls, "APPEND")

    def extend(cls, values: Any) -> None:
        if cls._ma_global:
            cls._ma_session.mutate(cls, "APPENDS")

    def add(cls, value: Any) -> None:
        if cls._ma_global:
            cls._ma_session.mutate(cls, "ADDITEMS")


class Obj:
    """The result of an allowed call: an instance of `name`, inert."""

    __slots__ = ("data", "module", "name", "qual", "verdict")

    def __init__(self, name: str, verdict: Verdict, module: str, qual: str) -> None:
        self.name = name
        self.verdict = verdict
        self.module = module
        self.qual = qual
        self.data: list[Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _session_of(self).call(self, args, kwargs or None, "REDUCE")

    def __setstate__(self, state: Any) -> None:
        session = _CURRENT[-1]
        # instance_hooks.NAMES spelled out: four dict lookups cost a BUILD-heavy pickle
        # (every estimator of a forest) 2%, a set test over the state's keys 7%
        kind = type(state)
        if (
            session.escapers
            or self.data is not None
            or session.build_hooks
            or (
                kind is dict
                and (
                    "__setstate__" in state
                    or "__getstate__" in state
                    or "__reduce_ex__" in state
                    or "__deepcopy__" in state
                )
            )
            or (kind is tuple and len(state) == 2 and instance_hooks.stores_hook(state))
        ):
            session.setstate(self, state)
        else:
            session.n_calls += 1
        template = template_of(state)
        if template is not None:
            session.exec_state(self.name, self.module, self.qual, template)

    def __setitem__(self, key: Any, value: Any) -> None:
        return None

    def append(self, value: Any) -> None:
        return None

    def extend(self, values: Any) -> None:
        return None

    def add(self, value: Any) -> None:
        return None


#: The session of the pickle being read; instances do not carry it to stay small.
_CURRENT: list[Session] = []


def _session_of(obj: Obj) -> Session:
    return _CURRENT[-1]


def is_wrapper(value: Any) -> bool:
    return isinstance(value, Obj) and value.name in _WRAPPERS


__all__ = [
    "SAFE",
    "SHAPE",
    "UNKNOWN",
    "JoblibLayout",
    "Obj",
    "Session",
    "is_wrapper",
    "render",
]
