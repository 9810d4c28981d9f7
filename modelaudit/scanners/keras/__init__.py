"""Keras: HDF5 (`.h5`) and `.keras` zip files, judged through one config analyser."""

from __future__ import annotations

from .h5_scanner import KerasH5Scanner
from .zip_scanner import KerasZipScanner

__all__ = ["KerasH5Scanner", "KerasZipScanner"]
