"""safetensors: validate the JSON header the way the Rust loader does, and read nothing else.

The format cannot run code, so what matters is what a loader or a downstream tool would trust:
a header that lies about sizes or offsets (parser differentials, hidden bytes in gaps), and
`__metadata__` strings carrying code, pickles or URLs that some tool might act on. Tensor
bytes are never read, so a multi-gigabyte file costs one small read.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ...budget import BudgetExceeded, report_budget
from ...formats import Format
from ...formats.json_values import loads_bounded
from ...formats.safetensors import HEADER_CAP, SafetensorsError, read_raw_header
from ...formats.view import BufferView, FileView
from ...rules.data import (
    SAFETENSORS_BAD_HEADER,
    SAFETENSORS_BAD_LAYOUT,
    SAFETENSORS_HEADER_TOO_LARGE,
    SAFETENSORS_METADATA_PAYLOAD,
    SAFETENSORS_UNKNOWN_DTYPE,
)
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..nested_bytes import scan_nested_bytes
from ..text.payloads import find_payloads

#: Bits per element of every dtype the Rust crate knows (safetensors 0.6+).
DTYPE_BITS: Final[dict[str, int]] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}


#: The Rust loader's `usize`: shapes, element counts and bit counts past it are refused.
_USIZE_MAX: Final = (1 << 64) - 1
#: Pickles listed per metadata value (every pickle found is still scanned).
_LISTED_PICKLES: Final = 10


def tensor_bits(shape: list[int], dtype_bits: int) -> int | None:
    """Bits the tensor needs, folded the way the Rust loader does (`checked_mul` from 1 in
    dimension order), or None where it overflows `usize` and the loader refuses the file.
    Stops at the first overflow, so a header of thousands of huge dimensions costs one pass
    of small multiplications rather than a product of millions of digits."""
    count = 1
    for dim in shape:
        if dim > _USIZE_MAX:
            return None
        count *= dim
        if count > _USIZE_MAX:
            return None
    bits = count * dtype_bits
    return None if bits > _USIZE_MAX else bits


class SafetensorsScanner(BaseScanner):
    name = "safetensors"
    description = "Validates safetensors headers and metadata without reading tensor data"
    supported_extensions = [".safetensors"]
    formats = (Format.SAFETENSORS,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        data = self.whole_file(path)
        try:
            if data is not None:
                size, header_bytes = len(data), read_raw_header(BufferView(data))
            else:
                size = self.file_size(path)
                with open(path, "rb") as f:
                    header_bytes = read_raw_header(FileView(f, size))
        except SafetensorsError as exc:
            result.mark_inconclusive(f"malformed: {exc}")
            result.finish()
            return result
        length, raw = header_bytes.length, header_bytes.raw
        result.bytes_scanned = 8
        if raw is None:
            result.add_issue(
                f"safetensors header length {length} exceeds "
                + ("the 100 MB cap" if length > HEADER_CAP else f"the file size ({size})"),
                severity=IssueSeverity.WARNING,
                location=self.location(path, pos=0),
                details={"header_length": length, "file_size": size},
                why="A loader trusting this length allocates or reads attacker-chosen sizes; "
                "a legitimate file never has it.",
                rule=SAFETENSORS_HEADER_TOO_LARGE,
            )
            result.mark_inconclusive("malformed: header length out of bounds")
            result.finish()
            return result
        result.bytes_scanned += len(raw)
        header = self._parse_header(raw, path, result)
        if header is not None:
            self._check_tensors(header, size - 8 - length, 8 + length, path, result)
            meta = header.get("__metadata__")
            if meta is not None:
                self._check_metadata(meta, path, result)
        result.finish()
        return result

    def _parse_header(self, raw: bytes, path: str, result: ScanResult) -> dict[str, Any] | None:
        duplicates: list[str] = []

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, value in items:
                if key in out:
                    duplicates.append(key)
                out[key] = value
            return out

        try:
            header = loads_bounded(
                raw.decode("utf-8"), "safetensors header values", object_pairs_hook=pairs
            )
        except BudgetExceeded as exc:
            report_budget(result, self.location(path, pos=8), exc)
            return None
        except RecursionError:
            self._bad_header("header JSON nested too deeply to parse", path, result)
            result.mark_inconclusive("malformed: header nested too deeply")
            return None
        except (UnicodeDecodeError, ValueError) as exc:
            result.mark_inconclusive(f"malformed: header is not valid JSON ({exc})")
            return None
        if not isinstance(header, dict):
            self._bad_header("header is not a JSON object", path, result)
            return None
        if duplicates:
            self._bad_header(
                f"header repeats keys {sorted(set(duplicates))[:5]}: loaders disagree on which "
                "entry wins",
                path,
                result,
            )
        return header

    def _bad_header(self, message: str, path: str, result: ScanResult) -> None:
        result.add_issue(
            f"Invalid safetensors header: {message}",
            severity=IssueSeverity.WARNING,
            location=self.location(path, pos=8),
            why="A header the reference loader would reject can be read differently by other "
            "tools, which is how polyglot and confusion attacks hide data.",
            rule=SAFETENSORS_BAD_HEADER,
        )

    def _check_tensors(
        self, header: dict[str, Any], data_size: int, data_start: int, path: str, result: ScanResult
    ) -> None:
        spans: list[tuple[int, int, str]] = []
        dtypes: set[str] = set()
        problems: list[str] = []
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if not isinstance(info, dict):
                problems.append(f"{name}: entry is not an object")
                continue
            dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
            if (
                not isinstance(shape, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
                or not isinstance(offsets, list)
                or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            ):
                problems.append(f"{name}: shape or data_offsets malformed")
                continue
            begin, end = offsets
            if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
                result.add_issue(
                    f"Tensor '{name}' has unknown dtype {dtype!r}",
                    severity=IssueSeverity.WARNING,
                    location=self.location(path, pos=8),
                    details={"tensor": name, "dtype": dtype},
                    why="No safetensors loader produces this dtype; the entry is not a real "
                    "tensor and may target a parser bug in another tool.",
                    rule=SAFETENSORS_UNKNOWN_DTYPE,
                )
            else:
                dtypes.add(dtype)
                bits = tensor_bits(shape, DTYPE_BITS[dtype])
                if bits is None:
                    problems.append(f"{name}: shape overflows the loader's element count")
                elif bits % 8 or end - begin != bits // 8:
                    problems.append(
                        f"{name}: {end - begin} bytes stored, shape {shape} of {dtype} needs "
                        f"{bits / 8:g}"
                    )
            if begin < 0 or end < begin or end > data_size:
                problems.append(
                    f"{name}: offsets [{begin}, {end}] outside the {data_size}-byte data"
                )
                result.mark_inconclusive("malformed: tensor data extends past the end of the file")
                continue
            spans.append((begin, end, name))
        spans.sort()
        cursor = 0
        for begin, end, name in spans:
            if begin > cursor:
                problems.append(f"{name}: {begin - cursor} unreferenced bytes before it")
            elif begin < cursor:
                problems.append(f"{name}: overlaps the previous tensor")
            cursor = max(cursor, end)
        if cursor < data_size:
            problems.append(f"{data_size - cursor} bytes after the last tensor")
            self.scan_after_end(path, data_start + cursor, result, "the last safetensors tensor")
        if problems:
            result.add_issue(
                f"Inconsistent safetensors layout: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                severity=IssueSeverity.WARNING,
                location=self.location(path, pos=data_start),
                details={"problems": problems[:20]},
                why="The reference loader rejects such files; other readers may accept them and "
                "see different tensors, or carry data hidden between them.",
                rule=SAFETENSORS_BAD_LAYOUT,
            )
        result.metadata["format_details"] = {
            "tensors": len(spans),
            "dtypes": sorted(dtypes),
            "data_bytes": data_size,
        }

    def _check_metadata(self, meta: Any, path: str, result: ScanResult) -> None:
        if not isinstance(meta, dict):
            self._bad_header("__metadata__ is not an object", path, result)
            return
        for key, value in meta.items():
            if not isinstance(value, str):
                self._bad_header(f"__metadata__[{key!r}] is not a string", path, result)
                value = json.dumps(value)
            # every pickle is scanned; a value holding thousands lists the first few
            pickles = 0
            for payload in find_payloads(value):
                pickles += payload.kind == "pickle"
                if pickles <= _LISTED_PICKLES:
                    self._report_payload(key, payload.kind, payload.snippet, path, result)
                if payload.kind == "pickle":
                    nested = scan_nested_bytes(
                        self.ctx,
                        payload.data,
                        self.location(path, member=f"__metadata__/{key}"),
                        fmt=Format.PICKLE,
                    )
                    result.merge(nested)
        if isinstance(meta.get("license"), str):
            result.metadata["license"] = meta["license"]

    def _report_payload(
        self, key: str, kind: str, snippet: str, path: str, result: ScanResult
    ) -> None:
        severity = IssueSeverity.INFO if kind == "url" else IssueSeverity.WARNING
        why = {
            "code": "Code in metadata runs wherever a tool evaluates the value.",
            "pickle": "A pickle in metadata runs its payload wherever a tool unpickles the value.",
        }.get(kind)
        result.add_issue(
            f"safetensors __metadata__['{key}'] holds {'a ' if kind != 'code' else ''}{kind}",
            severity=severity,
            location=self.location(path, pos=8),
            details={"key": key, "kind": kind, "snippet": snippet},
            why=why,
            rule=SAFETENSORS_METADATA_PAYLOAD,
        )
