"""Progress on stderr, only when stderr is a terminal; rich is imported only then.

One line for the scan (files done of files listed, bytes done of bytes listed, ETA once the
listing is complete, the last file finished) and one line per remote object downloading
(bytes of its size, rate, ETA). Names are shown redacted and escaped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .redact import redact_uri
from .report import FileReport
from .reporters.safe import printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

#: Download lines shown at once; others are counted in the scan line.
MAX_DOWNLOAD_ROWS = 4
_NAME_WIDTH = 48


def _short(uri: str) -> str:
    shown = printable(redact_uri(uri))
    return shown if len(shown) <= _NAME_WIDTH else "\u2026" + shown[-(_NAME_WIDTH - 1) :]


def _size(n: float) -> str:
    from rich.filesize import decimal

    return str(decimal(int(n)))


class ScanProgress:
    """The `progress` of a scan: called with each finished file, told of listing and
    downloads through the `engine.runner.ProgressEvents` methods."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.n_listed = 0
        self.listed_bytes = 0
        self.done = 0
        self.done_bytes = 0
        self.listing_complete = False
        self.task = bar.add_task("", total=None, name="", amount="")
        self.downloads: dict[str, TaskID] = {}
        self.fetched: dict[str, int] = {}
        self._refresh()

    def _refresh(self, name: str | None = None) -> None:
        if self.listing_complete:
            files = f"{self.done}/{self.n_listed} files"
            amount = f"{_size(self.done_bytes)}/{_size(self.listed_bytes)}"
        else:
            files = f"{self.done}/{self.n_listed}+ files"
            amount = _size(self.done_bytes)
        hidden = len(self.downloads) - MAX_DOWNLOAD_ROWS
        if hidden > 0:
            amount += f" (+{hidden} downloading)"
        fields: dict[str, Any] = {"description": files, "amount": amount}
        if name is not None:
            fields["name"] = name
        self.bar.update(self.task, completed=self.done_bytes, **fields)

    # -- engine.runner.ProgressEvents ---------------------------------------------------

    def listed(self, uri: str, size: int | None) -> None:
        self.n_listed += 1
        self.listed_bytes += size or 0
        self._refresh()

    def listing_done(self) -> None:
        self.listing_complete = True
        self.bar.update(self.task, total=max(self.listed_bytes, self.done_bytes, 1))
        self._refresh()

    def fetch_progress(self, uri: str, nbytes: int, size: int | None) -> None:
        task = self.downloads.get(uri)
        if task is None:
            visible = len(self.downloads) < MAX_DOWNLOAD_ROWS
            task = self.bar.add_task(
                "download", total=size, name=_short(uri), amount="", visible=visible
            )
            self.downloads[uri] = task
            self.fetched[uri] = 0
            self._refresh()
        got = self.fetched[uri] = self.fetched[uri] + nbytes
        # A header read before a whole download counts twice; show what the object holds.
        shown = min(got, size) if size else got
        amount = f"{_size(shown)}/{_size(size)}" if size else _size(got)
        self.bar.update(task, completed=shown, amount=amount)

    def fetch_done(self, uri: str) -> None:
        task = self.downloads.pop(uri, None)
        self.fetched.pop(uri, None)
        if task is not None:
            self.bar.remove_task(task)
            self._refresh()

    # -- each finished file -------------------------------------------------------------

    def __call__(self, file_report: FileReport) -> None:
        self.done += 1
        self.done_bytes += file_report.size or 0
        self._refresh(_short(file_report.path))


def progress_enabled(enabled: bool = True, stream: Any = None) -> bool:
    stream = sys.stderr if stream is None else stream
    return enabled and stream.isatty() and os.environ.get("TERM") != "dumb"


def progress_bar(console: Console, get_time: Callable[[], float] | None = None) -> Progress:
    """The bar the CLI shows: counts, bytes, rate and ETA (`get_time` lets a test drive the
    clock that the rate and ETA are computed from)."""
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=None),
        TextColumn("{task.fields[amount]}"),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[name]}", style="dim", markup=False),
        console=console,
        transient=True,
        get_time=get_time,
    )


@contextmanager
def progress_reporter(enabled: bool = True) -> Iterator[ScanProgress | None]:
    if not progress_enabled(enabled):
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
    with progress_bar(console) as bar:
        yield ScanProgress(bar)
