"""Data formats: tensor containers with a data header (safetensors, Flax msgpack) and files that
every loader reads as plain data (SentencePiece, fastText, CTranslate2, word2vec)."""

from __future__ import annotations

from .ctranslate2_scanner import CTranslate2Scanner
from .fasttext_scanner import FastTextScanner
from .msgpack_scanner import MsgpackScanner
from .safetensors_scanner import SafetensorsScanner
from .sentencepiece_scanner import SentencePieceScanner
from .word2vec_scanner import Word2VecScanner

__all__ = [
    "CTranslate2Scanner",
    "FastTextScanner",
    "MsgpackScanner",
    "SafetensorsScanner",
    "SentencePieceScanner",
    "Word2VecScanner",
]
