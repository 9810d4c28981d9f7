"""Data formats: tensor containers with a data header (safetensors, Flax msgpack) and files that
every loader reads as plain data (SentencePiece, fastText, CTranslate2, word2vec), and the
schemas of Parquet and Arrow IPC data sets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import load_export

if TYPE_CHECKING:
    from .arrow_scanner import ArrowScanner
    from .ctranslate2_scanner import CTranslate2Scanner
    from .fasttext_scanner import FastTextScanner
    from .msgpack_scanner import MsgpackScanner
    from .safetensors_scanner import SafetensorsScanner
    from .sentencepiece_scanner import SentencePieceScanner
    from .word2vec_scanner import Word2VecScanner

_EXPORTS = {
    "ArrowScanner": ".arrow_scanner",
    "CTranslate2Scanner": ".ctranslate2_scanner",
    "FastTextScanner": ".fasttext_scanner",
    "MsgpackScanner": ".msgpack_scanner",
    "SafetensorsScanner": ".safetensors_scanner",
    "SentencePieceScanner": ".sentencepiece_scanner",
    "Word2VecScanner": ".word2vec_scanner",
}
__all__ = [
    "ArrowScanner",
    "CTranslate2Scanner",
    "FastTextScanner",
    "MsgpackScanner",
    "SafetensorsScanner",
    "SentencePieceScanner",
    "Word2VecScanner",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, name)
