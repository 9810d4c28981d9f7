"""GGUF: walk the header, key/values and tensor table with hard bounds; analyse chat templates.

llama.cpp's C parser has had heap overflows on crafted counts and lengths, and its front-ends
render `tokenizer.chat_template` with Jinja, sometimes unsandboxed. So every count and length
is checked against the bytes that remain before anything is read or allocated, and chat
templates go to the shared Jinja analyser. Tensor data is never read.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from typing import Any, Final

from ...formats import Format
from ...formats.bounded_reader import BoundedReader, Hostile, Malformed
from ...rules.data import GGUF_BAD_HEADER, GGUF_BAD_TENSORS, GGUF_UNKNOWN_TENSOR_TYPE
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..text.jinja_template import report_template

_STRING, _ARRAY = 8, 9
_SCALAR_SIZES: Final = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_SCALAR_FMT: Final = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
#: ggml type id -> (elements per block, bytes per block), as in gguf-py's GGML_QUANT_SIZES.
GGML_TYPES: Final[dict[int, tuple[int, int]]] = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 40),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
    40: (64, 36),
    41: (128, 18),
}
_KEEP_STRINGS: Final = ("general.", "tokenizer.chat_template")
_MAX_KEPT_STRING: Final = 4 * 1024 * 1024
_MAX_KEY: Final = 65536
_MAX_DIMS: Final = 8


@dataclass
class _Header:
    version: int = 0
    tensors: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    tensor_info: list[tuple[str, list[int], int, int]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    data_start: int = 0


class GgufScanner(BaseScanner):
    name = "gguf"
    description = "Bounded GGUF header, metadata and tensor-table checks; chat template analysis"
    supported_extensions = [".gguf"]
    formats = (Format.GGUF,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        size = self.file_size(path)
        header = _Header()
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8 or head[:4] != b"GGUF":
                result.mark_inconclusive("malformed: not a GGUF header")
                result.finish()
                return result
            (version,) = struct.unpack("<I", head[4:8])
            endian = "<"
            if version & 0xFFFF == 0 and version >> 16:
                endian, version = ">", struct.unpack(">I", head[4:8])[0]
            reader = BoundedReader(f, size, endian)
            reader.skip(8)
            try:
                if version not in (1, 2, 3):
                    raise Hostile(f"unknown GGUF version {version}")
                header.version = version
                self._read(reader, header)
            except Malformed as exc:
                if isinstance(exc, Hostile):
                    self._hostile(str(exc), path, reader.pos, result)
                result.mark_inconclusive(f"malformed: {exc}")
            result.bytes_scanned = reader.pos
        if header.duplicates:
            self._hostile(
                f"repeated {', '.join(header.duplicates[:5])}: loaders disagree on which wins",
                path,
                8,
                result,
            )
        self._metadata(header, result)
        self._templates(header, path, result)
        if header.data_start:
            self._check_tensors(header, size, path, result)
        result.finish()
        return result

    def _read(self, r: BoundedReader, h: _Header) -> None:
        wide = h.version >= 2
        count_fmt = "Q" if wide else "I"
        h.tensors = r.unpack(count_fmt)
        kv_count = r.unpack(count_fmt)
        if h.tensors > r.left // 20 or kv_count > r.left // 9:
            raise Hostile(
                f"counts {h.tensors} tensors / {kv_count} keys exceed what the file holds"
            )
        for _ in range(kv_count):
            key = self._string(r, wide, keep=True, limit=_MAX_KEY)
            vtype = r.unpack("I")
            if key in h.values:
                h.duplicates.append(f"key {key!r}")
            h.values[key] = self._value(r, vtype, wide, keep=key.startswith(_KEEP_STRINGS))
        names: set[str] = set()
        for _ in range(h.tensors):
            name = self._string(r, wide, keep=True, limit=_MAX_KEY)
            n_dims = r.unpack("I")
            if n_dims > _MAX_DIMS:
                raise Hostile(f"tensor {name!r} claims {n_dims} dimensions")
            dims = [r.unpack(count_fmt) for _ in range(n_dims)]
            ttype = r.unpack("I")
            offset = r.unpack("Q")
            if name in names:
                h.duplicates.append(f"tensor {name!r}")
            names.add(name)
            h.tensor_info.append((name, dims, ttype, offset))
        alignment = h.values.get("general.alignment", 32)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise Hostile(f"general.alignment {alignment!r} is not a power of two")
        h.data_start = -(-r.pos // alignment) * alignment

    def _string(
        self, r: BoundedReader, wide: bool, keep: bool, limit: int = _MAX_KEPT_STRING
    ) -> str:
        length = r.unpack("Q" if wide else "I")
        if length > r.left:
            raise Hostile(f"string length {length} exceeds the {r.left} bytes left")
        if not keep or length > limit:
            if keep and length > limit:
                raise Hostile(f"string of {length} bytes where at most {limit} are expected")
            r.skip(length)
            return ""
        return r.take(length).decode("utf-8", "replace")

    def _value(self, r: BoundedReader, vtype: int, wide: bool, keep: bool) -> Any:
        if vtype in _SCALAR_FMT:
            return r.unpack(_SCALAR_FMT[vtype])
        if vtype == _STRING:
            return self._string(r, wide, keep)
        if vtype != _ARRAY:
            raise Hostile(f"unknown value type {vtype}")
        itype = r.unpack("I")
        count = r.unpack("Q" if wide else "I")
        if itype in _SCALAR_SIZES:
            if count * _SCALAR_SIZES[itype] > r.left:
                raise Hostile(f"array of {count} items exceeds the {r.left} bytes left")
            r.skip(count * _SCALAR_SIZES[itype])
            return None
        if itype == _STRING:
            if count > r.left // (8 if wide else 4):
                raise Hostile(f"array of {count} strings exceeds the {r.left} bytes left")
            items = [self._string(r, wide, keep) for _ in range(count)] if keep else None
            if not keep:
                for _ in range(count):
                    self._string(r, wide, False)
            return items
        raise Hostile(f"array of unsupported item type {itype}")

    def _hostile(self, message: str, path: str, pos: int, result: ScanResult) -> None:
        result.add_issue(
            f"Hostile GGUF header: {message}",
            severity=IssueSeverity.WARNING,
            location=self.location(path, pos=pos),
            details={"problem": message},
            why="GGUF parsers that trust these fields over-allocate or read out of bounds; "
            "memory corruption in llama.cpp's loader has led to code execution.",
            rule=GGUF_BAD_HEADER,
        )

    def _metadata(self, h: _Header, result: ScanResult) -> None:
        v = h.values
        names = [v.get(k) for k in ("general.name", "general.basename")]
        names = [n for i, n in enumerate(names) if isinstance(n, str) and n and n not in names[:i]]
        if names:
            result.metadata["model_names"] = names
        lic = v.get("general.license")
        if isinstance(lic, str) and lic:
            result.metadata["license"] = lic
        arch = v.get("general.architecture")
        if isinstance(arch, str) and arch:
            result.metadata["architectures"] = [arch]
            result.metadata["model_type"] = arch
        result.metadata["format_details"] = {
            "version": h.version,
            "tensors": h.tensors,
            "keys": len(v),
        }

    def _templates(self, h: _Header, path: str, result: ScanResult) -> None:
        for key, value in h.values.items():
            if not key.startswith("tokenizer.chat_template") or not isinstance(value, str):
                continue
            report_template(self, value, path, key, result)

    def _check_tensors(self, h: _Header, size: int, path: str, result: ScanResult) -> None:
        data_size = size - h.data_start
        alignment = h.values.get("general.alignment", 32)
        problems: list[str] = []
        unknown: set[int] = set()
        spans: list[tuple[int, int, str]] = []
        for name, dims, ttype, offset in h.tensor_info:
            if offset % alignment:
                problems.append(f"{name}: offset {offset} not aligned to {alignment}")
            layout = GGML_TYPES.get(ttype)
            if layout is None:
                unknown.add(ttype)
                continue
            elements = 1
            for d in dims:
                elements *= d
            block, block_bytes = layout
            nbytes = -(-elements // block) * block_bytes
            if offset + nbytes > data_size:
                problems.append(f"{name}: bytes [{offset}, {offset + nbytes}) beyond the data")
                result.mark_inconclusive("malformed: tensor data extends past the end of the file")
            spans.append((offset, offset + nbytes, name))
        spans.sort()
        for (_, prev_end, prev), (begin, _, cur) in itertools.pairwise(spans):
            if begin < prev_end:
                problems.append(f"{cur}: overlaps {prev}")
        if problems:
            result.add_issue(
                f"Inconsistent GGUF tensor layout: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                severity=IssueSeverity.WARNING,
                location=self.location(path, pos=h.data_start),
                details={"problems": problems[:20]},
                why="Loaders compute pointers from these offsets; out-of-bounds or overlapping "
                "tensors read memory they should not or show different weights to different "
                "tools.",
                rule=GGUF_BAD_TENSORS,
            )
        if unknown:
            result.add_issue(
                f"GGUF tensors use unknown ggml types {sorted(unknown)}",
                severity=IssueSeverity.INFO,
                location=self.location(path),
                rule=GGUF_UNKNOWN_TENSOR_TYPE,
            )
