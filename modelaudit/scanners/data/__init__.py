"""Data formats: tensor containers with a data header (safetensors, Flax msgpack) and files that
every loader reads as plain data (SentencePiece, fastText, CTranslate2, word2vec, tiktoken,
Core ML weights, llama2.c), and the schemas of Parquet and Arrow IPC data sets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import load_export

if TYPE_CHECKING:
    from .arrow_scanner import ArrowScanner
    from .coreml_weights_scanner import CoreMLWeightsScanner
    from .ctranslate2_scanner import CTranslate2Scanner
    from .fasttext_scanner import FastTextScanner
    from .llama2c_scanner import Llama2cScanner
    from .msgpack_scanner import MsgpackScanner
    from .safetensors_scanner import SafetensorsScanner
    from .sentencepiece_scanner import SentencePieceScanner
    from .tiktoken_scanner import TiktokenScanner
    from .word2vec_scanner import Word2VecScanner

_EXPORTS = {
    "CoreMLWeightsScanner": ".coreml_weights_scanner",
    "ArrowScanner": ".arrow_scanner",
    "CTranslate2Scanner": ".ctranslate2_scanner",
    "FastTextScanner": ".fasttext_scanner",
    "Llama2cScanner": ".llama2c_scanner",
    "MsgpackScanner": ".msgpack_scanner",
    "SafetensorsScanner": ".safetensors_scanner",
    "SentencePieceScanner": ".sentencepiece_scanner",
    "TiktokenScanner": ".tiktoken_scanner",
    "Word2VecScanner": ".word2vec_scanner",
}
__all__ = [
    "ArrowScanner",
    "CTranslate2Scanner",
    "CoreMLWeightsScanner",
    "FastTextScanner",
    "Llama2cScanner",
    "MsgpackScanner",
    "SafetensorsScanner",
    "SentencePieceScanner",
    "TiktokenScanner",
    "Word2VecScanner",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, name)
