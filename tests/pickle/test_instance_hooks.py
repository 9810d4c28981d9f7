"""Callables a BUILD stores in an instance under a name Python fetches from the instance.

BUILD fetches `inst.__setstate__` by an ordinary attribute lookup, and an instance's own
`__dict__` beats its class's method: a first BUILD that stores `__setstate__` has the next
BUILD of the object call it with its state, during the load. `__reduce_ex__`, `__getstate__`
and `__deepcopy__` stored so are called when the loaded object is pickled or deep-copied.
Nothing here is ever loaded.
"""

from __future__ import annotations

import collections
import pickle
from typing import Any

import pytest

from modelaudit.rules import pickle as R
from tests.pickle._pickle_corpus import Op, call, critical, p4, s, scan, sg, warnings_of

_ST = sg("sentence_transformers", "SentenceTransformer")
_NONE = b"N"


def _tup(*items: bytes) -> Op:
    return Op(b"(" + b"".join(items) + b"t")


def _dct(*pairs: bytes) -> Op:
    return Op(b"(" + b"".join(pairs) + b"d")


def _partial(func: bytes, *bound: str) -> Op:
    return call(sg("functools", "partial"), Op(func), *bound)


def _instances() -> list[tuple[str, bytes]]:
    """Objects a model pickle builds: a called class, a NEWOBJ rebuild, copyreg's."""
    return [
        ("called", call(sg("collections", "OrderedDict"))),
        ("newobj", sg("sklearn.linear_model", "LinearRegression") + _tup() + b"\x81"),
        (
            "reconstructor",
            call(
                sg("copyreg", "_reconstructor"),
                sg("sklearn.linear_model", "LinearRegression"),
                sg("builtins", "object"),
                Op(_NONE),
            ),
        ),
    ]


def _stored(hooks: bytes, slot: bool) -> bytes:
    """A BUILD state storing `hooks` (dict pairs) in the instance's dict or through setattr."""
    table = _dct(hooks)
    return _tup(Op(_NONE), table) if slot else table


def _calls(result: Any, needle: str) -> list[Any]:
    return [i for i in result.issues if i.rule == R.DANGEROUS_CALL and needle in i.message]


@pytest.mark.parametrize("slot", [False, True])
@pytest.mark.parametrize("index", range(3))
def test_a_stored_setstate_is_called_by_the_next_build(index: int, slot: bool) -> None:
    """BUILD {'__setstate__': SentenceTransformer}, then BUILD 'attacker/repo': the loader is
    called with the repository during the load. Before: no finding at all (the class is
    judged only when called)."""
    label, instance = _instances()[index]
    body = instance + _stored(s("__setstate__") + _ST, slot) + b"b" + s("attacker/repo") + b"b"
    result, _ = scan(p4(body))
    calls = _calls(result, "attacker/repo")
    assert calls, (label, [i.message for i in result.issues])
    assert calls[0].severity.value == "critical"


def test_a_stored_setstate_dangerous_callable_gets_a_call_finding() -> None:
    """os.system stored as __setstate__ and fed 'id' by the next BUILD: a call finding with
    the argument, beside the import's."""
    instance = _instances()[0][1]
    body = instance + _dct(s("__setstate__") + sg("os", "system")) + b"b" + s("id") + b"b"
    result, _ = scan(p4(body))
    calls = _calls(result, "os.system('id')")
    assert calls and "__setstate__" in calls[0].message, [i.message for i in result.issues]


@pytest.mark.parametrize("hook", ["__getstate__", "__reduce_ex__", "__deepcopy__"])
def test_a_stored_saving_hook_is_judged_as_called(hook: str) -> None:
    """partial(SentenceTransformer, 'attacker/repo') stored as the instance's __getstate__
    (or __reduce_ex__, __deepcopy__): torch.save, pickle.dumps or copy.deepcopy of the loaded
    model calls it. Before: no finding."""
    instance = _instances()[1][1]
    body = instance + _dct(s(hook) + _partial(_ST, "attacker/repo")) + b"b"
    result, _ = scan(p4(body))
    assert _calls(result, "attacker/repo"), [i.message for i in result.issues]
    system = instance + _dct(s(hook) + sg("os", "system")) + b"b"
    result, _ = scan(p4(system))
    calls = _calls(result, "os.system(")
    assert calls and hook in calls[0].message, [i.message for i in result.issues]


@pytest.mark.parametrize("hook", ["__getattr__", "__call__", "__copy__", "__reduce__"])
def test_names_python_looks_up_on_the_type_are_not_calls(hook: str) -> None:
    """__getattr__, __call__ and __copy__ are fetched from the class; __reduce__ from the
    instance only when the class overrides it: storing them calls nothing (the dangerous
    import is still reported)."""
    instance = _instances()[0][1]
    body = instance + _dct(s(hook) + sg("os", "system")) + b"b" + s("id") + b"b"
    result, _ = scan(p4(body))
    assert not _calls(result, "os.system("), [i.message for i in result.issues]
    assert critical(result)  # the import


def test_real_objects_with_state_stay_quiet() -> None:
    """Objects that pickle their own state (an OrderedDict subclass instance with attributes,
    a fitted sklearn estimator) are built and BUILT more than once without a finding."""
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    od = collections.OrderedDict(a=1)
    for obj in (model, od, [model, model], {"m": model, "o": od}):
        for proto in (2, 4, 5):
            result, _ = scan(pickle.dumps(obj, protocol=proto))
            assert not critical(result), critical(result)
            assert not warnings_of(result), warnings_of(result)
