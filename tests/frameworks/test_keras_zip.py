"""Keras v3 `.keras` archives, written by Keras and by hand in its layout, then scanned."""

from __future__ import annotations

import base64
import json
import marshal
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import containers as crules
from modelaudit.rules import frameworks as R
from tests.frameworks._frameworks_helpers import alarms, rules_at, scan

CRIT = IssueSeverity.CRITICAL
WARN = IssueSeverity.WARNING
FLOAT32 = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}}


def _layer(cls: str, config: dict[str, Any], module: str = "keras.layers") -> dict[str, Any]:
    return {
        "module": module,
        "class_name": cls,
        "config": {"trainable": True, "dtype": FLOAT32, **config},
        "registered_name": None,
    }


def keras3_config(layers: list[dict[str, Any]], name: str = "seq") -> dict[str, Any]:
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": FLOAT32,
            "layers": [
                _layer("InputLayer", {"name": "input_layer", "batch_shape": [None, 4]}),
                _layer(
                    "Dense",
                    {
                        "name": "dense",
                        "units": 2,
                        "activation": "relu",
                        "kernel_initializer": {
                            "module": "keras.initializers",
                            "class_name": "GlorotUniform",
                            "config": {"seed": None},
                            "registered_name": None,
                        },
                    },
                ),
                *layers,
            ],
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
        "compile_config": {
            "optimizer": {
                "module": "keras.optimizers",
                "class_name": "Adam",
                "config": {"name": "adam", "learning_rate": 0.001},
                "registered_name": None,
            },
            "loss": "categorical_crossentropy",
            "metrics": ["accuracy"],
        },
    }


def _weights(path: Path, link_to: str | None = None) -> None:
    with h5py.File(path, "w") as f:
        vars_ = f.create_group("layers/dense/vars")
        vars_.create_dataset("0", data=np.ones((4, 2), np.float32))
        vars_.create_dataset("1", data=np.zeros(2, np.float32))
        if link_to:
            vars_["2"] = h5py.ExternalLink(link_to, "/data")


def write_keras_zip(
    path: Path,
    config: dict[str, Any],
    link_to: str | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    weights = path.with_suffix(".weights.tmp")
    _weights(weights, link_to)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1", "date_saved": "x"}))
        zf.writestr("config.json", json.dumps(config))
        zf.write(weights, "model.weights.h5")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    weights.unlink()
    return path


def _lambda3(source: str) -> dict[str, Any]:
    code = compile(source, "<lambda>", "eval").co_consts[0]
    blob = base64.b64encode(marshal.dumps(code)).decode("ascii")
    return _layer(
        "Lambda",
        {
            "name": "lam",
            "function": {
                "class_name": "__lambda__",
                "config": {"code": blob, "defaults": None, "closure": None},
            },
            "arguments": {},
        },
    )


def test_keras_written_archives(tf_models: Path) -> None:
    legit = scan(tf_models / "legit.keras")
    assert legit.scanner_name == "keras_zip"
    assert legit.status is FileStatus.COMPLETE
    assert alarms(legit) == []
    assert legit.metadata["model_names"] == ["plain_net"]
    lam = scan(tf_models / "lambda.keras")
    assert rules_at(lam, WARN) == {R.KERAS_LAMBDA}


def test_hand_built_legitimate_archive_is_clean(tmp_path: Path) -> None:
    result = scan(write_keras_zip(tmp_path / "m.keras", keras3_config([])))
    assert result.status is FileStatus.COMPLETE
    assert alarms(result) == []


def test_dangerous_lambda_in_config(tmp_path: Path) -> None:
    cfg = keras3_config([_lambda3("lambda x: exec('import os; os.system(\"id\")') or x")])
    result = scan(write_keras_zip(tmp_path / "m.keras", cfg))
    issue = next(i for i in result.issues if i.rule == R.KERAS_LAMBDA_DANGEROUS)
    assert issue.severity is CRIT
    assert "exec" in issue.details["evidence"]
    assert issue.location and issue.location.endswith("m.keras:config.json")


def test_enable_unsafe_deserialization_and_dangerous_function(tmp_path: Path) -> None:
    unsafe = {
        "module": "keras.config",
        "class_name": "function",
        "config": "enable_unsafe_deserialization",
        "registered_name": "function",
    }
    evil = _layer("Dense", {"name": "d2", "units": 1, "activation": unsafe})
    popen = {"module": "os", "class_name": "function", "config": "popen", "registered_name": None}
    cfg = keras3_config([evil, _layer("Activation", {"name": "a", "activation": popen})])
    result = scan(write_keras_zip(tmp_path / "m.keras", cfg))
    crit = rules_at(result, CRIT)
    assert R.KERAS_UNSAFE_DESERIALIZATION in crit
    assert R.KERAS_DANGEROUS_MODULE in crit


def test_custom_loss_in_compile_config(tmp_path: Path) -> None:
    cfg = keras3_config([])
    cfg["compile_config"]["loss"] = "contrastive_thing"
    result = scan(write_keras_zip(tmp_path / "m.keras", cfg))
    assert rules_at(result, WARN) == {R.KERAS_CUSTOM_TRAINING}


def test_external_link_in_embedded_weights(tmp_path: Path) -> None:
    result = scan(write_keras_zip(tmp_path / "m.keras", keras3_config([]), link_to="/etc/x.h5"))
    issue = next(i for i in result.issues if i.rule == R.HDF5_EXTERNAL_LINK)
    assert issue.severity is CRIT
    assert issue.location and "m.keras:model.weights.h5" in issue.location


def test_unsafe_member_name_and_nested_member_scanned(tmp_path: Path) -> None:
    extra = {"../escape.txt": b"x", "assets/inner.h5": b"not really hdf5"}
    result = scan(write_keras_zip(tmp_path / "m.keras", keras3_config([]), extra=extra))
    assert crules.PATH_TRAVERSAL in rules_at(result, CRIT)


def test_renamed_archive_reaches_keras_scanner(tmp_path: Path) -> None:
    cfg = keras3_config([_lambda3("lambda x: __import__('subprocess').call(['sh'])")])
    path = write_keras_zip(tmp_path / "model.bin", cfg)
    result = scan(path)
    assert result.scanner_name == "keras_zip"
    assert R.KERAS_LAMBDA_DANGEROUS in rules_at(result, CRIT)


def test_broken_config_json_is_inconclusive(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", "{}")
        zf.writestr("config.json", "{not json")
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert R.KERAS_UNREADABLE_CONFIG in rules_at(result, WARN)


def test_config_of_millions_of_values_is_inconclusive_on_a_budget(tmp_path: Path) -> None:
    """json.loads of a 12 MB config.json of `{}` builds millions of dicts; both JSON members
    share one bound, checked from byte counts before they are parsed."""
    from modelaudit.formats.json_values import MAX_JSON_VALUES
    from modelaudit.rules import core

    half = b"[" + b"{}," * (MAX_JSON_VALUES // 2) + b"{}]"
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", half)
        zf.writestr("config.json", half)
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert core.ANALYSIS_BUDGET in rules_at(result, IssueSeverity.INFO)
