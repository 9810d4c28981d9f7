"""TFLite flatbuffers, read by a bounded hand-written reader instead of the tflite runtime.

Every offset is checked against the file size before it is followed, so a crafted file ends as
"malformed" (inconclusive) instead of a crash. What matters for safety is the operator table:
custom operators need native code registered with the interpreter, and Flex ops run TensorFlow
kernels, some of which run Python or touch files.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from typing import Final

from ...budget import BudgetExceeded, WorkBudget, report_budget
from ...rules import frameworks as R
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..tensorflow.dangerous_ops import DANGEROUS_OUTSIDE_GRAPH, node_danger
from ..tensorflow.op_names import TF_OP_NAMES

CUSTOM: Final = 32
MAX_ITEMS: Final = 10_000_000
#: Vector entries read beyond one per four bytes of file (small files, shared vectors).
_ENTRY_SLACK: Final = 1 << 16
_MAX_NAMES: Final = 20
#: Custom ops shipped with the TFLite runtime or its standard task libraries.
KNOWN_CUSTOM_OPS: Final = frozenset(
    {
        "TFLite_Detection_PostProcess",
        "Mfcc",
        "AudioSpectrogram",
        "MaxPoolingWithArgmax2D",
        "MaxUnpooling2D",
        "Convolution2DTransposeBias",
        "NumericVerify",
        "TFLite_Audio_Frontend",
        "RandomStandardNormal",
        "RandomUniform",
        "Multinomial",
        "MultinomialV2",
        "SentencepieceTokenizeOp",
        "SentencepieceDetokenizeOp",
        "WordPieceTokenizer",
        "TFSentencepieceTokenizeOp",
    }
)


#: flexbuffer type codes (flexbuffers.h): what a Flex op's custom options hold.
_FBT_STRING: Final = 5
_FBT_VECTOR: Final = 10
_FBT_BLOB: Final = 25


class FlatbufferError(ValueError):
    """An offset or length in the flatbuffer points outside the file."""


def _uint(buf: bytes | mmap.mmap, pos: int, width: int, start: int, end: int) -> int:
    if width not in (1, 2, 4, 8) or pos < start or pos + width > end:
        raise FlatbufferError(f"flexbuffer value at {pos} (+{width}) is outside its options")
    return int.from_bytes(buf[pos : pos + width], "little")


def flex_node_def(buf: bytes | mmap.mmap, start: int, end: int) -> tuple[str, int, int]:
    """(op name, NodeDef start, NodeDef end) from a Flex op's custom options at
    `buf[start:end]`: a flexbuffer vector of two strings, the TensorFlow op name and the
    serialized NodeDef whose kernel the Flex delegate runs. Every offset is checked against
    the options' span; constant work."""
    if end - start < 3:
        raise FlatbufferError("Flex custom options too short")
    root_width = buf[end - 1]
    packed = buf[end - 2]
    root = end - 2 - root_width
    if packed >> 2 != _FBT_VECTOR:
        raise FlatbufferError(
            f"Flex custom options hold flexbuffer type {packed >> 2}, not a vector"
        )
    vec = root - _uint(buf, root, root_width, start, end)
    width = 1 << (packed & 3)
    size = _uint(buf, vec - width, width, start, end)
    if size < 2:
        raise FlatbufferError(f"Flex custom options vector has {size} items")
    spans: list[tuple[int, int]] = []
    for i in range(2):
        elem = vec + i * width
        kind = _uint(buf, vec + size * width + i, 1, start, end)
        if kind >> 2 not in (_FBT_STRING, _FBT_BLOB):
            raise FlatbufferError(f"Flex custom options item {i} has flexbuffer type {kind >> 2}")
        target = elem - _uint(buf, elem, width, start, end)
        child = 1 << (kind & 3)
        length = _uint(buf, target - child, child, start, end)
        if target < start or target + length > end:
            raise FlatbufferError(f"Flex custom options item {i} runs outside its options")
        spans.append((target, target + length))
    (name_start, name_end), (node_start, node_end) = spans
    name = bytes(buf[name_start : min(name_end, name_start + 4096)]).decode("utf-8", "replace")
    return name, node_start, node_end


class _Flat:
    """Bounded reads over the flatbuffer. Offsets may point many times at one table or
    string (nothing in the format forbids sharing), so callers visit each table once and
    every vector entry read is charged to `budget`, sized from the file."""

    def __init__(self, buf: bytes | mmap.mmap) -> None:
        self.buf = buf
        self.size = len(buf)
        self.budget = WorkBudget("flatbuffer entries", self.size // 4 + _ENTRY_SLACK)
        self._strings: dict[int, str] = {}

    def _need(self, pos: int, n: int, what: str) -> None:
        if pos < 0 or pos + n > self.size:
            raise FlatbufferError(f"{what} at {pos} (+{n}) is outside the file ({self.size} bytes)")

    def u8(self, pos: int) -> int:
        self._need(pos, 1, "byte")
        return self.buf[pos]

    def i8(self, pos: int) -> int:
        self._need(pos, 1, "byte")
        return int(struct.unpack_from("<b", self.buf, pos)[0])

    def u16(self, pos: int) -> int:
        self._need(pos, 2, "uint16")
        return int.from_bytes(self.buf[pos : pos + 2], "little")

    def u32(self, pos: int) -> int:
        self._need(pos, 4, "uint32")
        return int.from_bytes(self.buf[pos : pos + 4], "little")

    def i32(self, pos: int) -> int:
        self._need(pos, 4, "int32")
        return int(struct.unpack_from("<i", self.buf, pos)[0])

    def u64(self, pos: int) -> int:
        self._need(pos, 8, "uint64")
        return int.from_bytes(self.buf[pos : pos + 8], "little")

    def table(self, pos: int) -> tuple[int, int, int]:
        """(table, vtable, vtable size) of the table at `pos`."""
        vt = pos - self.i32(pos)
        vt_size = self.u16(vt)
        if vt_size < 4 or vt_size % 2:
            raise FlatbufferError(f"bad vtable size {vt_size} at {vt}")
        self._need(vt, vt_size, "vtable")
        self._need(pos, self.u16(vt + 2), "table")
        return pos, vt, vt_size

    def field(self, tab: tuple[int, int, int], index: int) -> int | None:
        pos, vt, vt_size = tab
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return None
        off = self.u16(vt + slot)
        return pos + off if off else None

    def deref(self, pos: int) -> int:
        target = pos + self.u32(pos)
        self._need(target, 4, "referenced object")
        return target

    def vector(self, tab: tuple[int, int, int], index: int, elem: int) -> tuple[int, int]:
        """(first element, count) of a vector field; (0, 0) when absent."""
        pos = self.field(tab, index)
        if pos is None:
            return 0, 0
        vec = self.deref(pos)
        n = self.u32(vec)
        if n > MAX_ITEMS:
            raise FlatbufferError(f"vector of {n} items at {vec}")
        self._need(vec + 4, n * elem, "vector")
        return vec + 4, n

    def string(self, tab: tuple[int, int, int], index: int) -> str | None:
        pos = self.field(tab, index)
        if pos is None:
            return None
        s = self.deref(pos)
        text = self._strings.get(s)
        if text is None:
            n = self.u32(s)
            self._need(s + 4, n, "string")
            text = bytes(self.buf[s + 4 : s + 4 + min(n, 4096)]).decode("utf-8", "replace")
            self._strings[s] = text
        return text

    def tables(self, tab: tuple[int, int, int], index: int) -> Iterator[tuple[int, int, int]]:
        start, n = self.vector(tab, index, 4)
        for i in range(n):
            self.budget.charge()
            yield self.table(self.deref(start + 4 * i))

    def vector_at(self, tab: tuple[int, int, int], index: int) -> int | None:
        """Where a vector field's vector lives (to visit a shared vector once)."""
        pos = self.field(tab, index)
        return None if pos is None else self.deref(pos)


class TFLiteScanner(BaseScanner):
    name = "tflite"
    description = "TFLite flatbuffers: custom and Flex operators, malformed offsets"
    supported_extensions = [".tflite"]
    formats = ("tflite",)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        size = self.file_size(path)
        result.bytes_scanned = size
        try:
            with open(path, "rb") as f:
                if size < 8:
                    raise FlatbufferError(f"file of {size} bytes is too short for a TFLite model")
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                try:
                    self._model(_Flat(mm), path, result)
                finally:
                    mm.close()
        except BudgetExceeded as exc:
            report_budget(result, self.location(path), exc)
        except (FlatbufferError, OSError, struct.error) as exc:
            self.mark_malformed(result, path, "TFLite flatbuffer", exc)
        result.finish()
        return result

    def _model(self, fb: _Flat, path: str, result: ScanResult) -> None:
        model = fb.table(fb.u32(0))
        codes: list[tuple[int, str | None]] = []
        for oc in fb.tables(model, 1):
            dep = fb.field(oc, 0)
            new = fb.field(oc, 3)
            # as TFLite's GetBuiltinCode: the larger of the two, the deprecated one a signed
            # byte (0xFF is -1, which leaves a CUSTOM builtin_code in charge)
            code = max(fb.i8(dep) if dep is not None else 0, fb.i32(new) if new is not None else 0)
            codes.append((code, fb.string(oc, 1)))
        used: set[int] = set()
        #: custom options span -> Flex op name, each span read once
        flex_options: dict[tuple[int, int], str] = {}
        n_ops = 0
        names: list[str] = []
        seen_subgraphs: set[int] = set()
        seen_vectors: set[int] = set()
        for sg in fb.tables(model, 2):
            if sg[0] in seen_subgraphs:
                continue
            seen_subgraphs.add(sg[0])
            if len(names) < _MAX_NAMES:
                name = fb.string(sg, 4)
                if name:
                    names.append(name)
            ops = fb.vector_at(sg, 3)
            if ops is None or ops in seen_vectors:
                continue
            seen_vectors.add(ops)
            for op in fb.tables(sg, 3):
                n_ops += 1
                pos = fb.field(op, 0)
                idx = fb.u32(pos) if pos is not None else 0
                if idx >= len(codes):
                    raise FlatbufferError(f"operator uses opcode {idx} of {len(codes)}")
                used.add(idx)
                code, custom = codes[idx]
                if code == CUSTOM and (custom or "").startswith("Flex"):
                    span = self._options(fb, op)
                    if span is not None and span not in flex_options:
                        flex_options[span] = custom or ""
        for buf in fb.tables(model, 4):
            fb.vector(buf, 0, 1)
            off_pos, size_pos = fb.field(buf, 1), fb.field(buf, 2)
            if off_pos is not None and size_pos is not None:
                off, size = fb.u64(off_pos), fb.u64(size_pos)
                if off > 1 and off + size > fb.size:
                    raise FlatbufferError(f"buffer at {off} (+{size}) is outside the file")
        for md in fb.tables(model, 6):
            fb.string(md, 0)
        description = fb.string(model, 3)
        kernels = self._flex_kernels(fb, flex_options, result)
        customs = {codes[idx][1] or "" for idx in used if codes[idx][0] == CUSTOM}
        for custom in sorted(customs):
            self._custom(custom, path, result, kernels.get(custom, {}))
        result.metadata["format_details"] = {
            "operator_codes": len(codes),
            "operators": n_ops,
            "subgraphs": names,
            "description": description or "",
        }

    @staticmethod
    def _options(fb: _Flat, op: tuple[int, int, int]) -> tuple[int, int] | None:
        """Where an operator's custom options lie: the `custom_options` byte vector, or the
        `large_custom_options_offset`/`_size` pair models over 2 GiB use."""
        start, n = fb.vector(op, 5, 1)
        if n:
            return start, start + n
        off_pos, size_pos = fb.field(op, 9), fb.field(op, 10)
        if off_pos is None or size_pos is None:
            return None
        off, size = fb.u64(off_pos), fb.u64(size_pos)
        fb._need(off, size, "large custom options")
        return off, off + size

    def _flex_kernels(
        self, fb: _Flat, flex_options: dict[tuple[int, int], str], result: ScanResult
    ) -> dict[str, dict[str, str | None]]:
        """For each Flex op name, the TensorFlow op of every NodeDef its operators carry
        (the kernel the Flex delegate runs, whatever the custom op is called) and why it is
        dangerous (None when it is not). Options that do not parse leave the file
        inconclusive: the kernel could not be told."""
        if not flex_options:
            return {}
        # Imported here: only models with Flex ops need the NodeDef reader.
        from ...formats.protowire import Wire, WireError
        from ..tensorflow.saved_model_scanner import read_node

        wire = Wire(fb.buf)
        kernels: dict[str, dict[str, str | None]] = {}
        for (start, end), name in flex_options.items():
            try:
                _, node_start, node_end = flex_node_def(fb.buf, start, end)
                fb.budget.charge(max(1, (node_end - node_start) // 4))
                node = read_node(wire, node_start, node_end)
            except (FlatbufferError, WireError) as exc:
                result.mark_inconclusive(f"Flex op {name} has unreadable custom options: {exc}")
                continue
            kernels.setdefault(name, {})[node.op] = node_danger(node.op, node.attrs)
        return kernels

    def _custom(
        self, name: str, path: str, result: ScanResult, kernels: dict[str, str | None]
    ) -> None:
        where = self.location(path, f"custom_op {name}")
        tf_op = name[4:] if name.startswith("Flex") else None
        for kernel, danger in kernels.items():
            if danger is None and kernel != tf_op and kernel not in TF_OP_NAMES:
                danger = f"{kernel} is not a stock TensorFlow op"
            if danger is not None:
                result.add_issue(
                    f"Flex op {name} runs TensorFlow kernel {kernel}: {danger}",
                    severity=IssueSeverity.CRITICAL,
                    location=where,
                    details={"custom_code": name, "tf_op": kernel, "node_def_op": kernel},
                    why="With the Flex delegate the NodeDef's kernel runs, whatever the custom "
                    "op is named; this one runs Python or touches files or the network.",
                    rule=R.TFLITE_DANGEROUS_OP,
                )
                return
        if tf_op is not None and tf_op not in TF_OP_NAMES and tf_op not in DANGEROUS_OUTSIDE_GRAPH:
            tf_op = None
        if tf_op is not None and tf_op in DANGEROUS_OUTSIDE_GRAPH:
            result.add_issue(
                f"Flex op {name} runs TensorFlow kernel {tf_op}",
                severity=IssueSeverity.CRITICAL,
                location=where,
                details={"custom_code": name, "tf_op": tf_op},
                why="With the Flex delegate the kernel runs Python or touches files or the network.",
                rule=R.TFLITE_DANGEROUS_OP,
            )
        elif tf_op is not None or name in KNOWN_CUSTOM_OPS:
            result.add_issue(
                f"Model uses {'Flex' if tf_op else 'standard custom'} op {name}",
                severity=IssueSeverity.INFO,
                location=where,
                details={"custom_code": name},
                rule=R.TFLITE_OP_INFO,
            )
        else:
            result.add_issue(
                f"Custom operator '{name}' needs a native implementation",
                severity=IssueSeverity.WARNING,
                location=where,
                details={"custom_code": name},
                why="The interpreter runs whatever native code is registered under this name.",
                rule=R.TFLITE_CUSTOM_OP,
            )
