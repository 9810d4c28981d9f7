"""The public surface, pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import modelaudit

PUBLIC = {
    "modelaudit": [
        "FileReport",
        "FileStatus",
        "Format",
        "Issue",
        "IssueSeverity",
        "ScanConfig",
        "ScanReport",
        "ScanResult",
        "Scanner",
        "__version__",
        "scan",
        "scan_model_directory_or_file",
    ],
    "modelaudit.scanners": ["SCANNER_REGISTRY", "BaseScanner", "IssueSeverity", "ScanResult"],
    "modelaudit.scanners.base": [
        "BaseScanner",
        "FileStatus",
        "Issue",
        "IssueSeverity",
        "ScanContext",
        "ScanError",
        "ScanResult",
        "define_rule",
        "format_location",
    ],
    "modelaudit.scanners.context": ["MemberScanner", "ScanContext"],
    "modelaudit.formats": [
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
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_surface_is_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PUBLIC[module])
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


def test_top_level_names_resolve_lazily_to_their_homes() -> None:
    from modelaudit.config import ScanConfig
    from modelaudit.core import scan, scan_model_directory_or_file
    from modelaudit.findings import IssueSeverity
    from modelaudit.formats import Format

    assert modelaudit.ScanConfig is ScanConfig
    assert modelaudit.scan is scan
    assert modelaudit.scan_model_directory_or_file is scan_model_directory_or_file
    assert modelaudit.IssueSeverity is IssueSeverity
    assert modelaudit.Format is Format
    from modelaudit.engine.scanner import Scanner

    assert modelaudit.Scanner is Scanner
    with pytest.raises(AttributeError):
        _ = modelaudit.not_a_public_name  # type: ignore[attr-defined]


def test_reference_plugin_imports_work() -> None:
    """The reference documentation's custom-scanner example imports exactly these."""
    from modelaudit.scanners import SCANNER_REGISTRY
    from modelaudit.scanners.base import BaseScanner, IssueSeverity, ScanResult

    assert isinstance(SCANNER_REGISTRY, list)
    assert all(issubclass(cls, BaseScanner) for cls in SCANNER_REGISTRY)
    assert IssueSeverity.CRITICAL.value == "critical"
    assert ScanResult().success


def test_package_ships_type_information() -> None:
    assert (Path(modelaudit.__file__).parent / "py.typed").is_file()
    pyproject = (Path(modelaudit.__file__).parent.parent / "pyproject.toml").read_text()
    assert '"py.typed"' in pyproject


def test_scan_context_keeps_its_dataclass_contract() -> None:
    """ScanContext stores its fields in one step (engine speed); what a plugin sees of it
    stays the dataclass it declares: field order, defaults, frozenness, equality, replace."""
    import dataclasses

    from modelaudit.scanners.context import ScanContext

    names = [f.name for f in dataclasses.fields(ScanContext)]
    assert names == [
        "display_path",
        "config",
        "depth",
        "format",
        "explicit",
        "member_scanner",
        "memory_budget",
        "expansion",
        "whole",
    ]
    ctx = ScanContext("m.pkl")
    assert dict(ctx.config) == {} and ctx.depth == 0 and ctx.format is None and ctx.explicit
    assert ctx.whole is None and ctx.expansion.used == 0 and ctx.max_depth == 5
    assert ScanContext("m.pkl", {"max_depth": 2}, 3).max_depth == 2
    assert ScanContext("m.pkl", depth=3).depth == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.depth = 1  # type: ignore[misc]
    assert ctx == ScanContext("m.pkl") and ctx != ScanContext("other.pkl")
    deeper = dataclasses.replace(ctx, depth=2)
    assert (
        deeper.depth == 2 and deeper.display_path == "m.pkl" and deeper.expansion is ctx.expansion
    )
    member = ctx.nested("m.pkl:inner")
    assert (member.depth, member.explicit, member.display_path) == (1, False, "m.pkl:inner")
    assert dict(ctx.with_config({"strict": True}).config) == {"strict": True}
    assert "whole" not in repr(ScanContext("m.pkl", whole=("m.pkl", b"data")))
