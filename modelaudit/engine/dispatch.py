"""Pick the scanner that owns a file and run it, in whatever process we are in.

Used by the worker for top-level files; container scanners reach it for their members only
through the `ScanContext.scan_member` callback built here, so routing is decided in exactly
one place and scanners never import the engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Final

from .. import rules
from ..findings import (
    FileStatus,
    Issue,
    IssueSeverity,
    IssueSink,
    ScanResult,
    current_sink,
    format_location,
    observing,
)
from ..formats import (
    HEAD_SIZE,
    Format,
    appended_zip_format,
    has_model_extension,
    sniff_head,
    sniff_path,
)
from ..formats.regular import NotRegularFile, open_regular, read_head
from ..formats.unowned import inert_kind, pickle_whatever_the_name
from ..formats.zipdir import holds_zip_end
from ..scanners.base import BaseScanner
from ..scanners.context import ScanContext
from ..scanners.expansion import ExpansionBudget
from ..scanners.registry import ScannerSpec, routing_entries
from . import sandbox
from .capture import FileCapture, dedupe, per_rule_cap

Entry = type[BaseScanner] | ScannerSpec

#: Set from the parent's registry so that scanners appended by users are seen; a context
#: variable because in-process scans of different calls share threads of one process.
_registry_override: ContextVar[Sequence[Entry] | None] = ContextVar(
    "modelaudit_registry", default=None
)


def registry() -> Sequence[Entry]:
    """Scanner classes and built-in specs, in routing order (specs import nothing yet)."""
    override = _registry_override.get()
    if override is not None:
        return override
    return routing_entries()


def set_registry(entries: Sequence[Entry] | None) -> None:
    _registry_override.set(entries)


def _load(entry: Entry) -> type[BaseScanner]:
    return entry.load() if isinstance(entry, ScannerSpec) else entry


def select_scanner(path: str, fmt: Format | None) -> type[BaseScanner] | None:
    """Content first: the scanner that owns the sniffed format; then names (`can_handle`).

    Only the chosen scanner's module is imported, so a worker that sees only pickles never
    loads the ONNX or HDF5 scanners.
    """
    cls = owner_of(fmt) if fmt else None
    return cls if cls is not None else _by_name(path)


def owner_of(fmt: Format) -> type[BaseScanner] | None:
    """The scanner that owns a sniffed format, whatever the file's name."""
    for entry in registry():
        if fmt in getattr(entry, "formats", ()):
            return _load(entry)
    return None


def _by_name(path: str) -> type[BaseScanner] | None:
    for entry in registry():
        try:
            if entry.can_handle(path):
                return _load(entry)
        except Exception:
            continue
    return None


def _check_blacklist(result: ScanResult, shown: str, patterns: Sequence[str]) -> None:
    if not patterns:
        return
    names = [os.path.basename(shown.rstrip("/"))]
    names += [str(n) for n in result.metadata.get("model_names", []) if n]
    for pattern in patterns:
        needle = pattern.lower()
        for name in names:
            if needle and needle in name.lower():
                result.add_issue(
                    f"Blacklisted model name matches pattern '{pattern}': {name}",
                    severity=IssueSeverity.CRITICAL,
                    location=shown,
                    details={"pattern": pattern, "name": name},
                    why="Your --blacklist policy forbids models matching this pattern.",
                    rule=rules.BLACKLISTED,
                )
                break


#: Members read once per file: on Python 3.11 each `Format.X` or `FileStatus.X` costs a
#: lookup through the enum metaclass's `__getattr__` hook (about a thousand instructions).
_ZIP: Final = Format.ZIP
_COMPLETE: Final = FileStatus.COMPLETE
#: Zips themselves, and archives whose members are scanned anyway (a tar may end in a zip).
_NO_ZIP_VIEW = frozenset({"zip", "pytorch_zip", "keras_zip", "npz", "tar", "7z"})
#: Formats whose specification appends a zip (TFLite metadata packs its associated files so):
#: the zip view is still scanned, but its presence alone is no alarm.
_ZIP_TAIL_EXPECTED = frozenset({"tflite"})


def _scan_appended_zip(
    path: str,
    config: Mapping[str, Any],
    shown: str,
    depth: int,
    result: ScanResult,
    fmt: str | None,
    expansion: ExpansionBudget,
) -> None:
    """Polyglots: a non-zip file that also ends in a valid zip is scanned as that zip too."""
    try:
        kind = appended_zip_format(path)
    except OSError:
        return
    if kind is None:
        return
    if fmt not in _ZIP_TAIL_EXPECTED:
        from ..scanners.containers.polyglot import report_polyglot

        report_polyglot(result, shown, kind)
    view = scan_path(
        path,
        {**config, "blacklist_patterns": []},
        display=shown,
        explicit=False,
        depth=depth + 1,
        fmt=kind,
        expansion=expansion,
    )
    result.merge(view)


def scan_member(
    source: bytes | str,
    name: str,
    *,
    fmt: Format | None = None,
    depth: int,
    config: Mapping[str, Any],
    expansion: ExpansionBudget | None = None,
) -> ScanResult:
    """`ScanContext.scan_member`: nested content, scanned by its own format one level down,
    charging the same expansion budget as the file it sits in.

    Bytes are written to a private temporary file first, so every scanner keeps reading
    from a path, unless `_judge_in_memory` can judge them as they are.
    """
    if isinstance(source, str):
        return scan_path(
            source,
            config,
            display=name,
            explicit=False,
            depth=depth,
            fmt=fmt,
            expansion=expansion,
        )
    judged = _judge_in_memory(source, name, fmt, depth, config, expansion)
    if judged is not None:
        return judged
    import tempfile

    with tempfile.TemporaryDirectory(prefix="modelaudit-nested-") as tmp:
        path = os.path.join(tmp, "embedded.bin")
        with open(path, "wb") as f:
            f.write(source)
        return scan_path(
            path, config, display=name, explicit=False, depth=depth, fmt=fmt, expansion=expansion
        )


def make_context(
    shown: str,
    config: Mapping[str, Any],
    depth: int = 0,
    fmt: Format | None = None,
    explicit: bool = True,
    expansion: ExpansionBudget | None = None,
    whole: tuple[str, bytes] | None = None,
    frozen: Mapping[str, Any] | None = None,
) -> ScanContext:
    """`frozen`: a read-only copy of `config` made once for many files (`Lane.frozen`).
    (Arguments by position: a class called with keywords packs them into a dict first.)"""
    return ScanContext(
        shown,
        MappingProxyType(dict(config)) if frozen is None else frozen,
        depth,
        fmt,
        explicit,
        scan_member,
        sandbox.memory_budget,
        expansion or ExpansionBudget.from_config(config),
        whole,
    )


class Lane:
    """What every top-level file of one worker batch shares, worked out once for the batch
    instead of once per file (a sweep of small files feels each microsecond): the config's
    read-only copy the scanners' contexts hold, its routing and expansion settings, and
    the scanner class that owns each sniffed format under the batch's registry.

    Only what does not depend on the file is kept; each file still gets its own context,
    expansion budget, scanner instance and result, through `scan_path` as any file."""

    __slots__ = ("blacklist", "budget", "cap", "config", "frozen", "hashes", "owners", "strict")

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.frozen: Mapping[str, Any] = MappingProxyType(dict(config))
        self.strict = bool(config.get("strict"))
        self.blacklist: Sequence[str] = config.get("blacklist_patterns") or []
        #: Findings kept per rule per file (`capture.per_rule_cap`), and `--hashes`.
        self.cap = per_rule_cap(config)
        self.hashes = bool(config.get("hashes"))
        self.budget = ExpansionBudget.from_config(config)
        #: Sniffed format -> its owning scanner (formats no scanner owns are not kept: the
        #: fallback routes by name, which depends on the file).
        self.owners: dict[Format, type[BaseScanner]] = {}

    def expansion(self, size: int) -> ExpansionBudget:
        """A fresh budget for one file (the config's limits, sized on the file)."""
        b = self.budget
        return ExpansionBudget(b.max_bytes, b.max_ratio, b.ratio_floor, max(0, size))

    def select(self, path: str, fmt: Format | None) -> type[BaseScanner] | None:
        """`select_scanner` under the batch's registry, the content lookup done once."""
        if not fmt:
            return _by_name(path)
        cls = self.owners.get(fmt)
        if cls is None:
            cls = owner_of(fmt)
            if cls is None:
                return _by_name(path)
            self.owners[fmt] = cls
        return cls


def _relocate(issue: Issue, path: str, shown: str) -> None:
    """Name the file as the user knows it (URI, archive member), not by its spool path."""
    location = issue.location
    if location is None:
        issue.location = format_location(shown)
    elif location.startswith(path) and not location.startswith(shown):
        issue.location = shown + location[len(path) :]


class _LevelCapture:
    """Issue sink of one `scan_path` level: passes issues outward (where the worker streams
    them) and remembers the serious ones, so a scanner that dies of an exception or
    out-of-memory still leaves its findings in the result."""

    __slots__ = ("outer", "path", "seen", "shown")

    def __init__(self, path: str, shown: str, outer: IssueSink | None) -> None:
        self.path = path
        self.shown = shown
        self.outer = outer
        self.seen: list[Issue] | None = []

    def __call__(self, issue: Issue) -> bool:
        if self.shown != self.path:
            _relocate(issue, self.path, self.shown)
        if self.outer is not None and not self.outer(issue):
            return False
        if self.seen is not None and issue.severity.rank >= IssueSeverity.WARNING.rank:
            self.seen.append(issue)
        return True

    def salvage(self, scanner_name: str) -> ScanResult:
        result = ScanResult(scanner_name=scanner_name)
        result.issues = dedupe(self.seen or ())
        self.seen = None
        return result


def _salvage(
    made: _LevelCapture | None, top: FileCapture | None, mark: int, scanner_name: str
) -> ScanResult:
    """The findings a scanner made before it died: its level sink's, or those the top-level
    capture admitted since the scanner started (the same issues, in the same order)."""
    if made is not None:
        return made.salvage(scanner_name)
    result = ScanResult(scanner_name=scanner_name)
    result.issues = dedupe(top.serious[mark:] if top is not None else ())
    return result


def _sniff(path: str, shown: str) -> tuple[Format | None, bool, int, bytes | None]:
    """The file's format, whether it certainly holds no appended zip (a file read whole by
    the sniff without an end-of-central-directory signature has none, so small files, most
    of a sweep, are opened once here instead of twice), its size, and all its bytes when
    the sniff read them all (its scanner then reads those: one open per small file)."""
    head, size = read_head(path, HEAD_SIZE)
    fmt = sniff_head(head, shown, size)
    if fmt is None or fmt == _ZIP:
        return sniff_path(path, shown), False, size, None
    no_zip_tail = size <= len(head) and not holds_zip_end(head)
    return fmt, no_zip_tail, size, head if size == len(head) else None


def _head(path: str) -> tuple[bytes, bool]:
    """The first bytes of a file and whether they are all of it (b"" when unreadable)."""
    try:
        with open_regular(path) as f:
            head = f.read(HEAD_SIZE)
            return head, os.fstat(f.fileno()).st_size <= len(head)
    except OSError:
        return b"", False


def _unowned(path: str, shown: str, fmt: Format | None, strict: bool) -> ScanResult:
    """A file no scanner understands. One rule whether it was named or met in a walk
    (exit_codes.EXIT_CODE_NOTES): a file that claims a model format is unverified (a WARNING
    under --strict); anything else is not a model, except that --strict calls unverified
    every file that is neither text nor a known data-only format."""
    result = ScanResult(scanner_name="none")
    kind = None
    model = has_model_extension(shown)
    if model or (strict and (kind := inert_kind(*_head(path), name=shown)) is None):
        result.add_issue(
            "Unknown or unhandled format",
            severity=IssueSeverity.WARNING if strict and model else IssueSeverity.INFO,
            location=shown,
            details={"format": fmt, "strict": True} if strict else {"format": fmt},
            why="No scanner understands this file, so nothing about it was verified."
            if model
            else "No scanner understands this binary file and --strict vouches only for "
            "text and known data-only formats, so nothing about it was verified.",
            rule=rules.UNKNOWN_FORMAT,
        )
        result.mark_inconclusive("Unknown or unhandled format")
    else:
        result.status = FileStatus.SKIPPED
        result.status_reason = (
            f"Not a model: {kind}" if kind is not None else "Unknown or unhandled format"
        )
    return result


def scan_path(
    path: str,
    config: Mapping[str, Any],
    display: str | None = None,
    explicit: bool = True,
    depth: int = 0,
    fmt: Format | None = None,
    expansion: ExpansionBudget | None = None,
    lane: Lane | None = None,
) -> ScanResult:
    """Scan one local file with its owning scanner; never raises for a bad file.

    A top-level file (no `expansion` given) gets a fresh expansion budget sized on it;
    nested content shares its container's. `lane`: what a worker batch worked out once
    for all its files, built from this same `config`."""
    shown = display or path
    no_zip_tail = False
    size: int | None = None
    data: bytes | None = None
    if fmt is None:
        try:
            fmt, no_zip_tail, size, data = _sniff(path, shown)
        except NotRegularFile as exc:
            # Replaced since the listing: reported as the listing reports such entries.
            result = ScanResult(scanner_name="none")
            result.status = FileStatus.SKIPPED
            result.status_reason = str(exc)
            result.finish()
            return result
        except OSError as exc:
            result = ScanResult(scanner_name="none")
            result.mark_error(f"cannot read file: {exc.strerror or exc}")
            result.finish()
            return result
    strict = lane.strict if lane is not None else bool(config.get("strict"))
    if fmt is None and strict and pickle_whatever_the_name(*_head(path)):
        fmt = Format.PICKLE
    cls = lane.select(path, fmt) if lane is not None else select_scanner(path, fmt)
    if cls is None:
        result = _unowned(path, shown, fmt, strict)
        result.finish()
        return result

    if expansion is None:
        if size is None:
            try:
                size = os.path.getsize(path)
            except OSError:
                size = 0
        expansion = (
            lane.expansion(size) if lane is not None else ExpansionBudget.from_config(config, size)
        )
    whole = None if data is None else (path, data)
    zip_view = fmt not in _NO_ZIP_VIEW and not no_zip_tail
    return _judge(cls, path, shown, config, fmt, depth, explicit, expansion, whole, zip_view, lane)


def _judge_in_memory(
    data: bytes,
    name: str,
    fmt: Format | None,
    depth: int,
    config: Mapping[str, Any],
    expansion: ExpansionBudget | None,
) -> ScanResult | None:
    """Nested bytes judged without a temporary file, or None (write them to one).

    Only where the file route would reach the same verdict by the same steps: the bytes fit
    in the head a sniff reads (so it sees all of them, as `_sniff` would), they hold no zip
    end record (so there is no appended zip to look at), and their format's owner, found by
    content and so whatever the name, declares that it reads nothing but the bytes."""
    if len(data) > HEAD_SIZE or holds_zip_end(data):
        return None
    kind = fmt or sniff_head(data, name, len(data))
    if not kind or kind == Format.ZIP:
        return None
    cls = owner_of(kind)
    if cls is None or not cls.judges_bytes:
        return None
    if expansion is None:
        expansion = ExpansionBudget.from_config(config, len(data))
    return _judge(cls, name, name, config, kind, depth, False, expansion, (name, data), False)


def _judge(
    cls: type[BaseScanner],
    path: str,
    shown: str,
    config: Mapping[str, Any],
    fmt: Format | None,
    depth: int,
    explicit: bool,
    expansion: ExpansionBudget,
    whole: tuple[str, bytes] | None,
    zip_view: bool,
    lane: Lane | None = None,
) -> ScanResult:
    """Run the owning scanner on one file and give its result the engine's final touches
    (salvaged findings, an appended zip's view, the incomplete note, names, --blacklist)."""
    kind = None if not fmt else fmt if type(fmt) is Format else Format(fmt)  # (a slow call)
    frozen = None if lane is None else lane.frozen
    context = make_context(shown, config, depth, kind, explicit, expansion, whole, frozen)
    # A file named by its own path under a top-level capture needs no level sink of its
    # own: nothing to rename, and the capture keeps the serious findings it admits.
    outer = current_sink()
    top = outer if shown == path and type(outer) is FileCapture else None
    made = _LevelCapture(path, shown, outer) if top is None else None
    mark = 0 if top is None else len(top.serious)
    try:
        if made is None:
            result = cls(config, context=context).scan(path)
        else:
            with observing(made):
                result = cls(config, context=context).scan(path)
        if not isinstance(result, ScanResult):
            raise TypeError(f"scanner {cls.name} returned {type(result).__name__}")
    except MemoryError:
        result = _salvage(made, top, mark, cls.name)
        result.mark_error("out of memory while scanning")
    except RecursionError:
        result = _salvage(made, top, mark, cls.name)
        result.mark_inconclusive("structure nested too deeply to analyse")
    except Exception as exc:
        result = _salvage(made, top, mark, cls.name)
        result.mark_error(f"{cls.name} scanner failed: {type(exc).__name__}: {exc}")
    if zip_view:
        _scan_appended_zip(path, config, shown, depth, result, fmt, expansion)
    if result.status is not _COMPLETE and not any(
        i.rule in (rules.SCAN_ERROR, rules.MALFORMED) for i in result.issues
    ):
        result.add_issue(
            f"Scan incomplete: {result.status_reason}",
            severity=IssueSeverity.INFO,
            location=shown,
            details={"status": result.status.value},
            rule=rules.SCAN_ERROR if result.status is FileStatus.ERROR else rules.MALFORMED,
        )
    if shown != path:
        for issue in result.issues:
            _relocate(issue, path, shown)
    result.metadata.setdefault("format", fmt)
    blacklist = lane.blacklist if lane is not None else config.get("blacklist_patterns")
    if blacklist:
        _check_blacklist(result, shown, blacklist)
    if result.end_time is None:
        result.finish()
    return result
