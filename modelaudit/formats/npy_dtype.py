"""The `descr` grammar of numpy's `descr_to_dtype` (numpy/lib/_format_impl.py), without NumPy.

`np.load` turns the header's `descr` into a dtype and unpickles the data when that dtype
holds objects. `descr_to_dtype` accepts:

- a string, given to `numpy.dtype(str)`: one type (`'<f4'`, `'O'`, `'object'`,
  `'datetime64[ns]'`, `'T'`: NumPy 2's StringDType, which holds objects too), or comma-separated fields (`'i4,O'`), each with an optional repeat
  shape (`'2O'`, `'(2,3)O'`);
- a tuple `(base, shape)`: a sub-array of `base` (any descr);
- anything else is iterated as fields (a list, a dict's keys, a set), each unpacked as
  `(name, descr)` or `(name, descr, shape)` — a two-character string unpacks too, so the
  dict key `'aO'` is a field `a` of objects. Field descrs nest.

`dtype_layout` answers what the scanner needs: the item size (None when NumPy would have
to be asked) and whether any part holds objects. Anything naming an object type counts,
even where NumPy might refuse the rest: the data is then scanned as a pickle, never skipped.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

#: One field of a dtype string: repeat shape, byte order, then a code with a size or a name.
_FIELD: Final = re.compile(
    r"^\s*(?:\((?P<shape>[\d\s,]*)\)|(?P<repeat>\d+)(?=[A-Za-z<>|=]))?\s*"
    r"(?P<order>[<>|=!]?)\s*(?P<type>[A-Za-z_][A-Za-z_]*?|\?)(?P<size>\d*)\s*"
    r"(?P<unit>\[[^\]]*\])?\s*$"
)
_CODE_SIZES: Final[dict[str, int]] = {
    "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8,
    "n": 8, "N": 8, "p": 8, "P": 8, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16,
    "G": 32, "?": 1, "M": 8, "m": 8, "O": 8,
}  # fmt: skip
#: Kind letters whose number is the item size (`'i8'`, `'f4'`, `'c16'`, `'S5'`, `'V8'`).
_SIZED_KINDS: Final = frozenset("iufcbSaVB")
_NAMED_SIZES: Final[dict[str, int]] = {
    "bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
    "int64": 8, "uint64": 8, "float16": 2, "float32": 4, "float64": 8, "half": 2,
    "single": 4, "double": 8, "longdouble": 16, "complex64": 8, "complex128": 16,
    "float": 8, "int": 8, "complex": 16, "byte": 1, "ubyte": 1, "short": 2, "ushort": 2,
    "intc": 4, "uintc": 4, "longlong": 8, "ulonglong": 8, "intp": 8, "uintp": 8,
    "datetime64": 8, "timedelta64": 8, "float128": 16, "complex256": 32,
    "clongdouble": 32, "longcomplex": 32, "csingle": 8, "cdouble": 16, "int_": 8,
    "uint": 8, "bool_": 1, "long": 8, "ulong": 8,
}  # fmt: skip
#: Type names numpy knows whose size comes from a number after them or is flexible.
_FLEXIBLE_NAMES: Final = frozenset(
    {"str", "str_", "unicode", "unicode_", "bytes", "bytes_", "string_", "void", "a"}
)
#: NumPy 2's StringDType: its items point at heap strings, so numpy marks it `hasobject`
#: and `np.load` unpickles the data as it does for `'O'`.
_STRING_DTYPE: Final = "T"
_STRING_DTYPE_SIZE: Final = 16
_OBJECT_NAMES: Final = frozenset({"object", "object_", "object0", "O"})
_MAX_NODES: Final = 10_000


class DescrError(ValueError):
    """NumPy would refuse this descr."""


#: Layouts of the string descrs met so far: a sweep's arrays share a handful of dtypes, and
#: parsing one again cost a tenth of a small `.npy` file's scan. Bounded in count and length.
_KNOWN: dict[str, tuple[int | None, bool]] = {}
_KNOWN_MAX: Final = 256
_KNOWN_LENGTH: Final = 64


def dtype_layout(descr: Any) -> tuple[int | None, bool]:
    """(item size or None when unknown, holds objects) of a header's `descr`."""
    if type(descr) is str:
        known = _KNOWN.get(descr)
        if known is not None:
            return known
    layout = _layout(descr, [_MAX_NODES], 0)
    if type(descr) is str and len(descr) <= _KNOWN_LENGTH and len(_KNOWN) < _KNOWN_MAX:
        _KNOWN[descr] = layout
    return layout


def _spend(budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise DescrError("descr too large")


def _layout(descr: Any, budget: list[int], depth: int) -> tuple[int | None, bool]:
    _spend(budget)
    if depth > 64:
        raise DescrError("descr nested too deeply")
    if isinstance(descr, str):
        return _string(descr)
    if isinstance(descr, tuple):
        if len(descr) < 2:
            raise DescrError(f"sub-array descr {descr!r} without a shape")
        size, obj = _layout(descr[0], budget, depth + 1)
        extra = descr[1]
        if isinstance(extra, dict | list):
            # (base, new_dtype): a view of base as another dtype
            other_size, other_obj = _layout(_fields_of(extra), budget, depth + 1)
            return other_size or size, obj or other_obj
        count = _count(extra)
        return (None if size is None or count is None else size * count), obj
    if isinstance(descr, bytes | int | float | bool) or descr is None:
        raise DescrError(f"unrecognised dtype {descr!r}")
    total: int | None = 0
    has_obj = False
    for field in descr:
        _spend(budget)
        try:
            n = len(field)
        except TypeError as exc:
            raise DescrError(f"malformed field {field!r}") from exc
        if n == 2:
            _name, sub = field[0], field[1]
            size, obj = _layout(sub, budget, depth + 1)
        elif n == 3:
            _name, sub, shape = field[0], field[1], field[2]
            size, obj = _layout(sub, budget, depth + 1)
            count = _count(shape)
            size = None if size is None or count is None else size * count
        else:
            raise DescrError(f"malformed field {field!r}")
        has_obj = has_obj or obj
        total = None if total is None or size is None else total + size
    return total, has_obj


def _fields_of(value: Any) -> Any:
    """A `{'names': ..., 'formats': ...}` dict as a field list; other values as they are."""
    if isinstance(value, dict) and "formats" in value:
        formats = value.get("formats")
        if isinstance(formats, list | tuple):
            return [("", f) for f in formats]
    return value


def _count(shape: Any) -> int | None:
    if isinstance(shape, bool):
        raise DescrError(f"invalid sub-array shape {shape!r}")
    if isinstance(shape, int):
        return max(shape, 0)
    if isinstance(shape, tuple) and all(
        isinstance(d, int) and not isinstance(d, bool) for d in shape
    ):
        return int(math.prod(max(int(d), 0) for d in shape))
    raise DescrError(f"invalid sub-array shape {shape!r}")


def _string(text: str) -> tuple[int | None, bool]:
    """`numpy.dtype(text)`: one type or comma-separated fields."""
    parts = [p for p in text.split(",")] if "," in text and "(" not in text else _split(text)
    if len(parts) > 1 and parts[-1].strip() == "":
        parts = parts[:-1]
    total: int | None = 0
    has_obj = False
    for part in parts:
        size, obj = _one(part)
        has_obj = has_obj or obj
        total = None if total is None or size is None else total + size
    return total, has_obj


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses (`'(2,3)O,i4'`)."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


def _one(part: str) -> tuple[int | None, bool]:
    m = _FIELD.match(part)
    if m is None:
        if re.search(r"(?<![A-Za-z])O(?![a-z])|object", part):
            return None, True  # unparsed here, but it names objects: scan the data
        raise DescrError(f"unrecognised dtype {part!r}")
    kind, digits = m.group("type"), m.group("size")
    count = 1
    if m.group("repeat"):
        count = int(m.group("repeat"))
    elif m.group("shape") is not None:
        dims = [d for d in m.group("shape").replace(" ", "").split(",") if d]
        count = math.prod(int(d) for d in dims) if dims else 1
    if kind in _OBJECT_NAMES or (kind == "O" and digits in ("", "4", "8")):
        return 8 * count, True
    if kind == _STRING_DTYPE and not digits:
        return _STRING_DTYPE_SIZE * count, True
    size: int | None
    if kind == "U":
        size = 4 * int(digits or 0)
    elif len(kind) == 1 and kind in _SIZED_KINDS and digits:
        size = int(digits)
    elif len(kind) == 1 and kind in _CODE_SIZES:
        size = _CODE_SIZES[kind]
    elif kind in ("S", "a", "V", "c"):
        size = int(digits or (1 if kind == "c" else 0))
    elif kind + digits in _NAMED_SIZES:
        size = _NAMED_SIZES[kind + digits]
    elif kind in _NAMED_SIZES:
        size = _NAMED_SIZES[kind]
    elif kind in _FLEXIBLE_NAMES:
        size = None
    else:
        raise DescrError(f"data type {part.strip()!r} not understood")
    return (None if size is None else size * count), False


__all__ = ["DescrError", "dtype_layout"]
