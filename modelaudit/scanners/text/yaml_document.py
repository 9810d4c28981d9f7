"""A small YAML document read safely after the YAML scanner has vetted its event stream.

DVC pointers and MLflow MLmodel files are YAML whose meaning matters (what they point at,
which module loads the model). The structural checks (Python tags, alias bombs, nesting) run
first; only a document that passed them, and is small, is built with `yaml.safe_load`.
"""

from __future__ import annotations

from typing import Any, Final

from ..base import BaseScanner, FileStatus, IssueSeverity, ScanResult
from .yaml_scanner import YamlScanner

MAX_DOCUMENT_BYTES: Final = 1024 * 1024


def vetted_document(scanner: BaseScanner, path: str) -> tuple[ScanResult, Any]:
    """The YAML scanner's result for `path` (named for `scanner`) and the document, or None
    when the structure was unsafe, broken or too large to build."""
    result = YamlScanner(scanner.config, context=scanner.ctx).scan(path)
    result.scanner_name = scanner.name
    loud = any(i.severity in (IssueSeverity.WARNING, IssueSeverity.CRITICAL) for i in result.issues)
    if loud or result.status is not FileStatus.COMPLETE:
        return result, None
    if scanner.file_size(path) > MAX_DOCUMENT_BYTES:
        return result, None
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, "rb") as f:
            return result, yaml.load(f, Loader=loader)
    except yaml.YAMLError:
        return result, None
