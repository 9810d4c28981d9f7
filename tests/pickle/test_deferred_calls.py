"""Callables a pickle registers to be called later: at garbage collection, at exit, on a
signal, when an array is printed, when a thread starts or a missing key is read.

`weakref.finalize(object(), os.system, "id")` runs `os.system("id")` as soon as the temporary
object dies, during the load. Such a registrar is judged as the call it sets up: the callable
with the arguments it will get. Nothing here is ever loaded.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from modelaudit.rules import pickle as R
from tests.pickle._pickle_corpus import Op, call, critical, g0, p2, p4, s, scan, sg, warnings_of

_ST = ("sentence_transformers", "SentenceTransformer")
_OBJ = call(sg("builtins", "object"))
_NONE = Op(b"N")


def _tup(*items: bytes) -> Op:
    return Op(b"(" + b"".join(items) + b"t")


def _lst(*items: bytes) -> Op:
    return Op(b"(" + b"".join(items) + b"l")


def _dct(*pairs: bytes) -> Op:
    return Op(b"(" + b"".join(pairs) + b"d")


def _partial(func: bytes, *bound: Any) -> Op:
    return call(sg("functools", "partial"), Op(func), *bound)


def _registrations(func: bytes, arg: str) -> list[tuple[str, bytes]]:
    """(label, pickle body) of every registrar handed `func` to call with `arg`."""
    f = Op(func)
    a = s(arg)
    return [
        ("weakref.finalize", call(sg("weakref", "finalize"), _OBJ, f, arg)),
        ("weakref.ref", call(sg("weakref", "ref"), _OBJ, f)),
        ("_weakref.ref", call(sg("_weakref", "ref"), _OBJ, f)),
        ("weakref.WeakMethod", call(sg("weakref", "WeakMethod"), _OBJ, f)),
        ("atexit.register", call(sg("atexit", "register"), f, arg)),
        ("threading.Timer", call(sg("threading", "Timer"), 1, f, _tup(a))),
        ("threading.Thread", call(sg("threading", "Thread"), _NONE, f, _NONE, _tup(a))),
        ("_thread.start_new_thread", call(sg("_thread", "start_new_thread"), f, _tup(a))),
        ("signal.signal", call(sg("signal", "signal"), 2, f)),
        ("sys.setprofile", call(sg("sys", "setprofile"), f)),
        ("sys.settrace", call(sg("sys", "settrace"), f)),
        ("sys.addaudithook", call(sg("sys", "addaudithook"), f)),
        ("threading.settrace", call(sg("threading", "settrace"), f)),
        ("codecs.register", call(sg("codecs", "register"), f)),
        ("copyreg.pickle", call(sg("copyreg", "pickle"), sg("builtins", "int"), f)),
        ("functools.reduce", call(sg("functools", "reduce"), f, _lst(a), a)),
        ("itertools.starmap", call(sg("itertools", "starmap"), f, _lst(_tup(a)))),
        ("builtins.map", call(sg("builtins", "map"), f, _lst(a))),
        ("builtins.filter", call(sg("builtins", "filter"), f, _lst(a))),
        ("collections.defaultdict", call(sg("collections", "defaultdict"), f)),
        ("numpy.seterrcall", call(sg("numpy", "seterrcall"), f)),
        (
            "numpy.set_printoptions",
            call(sg("numpy", "set_printoptions"), *([_NONE] * 7), _dct(s("all"), f)),
        ),
        (
            "numpy._core.arrayprint.set_printoptions",
            call(
                sg("numpy._core.arrayprint", "set_printoptions"),
                *([_NONE] * 7),
                _dct(s("float"), f),
            ),
        ),
        ("codecs.register_error", call(sg("codecs", "register_error"), "strict2", f)),
        ("builtins.iter", call(sg("builtins", "iter"), f, a)),
        ("numpy.apply_along_axis", call(sg("numpy", "apply_along_axis"), f, 0, _NONE, a)),
        (
            "numpy.lib._shape_base_impl.apply_along_axis",
            call(sg("numpy.lib._shape_base_impl", "apply_along_axis"), f, 0, _NONE, a),
        ),
        ("numpy.fromfunction", call(sg("numpy", "fromfunction"), f, _tup(b"K\x02"))),
        ("numpy.piecewise", call(sg("numpy", "piecewise"), _NONE, _lst(), _lst(f), a)),
        (
            "concurrent.futures.ThreadPoolExecutor",
            call(sg("concurrent.futures", "ThreadPoolExecutor"), 2, "p", f, _tup(a)),
        ),
    ]


_DANGEROUS = [
    ("os", "system", "id"),
    ("builtins", "exec", "import os"),
    ("subprocess", "Popen", "id"),
]


@pytest.mark.parametrize(("module", "name", "arg"), _DANGEROUS)
@pytest.mark.parametrize("index", range(len(_registrations(b"", ""))))
def test_a_registered_dangerous_callable_is_judged_as_called(
    module: str, name: str, arg: str, index: int
) -> None:
    """The callable gets a call finding of its own (DANGEROUS_CALL, its family), as if the
    pickle called it; before, only its import was reported."""
    label, body = _registrations(sg(module, name), arg)[index]
    result, _ = scan(p4(body))
    calls = [
        i
        for i in result.issues
        if i.rule == R.DANGEROUS_CALL
        and i.details.get("module") == module
        and i.details.get("function") == name
    ]
    assert calls, (label, [i.message for i in result.issues])
    assert calls[0].severity.value == "critical"
    assert label in calls[0].message, calls[0].message


@pytest.mark.parametrize("index", range(len(_registrations(b"", ""))))
def test_a_registered_partial_of_a_model_loader_is_critical(index: int) -> None:
    """partial(SentenceTransformer, "attacker/repo") registered: the class is called later
    with the repository (before: a warning at most, or nothing)."""
    label, body = _registrations(_partial(sg(*_ST), "attacker/repo"), "x")[index]
    result, _ = scan(p4(body))
    calls = [
        i for i in result.issues if i.rule == R.DANGEROUS_CALL and "attacker/repo" in i.message
    ]
    assert calls and calls[0].severity.value == "critical", (
        label,
        [i.message for i in result.issues],
    )


def test_a_registered_unpickler_has_its_payload_scanned() -> None:
    """finalize(obj, pickle.loads, payload): the payload is a nested pickle, as when pickle.loads
    is called directly."""
    payload = b"\x80\x04" + call(sg("posix", "system"), "id") + b"."
    result, _ = scan(p4(call(sg("weakref", "finalize"), _OBJ, sg("_pickle", "loads"), payload)))
    assert any("posix.system" in m for m in critical(result)), [i.message for i in result.issues]


def test_a_partial_swapped_after_its_registration_is_judged_again() -> None:
    """The partial is registered while it holds print, then BUILD swaps the loader in (fetched
    back from the memo): the registrar calls what the partial holds when it fires."""
    body = (
        _partial(sg("builtins", "print"))
        + b"\x94"  # MEMOIZE 0
        + b"0"  # POP
        + call(sg("weakref", "finalize"), _OBJ, Op(b"h\x00"))
        + b"0"
        + b"h\x00"
        + _tup(sg(*_ST), _tup(s("attacker/repo")), b"}", b"N")
        + b"b"
    )
    result, _ = scan(p4(body))
    calls = [
        i for i in result.issues if i.rule == R.DANGEROUS_CALL and "attacker/repo" in i.message
    ]
    assert calls, [i.message for i in result.issues]


def test_a_partial_of_a_model_loader_handed_to_any_callable_is_critical() -> None:
    """sorted(items, key=partial(ST, repo)) through a partial's keywords: the class itself
    handed over was already CRITICAL; wrapped in a partial it was not."""
    sorter = _partial(sg("builtins", "sorted"))
    key = _partial(sg(*_ST), "attacker/repo")
    body = call(
        Op(sorter + _tup(sg("builtins", "sorted"), _tup(), _dct(s("key"), key), b"N") + b"b"),
        _lst(s("a"), s("b")),
    )
    result, _ = scan(p4(body))
    assert critical(result), [i.message for i in result.issues]


def test_rebuilt_instances_do_not_register_anything() -> None:
    """NEWOBJ (cls.__new__) and copyreg's _reconstructor build a Thread, Timer or finalize
    without __init__: nothing is registered, nothing new is reported."""
    for module, name in [
        ("threading", "Thread"),
        ("threading", "Timer"),
        ("weakref", "finalize"),
        ("collections", "defaultdict"),
    ]:
        newobj = p4(sg(module, name) + _tup(_OBJ, sg("os", "system"), s("id")) + b"\x81")
        result, _ = scan(newobj)
        assert not [
            i
            for i in result.issues
            if i.details.get("function") == "system" and i.rule == R.DANGEROUS_CALL
        ]


def test_real_deferred_structures_stay_quiet() -> None:
    """What real pickles hold: defaultdict(list), defaultdict(partial(defaultdict, int)),
    a partial of a numpy function, map/filter objects and iterators (`iter(list)`), numpy
    print options with a numpy formatter."""
    import collections
    import functools

    import numpy as np

    samples = [
        collections.defaultdict(list, {"a": [1]}),
        collections.defaultdict(functools.partial(collections.defaultdict, int)),
        functools.partial(np.round, decimals=2),
        map(str, [1, 2]),
        filter(None, [0, 1]),
        iter([1, 2, 3]),
        iter((1, 2)),
    ]
    for proto in (2, 4, 5):
        for obj in samples:
            result, _ = scan(pickle.dumps(obj, protocol=proto))
            assert not critical(result), critical(result)
            assert not warnings_of(result), warnings_of(result)
    formatter = p2(
        call(
            g0("numpy", "set_printoptions"),
            *([_NONE] * 7),
            _dct(s("float"), g0("numpy", "format_float_positional")),
        )
    )
    result, _ = scan(formatter)
    assert not critical(result), critical(result)


def test_print_formatters_through_a_partial_and_bare_classes() -> None:
    """partial(numpy.set_printoptions, formatter={...})() and a bare loader class as a
    formatter: the class is called with each array element printed."""
    st = Op(sg(*_ST))
    printopts = _partial(sg("numpy", "set_printoptions"))
    state = _tup(
        sg("numpy", "set_printoptions"),
        _tup(),
        _dct(s("formatter"), _dct(s("all"), _partial(st, "attacker/repo"))),
        b"N",
    )
    through_partial = call(Op(printopts + state + b"b"))
    bare = call(sg("numpy", "set_printoptions"), *([_NONE] * 7), _dct(s("int"), st))
    for body in (through_partial, bare):
        result, _ = scan(p4(body))
        calls = [i for i in result.issues if i.rule == R.DANGEROUS_CALL]
        assert calls and calls[0].severity.value == "critical", [i.message for i in result.issues]


def test_a_factory_set_by_build_on_a_rebuilt_defaultdict_is_registered() -> None:
    """NEWOBJ builds a defaultdict without a factory (quiet), then BUILD's slot state sets
    `default_factory` to a partial of a loader: a missing key calls it."""
    newobj = sg("collections", "defaultdict") + _tup() + b"\x81"
    state = _tup(_NONE, _dct(s("default_factory"), _partial(sg(*_ST), "attacker/repo")))
    result, _ = scan(p4(newobj + state + b"b"))
    calls = [
        i for i in result.issues if i.rule == R.DANGEROUS_CALL and "attacker/repo" in i.message
    ]
    assert calls, [i.message for i in result.issues]


def test_nested_registrations_sharing_one_table_cost_a_bounded_walk() -> None:
    """Each level's formatter table holds the next level's partial 16 times (one memo slot):
    a few hundred bytes describe 16**8 calls. The walk stops at its budget and says so."""
    import time

    from modelaudit.rules.core import ANALYSIS_BUDGET

    level: bytes = _partial(sg("builtins", "print"))
    for k in range(8):
        slot = bytes([k])
        pairs = s("k0") + level + b"q" + slot  # BINPUT: the level's partial kept in slot k
        pairs += b"".join(s(f"k{i}") + b"h" + slot for i in range(1, 16))  # BINGET
        level = call(
            sg("functools", "partial"),
            sg("numpy", "set_printoptions"),
            *([_NONE] * 7),
            Op(b"(" + pairs + b"d"),
        )
    data = p4(call(sg("builtins", "map"), Op(level), _lst(s("a"))))
    assert len(data) < 4096
    start = time.process_time()
    result, _ = scan(data)
    assert time.process_time() - start < 5
    assert any(i.rule == ANALYSIS_BUDGET for i in result.issues), [i.message for i in result.issues]


def test_a_partial_handed_over_then_swapped_by_build_is_critical() -> None:
    """partial(print) handed to numpy.vectorize (which calls it later), then BUILD swaps a
    loader in: pickle never writes a partial's state with another function than it was made
    with. The loader is imported only after the handover."""
    body = (
        _partial(sg("builtins", "print"))
        + b"q\x00"  # BINPUT 0
        + b"0"
        + call(sg("numpy", "vectorize"), Op(b"h\x00"))
        + b"0"
        + b"h\x00"
        + _tup(sg(*_ST), _tup(s("attacker/repo")), b"}", b"N")
        + b"b"
    )
    result, _ = scan(p4(body))
    calls = [
        i for i in result.issues if i.rule == R.DANGEROUS_CALL and "attacker/repo" in i.message
    ]
    assert calls and calls[0].severity.value == "critical", [i.message for i in result.issues]


def test_a_partial_pickled_by_pickle_is_not_a_swap() -> None:
    """pickle.dumps(partial(ST, repo)) writes ST into both the REDUCE and the BUILD state (the
    same memo entry): a stored factory, quiet as before."""
    st = sg(*_ST) + b"q\x00"
    made = sg("functools", "partial") + b"(" + st + b"tR"
    data = p4(made + _tup(Op(b"h\x00"), _tup(s("org/model")), b"}", b"N") + b"b")
    result, _ = scan(data)
    assert not critical(result), critical(result)


def _getattr(obj: bytes, name: str) -> Op:
    return call(sg("builtins", "getattr"), Op(obj), name)


def _method_registrations(func: bytes, arg: str) -> list[tuple[str, bytes]]:
    """(label, body) of registrar methods handed `func` to call with `arg`: each once through
    `getattr(instance, method)` and once as the unbound `Class.method(instance, ...)`."""
    f = Op(func)
    a = s(arg)
    specs: list[tuple[tuple[str, str], tuple[str, str], tuple[Any, ...]]] = [
        (("contextlib", "ExitStack"), ("contextlib", "ExitStack.callback"), (f, a)),
        (
            ("contextlib", "AsyncExitStack"),
            ("contextlib", "AsyncExitStack.push_async_callback"),
            (f, a),
        ),
        (("sched", "scheduler"), ("sched", "scheduler.enter"), (0, 1, f, _tup(a))),
        (("sched", "scheduler"), ("sched", "scheduler.enterabs"), (0, 1, f, _tup(a))),
        (
            ("concurrent.futures", "ThreadPoolExecutor"),
            ("concurrent.futures", "ThreadPoolExecutor.submit"),
            (f, a),
        ),
        (
            ("concurrent.futures", "ThreadPoolExecutor"),
            ("concurrent.futures", "ThreadPoolExecutor.map"),
            (f, _lst(a)),
        ),
        (("multiprocessing", "Pool"), ("multiprocessing.pool", "Pool.apply"), (f, _tup(a))),
        (
            ("multiprocessing.pool", "ThreadPool"),
            ("multiprocessing.pool", "ThreadPool.apply_async"),
            (f, _tup(a)),
        ),
        (("multiprocessing", "Pool"), ("multiprocessing.pool", "Pool.map"), (f, _lst(a))),
        (
            ("multiprocessing", "Pool"),
            ("multiprocessing.pool", "Pool.starmap"),
            (f, _lst(_tup(a))),
        ),
        (("asyncio", "new_event_loop"), ("asyncio", "BaseEventLoop.call_soon"), (f, a)),
        (("asyncio", "new_event_loop"), ("asyncio", "BaseEventLoop.call_later"), (1, f, a)),
        (
            ("asyncio", "get_event_loop"),
            ("asyncio.base_events", "BaseEventLoop.run_in_executor"),
            (_NONE, f, a),
        ),
    ]
    out: list[tuple[str, bytes]] = []
    for maker, (module, qual), values in specs:
        method = qual.rsplit(".", 1)[1]
        instance = call(sg(*maker))
        out.append((f"{'.'.join(maker)}().{method}", call(_getattr(instance, method), *values)))
        out.append((f"{module}.{qual}", call(sg(module, qual), instance, *values)))
    return out


@pytest.mark.parametrize("index", range(len(_method_registrations(b"", ""))))
def test_a_callable_handed_to_a_registrar_method_is_judged_as_called(index: int) -> None:
    """ExitStack().callback(os.system, "id") and its kind: the stack calls it when closed, the
    scheduler when run, an executor or a pool at once in a worker, an event loop when it runs
    (run_in_executor at once). Before, only os.system's import was reported."""
    label, body = _method_registrations(sg("os", "system"), "id")[index]
    result, _ = scan(p4(body))
    calls = [
        i
        for i in result.issues
        if i.rule == R.DANGEROUS_CALL
        and i.details.get("function") == "system"
        and f"deferred by {label}" in i.message
    ]
    assert calls, (label, [i.message for i in result.issues])
    assert calls[0].severity.value == "critical"
    assert "'id'" in calls[0].message, calls[0].message


def test_an_unpickler_handed_to_a_registrar_method_has_its_call_reported() -> None:
    """ExitStack().callback(pickle.loads, payload): the call is reported with the payload."""
    payload = b"\x80\x04" + call(sg("posix", "system"), "id") + b"."
    stack = call(sg("contextlib", "ExitStack"))
    body = call(_getattr(stack, "callback"), sg("_pickle", "loads"), payload)
    result, _ = scan(p4(body))
    assert any(
        i.rule == R.DANGEROUS_CALL and "deferred by contextlib.ExitStack().callback" in i.message
        for i in result.issues
    ), [i.message for i in result.issues]


def _after_sixteen(func: bytes) -> list[tuple[str, bytes]]:
    """(label, body): `func` as the 17th formatter of set_printoptions and the 17th function
    of piecewise, after 16 harmless ones."""
    harmless = sg("builtins", "str")
    table = b"".join(s(f"k{n}") + harmless for n in range(16)) + s("k16") + func
    return [
        ("set_printoptions", call(sg("numpy", "set_printoptions"), *([_NONE] * 7), _dct(table))),
        ("piecewise", call(sg("numpy", "piecewise"), _NONE, _lst(), _lst(*[harmless] * 16, func))),
    ]


@pytest.mark.parametrize("index", range(2))
def test_the_seventeenth_callable_handed_over_is_judged(index: int) -> None:
    """A formatter table and a piecewise function list were read to their 16th entry: a
    partial of a model loader after 16 harmless ones went unjudged."""
    label, body = _after_sixteen(_partial(sg(*_ST), "attacker/repo"))[index]
    result, _ = scan(p4(body))
    assert any("attacker/repo" in m for m in critical(result)), (label, result.issues)


def test_a_formatter_table_shared_by_many_calls_spends_the_forward_budget() -> None:
    """Every formatter is judged, each charged to the stream's forward budget: one large table
    fetched from the memo by many calls ends the analysis there, inconclusive."""
    from modelaudit.findings import FileStatus
    from modelaudit.rules.core import ANALYSIS_BUDGET

    table = _dct(*(s(f"k{n}") + b"h\x00" for n in range(4096)))  # BINGET 0: builtins.str
    body = sg("builtins", "str") + b"\x94" + b"0" + table + b"\x94"  # MEMOIZE 1
    printopts = sg("numpy", "set_printoptions")
    for _ in range(32):
        body += call(printopts, *([_NONE] * 7), Op(b"h\x01")) + b"0"
    result, _ = scan(p4(body + _NONE))
    assert ANALYSIS_BUDGET in {i.rule for i in result.issues}
    assert result.status is FileStatus.INCONCLUSIVE


def test_a_loader_class_handed_over_as_the_sixty_fifth_argument_is_critical() -> None:
    """Only a call's first 64 arguments were looked at for call-judged classes handed over."""
    body = call(sg("builtins", "max"), *([1] * 64), Op(sg(*_ST)))
    result, _ = scan(p4(body))
    assert any("SentenceTransformer is passed as a value" in m for m in critical(result))


def test_an_argument_tuple_shared_by_many_calls_spends_the_handed_over_budget() -> None:
    """Every argument is read, each charged to the stream: one long tuple fetched from the
    memo by many calls ends the analysis there, inconclusive."""
    from modelaudit.findings import FileStatus
    from modelaudit.rules.core import ANALYSIS_BUDGET

    # a loader class imported (so calls' arguments are looked at), then the shared arguments
    body = sg(*_ST) + b"0(" + b"K\x01" * 65536 + b"t\x94"  # MEMOIZE 0
    for _ in range(200):
        body += sg("builtins", "max") + b"h\x00R0"
    result, _ = scan(p4(body + _NONE))
    assert ANALYSIS_BUDGET in {i.rule for i in result.issues}
    assert result.status is FileStatus.INCONCLUSIVE


def test_a_loader_class_as_a_partials_seventeenth_bound_argument_is_critical() -> None:
    """A partial's bound arguments were cut to 16 when it was called: the class as the 17th
    argument of `partial(max, ...)()` scanned clean."""
    body = Op(_partial(sg("builtins", "max"), *([Op(b"K\x01")] * 16), sg(*_ST)) + b")R")
    result, _ = scan(p4(body))
    assert any("SentenceTransformer is passed as a value" in m for m in critical(result))


def test_a_loader_class_as_the_seventeenth_starmap_argument_is_critical() -> None:
    """A registrar's argument tuple was cut to 16 (`deferred._seq`): the class as the 17th
    item starmap hands to `max` went unjudged (only starmap's own WARNING)."""
    body = call(
        sg("itertools", "starmap"),
        sg("builtins", "max"),
        _lst(_tup(*([Op(b"K\x01")] * 16), sg(*_ST))),
    )
    result, _ = scan(p4(body))
    assert any("SentenceTransformer is passed as a value" in m for m in critical(result))


def test_the_thousand_and_twenty_fifth_instance_setstate_hook_is_judged() -> None:
    """Only 1,024 instances' stored `__setstate__` were remembered: the 1,025th, a loader
    class its next BUILD calls with the state, scanned clean."""
    body = b""
    for _ in range(1024):
        body += _OBJ + _dct(s("__setstate__"), sg("builtins", "print")) + b"bNb0"
    body += _OBJ + _dct(s("__setstate__"), sg(*_ST)) + b"b" + s("org/model") + b"b0"
    result, _ = scan(p4(body + _NONE))
    assert any("SentenceTransformer('org/model')" in m for m in critical(result))


def test_a_registrar_argument_list_shared_by_many_calls_spends_the_handed_over_budget() -> None:
    """Registrars hand on every argument now; one long tuple fetched from the memo by many
    registrar calls is charged each time and ends the analysis there, inconclusive."""
    from modelaudit.findings import FileStatus
    from modelaudit.rules.core import ANALYSIS_BUDGET

    body = b"(" + b"K\x01" * 65536 + b"t\x94"  # MEMOIZE 0: the shared arguments
    for _ in range(200):
        body += sg("_thread", "start_new_thread") + b"(" + sg("builtins", "max") + b"h\x00tR0"
    result, _ = scan(p4(body + _NONE))
    assert ANALYSIS_BUDGET in {i.rule for i in result.issues}
    assert result.status is FileStatus.INCONCLUSIVE
