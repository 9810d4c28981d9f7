"""The format vocabulary every layer shares: what a file is, by name.

Values are the strings reports have always used ("pickle", "pytorch_zip", ...), so a
`Format` compares equal to the plain string and serialises as it.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Final


class Format(StrEnum):
    PICKLE = "pickle"
    PYTORCH_ZIP = "pytorch_zip"
    KERAS_ZIP = "keras_zip"
    NPZ = "npz"
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    LZMA = "lzma"
    LZ4 = "lz4"
    ZSTD = "zstd"
    ZLIB = "zlib"
    SEVENZIP = "7z"
    NUMPY = "numpy"
    HDF5 = "hdf5"
    SAFETENSORS = "safetensors"
    GGUF = "gguf"
    GGML = "ggml"
    TFLITE = "tflite"
    TORCHSCRIPT_FLATBUFFER = "torchscript_flatbuffer"
    ONNX = "onnx"
    TF_PROTOBUF = "tf_protobuf"
    JSON = "json"
    YAML = "yaml"
    PMML = "pmml"
    MSGPACK = "msgpack"
    EXECUTABLE = "executable"
    DVC = "dvc"
    SENTENCEPIECE = "sentencepiece"
    FASTTEXT = "fasttext"
    CTRANSLATE2 = "ctranslate2"
    WORD2VEC = "word2vec"
    TIKTOKEN = "tiktoken"
    COREML_WEIGHTS = "coreml_weights"
    TORCH_DCP = "torch_dcp"
    LLAMA2C = "llama2c"
    LLAMA2C_TOKENIZER = "llama2c_tokenizer"
    PARQUET = "parquet"
    LFS_POINTER = "lfs_pointer"
    ARROW_IPC = "arrow_ipc"
    ONNX_EXTERNAL_DATA = "onnx_external_data"
    NOTEBOOK = "notebook"
    PYTHON = "python"
    MLMODEL = "mlmodel"
    MLFLOW_ENV = "mlflow_env"
    TEXT = "text"
    EMPTY = "empty"

    def __str__(self) -> str:
        return self.value


COMPRESSED: Final = frozenset(
    {Format.GZIP, Format.BZIP2, Format.XZ, Format.LZMA, Format.LZ4, Format.ZSTD, Format.ZLIB}
)
ARCHIVES: Final = frozenset({Format.ZIP, Format.TAR, Format.SEVENZIP, *COMPRESSED})
#: Every zip flavour: a format whose content is a zip archive.
ZIP_FORMATS: Final = frozenset({Format.ZIP, Format.PYTORCH_ZIP, Format.KERAS_ZIP, Format.NPZ})

_EXTENSIONS: Final[dict[str, Format]] = {
    ".pkl": Format.PICKLE,
    ".pickle": Format.PICKLE,
    ".joblib": Format.PICKLE,
    ".dill": Format.PICKLE,
    ".pt": Format.PICKLE,
    ".pth": Format.PICKLE,
    ".npy": Format.NUMPY,
    ".npz": Format.NPZ,
    ".h5": Format.HDF5,
    ".hdf5": Format.HDF5,
    ".keras": Format.KERAS_ZIP,
    ".safetensors": Format.SAFETENSORS,
    ".gguf": Format.GGUF,
    ".ggml": Format.GGML,
    ".tflite": Format.TFLITE,
    ".onnx": Format.ONNX,
    ".pb": Format.TF_PROTOBUF,
    ".pbtxt": Format.TF_PROTOBUF,
    ".json": Format.JSON,
    ".yaml": Format.YAML,
    ".yml": Format.YAML,
    ".pmml": Format.PMML,
    ".msgpack": Format.MSGPACK,
    ".zip": Format.ZIP,
    ".tar": Format.TAR,
    ".tgz": Format.GZIP,
    ".gz": Format.GZIP,
    ".bz2": Format.BZIP2,
    ".xz": Format.XZ,
    ".lzma": Format.LZMA,
    ".lz4": Format.LZ4,
    ".zst": Format.ZSTD,
    ".zstd": Format.ZSTD,
    ".tzst": Format.ZSTD,
    ".7z": Format.SEVENZIP,
    ".dvc": Format.DVC,
    ".ipynb": Format.NOTEBOOK,
    ".py": Format.PYTHON,
    ".ftz": Format.FASTTEXT,
    ".parquet": Format.PARQUET,
    ".arrow": Format.ARROW_IPC,
    ".arrows": Format.ARROW_IPC,
    ".feather": Format.ARROW_IPC,
}

#: Extensions under which a user expects a model; unknown content there is worth a warning.
MODEL_EXTENSIONS: Final = (frozenset(_EXTENSIONS) - {".py"}) | {
    ".bin",
    ".ckpt",
    ".mar",
    ".nemo",
    ".model",
}
#: Names torch.load and friends open; a pickle opcode first is enough to route them to pickle.
#: Names ONNX exporters give the raw tensor bytes a model keeps outside itself.
ONNX_DATA_SUFFIXES: Final = (".onnx_data", ".onnx.data")
#: Files of an MLflow model's environment, which environment restoration installs from.
MLFLOW_ENV_NAMES: Final = frozenset(
    {"requirements.txt", "constraints.txt", "python_env.yaml", "conda.yaml"}
)
PICKLE_NAMES: Final = (".pkl", ".pickle", ".joblib", ".dill", ".pt", ".pth", ".bin", ".ckpt")


def extension_format(name: str) -> Format | None:
    lower = name.lower()
    if lower.endswith((".tar.gz", ".tar.bz2", ".tar.xz", ".nemo")):
        return Format.TAR if lower.endswith(".nemo") else _EXTENSIONS[os.path.splitext(lower)[1]]
    return _EXTENSIONS.get(os.path.splitext(lower)[1])


def has_model_extension(name: str) -> bool:
    return os.path.splitext(name.lower())[1] in MODEL_EXTENSIONS


#: A remote object's first read of its start: enough to sniff, and usually a whole
#: safetensors header.
FIRST_READ: Final = 64 * 1024
#: ... and of a GGUF model, whose header holds the tokenizer's whole vocabulary (half a MiB
#: for 32,000 tokens, several MiB with merges) ahead of the tensor list the scan needs.
GGUF_FIRST_READ: Final = 4 * 1024 * 1024
#: A first read of an object's end: the end record of a zip and the longest zip comment.
END_READ: Final = FIRST_READ + 22
#: ... and for a large object that may be a zip: room for a PyTorch checkpoint's whole
#: central directory (thousands of tensors) too.
LONG_END_READ: Final = 256 * 1024
#: Formats that are no zip: their end is read only for the appended-data check.
_SHORT_ENDS: Final = frozenset(
    {
        Format.SAFETENSORS,
        Format.GGUF,
        Format.ONNX,
        Format.NUMPY,
        Format.PARQUET,
        Format.ARROW_IPC,
    }
)


def head_read(name: str, size: int | None = None) -> int:
    """How much of a remote object's start its first read takes. A GGUF header sized past
    `FIRST_READ` would cost a second round trip (on an endpoint that reads the whole object
    for every request, moto, a second whole-object read): a GGUF name reads more, up to a
    share of the object that keeps a header-only scan well under 1% of its bytes."""
    if extension_format(name) != Format.GGUF:
        return FIRST_READ
    if size is None:
        return GGUF_FIRST_READ
    return min(GGUF_FIRST_READ, max(FIRST_READ, size >> 7))


def end_read(name: str, size: int) -> int:
    """How much of a remote object's end its first read takes, in one request with its
    start."""
    if extension_format(name) in _SHORT_ENDS or size < 256 * LONG_END_READ:
        return END_READ
    return LONG_END_READ


def unsized_end_read(name: str) -> int:
    """How much of the end a first read sent before the object's size is known takes (a
    suffix range, in place of a HEAD): what `end_read` may want at any size, so that a large
    PyTorch checkpoint's central directory needs no second round trip (a smaller object
    moves at most 192 KiB more)."""
    return END_READ if extension_format(name) in _SHORT_ENDS else LONG_END_READ
