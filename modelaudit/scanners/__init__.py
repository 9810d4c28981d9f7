"""Format scanners and their explicit registration.

`SCANNER_REGISTRY` is a plain list: the engine routes each file to the first scanner that
owns its sniffed format, else to the first whose `can_handle` accepts the name. Users may
append their own scanner classes; the next scan uses them. Scanner modules import their
heavy libraries lazily, inside `scan`, so importing this package stays cheap.
"""

from __future__ import annotations

from .base import BaseScanner, IssueSeverity, ScanResult

SCANNER_REGISTRY: list[type[BaseScanner]] = []


def _register_builtin() -> None:
    # One entry per scanner; order only matters for name fallbacks.
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

    SCANNER_REGISTRY.extend(
        [
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
    )


_register_builtin()

__all__ = ["SCANNER_REGISTRY", "BaseScanner", "IssueSeverity", "ScanResult"]
