"""Atheris harness: every registered scanner, reached through dispatch, fed mutated seeds,
and the format parsers of modelaudit/formats (zip directory and local headers, GGUF, npy
header, safetensors header, protobuf wire walk and the ONNX walk over it, SentencePiece,
fastText, CTranslate2 and word2vec walks, protocol 0/1 pickle and inert-content verdicts,
torch storage records, requirements lines, JSONC, HDF5 global heaps, bytecode headers,
Arrow schemas and Parquet footers, sniffing) called directly on the same bytes: a parser may only raise its own documented
error.

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
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import atheris

with atheris.instrument_imports():
    from modelaudit.config import ScanConfig
    from modelaudit.engine import dispatch, sandbox
    from modelaudit.findings import FileStatus, ScanResult
    from modelaudit.formats import (
        HEAD_SIZE,
        arrow_schema,
        ctranslate2,
        fasttext,
        gguf,
        hdf5_heaps,
        jsonc,
        npy,
        old_pickle,
        onnx,
        parquet_footer,
        protowire,
        pyc,
        requirements,
        safetensors,
        sentencepiece,
        sniff,
        text,
        torch_refs,
        unowned,
        word2vec,
        zipdir,
    )
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
    "tokenizer.model": b"".join(
        b"\x0a"
        + bytes([len(p) + 9])
        + b"\x0a"
        + bytes([len(p)])
        + p
        + b"\x15\x00\x00\x80\xbf\x18\x01"
        for p in (b"<unk>", b"\xe2\x96\x81the", b"ing")
    )
    + b"\x12\x04\x08\x01\x10\x02",
    "model.bin": struct.pack("<IH", 6, 16)
    + b"TransformerSpec\x00"
    + struct.pack("<IIH", 1, 1, 2)
    + b"w\x00\x01"
    + struct.pack("<I", 2)
    + b"\x00"
    + struct.pack("<I", 8)
    + bytes(8)
    + struct.pack("<I", 0),
    "cc.en.bin": struct.pack("<ii", 793712314, 12)
    + struct.pack("<12i", 4, 5, 5, 1, 5, 1, 1, 1, 2000000, 3, 6, 100)
    + struct.pack("<d", 1e-4)
    + struct.pack("<iiiqq", 2, 2, 0, 10, -1)
    + b"the\x00"
    + bytes(9)
    + b"ing\x00"
    + bytes(9)
    + b"\x00"
    + struct.pack("<qq", 2, 4)
    + bytes(32),
    "vectors.bin": b"2 3\nthe " + bytes(12) + b"\ning " + bytes(12) + b"\n",
    "requirements.txt": b"mlflow==2.9.0\nnumpy>=1.24 \\\n  ; python_version>'3.8'\n"
    b"git+https://example.invalid/x.git#egg=x\n--extra-index-url https://example.invalid/\n",
    "tokenizer_config.json": b'{"chat_template": "{% set x = x ~ x %}{{ messages[0].content }}",'
    b' "auto_map": {"AutoTokenizer": "tok.Tok"}}',
    "weights.txt": b"cos\nsystem\n(S'id'\ntR.",
}


def _scripted(flatbuffer: bool = False) -> bytes:
    """A TorchScript archive whose class has a `__setstate__` (the code torch.jit.load runs)."""
    import io

    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x).relu()

        @torch.jit.export
        def __getstate__(self) -> tuple[int, bool]:
            return (1, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[int, bool]) -> None:
            self.training = state[1]

    buf = io.BytesIO()
    scripted = torch.jit.script(Net())
    if flatbuffer:
        torch.jit.save_jit_module_to_flatbuffer(scripted, buf)
    else:
        torch.jit.save(scripted, buf)
    return buf.getvalue()


def _skops() -> bytes:
    import skops.io
    from sklearn.tree import DecisionTreeClassifier

    return bytes(
        skops.io.dumps(DecisionTreeClassifier(max_depth=2).fit([[0], [1], [2]], [0, 1, 1]))
    )


def _arrow(kind: str) -> bytes:
    """A table with nested, dictionary and extension-named fields, as pyarrow writes it."""
    import io

    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    meta = {b"ARROW:extension:name": b"arrow.py_extension_type", b"ARROW:extension:metadata": b"N."}
    table = pa.table(
        {
            "s": pa.array([{"x": 1, "y": [1.0]}]),
            "d": pa.array(["a"]).dictionary_encode(),
        }
    ).append_column(pa.field("e", pa.int64(), metadata=meta), pa.array([1]))
    buf = io.BytesIO()
    if kind == "parquet":
        pq.write_table(table, buf)
    else:
        with (ipc.new_file if kind == "file" else ipc.new_stream)(buf, table.schema) as w:
            w.write_table(table)
    return buf.getvalue()


#: Seeds built with the real libraries at start-up (left out when a library is missing).
_BUILT: dict[str, Callable[[], bytes]] = {
    "scripted.pt": _scripted,
    "lite.ptl": lambda: _scripted(flatbuffer=True),
    "model.skops": _skops,
    "data.parquet": lambda: _arrow("parquet"),
    "data.feather": lambda: _arrow("file"),
    "cache.arrow": lambda: _arrow("stream"),
}
for _name, _build in _BUILT.items():
    with contextlib.suppress(Exception):
        _EXTRA[_name] = _build()


def _sweep_stale() -> None:
    """libFuzzer ends the process without Python's exit handlers: scratch folders of earlier
    runs (named by their process id) are removed once that process is gone."""
    for entry in os.scandir(tempfile.gettempdir()):
        match = re.fullmatch(r"modelaudit-fuzz-(\d+)-\w+", entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            os.kill(int(match[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


_sweep_stale()
_DIR = tempfile.mkdtemp(prefix=f"modelaudit-fuzz-{os.getpid()}-")
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
    arrow_schema.ArrowSchemaError,
    parquet_footer.ParquetError,
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
            lambda: arrow_schema.read_schemas(view),
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
        for read in (
            sentencepiece.read_sentencepiece,
            fasttext.read_fasttext,
            ctranslate2.read_ctranslate2,
            word2vec.read_word2vec,
        ):
            f.seek(0)
            with contextlib.suppress(Malformed):
                read(f, len(body))
        hdf5_heaps.looping_heap(FileView(f))
    head = body[:HEAD_SIZE]
    pyc.bytecode_kind(head)
    arrow_schema.looks_like_arrow_stream(head, len(body))
    with contextlib.suppress(*_PARSER_ERRORS):
        parquet_footer.parse_key_value_metadata(body)
    with contextlib.suppress(*_PARSER_ERRORS):
        arrow_schema.parse_message(body)
    for looks in (
        sentencepiece.looks_like_sentencepiece,
        fasttext.looks_like_fasttext,
        ctranslate2.looks_like_ctranslate2,
        word2vec.looks_like_word2vec,
        text.looks_like_text,
        text.looks_like_msgpack_map,
    ):
        looks(head)
    complete = len(body) <= HEAD_SIZE
    old_pickle.old_pickle_verdict(head, complete)
    old_pickle.whole_pickle_that_imports(body)
    unowned.inert_kind(head, complete, path)
    torch_refs.storage_keys(body)
    decoded = body.decode("utf-8", "surrogateescape")
    requirements.external_sources(decoded)
    jsonc.strip_jsonc(decoded)
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
    # Like a scan worker: an absurd allocation fails with MemoryError instead of an OOM kill,
    # and each pickle load has the worker's budget (`sandbox.memory_budget` applies it only in
    # an armed worker, so mark this process as one).
    limit = int(os.environ.get("FUZZ_MEMORY_LIMIT", str(16 << 30)))
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    sandbox._active = "fuzz"
    atheris.Setup([*sys.argv, corpus], test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
