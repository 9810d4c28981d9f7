"""DVC pointer files (`MODEL.dvc`): scan the data they point to, verified against their md5.

Each output is looked up in the local cache first (`.dvc/cache/files/md5/XX/REST`, or the
older `.dvc/cache/XX/REST`), then in a remote from `.dvc/config` (+`config.local`): the one
the output names (`remote:`), else the default (`core.remote`), else every configured remote in
turn. It is fetched by the fetcher for that URL (s3://, gs://, https://, a local path); an S3
remote's `endpointurl` and `region` are honoured. Whatever is used is checked against the md5 in
the pointer: a mismatch makes that output an error, never a clean file. Findings name the
output path as the pointer file writes it, next to the `.dvc` file.

`.dvc/config` is part of the scanned repository, so an endpoint it names receives no AWS
credentials unless it is AWS_ENDPOINT_URL itself; `config.local` is the user's own (never
committed), so its endpoint does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from .base import READ_SIZE, Body, FailedReader, ObjectReader, ObjectRef, Source
from .errors import ChecksumMismatch, FetchError, TargetNotFound, UnsupportedTarget

_MD5 = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
_MAX_POINTER = 1 << 20
_MAX_MANIFEST = 64 << 20
_REMOTE_SCHEMES = ("s3://", "gs://", "https://", "http://", "r2://")


@dataclass
class Output:
    shown: str
    md5: str
    size: int | None
    #: DVC 3 (`hash: md5`) keeps objects under files/md5/; DVC 2 directly under the cache.
    modern: bool
    #: the remote this output is pushed to, when the pointer names one
    remote: str | None = None


@dataclass
class Remote:
    name: str
    #: a remote URL without a trailing slash, or an absolute local folder
    url: str
    endpoint: str | None = None
    region: str | None = None
    #: the endpoint comes from `config.local` (the user's machine), not the repository
    trusted: bool = False


def read_config(path: str) -> dict[str, dict[str, str]]:
    """DVC's INI dialect: `['remote "name"']` sections, indented `key = value` lines."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read(_MAX_POINTER).splitlines()
    except OSError:
        return sections
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip().strip("'").strip()
            name = re.sub(r'\s+"?([^"]*)"?$', r" \1", name) if " " in name else name
            current = sections.setdefault(name, {})
        elif "=" in line and current is not None:
            key, _, value = line.partition("=")
            current[key.strip().lower()] = value.strip()
    return sections


def _find_repo(start: str) -> str | None:
    folder = os.path.abspath(start)
    while True:
        if os.path.isdir(os.path.join(folder, ".dvc")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _object_path(md5: str, modern: bool) -> str:
    tail = f"{md5[:2]}/{md5[2:]}"
    return f"files/md5/{tail}" if modern else tail


def md5_file(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parse_pointer(path: str) -> list[Output]:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            # BaseLoader: no tags at all, and every scalar stays a string, so an all-digit md5
            # is not turned into a number.
            data = yaml.load(f.read(_MAX_POINTER), Loader=yaml.BaseLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UnsupportedTarget(f"{path}: not a readable DVC pointer file ({exc})") from None
    outs = data.get("outs") if isinstance(data, dict) else None
    if not isinstance(outs, list) or not outs:
        raise UnsupportedTarget(f"{path}: a DVC pointer file needs an `outs` list")
    folder = os.path.dirname(path)
    result = []
    for out in outs:
        if not isinstance(out, dict) or not isinstance(out.get("path"), str):
            raise UnsupportedTarget(f"{path}: an output has no path")
        md5 = str(out.get("md5") or "").lower()
        if not _MD5.match(md5):
            raise UnsupportedTarget(f"{path}: output {out['path']} has no valid md5")
        size = str(out.get("size", ""))
        remote = out.get("remote")
        result.append(
            Output(
                shown=os.path.join(folder, out["path"]),
                md5=md5,
                size=int(size) if size.isdigit() else None,
                modern=str(out.get("hash", "")).lower() == "md5",
                remote=remote if isinstance(remote, str) and remote else None,
            )
        )
    return result


class VerifiedReader(ObjectReader):
    """Downloads a remote output once, checking its md5, then serves reads from that copy."""

    def __init__(self, inner: ObjectReader, md5: str, shown: str) -> None:
        self.inner = inner
        self.md5 = md5
        self.shown = shown
        self.size = inner.size
        self._path: str | None = None
        self._folder: str | None = None
        self._lock = anyio.Lock()

    async def _fetch(self) -> str:
        async with self._lock:
            if self._path is not None:
                return self._path
            self._folder = tempfile.mkdtemp(prefix="modelaudit-dvc-")
            path = os.path.join(self._folder, "object")
            digest = hashlib.md5(usedforsecurity=False)
            async with (
                await anyio.open_file(path, "wb") as out,
                aclosing(self.inner.stream()) as chunks,
            ):
                async for chunk in chunks:
                    digest.update(chunk)
                    await out.write(chunk)
            got = digest.hexdigest()
            if got != self.md5:
                raise ChecksumMismatch(
                    f"{self.shown}: md5 mismatch: the .dvc file records {self.md5}, "
                    f"the remote copy has {got}"
                )
            self._path = path
            return path

    @asynccontextmanager
    async def open(self, start: int, end: int | None) -> AsyncIterator[Body]:
        path = await self._fetch()
        async with await anyio.open_file(path, "rb") as f:
            await f.seek(start)

            async def chunks() -> AsyncIterator[bytes]:
                left = None if end is None else end - start
                while left is None or left > 0:
                    chunk = await f.read(READ_SIZE if left is None else min(READ_SIZE, left))
                    if not chunk:
                        return
                    if left is not None:
                        left -= len(chunk)
                    yield chunk

            yield Body(start, chunks())

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)


class DvcSource(Source):
    def __init__(self, target: str, config: Mapping[str, Any] | None = None) -> None:
        self.target = target
        self.config = dict(config or {})
        self.repo = _find_repo(os.path.dirname(os.path.abspath(target)))
        settings: dict[str, dict[str, str]] = {}
        local: dict[str, dict[str, str]] = {}
        if self.repo:
            settings = read_config(os.path.join(self.repo, ".dvc", "config"))
            local = read_config(os.path.join(self.repo, ".dvc", "config.local"))
            for section, values in local.items():
                settings.setdefault(section, {}).update(values)
        self.settings = settings
        self.cache = self._cache_dir()
        self.remotes = self._remotes(local)
        self.default = self.settings.get("core", {}).get("remote")

    def _cache_dir(self) -> str | None:
        if not self.repo:
            return None
        configured = self.settings.get("cache", {}).get("dir")
        dvc_dir = os.path.join(self.repo, ".dvc")
        return os.path.normpath(os.path.join(dvc_dir, configured or "cache"))

    def _remotes(self, local: dict[str, dict[str, str]]) -> dict[str, Remote]:
        """Every configured remote, in the order the configuration lists them."""
        found: dict[str, Remote] = {}
        if not self.repo:
            return found
        for section, values in self.settings.items():
            if not section.startswith("remote "):
                continue
            name = section[len("remote ") :].strip()
            url = values.get("url")
            if not name or not url:
                continue
            if url.startswith(_REMOTE_SCHEMES):
                url = url.rstrip("/")
            elif "://" not in url:
                url = os.path.normpath(os.path.join(self.repo, ".dvc", os.path.expanduser(url)))
            endpoint = values.get("endpointurl") or None
            trusted = bool(endpoint) and local.get(section, {}).get("endpointurl") == endpoint
            found[name] = Remote(name, url, endpoint, values.get("region") or None, trusted)
        return found

    def _candidates(self, named: str | None, shown: str) -> list[Remote]:
        """The remotes to look in: the output's own, else the default, else all of them."""
        wanted = named or self.default
        if wanted:
            if wanted not in self.remotes:
                raise TargetNotFound(
                    f"{shown}: not in the local DVC cache, and remote {wanted!r} is not in "
                    ".dvc/config"
                )
            return [self.remotes[wanted]]
        if not self.remotes:
            raise TargetNotFound(
                f"{shown}: not in the local DVC cache and no remote in .dvc/config"
            )
        return list(self.remotes.values())

    def _cached(self, md5: str, modern: bool) -> Iterator[str]:
        if self.cache:
            for layout in (modern, not modern):
                candidate = os.path.join(self.cache, _object_path(md5, layout))
                if os.path.isfile(candidate):
                    yield candidate

    def _fetcher_config(self, remote: Remote) -> dict[str, Any]:
        config = dict(self.config)
        if remote.url.startswith(("s3://", "r2://")):
            if remote.endpoint:
                config["s3_endpoint_url"] = remote.endpoint
                config["s3_endpoint_trusted"] = remote.trusted
            if remote.region:
                config["s3_region"] = remote.region
        return config

    async def _remote_object(
        self, md5: str, modern: bool, shown: str, named: str | None = None
    ) -> ObjectRef:
        """The remote copy of `md5`, as the fetcher for the remote's URL sees it."""
        from . import resolve

        missing: FetchError | None = None
        failed: FetchError | None = None
        remotes = self._candidates(named, shown)
        for remote in remotes:
            if "://" in remote.url and not remote.url.startswith(_REMOTE_SCHEMES):
                failed = failed or UnsupportedTarget(
                    f"{shown}: remote {remote.url.split('://')[0]}:// is not supported"
                )
                continue
            for layout in (modern, not modern):
                relative = _object_path(md5, layout)
                where = (
                    f"{remote.url}/{relative}"
                    if "://" in remote.url
                    else os.path.join(remote.url, relative)
                )
                try:
                    source = resolve(where, self._fetcher_config(remote))
                    try:
                        async for obj in source.objects():
                            return obj
                    finally:
                        await source.aclose()
                except TargetNotFound as exc:
                    missing = exc
                except FetchError as exc:
                    # Another remote may still have it; this error is reported if none does.
                    failed = failed or exc
                    break
        if failed is not None:
            raise failed
        names = ", ".join(r.name for r in remotes)
        raise TargetNotFound(
            f"{shown}: not in the local DVC cache nor in remote {names}"
        ) from missing

    async def _verified(
        self, md5: str, modern: bool, shown: str, size: int | None, remote: str | None = None
    ) -> ObjectRef:
        """An object for one file output: a verified cache hit, else the remote copy."""
        mismatch: str | None = None
        expected = md5.removesuffix(".dir")
        for path in self._cached(md5, modern):
            got = await anyio.to_thread.run_sync(md5_file, path)
            if got == expected:
                return ObjectRef(uri=shown, size=os.path.getsize(path), local_path=path)
            mismatch = got
        try:
            obj = await self._remote_object(md5, modern, shown, remote)
        except FetchError as exc:
            error = exc
            if mismatch is not None:
                error = ChecksumMismatch(
                    f"{shown}: md5 mismatch: the .dvc file records {md5}, the cached copy "
                    f"has {mismatch}"
                )
            return ObjectRef(uri=shown, size=size, reader=FailedReader(error))
        if obj.local_path is not None:
            got = await anyio.to_thread.run_sync(md5_file, obj.local_path)
            if got != expected:
                error = ChecksumMismatch(
                    f"{shown}: md5 mismatch: the .dvc file records {md5}, the remote copy has {got}"
                )
                return ObjectRef(uri=shown, size=size, reader=FailedReader(error))
            return ObjectRef(uri=shown, size=obj.size, local_path=obj.local_path)
        assert obj.reader is not None
        return ObjectRef(
            uri=shown, size=obj.size, reader=VerifiedReader(obj.reader, expected, shown)
        )

    async def _manifest(self, out: Output) -> list[tuple[str, str]]:
        """(md5, relpath) of every file in a directory output, from its verified `.dir` object."""
        ref = await self._verified(out.md5, out.modern, out.shown, None, out.remote)
        if ref.local_path is not None:
            with open(ref.local_path, "rb") as f:
                data = f.read(_MAX_MANIFEST)
        else:
            assert ref.reader is not None
            try:
                async with aclosing(ref.reader.stream()) as chunks:
                    parts = [chunk async for chunk in chunks]
            finally:
                await ref.reader.aclose()
            data = b"".join(parts)
        try:
            entries = json.loads(data)
        except ValueError:
            raise FetchError(f"{out.shown}: the DVC directory listing is not valid JSON") from None
        result = []
        for entry in entries if isinstance(entries, list) else ():
            md5 = str(entry.get("md5", "")).lower() if isinstance(entry, dict) else ""
            rel = entry.get("relpath") if isinstance(entry, dict) else None
            if _MD5.match(md5) and not md5.endswith(".dir") and isinstance(rel, str):
                result.append((md5, rel))
        return result

    async def objects(self) -> AsyncIterator[ObjectRef]:
        outputs = await anyio.to_thread.run_sync(parse_pointer, self.target)
        for out in outputs:
            if not out.md5.endswith(".dir"):
                yield await self._verified(out.md5, out.modern, out.shown, out.size, out.remote)
                continue
            try:
                files = await self._manifest(out)
            except FetchError as exc:
                yield ObjectRef(uri=out.shown, reader=FailedReader(exc))
                continue
            for md5, rel in sorted(files, key=lambda item: item[1]):
                shown = os.path.join(out.shown, rel)
                yield await self._verified(md5, out.modern, shown, None, out.remote)
