"""Raw pickle files of any protocol and extension, stacked pickles, dill and plain joblib."""

from __future__ import annotations

import io
import os
from typing import BinaryIO, ClassVar, Final

from ...findings import FileStatus
from ...formats.regular import open_regular
from ...rules import pickle as R
from ..base import BaseScanner, ScanResult
from . import scan_pickle_stream


class PickleScanner(BaseScanner):
    name: ClassVar[str] = "pickle"
    description: ClassVar[str] = (
        "Emulates the pickle loader symbolically and reports every import and call a load would "
        "make (raw pickles, stacked pickles, dill, plain joblib)."
    )
    supported_extensions: ClassVar[list[str]] = [
        ".pkl",
        ".pickle",
        ".dill",
        ".pt",
        ".pth",
        ".bin",
        ".ckpt",
        ".joblib",
    ]
    formats: ClassVar[tuple[str, ...]] = ("pickle",)
    judges_bytes = True

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        data = self.whole_file(path)
        f: BinaryIO
        try:
            f = io.BytesIO(data) if data is not None else open(path, "rb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            result.mark_error(f"cannot open file: {exc.strerror or exc}")
            result.finish()
            return result
        with f:
            info = scan_pickle_stream(
                f,
                result,
                location=lambda pos: self.location(path, None, pos),
                ctx=self.ctx,
                stacked=True,
                depth=self.ctx.depth,
            )
            size = len(data) if data is not None else self.file_size(path)
            if info.complete and info.end < size:
                result.metadata["trailing_bytes"] = size - info.end
        result.metadata["pickle_count"] = info.pickles
        result.metadata["pickle_globals"] = info.globals[:200]
        if self.ctx.depth == 0:
            weights = self._raw_weights(path, result, info.pickles, info.globals)
            if weights is not None:
                return weights
            self._own_code_classes(path, result)
        result.finish()
        return result

    def _raw_weights(
        self, path: str, result: ScanResult, pickles: int, imports: list[str]
    ) -> ScanResult | None:
        """A `.bin` that is no pickle at all (the unpickler stops before its first pickle
        ends, having imported nothing, and nothing else was found in it) that the model
        beside it names as its raw weights: an OpenVINO IR graph (`NAME.xml`), an ncnn
        graph (`NAME.param`) or a TensorFlow.js manifest (`model.json`) listing it. Those
        runtimes read numbers from it and no unpickler gets past its first bytes, so it is
        complete rather than a malformed pickle. None for any other file."""
        if (
            pickles
            or imports
            or result.status is not FileStatus.INCONCLUSIVE
            or not result.issues
            or any(i.rule != R.MALFORMED_PICKLE for i in result.issues)
            or not path.lower().endswith(".bin")
        ):
            return None
        found = _ir_beside(path) or _ncnn_param_beside(path) or _tfjs_manifest_naming(path)
        if found is None:
            return None
        weights = self._create_result()
        weights.metadata["weights_of"] = found
        weights.bytes_scanned = self.file_size(path)
        weights.finish()
        return weights

    def _own_code_classes(self, path: str, result: ScanResult) -> None:
        """An MLflow `python_model` saved with `code_paths` names its class by a module of
        the model's `code` folder, which loading puts on `sys.path`: that import runs the
        model's own Python, which the MLmodel's and the file's own findings judge (CRITICAL
        when it does harm). It is INFO here, not an unknown package's code (`--strict`
        included: that import is vouched for by the judged file)."""
        if not any(i.rule == R.UNKNOWN_GLOBAL for i in result.issues):
            return
        from ..text.mlflow_layout import (
            mark_own_code,
            module_file,
            python_model_code_dir,
            vouchable,
        )

        unknown = [i for i in result.issues if vouchable(i)]
        if not unknown:
            return
        code_dir = python_model_code_dir(self, path)
        if code_dir is None:
            return
        folder = os.path.dirname(path)
        for issue in unknown:
            module = issue.details.get("module")
            file = module_file(code_dir, module) if isinstance(module, str) else None
            if file is not None:
                mark_own_code(issue, os.path.relpath(file, folder).replace(os.sep, "/"))


def _sibling_head(weights: str, extension: str, size: int) -> tuple[str, bytes] | None:
    """(`NAME.extension` beside `weights`, its first `size` bytes), or None when it cannot
    be read as a regular file."""
    graph = os.path.splitext(weights)[0] + extension
    try:
        with open_regular(graph) as f:
            return graph, f.read(size)
    except OSError:
        return None


def _ir_beside(weights: str) -> str | None:
    """`openvino_ir:NAME.xml` when `NAME.xml` beside `weights` (`NAME.bin`, where
    `read_model` looks for them) is an OpenVINO IR graph."""
    found = _sibling_head(weights, ".xml", 4096)
    if found is None:
        return None
    from ...formats.openvino import looks_like_openvino_ir

    graph, head = found
    return f"openvino_ir:{os.path.basename(graph)}" if looks_like_openvino_ir(head) else None


#: The first line of an ncnn graph (`model.param`, pnnx's `model.ncnn.param`): its magic.
_NCNN_MAGIC: Final = b"7767517"


def _ncnn_param_beside(weights: str) -> str | None:
    """`ncnn:NAME.param` when `NAME.param` beside `weights` (`NAME.bin`, which
    `Net.load_model` reads after `load_param`) starts with ncnn's magic line."""
    found = _sibling_head(weights, ".param", 16)
    if found is None:
        return None
    graph, head = found
    if head.startswith(_NCNN_MAGIC) and head[len(_NCNN_MAGIC) : len(_NCNN_MAGIC) + 1] in (
        b"\n",
        b"\r",
    ):
        return f"ncnn:{os.path.basename(graph)}"
    return None


#: TensorFlow.js manifests: the converter's `model.json` (layers and graph models) and the
#: weight writer's `weights_manifest.json`; read up to this many bytes (topology included).
_TFJS_MANIFESTS: Final = ("model.json", "weights_manifest.json")
_TFJS_MANIFEST_CAP: Final = 64 << 20


def _tfjs_manifest_naming(weights: str) -> str | None:
    """`tfjs:model.json` when a TensorFlow.js manifest beside `weights` lists it in
    its `weightsManifest` paths (what `tf.loadLayersModel`/`loadGraphModel` fetch)."""
    from ...budget import BudgetExceeded, read_capped
    from ...formats.json_values import loads_bounded
    from ...formats.tfjs import weight_paths

    folder, name = os.path.split(weights)
    for manifest in _TFJS_MANIFESTS:
        try:
            raw = read_capped(os.path.join(folder, manifest), _TFJS_MANIFEST_CAP)
            if len(raw) > _TFJS_MANIFEST_CAP:
                continue
            doc = loads_bounded(raw, manifest)
        except (OSError, ValueError, BudgetExceeded):
            continue
        if name in weight_paths(doc):
            return f"tfjs:{manifest}"
    return None
