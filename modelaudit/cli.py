"""The `modelaudit` command.

Start-up matters (CI runs it per commit, pre-commit per file batch), so this module imports
only argparse at load time; the engine, reporters and rich are imported once a scan starts.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
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


def _shard(text: str) -> str:
    from .engine.sharding import parse_shard

    try:
        return str(parse_shard(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or positive")
    return value


_COMMANDS = ("scan", "rules")
_USAGE = "modelaudit [scan] PATH... [options]\n       modelaudit rules [RULE...]"
_TOP_LEVEL = ("-h", "--help", "--version")


def _exit_code_epilog() -> str:
    from .exit_codes import exit_code_help

    return exit_code_help()


class _Formatter(argparse.HelpFormatter):
    """argparse makes a formatter for every option it adds, each asking the terminal's width
    (importing shutil); the width is only needed when help is actually written."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        self._settings = (indent_increment, max_help_position, width)
        super().__init__(prog, indent_increment, max_help_position, 80 if width is None else width)

    def format_help(self) -> str:
        indent_increment, max_help_position, width = self._settings
        if width is None:
            import shutil

            width = shutil.get_terminal_size().columns - 2
            self._width = width
            self._max_help_position = min(max_help_position, max(width - 20, indent_increment * 2))
        return super().format_help()


class _RawDescriptionFormatter(_Formatter, argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelaudit",
        formatter_class=_Formatter,
        usage=_USAGE,
        description="Static security scanner for ML model files. Nothing scanned is loaded. "
        "`modelaudit PATH` is short for `modelaudit scan PATH`.",
    )
    parser.add_argument("--version", action="version", version=f"modelaudit {__version__}")
    # The subcommands' prog is the usage text (argparse would format it to find out).
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", prog=_USAGE)
    scan = sub.add_parser(
        "scan",
        help="scan files, directories or remote models (the default command)",
        description="Scan files, directories or remote models.",
        epilog=_exit_code_epilog(),
        formatter_class=_RawDescriptionFormatter,
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", help="file, directory or URI")
    scan.add_argument("--format", "-f", choices=_FORMATS, default="text", help="report format")
    scan.add_argument(
        "--output", "-o", metavar="FILE", help="write the report to FILE ('-': stdout)"
    )
    scan.add_argument(
        "--sbom",
        metavar="FILE",
        help="also write a CycloneDX 1.6 JSON SBOM of the scanned files (licenses, hashes, "
        "risk scores) to FILE; works with any --format",
    )
    scan.add_argument(
        "--hash-remote",
        action="store_true",
        help="with --format sarif or --sbom: download a remote object whole to hash it when "
        "its provider publishes no sha256 (by default its hashes are those the provider "
        "publishes, such as the Hub's LFS sha256, S3 ChecksumSHA256 or ETag md5, GCS "
        "md5/crc32c, Artifactory checksums, and the scan reads only what it needs)",
    )
    scan.add_argument(
        "--fail-on",
        choices=("warning", "critical"),
        default=None,
        help="lowest severity that exits 1: 'warning' (default) fails on WARNING or CRITICAL "
        "findings; 'critical' fails only on CRITICAL ones (warnings alone then exit 0, or 2 "
        "if some file could not be fully scanned)",
    )
    scan.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out paths matching GLOB (repeatable; gitignore-like: 'name' or '*.bin' "
        "anywhere, 'dir/sub/**' from the scanned folder); reported as skipped",
    )
    scan.add_argument(
        "--no-default-excludes",
        action="store_true",
        help="also walk version-control folders (.git, .hg, .svn, ...), virtual "
        "environments and __pycache__, which are skipped by default",
    )
    scan.add_argument(
        "--config",
        metavar="FILE",
        help="settings file (default: the nearest .modelaudit.toml, or pyproject.toml with "
        "[tool.modelaudit], from the working directory up)",
    )
    scan.add_argument("--no-config", action="store_true", help="ignore settings files")
    scan.add_argument(
        "--baseline",
        metavar="FILE",
        help="accept the findings listed in FILE, an earlier JSON (or SARIF) report: they "
        "stay in the report, marked suppressed, and do not count for the exit code",
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
        help="judge unverifiable content more severely: a pickle import not on the list of "
        "names real models use is CRITICAL (not WARNING); a protocol 0/1 pickle is scanned "
        "as a pickle under any name; a file with a model extension that no scanner "
        "understands is a WARNING; any other file no scanner understands is unverified "
        "(exit 2) unless it is text or a known data-only format (TensorFlow checkpoint, "
        "OCDBT, CatBoost, XGBoost UBJSON)",
    )
    noise = scan.add_mutually_exclusive_group()
    noise.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="log details to stderr; the text report also lists skipped files and "
        "suppressed findings",
    )
    noise.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress, notices or stderr summary; the text report shows only WARNING and "
        "CRITICAL findings and problems, and nothing at all for a clean run",
    )
    scan.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: CPU count)",
    )
    scan.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    scan.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="run the sweep on the Dask cluster whose scheduler is at ADDRESS "
        "(tcp://HOST:PORT; default: DASK_SCHEDULER_ADDRESS if set; 'local' for none); needs "
        "the 'cluster' extra, and modelaudit installed on every node",
    )
    scan.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="K/N",
        help="scan only part K of N of the sweep (objects split by a stable hash of their "
        "URI), for CI matrix jobs: the N parts together are the whole sweep",
    )
    scan.add_argument(
        "--cache",
        metavar="DIR",
        default=None,
        help="remember each object's result in DIR and report unchanged objects from it "
        "(marked cached) without scanning them again; DIR must be yours and not writable by "
        "others (see MODELAUDIT_CACHE_SECRET for caches shared between machines)",
    )
    rules = sub.add_parser(
        "rules",
        help="list the rules findings name, or explain some",
        description="List every rule, or explain the rules named (by id, like MA1001, or name).",
        formatter_class=_Formatter,
    )
    rules.add_argument("rules", nargs="*", metavar="RULE", help="rule id or name")
    rules.add_argument("--format", "-f", choices=("text", "json"), default="text")
    return parser


def with_command(argv: Sequence[str]) -> list[str]:
    """`modelaudit PATH ...` means `modelaudit scan PATH ...`."""
    args = list(argv)
    if args and args[0] not in _COMMANDS and args[0] not in _TOP_LEVEL:
        return ["scan", *args]
    return args


def _check_removed_flags(argv: Sequence[str]) -> str | None:
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag in _REMOVED_FLAGS:
            return (
                f"modelaudit: error: {flag} was removed; set the environment variable "
                f"{_REMOVED_FLAGS[flag]} instead (credentials are read only from the environment)"
            )
    return None


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


@dataclass
class _Plan:
    """What a scan needs beyond its options, settled before any work starts."""

    fail_on: str
    exclude: list[str]
    default_excludes: bool
    ignores: list[Any]
    baseline: Any
    notices: list[str]


def _error(message: str) -> None:
    from .reporters.safe import printable

    print(f"modelaudit: error: {printable(message)}", file=sys.stderr)


def _prepare(args: argparse.Namespace) -> _Plan:
    """Settings file, excludes, baseline and report destinations, checked before the scan:
    a mistake costs one line and exit 2, not an hour of scanning. Raises `ConfigError` or
    `OutputError`."""
    from .output import check_destination
    from .pathglob import GlobSet
    from .project import find_config, load_config
    from .suppress import Baseline, ConfigError

    if args.config and args.no_config:
        raise ConfigError("--config and --no-config cannot be used together")
    path = None if args.no_config else (args.config or find_config())
    if args.config and not os.path.isfile(args.config):
        raise ConfigError(f"--config {args.config}: no such file")
    project = load_config(path)
    try:
        GlobSet(args.exclude)
    except (ValueError, re.error) as exc:
        raise ConfigError(f"--exclude: bad pattern: {exc}") from None
    for what, dest in (("report", args.output), ("SBOM", args.sbom)):
        if dest:
            check_destination(dest, what)
    if args.output and args.sbom and os.path.realpath(args.output) == os.path.realpath(args.sbom):
        raise ConfigError("--output and --sbom name the same file")
    baseline_path = args.baseline or project.baseline
    baseline = Baseline.load(baseline_path) if baseline_path else None
    notices = []
    if path is not None and args.verbose:
        notices.append(f"settings from {path}")
    for n, entry in enumerate(project.ignores, 1):
        if entry.expired():
            notices.append(
                f"ignore entry {n} in {entry.source} expired on {entry.expires}; "
                "its findings count again"
            )
    default_excludes = not args.no_default_excludes and project.default_excludes is not False
    return _Plan(
        fail_on=args.fail_on or project.fail_on or "warning",
        exclude=[*project.exclude, *args.exclude],
        default_excludes=default_excludes,
        ignores=project.ignores,
        baseline=baseline,
        notices=notices,
    )


def _cluster_address(args: argparse.Namespace) -> str | None:
    """--cluster, else Dask's own DASK_SCHEDULER_ADDRESS; 'local' means no cluster."""
    address = args.cluster or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    return None if address is None or address.strip().lower() == "local" else address.strip()


def run_scan_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .output import OutputError, current_umask
    from .suppress import ConfigError

    current_umask()
    cluster = _cluster_address(args)
    if cluster is not None:
        from .cluster.errors import MISSING_EXTRA

        try:
            import distributed  # noqa: F401
        except ImportError:
            print(f"modelaudit: error: {MISSING_EXTRA}", file=sys.stderr)
            return 2
    try:
        plan = _prepare(args)
    except (ConfigError, OutputError) as exc:
        _error(str(exc))
        return 2
    if not args.quiet:
        for notice in plan.notices:
            print(f"modelaudit: notice: {notice}", file=sys.stderr)
    config = _config(args, plan)
    one = None if cluster is not None else _one_local_file(args.paths, config)
    early = None if cluster is not None or one is not None else _early_fork_server(args.paths)
    if one is not None:
        # The worker starts now, and scans while this process imports what reports need.
        one.start()
    try:
        return _scan_command(args, argv, early, plan, config, one)
    finally:
        if early is not None:
            _close_early(early)
        if one is not None:
            one.close()


def _config(args: argparse.Namespace, plan: _Plan) -> Any:
    from .config import ScanConfig, default_jobs

    return ScanConfig(
        timeout=args.timeout,
        file_timeout=args.file_timeout,
        max_file_size=args.max_size,
        **({} if args.memory_limit is None else {"worker_memory_limit": args.memory_limit}),
        blacklist_patterns=list(args.blacklist),
        exclude=plan.exclude,
        default_excludes=plan.default_excludes,
        strict=args.strict,
        verbose=args.verbose,
        jobs=args.jobs or default_jobs(),
        hashes=args.format == "sarif" or bool(args.sbom),
        hash_remote=args.hash_remote,
        cluster=_cluster_address(args),
        shard=args.shard,
        cache_dir=args.cache,
    )


def _one_local_file(paths: Sequence[str], config: Any) -> Any:
    """The one-file run (engine/direct.py) when it applies, else None."""
    if len(paths) != 1:
        return None
    from .engine.direct import OneFileRun, one_local_file

    obj = one_local_file(paths, config)
    return None if obj is None else OneFileRun(obj, config, handle_signals=True)


def _close_early(early: Any) -> None:
    """The server exits once its socket closes; reap it if the scan never adopted it."""
    sock, pid = early
    sock.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _scan_command(
    args: argparse.Namespace,
    argv: Sequence[str],
    early: Any,
    plan: _Plan,
    config: Any,
    one: Any,
) -> int:
    import logging

    from .output import STDOUT, OutputError, use_color, write
    from .reporters import get_renderer
    from .reporters.text import summary_line
    from .suppress import apply_suppressions

    if args.verbose:
        level = logging.DEBUG
    elif args.quiet:
        level = logging.ERROR
    else:
        level = logging.WARNING
    logging.basicConfig(
        level=level, stream=sys.stderr, format="modelaudit: %(levelname)s: %(message)s"
    )
    from .redact import install_log_redaction, redact_bytes, report_names

    install_log_redaction()
    if one is not None:
        report = one.report(list(argv))
    else:
        from .cluster.errors import ClusterError
        from .progress import progress_reporter

        try:
            with progress_reporter(enabled=not (args.no_progress or args.quiet)) as progress:
                report = _run(args.paths, config, progress, argv, early)
        except ClusterError as exc:
            print(f"modelaudit: error: {exc}", file=sys.stderr)
            return 2
    _finish_on_signals(already_signalled=(report.interrupted or "").startswith("Interrupted by"))
    report.fail_on = plan.fail_on
    apply_suppressions(report, plan.ignores, plan.baseline)
    if args.verbose:
        for entry in plan.ignores:
            if not entry.used and not entry.expired():
                logging.getLogger("modelaudit").info(
                    "ignore entry for %s in %s matched nothing",
                    ", ".join(sorted(entry.rules)),
                    entry.source,
                )
    failed_writes = 0
    if args.sbom:
        from .sbom import build_sbom

        try:
            write(args.sbom, build_sbom(report))
        except OutputError as exc:
            _error(f"cannot write SBOM {args.sbom}: {exc}")
            failed_writes += 1
    render = get_renderer(args.format)
    to_stdout = args.output in (None, STDOUT)
    color = to_stdout and use_color(sys.stdout)
    data = redact_bytes(
        render(report, color=color, verbose=args.verbose, quiet=args.quiet),
        names=report_names(report),
    )
    try:
        write(args.output or STDOUT, data)
    except OutputError as exc:
        _error(f"cannot write report {args.output}: {exc}")
        failed_writes += 1
    if not to_stdout or args.format != "text":
        _errors_to_stderr(report)
    if not to_stdout and not args.quiet:
        where = "" if failed_writes else f" (report: {args.output})"
        _stderr_line(f"modelaudit: {summary_line(report)}{where}", report)
    exit_code: int = report.exit_code
    return 2 if failed_writes else exit_code


def _stderr_line(text: str, report: Any) -> None:
    from .redact import redact_bytes, report_names
    from .reporters.safe import printable

    data = (printable(text) + "\n").encode()
    sys.stderr.buffer.write(redact_bytes(data, names=report_names(report)))
    sys.stderr.flush()


#: Errored files named on stderr when the report goes elsewhere; the rest are counted.
_STDERR_FILES = 20


def _errors_to_stderr(report: Any) -> None:
    """When the report is a file or machine-readable, a CI log would otherwise show nothing:
    each target that failed (a refused or missing credential names its variable) and each
    file that could not be scanned get one line on stderr."""
    from .findings import FileStatus
    from .redact import redact_bytes, report_names
    from .reporters.safe import printable

    lines = []
    for err in report.target_errors:
        message = err["error"]
        if not message.startswith(err["target"]):
            message = f"{err['target']}: {message}"
        lines.append(f"modelaudit: error: {printable(message)}")
    failed = [f for f in report.files if f.status is FileStatus.ERROR]
    for fr in failed[:_STDERR_FILES]:
        reason = fr.status_reason or "error"
        message = reason if reason.startswith(fr.path) else f"{fr.path}: {reason}"
        lines.append(f"modelaudit: error: {printable(message)}")
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

    return anyio.run(main, backend_options=_loop_options(paths))


def _loop_options(paths: Sequence[str]) -> dict[str, Any]:
    """uvloop for sweeps (a folder or a remote target), where its faster loop pays back its
    import; a run over named files (a pre-commit hook's) starts faster without it."""
    if all(os.path.isfile(p) for p in paths):
        return {}
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


def run_rules_command(args: argparse.Namespace) -> int:
    from .rule_docs import render_rules
    from .suppress import ConfigError

    try:
        text = render_rules(args.rules, args.format)
    except ConfigError as exc:
        _error(str(exc))
        return 2
    from .output import write_stdout

    write_stdout((text + "\n").encode())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    removed = _check_removed_flags(argv)
    if removed:
        print(removed, file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(with_command(argv))
    if args.command == "rules":
        return run_rules_command(args)
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
