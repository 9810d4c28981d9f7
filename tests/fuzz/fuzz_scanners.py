"""Atheris harness: every registered scanner, reached through dispatch, fed mutated seeds,
and the format parsers of modelaudit/formats (zip directory and local headers, GGUF, npy
header, safetensors header, protobuf wire walk and the ONNX walk over it, sniffing) called
directly on the same bytes: a parser may only raise its own documented error.

Not part of pytest or CI (run it by hand):

    /work/main/.venv/bin/python tests/fuzz/fuzz_scanners.py -max_total_time=600 -max_len=65536

A crash is an exception escaping `dispatch.scan_path` or a result that is not a ScanResult;
scanner failures that dispatch turns into an "error" status are crashes too, because a
scanner must never raise for a bad file. Escaping exceptions stop the fuzzer (libFuzzer
writes the input); scanner failures are logged once per distinct message, with the input
saved under $FUZZ_FINDINGS (default ./fuzz-findings), so one known bug does not stop the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import resource
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import atheris

with atheris.instrument_imports():
    from modelaudit.config import ScanConfig
    from modelaudit.engine import dispatch
    from modelaudit.findings import FileStatus, ScanResult
    from modelaudit.formats import HEAD_SIZE, gguf, npy, onnx, protowire, safetensors, sniff, zipdir
    from modelaudit.formats.bounded_reader import Malformed
    from modelaudit.formats.npy_dtype import DescrError
    from modelaudit.formats.view import FileView
    from modelaudit.scanners import registry

    # Scanner modules are imported lazily; import every built-in here so they are instrumented.
    for _spec in registry.routing_entries():
        if isinstance(_spec, registry.ScannerSpec):
            _spec.load()

from tests.hardening._archive_bombs import gnu_sparse_tar
from tests.hardening._hardening_seeds import SEEDS, build_seeds

#: Seeds of the scanners newer than the hardening seed set (text beside models, programs,
#: chat templates, a GNU sparse tar), written here so the shared seed set stays unchanged.
_EXTRA: dict[str, bytes] = {
    "modeling_x.py": b"import os\nclass M(PreTrainedModel):\n    def __init__(self):\n"
    b"        os.system('id')\n",
    "notebook.ipynb": b'{"cells": [{"cell_type": "code", "source": ["!ls\\n", "import os"]}],'
    b' "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
    "MLmodel": b"flavors:\n  python_function:\n    loader_module: evil.loader\n    code: code\n",
    "chat_template.jinja": b"{% set x = 'o' ~ 's' %}{% for m in messages %}{{ m.content }}"
    b"{% endfor %}{{ cycler.__init__.__globals__[x].popen('id') }}",
    "tool.bin": b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00\x3e\x00" + bytes(44),
    "sparse.tar": b"",
}
_DIR = tempfile.mkdtemp(prefix="modelaudit-fuzz-")
_NAMES = sorted({*SEEDS, *_EXTRA})
_CONFIG = {**ScanConfig(max_expanded_size=64 << 20).scanner_config(), "timeout": 10}
_FINDINGS = os.environ.get("FUZZ_FINDINGS", "fuzz-findings")
_seen: set[str] = set()


def _record(name: str, reason: str, data: bytes) -> None:
    signature = re.sub(r"\d+", "N", reason)[:200]
    if signature in _seen:
        return
    _seen.add(signature)
    os.makedirs(_FINDINGS, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(_FINDINGS, f"{name}-{digest}"), "wb") as f:
        f.write(data)
    print(f"FINDING {name}: {reason}", file=sys.stderr, flush=True)


#: What each parser may raise for hostile bytes; anything else is a crash.
_PARSER_ERRORS = (
    zipdir.ZipFormatError,
    zipdir.MemberError,
    npy.NpyError,
    DescrError,
    safetensors.SafetensorsError,
    protowire.WireError,
    Malformed,
)


def _parsers(path: str, body: bytes) -> None:
    """Every parser in modelaudit/formats over the input, as the scanners call them."""
    sniff.sniff_head(body[:HEAD_SIZE], "input", len(body))
    sniff.sniff_path(path, "input")
    with open(path, "rb") as f:
        view = FileView(f, block=1 << 16)
        for parse in (
            lambda: zipdir.parse_directory(view, max_entries=10_000),
            lambda: npy.parse_header(view),
            lambda: safetensors.read_raw_header(view),
            lambda: gguf.parse_header(view),
        ):
            try:
                found = parse()
            except (*_PARSER_ERRORS, gguf.NotGguf):
                continue
            if isinstance(found, zipdir.ZipDirectory):
                for entry in found.entries[:64]:
                    with contextlib.suppress(*_PARSER_ERRORS):
                        zipdir.local_data_offset(view, entry)
                sniff.classify_zip(found.names)
    wire = protowire.Wire(body)
    try:
        for _field in wire.fields(0, len(body)):
            pass
        onnx.walk_model(wire)
    except _PARSER_ERRORS:
        pass


def test_one(data: bytes) -> None:
    if not data:
        return
    name = _NAMES[data[0] % len(_NAMES)]
    path = os.path.join(_DIR, "input-" + name)
    with open(path, "wb") as f:
        f.write(data[1:])
    _parsers(path, data[1:])
    result = dispatch.scan_path(path, _CONFIG, display=name, explicit=True)
    if not isinstance(result, ScanResult):
        raise AssertionError(f"{name}: not a ScanResult: {result!r}")
    reason = result.status_reason or ""
    # A module another engineer has not landed yet is not a parser crash.
    if "ModuleNotFoundError" in reason or "ImportError" in reason:
        return
    if result.status is FileStatus.ERROR and " scanner failed: " in reason:
        _record(name, reason, data[1:])


def main() -> None:
    corpus = os.path.join(_DIR, "corpus")
    os.makedirs(corpus)
    seeds = build_seeds(os.path.join(_DIR, "seeds"))
    for name, body in _EXTRA.items():
        seeds[name] = os.path.join(_DIR, "seeds", name)
        if name == "sparse.tar":
            gnu_sparse_tar(seeds[name], announced=1 << 20, data=b"\x80\x02N.")
            continue
        with open(seeds[name], "wb") as f:
            f.write(body)
    for i, name in enumerate(_NAMES):
        with open(seeds[name], "rb") as f:
            body = f.read()
        with open(os.path.join(corpus, f"seed{i}"), "wb") as f:
            f.write(bytes([i]) + body)
    # Like a scan worker: an absurd allocation fails with MemoryError instead of an OOM kill.
    limit = int(os.environ.get("FUZZ_MEMORY_LIMIT", str(4 << 30)))
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    atheris.Setup([*sys.argv, corpus], test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
