"""TensorFlow: SavedModel, GraphDef and their text form, judged by the ops they hold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import load_export

if TYPE_CHECKING:
    from .saved_model_scanner import TensorFlowScanner

_EXPORTS = {
    "TensorFlowScanner": ".saved_model_scanner",
}
__all__ = [
    "TensorFlowScanner",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, name)
