"""Tell a carried function that can only compute from one that can do anything.

cloudpickle ships closures by value: `types.CodeType(*args)` rebuilds the bytecode, then
`_make_function` and `_function_setstate` wrap it. Old stable-baselines3 schedules are such
closures (`constant_fn.<locals>.func` returns its cell). Code is harmless here only when it can
reach nothing: no global, attribute or module name (`co_names` empty) and bytecode that a
verifier proves uses only loads, arithmetic, comparisons and returns, with every index in range
and the stack within `co_stacksize` (hand-written bytecode with an out-of-range index is a
memory-corruption primitive, names or not).

The interpreter that runs the code is the loader's, not the writer's: an argument layout is
accepted only when the bytecode verifies under every CPython that takes that layout. Only the
16-argument layout (3.8, 3.9 and 3.10, whose opcode numbers agree on the instructions allowed
here; their jump units differ, so code must verify under both) is judged. The 18-argument
layout is taken by 3.11 to 3.14, whose opcode numbers disagree, and the 15-argument one by
3.7 and also by 3.5 and older (not wordcode): both stay unverified. dill's `_create_code`
converts between layouts, so its code objects stay unverified too.
"""

from __future__ import annotations

from typing import Any, Final

#: Largest bytecode and constant table verified; bigger code stays unverified.
MAX_CODE: Final = 4096
MAX_CONSTS: Final = 256
_CONST_DEPTH: Final = 4

#: CO_OPTIMIZED | CO_NEWLOCALS are required; CO_VARARGS, CO_VARKEYWORDS, CO_NESTED, CO_NOFREE
#: and the compile-time `__future__` bits are allowed; generator, coroutine and other bits are not.
_REQUIRED_FLAGS: Final = 0x1 | 0x2
_ALLOWED_FLAGS: Final = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x40 | 0x1FE0000

# CPython 3.8-3.10 opcode numbers (identical for these instructions in all three).
_NOP: Final = 9
_UNARY: Final = frozenset({10, 11, 12, 15})
#: MATMUL, POWER, MULTIPLY, MODULO, ADD, SUBTRACT, SUBSCR, FLOOR_DIVIDE, TRUE_DIVIDE,
#: LSHIFT, RSHIFT, AND, XOR, OR: two operands, one result.
_BINARY: Final = frozenset({16, 19, 20, 22, 23, 24, 25, 26, 27, 62, 63, 64, 65, 66})
_RETURN_VALUE: Final = 83
_LOAD_CONST: Final = 100
_COMPARE_OP: Final = 107
_JUMP_FORWARD: Final = 110
_POP_JUMP_IF: Final = frozenset({114, 115})
_LOAD_FAST: Final = 124
_STORE_FAST: Final = 125
_LOAD_DEREF: Final = 136
#: Rich comparisons only (`<` to `>=`); 3.8's `in`, `is`, `exception match` need more.
_COMPARE_OPS: Final = 6


def verify_code_args(args: Any) -> str | None:
    """The code's qualified name when `args` (a `types.CodeType` call's arguments) describe
    names-free bytecode that verifies under CPython 3.8, 3.9 and 3.10; None otherwise."""
    if not isinstance(args, tuple) or len(args) != 16:
        return None
    (
        argcount,
        posonly,
        kwonly,
        nlocals,
        stacksize,
        flags,
        code,
        consts,
        names,
        varnames,
        filename,
        name,
        firstlineno,
        lnotab,
        freevars,
        cellvars,
    ) = args
    ints = (argcount, posonly, kwonly, nlocals, stacksize, flags, firstlineno)
    if not all(type(i) is int for i in ints) or min(ints[:6]) < 0:
        return None
    if type(names) is not tuple or names or type(cellvars) is not tuple or cellvars:
        return None
    if type(code) is not bytes or type(lnotab) is not bytes:
        return None
    if len(lnotab) % 2 or len(lnotab) > MAX_CODE:  # line tables are read two bytes at a time
        return None
    if not (_str_tuple(varnames) and _str_tuple(freevars)):
        return None
    if type(filename) is not str or type(name) is not str or not 0 < len(name) <= 200:
        return None
    if type(consts) is not tuple or len(consts) > MAX_CONSTS:
        return None
    if not _plain(consts, _CONST_DEPTH, [MAX_CONSTS * 4]):
        return None
    if flags & _REQUIRED_FLAGS != _REQUIRED_FLAGS or flags & ~_ALLOWED_FLAGS:
        return None
    total_args = argcount + kwonly + bool(flags & 0x4) + bool(flags & 0x8)
    if posonly > argcount or nlocals != len(varnames) or total_args > nlocals:
        return None
    if not code or len(code) > MAX_CODE or len(code) % 2 or stacksize > MAX_CODE:
        return None
    for unit in (1, 2):  # jump offsets count bytes in 3.8 and 3.9, instructions in 3.10
        if not _verify(code, len(consts), nlocals, len(freevars), stacksize, unit):
            return None
    return name


def _str_tuple(value: Any) -> bool:
    return (
        type(value) is tuple
        and len(value) <= MAX_CONSTS
        and all(type(v) is str and v.isidentifier() for v in value)
    )


def _plain(value: Any, depth: int, budget: list[int]) -> bool:
    """A constant the compiler could have made: no object the pickle built. Tuples shared
    through the memo are counted each time they are met (`budget` values in all)."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if value is None or value is Ellipsis or type(value) in (bool, int, float, complex, str, bytes):
        return True
    if type(value) in (tuple, frozenset) and depth > 0 and len(value) <= MAX_CONSTS:
        return all(_plain(v, depth - 1, budget) for v in value)
    return False


def _verify(code: bytes, nconsts: int, nlocals: int, nfree: int, stacksize: int, unit: int) -> bool:
    """Forward-only abstract run of wordcode: each reachable instruction is allowed, its
    argument in range, the stack depth the same on every path to it, never below zero or above
    `stacksize`, and no path runs off the end. Jumps only go forward, so one pass suffices."""
    size = len(code)
    depth: list[int | None] = [None] * (size // 2)
    depth[0] = 0
    for at in range(0, size, 2):
        here = depth[at // 2]
        if here is None:
            continue  # unreachable under this jump unit
        op, arg = code[at], code[at + 1]
        after = at + 2
        target = -1
        if op == _NOP:
            pops, pushes = 0, 0
        elif op in _UNARY:
            pops, pushes = 1, 1
        elif op in _BINARY:
            pops, pushes = 2, 1
        elif op == _COMPARE_OP:
            if arg >= _COMPARE_OPS:
                return False
            pops, pushes = 2, 1
        elif op == _LOAD_CONST:
            if arg >= nconsts:
                return False
            pops, pushes = 0, 1
        elif op == _LOAD_FAST:
            if arg >= nlocals:
                return False
            pops, pushes = 0, 1
        elif op == _STORE_FAST:
            if arg >= nlocals:
                return False
            pops, pushes = 1, 0
        elif op == _LOAD_DEREF:
            if arg >= nfree:
                return False
            pops, pushes = 0, 1
        elif op == _RETURN_VALUE:
            if here != 1:
                return False
            continue
        elif op == _JUMP_FORWARD:
            if not _reach(depth, after + arg * unit, here, size):
                return False
            continue
        elif op in _POP_JUMP_IF:
            pops, pushes = 1, 0
            target = arg * unit
            if target <= at:
                return False
        else:
            return False
        if here < pops or here - pops + pushes > stacksize:
            return False
        new = here - pops + pushes
        if target >= 0 and not _reach(depth, target, new, size):
            return False
        if not _reach(depth, after, new, size):
            return False
    return True


def _reach(depth: list[int | None], at: int, value: int, size: int) -> bool:
    """Record that `at` is reached with `value` on the stack; False if it is off the code,
    not an instruction start, or reached with another depth."""
    if at >= size or at % 2:
        return False
    known = depth[at // 2]
    if known is None:
        depth[at // 2] = value
        return True
    return known == value


#: cloudpickle's modules, also as vendored under these packages.
_CLOUDPICKLE: Final = frozenset(
    {"cloudpickle", "cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast"}
)
_VENDORS: Final = ("joblib.externals.", "srsly.", "ray.", "pyspark.")
#: The helpers cloudpickle (1.5 and later) rebuilds a function with; harmless in themselves,
#: each judged by what it is called with.
HELPERS: Final = frozenset(
    {"_builtin_type", "_make_function", "_make_empty_cell", "_make_cell", "_function_setstate"}
)
#: Attributes `_function_setstate` may set besides `__globals__`, `__closure__` and
#: `_cloudpickle_submodules` (never `__code__`).
_SLOTS: Final = frozenset(
    {
        "__name__",
        "__qualname__",
        "__annotations__",
        "__kwdefaults__",
        "__defaults__",
        "__module__",
        "__doc__",
        "__globals__",
        "__closure__",
        "_cloudpickle_submodules",
    }
)
#: Verified code objects and functions remembered per stream; past this, unverified.
MAX_MADE: Final = 4096


def is_helper(module: str, name: str) -> bool:
    """`module.name` is one of cloudpickle's function-rebuilding helpers."""
    if name not in HELPERS:
        return False
    if module in _CLOUDPICKLE:
        return True
    return any(module.startswith(v) and module[len(v) :] in _CLOUDPICKLE for v in _VENDORS)


class Carried:
    """Code objects verified in one stream and the functions made from them, by id (the
    objects are kept alive so that an id is never reused)."""

    def __init__(self) -> None:
        self.made: dict[int, tuple[Any, str, str]] = {}
        #: An unverified code-object finding was reported: the stream is CRITICAL anyway.
        self.spoiled = False

    def add(self, obj: Any, kind: str, qualname: str) -> None:
        if len(self.made) < MAX_MADE:
            self.made[id(obj)] = (obj, kind, qualname)

    def kind_of(self, obj: Any) -> str:
        entry = self.made.get(id(obj))
        return entry[1] if entry is not None and entry[0] is obj else ""

    def call_role(
        self, module: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None
    ) -> str:
        """What a call of a cloudpickle helper does with these arguments: "maker" (the code
        type itself), "function_maker" (the function type), "cell", "function" (from
        verified code), "setstate" (of such a
        function, setting nothing but its plain attributes), or "" (anything else)."""
        if kwargs or not is_helper(module, name):
            return ""
        if name == "_builtin_type":
            if args == ("CodeType",):
                return "maker"
            # cloudpickle before 3.0 rebuilds functions with types.FunctionType itself
            return "function_maker" if args in (("LambdaType",), ("FunctionType",)) else ""
        if name == "_make_empty_cell":
            return "cell" if not args else ""
        if name == "_make_cell":
            return "cell" if len(args) <= 1 else ""
        if name == "_make_function":
            return "function" if len(args) == 5 and self.kind_of(args[0]) == "code" else ""
        if len(args) != 2 or self.kind_of(args[0]) != "function":
            return ""
        state = args[1]
        if type(state) is not tuple or len(state) != 2:
            return ""
        attrs, slots = state
        if type(attrs) is not dict or type(slots) is not dict:
            return ""
        if not all(type(k) is str and k in _SLOTS for k in slots):
            return ""
        return "setstate"
