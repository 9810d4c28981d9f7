"""`--cache DIR`: report an object that has not changed since its last scan from that scan.

What identifies an object's content:
- a local file: its path as shown, size, mtime and SHA-256. The SHA-256 is taken after the
  scan, and kept only if the file's inode, size, mtime and ctime are the same before the scan
  and after the hash (a process cannot write a file without changing its ctime), so the hash
  is of the bytes that were scanned. A later run hashes a file whose size and mtime match
  before trusting the entry; the file is read for that, not scanned.
- a remote object: its URI, size and the ETag, generation or version its fetcher reads with
  (every read is pinned to it, so the bytes scanned were that version). No such tag, or a weak
  ETag, and the object is not cached.
- plus the engine: modelaudit's version, a digest of its own source code, every setting that
  can change a verdict, and the registered scanners (with a digest of their modules' source).

Only verdicts the scanner reached itself are stored (complete, skipped, or inconclusive for
what the file is); a timeout, a crash, a resource limit, a fetch error or an interrupted run
is never cached. Any doubt (an unreadable, unsigned or malformed entry, a changed setting or
a different version) is a miss, and the object is scanned again.

Trust model. The cache is as trusted as the code that reads it: whoever can write an entry
can make a hostile model pass as clean. So
- the directory must belong to the user running the scan and must not be writable by anyone
  else (group or world), nor may the database; otherwise the run warns and ignores the cache;
- each entry is signed (HMAC-SHA256) with `MODELAUDIT_CACHE_SECRET` when it is set, else with
  a random key kept in the directory (readable by its owner only). The key file protects only
  against entries copied from another cache or damaged ones: anyone who can write the
  directory can also read the key. A cache that travels between machines or jobs (a CI cache
  restored from a shared store, where anyone who can open a pull request may have written
  it) must be signed with `MODELAUDIT_CACHE_SECRET`, a secret that untrusted jobs never see;
  entries signed with another key are ignored;
- entries are JSON, never pickles.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.util
import logging
import os
import secrets
import sqlite3
import stat
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from .. import rules
from .._version import __version__
from ..config import ScanConfig
from ..fetchers import ObjectRef
from ..findings import FileStatus
from ..report import FileReport

log = logging.getLogger("modelaudit")

__all__ = ["CACHE_SECRET_VARIABLE", "CacheError", "Identity", "ResultCache", "engine_fingerprint"]

CACHE_SECRET_VARIABLE = "MODELAUDIT_CACHE_SECRET"
_SCHEMA = 1
_DATABASE = "results.sqlite3"
_KEY_FILE = "key"
#: Settings that never change a verdict the cache may store (deadlines only decide whether a
#: file times out, and timeouts are never stored).
_NEUTRAL_SETTINGS = frozenset(
    {
        "timeout",
        "file_timeout",
        "verbose",
        "jobs",
        "fetch_jobs",
        "hashes",
        "worker_start",
        "worker_recycle_files",
        "worker_recycle_memory",
        "max_in_flight",
        "batch_files",
        "batch_bytes",
        "cluster",
        "shard_files",
        "shard_bytes",
        "shards_per_thread",
        "cluster_idle_timeout",
        "shard",
        "cache_dir",
        "list_page_size",
    }
)
#: Findings that say the scan stopped short for reasons of this run, not of the file.
_RUN_RULES = frozenset({rules.SCAN_TIMEOUT, rules.SCAN_ERROR, rules.RESOURCE_LIMIT})


class CacheError(Exception):
    """The cache directory cannot be trusted or used; the message says what to change."""


@dataclass(frozen=True)
class Identity:
    """What an object's cached verdict is valid for."""

    uri: str
    explicit: bool
    size: int
    #: remote: the ETag, generation or version; local: the mtime in nanoseconds.
    version: str
    local_path: str | None = None
    #: local: (inode, ctime) when it was listed, compared again when the result is stored.
    stamp: tuple[int, int] | None = None

    def key(self) -> bytes:
        return orjson.dumps(
            ["local" if self.local_path else "remote", self.explicit, self.size, self.version]
        )


@dataclass
class Candidate:
    """A local file whose size and mtime match its entry: its hash decides."""

    identity: Identity
    sha256: str
    record: dict[str, Any]


def identify(obj: ObjectRef) -> Identity | None:
    """The identity of a listed object, or None when nothing pins its content."""
    if obj.local_path is not None:
        st = obj.stat
        if st is None:
            try:
                st = os.stat(obj.local_path)
            except OSError:
                return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return Identity(
            obj.uri,
            obj.explicit,
            st.st_size,
            str(st.st_mtime_ns),
            local_path=obj.local_path,
            stamp=(st.st_ino, st.st_ctime_ns),
        )
    tag = obj.etag
    if not tag or tag.startswith(("W/", "w/")) or obj.size is None:
        return None
    return Identity(obj.uri, obj.explicit, obj.size, tag)


def cacheable(fr: FileReport) -> bool:
    """A verdict about the file itself, one the next run would reach again."""
    if fr.status is FileStatus.ERROR or fr.cached:
        return False
    return not any(issue.rule in _RUN_RULES for issue in fr.issues)


def _sha256(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _stable(identity: Identity) -> bool:
    """The local file is the one listed: same inode, size, mtime and ctime."""
    assert identity.local_path is not None
    try:
        st = os.stat(identity.local_path)
    except OSError:
        return False
    return (
        st.st_size == identity.size
        and str(st.st_mtime_ns) == identity.version
        and (st.st_ino, st.st_ctime_ns) == identity.stamp
    )


@lru_cache(maxsize=1)
def _own_source_digest() -> str:
    """Any change to modelaudit's own code (a scanner, a rule, the engine) is a new engine."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        with contextlib.suppress(OSError):
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _module_digest(module_name: str) -> str:
    module = sys.modules.get(module_name)
    where = getattr(module, "__file__", None)
    if where is None:
        spec = importlib.util.find_spec(module_name)
        where = spec.origin if spec is not None else None
    if not where:
        return "unknown"
    try:
        return hashlib.sha256(Path(where).read_bytes()).hexdigest()
    except OSError:
        return "unknown"


def scanner_name(entry: Any) -> tuple[str, str]:
    """(module, qualname) of a registry entry: a scanner class or a built-in's spec."""
    module = getattr(entry, "module", None)
    if isinstance(module, str):
        return module, str(entry.qualname)
    return entry.__module__, entry.__qualname__


def engine_fingerprint(config: ScanConfig, registry: Sequence[Any] | None) -> str:
    """Version, own source, verdict-relevant settings and registered scanners, hashed."""
    settings = {
        k: v for k, v in sorted(config.scanner_config().items()) if k not in _NEUTRAL_SETTINGS
    }
    scanners = []
    for entry in registry or ():
        module, qualname = scanner_name(entry)
        scanners.append([f"{module}:{qualname}", _module_digest(module)])
    blob = orjson.dumps(
        [_SCHEMA, __version__, _own_source_digest(), settings, scanners],
        option=orjson.OPT_SORT_KEYS,
        default=repr,
    )
    return hashlib.sha256(blob).hexdigest()


def _check_private(path: Path, *, directory: bool) -> None:
    """Owned by this user, not a symlink, not writable by group or others (POSIX)."""
    st = os.lstat(path)
    kind_ok = stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        what = "a directory" if directory else "a regular file"
        raise CacheError(f"--cache: {path} is not {what} (symbolic links are refused)")
    if not hasattr(os, "geteuid"):
        return
    if st.st_uid != os.geteuid():
        raise CacheError(
            f"--cache: {path} belongs to another user (uid {st.st_uid}); use a directory of "
            "your own, since whoever can write the cache decides what passes as clean"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(
            f"--cache: {path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run `chmod go-w {path}`, since whoever can write the cache decides what passes "
            "as clean"
        )


def _open_private(path: Path, *, create: bool) -> int:
    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if create:
        flags |= os.O_CREAT | os.O_EXCL
    return os.open(path, flags, 0o600)


def _signing_key(folder: Path) -> bytes:
    secret = os.environ.get(CACHE_SECRET_VARIABLE)
    if secret:
        return hashlib.sha256(b"modelaudit-cache\0" + secret.encode()).digest()
    path = folder / _KEY_FILE
    try:
        fd = _open_private(path, create=True)
    except FileExistsError:
        _check_private(path, directory=False)
        fd = _open_private(path, create=False)
        with os.fdopen(fd, "rb") as f:
            key = f.read()
        if len(key) != 32:
            raise CacheError(f"--cache: {path} is not a key this cache wrote") from None
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


class ResultCache:
    """One cache directory, opened for one scan call.

    Lookups run on the caller's thread (an indexed SQLite read); stores are buffered and
    written by `flush`, which the caller runs in a worker thread (it hashes local files).
    """

    def __init__(self, folder: Path, key: bytes, fingerprint: str) -> None:
        self.folder = folder
        self._key = key
        self.fingerprint = fingerprint
        self._reader = self._connect()
        self._writer: sqlite3.Connection | None = None
        self._write_lock = threading.Lock()
        self._pending: list[tuple[Identity, FileReport]] = []
        self.hits = 0
        self.stored = 0

    @classmethod
    def open(cls, directory: str, fingerprint: str) -> ResultCache:
        """Blocking (file-system checks, the database, the key): call it in a thread."""
        folder = Path(directory).expanduser().absolute()
        try:
            if not os.path.lexists(folder):
                folder.mkdir(mode=0o700, parents=True)
            _check_private(folder, directory=True)
            database = folder / _DATABASE
            if not os.path.lexists(database):
                with contextlib.suppress(FileExistsError):
                    os.close(_open_private(database, create=True))
            _check_private(database, directory=False)
            key = _signing_key(folder)
            cache = cls(folder, key, fingerprint)
        except CacheError:
            raise
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"--cache: cannot use {folder}: {exc}") from None
        return cache

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.folder / _DATABASE, timeout=30, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS results (uri TEXT PRIMARY KEY, fingerprint TEXT NOT "
            "NULL, identity BLOB NOT NULL, sha256 TEXT, record BLOB NOT NULL, mac BLOB NOT NULL)"
        )
        return db

    def _mac(self, uri: str, identity: bytes, sha256: str | None, record: bytes) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (self.fingerprint.encode(), uri.encode(), identity, (sha256 or "").encode()):
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        mac.update(record)
        return mac.digest()

    # -- lookups ---------------------------------------------------------------------

    def lookup(self, identity: Identity) -> dict[str, Any] | Candidate | None:
        """A remote object's record, a local file's candidate (to confirm by hash), or None."""
        try:
            row = self._reader.execute(
                "SELECT fingerprint, identity, sha256, record, mac FROM results WHERE uri = ?",
                (identity.uri,),
            ).fetchone()
        except sqlite3.Error:
            log.debug("cache lookup failed", exc_info=True)
            return None
        if row is None:
            return None
        fingerprint, stored, sha256, record_bytes, mac = row
        key = identity.key()
        if fingerprint != self.fingerprint or bytes(stored) != key:
            return None
        if not hmac.compare_digest(
            bytes(mac), self._mac(identity.uri, key, sha256, bytes(record_bytes))
        ):
            log.debug("cache entry for %s has a bad signature", identity.uri)
            return None
        try:
            record = orjson.loads(record_bytes)
            FileReport.from_record(record)
        except (ValueError, TypeError, KeyError):
            return None
        if record.get("path") != identity.uri:
            return None
        if identity.local_path is not None:
            if not isinstance(sha256, str) or len(sha256) != 64:
                return None
            return Candidate(identity, sha256, record)
        return dict(record)

    @staticmethod
    def confirm(candidates: Iterable[Candidate]) -> list[bool]:
        """Blocking: does each local file still hash to its entry's SHA-256?"""
        return [_sha256(c.identity.local_path or "") == c.sha256 for c in candidates]

    def replay(self, record: dict[str, Any], fr: FileReport, hashes: bool) -> None:
        """Fill a listed file's report from its entry."""
        cached = FileReport.from_record(record)
        for name in ("status", "status_reason", "format", "scanner", "bytes_scanned", "issues"):
            setattr(fr, name, getattr(cached, name))
        fr.metadata = cached.metadata
        fr.sha256 = fr.digest_source = None
        fr.digests = {}
        if hashes:
            # every digest the first run reported, with where it came from: a replayed
            # report says what the original said
            fr.sha256 = cached.sha256
            fr.digests = dict(cached.digests)
            if cached.sha256:
                fr.digests.setdefault("sha256", cached.sha256)
            fr.digest_source = cached.digest_source
        fr.duration = 0.0
        fr.cached = True
        self.hits += 1

    # -- stores ----------------------------------------------------------------------

    def store(self, identity: Identity, fr: FileReport) -> None:
        if cacheable(fr):
            self._pending.append((identity, fr))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def take(self) -> list[tuple[Identity, FileReport]]:
        taken, self._pending = self._pending, []
        return taken

    def write(self, entries: Sequence[tuple[Identity, FileReport]]) -> None:
        """Blocking: hash what needs hashing and write the entries in one transaction."""
        rows = []
        for identity, fr in entries:
            sha256: str | None = None
            if identity.local_path is not None:
                sha256 = fr.sha256 if fr.sha256 and _stable(identity) else None
                sha256 = sha256 or _sha256(identity.local_path)
                if sha256 is None or not _stable(identity):
                    continue
            record = dict(fr.to_record())
            record["sha256"] = sha256 or record.get("sha256")
            record_bytes = orjson.dumps(record, default=str)
            key = identity.key()
            mac = self._mac(identity.uri, key, sha256, record_bytes)
            rows.append((identity.uri, self.fingerprint, key, sha256, record_bytes, mac))
        if not rows:
            return
        with self._write_lock:
            try:
                if self._writer is None:
                    self._writer = self._connect()
                self._writer.execute("BEGIN IMMEDIATE")
                self._writer.executemany(
                    "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)", rows
                )
                self._writer.execute("COMMIT")
                self.stored += len(rows)
            except sqlite3.Error as exc:
                log.warning("modelaudit: could not write the result cache: %s", exc)
                with contextlib.suppress(sqlite3.Error):
                    if self._writer is not None:
                        self._writer.execute("ROLLBACK")

    def close(self) -> None:
        with self._write_lock:
            for db in (self._reader, self._writer):
                if db is not None:
                    with contextlib.suppress(sqlite3.Error):
                        db.close()
            self._writer = None
