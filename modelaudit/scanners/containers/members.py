"""Limits, path checks and one-at-a-time member scanning shared by every container scanner.

Members are copied, one at a time and within the expansion budget, into a private temporary
folder and handed back to the engine through `ScanContext.scan_member`, so each is judged by
its own format and routing stays in one place. A small member that sniffs as text (a PyTorch
checkpoint's `version` and `byteorder` records, an archive's README) is handed over as bytes
instead: no file is written, and the folder is only made once a member needs it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Final

from ...findings import IssueSeverity, ScanResult
from ...formats import HEAD_SIZE, Format, sniff_head
from ...formats.zipdir import holds_zip_end
from ...rules import containers as crules
from ..context import ScanContext
from ..expansion import ExpansionBudget
from .decompress import DecompressingReader

DEFAULT_MAX_ENTRIES: Final = 10_000
_DRIVE: Final = re.compile(r"^[A-Za-z]:")
_SAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
#: A torch.package archive's list of the modules its importer takes from the host, one
#: dotted name a line: read as text by `PackageImporter` only, though "collections\n..."
#: sniffs as a protocol 0 GLOBAL (a pickle that names `ollections`).
_MODULE_LIST_NAME: Final = re.compile(r"(?:\A|/)\.data/extern_modules\Z")
_MODULE_LIST: Final = re.compile(rb"\A(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\n)*\Z")


@dataclass
class Limits:
    """How far one container may go: entries and depth are its own, the bytes it may
    produce come out of the top-level file's `ExpansionBudget`, shared by every level."""

    budget: ExpansionBudget
    max_entries: int
    depth: int
    max_depth: int
    #: The model container (torch zip, .npz, .keras, .nemo) these members come from.
    model: str | None = None

    @classmethod
    def from_context(cls, ctx: ScanContext) -> Limits:
        return cls(
            budget=ctx.expansion,
            max_entries=int(ctx.config.get("max_archive_entries") or DEFAULT_MAX_ENTRIES),
            depth=ctx.depth,
            max_depth=ctx.max_depth,
        )

    @property
    def max_expanded(self) -> int:
        return self.budget.max_bytes

    @property
    def max_ratio(self) -> float:
        return self.budget.max_ratio

    @property
    def ratio_floor(self) -> int:
        return self.budget.ratio_floor

    @property
    def remaining(self) -> int:
        return self.budget.remaining

    def nested_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Config for a member scan (the budget travels in the context, not here)."""
        nested = dict(config)
        if self.model and not nested.get("model_container"):
            nested["model_container"] = self.model
        return nested


def depth_exceeded(result: ScanResult, limits: Limits, where: str) -> bool:
    """True (with a finding, and the result inconclusive) when we may not descend further."""
    if limits.depth < limits.max_depth:
        return False
    result.add_issue(
        f"Nesting deeper than max_depth={limits.max_depth}; inner content not scanned",
        severity=IssueSeverity.WARNING,
        location=where,
        details={"depth": limits.depth, "max_depth": limits.max_depth},
        why="Deep nesting is a way to hide a payload from scanners that give up early; "
        "the inner content was not verified.",
        rule=crules.DEPTH_LIMIT,
    )
    result.mark_inconclusive(f"nesting deeper than max_depth={limits.max_depth}")
    return True


def report_bomb(result: ScanResult, where: str, reason: str) -> None:
    result.add_issue(
        f"Decompression limit exceeded: {reason}",
        severity=IssueSeverity.WARNING,
        location=where,
        details={"reason": reason},
        why="A decompression bomb exhausts memory or disk of whatever unpacks it (loaders, "
        "pipelines, CI), and content past the limit was not scanned.",
        rule=crules.DECOMPRESSION_BOMB,
    )
    result.mark_inconclusive(f"decompression limit exceeded: {reason}")


def budget_refuses(result: ScanResult, limits: Limits, where: str, what: str, size: int) -> bool:
    """True (reported as a bomb, the budget marked spent) when the file's expansion budget
    refuses the `size` bytes that `what` declares: refused before a byte is written."""
    refused = limits.budget.why_not(size)
    if not refused:
        return False
    limits.budget.exceeded = refused
    report_bomb(result, where, f"{what} {size} bytes: {refused}")
    return True


def path_escape(name: str) -> str | None:
    """Why extracting a member with this name would leave the target folder, if it would."""
    if not name:
        return None
    norm = name.replace("\\", "/")
    if norm.startswith("/"):
        return "absolute path"
    if _DRIVE.match(norm):
        return "drive-letter path"
    depth = 0
    for part in norm.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return "'..' leads outside the extraction folder"
        elif part not in ("", "."):
            depth += 1
    return None


def link_escape(member: str, target: str, hard: bool) -> str | None:
    """Why a link would point outside the extraction folder: hard links are relative to the
    archive root, symbolic links to the member's own folder."""
    if not target:
        return None
    norm = target.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        return f"link target {target!r} is absolute"
    base = "" if hard else os.path.dirname(member.replace("\\", "/"))
    joined = f"{base}/{norm}" if base else norm
    if path_escape(joined):
        return f"link target {target!r} leads outside the extraction folder"
    return None


def report_traversal(result: ScanResult, where: str, name: str, reason: str) -> None:
    result.add_issue(
        f"Archive member path escapes the extraction folder ({reason}): {name}",
        severity=IssueSeverity.CRITICAL,
        location=where,
        details={"member": name, "reason": reason},
        why="Extracting this archive writes a file outside the target folder, which lets an "
        "attacker overwrite code, configuration or credentials that run later.",
        rule=crules.PATH_TRAVERSAL,
    )


def check_member_names(
    result: ScanResult,
    where: str,
    name: str,
    unicode_name: str | None = None,
    *,
    symlink: bool = False,
    model: bool = False,
) -> None:
    """Path tricks of one archive member: its name and the Info-ZIP Unicode Path extractors
    use instead; in a model container (torch zip, .npz, .keras, .nemo) a link of any kind."""
    for shown, label in ((name, ""), (unicode_name, " (Info-ZIP Unicode Path)")):
        if shown is None:
            continue
        reason = path_escape(shown)
        if reason:
            report_traversal(result, where, shown, reason + label)
            break
    if symlink and model:
        report_link(result, where, name, "model containers never hold links", hard=False)


def report_link(result: ScanResult, where: str, name: str, reason: str, hard: bool) -> None:
    kind = "hard link" if hard else "symbolic link"
    result.add_issue(
        f"Archive {kind} escapes the extraction folder: {name} ({reason})",
        severity=IssueSeverity.CRITICAL,
        location=where,
        details={"member": name, "reason": reason, "link": kind},
        why="Extraction creates a link to a file outside the target folder; reading or writing "
        "through it exposes or overwrites arbitrary files.",
        rule=crules.LINK_ESCAPE,
    )


class MemberSpool:
    """A private temporary folder holding at most one extracted member at a time, made when
    the first member needs it (a PyTorch checkpoint's members are usually all judged in
    memory: its folder, and the `tempfile` import, cost a one-file run milliseconds)."""

    def __init__(self) -> None:
        self._root: str | None = None
        self._count = 0

    @property
    def root(self) -> str:
        if self._root is None:
            import tempfile

            self._root = tempfile.mkdtemp(prefix="modelaudit-members-")
        return self._root

    def __enter__(self) -> MemberSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._root is not None:
            import shutil

            shutil.rmtree(self._root, ignore_errors=True)

    def path_for(self, name: str) -> str:
        """A fresh file name that keeps the member's extension (sniffing uses it)."""
        self._count += 1
        base = _SAFE.sub("_", os.path.basename(name.replace("\\", "/")))[-80:] or "member"
        return os.path.join(self.root, f"{self._count}_{base}")

    def copy(
        self,
        stream: IO[bytes],
        dest: str,
        budget: ExpansionBudget,
        *,
        charge: bool = True,
        first: bytes = b"",
    ) -> tuple[int, bool]:
        """Copy the stream while the budget allows; returns (bytes written, whether the
        stream ended). Each chunk is charged before it is written (`charge=False`: the
        stream's decoder charges it as it decompresses). `first`: bytes already taken off
        the stream (and charged), written ahead of it."""
        written = len(first)
        with open(dest, "wb") as out:
            out.write(first)
            while True:
                chunk = stream.read(1 << 20)
                if not chunk:
                    return written, True
                if charge and not budget.charge(len(chunk)):
                    return written, False
                out.write(chunk)
                written += len(chunk)


def scan_member_file(
    ctx: ScanContext,
    source: bytes | str,
    display: str,
    limits: Limits,
    fmt: Format | None = None,
) -> ScanResult:
    """Scan an extracted member (its path, or its bytes) by its own format, one level deeper
    (`fmt`: the format already sniffed under the member's own name)."""
    return ctx.scan_member(
        source, display, fmt=fmt, depth=limits.depth + 1, config=limits.nested_config(ctx.config)
    )


def scan_stream_member(
    result: ScanResult,
    spool: MemberSpool,
    stream: IO[bytes],
    name: str,
    display: str,
    ctx: ScanContext,
    limits: Limits,
    decoder: DecompressingReader | None = None,
    also_as: str | None = None,
    inspect: Callable[[bytes | str], None] | None = None,
    stored_slice: bool = False,
) -> bool:
    """Extract one member (bounded) and scan it; False when the budget ran out.

    A member whose data is corrupt is still scanned (a loader may run what precedes the
    damage) and marks the container inconclusive; one that hit a bomb limit is not.
    `also_as` is another name some extractors give the member (an Info-ZIP Unicode Path):
    when its file name differs (routing goes by name too), the bytes are scanned under it too.
    `inspect` also reads the extracted member (its bytes or spooled file), for a container
    that judges members together (a skops tree's node array), without extracting it twice.
    `stored_slice`: the member is a stretch of the container's own bytes, stored as they are
    (a torch.distributed.checkpoint shard's items), so copying it out produces nothing the
    expansion budget is for.
    """
    if limits.budget.exceeded:
        report_bomb(result, display, limits.budget.exceeded)
        return False
    dest: str | None = None
    charged = stored_slice or (decoder is not None and decoder.budget is limits.budget)
    try:
        first = _take(stream, HEAD_SIZE + 1, limits.budget, charge=not charged)
        source: bytes | str = b""
        text: Format | None = None
        if first is None:
            ended = False
        elif also_as is None and len(first) <= HEAD_SIZE and (text := _text(first, name)):
            source, ended = first, True
        else:
            dest = source = spool.path_for(name)
            _written, ended = spool.copy(
                stream, dest, limits.budget, charge=not charged, first=first
            )
        if decoder is not None and decoder.limit_hit:
            report_bomb(result, display, decoder.limit_hit)
            return False
        if not ended or limits.budget.exceeded:
            report_bomb(result, display, limits.budget.exceeded or "member exceeds the budget")
            return False
        if decoder is not None and not decoder.clean_end:
            result.mark_inconclusive(f"malformed: {decoder.error or 'compressed data truncated'}")
        # bytes judged as text by the member's name (`README`), not re-sniffed by the name
        # shown (`model.zip:README`), which is no file name and would route them as a pickle
        result.merge(scan_member_file(ctx, source, display, limits, fmt=text))
        if inspect is not None:
            inspect(source)
        if dest is not None and also_as is not None and _basename(also_as) != _basename(name):
            renamed = spool.path_for(also_as)
            os.replace(dest, renamed)
            dest = renamed
            shown = f"{display} (extracted as {also_as})"
            again = scan_member_file(ctx, dest, shown, limits)
            known = {(i.rule, i.message) for i in result.issues}
            again.issues = [i for i in again.issues if (i.rule, i.message) not in known]
            result.merge(again)
        return not limits.budget.exceeded
    finally:
        if dest is not None:
            with contextlib.suppress(OSError):
                os.unlink(dest)


def _take(stream: IO[bytes], count: int, budget: ExpansionBudget, *, charge: bool) -> bytes | None:
    """Up to `count` bytes off the stream (fewer only at its end), charged to the budget;
    None when the budget refuses them."""
    parts: list[bytes] = []
    got = 0
    while got < count:
        chunk = stream.read(count - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    data = b"".join(parts)
    if charge and not budget.charge(len(data)):
        return None
    return data


def _text(data: bytes, name: str) -> Format | None:
    """Bytes the engine judges without a file whatever scanners are registered: text with no
    zip end record in it (sniffing rules out anything a loader could run first); their
    format, TEXT or EMPTY, or None."""
    if holds_zip_end(data):
        return None
    if _MODULE_LIST_NAME.search(name) and _MODULE_LIST.match(data):
        return Format.TEXT
    fmt = sniff_head(data, name, len(data))
    return fmt if fmt in (Format.TEXT, Format.EMPTY) else None


def _basename(name: str) -> str:
    return os.path.basename(name.replace("\\", "/")).lower()
