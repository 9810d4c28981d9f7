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

from .npy_dtype import DescrError, dtype_layout
from .view import ByteView, StreamView

MAGIC: Final = b"\x93NUMPY"
_PY2_LONG: Final = re.compile(r"\b(\d+)[Ll]\b")
#: np.load refuses longer headers unless told otherwise.
MAX_HEADER: Final = 1 << 16
#: The header exactly as NumPy writes it for a plain dtype: read without `ast` (compiling the
#: literal cost most of a small file's scan); anything else takes the general path.
_DIM: Final = r"(?:0|[1-9]\d{0,18})"
_CANONICAL: Final = re.compile(
    r"\{'descr': '([A-Za-z0-9<>|=\[\]]{0,64})', 'fortran_order': (True|False), "
    rf"'shape': \(((?:{_DIM}, )+{_DIM},?|{_DIM},)?\), \}}[ ]*\n?"
)


class NpyError(Exception):
    """The header is missing, truncated or not what NumPy would accept."""


class NpyHeaderTooLong(NpyError):
    """A header longer than `MAX_HEADER`: plain `np.load` refuses it, but with
    `allow_pickle=True` numpy lifts its header limit (`max_header_size = 2**64`) and reads
    on, so the data after it may still be unpickled. `header_bytes` is the header text's
    length; a stream is left at its first byte."""

    def __init__(self, message: str, header_bytes: int, data_start: int) -> None:
        super().__init__(message)
        self.header_bytes = header_bytes
        self.data_start = data_start


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
        """Bytes of array data (-1 when the item size needs NumPy to know)."""
        return -1 if self.itemsize < 0 else self.count * self.itemsize


def read_header(stream: BinaryIO) -> NpyHeader:
    """Read the header from the stream's current position; leaves it at the data."""
    return parse_header(StreamView(stream))


def _canonical(text: str) -> dict[str, Any] | None:
    """What `ast.literal_eval` makes of a header NumPy wrote, or None for any other text."""
    match = _CANONICAL.fullmatch(text)
    if match is None:
        return None
    descr, order, dims = match.groups()
    shape = tuple(int(n) for n in dims.split(",") if n.strip()) if dims else ()
    return {"descr": descr, "fortran_order": order == "True", "shape": shape}


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
    at = start + len(pre) + len(raw)
    if hlen > MAX_HEADER:
        raise NpyHeaderTooLong(f"header of {hlen} bytes exceeds NumPy's limit", hlen, at + hlen)
    text = view.get(at, at + hlen)
    if len(text) < hlen:
        raise NpyError("truncated header")
    try:
        decoded = text.decode("utf-8" if major == 3 else "latin1")
        header = _canonical(decoded)
        try:
            header = header if header is not None else ast.literal_eval(decoded)
        except SyntaxError:
            if major > 2:
                raise
            # written by Python 2: numpy drops the L of long literals and reads it again
            header = ast.literal_eval(_PY2_LONG.sub(r"\1", decoded))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as exc:
        raise NpyError(f"header is not a literal dict: {exc}") from exc
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise NpyError("header keys are not exactly descr/fortran_order/shape")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise NpyError(f"invalid shape {shape!r}")
    if not isinstance(header["fortran_order"], bool):
        raise NpyError("fortran_order is not a bool")
    try:
        size, has_object = dtype_layout(header["descr"])
    except DescrError as exc:
        raise NpyError(str(exc)) from exc
    itemsize = -1 if size is None else size
    # (by position, in field order: a class called with keywords packs them into a dict)
    return NpyHeader(
        (major, minor),
        header["descr"],
        shape,
        bool(header["fortran_order"]),
        len(pre) + len(raw) + hlen,
        has_object,
        itemsize,
    )
