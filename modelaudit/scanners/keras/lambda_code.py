"""Names inside a Keras Lambda's marshalled code object, read without unmarshalling it.

`marshal.loads` on attacker bytes can crash the interpreter or build arbitrary code objects,
and disassembling needs the object first. The names a code object uses (`co_names`,
`co_consts`, `co_varnames`) are stored as marshal string records, so a byte-level pass that
recognises those records finds them without constructing anything.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from ..tensorflow.dangerous_ops import (
    DANGEROUS_TF_FUNCTIONS,
    DANGEROUS_TF_OPS,
    snake_name,
)

#: Names whose presence in Lambda code means it can run processes, load code or do I/O.
DANGEROUS_NAMES: Final = frozenset(
    {
        "os",
        "posix",
        "nt",
        "sys",
        "subprocess",
        "system",
        "popen",
        "Popen",
        "spawnv",
        "spawnl",
        "execv",
        "execve",
        "execl",
        "fork",
        "exec",
        "eval",
        "compile",
        "__import__",
        "importlib",
        "import_module",
        "builtins",
        "__builtins__",
        "getattr",
        "globals",
        "__globals__",
        "__subclasses__",
        "__mro__",
        "__bases__",
        "__base__",
        "__getattribute__",
        "vars",
        "locals",
        "breakpoint",
        "open",
        "socket",
        "urllib",
        "urlopen",
        "requests",
        "http",
        "shutil",
        "rmtree",
        "pickle",
        "marshal",
        "ctypes",
        "pty",
        "webbrowser",
        "get_file",
        "enable_unsafe_deserialization",
        # TensorFlow's file, process and native-code APIs (tf.io, tf.io.gfile, tf.raw_ops,
        # tf.py_function, tf.compat.v1.py_func, tf.load_op_library, summary writers)
        "gfile",
        "GFile",
        "write_file",
        "read_file",
        "WriteFile",
        "ReadFile",
        "matching_files",
        "MatchingFiles",
        "py_function",
        "py_func",
        "eager_py_func",
        "numpy_function",
        "PyFunc",
        "EagerPyFunc",
        "load_op_library",
        "load_library",
        "create_file_writer",
        "FileWriter",
        "save_model",
        "load_model",
        "execute",
    }
    # TensorFlow's own list: raw op names (`tf.raw_ops.WriteFile`), their Python functions
    # (`tf.io.write_file`) and the functions without an op (`tf.py_function`)
    | DANGEROUS_TF_OPS
    | {snake_name(op) for op in DANGEROUS_TF_OPS}
    | DANGEROUS_TF_FUNCTIONS
)
#: Substrings of string constants that point at shells, downloads or the file system.
DANGEROUS_SUBSTRINGS: Final = ("/bin/", "cmd.exe", "powershell", "curl ", "wget ", "://", "rm -")

_SHORT_STR: Final = frozenset(b"zZ")
_LONG_STR: Final = frozenset(b"aAut")
_BYTES: Final = ord("s")
MAX_CODE: Final = 16 << 20


def decode_code(blob: str) -> bytes | None:
    """The marshalled bytes of a base64 Lambda payload, or None if it is not base64."""
    if len(blob) > MAX_CODE * 2:
        return None
    try:
        return base64.b64decode(blob.encode("ascii", "strict"), validate=False)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def _printable(raw: bytes) -> bool:
    return all(32 <= b < 127 for b in raw)


def marshal_strings(data: bytes, limit: int = 20_000) -> list[str]:
    """String records in marshal data, in order; bytecode (`s` records) is skipped whole."""
    out: list[str] = []
    i = 0
    n = len(data)
    while i < n and len(out) < limit:
        t = data[i] & 0x7F
        if t in _SHORT_STR and i + 1 < n:
            size = data[i + 1]
            raw = data[i + 2 : i + 2 + size]
            if size and len(raw) == size and _printable(raw):
                out.append(raw.decode("ascii"))
                i += 2 + size
                continue
        elif (t in _LONG_STR or t == _BYTES) and i + 5 <= n:
            size = int.from_bytes(data[i + 1 : i + 5], "little")
            if 0 < size <= n - i - 5:
                raw = data[i + 5 : i + 5 + size]
                if size <= 4096 and _printable(raw):
                    out.append(raw.decode("ascii"))
                    i += 5 + size
                    continue
                if t == _BYTES:
                    i += 5 + size
                    continue
        i += 1
    return out


def dangerous_evidence(strings: list[str]) -> list[str]:
    """The strings that make code dangerous, deduplicated, in order of appearance."""
    seen: dict[str, None] = {}
    for s in strings:
        if s in DANGEROUS_NAMES or any(sub in s for sub in DANGEROUS_SUBSTRINGS):
            seen.setdefault(s[:200], None)
    return list(seen)
