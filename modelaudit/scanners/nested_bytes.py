"""Scan bytes found inside a file (a pickle in a metadata string, a bytes value).

Pickles go straight to the pickle engine one level deeper; anything else goes back to the
engine through `ScanContext.scan_member`, so routing stays in one place and the depth limit
holds across every kind of nesting.
"""

from __future__ import annotations

from ..findings import ScanResult, format_location
from ..formats import Format
from .context import ScanContext


def scan_nested_bytes(
    ctx: ScanContext, data: bytes, display: str, fmt: Format | None = None
) -> ScanResult:
    """The nested scan's result; inconclusive when the depth limit forbids looking."""
    depth = ctx.depth + 1
    if depth > ctx.max_depth:
        result = ScanResult(scanner_name="nested")
        result.mark_inconclusive(f"nesting depth limit reached at {display}")
        result.finish()
        return result
    if fmt == Format.PICKLE:
        # Imported here: most files holding nested bytes never hold a pickle.
        from .pickle import scan_pickle_bytes

        result = ScanResult(scanner_name="pickle")
        scan_pickle_bytes(
            data,
            result,
            location=lambda pos: format_location(display, pos=pos),
            ctx=ctx.nested(display, depth),
            depth=depth,
        )
        result.finish()
        return result
    return ctx.scan_member(data, display, fmt=fmt, depth=depth)
