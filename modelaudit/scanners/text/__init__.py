"""Text formats that configure what a loader builds or runs: JSON, YAML, PMML, chat templates."""

from __future__ import annotations

from .json_scanner import JsonScanner
from .pmml_scanner import PmmlScanner
from .yaml_scanner import YamlScanner

__all__ = ["JsonScanner", "PmmlScanner", "YamlScanner"]
