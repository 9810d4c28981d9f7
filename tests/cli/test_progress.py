"""Progress: totals once the listing is known, bytes, ETA, and downloads as they happen."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import modelaudit
from modelaudit.progress import ScanProgress, progress_bar
from modelaudit.report import FileReport
from tests.cli._helper import SAFE_PICKLE
from tests.remote_http._remote_http_servers import Blob, Server, serve_blob


class Recorder:
    """A progress object hearing every event the engine sends."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def __call__(self, fr: FileReport) -> None:
        self.events.append(("file", fr.path, fr.status.value))

    def listed(self, uri: str, size: int | None) -> None:
        self.events.append(("listed", uri, size))

    def listing_done(self) -> None:
        self.events.append(("listing_done",))

    def fetch_progress(self, uri: str, nbytes: int, size: int | None) -> None:
        self.events.append(("fetch", uri, nbytes, size))

    def fetch_done(self, uri: str) -> None:
        self.events.append(("fetch_done", uri))


async def test_engine_reports_listing_and_download_progress(tmp_path: Path) -> None:
    body = SAFE_PICKLE + b"\x00" * (3 * 1024 * 1024)
    blob = Blob(body)
    server = Server(lambda h: serve_blob(h, blob))
    (tmp_path / "a.pkl").write_bytes(SAFE_PICKLE)
    (tmp_path / "notes.txt").write_text("hello")
    remote = f"{server.url}/weights.pkl"
    recorder = Recorder()
    try:
        async with modelaudit.Scanner(jobs=1) as scanner:
            report = await scanner.scan([str(tmp_path), remote], progress=recorder)
    finally:
        server.stop()
    assert report.target_errors == []
    kinds = [e[0] for e in recorder.events]
    listed = {e[1]: e[2] for e in recorder.events if e[0] == "listed"}
    assert listed == {
        str(tmp_path / "a.pkl"): len(SAFE_PICKLE),
        str(tmp_path / "notes.txt"): 5,
        remote: len(body),
    }
    # Every listed object ends as one file; the listing ends once, after the last listing.
    assert kinds.count("file") == 3
    assert kinds.count("listing_done") == 1
    assert kinds.index("listing_done") > max(i for i, k in enumerate(kinds) if k == "listed")
    fetched = [e for e in recorder.events if e[0] == "fetch"]
    assert fetched and all(e[1] == remote and e[3] == len(body) for e in fetched)
    # Every byte that moved is told (a first ranged read may precede the whole download).
    assert len(body) <= sum(e[2] for e in fetched) <= len(body) + 64 * 1024
    done = kinds.index("fetch_done")
    assert done > kinds.index("fetch") and recorder.events[done] == ("fetch_done", remote)
    assert ("file", remote, "complete") in recorder.events[done:]


def _render(progress: ScanProgress) -> str:
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, force_terminal=False)
    console.print(progress.bar.get_renderable())
    return out.getvalue()


class Clock:
    """The time the bar computes rates and ETAs from, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _progress(clock: Clock | None = None) -> ScanProgress:
    """The CLI's own bar (its columns), rendered into a string instead of a terminal."""
    from rich.console import Console

    return ScanProgress(progress_bar(Console(file=io.StringIO()), get_time=clock or Clock()))


def test_display_counts_totals_once_the_listing_is_known() -> None:
    progress = _progress()
    progress.listed("m/a.pkl", 1500)
    progress.listed("m/b.pkl", 500)
    progress(FileReport(path="m/a.pkl", size=1500))
    shown = _render(progress)
    assert "1/2+ files" in shown and "1.5 kB" in shown and "m/a.pkl" in shown
    progress.listing_done()
    shown = _render(progress)
    assert "1/2 files" in shown and "1.5 kB/2.0 kB" in shown
    progress(FileReport(path="m/b.pkl", size=500))
    assert "2/2 files" in _render(progress)


def test_display_shows_each_download_and_hides_escapes() -> None:
    progress = _progress()
    uri = "https://example.com/x\x1b[2J.bin?token=s3cr3t"
    progress.listed(uri, 4_000_000)
    progress.fetch_progress(uri, 1_000_000, 4_000_000)
    shown = _render(progress)
    assert "1.0 MB/4.0 MB" in shown
    assert "s3cr3t" not in shown and "\x1b" not in shown and "x\\x1b[2J.bin" in shown
    for n in range(6):
        progress.fetch_progress(f"s3://b/{n}.bin", 10, 100)
    assert "(+3 downloading)" in _render(progress)
    progress.fetch_done(uri)
    assert "1.0 MB/4.0 MB" not in _render(progress)


def test_display_shows_rate_and_eta_for_the_scan_and_each_download() -> None:
    clock = Clock()
    progress = _progress(clock)
    for name, size in (("m/a.pkl", 1000), ("m/b.pkl", 1000), ("m/c.pkl", 2000)):
        progress.listed(name, size)
    progress.listing_done()
    assert "-:--:--" in _render(progress)  # no rate yet, so no ETA
    clock.now = 10
    progress(FileReport(path="m/a.pkl", size=1000))
    clock.now = 20
    progress(FileReport(path="m/b.pkl", size=1000))
    # 2 kB in 20 s: 100 bytes/s, and 2 kB left take 20 s more.
    shown = _render(progress)
    assert "2.0 kB/4.0 kB" in shown and "100 bytes/s" in shown and "0:00:20" in shown
    uri = "https://example.com/big.bin"
    progress.fetch_progress(uri, 1_000, 10_000)
    clock.now = 24
    progress.fetch_progress(uri, 2_000, 10_000)
    [line] = [ln for ln in _render(progress).splitlines() if "big.bin" in ln]
    # 2 kB more in 4 s: 500 bytes/s, and the 7 kB left take 14 s more.
    assert "3.0 kB/10.0 kB" in line and "500 bytes/s" in line and "0:00:14" in line
