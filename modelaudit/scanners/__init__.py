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
    # One import and one entry per scanner module; order only matters for name fallbacks.
    # -- pickle family (raw pickles, PyTorch, joblib, NumPy)
    from .pickle_scanner import PickleScanner

    SCANNER_REGISTRY.append(PickleScanner)
    # -- containers (archives, compressed streams)
    from .archives import ArchiveScanner
    from .compressed import CompressedStreamScanner
    from .numpy_files import NumPyScanner
    from .pytorch_zip import PyTorchZipScanner

    SCANNER_REGISTRY.extend(
        [PyTorchZipScanner, NumPyScanner, CompressedStreamScanner, ArchiveScanner]
    )
    # -- ML frameworks (Keras, TensorFlow, TFLite, ONNX)
    from .keras_h5 import KerasH5Scanner
    from .keras_zip import KerasZipScanner
    from .onnx_model import OnnxScanner
    from .tensorflow_pb import TensorFlowScanner
    from .tflite import TFLiteScanner

    SCANNER_REGISTRY.extend(
        [KerasH5Scanner, KerasZipScanner, TensorFlowScanner, TFLiteScanner, OnnxScanner]
    )
    # -- data and text formats (safetensors, GGUF, JSON/YAML, msgpack, PMML, executables)
    from .executable_scanner import ExecutableScanner
    from .ggml_scanner import GgmlScanner
    from .gguf_scanner import GgufScanner
    from .json_scanner import JsonScanner
    from .msgpack_scanner import MsgpackScanner
    from .pmml_scanner import PmmlScanner
    from .safetensors_scanner import SafetensorsScanner
    from .yaml_scanner import YamlScanner

    SCANNER_REGISTRY.extend(
        [
            SafetensorsScanner,
            GgufScanner,
            GgmlScanner,
            JsonScanner,
            YamlScanner,
            MsgpackScanner,
            PmmlScanner,
            ExecutableScanner,
        ]
    )
    return


_register_builtin()

__all__ = ["SCANNER_REGISTRY", "BaseScanner", "IssueSeverity", "ScanResult"]
