"""TensorFlow: SavedModel, GraphDef and their text form, judged by the ops they hold."""

from __future__ import annotations

from .saved_model_scanner import TensorFlowScanner

__all__ = ["TensorFlowScanner"]
