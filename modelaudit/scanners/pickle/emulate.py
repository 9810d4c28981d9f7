"""Drive CPython's own unpicklers over a stream with every import replaced by a stub.

The C `_pickle.Unpickler` does all data opcodes (and FRAME handling, exactly as it does when
reading a file) in C; only `find_class`, `persistent_load` and operations on stubs come back to
Python. joblib's layout interleaves raw array bytes with opcodes, so it is read with the
pure-Python `pickle._Unpickler`, skipping the array bytes exactly as joblib's
`NumpyArrayWrapper.read` does.
"""

from __future__ import annotations

import _pickle
import copyreg
import gc
import io
import os
import pickle
import struct
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Final

from . import policy
from .reader import Reader
from .stubs import _CURRENT, JoblibLayout, Obj, Session, is_wrapper


class CUnpickler(_pickle.Unpickler):
    """The C unpickler with imports and persistent ids made symbolic."""

    def __init__(self, reader: Any, session: Session, size: int | None = None) -> None:
        super().__init__(reader, encoding="latin1", errors="strict")
        self._session = session
        self.source_size = source_size(reader) if size is None else size

    def find_class(self, module: str, name: str) -> Any:
        return self._session.find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        return persistent(self._session, pid)


_PyBase: Any = pickle._Unpickler  # type: ignore[attr-defined]


def _invalid_key(code: int) -> str:
    """The C unpickler's words for a byte that is no opcode (pickle.py raises a KeyError)."""
    if 0x20 <= code <= 0x7E and code not in (0x27, 0x5C):
        return f"invalid load key, '{chr(code)}'."
    return f"invalid load key, '\\x{code:02x}'."


class PyUnpickler(_PyBase):  # type: ignore[misc]
    """The pure-Python unpickler, for joblib files, with exact opcode positions."""

    dispatch = dict(_PyBase.dispatch)

    def __init__(self, reader: Reader, session: Session, *, c_like: bool = False) -> None:
        super().__init__(reader, encoding="latin1", errors="strict")
        self._session = session
        self._reader = reader
        self.size = source_size(reader)
        self.op_pos = 0
        #: the highest memo index a load that ended stored (a dict holds any; the C
        #: unpickler sizes a table to it: stream._python_memo_index)
        self.top_memo = -1
        if c_like:
            self.dispatch = _C_LIKE_DISPATCH

    def find_class(self, module: str, name: str) -> Any:
        self._session.proto = self.proto
        return self._session.find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        return persistent(self._session, pid)

    def tell(self) -> int:
        frame = self._unframer.current_frame
        if frame is not None:
            buf = frame.getbuffer()
            left = len(buf) - frame.tell()
            del buf
            return int(self._reader.pos - left)
        return self._reader.pos

    def load(self) -> Any:
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)  # type: ignore[attr-defined]
        self.read = self._unframer.read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack: list[Any] = []
        self.stack: list[Any] = []
        self.append = self.stack.append
        self.proto = 0
        read = self.read
        dispatch = self.dispatch
        try:
            while True:
                self.op_pos = self.tell()
                key = read(1)
                if not key:
                    raise EOFError
                op = dispatch.get(key[0])
                if op is None:
                    raise pickle.UnpicklingError(_invalid_key(key[0]))
                op(self)
        except pickle._Stop as stopinst:  # type: ignore[attr-defined]
            self.top_memo = max(self.memo, default=-1)
            return stopinst.value
        finally:
            # A load that failed half-way (out of memory, a budget) left all it built here,
            # and the session keeps this unpickler for positions: the next load of the file
            # (the shadow plain reading) would start on top of it, past its own budget.
            self.stack = self.metastack = []
            self.append = self.stack.append
            self.memo: dict[int, Any] = {}

    def load_build(self) -> None:
        _PyBase.load_build(self)
        top = self.stack[-1]
        if is_wrapper(top):
            self.stack.pop()
            self.stack.append(self._read_array(top))

    dispatch[pickle.BUILD[0]] = load_build

    def load_bytearray8(self) -> None:
        """BYTEARRAY8 as `pickle._Unpickler` reads it, without first allocating a length
        longer than what is left of the stream (the one counted opcode it allocates for)."""
        (size,) = struct.unpack("<Q", self.read(8))
        frame = self._unframer.current_frame
        in_frame = 0
        if frame is not None:
            view = frame.getbuffer()
            in_frame = len(view) - frame.tell()
            del view
        left = self._reader.remaining()
        if left is not None and size > in_frame + left:
            raise pickle.UnpicklingError(
                f"pickle data was truncated (BYTEARRAY8 announces {size} bytes, "
                f"{in_frame + left} are left)"
            )
        data = bytearray(size)
        self.readinto(data)
        self.append(data)

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def _read_array(self, wrapper: Obj) -> Obj:
        """Skip the array bytes that follow a NumpyArrayWrapper, as joblib reads them."""
        state = wrapper.data[1] if wrapper.data else None
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("joblib array wrapper without a state dict")
        shape = state.get("shape")
        dtype = state.get("dtype")
        count = 1
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise pickle.UnpicklingError("joblib array wrapper with a bad shape")
        for d in shape:
            count *= d
        itemsize, hasobject = dtype_layout(dtype)
        if hasobject:
            # joblib reads object arrays with a fresh unpickler over the same file, its
            # find_class routed through the outer one.
            inner = PyUnpickler(self._reader, self._session)
            saved = self._session.pos
            self._session.pos = lambda: inner.op_pos
            try:
                inner.load()
            finally:
                self._session.pos = saved
            return Obj("numpy.ndarray", policy.Verdict(policy.SAFE), "numpy", "ndarray")
        if "numpy_array_alignment_bytes" in state:
            pad = self._reader.read(1)
            if len(pad) != 1:
                raise EOFError("joblib array padding truncated")
            if pad[0] and self._reader.skip(pad[0]) != pad[0]:
                raise EOFError("joblib array padding truncated")
        nbytes = count * itemsize
        if self._reader.skip(nbytes) != nbytes:
            raise EOFError("joblib array data truncated")
        return Obj("numpy.ndarray", policy.Verdict(policy.SAFE), "numpy", "ndarray")

    def get_extension(self, code: int) -> None:
        raise ValueError(f"unregistered extension code {code}")

    # -- C-unpickler semantics where the stubs differ from real objects (fallback mode)

    def load_frame_as_c(self) -> None:
        """The C unpickler treats a frame as a read-ahead hint, never as a boundary."""
        size = self.read(8)
        if len(size) != 8:
            raise EOFError("frame header truncated")

    def load_newobj_lenient(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._newobj(cls, args, None))

    def load_newobj_ex_lenient(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._newobj(cls, args, kwargs))

    def _newobj(self, cls: Any, args: Any, kwargs: Any) -> Any:
        if isinstance(cls, type):
            return cls.__new__(cls, *args, **(kwargs or {}))
        return self._session.call(cls, tuple(args), kwargs or None, "NEWOBJ")


_C_LIKE_DISPATCH = dict(PyUnpickler.dispatch)
_C_LIKE_DISPATCH[pickle.FRAME[0]] = PyUnpickler.load_frame_as_c
_C_LIKE_DISPATCH[pickle.NEWOBJ[0]] = PyUnpickler.load_newobj_lenient
_C_LIKE_DISPATCH[pickle.NEWOBJ_EX[0]] = PyUnpickler.load_newobj_ex_lenient
_C_LIKE_DISPATCH[pickle.BUILD[0]] = _PyBase.load_build


_SIZED = {"b": 1, "i": 0, "u": 0, "f": 0, "c": 0, "?": 1, "M": 8, "m": 8, "O": 8}


def dtype_layout(dtype: Any) -> tuple[int, bool]:
    """(itemsize, has objects) of a symbolic `numpy.dtype(code, align, copy)` + state."""
    if not isinstance(dtype, Obj) or dtype.name != "numpy.dtype" or not dtype.data:
        raise pickle.UnpicklingError("joblib array wrapper without a recognisable dtype")
    args, state = dtype.data
    code = args[0] if args else None
    if not isinstance(code, str) or not code:
        raise pickle.UnpicklingError("joblib dtype without a type code")
    elsize = state[5] if isinstance(state, tuple) and len(state) > 6 else -1
    flags = state[-1] if isinstance(state, tuple) and state else 0
    hasobject = code[0] == "O" or (isinstance(flags, int) and bool(flags & 1))
    if isinstance(elsize, int) and elsize > 0:
        return elsize, hasobject
    digits = code.lstrip("<>|=").lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ?")
    if digits.isdigit():
        return int(digits), hasobject
    if code[0] in _SIZED and _SIZED[code[0]]:
        return _SIZED[code[0]], hasobject
    raise pickle.UnpicklingError(f"joblib dtype {code!r} of unknown size")


def persistent(session: Session, pid: Any) -> Any:
    """What a model loader's persistent_load returns: torch hands back the class named in a
    ('module', cls, ...) record and a storage otherwise."""
    if isinstance(pid, tuple) and len(pid) > 1 and pid[0] == "module" and isinstance(pid[1], type):
        return pid[1]
    if (
        isinstance(pid, tuple)
        and len(pid) > 2
        and pid[0] == "storage"
        and isinstance(pid[2], str)
        and len(session.storage_keys) < _MAX_STORAGE_KEYS
    ):
        session.storage_keys.add(pid[2][:200])
    return session.persistent_stub


_MAX_STORAGE_KEYS: Final = 1_000_000


def run(
    unpickler: CUnpickler | PyUnpickler,
    session: Session,
    memory_budget: Callable[[int], AbstractContextManager[None]],
) -> Any:
    """Load; the caller drops the result at once, the session holds what mattered.

    `memory_budget` is the engine's cap on address-space growth (`ScanContext.memory_budget`).
    """
    _CURRENT.append(session)
    # The loader builds millions of containers that all stay alive until the end; cyclic GC
    # passes over them would only cost time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        # A memo index of 10**9 makes the C unpickler allocate gigabytes up front, and a
        # stream of empty dicts builds ~60 bytes of objects per byte on either path: cap what
        # a load may take at a multiple of what honest data of this size needs.
        size = unpickler.source_size if isinstance(unpickler, CUnpickler) else unpickler.size
        with memory_budget(_BUDGET_BASE + _BUDGET_PER_BYTE * size):
            return unpickler.load()
    finally:
        if collecting:
            gc.enable()
        _CURRENT.pop()
        _forget_extension_stubs()


#: Address space one load may add: honest data builds a few bytes of objects per byte of
#: stream (the 1M-object benchmark about 8), empty containers about 60; with the worker's
#: own baseline a 100 MB stream stays under 2 GB.
_BUDGET_BASE: Final = 768 << 20
_BUDGET_PER_BYTE: Final = 8
_UNKNOWN_SIZE: Final = 256 << 20


def source_size(reader: Reader) -> int:
    if reader.eof:
        # every byte is in: an unseekable source (a member read through a decoder) read to
        # its end is sized by it, not taken as 256 MiB (whose budget let a 2 KB pickle's
        # memo index allocate 2.6 GB before failing)
        return reader.base + len(reader.buf)
    f = reader.f
    if type(f) is io.BytesIO:  # bytes in memory (a small file, a member): no fileno to try
        return len(f.getbuffer())
    try:
        return os.fstat(f.fileno()).st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    getbuffer = getattr(f, "getbuffer", None)
    if getbuffer is not None:
        return len(getbuffer())
    return _UNKNOWN_SIZE


def _forget_extension_stubs() -> None:
    """EXT opcodes cache what find_class returned in copyreg; our stubs must not stay there."""
    cache: dict[int, Any] = copyreg._extension_cache  # type: ignore[attr-defined]
    if cache:
        for code, value in list(cache.items()):
            if type(value).__name__ == "_SymMeta" or isinstance(value, Obj):
                del cache[code]


__all__ = ["CUnpickler", "JoblibLayout", "PyUnpickler", "dtype_layout", "run", "source_size"]
