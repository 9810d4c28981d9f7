"""Progress on stderr, only when stderr is a terminal; rich is imported only then."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .report import FileReport


@contextmanager
def progress_reporter(enabled: bool = True) -> Iterator[Callable[[FileReport], None] | None]:
    if not enabled or not sys.stderr.isatty() or os.environ.get("TERM") == "dumb":
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    from .redact import redact_uri

    console = Console(stderr=True, no_color="NO_COLOR" in os.environ)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.completed} files"),
        BarColumn(bar_width=None),
        TextColumn("{task.description}", style="dim"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def on_file(file_report: FileReport) -> None:
            bar.update(task, advance=1, description=redact_uri(file_report.path)[-60:])

        yield on_file
