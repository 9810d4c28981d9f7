"""Scan settings shared by the CLI, the Python API and the engine."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .sizes import parse_size as parse_size


class ConfigError(Exception):
    """A config file, a baseline or an option value that cannot be used; one line to show.
    Defined here, beside the settings, so that finding the settings file needs neither the
    suppressions (`suppress.py` re-exports it) nor the file's reader."""


_SIZE_KEYS = (
    "max_file_size",
    "max_expanded_size",
    "worker_memory_limit",
    "worker_file_size_limit",
    "worker_recycle_memory",
    "batch_bytes",
    "shard_bytes",
)
#: Automatic per-file deadline: a base plus time proportional to the file's size, so a small
#: bomb ends in seconds while a multi-gigabyte checkpoint still gets the time it needs.
FILE_DEADLINE_BASE = 15.0
FILE_DEADLINE_BYTES_PER_SECOND = 32 * 1024 * 1024
#: Settings of a `Scanner` itself (its pool); a call cannot override them.
ENGINE_KEYS = frozenset(
    {
        "jobs",
        "use_processes",
        "worker_start",
        "worker_recycle_files",
        "worker_recycle_memory",
        "max_in_flight",
        "cluster",
    }
)


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)


@dataclass
class ScanConfig:
    #: Deadline of the whole run, in seconds (0 = none).
    timeout: float = 300.0
    #: Deadline of one file's scan (queueing excluded). None: 15 s plus 1 s per 32 MiB, so a
    #: bomb ends inconclusive in seconds and never holds a worker for the whole run.
    file_timeout: float | None = None
    #: Files larger than this are not read (0 = no limit).
    max_file_size: int = 0
    blacklist_patterns: list[str] = field(default_factory=list)
    #: Path globs a local walk leaves out (and explicit paths they match), reported skipped.
    exclude: list[str] = field(default_factory=list)
    #: Leave version-control folders, virtual environments and bytecode caches out of walks.
    default_excludes: bool = True
    strict: bool = False
    verbose: bool = False
    #: Worker processes for CPU-bound scanning.
    jobs: int = field(default_factory=default_jobs)
    #: Remote objects fetched at once.
    fetch_jobs: int = 8
    #: Compute sha256 of every scanned file (needed by SARIF artifacts and SBOMs).
    hashes: bool = False
    #: With `hashes`: download a remote object whole to hash it when its provider publishes
    #: no digest of it (else its hash is left out; a header-only scan moves a few KiB).
    hash_remote: bool = False
    #: Archive and nested-pickle depth limit.
    max_depth: int = 5
    #: Total bytes an archive or compressed stream may expand to.
    max_expanded_size: int = 8 * 1024**3
    #: Scan in worker processes (off only for debugging: a hostile file then runs in-process).
    use_processes: bool = True
    #: Per-file limits inside worker processes (see engine/sandbox.py). Address space in
    #: bytes (plus the file's own size for files of 1 MiB or more, which may be mapped), CPU
    #: seconds (None: twice the per-file deadline plus 10 s), open files, and the largest
    #: file a scanner may write (None: max_expanded_size); 0 lifts a limit.
    worker_memory_limit: int = 2 * 1024**3
    worker_cpu_limit: float | None = None
    worker_open_files: int = 1024
    worker_file_size_limit: int | None = None
    #: Findings kept per rule per file; the rest are counted in one summary finding (0: all).
    max_findings_per_rule: int = 100
    #: How worker processes start: "auto" (a fork server on Linux, else "spawn"), "fork"
    #: or "spawn" (a fresh interpreter per worker); `MODELAUDIT_WORKER_START` sets the default.
    worker_start: str = field(
        default_factory=lambda: os.environ.get("MODELAUDIT_WORKER_START", "auto")
    )
    #: A worker is replaced after this many files, or when its resident memory grows past
    #: `worker_recycle_memory` bytes, so a long-lived `Scanner` does not accumulate leaks.
    worker_recycle_files: int = 5000
    worker_recycle_memory: int = 1024**3
    #: Files in flight (listed, fetched, queued or scanning) across every call of a
    #: `Scanner`. None: 512, or 256 per worker when more (a worker holds two batches of
    #: `batch_files`; as many again wait in the queue, so the next batch is a full one).
    max_in_flight: int | None = None
    #: Small files travel to a worker together: at most this many per job, and this many bytes.
    batch_files: int = 64
    batch_bytes: int = 4 * 1024 * 1024
    #: Scan on this Dask cluster (`tcp://HOST:PORT`) instead of local worker processes; needs
    #: the `cluster` extra. Each node runs this same engine; see modelaudit/cluster/.
    cluster: str | None = None
    #: Objects per cluster task (a shard), and the listed bytes past which a shard is sent.
    shard_files: int = 256
    shard_bytes: int = 1024**3
    #: Shards in flight per Dask worker thread (more hides the scheduler's round trip).
    shards_per_thread: int = 2
    #: A cluster with no worker for this long fails the files it still owes (seconds).
    cluster_idle_timeout: float = 60.0
    #: Only this part of the sweep: "K/N" keeps the objects whose URI hashes to part K of N.
    shard: str | None = None
    #: Remember each object's result here and report unchanged objects from it (off: None).
    cache_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_file_timeout(self) -> float:
        """The deadline of a small file (see `file_deadline`)."""
        return self.file_deadline(0)

    def file_deadline(self, size: int | None) -> float:
        """Seconds one file of `size` bytes may scan; never longer than the run deadline."""
        if self.file_timeout:
            seconds = float(self.file_timeout)
        else:
            seconds = FILE_DEADLINE_BASE + (size or 0) / FILE_DEADLINE_BYTES_PER_SECOND
        if self.timeout and self.timeout > 0:
            seconds = min(seconds, float(self.timeout))
        return seconds

    @property
    def in_flight(self) -> int:
        return self.max_in_flight or max(512, 256 * max(1, self.jobs))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> ScanConfig:
        """Accept the reference's config keys; unknown keys are kept for third-party scanners."""
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key == "max_size":
                key = "max_file_size"
            if key in _SIZE_KEYS and isinstance(value, str):
                value = parse_size(value)
            if key in ("blacklist_patterns", "exclude") and isinstance(value, str):
                value = [value]
            if key in known and key != "extra":
                kwargs[key] = value
            else:
                extra[key] = value
        cfg = cls(**kwargs)
        cfg.extra.update(extra)
        return cfg

    def with_overrides(self, overrides: Mapping[str, Any]) -> ScanConfig:
        """This config with per-call settings replaced; engine settings cannot change."""
        fixed = sorted(k for k in overrides if k in ENGINE_KEYS)
        if fixed:
            raise ValueError(
                f"{', '.join(fixed)}: a setting of the Scanner itself, not of one call; pass it "
                "to Scanner(...)"
            )
        merged = {**self.scanner_config(), **overrides}
        return ScanConfig.from_mapping(merged)

    def scanner_config(self) -> dict[str, Any]:
        """The plain dict handed to scanners (BaseScanner.config).

        Every call of a long-lived Scanner builds it, so fields are copied one level (the
        lists and the extra dict) instead of through `asdict`'s recursive deep copy; `extra`
        values are copied as `asdict` copies them."""
        out: dict[str, Any] = {}
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, list) else value
        if self.extra:
            out.update(copy.deepcopy(self.extra))
        return out


_FIELD_NAMES = tuple(f.name for f in fields(ScanConfig) if f.name != "extra")
