"""What a file is: the format vocabulary, pure sniffing and the one parser of each format.

This package sits below both the engine and the scanners and imports neither, so the range
planner and the scanner of a format read its bytes with the same code.
"""

from __future__ import annotations

from .format import (
    ARCHIVES,
    COMPRESSED,
    MODEL_EXTENSIONS,
    ZIP_FORMATS,
    Format,
    extension_format,
    has_model_extension,
)
from .sniff import HEAD_SIZE, appended_zip_format, classify_zip, read_head, sniff_head, sniff_path

__all__ = [
    "ARCHIVES",
    "COMPRESSED",
    "HEAD_SIZE",
    "MODEL_EXTENSIONS",
    "ZIP_FORMATS",
    "Format",
    "appended_zip_format",
    "classify_zip",
    "extension_format",
    "has_model_extension",
    "read_head",
    "sniff_head",
    "sniff_path",
]
