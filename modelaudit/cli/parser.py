"""The command line's grammar: everything `modelaudit --help` needs, and nothing more.

Start-up matters (CI runs the command per commit, pre-commit per file batch), so this module
imports argparse and two small vocabularies; the commands' modules load once one is chosen.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .._version import __version__
from ..exit_codes import exit_code_help
from ..sizes import parse_size

__all__ = ["COMMANDS", "build_parser", "removed_flag_message", "with_command"]

_REMOVED_FLAGS = {
    "--jfrog-api-token": "JFROG_API_TOKEN",
    "--jfrog-access-token": "JFROG_ACCESS_TOKEN",
    "--registry-uri": "JFROG_URL or MLFLOW_TRACKING_URI",
}
_FORMATS = ("text", "json", "sarif")


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shard(text: str) -> str:
    # Deferred: sharding hashes with hashlib (3 ms), which only --shard needs.
    from ..engine.sharding import parse_shard

    try:
        return str(parse_shard(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or positive")
    return value


#: The commands, each run by the module of the same name in this package.
COMMANDS = ("scan", "rules")
_USAGE = "modelaudit [scan] PATH... [options]\n       modelaudit rules [RULE...]"
_TOP_LEVEL = ("-h", "--help", "--version")


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
            import shutil  # only help is formatted to the terminal (asserted by a test)

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
        epilog=exit_code_help(),
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
    if args and args[0] not in COMMANDS and args[0] not in _TOP_LEVEL:
        return ["scan", *args]
    return args


def removed_flag_message(argv: Sequence[str]) -> str | None:
    """The error for a flag the reference had and we removed (credentials come only from the
    environment), or None."""
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag in _REMOVED_FLAGS:
            return (
                f"modelaudit: error: {flag} was removed; set the environment variable "
                f"{_REMOVED_FLAGS[flag]} instead (credentials are read only from the environment)"
            )
    return None
