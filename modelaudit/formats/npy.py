"""Parse a `.npy` header without NumPy: dtype, shape and whether the data is a pickle.

`np.load(allow_pickle=True)` unpickles the data of any array whose dtype holds objects
(plain `|O` or a structured dtype with an object field); numeric data is never interpreted.
The header is a Python literal, read with `ast.literal_eval` (literals only, nothing runs).
"""

from __future__ import annotations

import ast
import math
import re
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from .view import ByteView, StreamView

MAGIC: Final = b"\x93NUMPY"
#: np.load refuses longer headers unless told otherwise.
MAX_HEADER: Final = 1 << 16
_SIMPLE: Final = re.compile(r"^[<>|=]?([a-zA-Z?])(\d*)(\[[A-Za-z0-9]+\])?$")
_SIZES: Final[dict[str, int]] = {
    "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8,
    "p": 8, "P": 8, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16, "G": 32, "?": 1,
    "M": 8, "m": 8,
}  # fmt: skip


class NpyError(Exception):
    """The header is missing, truncated or not what NumPy would accept."""


@dataclass
class NpyHeader:
    version: tuple[int, int]
    descr: Any
    shape: tuple[int, ...]
    fortran_order: bool
    header_size: int
    has_object: bool
    itemsize: int

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def data_size(self) -> int:
        return self.count * self.itemsize


def _dtype_info(descr: Any) -> tuple[int, bool]:
    """(itemsize, holds objects) of a descr as np.save writes it."""
    if isinstance(descr, str):
        m = _SIMPLE.match(descr)
        if not m:
            raise NpyError(f"unrecognised dtype {descr!r}")
        code, num, _unit = m.groups()
        if code == "O":
            return 8, True
        if code == "U":
            return 4 * int(num or 0), False
        if code in ("S", "a", "V"):
            return int(num or 0), False
        if code == "c" and num:
            return int(num), False
        if code in _SIZES or code in "iufbc":
            return (int(num) if num else _SIZES.get(code, 0)), False
        raise NpyError(f"unrecognised dtype {descr!r}")
    if isinstance(descr, list):
        total = 0
        has_obj = False
        for field in descr:
            if not isinstance(field, tuple) or len(field) not in (2, 3):
                raise NpyError("malformed structured dtype")
            size, obj = _dtype_info(field[1])
            shape = field[2] if len(field) == 3 else ()
            if isinstance(shape, int):
                shape = (shape,)
            if not isinstance(shape, tuple) or not all(
                isinstance(n, int) and n >= 0 for n in shape
            ):
                raise NpyError("malformed structured dtype shape")
            total += size * math.prod(shape)
            has_obj = has_obj or obj
        return total, has_obj
    raise NpyError(f"unrecognised dtype {descr!r}")


def read_header(stream: BinaryIO) -> NpyHeader:
    """Read the header from the stream's current position; leaves it at the data."""
    return parse_header(StreamView(stream))


def parse_header(view: ByteView, start: int = 0) -> NpyHeader:
    """The header of the array whose bytes begin at `start` in `view`."""
    pre = view.get(start, start + 8)
    if len(pre) < 8 or not pre.startswith(MAGIC):
        raise NpyError("not a .npy file (bad magic)")
    major, minor = pre[6], pre[7]
    if major == 1:
        raw = view.get(start + 8, start + 10)
        if len(raw) < 2:
            raise NpyError("truncated header")
        (hlen,) = struct.unpack("<H", raw)
    elif major in (2, 3):
        raw = view.get(start + 8, start + 12)
        if len(raw) < 4:
            raise NpyError("truncated header")
        (hlen,) = struct.unpack("<I", raw)
    else:
        raise NpyError(f"unsupported .npy version {major}.{minor}")
    if hlen > MAX_HEADER:
        raise NpyError(f"header of {hlen} bytes exceeds NumPy's limit")
    at = start + len(pre) + len(raw)
    text = view.get(at, at + hlen)
    if len(text) < hlen:
        raise NpyError("truncated header")
    try:
        header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin1"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as exc:
        raise NpyError(f"header is not a literal dict: {exc}") from exc
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        raise NpyError("header lacks descr/fortran_order/shape")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise NpyError(f"invalid shape {shape!r}")
    itemsize, has_object = _dtype_info(header["descr"])
    return NpyHeader(
        version=(major, minor),
        descr=header["descr"],
        shape=shape,
        fortran_order=bool(header["fortran_order"]),
        header_size=len(pre) + len(raw) + hlen,
        has_object=has_object,
        itemsize=itemsize,
    )
