"""torch.package archives: modules the archive ships under names the pickle policy trusts.

A `torch.package.PackageImporter` imports every module that `<root>/.data/extern_modules`
does not list (nor a parent of it) from the archive's own `<root>/a/b.py`, also the modules
its pickles name: a pickle naming `torch.nn.modules.linear.Linear` runs the archive's
`torch/nn/modules/linear.py`, which the pickle policy, judging by name, calls safe. The zip
scanners call this with the directory they read; nothing is imported or compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO, Final

from ...findings import IssueSeverity, ScanResult
from ...formats.zipdir import MemberError, ZipDirectory
from ...lazy_re import LazyPattern
from ...rules import containers as crules
from .members import Limits
from .zip_members import open_member

#: A torch.package archive's list of the modules its importer takes from the host.
_EXTERNS: Final = LazyPattern(r"(?P<root>[^/]+)/\.data/extern_modules\Z")
_MAX_EXTERNS: Final = 1 << 20
#: Modules listed per shadowed package in a finding.
_LISTED: Final = 10


def report_package_shadows(
    f: BinaryIO,
    directory: ZipDirectory,
    location: Callable[[str], str],
    result: ScanResult,
    limits: Limits,
) -> None:
    """One WARNING per top-level package the policy trusts that a torch.package archive ships
    its own modules of. An unreadable extern list counts as empty; module files under an
    extern module are left out (the importer refuses the archive). Linear in the entries."""
    from ..pickle.policy import trusted_top_levels

    externs: dict[str, set[str]] = {}
    for entry in directory.entries:
        match = _EXTERNS.match(entry.name)
        if match is None or entry.is_dir:
            continue
        try:
            stream, _raw, _anomaly = open_member(
                f, entry, limit=_MAX_EXTERNS, max_ratio=limits.max_ratio, budget=limits.budget
            )
            text = stream.read(_MAX_EXTERNS).decode("utf-8", "replace")
        except (MemberError, OSError, ValueError):
            text = ""
        externs.setdefault(match["root"], set()).update(text.split())
    if not externs:
        return
    trusted = trusted_top_levels()
    shadowed: dict[tuple[str, str], list[str]] = {}
    for entry in directory.entries:
        root, _sep, rel = entry.name.partition("/")
        if root not in externs or entry.is_dir or not rel.endswith(".py"):
            continue
        parts = rel[: -len(".py")].split("/")
        if parts[-1] == "__init__":
            parts.pop()
        if not parts or parts[0] not in trusted:
            continue
        if any(".".join(parts[:i]) in externs[root] for i in range(1, len(parts) + 1)):
            continue
        shadowed.setdefault((root, parts[0]), []).append(".".join(parts))
    for (root, top), modules in sorted(shadowed.items()):
        listed = sorted(set(modules))
        result.add_issue(
            f"torch.package archive ships its own '{top}' ({len(listed)} module(s), e.g. "
            f"{', '.join(listed[:3])}): a pickle naming {top} runs the archive's code",
            severity=IssueSeverity.WARNING,
            location=location(f"{root}/{top}"),
            details={"package": top, "modules": listed[:_LISTED]},
            why="PackageImporter loads every module that is not extern from the archive, so "
            "names the scan trusts (torch, numpy, collections, ...) run the archive's code.",
            rule=crules.TORCH_PACKAGE_SHADOW,
        )
