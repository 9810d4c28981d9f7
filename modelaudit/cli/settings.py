"""What a scan needs beyond its options, settled before any work starts: the settings file,
excludes, baseline and report destinations. A mistake costs one line and exit 2, not an
hour of scanning."""

from __future__ import annotations

import argparse
import importlib
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..config import ConfigError, ScanConfig, default_jobs
from ..output import check_destination
from ..pathglob import GlobSet
from ..project import find_config

if TYPE_CHECKING:
    from ..project_config import ProjectConfig
    from ..report import ScanReport
    from ..suppress import IgnoreEntry

__all__ = ["Plan", "cluster_address", "prepare", "scan_config"]


class Plan:
    """What a scan needs beyond its options, settled before any work starts. A plain class:
    building a dataclass costs a one-file run about half a millisecond."""

    __slots__ = ("default_excludes", "exclude", "fail_on", "ignores", "notices", "suppress")

    def __init__(
        self,
        fail_on: str,
        exclude: list[str],
        default_excludes: bool,
        ignores: Sequence[IgnoreEntry],
        suppress: Callable[[ScanReport], None] | None,
        notices: list[str],
    ) -> None:
        self.fail_on = fail_on
        self.exclude = exclude
        self.default_excludes = default_excludes
        self.ignores = ignores
        #: Marks the accepted findings (None: no settings file and no baseline).
        self.suppress = suppress
        self.notices = notices


def prepare(args: argparse.Namespace) -> Plan:
    """Settings file, excludes, baseline and report destinations, checked before the scan.
    Raises `ConfigError` or `OutputError`."""
    if args.config and args.no_config:
        raise ConfigError("--config and --no-config cannot be used together")
    path = None if args.no_config else (args.config or find_config())
    if args.config and not os.path.isfile(args.config):
        raise ConfigError(f"--config {args.config}: no such file")
    # The policy phase (the file's reader, the suppressions) only for a file or a baseline.
    policy = (
        importlib.import_module(".policy", __package__)
        if path is not None or args.baseline
        else None
    )
    project: ProjectConfig | None = None if policy is None else policy.load_project(path)
    try:
        GlobSet(args.exclude)
    except (ValueError, re.error) as exc:
        raise ConfigError(f"--exclude: bad pattern: {exc}") from None
    for what, dest in (("report", args.output), ("SBOM", args.sbom)):
        if dest:
            check_destination(dest, what)
    if args.output and args.sbom and os.path.realpath(args.output) == os.path.realpath(args.sbom):
        raise ConfigError("--output and --sbom name the same file")
    notices = []
    if path is not None and args.verbose:
        notices.append(f"settings from {path}")
    if policy is None or project is None:
        return Plan(
            fail_on=args.fail_on or "warning",
            exclude=list(args.exclude),
            default_excludes=not args.no_default_excludes,
            ignores=[],
            suppress=None,
            notices=notices,
        )
    baseline = policy.load_baseline(args.baseline or project.baseline)
    for n, entry in enumerate(project.ignores, 1):
        if entry.expired():
            notices.append(
                f"ignore entry {n} in {entry.source} expired on {entry.expires}; "
                "its findings count again"
            )
    default_excludes = not args.no_default_excludes and project.default_excludes is not False
    return Plan(
        fail_on=args.fail_on or project.fail_on or "warning",
        exclude=[*project.exclude, *args.exclude],
        default_excludes=default_excludes,
        ignores=project.ignores,
        suppress=policy.suppressor(project.ignores, baseline),
        notices=notices,
    )


def cluster_address(args: argparse.Namespace) -> str | None:
    """--cluster, else Dask's own DASK_SCHEDULER_ADDRESS; 'local' means no cluster."""
    address = args.cluster or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    return None if address is None or address.strip().lower() == "local" else address.strip()


def scan_config(args: argparse.Namespace, plan: Plan) -> ScanConfig:
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
        cluster=cluster_address(args),
        shard=args.shard,
        cache_dir=args.cache,
    )
