"""GGUF: walk the header, key/values and tensor table with hard bounds; analyse chat templates.

llama.cpp's C parser has had heap overflows on crafted counts and lengths, and its front-ends
render `tokenizer.chat_template` with Jinja, sometimes unsandboxed. So every count and length
is checked against the bytes that remain before anything is read or allocated, and chat
templates go to the shared Jinja analyser. Tensor data is never read.
"""

from __future__ import annotations

import itertools

from ...formats import Format
from ...formats.bounded_reader import Hostile
from ...formats.gguf import GGML_TYPES, GgufHeader, NotGguf, loaded_string, parse_header
from ...formats.view import FileView
from ...rules.data import GGUF_BAD_HEADER, GGUF_BAD_TENSORS, GGUF_UNKNOWN_TENSOR_TYPE
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..text.jinja_template import report_template


class GgufScanner(BaseScanner):
    name = "gguf"
    description = "Bounded GGUF header, metadata and tensor-table checks; chat template analysis"
    supported_extensions = [".gguf"]
    formats = (Format.GGUF,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        size = self.file_size(path)
        with open(path, "rb") as f:
            try:
                header = parse_header(FileView(f, size, block=1 << 20))
            except NotGguf:
                result.mark_inconclusive("malformed: not a GGUF header")
                result.finish()
                return result
        if header.error is not None:
            if isinstance(header.error, Hostile):
                self._hostile(str(header.error), path, header.end, result)
            result.mark_inconclusive(f"malformed: {header.error}")
        result.bytes_scanned = header.end
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

    def _metadata(self, h: GgufHeader, result: ScanResult) -> None:
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

    def _templates(self, h: GgufHeader, path: str, result: ScanResult) -> None:
        for key, value in [*h.shadowed, *h.values.items()]:
            # (`tokenizer.chat_templates` lists the named templates' names; nothing renders it)
            if not key.startswith("tokenizer.chat_template") or key == "tokenizer.chat_templates":
                continue
            template = loaded_string(value)
            if template is not None:
                report_template(self, template, path, key, result)

    def _check_tensors(self, h: GgufHeader, size: int, path: str, result: ScanResult) -> None:
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
        last = max((end for _, end, _ in spans), default=0)
        if not unknown and h.data_start + last < size:
            self.scan_after_end(path, h.data_start + last, result, "the GGUF tensor data")
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
