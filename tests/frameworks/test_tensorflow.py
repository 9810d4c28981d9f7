"""SavedModels and GraphDefs written by TensorFlow (in a subprocess), scanned without it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelaudit.core import scan_model_directory_or_file
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import frameworks as R
from tests.frameworks._frameworks_helpers import alarms, rules_at, scan
from tests.frameworks._tf_op_samples import (
    DEBUG_OP_SAMPLES,
    FILE_OP_SAMPLES,
    SUMMARY_WRITE_OP_SAMPLES,
)

CRIT = IssueSeverity.CRITICAL
WARN = IssueSeverity.WARNING


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def keras_metadata(layers: list[dict[str, object]]) -> bytes:
    """`keras_metadata.pb` (SavedMetadata): nodes(1) -> SavedObject.metadata(5) JSON."""
    nodes = b""
    for i, layer in enumerate(layers):
        node = _varint(2 << 3) + _varint(i) + _field(5, json.dumps(layer).encode())
        nodes += _field(1, node)
    return nodes


def test_legitimate_saved_model_is_clean(tf_models: Path) -> None:
    for name in ("saved_model.pb", "fingerprint.pb"):
        result = scan(tf_models / "legit_savedmodel" / name)
        assert result.scanner_name == "tensorflow"
        assert result.status is FileStatus.COMPLETE
        assert alarms(result) == []
    details = scan(tf_models / "legit_savedmodel" / "saved_model.pb").metadata["format_details"]
    assert details["kind"] == "saved_model" and details["tags"] == ["serve"]
    assert details["functions"] >= 2


def test_legitimate_frozen_graph_is_clean(tf_models: Path) -> None:
    result = scan(tf_models / "frozen_legit.pb")
    assert result.metadata["format_details"]["kind"] == "graph_def"
    assert result.metadata["format_details"]["nodes"] > 3
    assert alarms(result) == []


@pytest.mark.parametrize("op", FILE_OP_SAMPLES)
def test_stock_ops_that_touch_host_files_are_critical(tf_models: Path, op: str) -> None:
    assert rules_at(scan(tf_models / f"file_op_{op}.pb"), CRIT) == {R.TF_FILE_OP}


@pytest.mark.parametrize("op", DEBUG_OP_SAMPLES)
def test_debug_ops_with_urls_are_critical(tf_models: Path, op: str) -> None:
    """Each TensorFlow debug op writes the tensors it sees to its `debug_urls` when run."""
    result = scan(tf_models / f"debug_{op}" / "saved_model.pb")
    found = [i for i in result.issues if i.severity is CRIT and i.rule == R.TF_NETWORK_OP]
    assert found and found[0].details["debug_urls"] == ["file:///tmp/modelaudit-dump"]


def test_python_and_file_ops_in_function_library(tf_models: Path) -> None:
    result = scan(tf_models / "evil_savedmodel" / "saved_model.pb")
    ops = {i.details["op"] for i in result.issues if i.severity is CRIT}
    assert ops == {"ReadFile", "WriteFile", "EagerPyFunc"}
    assert {R.TF_PYTHON_OP, R.TF_FILE_OP} == rules_at(result, CRIT)
    py = next(i for i in result.issues if i.rule == R.TF_PYTHON_OP)
    assert py.details["scope"].startswith("function __inference_read")


def test_saved_model_directory_scan(tf_models: Path, tmp_path: Path) -> None:
    folder = tmp_path / "exported"
    shutil.copytree(tf_models / "evil_savedmodel", folder)
    report = scan_model_directory_or_file(str(folder))
    criticals = [i for i in report["issues"] if i["severity"] == "critical"]
    assert {i["details"]["op"] for i in criticals} == {"ReadFile", "WriteFile", "EagerPyFunc"}


def test_print_to_file_but_not_to_log(tf_models: Path) -> None:
    assert rules_at(scan(tf_models / "print_to_file.pb"), CRIT) == {R.TF_PRINT_TO_FILE}
    assert alarms(scan(tf_models / "print_to_log.pb")) == []


def test_a_summary_writer_the_graph_creates_is_critical(tf_models: Path) -> None:
    """tf.summary's file writer made by a served function or kept as a trackable attribute
    (recreated on load) opens the log folder the model names: the creator is the CRITICAL
    file op, and the writes into it add nothing."""
    for name in ("summary_create", "summary_trackable"):
        result = scan(tf_models / name / "saved_model.pb")
        crit = [i for i in result.issues if i.severity is CRIT]
        assert {i.details["op"] for i in crit} == {"CreateSummaryFileWriter"}, alarms(result)
        assert rules_at(result, CRIT) == {R.TF_FILE_OP}
        assert rules_at(result, WARN) == set(), alarms(result)


@pytest.mark.parametrize("op", SUMMARY_WRITE_OP_SAMPLES)
def test_summary_writes_into_a_writer_the_graph_does_not_create_warn(
    tf_models: Path, op: str
) -> None:
    """Without a creator the events go into a writer the host made under a name the graph
    repeats: the host chose the file, the model writes into it. Before: no finding."""
    result = scan(tf_models / f"summary_op_{op}.pb")
    assert rules_at(result, WARN) == {R.TF_FILE_OP} and rules_at(result, CRIT) == set()


def test_summary_write_only_saved_model_names_the_shared_writer(tf_models: Path) -> None:
    result = scan(tf_models / "summary_write_only" / "saved_model.pb")
    assert rules_at(result, CRIT) == set(), alarms(result)
    warned = [i for i in result.issues if i.rule == R.TF_FILE_OP and i.severity is WARN]
    assert warned and warned[0].details["shared_names"] == ["logdir:logs"], alarms(result)


def test_dtensor_restore_outside_the_checkpoint_is_critical(tf_models: Path) -> None:
    """DTensorRestoreV2 reads the checkpoint prefix its input names (the DTensor device lowers
    it to RestoreV2). Before: no finding."""
    assert rules_at(scan(tf_models / "dtensor_restore.pb"), CRIT) == {R.TF_CHECKPOINT_OP}


def test_custom_op_immutable_const_and_stray_save(tf_models: Path) -> None:
    custom = scan(tf_models / "custom_op.pb")
    assert rules_at(custom, WARN) == {R.TF_CUSTOM_OP}
    assert custom.issues[0].details["op"] == "MyVendorFusedOp"
    assert rules_at(scan(tf_models / "immutable_const.pb"), CRIT) == {R.TF_FILE_OP}
    stray = scan(tf_models / "stray_save.pb")
    flagged = [i.details["node"] for i in stray.issues if i.rule == R.TF_CHECKPOINT_OP]
    assert flagged == ["exfil/SaveV2"]


def test_tensorflow_text_ops_are_info(tf_models: Path) -> None:
    """TF Hub's and Kaggle's BERT preprocessors need tensorflow-text's op libraries: one INFO
    names those ops; any other custom op beside them still warns."""
    result = scan(tf_models / "tf_text_ops.pb")
    assert alarms(result) == []
    (info,) = [i for i in result.issues if i.rule == R.TF_CUSTOM_OP]
    assert info.severity is IssueSeverity.INFO
    assert info.details["ops"] == [
        "CaseFoldUTF8",
        "FastWordpieceTokenizeWithOffsets",
        "TFText>RoundRobinTrim",
    ]
    mixed = scan(tf_models / "tf_text_and_vendor_ops.pb")
    warned = [i.details["op"] for i in mixed.issues if i.severity is WARN]
    assert warned == ["MyVendorFusedOp"]


def test_keras_metadata_lambda(tmp_path: Path) -> None:
    import base64
    import marshal

    code = compile("lambda x: __import__('os').popen('id')", "<l>", "eval").co_consts[0]
    blob = base64.b64encode(marshal.dumps(code)).decode()
    layers: list[dict[str, object]] = [
        {"class_name": "Dense", "name": "dense", "config": {"name": "dense", "units": 2}},
        {
            "class_name": "Lambda",
            "name": "lam",
            "config": {"name": "lam", "function": [blob, None, None], "function_type": "lambda"},
        },
    ]
    path = tmp_path / "keras_metadata.pb"
    path.write_bytes(keras_metadata(layers))
    result = scan(path)
    assert rules_at(result, CRIT) == {R.KERAS_LAMBDA_DANGEROUS}
    legit = tmp_path / "legit" / "keras_metadata.pb"
    legit.parent.mkdir()
    legit.write_bytes(keras_metadata(layers[:1]))
    assert alarms(scan(legit)) == []


def test_tf_keras_saved_model_metadata_values_are_clean(tmp_path: Path) -> None:
    """tf_keras 2.21 `model.save(dir)`: its json_utils writes shapes and specs as
    `TensorShape`/`TypeSpec` objects, which its decoder rebuilds without resolving a class."""
    spec = {
        "class_name": "TypeSpec",
        "type_spec": "tf.TensorSpec",
        "serialized": {
            "class_name": "__tuple__",
            "items": [{"class_name": "TensorShape", "items": [None, 4]}, "float32", "input_1"],
        },
    }
    root: dict[str, object] = {
        "name": "sequential",
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": [{"class_name": "Dense", "config": {}}]},
        "build_input_shape": {"class_name": "TensorShape", "items": [None, 4]},
        "full_save_spec": {"class_name": "__tuple__", "items": [[spec], {}]},
        "save_spec": spec,
        "keras_version": "2.21.0",
        "backend": "tensorflow",
    }
    path = tmp_path / "keras_metadata.pb"
    path.write_bytes(keras_metadata([root]))
    assert alarms(scan(path)) == []
    # a module beside the name is a class to import, as before
    moved = dict(root, build_input_shape={"class_name": "TensorShape", "module": "evil"})
    path.write_bytes(keras_metadata([moved]))
    assert rules_at(scan(path), WARN) == {R.KERAS_CUSTOM_OBJECT}


def test_truncated_saved_model_is_inconclusive(tf_models: Path, tmp_path: Path) -> None:
    data = (tf_models / "legit_savedmodel" / "saved_model.pb").read_bytes()
    cut = tmp_path / "saved_model.pb"
    cut.write_bytes(data[: len(data) - 7])
    result = scan(cut)
    assert result.status is FileStatus.INCONCLUSIVE
    assert result.status_reason and result.status_reason.startswith("malformed")


def test_renamed_saved_model_is_sniffed_by_content(tf_models: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "model.bin"
    shutil.copy(tf_models / "evil_savedmodel" / "saved_model.pb", renamed)
    result = scan(renamed)
    assert result.scanner_name == "tensorflow"
    assert R.TF_PYTHON_OP in rules_at(result, CRIT)


@pytest.mark.parametrize(
    ("source", "name", "lead", "rule"),
    [
        # an unknown field first: TensorFlow skips it, the file is still a SavedModel
        ("evil_savedmodel/saved_model.pb", "saved_model.pb", _varint(15 << 3) + b"\x01", None),
        # a varint field 1 first: a GraphDef's field 1 is its nodes, so protobuf skips it
        ("immutable_const.pb", "frozen.pb", _varint(1 << 3) + b"\x01", R.TF_FILE_OP),
    ],
)
def test_leading_fields_protobuf_skips_do_not_change_how_the_file_is_read(
    tf_models: Path, tmp_path: Path, source: str, name: str, lead: bytes, rule: str | None
) -> None:
    """Once the first field alone decided SavedModel or GraphDef: one protobuf skips made
    the file read as the other kind, and its ops went unseen."""
    path = tmp_path / name
    path.write_bytes(lead + (tf_models / source).read_bytes())
    result = scan(path)
    expected = {rule} if rule else {R.TF_PYTHON_OP, R.TF_FILE_OP}
    assert expected <= rules_at(result, CRIT), [i.message for i in result.issues]


def test_legitimate_saved_model_with_an_unknown_leading_field_stays_clean(
    tf_models: Path, tmp_path: Path
) -> None:
    path = tmp_path / "saved_model.pb"
    lead = _varint(15 << 3) + b"\x01"
    path.write_bytes(lead + (tf_models / "legit_savedmodel" / "saved_model.pb").read_bytes())
    result = scan(path)
    assert result.metadata["format_details"]["kind"] == "saved_model"
    assert alarms(result) == []


def test_text_file_tables(tf_models: Path) -> None:
    legit = scan(tf_models / "vocab_savedmodel" / "saved_model.pb")
    assert legit.metadata["format_details"]["kind"] == "saved_model"
    saved = (tf_models / "vocab_savedmodel" / "saved_model.pb").read_bytes()
    assert b"InitializeTableFromTextFileV2" in saved
    assert alarms(legit) == []
    passwd = scan(tf_models / "table_passwd.pb")
    assert rules_at(passwd, CRIT) == {R.TF_ASSET_ESCAPE}
    assert passwd.issues[0].details["filename"] == "/etc/passwd"
    assert rules_at(scan(tf_models / "table_relative.pb"), WARN) == {R.TF_TEXT_TABLE}


def test_graph_disguised_as_fingerprint_is_still_judged(tf_models: Path, tmp_path: Path) -> None:
    disguised = tmp_path / "fingerprint.pb"
    shutil.copy(tf_models / "immutable_const.pb", disguised)
    assert rules_at(scan(disguised), CRIT) == {R.TF_FILE_OP}


def test_text_format_saved_models(tf_models: Path) -> None:
    legit = scan(tf_models / "legit_text_savedmodel" / "saved_model.pbtxt")
    assert legit.scanner_name == "tensorflow"
    assert legit.status is FileStatus.COMPLETE
    assert legit.metadata["format_details"]["nodes"] > 10
    assert alarms(legit) == []
    evil = scan(tf_models / "evil_text_savedmodel" / "saved_model.pbtxt")
    ops = {i.details["op"] for i in evil.issues if i.severity is CRIT}
    assert ops == {"ReadFile", "WriteFile", "EagerPyFunc"}


def test_broken_text_format_is_inconclusive(tmp_path: Path) -> None:
    path = tmp_path / "saved_model.pbtxt"
    path.write_text(
        'meta_graphs {\n  graph_def {\n    node {\n      name: "x"\n      op: "PyFunc"\n'
    )
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE


def test_saved_model_debug_info_is_read_as_debug_info(tf_models: Path) -> None:
    """SaveOptions(save_debug_info=True) writes debug/saved_model_debug_info.pb, a
    GraphDebugInfo (file names, stack frames) that does not parse as a graph."""
    debug = tf_models / "debug_info_savedmodel" / "debug" / "saved_model_debug_info.pb"
    result = scan(debug)
    assert result.status is FileStatus.COMPLETE, result.status_reason
    assert result.metadata["format_details"]["kind"] == "debug_info"
    assert alarms(result) == []
    report = scan_model_directory_or_file(str(tf_models / "debug_info_savedmodel"))
    assert report["summary"]["exit_code"] == 0


def _pyfunc_graph() -> bytes:
    """A GraphDef with one PyFunc node."""
    return _field(1, _field(1, b"p") + _field(2, b"PyFunc"))


@pytest.mark.parametrize("tail", [b"", b"\x0f"])
def test_a_graph_named_as_debug_info_is_still_a_graph(tmp_path: Path, tail: bytes) -> None:
    """A graph under the debug file's name is judged as a graph; one that breaks off into
    bytes no protobuf holds (field 1, wire type 7) does not pass as debug info."""
    path = tmp_path / "saved_model_debug_info.pb"
    path.write_bytes(_pyfunc_graph() + tail)
    result = scan(path)
    if tail:
        assert result.status is FileStatus.INCONCLUSIVE
    else:
        assert CRIT in {i.severity for i in result.issues}


def test_truncated_debug_info_is_inconclusive(tf_models: Path, tmp_path: Path) -> None:
    debug = tf_models / "debug_info_savedmodel" / "debug" / "saved_model_debug_info.pb"
    path = tmp_path / "saved_model_debug_info.pb"
    path.write_bytes(debug.read_bytes()[:-3])
    assert scan(path).status is FileStatus.INCONCLUSIVE


# the densenet_onnx example of Triton's model repository docs, list syntax included
TRITON_CONFIG = """name: "densenet_onnx"
platform: "onnxruntime_onnx"
max_batch_size : 0
input [
  {
    name: "data_0"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
    reshape { shape: [ 1, 3, 224, 224 ] }
  }
]
output [
  {
    name: "fc6_1"
    data_type: TYPE_FP32
    dims: [ 1000 ]
    reshape { shape: [ 1, 1000, 1, 1 ] }
    label_filename: "densenet_labels.txt"
  },
  {
    name: "prob"
    data_type: TYPE_FP32
    dims: [ 1000 ]
  }
]
instance_group [ { kind: KIND_CPU count: 2 } ]
dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }
parameters: { key: "INFERENCE_MODE" value: { string_value: "true" } }
"""


def test_triton_config_message_lists_are_read(tmp_path: Path) -> None:
    """Triton's config.pbtxt writes repeated fields as `input [ { ... }, { ... } ]`."""
    path = tmp_path / "densenet_onnx" / "config.pbtxt"
    path.parent.mkdir()
    path.write_text(TRITON_CONFIG)
    result = scan(path)
    assert result.status is FileStatus.COMPLETE
    assert alarms(result) == []


def test_nodes_in_a_message_list_are_judged(tmp_path: Path) -> None:
    """The same list syntax in a text SavedModel must not hide ops (it was inconclusive)."""
    path = tmp_path / "saved_model.pbtxt"
    path.write_text(
        "meta_graphs [ { graph_def { node [\n"
        '  { name: "r" op: "ReadFile" input: "c" },\n'
        '  { name: "p" op: "EagerPyFunc" attr { key: "token" value { s: "pyfunc_0" } } }\n'
        "] } } ]\n"
    )
    result = scan(path)
    assert result.status is FileStatus.COMPLETE
    ops = {i.details["op"] for i in result.issues if i.severity is CRIT}
    assert ops == {"ReadFile", "EagerPyFunc"}


@pytest.mark.parametrize(
    "text",
    ['node [ { name: "a" op: "Const" }, "x" ]', 'node [ { name: "a" }', "dims: [ 1, 2"],
)
def test_broken_lists_are_inconclusive(tmp_path: Path, text: str) -> None:
    path = tmp_path / "graph.pbtxt"
    path.write_text(text)
    assert scan(path).status is FileStatus.INCONCLUSIVE


def test_dataset_cache_to_a_file(tf_models: Path) -> None:
    """`Dataset.cache(filename)` writes cache files there; `cache()` keeps them in memory."""
    memory = scan(tf_models / "cache_memory" / "saved_model.pb")
    assert memory.status is FileStatus.COMPLETE and alarms(memory) == []
    result = scan(tf_models / "cache_file" / "saved_model.pb")
    issue = next(i for i in result.issues if i.severity is CRIT)
    assert issue.rule == R.TF_FILE_OP and issue.details["op"] == "CacheDatasetV2"
    assert issue.details["filename"] == "/tmp/modelaudit-cache"


def test_dataset_from_graph_hidden_graph_is_read(tf_models: Path) -> None:
    """DatasetFromGraph runs the GraphDef held in a string constant: its ops are judged."""
    reads = scan(tf_models / "dataset_graph_reads" / "saved_model.pb")
    assert {i.details["op"] for i in reads.issues if i.severity is CRIT} == {"TextLineDataset"}
    plain = scan(tf_models / "dataset_graph_plain" / "saved_model.pb")
    assert plain.status is FileStatus.COMPLETE and alarms(plain) == []
    assert (
        plain.metadata["format_details"]["nodes"]
        > scan(tf_models / "dataset_graph_input" / "saved_model.pb").metadata["format_details"][
            "nodes"
        ]
    )


def test_dataset_from_graph_input_is_inconclusive(tf_models: Path) -> None:
    """A graph passed in at run time cannot be seen: the file is not called clean."""
    result = scan(tf_models / "dataset_graph_input" / "saved_model.pb")
    assert result.status is FileStatus.INCONCLUSIVE
    assert alarms(result) == []


def test_hidden_graph_is_the_last_value_attribute_of_its_const(tmp_path: Path) -> None:
    """A map keeps the last entry of a key (TensorFlow's NodeDef.attr as any protobuf map):
    a Const with two `value` entries holds the second graph, which DatasetFromGraph runs."""

    def value(graph: bytes) -> bytes:
        return _field(5, _field(1, b"value") + _field(2, _field(8, _field(8, graph))))

    benign = _field(1, _field(1, b"n") + _field(2, b"NoOp"))
    evil = _field(1, _field(1, b"r") + _field(2, b"ReadFile"))
    const = _field(1, b"c") + _field(2, b"Const") + value(benign) + value(evil)
    data = _field(1, const) + _field(
        1, _field(1, b"d") + _field(2, b"DatasetFromGraph") + _field(3, b"c")
    )
    path = tmp_path / "g.pb"
    path.write_bytes(data)
    assert rules_at(scan(path), CRIT) == {R.TF_FILE_OP}


def test_nested_hidden_graphs_stop_at_the_depth_limit(tmp_path: Path) -> None:
    """Each level is a Const holding the next GraphDef and a DatasetFromGraph reading it."""

    def graph(hidden: bytes | None) -> bytes:
        nodes = b""
        if hidden is not None:
            tensor = _field(8, hidden)  # TensorProto.string_val
            attr = _field(1, b"value") + _field(2, _field(8, tensor))
            nodes += _field(1, _field(1, b"c") + _field(2, b"Const") + _field(5, attr))
            nodes += _field(1, _field(1, b"d") + _field(2, b"DatasetFromGraph") + _field(3, b"c"))
        else:
            nodes += _field(1, _field(1, b"r") + _field(2, b"ReadFile"))
        return nodes

    data = graph(None)
    for _ in range(3):
        data = graph(data)
    path = tmp_path / "g.pb"
    path.write_bytes(data)
    shallow = scan(path)
    assert shallow.status is FileStatus.COMPLETE
    assert rules_at(shallow, CRIT) == {R.TF_FILE_OP}
    for _ in range(3):
        data = graph(data)
    path.write_bytes(data)
    deep = scan(path)
    assert deep.status is FileStatus.INCONCLUSIVE
    assert rules_at(deep, CRIT) == set()
