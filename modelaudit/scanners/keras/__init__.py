"""Keras: HDF5 (`.h5`) and `.keras` zip files, judged through one config analyser."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import load_export

if TYPE_CHECKING:
    from .h5_scanner import KerasH5Scanner
    from .zip_scanner import KerasZipScanner

_EXPORTS = {
    "KerasH5Scanner": ".h5_scanner",
    "KerasZipScanner": ".zip_scanner",
}
__all__ = [
    "KerasH5Scanner",
    "KerasZipScanner",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, name)
