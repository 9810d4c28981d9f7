"""The scanners the engine routes with, registered explicitly and in order.

`SCANNER_REGISTRY` is a plain list: a file goes to the first scanner that owns its sniffed
format, else to the first whose `can_handle` accepts the name. Users may append their own
scanner classes; the next scan uses them.

The built-in scanners are listed in `BUILTIN` as specs (module, class, formats, extensions),
so routing never needs to import them: a worker imports a scanner's module when the first
file of its kind arrives, and `SCANNER_REGISTRY` itself is built (importing every built-in)
only when someone reads it. Scanner modules import their heavy libraries lazily too.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .base import BaseScanner


@dataclass(frozen=True)
class ScannerSpec:
    """A built-in scanner described without importing it."""

    module: str
    qualname: str
    formats: tuple[str, ...]
    supported_extensions: tuple[str, ...]

    def can_handle(self, path: str) -> bool:
        """`BaseScanner.can_handle`, which no built-in scanner overrides."""
        lower = path.lower()
        return any(lower.endswith(ext) for ext in self.supported_extensions)

    def load(self) -> type[BaseScanner]:
        cls = _LOADED.get((self.module, self.qualname))
        if cls is None:
            cls = getattr(importlib.import_module(self.module), self.qualname)
            _LOADED[self.module, self.qualname] = cls
        return cls


#: Classes already imported, by spec (a worker routes every file through `load`).
_LOADED: dict[tuple[str, str], type[BaseScanner]] = {}


def _spec(module: str, qualname: str, formats: tuple[str, ...], *extensions: str) -> ScannerSpec:
    return ScannerSpec(f"modelaudit.scanners.{module}", qualname, formats, extensions)


#: One entry per built-in scanner; order only matters for name fallbacks. Each entry's
#: formats and extensions are the class's own (tests/engine/test_lazy_scanners.py compares).
BUILTIN: tuple[ScannerSpec, ...] = (
    # pickle family (raw pickles, PyTorch, joblib, NumPy)
    _spec(
        "pickle.pickle_scanner",
        "PickleScanner",
        ("pickle",),
        *(".pkl", ".pickle", ".dill", ".pt", ".pth", ".bin", ".ckpt", ".joblib"),
    ),
    # containers (archives, compressed streams)
    _spec(
        "containers.pytorch_zip_scanner",
        "PyTorchZipScanner",
        ("pytorch_zip",),
        *(".pt", ".pth", ".bin", ".ckpt"),
    ),
    _spec("containers.dcp_scanner", "DcpShardScanner", ("torch_dcp",), ".distcp"),
    _spec("containers.numpy_scanner", "NumPyScanner", ("numpy", "npz"), ".npy", ".npz"),
    _spec(
        "containers.compressed_scanner",
        "CompressedStreamScanner",
        ("gzip", "bzip2", "xz", "lzma", "lz4", "zstd", "zlib"),
        *(".gz", ".tgz", ".bz2", ".xz", ".lzma", ".lz4", ".zst", ".zstd", ".tzst", ".z", ".zlib"),
    ),
    _spec(
        "containers.archive_scanner",
        "ArchiveScanner",
        ("zip", "tar", "7z"),
        *(".zip", ".tar", ".7z", ".mar", ".nemo"),
    ),
    # ML frameworks
    _spec("keras.h5_scanner", "KerasH5Scanner", ("hdf5",), ".h5", ".hdf5"),
    _spec("keras.zip_scanner", "KerasZipScanner", ("keras_zip",), ".keras"),
    _spec("tensorflow.saved_model_scanner", "TensorFlowScanner", ("tf_protobuf",), ".pb", ".pbtxt"),
    _spec("native.tflite_scanner", "TFLiteScanner", ("tflite",), ".tflite"),
    _spec(
        "native.torchscript_flatbuffer_scanner",
        "TorchScriptFlatbufferScanner",
        ("torchscript_flatbuffer",),
    ),
    _spec("onnx.onnx_scanner", "OnnxScanner", ("onnx",), ".onnx"),
    # data and text formats, executables
    _spec("data.safetensors_scanner", "SafetensorsScanner", ("safetensors",), ".safetensors"),
    _spec("native.gguf_scanner", "GgufScanner", ("gguf",), ".gguf"),
    _spec("native.ggml_scanner", "GgmlScanner", ("ggml",), ".ggml"),
    _spec("text.json_scanner", "JsonScanner", ("json",), ".json", ".jinja"),
    _spec("text.yaml_scanner", "YamlScanner", ("yaml",), ".yaml", ".yml"),
    _spec("data.msgpack_scanner", "MsgpackScanner", ("msgpack",), ".msgpack", ".flax"),
    _spec(
        "data.arrow_scanner",
        "ArrowScanner",
        ("parquet", "arrow_ipc"),
        *(".parquet", ".arrow", ".arrows", ".feather"),
    ),
    _spec("text.pmml_scanner", "PmmlScanner", ("pmml",), ".pmml"),
    _spec("native.executable_scanner", "ExecutableScanner", ("executable",)),
    # files that every loader reads as data, and files nothing loads as code
    _spec("data.sentencepiece_scanner", "SentencePieceScanner", ("sentencepiece",)),
    _spec("data.fasttext_scanner", "FastTextScanner", ("fasttext",)),
    _spec("data.ctranslate2_scanner", "CTranslate2Scanner", ("ctranslate2",)),
    _spec("data.word2vec_scanner", "Word2VecScanner", ("word2vec",)),
    _spec("data.tiktoken_scanner", "TiktokenScanner", ("tiktoken",)),
    _spec("data.coreml_weights_scanner", "CoreMLWeightsScanner", ("coreml_weights",)),
    _spec("data.llama2c_scanner", "Llama2cScanner", ("llama2c", "llama2c_tokenizer")),
    _spec("data.onnx_data_scanner", "OnnxExternalDataScanner", ("onnx_external_data",)),
    _spec("text.mlmodel_scanner", "MlflowModelScanner", ("mlmodel",)),
    _spec("text.mlflow_env_scanner", "MlflowEnvironmentScanner", ("mlflow_env",)),
    _spec("text.dvc_scanner", "DvcScanner", ("dvc",), ".dvc"),
    _spec("text.notebook_scanner", "NotebookScanner", ("notebook",), ".ipynb"),
    _spec("text.python_scanner", "PythonScanner", ("python",), ".py"),
    _spec("text.lfs_pointer_scanner", "LfsPointerScanner", ("lfs_pointer",)),
    _spec("text.inert_scanner", "InertFileScanner", ("text", "empty")),
)

SCANNER_REGISTRY: list[type[BaseScanner]]
_registry: list[type[BaseScanner]] | None = None


def __getattr__(name: str) -> Any:
    if name == "SCANNER_REGISTRY":
        return materialize()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def materialize() -> list[type[BaseScanner]]:
    """The registry list itself, built (importing every built-in scanner) on first use."""
    global _registry
    if _registry is None:
        _registry = [spec.load() for spec in BUILTIN]
        globals()["SCANNER_REGISTRY"] = _registry
    return _registry


def registry_in_use() -> bool:
    """Has anyone read (and so possibly changed) `SCANNER_REGISTRY`?"""
    return _registry is not None


def routing_entries() -> Sequence[type[BaseScanner] | ScannerSpec]:
    """What routing walks: the registry once it exists, else the built-in specs."""
    return _registry if _registry is not None else BUILTIN


def spec_of(cls: type) -> ScannerSpec | None:
    """The spec of a built-in scanner class, so it can be named instead of imported."""
    for spec in BUILTIN:
        if spec.module == cls.__module__ and spec.qualname == cls.__qualname__:
            return spec
    return None
