"""What a scanner knows about the file in front of it, handed over by the engine.

The engine builds one frozen `ScanContext` per file. Nested content (an archive member, a
pickle inside a metadata string) goes back through `scan_member`, so scanners never import
the engine, routing stays in one place and every nesting level is counted the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol

from ..findings import ScanResult
from ..formats import Format
from .expansion import ExpansionBudget

__all__ = ["MemberScanner", "ScanContext"]

DEFAULT_MAX_DEPTH = 5


class MemberScanner(Protocol):
    """The engine's entry point for nested content.

    `source` is the member's bytes or a local path holding them; `name` is how findings name
    it (`model.zip:weights/data.pkl`); `config` replaces the file's config for the member
    (model_container and the like); `expansion` is the top-level file's expansion budget,
    which the member's own containers keep charging.
    """

    def __call__(
        self,
        source: bytes | str,
        name: str,
        *,
        fmt: Format | None = None,
        depth: int,
        config: Mapping[str, Any],
        expansion: ExpansionBudget | None = None,
    ) -> ScanResult: ...


@contextlib.contextmanager
def _unbounded(extra: int) -> Iterator[None]:
    yield


def _not_wired(
    source: bytes | str,
    name: str,
    *,
    fmt: Format | None = None,
    depth: int,
    config: Mapping[str, Any],
    expansion: ExpansionBudget | None = None,
) -> ScanResult:
    """A scanner run outside the engine cannot descend: say so instead of passing silently."""
    result = ScanResult(scanner_name="nested")
    result.mark_inconclusive(f"nested content not scanned (no engine to route it): {name}")
    result.finish()
    return result


@dataclass(frozen=True, init=False)
class ScanContext:
    """One file's scan: how to name it, how deep it sits, what it was sniffed as, the
    settings, and the engine's callbacks for nested content and memory budgets."""

    display_path: str
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    depth: int = 0
    format: Format | None = None
    #: Named explicitly by the user (not met in a walk or inside a container).
    explicit: bool = True
    member_scanner: MemberScanner = _not_wired
    #: Lets one block grow the worker's address space by at most N bytes (see engine.sandbox).
    memory_budget: Callable[[int], AbstractContextManager[None]] = _unbounded
    #: Bytes this file's containers may still produce, shared by every nesting level
    #: and member (one object per top-level file, see scanners/expansion.py).
    expansion: ExpansionBudget = field(
        default_factory=lambda: ExpansionBudget.from_config({}), compare=False
    )
    #: (path, every byte of it) when the engine's sniff read the whole file (most small
    #: files): the scanner of that path reads these instead of opening it again.
    whole: tuple[str, bytes] | None = field(default=None, repr=False, compare=False)

    def __init__(
        self,
        display_path: str,
        config: Mapping[str, Any] | None = None,
        depth: int = 0,
        format: Format | None = None,
        explicit: bool = True,
        member_scanner: MemberScanner = _not_wired,
        memory_budget: Callable[[int], AbstractContextManager[None]] = _unbounded,
        expansion: ExpansionBudget | None = None,
        whole: tuple[str, bytes] | None = None,
    ) -> None:
        """The fields and defaults declared above, stored in one step: the __init__ that
        dataclass writes for a frozen class sets each field through `object.__setattr__`,
        which cost ~3 us of every file of a sweep (one context per file)."""
        self.__dict__.update(
            display_path=display_path,
            config=MappingProxyType({}) if config is None else config,
            depth=depth,
            format=format,
            explicit=explicit,
            member_scanner=member_scanner,
            memory_budget=memory_budget,
            expansion=ExpansionBudget.from_config({}) if expansion is None else expansion,
            whole=whole,
        )

    @classmethod
    def standalone(cls, display_path: str, config: Mapping[str, Any] | None = None) -> ScanContext:
        """For a scanner constructed by hand (tests, plugins): no engine behind it."""
        settings = dict(config or {})
        return cls(
            display_path=display_path,
            config=MappingProxyType(settings),
            expansion=ExpansionBudget.from_config(settings),
        )

    @property
    def max_depth(self) -> int:
        return int(self.config.get("max_depth") or DEFAULT_MAX_DEPTH)

    @property
    def strict(self) -> bool:
        return bool(self.config.get("strict"))

    def scan_member(
        self,
        source: bytes | str,
        name: str,
        *,
        fmt: Format | None = None,
        depth: int | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> ScanResult:
        """Scan nested content by its own format, one level deeper unless `depth` says."""
        return self.member_scanner(
            source,
            name,
            fmt=fmt,
            depth=self.depth + 1 if depth is None else depth,
            config=self.config if config is None else config,
            expansion=self.expansion,
        )

    def nested(self, name: str, depth: int | None = None) -> ScanContext:
        """The context of content scanned in place (a pickle inside this file's bytes)."""
        return replace(
            self,
            display_path=name,
            depth=self.depth + 1 if depth is None else depth,
            format=None,
            explicit=False,
            whole=None,
        )

    def with_config(self, config: Mapping[str, Any]) -> ScanContext:
        return replace(self, config=MappingProxyType(dict(config)))
