"""JFrog Artifactory files and folders (`https://HOST/artifactory/REPO/PATH`).

The storage API says whether a path is a file or a folder; folders are listed with one deep
list call where the server allows it, else walked through their children, lazily. Tokens come
from JFROG_API_TOKEN (X-JFrog-Art-Api) or JFROG_ACCESS_TOKEN (Bearer) and are sent only to
JFROG_URL's origin: a target URL is anyone's to write, so without JFROG_URL no token is sent
anywhere, and the scan says so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .base import AuthenticationError, FetchError, ObjectRef, Source, UnsupportedTarget
from .http import HttpClient, HttpReader, display_url

_MARK = "/artifactory/"
log = logging.getLogger("modelaudit")


def _jfrog_url() -> str:
    return (os.environ.get("JFROG_URL") or "").rstrip("/")


def is_jfrog_target(target: str) -> bool:
    if not target.startswith(("https://", "http://")):
        return False
    base = _jfrog_url()
    return _MARK in urlsplit(target).path + "/" or bool(base and target.startswith(base + "/"))


def split_target(target: str) -> tuple[str, str, str]:
    """(base ending in the Artifactory context, repo, path inside the repo)."""
    clean = display_url(target).rstrip("/")
    base = _jfrog_url()
    if base and clean.startswith(base + "/"):
        rest = clean[len(base) + 1 :]
        if rest.startswith("artifactory/") and not base.endswith("/artifactory"):
            base, rest = base + "/artifactory", rest[len("artifactory/") :]
    else:
        idx = clean.find(_MARK)
        if idx < 0:
            raise UnsupportedTarget(f"{clean}: not an Artifactory URL")
        base, rest = clean[: idx + len(_MARK) - 1], clean[idx + len(_MARK) :]
    repo, _, path = rest.partition("/")
    if not repo:
        raise UnsupportedTarget(f"{clean}: no Artifactory repository named")
    return base, unquote(repo), unquote(path).strip("/")


def _credentials() -> tuple[dict[str, str], str | None]:
    if token := os.environ.get("JFROG_API_TOKEN"):
        return {"X-JFrog-Art-Api": token}, "JFROG_API_TOKEN"
    if token := os.environ.get("JFROG_ACCESS_TOKEN"):
        return {"Authorization": f"Bearer {token}"}, "JFROG_ACCESS_TOKEN"
    return {}, None


class JFrogSource(Source):
    def __init__(self, target: str, config: Mapping[str, Any] | None = None) -> None:
        self.target = target
        self.base, self.repo, self.path = split_target(target)
        auth, self.variable = _credentials()
        self.withheld = bool(auth) and not _jfrog_url()
        if self.withheld:
            origin = display_url(self.base).rsplit("/artifactory", 1)[0]
            log.warning(
                "%s is set but JFROG_URL is not, so it is not sent to %s; set JFROG_URL to "
                "your Artifactory's URL to use it",
                self.variable,
                origin,
            )
            auth = {}
        self.client = HttpClient(auth, _jfrog_url() or None, self._hint)

    def _hint(self, status: int) -> str:
        if self.withheld:
            return (
                f"{self.variable} was not sent because JFROG_URL is not set; set JFROG_URL to "
                "this Artifactory's URL"
            )
        if self.variable:
            return f"{self.variable} was refused; set it to a token with read access to {self.repo}"
        return (
            f"set JFROG_API_TOKEN or JFROG_ACCESS_TOKEN to a token with read access to {self.repo}"
        )

    def _file_url(self, path: str) -> str:
        return f"{self.base}/{quote(self.repo)}/{quote(path, safe='/')}"

    def _storage_url(self, path: str) -> str:
        tail = f"/{quote(path, safe='/')}" if path else ""
        return f"{self.base}/api/storage/{quote(self.repo)}{tail}"

    def _ref(
        self,
        path: str,
        size: int | None,
        explicit: bool,
        checksums: dict[str, str] | None = None,
    ) -> ObjectRef:
        url = self._file_url(path)
        shown = display_url(url)
        reader = HttpReader(self.client, url, shown, size)
        if checksums:
            reader.digests = dict(checksums)
            reader.digest_source = "published by Artifactory (" + ", ".join(sorted(checksums)) + ")"
        return ObjectRef(
            uri=shown,
            size=size,
            reader=reader,
            explicit=explicit,
            locator={"path": path},
        )

    async def reopen(self, obj: ObjectRef) -> ObjectRef | None:
        path = (obj.locator or {}).get("path")
        if not isinstance(path, str):
            return None
        ref = self._ref(path, obj.size, obj.explicit)
        if ref.uri != obj.uri:
            if ref.reader is not None:
                await ref.reader.aclose()
            return None
        return ref

    async def objects(self) -> AsyncIterator[ObjectRef]:
        shown = display_url(self._file_url(self.path)).rstrip("/")
        info = await self.client.get_json(self._storage_url(self.path), shown)
        if not isinstance(info, dict):
            raise FetchError(f"{shown}: unexpected storage API answer")
        if "children" not in info:
            yield self._ref(self.path, _size(info.get("size")), True, _checksums(info))
            return
        listed = await self._deep_list(shown)
        if listed is not None:
            for path, size, checksums in listed:
                yield self._ref(path, size, False, checksums)
            return
        async for path, size, checksums in self._walk(self.path, info, shown):
            yield self._ref(path, size, False, checksums)

    async def _deep_list(self, shown: str) -> list[tuple[str, int | None, dict[str, str]]] | None:
        """Every file under the folder from one call; None where the server refuses it."""
        try:
            data = await self.client.get_json(
                self._storage_url(self.path) + "?list&deep=1&listFolders=0&listSha256=1", shown
            )
        except AuthenticationError:
            raise
        except FetchError:
            return None
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, list):
            return None
        prefix = f"{self.path}/" if self.path else ""
        out = []
        for item in sorted(files, key=lambda f: str(f.get("uri", ""))):
            if isinstance(item, dict) and not item.get("folder"):
                path = prefix + str(item.get("uri", "")).strip("/")
                out.append((path, _size(item.get("size")), _checksums(item)))
        return out

    async def _walk(
        self, path: str, info: dict[str, Any], shown: str
    ) -> AsyncIterator[tuple[str, int | None, dict[str, str]]]:
        stack = [(path, info)]
        while stack:
            folder, data = stack.pop()
            children = sorted(data.get("children") or [], key=lambda c: str(c.get("uri", "")))
            subfolders = []
            for child in children:
                name = str(child.get("uri", "")).strip("/")
                if not name or name in (".", "..") or "/" in name:
                    continue
                child_path = f"{folder}/{name}" if folder else name
                if child.get("folder"):
                    subfolders.append(child_path)
                    continue
                meta = await self.client.get_json(self._storage_url(child_path), shown)
                if not isinstance(meta, dict):
                    meta = {}
                yield child_path, _size(meta.get("size")), _checksums(meta)
            for sub in reversed(subfolders):
                sub_info = await self.client.get_json(self._storage_url(sub), shown)
                if isinstance(sub_info, dict):
                    stack.append((sub, sub_info))

    async def aclose(self) -> None:
        await self.client.aclose()


_HEX = {"sha256": 64, "sha1": 40, "md5": 32}


def _checksums(info: dict[str, Any]) -> dict[str, str]:
    """Digests Artifactory lists for a file: `checksums` in file info, `sha1`/`sha2` in a
    deep list."""
    found = dict(info.get("checksums") or {}) if isinstance(info.get("checksums"), dict) else {}
    for key, alg in (("sha1", "sha1"), ("sha2", "sha256"), ("sha256", "sha256")):
        if isinstance(info.get(key), str):
            found.setdefault(alg, info[key])
    out = {}
    for alg, length in _HEX.items():
        value = str(found.get(alg) or "").lower()
        if len(value) == length and all(c in "0123456789abcdef" for c in value):
            out[alg] = value
    return out


def _size(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
