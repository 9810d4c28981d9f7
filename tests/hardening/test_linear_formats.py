"""Doubling properties for the parsers `test_linear_work.py` does not reach: containers (tar,
7z, .keras, torch zip, compressed streams), msgpack, TensorFlow GraphDef, PMML, the data-only
formats (SentencePiece, fastText, CTranslate2, word2vec), Python files, notebooks,
requirements, and the issue's own shapes (`{% set x = x ~ x %}`, the BINGET tuple DAG).

Work is measured as in `_work.py` (calls, memory peak), never by the clock: each input is built
at n and 2n and the analysis may do at most about twice the work.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import FileStatus, IssueSeverity, ScanResult
from tests.hardening import _analysis_corpus as C
from tests.hardening._work import Work, assert_doubling, measure


def _scan(path: Path) -> Callable[[], ScanResult]:
    config = ScanConfig().scanner_config()
    return lambda: dispatch.scan_path(str(path), config, explicit=True)


def _pair(
    tmp_path: Path, name: str, build: Callable[[int], bytes | str], n: int
) -> tuple[Work, Work]:
    works = []
    for size in (n, 2 * n):
        folder = tmp_path / str(size)
        folder.mkdir()
        path = folder / name
        data = build(size)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        works.append(measure(_scan(path)))
    return works[0], works[1]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# --- the issue's shapes ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chat_template.jinja", "tokenizer_config.json"])
def test_jinja_self_concatenation(tmp_path: Path, name: str) -> None:
    """`{% set x = x ~ x %}` k times: a folded value that doubles per line costs 2**k."""

    def build(k: int) -> str | bytes:
        template = C.jinja_doubling(k)
        return C.tokenizer_config(template) if name.endswith(".json") else template

    # k=2 vs 4: before the memoised folding (7372959^) 0.44 M vs 37.7 M calls; now ~10 k vs 18 k.
    small, large = _pair(tmp_path, name, build, 2)
    assert_doubling(small, large)


def test_jinja_self_concatenation_keeps_the_payload_finding(tmp_path: Path) -> None:
    """At the issue's size (k=40 after a payload) the CRITICAL is reported, not lost."""
    template = (
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
        + C.jinja_doubling(40)
        + "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    )
    path = tmp_path / "tokenizer_config.json"
    path.write_bytes(C.tokenizer_config(template))
    result = _scan(path)()
    assert any(i.severity is IssueSeverity.CRITICAL for i in result.issues), result
    assert result.status is not FileStatus.ERROR, result.status_reason


def test_pickle_shared_tuples_through_memo_gets(tmp_path: Path) -> None:
    """The issue's 137-byte shape: each level BINGETs the previous one twice (protocol 2)."""
    small, large = _pair(tmp_path, "dag.pkl", C.pickle_dag_get, 10)
    assert_doubling(small, large)


# --- containers --------------------------------------------------------------------------


def _tar(n: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for i in range(n):
            data = pickle.dumps({"w": [i, i + 1]}, protocol=4)
            info = tarfile.TarInfo(f"model/part{i}.pkl")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tar_members(tmp_path: Path) -> None:
    small, large = _pair(tmp_path, "bundle.tar", _tar, 40)
    assert_doubling(small, large)


def test_sevenzip_members(tmp_path: Path) -> None:
    import py7zr

    def build(n: int) -> bytes:
        buf = io.BytesIO()
        with py7zr.SevenZipFile(buf, "w") as archive:
            for i in range(n):
                archive.writestr(pickle.dumps({"w": [i]}, protocol=4), f"part{i}.pkl")
        return buf.getvalue()

    small, large = _pair(tmp_path, "bundle.7z", build, 40)
    assert_doubling(small, large)


def test_keras_zip_config_layers(tmp_path: Path) -> None:
    def build(n: int) -> bytes:
        config = {"module": "keras", "class_name": "Sequential", "config": C.keras_wide_config(n)}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("config.json", json.dumps(config))
            zf.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
            zf.writestr("model.weights.h5", b"")
        return buf.getvalue()

    small, large = _pair(tmp_path, "model.keras", build, 300)
    assert_doubling(small, large)


def test_torch_zip_tensors(tmp_path: Path) -> None:
    import torch

    def build(n: int) -> bytes:
        buf = io.BytesIO()
        torch.save({f"layer{i}.weight": torch.zeros(2) for i in range(n)}, buf)
        return buf.getvalue()

    small, large = _pair(tmp_path, "model.pt", build, 200)
    assert_doubling(small, large)


def test_compressed_pickle_stream(tmp_path: Path) -> None:
    def build(n: int) -> bytes:
        return gzip.compress(pickle.dumps([{"a": i, "b": [i]} for i in range(n)], protocol=4))

    small, large = _pair(tmp_path, "model.pkl.gz", build, 3000)
    assert_doubling(small, large)


# --- structured data ---------------------------------------------------------------------


def test_msgpack_entries(tmp_path: Path) -> None:
    import msgpack

    def build(n: int) -> bytes:
        return bytes(
            msgpack.packb({f"layer{i}": {"kernel": [i, i], "name": "d"} for i in range(n)})
        )

    small, large = _pair(tmp_path, "flax_model.msgpack", build, 2000)
    assert_doubling(small, large)


def test_json_nesting_depth(tmp_path: Path) -> None:
    small, large = _pair(tmp_path, "config.json", C.json_nested, 400)
    assert_doubling(small, large)


def test_tensorflow_graph_nodes(tmp_path: Path) -> None:
    def build(n: int) -> bytes:
        return b"".join(
            _field(1, _field(1, f"node{i}".encode()) + _field(2, b"Const")) for i in range(n)
        )

    small, large = _pair(tmp_path, "graph.pb", build, 2000)
    assert_doubling(small, large)


def test_pmml_elements(tmp_path: Path) -> None:
    def build(n: int) -> str:
        fields = "".join(
            f'<DataField name="x{i}" optype="continuous" dataType="double"/>' for i in range(n)
        )
        return (
            '<?xml version="1.0"?>\n<PMML version="4.4" xmlns="http://www.dmg.org/PMML-4_4">'
            f'<Header description="t"/><DataDictionary numberOfFields="{n}">{fields}'
            "</DataDictionary></PMML>"
        )

    small, large = _pair(tmp_path, "model.pmml", build, 2000)
    assert_doubling(small, large)


# --- data-only formats -------------------------------------------------------------------


def _sentencepiece(n: int) -> bytes:
    pieces = []
    for i in range(n):
        text = f"\u2581piece{i}".encode()
        piece = _field(1, text) + b"\x15\x00\x00\x80\xbf" + b"\x18\x01"
        pieces.append(_field(1, piece))
    return b"".join(pieces) + _field(2, b"\x08\x01")


def _fasttext(n: int) -> bytes:
    dim = 4
    out = struct.pack("<ii", 793712314, 12)
    out += struct.pack("<12i", dim, 5, 5, 1, 5, 1, 1, 1, 2_000_000, 3, 6, 100)
    out += struct.pack("<d", 1e-4) + struct.pack("<iiiqq", n, n, 0, 10 * n, -1)
    out += b"".join(f"word{i}".encode() + b"\x00" + bytes(9) for i in range(n))
    return out + b"\x00" + struct.pack("<qq", n, dim) + bytes(4 * n * dim)


def _ctranslate2(n: int) -> bytes:
    spec = b"TransformerSpec\x00"
    out = struct.pack("<IH", 6, len(spec)) + spec + struct.pack("<II", 1, n)
    for i in range(n):
        name = f"encoder/layer_{i}/w".encode() + b"\x00"
        out += struct.pack("<H", len(name)) + name + b"\x01" + struct.pack("<I", 2)
        out += b"\x00" + struct.pack("<I", 8) + bytes(8)
    return out + struct.pack("<I", 0)


def _word2vec(n: int) -> bytes:
    dim = 3
    return f"{n} {dim}\n".encode() + b"".join(
        f"word{i} ".encode() + bytes(4 * dim) + b"\n" for i in range(n)
    )


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("tokenizer.model", _sentencepiece),
        ("cc.en.300.bin", _fasttext),
        ("model.bin", _ctranslate2),
        ("vectors.bin", _word2vec),
    ],
)
def test_data_only_formats(tmp_path: Path, name: str, build: Callable[[int], bytes]) -> None:
    path = tmp_path / name
    path.write_bytes(build(4))
    assert _scan(path)().status is FileStatus.COMPLETE  # the parser, not a fallback, reads it
    small, large = _pair(tmp_path, name, build, 2000)
    assert_doubling(small, large)


# --- code and environment text -----------------------------------------------------------


def test_python_file_beside_a_model(tmp_path: Path) -> None:
    def build(n: int) -> str:
        head = "import os\nfrom torch import nn\n\n"
        return head + "".join(
            f"class Block{i}(nn.Module):\n    def forward(self, x):\n"
            f"        return os.path.join(str(x), 'b{i}')\n\n"
            for i in range(n)
        )

    small, large = _pair(tmp_path, "modeling_x.py", build, 300)
    assert_doubling(small, large)


def test_notebook_cells(tmp_path: Path) -> None:
    def build(n: int) -> str:
        cells = [
            {"cell_type": "code", "metadata": {}, "outputs": [], "source": [f"x{i} = {i}\n"]}
            for i in range(n)
        ]
        return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})

    small, large = _pair(tmp_path, "train.ipynb", build, 500)
    assert_doubling(small, large)


def test_requirements_lines(tmp_path: Path) -> None:
    def build(n: int) -> str:
        return "mlflow==2.9.0\n" + "".join(
            f"package{i}>=1.{i} ; python_version>'3.8'  # pinned\n" for i in range(n)
        )

    small, large = _pair(tmp_path, "requirements.txt", build, 2000)
    assert_doubling(small, large)
