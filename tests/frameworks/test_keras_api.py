"""Keras configs naming Keras APIs that are not model parts (file download, saving and
serialisation helpers, dataset loaders, callbacks, backend state), planted into files Keras
wrote, under every module spelling Keras resolves."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import h5py
import pytest

from modelaudit.findings import IssueSeverity
from modelaudit.rules import frameworks as R
from modelaudit.scanners.keras.config import KerasConfigAnalyzer
from tests.frameworks._frameworks_helpers import alarms, rules_at, scan

CRIT = IssueSeverity.CRITICAL


def _fn(module: str, name: str) -> dict[str, Any]:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


#: (module, name) pairs Keras 3 (export table or module import), Keras 2.13+ or tf_keras
#: resolve to something that is not a model part.
NON_MODELING = [
    _fn("keras.saving", "load_model"),
    _fn("keras", "saving.load_model"),  # module "keras" + dotted name: the same export path
    _fn("keras.models", "model_from_json"),
    _fn("keras.src.utils.python_utils", "func_load"),  # runs marshalled code
    _fn("keras.src.saving.serialization_lib", "deserialize_keras_object"),
    _fn("keras.datasets.mnist", "load_data"),  # downloads
    _fn("keras.src.backend.common.global_state", "set_global_attribute"),  # safe mode off
    _fn("keras.api._tf_keras.keras.utils", "plot_model"),  # writes a file
    _fn("tf_keras.models", "load_model"),
    _fn("tensorflow.keras.preprocessing", "image_dataset_from_directory"),
    _fn("keras._legacy.backend", "set_value"),
    {"module": "keras.callbacks", "class_name": "RemoteMonitor", "config": {}},
    {"module": "keras.src.saving.file_editor", "class_name": "KerasFileEditor", "config": {}},
    {"module": "keras.export", "class_name": "ExportArchive", "config": {}},
]


def _plant_keras(src: Path, dst: Path, payload: dict[str, Any]) -> Path:
    """A copy of the Keras-written archive whose hidden layer's activation is `payload`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                hidden = next(
                    layer
                    for layer in config["config"]["layers"]
                    if layer["config"]["name"] == "hidden"
                )
                hidden["config"]["activation"] = payload
                data = json.dumps(config).encode()
            zout.writestr(item, data)
    return dst


def _plant_h5(src: Path, dst: Path, payload: dict[str, Any]) -> Path:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        hidden = next(
            layer for layer in config["config"]["layers"] if layer["config"]["name"] == "hidden"
        )
        hidden["config"]["activation"] = payload
        f.attrs["model_config"] = json.dumps(config)
    return dst


def _id(payload: dict[str, Any]) -> str:
    name = payload["config"] if payload["class_name"] == "function" else payload["class_name"]
    return f"{payload['module']}:{name}"


@pytest.mark.parametrize("payload", NON_MODELING, ids=_id)
def test_non_modeling_keras_api_is_critical(
    tf_models: Path, tmp_path: Path, payload: dict[str, Any]
) -> None:
    what = _id(payload).split(":", 1)[1]
    for path in (
        _plant_keras(tf_models / "legit.keras", tmp_path / "m.keras", payload),
        _plant_h5(tf_models / "legit_keras3.h5", tmp_path / "m.h5", payload),
    ):
        result = scan(path)
        assert R.KERAS_DANGEROUS_MODULE in rules_at(result, CRIT), (path, alarms(result))
        issue = next(i for i in result.issues if i.rule == R.KERAS_DANGEROUS_MODULE)
        assert what in issue.message


def test_lambda_naming_non_modeling_function_is_critical() -> None:
    """A Keras 2 Lambda holding a named function from a dataset loader."""
    analyzer = KerasConfigAnalyzer()
    lam = {
        "class_name": "Lambda",
        "config": {
            "name": "l",
            "function": "load_data",
            "function_type": "function",
            "module": "keras.datasets.cifar10",
        },
    }
    analyzer.analyze({"class_name": "Sequential", "config": {"layers": [lam]}})
    assert {(f.severity, f.rule) for f in analyzer.findings} == {(CRIT, R.KERAS_DANGEROUS_MODULE)}


def test_keras_written_function_objects_are_clean(tf_models: Path) -> None:
    """Keras 3 writes losses, metrics and a Lambda's Keras function as `builtins` function
    objects: Keras looks them up among its own functions, so they are no alarm."""
    for name in ("function_losses.keras", "function_losses.h5"):
        assert alarms(scan(tf_models / name)) == [], name


def test_every_exported_modeling_object_is_clean(tf_models: Path) -> None:
    configs = json.loads((tf_models / "keras_exports.json").read_text())
    assert len(configs) > 300
    noisy = []
    for config in configs:
        analyzer = KerasConfigAnalyzer()
        analyzer.analyze(config)
        if analyzer.findings:
            noisy.append((config.get("module"), config.get("class_name"), analyzer.findings))
    assert noisy == []


def test_torch_module_wrapper_is_scanned_as_a_nested_file(tf_models: Path) -> None:
    """Keras 3's TorchModuleWrapper stores `torch.save(module)` base64-encoded in its config;
    loading with safe mode off torch.loads it. The legitimate layer is a warning only; a
    planted pickle inside is found by the nested scan, in both formats."""
    for suffix in ("keras", "h5"):
        legit = scan(tf_models / f"torch_wrapper.{suffix}")
        assert rules_at(legit, IssueSeverity.WARNING) == {R.KERAS_TORCH_MODULE}, alarms(legit)
        assert rules_at(legit, CRIT) == set()
        evil = scan(tf_models / f"torch_wrapper_evil.{suffix}")
        calls = [i for i in evil.issues if i.severity is CRIT and "system" in i.message]
        assert calls, alarms(evil)
        assert all(i.location and "data.pkl" in i.location for i in calls)
        assert R.KERAS_TORCH_MODULE in rules_at(evil, IssueSeverity.WARNING)


def test_torch_module_wrapper_bytes_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelaudit.scanners.keras import config as keras_config

    monkeypatch.setattr(keras_config, "MAX_EMBEDDED_BYTES", 1000)
    layer = {"class_name": "TorchModuleWrapper", "config": {"name": "t", "module": "QUJD" * 400}}
    analyzer = KerasConfigAnalyzer()
    analyzer.analyze({"class_name": "Sequential", "config": {"layers": [layer]}})
    assert analyzer.embedded == [] and analyzer.truncated
