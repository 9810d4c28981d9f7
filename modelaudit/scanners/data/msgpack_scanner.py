"""msgpack (Flax checkpoints): a bounded structural walk that skips tensor bytes.

`flax.serialization.msgpack_restore` only rebuilds dicts, lists and NumPy arrays (extension
codes 1-3), so the risks are what rides along: unknown extension types that a custom
`ext_hook` may interpret, pickles stored as bytes values (and unpickled by helper code),
trailing objects, and hostile lengths or nesting aimed at the decoder. Lengths are checked
against the file before anything is read; array payloads are skipped by seeking.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Final

from ...budget import BudgetExceeded, WorkBudget, report_budget
from ...formats import Format
from ...formats.bounded_reader import BoundedReader, Hostile, Malformed
from ...rules.data import (
    MSGPACK_EMBEDDED_PICKLE,
    MSGPACK_HOSTILE,
    MSGPACK_PAYLOAD,
    MSGPACK_UNKNOWN_EXT,
)
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..nested_bytes import scan_nested_bytes
from ..text.payloads import find_payloads, looks_like_pickle

_MAX_DEPTH: Final = 64
_MAX_ITEMS: Final = 20_000_000
#: Bytes of strings read and searched for payloads, per file: every string is read whole
#: (a payload past the first 64 KiB went unread); past this the file is inconclusive.
_MAX_SEARCHED: Final = 256 * 1024 * 1024
#: The largest bytes value, extension or trailing data read whole to be tested and scanned as
#: a pickle; a larger one that may be a pickle leaves the file inconclusive (MA9004).
_MAX_PICKLE: Final = 64 * 1024 * 1024
#: Flax's _MsgpackExtType: ndarray, native complex, NumPy scalar; -1 is msgpack's timestamp.
_KNOWN_EXT: Final = frozenset({1, 2, 3, -1})
_DTYPE: Final = re.compile(
    r"^(?:[<>|=]?[biufcmM]\d{1,2}|bool_?|u?int(?:4|8|16|32|64)|float(?:8\w*|16|32|64|128)|"
    r"bfloat16|complex(?:64|128|256)|datetime64(?:\[\w+\])?|timedelta64(?:\[\w+\])?)$"
)


class MsgpackScanner(BaseScanner):
    name = "msgpack"
    description = "Flax/msgpack checkpoints: bounded walk, extension types, embedded pickles"
    supported_extensions = [".msgpack", ".flax"]
    formats = (Format.MSGPACK,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        size = self.file_size(path)
        with open(path, "rb") as f:
            reader = BoundedReader(f, size, ">")
            walk = _Walk(self, reader, path, result)
            try:
                walk.value()
                if reader.left:
                    self._trailing(reader, path, result)
            except Hostile as exc:
                self._issue(
                    result,
                    f"Hostile msgpack structure: {exc}",
                    reader.pos,
                    path,
                    MSGPACK_HOSTILE,
                    "Decoders that trust the declared sizes exhaust memory or stack.",
                )
                result.mark_inconclusive(f"malformed: {exc}")
            except Malformed as exc:
                result.mark_inconclusive(f"malformed: {exc}")
            except _TooMany as exc:
                result.mark_inconclusive(str(exc))
            result.bytes_scanned = reader.pos
        result.metadata["format_details"] = {"values": walk.items}
        result.finish()
        return result

    def _trailing(self, reader: BoundedReader, path: str, result: ScanResult) -> None:
        start, left = reader.pos, reader.left
        self._issue(
            result,
            f"{left} bytes follow the msgpack object",
            start,
            path,
            MSGPACK_PAYLOAD,
            "Flax rejects extra data, so these bytes serve some other reader: a hidden payload.",
        )
        if left > _MAX_PICKLE:
            if _may_be_pickle(reader.peek(4096)):
                report_budget(
                    result,
                    self.location(path, pos=start),
                    BudgetExceeded("msgpack pickle bytes", _MAX_PICKLE),
                )
            return
        data = reader.take(left)
        if looks_like_pickle(data):
            shown = self.location(path, member=f"trailing@{start}")
            result.merge(scan_nested_bytes(self.ctx, data, shown, fmt=Format.PICKLE))

    def _issue(
        self, result: ScanResult, message: str, pos: int, path: str, rule: str, why: str
    ) -> None:
        result.add_issue(
            message,
            severity=IssueSeverity.WARNING,
            location=self.location(path, pos=pos),
            why=why,
            rule=rule,
        )


class _TooMany(Exception):
    pass


class _Walk:
    """Iterative walk: a stack of counts of values still owed by open containers."""

    def __init__(self, scanner: MsgpackScanner, r: BoundedReader, path: str, result: ScanResult):
        self.scanner, self.r, self.path, self.result = scanner, r, path, result
        self.items = 0
        self.reported_ext: set[int] = set()
        self.searched = WorkBudget("msgpack strings searched", _MAX_SEARCHED)
        self.over: set[str] = set()  # budgets already reported

    def value(self) -> None:
        owed = [1]
        while owed:
            if owed[-1] == 0:
                owed.pop()
                continue
            owed[-1] -= 1
            self.items += 1
            if self.items > _MAX_ITEMS:
                raise _TooMany(f"more than {_MAX_ITEMS} values; rest not analysed")
            count = self._one()
            if count:
                if len(owed) >= _MAX_DEPTH:
                    raise Hostile(f"containers nested more than {_MAX_DEPTH} deep")
                if count > self.r.left:
                    raise Hostile(f"container of {count} values in {self.r.left} bytes")
                owed.append(count)

    def _one(self) -> int:
        """Consume one value's header (and any payload); return values a container owes."""
        r = self.r
        b = r.take(1)[0]
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
            return 0
        if 0x80 <= b <= 0x8F:
            return 2 * (b & 0x0F)
        if 0x90 <= b <= 0x9F:
            return b & 0x0F
        if 0xA0 <= b <= 0xBF:
            self._str(b & 0x1F)
            return 0
        fixed = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2}
        fixed.update({0xD2: 4, 0xD3: 8})
        if b in fixed:
            r.skip(fixed[b])
            return 0
        if b in (0xC4, 0xC5, 0xC6):
            self._bin(r.unpack({0xC4: "B", 0xC5: "H", 0xC6: "I"}[b]))
            return 0
        if b in (0xD9, 0xDA, 0xDB):
            self._str(r.unpack({0xD9: "B", 0xDA: "H", 0xDB: "I"}[b]))
            return 0
        if b in (0xDC, 0xDD):
            return int(r.unpack("H" if b == 0xDC else "I"))
        if b in (0xDE, 0xDF):
            return 2 * int(r.unpack("H" if b == 0xDE else "I"))
        if 0xD4 <= b <= 0xD8:
            self._ext(r.unpack("b"), 1 << (b - 0xD4))
            return 0
        if b in (0xC7, 0xC8, 0xC9):
            length = r.unpack({0xC7: "B", 0xC8: "H", 0xC9: "I"}[b])
            self._ext(r.unpack("b"), length)
            return 0
        raise Malformed(f"invalid msgpack type byte 0x{b:02x} at offset {r.pos - 1}")

    def _str(self, length: int) -> None:
        if length > self.r.left:
            raise Hostile(f"string of {length} bytes with {self.r.left} left")
        if length < 16:
            self.r.skip(length)
            return
        try:
            self.searched.charge(length)
        except BudgetExceeded as exc:
            self._over(exc, self.r.pos)
            self.r.skip(length)
            return
        pos = self.r.pos
        text = self.r.take(length).decode("utf-8", "replace")
        for payload in find_payloads(text, urls=False):
            if payload.kind == "code":
                self.scanner._issue(
                    self.result,
                    f"msgpack string holds code: {payload.snippet!r}",
                    pos,
                    self.path,
                    MSGPACK_PAYLOAD,
                    "Code stored in a checkpoint runs wherever a tool evaluates it.",
                )
            elif payload.kind == "pickle":
                self._pickle(payload.data, pos)

    def _bin(self, length: int) -> None:
        r = self.r
        if length > r.left:
            raise Hostile(f"bytes value of {length} bytes with {r.left} left")
        pos = r.pos
        if length < 4:
            r.skip(length)
        elif length > _MAX_PICKLE:
            self._too_large(r.peek(512), pos)
            r.skip(length)
        else:
            data = r.take(length)  # every byte: a protocol-0 pickle may import past its head
            if looks_like_pickle(data) and _stops(data):
                self._pickle(data, pos)

    def _over(self, exc: BudgetExceeded, pos: int) -> None:
        """A budget ran out: the file is inconclusive (said once per budget)."""
        if exc.what not in self.over:
            self.over.add(exc.what)
            report_budget(self.result, self.scanner.location(self.path, pos=pos), exc)

    def _too_large(self, head: bytes, pos: int) -> None:
        """A value too large to read whole that may be a pickle: not judged, so inconclusive."""
        if _may_be_pickle(head):
            self._over(BudgetExceeded("msgpack pickle bytes", _MAX_PICKLE), pos)

    def _pickle(self, data: bytes, pos: int) -> None:
        self.scanner._issue(
            self.result,
            f"msgpack bytes value at offset {pos} is a pickle ({len(data)} bytes)",
            pos,
            self.path,
            MSGPACK_EMBEDDED_PICKLE,
            "Helper code that unpickles the value runs whatever the pickle imports.",
        )
        shown = self.scanner.location(self.path, member=f"bytes@{pos}")
        self.result.merge(scan_nested_bytes(self.scanner.ctx, data, shown, fmt=Format.PICKLE))

    def _ext(self, code: int, length: int) -> None:
        r = self.r
        if length > r.left:
            raise Hostile(f"extension of {length} bytes with {r.left} left")
        pos = r.pos
        if code not in _KNOWN_EXT:
            if code not in self.reported_ext:
                self.reported_ext.add(code)
                self.scanner._issue(
                    self.result,
                    f"msgpack extension type {code} is not one Flax writes",
                    pos,
                    self.path,
                    MSGPACK_UNKNOWN_EXT,
                    "A custom ext_hook turns these bytes into objects; what it does with "
                    "attacker data is unknown.",
                )
            if length > _MAX_PICKLE:
                self._too_large(r.peek(512), pos)
            elif looks_like_pickle(r.peek(length)):
                self._pickle(r.take(length), pos)
                return
        elif code in (1, 3):
            self._array_header(r.peek(min(length, 4096)), pos, code, length)
        r.skip(length)

    def _array_header(self, head: bytes, pos: int, code: int, length: int) -> None:
        """Flax packs (shape, dtype name, bytes) or (dtype name, bytes); check name and size."""
        parsed = _array_fields(head[1:], code)
        if parsed is None or not _DTYPE.match(parsed[1]):
            self.scanner._issue(
                self.result,
                f"Flax array extension at offset {pos} has dtype {parsed[1] if parsed else None!r}",
                pos,
                self.path,
                MSGPACK_PAYLOAD,
                "Only numeric dtypes restore into arrays; anything else targets a custom reader.",
            )
            return
        shape, dtype, data_len, data_at = parsed
        itemsize = _itemsize(dtype)
        if shape is None or itemsize is None or data_len is None:
            return
        expected = math.prod(shape) * itemsize
        if expected != data_len or data_at + data_len != length:
            self.scanner._issue(
                self.result,
                f"Flax array at offset {pos}: shape {shape} of {dtype} needs {expected} bytes, "
                f"{data_len} stored",
                pos,
                self.path,
                MSGPACK_PAYLOAD,
                "Restoring fails or reads a different layout; the extra bytes can carry a "
                "payload for another reader.",
            )


def _stops(data: bytes) -> bool:
    """Whether `data`'s opcodes parse from its first byte to a STOP, as `pickle.loads` reads
    them (what follows the STOP is ignored by the loader, so it is not required to end there)."""
    import io
    import pickletools

    try:
        for op, _arg, _pos in pickletools.genops(io.BytesIO(data)):
            if op.name == "STOP":
                return True
    except ValueError:
        return False
    return False


def _may_be_pickle(head: bytes) -> bool:
    """A pickle header or import in `head`, or opcodes that parse through all of it (a
    protocol-0 stream may import further on): only then is an unread value a possible pickle."""
    import io
    import pickletools

    if looks_like_pickle(head):
        return True
    ops = 0
    try:
        for op, _arg, _pos in pickletools.genops(io.BytesIO(head)):
            if op.name == "STOP":
                return False
            ops += 1
    except ValueError:
        return ops >= 16  # prose and tensor bytes meet a byte no unpickler reads far sooner
    return True


def _itemsize(dtype: str) -> int | None:
    name = dtype.lstrip("<>|=")
    if name in ("bool", "bool_"):
        return 1
    if name.startswith("float8"):
        return 1
    m = re.search(r"(\d+)$", name)
    if not m:
        return None
    bits = int(m.group(1))
    if name[:1] in "biufc" and len(name) <= 3:
        return bits
    return bits // 8 if bits % 8 == 0 else None


def _array_fields(data: bytes, code: int) -> tuple[list[int] | None, str, int | None, int] | None:
    """(shape, dtype name, byte length, offset of the bytes) from the payload's head."""
    i = 0
    shape: list[int] | None = None
    try:
        if code == 1:
            b = data[i]
            if 0x90 <= b <= 0x9F:
                n, i = b & 0x0F, i + 1
            elif b == 0xDC:
                n, i = struct.unpack_from(">H", data, i + 1)[0], i + 3
            else:
                return None
            shape = []
            for _ in range(n):
                b = data[i]
                if b <= 0x7F:
                    shape.append(b)
                    i += 1
                elif b in _UINTS:
                    size, fmt = _UINTS[b]
                    shape.append(struct.unpack_from(fmt, data, i + 1)[0])
                    i += 1 + size
                else:
                    return None
        b = data[i]
        if 0xA0 <= b <= 0xBF:
            n, i = b & 0x1F, i + 1
        elif b == 0xD9:
            n, i = data[i + 1], i + 2
        else:
            return None
        dtype = data[i : i + n].decode("utf-8", "replace")
        i += n
        b = data[i] if i < len(data) else -1
        if b in _BINS:
            size, fmt = _BINS[b]
            return shape, dtype, struct.unpack_from(fmt, data, i + 1)[0], i + 1 + size + 1
        return shape, dtype, None, 0
    except (IndexError, struct.error):
        return None


_UINTS: Final = {0xCC: (1, ">B"), 0xCD: (2, ">H"), 0xCE: (4, ">I"), 0xCF: (8, ">Q")}
_BINS: Final = {0xC4: (1, ">B"), 0xC5: (2, ">H"), 0xC6: (4, ">I")}
