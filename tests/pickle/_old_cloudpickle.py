"""Pickles as cloudpickle writes them under CPython 3.8-3.10 (16 code arguments), made with
the real cloudpickle of this interpreter: only each code object's arguments are replaced by
the ones CPython 3.8 gives (its bytecode, compiled from the same source, spelled out here)."""

from __future__ import annotations

import io
import types
from typing import Any

import cloudpickle

#: CPython 3.8 bytecode and stack size of the sample functions, by code name.
PY38: dict[str, tuple[bytes, int]] = {
    # constant_fn: return val  (LOAD_DEREF 0, RETURN_VALUE)
    "func": (b"\x88\x00S\x00", 1),
    "func_twin": (b"\x88\x00S\x00", 1),
    # linear_schedule: return progress_remaining * initial_value
    "scaled": (b"|\x00\x88\x00\x14\x00S\x00", 2),
    # get_linear_fn: if (1 - p) > end_fraction: return end
    #                else: return start + (1 - p) * (end - start) / end_fraction
    "linear": (
        b"d\x01|\x00\x18\x00\x88\x01k\x04r\x10\x88\x00S\x00"
        b"\x88\x02d\x01|\x00\x18\x00\x88\x00\x88\x02\x18\x00\x14\x00\x88\x01\x1b\x00\x17\x00S\x00"
        b"d\x00S\x00",
        4,
    ),
    # return x  (LOAD_FAST 1, RETURN_VALUE): a method
    "method": (b"|\x01S\x00", 1),
    # LOAD_BUILD_CLASS, RETURN_VALUE
    "builds": (b"G\x00S\x00", 1),
    # LOAD_CONST 5 with one constant
    "far_const": (b"d\x05S\x00", 1),
    # LOAD_DEREF 0, LOAD_DEREF 0, BINARY_ADD, RETURN_VALUE with a stack of 1
    "overflow": (b"\x88\x00\x88\x00\x17\x00S\x00", 1),
    # return lambda: __import__("os")  (LOAD_CONST 1, LOAD_CONST 2, MAKE_FUNCTION, RETURN)
    "outer": (b"d\x01d\x02\x84\x00S\x00", 2),
    "<lambda>": (b"t\x00d\x01\x83\x01S\x00", 2),
}


def as38(code: types.CodeType, names: tuple[str, ...] | None = None) -> tuple[Any, ...]:
    """`code` as the 16 arguments cloudpickle writes under CPython 3.8."""
    co_code, stacksize = PY38[code.co_name]
    return (
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_nlocals,
        stacksize,
        code.co_flags,
        co_code,
        code.co_consts,
        code.co_names if names is None else names,
        code.co_varnames,
        code.co_filename,
        code.co_name,
        code.co_firstlineno,
        b"",
        code.co_freevars,
        code.co_cellvars,
    )


class _Py38Pickler(cloudpickle.Pickler):
    def __init__(self, out: io.BytesIO, names: dict[str, tuple[str, ...]], protocol: int) -> None:
        super().__init__(out, protocol=protocol)
        self.names = names

    #: Rebuild functions as cloudpickle 1.x and 2.x did: `types.FunctionType` itself.
    before_3 = False

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.CodeType):
            return types.CodeType, as38(obj, self.names.get(obj.co_name))
        if self.before_3 and isinstance(obj, types.FunctionType) and obj.__closure__:
            cells = tuple(types.CellType() for _ in obj.__closure__)
            state = cloudpickle.cloudpickle._function_getstate(obj)
            setstate = cloudpickle.cloudpickle._function_setstate
            return (
                types.FunctionType,
                (obj.__code__, {}, None, None, cells),
                state,
                None,
                None,
                setstate,
            )
        return super().reducer_override(obj)


def dumps38(
    obj: Any,
    names: dict[str, tuple[str, ...]] | None = None,
    protocol: int = 4,
    *,
    before_3: bool = False,
) -> bytes:
    """`cloudpickle.dumps(obj)` with 3.8 code arguments; `names` patches a code's co_names;
    `before_3` writes functions as cloudpickle 1.6 (stable-baselines3's era) did."""
    out = io.BytesIO()
    pickler = _Py38Pickler(out, names or {}, protocol)
    pickler.before_3 = before_3
    pickler.dump(obj)
    return out.getvalue()


def constant_fn(val: float) -> Any:
    """stable-baselines3's `constant_fn` before FloatSchedule."""

    def func(_: float) -> float:
        return val

    return func


def linear_schedule(initial_value: float) -> Any:
    """RL Zoo's `linear_schedule`."""

    def scaled(progress_remaining: float) -> float:
        return progress_remaining * initial_value

    return scaled


def get_linear_fn(start: float, end: float, end_fraction: float) -> Any:
    """stable-baselines3's `get_linear_fn`."""

    def linear(progress_remaining: float) -> float:
        if (1 - progress_remaining) > end_fraction:
            return end
        return start + (1 - progress_remaining) * (end - start) / end_fraction

    return linear
