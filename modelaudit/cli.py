"""The `modelaudit` command.

Start-up matters (CI runs it per commit, pre-commit per file batch), so this module imports
only argparse at load time; the engine, reporters and rich are imported once a scan starts.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._version import __version__

_REMOVED_FLAGS = {
    "--jfrog-api-token": "JFROG_API_TOKEN",
    "--jfrog-access-token": "JFROG_ACCESS_TOKEN",
    "--registry-uri": "JFROG_URL or MLFLOW_TRACKING_URI",
}
_FORMATS = ("text", "json", "sarif")


def _size(text: str) -> int:
    from .config import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelaudit",
        description="Static security scanner for ML model files. Nothing scanned is loaded.",
    )
    parser.add_argument("--version", action="version", version=f"modelaudit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    scan = sub.add_parser(
        "scan",
        help="scan files, directories or remote models",
        description="Scan files, directories or remote models. Exit codes: 0 clean and "
        "complete, 1 findings (WARNING or CRITICAL; only CRITICAL with --fail-on critical), "
        "2 errors or unfinished files and no failing findings.",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", help="file, directory or URI")
    scan.add_argument("--format", "-f", choices=_FORMATS, default="text", help="report format")
    scan.add_argument("--output", "-o", metavar="FILE", help="write the report here")
    scan.add_argument(
        "--sbom",
        metavar="FILE",
        help="also write a CycloneDX 1.6 JSON SBOM of the scanned files (licenses, hashes, "
        "risk scores) to FILE; works with any --format",
    )
    scan.add_argument(
        "--fail-on",
        choices=("warning", "critical"),
        default="warning",
        help="lowest severity that exits 1: 'warning' (default) fails on WARNING or CRITICAL "
        "findings; 'critical' fails only on CRITICAL ones (warnings alone then exit 0, or 2 "
        "if some file could not be fully scanned)",
    )
    scan.add_argument(
        "--timeout",
        "-t",
        type=_positive_float,
        default=300.0,
        metavar="SECONDS",
        help="deadline of the whole run (default 300; 0 for none)",
    )
    scan.add_argument(
        "--file-timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="deadline of one file's scan, queueing excluded (default: 15 s plus 1 s per "
        "32 MiB of the file, and never past the run deadline)",
    )
    scan.add_argument(
        "--max-size",
        type=_size,
        default=0,
        metavar="SIZE",
        help="skip files larger than SIZE, e.g. 500MB, 1GB (default: no limit)",
    )
    scan.add_argument(
        "--memory-limit",
        type=_size,
        default=None,
        metavar="SIZE",
        help="memory one file's scan may use, e.g. 4GB (default 2GB, plus the file's size "
        "for files of 1 MiB or more; 0 for none); a file that needs more is reported "
        "unfinished",
    )
    scan.add_argument(
        "--blacklist",
        "-b",
        action="append",
        default=[],
        metavar="PATTERN",
        help="flag files or model names containing PATTERN (case-insensitive, repeatable)",
    )
    scan.add_argument(
        "--strict",
        action="store_true",
        help="treat unknown globals and unverifiable content more severely",
    )
    scan.add_argument("--verbose", "-v", action="store_true", help="log details to stderr")
    scan.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: CPU count)",
    )
    scan.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    return parser


def _check_removed_flags(argv: Sequence[str]) -> str | None:
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag in _REMOVED_FLAGS:
            return (
                f"modelaudit: error: {flag} was removed; set the environment variable "
                f"{_REMOVED_FLAGS[flag]} instead (credentials are read only from the environment)"
            )
    return None


def _write_atomic(path: str, data: bytes) -> None:
    """Write the report so that a reader never sees half of it."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".modelaudit-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _use_color(stream: Any) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _early_fork_server(targets: Sequence[str]) -> Any:
    """Fork this process into the worker fork server before any thread exists (Linux).

    The vocabulary both sides need is imported first, once; then the server imports the
    worker and the scanners the targets' names suggest while this process imports the
    async engine, in parallel.
    """
    if os.environ.get("MODELAUDIT_WORKER_START", "auto") not in ("auto", "fork"):
        return None
    from .engine.forkserver import fork_early, supported

    if not supported():
        return None
    importlib.import_module("modelaudit.rules")
    importlib.import_module("modelaudit.formats")
    importlib.import_module("modelaudit.redact")
    return fork_early(targets)


def run_scan_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    early = _early_fork_server(args.paths)
    try:
        return _scan_command(args, argv, early)
    finally:
        if early is not None:
            _close_early(early)


def _close_early(early: Any) -> None:
    """The server exits once its socket closes; reap it if the scan never adopted it."""
    sock, pid = early
    sock.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _scan_command(args: argparse.Namespace, argv: Sequence[str], early: Any) -> int:
    import logging

    from .config import ScanConfig, default_jobs
    from .reporters import get_renderer

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="modelaudit: %(levelname)s: %(message)s",
    )
    from .redact import install_log_redaction, redact_bytes, report_names

    install_log_redaction()
    config = ScanConfig(
        timeout=args.timeout,
        file_timeout=args.file_timeout,
        max_file_size=args.max_size,
        **({} if args.memory_limit is None else {"worker_memory_limit": args.memory_limit}),
        blacklist_patterns=list(args.blacklist),
        strict=args.strict,
        verbose=args.verbose,
        jobs=args.jobs or default_jobs(),
        hashes=args.format == "sarif" or bool(args.sbom),
    )
    from .progress import progress_reporter

    with progress_reporter(enabled=not args.no_progress) as progress:
        report = _run(args.paths, config, progress, argv, early)
    _finish_on_signals(already_signalled=(report.interrupted or "").startswith("Interrupted by"))
    report.fail_on = args.fail_on
    sbom_failed = False
    if args.sbom:
        from .sbom import build_sbom

        try:
            _write_atomic(args.sbom, build_sbom(report))
        except OSError as exc:
            print(f"modelaudit: error: cannot write SBOM {args.sbom}: {exc}", file=sys.stderr)
            sbom_failed = True
    render = get_renderer(args.format)
    color = args.output is None and _use_color(sys.stdout)
    data = redact_bytes(
        render(report, color=color, verbose=args.verbose), names=report_names(report)
    )
    if args.output:
        _write_atomic(args.output, data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    if args.output or args.format != "text":
        _errors_to_stderr(report)
    exit_code: int = report.exit_code
    return max(exit_code, 2) if sbom_failed else exit_code


#: Errored files named on stderr when the report goes elsewhere; the rest are counted.
_STDERR_FILES = 20


def _errors_to_stderr(report: Any) -> None:
    """When the report is a file or machine-readable, a CI log would otherwise show nothing:
    each target that failed (a refused or missing credential names its variable) and each
    file that could not be scanned get one line on stderr."""
    from .findings import FileStatus
    from .redact import redact_bytes, report_names

    lines = []
    for err in report.target_errors:
        message = err["error"]
        if not message.startswith(err["target"]):
            message = f"{err['target']}: {message}"
        lines.append(f"modelaudit: error: {message}")
    failed = [f for f in report.files if f.status is FileStatus.ERROR]
    for fr in failed[:_STDERR_FILES]:
        reason = fr.status_reason or "error"
        message = reason if reason.startswith(fr.path) else f"{fr.path}: {reason}"
        lines.append(f"modelaudit: error: {message}")
    if len(failed) > _STDERR_FILES:
        lines.append(f"modelaudit: error: ... and {len(failed) - _STDERR_FILES} more files")
    if lines:
        text = ("\n".join(lines) + "\n").encode()
        sys.stderr.buffer.write(redact_bytes(text, names=report_names(report)))
        sys.stderr.flush()


def _finish_on_signals(already_signalled: bool) -> None:
    """Once the scan is over, a first SIGINT/SIGTERM lets the report be written; a second
    (counting the one that stopped the scan) exits at once without it."""
    import signal

    seen = [True] if already_signalled else []

    def handler(signum: int, frame: object) -> None:
        if seen:
            sys.stderr.write(
                f"modelaudit: {signal.Signals(signum).name} again, exiting without a report\n"
            )
            sys.stderr.flush()
            os._exit(128 + signum)
        seen.append(True)

    if _in_main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _run(paths: list[str], config: Any, progress: Any, argv: Sequence[str], early: Any) -> Any:
    import anyio

    from .engine.scanner import run_scan

    async def main() -> Any:
        return await run_scan(
            paths,
            config,
            progress=progress,
            command_line=list(argv),
            handle_signals=True,
            early_server=early,
        )

    try:
        import uvloop  # noqa: F401

        options: dict[str, Any] = {"use_uvloop": True}
    except ImportError:
        options = {}
    return anyio.run(main, backend_options=options)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    removed = _check_removed_flags(argv)
    if removed:
        print(removed, file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "scan":
        parser.print_help(sys.stderr)
        return 2
    import signal

    saved = [(s, signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)]
    try:
        return run_scan_command(args, ["modelaudit", *argv])
    except KeyboardInterrupt:
        # Only reachable outside the scan itself (start-up): no report to keep.
        print("modelaudit: interrupted", file=sys.stderr)
        return 130
    finally:
        if _in_main_thread():
            for signum, handler in saved:
                if handler is not None:
                    signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
