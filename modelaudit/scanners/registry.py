"""The scanners the engine routes with, registered explicitly and in order.

`SCANNER_REGISTRY` is a plain list: a file goes to the first scanner that owns its sniffed
format, else to the first whose `can_handle` accepts the name. Users may append their own
scanner classes; the next scan uses them. Scanner modules import their heavy libraries
lazily, inside `scan`, so importing this module stays cheap.
"""

from __future__ import annotations

from .base import BaseScanner
from .containers.archive_scanner import ArchiveScanner
from .containers.compressed_scanner import CompressedStreamScanner
from .containers.numpy_scanner import NumPyScanner
from .containers.pytorch_zip_scanner import PyTorchZipScanner
from .data import (
    CTranslate2Scanner,
    FastTextScanner,
    MsgpackScanner,
    SafetensorsScanner,
    SentencePieceScanner,
    Word2VecScanner,
)
from .keras import KerasH5Scanner, KerasZipScanner
from .native import ExecutableScanner, GgmlScanner, GgufScanner, TFLiteScanner
from .onnx import OnnxScanner
from .pickle.pickle_scanner import PickleScanner
from .tensorflow import TensorFlowScanner
from .text import (
    DvcScanner,
    InertFileScanner,
    JsonScanner,
    MlflowModelScanner,
    NotebookScanner,
    PmmlScanner,
    YamlScanner,
)

SCANNER_REGISTRY: list[type[BaseScanner]] = [
    # pickle family (raw pickles, PyTorch, joblib, NumPy)
    PickleScanner,
    # containers (archives, compressed streams)
    PyTorchZipScanner,
    NumPyScanner,
    CompressedStreamScanner,
    ArchiveScanner,
    # ML frameworks
    KerasH5Scanner,
    KerasZipScanner,
    TensorFlowScanner,
    TFLiteScanner,
    OnnxScanner,
    # data and text formats, executables
    SafetensorsScanner,
    GgufScanner,
    GgmlScanner,
    JsonScanner,
    YamlScanner,
    MsgpackScanner,
    PmmlScanner,
    ExecutableScanner,
    # files that every loader reads as data, and files nothing loads as code
    SentencePieceScanner,
    FastTextScanner,
    CTranslate2Scanner,
    Word2VecScanner,
    MlflowModelScanner,
    DvcScanner,
    NotebookScanner,
    InertFileScanner,
]
