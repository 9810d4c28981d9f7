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
#: The same from KerasHub, KerasNLP and KerasCV, whose modules Keras imports by path too.
HUB_NON_MODELING = [
    _fn("keras_hub.src.utils.preset_utils", "tf_copy_gfile_to_cache"),  # downloads
    _fn("keras_nlp.src.utils.preset_utils", "load_serialized_object"),
    _fn("keras_nlp.utils.preset_utils", "load_json"),  # keras_nlp before its src/ layout
    _fn("keras_hub.src.models.backbone", "get_preset_loader"),  # imported by a model module
    _fn("keras_hub", "upload_preset"),
    _fn("keras_cv.src.datasets.pascal_voc.load", "load"),
    _fn("keras_cv.src.visualization.plot_image_gallery", "plot_image_gallery"),
    {
        "module": "keras_hub.src.utils.transformers.safetensor_utils",
        "class_name": "SafetensorLoader",
        "config": {},
    },
    {"module": "keras_hub.src.utils.preset_utils", "class_name": "KerasPresetLoader", "config": {}},
    {"module": "keras_cv.src.utils.resource_loader", "class_name": "LazySO", "config": {}},
    {
        "module": "keras_cv.src.callbacks.pycoco_callback",
        "class_name": "PyCOCOCallback",
        "config": {},
    },
    {"module": "keras_hub.src.vllm.registry", "class_name": "KerasHubLLM", "config": {}},
]
#: The public KerasHub API (module, name), read from keras_hub/api at keras-hub 71453d08f.
_HUB_EXPORTS = Path(__file__).with_name("keras_hub_exports.json")


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


@pytest.mark.parametrize("payload", NON_MODELING + HUB_NON_MODELING, ids=_id)
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


def _hub_object(module: str, name: str, package: str = "keras_hub") -> dict[str, Any]:
    """What Keras writes for a KerasHub object (a class) or function."""
    if name[:1].isupper():
        return {
            "module": module,
            "class_name": name,
            "config": {"name": "x", "trainable": True, "dtype": "float32"},
            "registered_name": f"{package}>{name}",
        }
    return {**_fn(module, name), "registered_name": f"{package}>{name}"}


@pytest.mark.parametrize("package", ["keras_hub", "keras_nlp"])
def test_every_keras_hub_modeling_export_is_clean(package: str) -> None:
    """KerasHub's public models, layers, tokenizers, samplers, metrics and pure utils (and the
    same under keras_nlp, which had the same layout) are model parts: no finding. Only the
    preset uploader and the vLLM engine are not."""
    pairs = json.loads(_HUB_EXPORTS.read_text())
    assert len(pairs) > 400
    noisy, flagged = [], set()
    for module, name in pairs:
        if name.startswith("__"):
            continue  # __version__: a string, never in a config
        module = module.replace("keras_hub", package, 1)
        analyzer = KerasConfigAnalyzer()
        analyzer.analyze(_hub_object(module, name, package))
        if analyzer.findings:
            if {(f.severity, f.rule) for f in analyzer.findings} != {
                (CRIT, R.KERAS_DANGEROUS_MODULE)
            }:
                noisy.append((module, name, analyzer.findings))
            flagged.add(name)
    assert noisy == []
    assert flagged == {"upload_preset", "KerasHubLLM"}


def test_keras_utils_functions_keras_hub_writes_are_clean() -> None:
    """gelu_approximate is the activation KerasHub's BERT-like backbones write."""
    for package in ("keras_hub", "keras_nlp"):
        analyzer = KerasConfigAnalyzer()
        analyzer.analyze(_hub_object(f"{package}.src.utils.keras_utils", "gelu_approximate"))
        assert analyzer.findings == [], package


def _tokenizer(cls: str, module: str, **config: Any) -> dict[str, Any]:
    return {
        "module": module,
        "class_name": cls,
        "config": {"name": "tokenizer", "trainable": True, "dtype": "int32", **config},
        "registered_name": f"keras_hub>{cls}",
    }


_GEMMA = "keras_hub.src.models.gemma.gemma_tokenizer"
_GPT2 = "keras_nlp.src.models.gpt2.gpt2_tokenizer"
_WHISPER = "keras_hub.src.models.whisper.whisper_tokenizer"


@pytest.mark.parametrize(
    ("tokenizer", "severity"),
    [
        (_tokenizer("GemmaTokenizer", _GEMMA, proto="/home/user/.aws/credentials"), CRIT),
        (_tokenizer("GemmaTokenizer", _GEMMA, proto="tokenizer.spm"), IssueSeverity.WARNING),
        (_tokenizer("GPT2Tokenizer", _GPT2, vocabulary="../../.netrc", merges=None), CRIT),
        (_tokenizer("GPT2Tokenizer", _GPT2, vocabulary=None, merges="/etc/passwd"), CRIT),
        (
            _tokenizer(
                "BertTokenizer", "keras_hub.src.models.bert.bert_tokenizer", vocabulary="~/x"
            ),
            CRIT,
        ),
        (_tokenizer("WhisperTokenizer", _WHISPER, special_tokens="/root/.ssh/id_rsa"), CRIT),
    ],
)
def test_a_tokenizer_naming_a_file_is_reported(
    tokenizer: dict[str, Any], severity: IssueSeverity
) -> None:
    """KerasHub/KerasNLP tokenizers open a string vocabulary, merges, proto or Whisper's token
    tables as a path when built (unguarded by safe mode before January 2026, Whisper's still):
    a path leaving the model is CRITICAL, a relative one a warning. Before: no finding."""
    analyzer = KerasConfigAnalyzer()
    analyzer.analyze(tokenizer)
    assert {(f.severity, f.rule) for f in analyzer.findings} == {(severity, R.KERAS_VOCAB_FILE)}


def test_tokenizers_as_keras_hub_writes_them_are_clean() -> None:
    """Keras writes the vocabulary as None (an asset), merges as None, Whisper's tables as
    dicts, WordPiece's special tokens as a list; an inline SentencePiece proto is base64."""
    inline = "QUJD" * 600  # 2,400 characters of base64
    for tokenizer in (
        _tokenizer("GemmaTokenizer", _GEMMA, proto=None),
        _tokenizer("GemmaTokenizer", _GEMMA, proto=inline),
        _tokenizer("GPT2Tokenizer", _GPT2, vocabulary=None, merges=None),
        _tokenizer("WhisperTokenizer", _WHISPER, special_tokens={"<|endoftext|>": 0}),
        _tokenizer(
            "BertTokenizer",
            "keras_hub.src.models.bert.bert_tokenizer",
            vocabulary=None,
            special_tokens=["[CLS]", "[SEP]"],
        ),
    ):
        analyzer = KerasConfigAnalyzer()
        analyzer.analyze(tokenizer)
        assert analyzer.findings == [], tokenizer["class_name"]


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
