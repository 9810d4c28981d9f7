"""Closures whose bytecode names nothing (old stable-baselines3 schedules) are INFO; anything
that could reach a name, a class, a builtin or memory out of range is still carried code."""

from __future__ import annotations

import functools
import os
from typing import Any

import cloudpickle
import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import pickle as R
from modelaudit.scanners.pickle.pure_code import verify_code_args
from tests.pickle._old_cloudpickle import constant_fn, dumps38, get_linear_fn, linear_schedule
from tests.pickle._pickle_corpus import critical, scan, warnings_of


def _carried(result: Any) -> list[Any]:
    return [i for i in result.issues if i.rule == R.CARRIED_CODE]


def _assert_info(data: bytes, name: str) -> None:
    result, info = scan(data)
    assert info.complete and result.status is FileStatus.COMPLETE
    assert critical(result) == [] and warnings_of(result) == [], result.issues
    (carried,) = _carried(result)
    assert carried.severity is IssueSeverity.INFO
    assert name in carried.message and "names no global" in carried.message
    assert carried.details["verified"] is True


def _assert_carried_critical(data: bytes) -> list[str]:
    result, _ = scan(data)
    messages = critical(result)
    assert sum("carries Python code that runs when loaded" in m for m in messages) == 1, messages
    return messages


def _renamed(name: str) -> Any:
    """constant_fn's closure with code named `name` (its 3.8 bytecode is `PY38[name]`)."""
    fn = constant_fn(1.0)
    fn.__code__ = fn.__code__.replace(co_name=name)
    return fn


def test_constant_schedule_is_info() -> None:
    _assert_info(dumps38(constant_fn(0.0003)), "constant_fn.<locals>.func")


@pytest.mark.parametrize("protocol", [4, 5])
def test_schedules_as_cloudpickle_1_wrote_them_are_info(protocol: int) -> None:
    """cloudpickle 1.6 (`_builtin_type("LambdaType")` around the code) at 3.8's protocols."""
    data = dumps38([constant_fn(0.2), linear_schedule(0.001)], protocol=protocol, before_3=True)
    assert b"LambdaType" in data
    _assert_info(data, "linear_schedule.<locals>.scaled")


def test_a_function_type_around_unverified_code_is_critical() -> None:
    data = dumps38(constant_fn(0.2), names={"func": ("system",)}, before_3=True)
    _assert_carried_critical(data)


def test_linear_schedule_is_info() -> None:
    _assert_info(dumps38(linear_schedule(0.001)), "linear_schedule.<locals>.scaled")


def test_several_schedules_in_one_pickle_are_one_info() -> None:
    data = dumps38({"lr": linear_schedule(0.001), "clip": constant_fn(0.2)})
    _assert_info(data, "constant_fn.<locals>.func")


def test_a_jump_whose_unit_differs_between_38_and_310_stays_critical() -> None:
    """3.8 counts jump offsets in bytes, 3.10 in instructions: the same bytes run differently."""
    _assert_carried_critical(dumps38(get_linear_fn(1.0, 0.05, 0.1)))


def test_this_interpreters_layout_stays_critical() -> None:
    """18 code arguments are taken by CPython 3.11 to 3.14, whose opcode numbers differ."""
    _assert_carried_critical(cloudpickle.dumps(constant_fn(0.0003)))


def test_code_that_names_a_global_is_critical() -> None:
    def func(_: str) -> int:
        return os.system(_)

    _assert_carried_critical(dumps38(func))


def test_patched_co_names_is_critical_even_beside_a_verified_twin() -> None:
    """The two code calls render alike: the unverified one must not be merged away."""
    _assert_carried_critical(dumps38(constant_fn(1.0), names={"func": ("system",)}))
    twin = [constant_fn(1.0), _renamed("func_twin")]
    _assert_info(dumps38(twin), "constant_fn.<locals>.func")
    _assert_carried_critical(dumps38(twin, names={"func_twin": ("system",)}))


def test_a_cell_holding_os_system_is_critical() -> None:
    messages = critical(scan(dumps38(constant_fn(os.system)))[0])  # type: ignore[arg-type]
    assert any("system" in m for m in messages), messages


def test_a_nested_lambda_that_names_import_is_critical() -> None:
    def outer(_: int) -> Any:
        return lambda: __import__("os")

    _assert_carried_critical(dumps38(outer))


def test_a_class_rebuilt_by_cloudpickle_is_critical() -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("class Kept:\n    def method(self, x):\n        return x\n", namespace)  # sample only
    messages = _assert_carried_critical(dumps38([namespace["Kept"], constant_fn(1.0)]))
    assert any("Kept" in m for m in messages), messages


def test_load_build_class_is_critical() -> None:
    _assert_carried_critical(dumps38(_renamed("builds")))


def test_an_index_out_of_range_is_critical() -> None:
    _assert_carried_critical(dumps38(_renamed("far_const")))


def test_a_stack_past_its_size_is_critical() -> None:
    _assert_carried_critical(dumps38(_renamed("overflow")))


class _HandsOver:
    """`map(types.CodeType, [])`: the code type handed to a callable that calls it unseen."""

    def __reduce__(self) -> tuple[Any, ...]:
        import types

        return (map, (types.CodeType, []))


def test_the_code_type_handed_to_another_callable_is_critical() -> None:
    _assert_carried_critical(dumps38([constant_fn(1.0), _HandsOver()]))


def test_the_code_type_in_a_partial_is_judged_when_called() -> None:
    """A partial of the code type registered for later: its arguments are unverified here."""
    import types

    class _Later:
        def __reduce__(self) -> tuple[Any, ...]:
            return (functools.partial, (types.CodeType, 1, 2))

    _assert_carried_critical(dumps38([constant_fn(1.0), _Later()]))


class _NewObjOfCodeType:
    """`copyreg._slotnames` stands in for `copyreg.__newobj__` (same length, patched in)."""

    def __reduce__(self) -> tuple[Any, ...]:
        import copyreg
        import types

        return (copyreg._slotnames, (types.CodeType, 1, 2, 3))  # type: ignore[attr-defined]


def test_the_code_type_through_copyreg_newobj_is_critical() -> None:
    data = dumps38([constant_fn(1.0), _NewObjOfCodeType()])
    patched = data.replace(b"\x8c\x0a_slotnames", b"\x8c\x0a__newobj__")
    assert patched != data
    _assert_carried_critical(patched)


def _args(code: bytes, **changes: Any) -> tuple[Any, ...]:
    """Arguments of `def f(x): ...` with one free variable, in the 3.8 layout."""
    fields: dict[str, Any] = {
        "argcount": 1,
        "posonly": 0,
        "kwonly": 0,
        "nlocals": 1,
        "stacksize": 2,
        "flags": 0x13,
        "code": code,
        "consts": (None, 1.5),
        "names": (),
        "varnames": ("x",),
        "filename": "f.py",
        "name": "f",
        "firstlineno": 1,
        "lnotab": b"",
        "freevars": ("v",),
        "cellvars": (),
    }
    fields.update(changes)
    return tuple(fields.values())


RETURN_X = b"|\x00S\x00"


def test_the_verifier_accepts_plain_code_and_a_jump_valid_in_both_units() -> None:
    assert verify_code_args(_args(RETURN_X)) == "f"
    # LOAD_FAST 0; POP_JUMP_IF_FALSE 4 (byte 4 in 3.8, byte 8 in 3.10); two returns
    branches = b"|\x00r\x04d\x01S\x00d\x00S\x00"
    assert verify_code_args(_args(branches)) == "f"
    assert verify_code_args(_args(b"n\x00" + RETURN_X)) == "f"  # JUMP_FORWARD 0


def test_the_verifier_rejects_what_could_reach_out() -> None:
    rejected = [
        _args(RETURN_X, names=("system",)),
        _args(RETURN_X, names=["x"]),
        _args(RETURN_X, cellvars=("c",)),
        _args(RETURN_X, lnotab=b"\x02"),
        _args(RETURN_X, consts=(None, (1, compile("0", "", "eval")))),
        _args(RETURN_X, flags=0x13 | 0x20),  # generator
        _args(RETURN_X, argcount=2),  # more arguments than locals
        _args(RETURN_X, varnames=("x", "y")),
        _args(b"t\x00S\x00"),  # LOAD_GLOBAL
        _args(b"j\x00S\x00"),  # LOAD_ATTR
        _args(b"G\x00S\x00"),  # LOAD_BUILD_CLASS
        _args(b"\x90\x01" + RETURN_X),  # EXTENDED_ARG
        _args(b"|\x01S\x00"),  # local out of range
        _args(b"\x88\x01S\x00"),  # free variable out of range
        _args(b"d\x02S\x00"),  # constant out of range
        _args(b"|\x00|\x00k\x06S\x00"),  # COMPARE_OP `in`
        _args(b"|\x00|\x00|\x00\x17\x00\x17\x00S\x00"),  # stack deeper than 2
        _args(b"\x17\x00S\x00"),  # pops an empty stack
        _args(b"|\x00|\x00S\x00"),  # returns with two values on the stack
        _args(b"|\x00"),  # runs off the end
        _args(b"|\x00r\x00S\x00"),  # jumps backwards
        _args(b"|\x00r\x07d\x01S\x00d\x00S\x00"),  # into the middle of an instruction
        _args(b"|\x00r\x08d\x01S\x00d\x00S\x00"),  # 3.10's unit lands past the end
        _args(RETURN_X)[:15],
        (*_args(RETURN_X), b""),
    ]
    assert [verify_code_args(a) for a in rejected] == [None] * len(rejected)


def test_constants_shared_through_the_memo_are_bounded() -> None:
    shared: tuple[Any, ...] = (1.0,) * 256
    for _ in range(3):
        shared = (shared,) * 256
    assert verify_code_args(_args(RETURN_X, consts=(None, shared))) is None
