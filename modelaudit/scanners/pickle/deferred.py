"""Registrars: callables that take another callable and call it later.

`weakref.finalize(object(), os.system, "id")` calls `os.system("id")` as soon as the temporary
object dies, during the load; `atexit.register`, a thread's target, a signal handler, a
profile hook, a codec search function, a `defaultdict` factory or a numpy print formatter are
called at exit, at start, on the signal, on the next call, lookup, missing key or print. Such
a call is judged as the call it sets up: `calls(name, args, kwargs)` says which callables a
registrar call hands over and with what arguments they will be called (values the registrar
makes itself, such as the weak reference or the signal number, stand in as `Later`).

Pure functions of the call's arguments: every callable a registrar is handed is yielded (a
formatter table or function list read to its 16th entry let the 17th go unjudged), lazily, so
the caller's `FORWARD_BUDGET` bounds the work whatever the pickle holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

#: (callable, positional arguments, keyword arguments) a registrar will call.
Planned = tuple[Any, tuple[Any, ...], dict[str, Any] | None]
_Extract = Callable[[tuple[Any, ...], dict[str, Any]], Iterator[Planned]]
#: Items of an iterable looked at for the arguments of a mapped callable.
_ITEMS: Final = 2


class Later:
    """A value the registrar makes when it calls (the dying object's weak reference, the
    signal number, an array element): shown by what it is, never a pickle's value."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label


def _at(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, key: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(key)


def _seq(value: Any) -> tuple[Any, ...]:
    """Every item (the 17th went unjudged): the copy is charged by `Session.register`
    (`cost`), and a tuple is not copied at all."""
    return tuple(value) if isinstance(value, (tuple, list)) else ()


def cost(args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> int:
    """An upper bound on the items `calls` copies for these arguments: the arguments, each
    list or tuple among them (and keyword values), and the first item of each (`starmap`)."""
    total = len(args) + (len(kwargs) if kwargs else 0)
    for value in (*args, *(kwargs.values() if kwargs else ())):
        if isinstance(value, (tuple, list)):
            total += len(value)
            if value and isinstance(value[0], (tuple, list)):
                total += len(value[0])
    return total


def _kw(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) and value else None


def _first(iterable: Any) -> Any:
    return iterable[0] if isinstance(iterable, (tuple, list)) and iterable else Later("item")


def _called_with(index: int, key: str, *made: str) -> _Extract:
    """The callable at `index` (or keyword `key`), called with values the registrar makes."""

    def extract(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
        yield _at(args, kwargs, index, key), tuple(Later(m) for m in made), None

    return extract


def _finalize(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # finalize(obj, func, /, *args, **kwargs) and atexit.register(func, *args, **kwargs)
    yield _at(args, {}, 1, ""), args[2:], kwargs or None


def _register(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    yield _at(args, {}, 0, ""), args[1:], kwargs or None


def _thread(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # Thread(group, target, name, args, kwargs) and multiprocessing's Process alike
    yield (
        _at(args, kwargs, 1, "target"),
        _seq(_at(args, kwargs, 3, "args")),
        _kw(_at(args, kwargs, 4, "kwargs")),
    )


def _timer(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # Timer(interval, function, args, kwargs)
    yield (
        _at(args, kwargs, 1, "function"),
        _seq(_at(args, kwargs, 2, "args")),
        _kw(_at(args, kwargs, 3, "kwargs")),
    )


def _start_thread(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # _thread.start_new_thread(function, args, kwargs)
    yield _at(args, kwargs, 0, "function"), _seq(_at(args, kwargs, 1, "args")), None


def _initializer(index: int) -> _Extract:
    """Executors and pools: `initializer(*initargs)` runs in every worker they start."""

    def extract(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
        yield (
            _at(args, kwargs, index, "initializer"),
            _seq(_at(args, kwargs, index + 1, "initargs")),
            None,
        )

    return extract


def _mapped(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # map(func, *iterables) and filter(func, iterable): func(first items)
    yield _at(args, {}, 0, ""), tuple(_first(it) for it in args[1:4]), None


def _starmap(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    first = _first(args[1]) if len(args) > 1 else None
    yield _at(args, {}, 0, ""), _seq(first) if first is not None else (), None


def _reduce(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # reduce(function, iterable[, initial]): function(initial or item 0, next item)
    items = list(args[1][:_ITEMS]) if len(args) > 1 and isinstance(args[1], (tuple, list)) else []
    if len(args) > 2:
        items.insert(0, args[2])
    while len(items) < 2:
        items.append(Later("item"))
    yield _at(args, {}, 0, ""), tuple(items[:2]), None


def _formatters(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # set_printoptions(precision, threshold, edgeitems, linewidth, suppress, nanstr, infstr,
    # formatter, ...): every formatter is called with the elements of each array printed
    table = _at(args, kwargs, 7, "formatter")
    if isinstance(table, dict):
        for func in table.values():
            yield func, (Later("array element"),), None


def _along_axis(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # apply_along_axis(func1d, axis, arr, *args, **kwargs): func1d(slice, *args, **kwargs)
    yield _at(args, {}, 0, ""), (Later("array slice"), *args[3:]), kwargs or None


def _fromfunction(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # fromfunction(function, shape, **kwargs): function(*index arrays, **kwargs)
    rest = {k: v for k, v in kwargs.items() if k not in ("dtype", "like")}
    yield _at(args, {}, 0, ""), (Later("index array"),), rest or None


def _piecewise(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # piecewise(x, condlist, funclist, *args, **kw): each function(x's part, *args, **kw)
    funcs = args[2] if len(args) > 2 else kwargs.get("funclist")
    for func in funcs if isinstance(funcs, (tuple, list)) else (funcs,):
        yield func, (Later("array part"), *args[3:]), kwargs or None


def _iter_callable(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # iter(callable, sentinel) calls it for each item; iter(iterable) calls nothing (the
    # form pickled list and tuple iterators take)
    if len(args) == 2:
        yield args[0], (), None


def _reducer(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # copyreg.pickle(type, reducer): reducer(instance) whenever one is pickled
    yield _at(args, {}, 1, ""), (Later("instance"),), None


_WEAKREF_CALLBACK: Final = _called_with(1, "callback", "weak reference")
_HOOK: Final = _called_with(0, "", "frame", "event", "arg")
_REGISTRARS: Final[dict[str, _Extract]] = {
    "weakref.finalize": _finalize,
    "weakref.ref": _WEAKREF_CALLBACK,
    "weakref.ReferenceType": _WEAKREF_CALLBACK,
    "weakref.KeyedRef": _WEAKREF_CALLBACK,
    "weakref.WeakMethod": _WEAKREF_CALLBACK,
    "weakref.proxy": _WEAKREF_CALLBACK,
    "_weakref.ref": _WEAKREF_CALLBACK,
    "_weakref.ReferenceType": _WEAKREF_CALLBACK,
    "_weakref.proxy": _WEAKREF_CALLBACK,
    "atexit.register": _register,
    "threading.Thread": _thread,
    "threading._DummyThread": _thread,
    "multiprocessing.Process": _thread,
    "multiprocessing.context.Process": _thread,
    "threading.Timer": _timer,
    "threading._Timer": _timer,
    "_thread.start_new_thread": _start_thread,
    "_thread.start_new": _start_thread,
    "_thread.start_joinable_thread": _start_thread,
    "thread.start_new_thread": _start_thread,
    "concurrent.futures.ThreadPoolExecutor": _initializer(2),
    "concurrent.futures.thread.ThreadPoolExecutor": _initializer(2),
    "concurrent.futures.ProcessPoolExecutor": _initializer(2),
    "concurrent.futures.process.ProcessPoolExecutor": _initializer(2),
    "multiprocessing.Pool": _initializer(1),
    "multiprocessing.pool.Pool": _initializer(1),
    "multiprocessing.pool.ThreadPool": _initializer(1),
    "multiprocessing.dummy.Pool": _initializer(1),
    "signal.signal": _called_with(1, "handler", "signal number", "frame"),
    "sys.setprofile": _HOOK,
    "sys.settrace": _HOOK,
    "threading.setprofile": _HOOK,
    "threading.settrace": _HOOK,
    "threading.setprofile_all_threads": _HOOK,
    "threading.settrace_all_threads": _HOOK,
    "sys.addaudithook": _called_with(0, "hook", "event", "arguments"),
    "sys.monitoring.register_callback": _called_with(2, "func", "code", "offset"),
    "codecs.register": _called_with(0, "search_function", "encoding name"),
    "codecs.register_error": _called_with(1, "error_handler", "exception"),
    "_codecs.register_error": _called_with(1, "error_handler", "exception"),
    "builtins.iter": _iter_callable,
    "copyreg.pickle": _reducer,
    "functools.reduce": _reduce,
    "_functools.reduce": _reduce,
    "itertools.starmap": _starmap,
    "builtins.map": _mapped,
    "builtins.filter": _mapped,
    "collections.defaultdict": _called_with(0, "default_factory"),
    "numpy.seterrcall": _called_with(0, "func", "error type", "flags"),
    "numpy.set_string_function": _called_with(0, "f", "array"),
    "numpy.set_printoptions": _formatters,
    "numpy.core.arrayprint.set_printoptions": _formatters,
    "numpy._core.arrayprint.set_printoptions": _formatters,
    # trusted numpy helpers that call the function they are given at once
    "numpy.apply_along_axis": _along_axis,
    "numpy.lib.shape_base.apply_along_axis": _along_axis,
    "numpy.lib._shape_base_impl.apply_along_axis": _along_axis,
    "numpy.ma.apply_along_axis": _along_axis,
    "numpy.ma.extras.apply_along_axis": _along_axis,
    "numpy.fromfunction": _fromfunction,
    "numpy.core.numeric.fromfunction": _fromfunction,
    "numpy._core.numeric.fromfunction": _fromfunction,
    "numpy.piecewise": _piecewise,
    "numpy.lib.function_base.piecewise": _piecewise,
    "numpy.lib._function_base_impl.piecewise": _piecewise,
}


def _callback(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # ExitStack.callback(callback, /, *args, **kwds), AsyncExitStack.push_async_callback and
    # Executor.submit(fn, /, *args, **kwargs): callback(*args, **kwds)
    yield _at(args, {}, 0, ""), args[1:], kwargs or None


def _scheduled(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # scheduler.enter(delay, priority, action, argument=(), kwargs={}) and enterabs(time, ...)
    yield (
        _at(args, kwargs, 2, "action"),
        _seq(_at(args, kwargs, 3, "argument")),
        _kw(_at(args, kwargs, 4, "kwargs")),
    )


def _applied(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # Pool.apply(func, args=(), kwds={}) and apply_async(..., callback, error_callback)
    yield (
        _at(args, kwargs, 0, "func"),
        _seq(_at(args, kwargs, 1, "args")),
        _kw(_at(args, kwargs, 2, "kwds")),
    )
    yield _at(args, kwargs, 3, "callback"), (Later("result"),), None
    yield _at(args, kwargs, 4, "error_callback"), (Later("exception"),), None


def _pool_mapped(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # Pool.map(func, iterable, chunksize) / imap / map_async(..., callback, error_callback)
    yield _at(args, kwargs, 0, "func"), (_first(_at(args, kwargs, 1, "iterable")),), None
    yield _at(args, kwargs, 3, "callback"), (Later("results"),), None
    yield _at(args, kwargs, 4, "error_callback"), (Later("exception"),), None


def _pool_starmapped(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
    # Pool.starmap(func, iterable, chunksize) / starmap_async(..., callback, error_callback)
    first = _first(_at(args, kwargs, 1, "iterable"))
    yield _at(args, kwargs, 0, "func"), _seq(first) if not isinstance(first, Later) else (), None
    yield _at(args, kwargs, 3, "callback"), (Later("results"),), None
    yield _at(args, kwargs, 4, "error_callback"), (Later("exception"),), None


def _loop_call(index: int) -> _Extract:
    """An event loop's `call_soon(callback, *args)`, `call_later(delay, callback, *args)`,
    `run_in_executor(executor, func, *args)`: the callable at `index`, the rest its args."""

    def extract(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
        yield _at(args, {}, index, ""), args[index + 1 :], None

    return extract


_EXIT: Final = _called_with(0, "", "exception type", "exception", "traceback")
_EXIT_STACK: Final[dict[str, _Extract]] = {"callback": _callback, "push": _EXIT}
_ASYNC_EXIT_STACK: Final[dict[str, _Extract]] = {
    **_EXIT_STACK,
    "push_async_callback": _callback,
    "push_async_exit": _EXIT,
}
_EXECUTOR: Final[dict[str, _Extract]] = {"submit": _callback, "map": _mapped}
_POOL: Final[dict[str, _Extract]] = {
    "apply": _applied,
    "apply_async": _applied,
    "map": _pool_mapped,
    "map_async": _pool_mapped,
    "imap": _pool_mapped,
    "imap_unordered": _pool_mapped,
    "starmap": _pool_starmapped,
    "starmap_async": _pool_starmapped,
}
_LOOP: Final[dict[str, _Extract]] = {
    "call_soon": _loop_call(0),
    "call_soon_threadsafe": _loop_call(0),
    "call_later": _loop_call(1),
    "call_at": _loop_call(1),
    "run_in_executor": _loop_call(1),
    "add_signal_handler": _loop_call(1),
}
#: Objects whose methods register a callable: (classes, by the names a pickle may reach them
#: by; what returns an instance, for `make().method` through getattr; their methods). An
#: ExitStack calls its callbacks when closed, a scheduler when run, an event loop when it
#: runs (`run_in_executor` and an executor's `submit`/`map` or a pool's `apply`/`map` at once,
#: in a worker): a pickle can reach every one of those calls too, so each counts as set up.
_REGISTRAR_METHODS: Final[
    tuple[tuple[tuple[str, ...], tuple[str, ...], dict[str, _Extract]], ...]
] = (
    (
        ("contextlib.ExitStack", "contextlib._BaseExitStack"),
        ("contextlib.ExitStack",),
        _EXIT_STACK,
    ),
    (("contextlib.AsyncExitStack",), ("contextlib.AsyncExitStack",), _ASYNC_EXIT_STACK),
    (("sched.scheduler",), ("sched.scheduler",), {"enter": _scheduled, "enterabs": _scheduled}),
    (
        (
            "concurrent.futures.Executor",
            "concurrent.futures._base.Executor",
            "concurrent.futures.ThreadPoolExecutor",
            "concurrent.futures.thread.ThreadPoolExecutor",
            "concurrent.futures.ProcessPoolExecutor",
            "concurrent.futures.process.ProcessPoolExecutor",
        ),
        (
            "concurrent.futures.ThreadPoolExecutor",
            "concurrent.futures.thread.ThreadPoolExecutor",
            "concurrent.futures.ProcessPoolExecutor",
            "concurrent.futures.process.ProcessPoolExecutor",
        ),
        _EXECUTOR,
    ),
    (
        ("multiprocessing.pool.Pool", "multiprocessing.pool.ThreadPool"),
        (
            "multiprocessing.Pool",
            "multiprocessing.pool.Pool",
            "multiprocessing.pool.ThreadPool",
            "multiprocessing.dummy.Pool",
            "multiprocessing.context.BaseContext().Pool",
        ),
        _POOL,
    ),
    (
        (
            "asyncio.AbstractEventLoop",
            "asyncio.events.AbstractEventLoop",
            "asyncio.BaseEventLoop",
            "asyncio.base_events.BaseEventLoop",
            "asyncio.SelectorEventLoop",
            "asyncio.selector_events.BaseSelectorEventLoop",
            "asyncio.unix_events.SelectorEventLoop",
            "asyncio.unix_events._UnixSelectorEventLoop",
            "asyncio.EventLoop",
        ),
        (
            "asyncio.new_event_loop",
            "asyncio.events.new_event_loop",
            "asyncio.get_event_loop",
            "asyncio.events.get_event_loop",
            "asyncio.SelectorEventLoop",
            "asyncio.unix_events.SelectorEventLoop",
            "asyncio.unix_events._UnixSelectorEventLoop",
            "asyncio.EventLoop",
            "asyncio.get_event_loop_policy().new_event_loop",
            "asyncio.get_event_loop_policy().get_event_loop",
        ),
        _LOOP,
    ),
)


def _unbound(extract: _Extract) -> _Extract:
    """`Class.method(instance, *args)`: the instance is not an argument of the registration."""

    def unbound(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Planned]:
        return extract(args[1:], kwargs)

    return unbound


def _method_registrars() -> dict[str, _Extract]:
    """Each registrar method by the names a call reaches it by: `module.Class.method` (the
    global or `getattr(Class, name)`, called with the instance first) and
    `module.make().method` (getattr on an instance the pickle made, which the stubs name after
    what made it)."""
    table: dict[str, _Extract] = {}
    for classes, makers, methods in _REGISTRAR_METHODS:
        for method, extract in methods.items():
            for cls in classes:
                table[f"{cls}.{method}"] = _unbound(extract)
            for maker in makers:
                table[f"{maker}().{method}"] = extract
    return table


_REGISTRARS.update(_method_registrars())
#: Every registrar's name, for the one set lookup a call pays.
NAMES: Final = frozenset(_REGISTRARS)
#: Registrars whose callable is an attribute a BUILD can set afterwards (`obj.__dict__` or
#: the slot state of BUILD's (dict, slots) pair): a defaultdict rebuilt by NEWOBJ, which
#: registers nothing, then given a `default_factory` by BUILD, calls it on a missing key.
SLOTS: Final[dict[str, str]] = {"collections.defaultdict": "default_factory"}


def set_by_state(name: str, state: Any) -> Iterator[Any]:
    """The callable a BUILD of registrar `name`'s instance sets, if it sets one."""
    attr = SLOTS[name]
    parts = state if isinstance(state, tuple) else (state,)
    for part in parts[:2]:
        if isinstance(part, dict):
            func = part.get(attr)
            if func is not None:
                yield func


def calls(name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> Iterator[Planned]:
    """The calls registrar `name` sets up, given the arguments it was called with."""
    extract = _REGISTRARS.get(name)
    if extract is None:
        return
    for func, fargs, fkwargs in extract(args, kwargs or {}):
        if func is not None:
            yield func, fargs, fkwargs


__all__ = ["NAMES", "SLOTS", "Later", "Planned", "calls", "set_by_state"]
