"""Hugging Face Hub repos, folders and files, models and datasets.

Metadata and listings come from huggingface_hub (run in threads; the tree listing is paged
lazily); bytes come through `HttpReader` from `{endpoint}/{repo}/resolve/{commit}/{path}`,
pinned to the commit the repo info named, so every file of one scan is from one revision.
The Hub answers large files with a redirect to a CDN; the token is sent to the endpoint only.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import anyio.to_thread

from .base import (
    AuthenticationError,
    FetchError,
    ObjectRef,
    Source,
    TargetNotFound,
    TransientFetchError,
    UnsupportedTarget,
)
from .http import HttpClient, HttpReader, origin

DEFAULT_ENDPOINT = "https://huggingface.co"
_HUB_HOSTS = frozenset({"huggingface.co", "www.huggingface.co", "hf.co"})
_URL_VERBS = frozenset({"tree", "blob", "resolve"})
_BATCH = 64
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
TOKEN_HINT = "set HF_TOKEN to a token with access to this repo"


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or None


def is_huggingface_target(target: str) -> bool:
    if target.startswith("hf://"):
        return True
    if not target.startswith(("https://", "http://")):
        return False
    host = (urlsplit(target).hostname or "").lower()
    if host in _HUB_HOSTS:
        return True
    ours = origin(endpoint())
    return origin(target) == ours and ours[1] not in ("", *_HUB_HOSTS)


@dataclass
class HubTarget:
    repo_id: str
    repo_type: str
    revision: str | None
    path: str
    #: "repo", "dir", "file", or "auto" (hf:// paths may name either)
    kind: str
    #: how findings name files: "hf://" or the URL's origin
    base: str

    def shown(self, path: str = "") -> str:
        kind = "datasets/" if self.repo_type == "dataset" else ""
        if self.base == "hf://":
            rev = f"@{self.revision}" if self.revision else ""
            tail = f"/{path}" if path else ""
            return f"hf://{kind}{self.repo_id}{rev}{tail}"
        if not path:
            return f"{self.base}/{kind}{self.repo_id}"
        return f"{self.base}/{kind}{self.repo_id}/blob/{self.revision or 'main'}/{path}"


def _take_revision(segs: list[str]) -> tuple[str, list[str]]:
    """A revision from path segments; `refs/pr/N` and `refs/convert/X` span three."""
    if segs[0] == "refs" and len(segs) >= 3:
        return "/".join(segs[:3]), segs[3:]
    return segs[0], segs[1:]


def parse_target(target: str) -> HubTarget:
    if target.startswith("hf://"):
        body, base = target[len("hf://") :], "hf://"
    else:
        parts = urlsplit(target)
        body = parts.path
        base = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
    segs = [unquote(s) for s in body.strip("/").split("/") if s]
    repo_type = "model"
    if segs and segs[0] in ("datasets", "models", "spaces"):
        if segs[0] == "spaces":
            raise UnsupportedTarget(f"{target}: Spaces are not model repositories")
        repo_type = "dataset" if segs[0] == "datasets" else "model"
        segs = segs[1:]
    if not segs:
        raise UnsupportedTarget(f"{target}: no repository named")
    n = 2 if len(segs) >= 2 and segs[1] not in _URL_VERBS and "@" not in segs[0] else 1
    repo_segs, rest = segs[:n], segs[n:]
    revision: str | None = None
    if base == "hf://":
        if "@" in repo_segs[-1]:
            name, rev_first = repo_segs[-1].split("@", 1)
            repo_segs[-1] = name
            revision, rest = _take_revision([rev_first, *rest])
        kind = "auto" if rest else "repo"
        path = "/".join(rest)
    elif rest and rest[0] in _URL_VERBS and len(rest) >= 2:
        revision, tail = _take_revision(rest[1:])
        path = "/".join(tail)
        kind = ("dir" if path else "repo") if rest[0] == "tree" else "file"
        if kind == "file" and not path:
            raise UnsupportedTarget(f"{target}: no file named after the revision")
    elif rest:
        raise UnsupportedTarget(f"{target}: not a repository, /tree/, /blob/ or /resolve/ URL")
    else:
        kind, path = "repo", ""
    repo_id = "/".join(repo_segs)
    if not repo_id or any(s in (".", "..") for s in repo_segs):
        raise UnsupportedTarget(f"{target}: not a valid repository id")
    return HubTarget(repo_id, repo_type, revision, path, kind, base)


def _lfs_sha256(entry: Any) -> str | None:
    """The sha256 the Hub lists for an LFS file (its object id), lowercase hex."""
    lfs = getattr(entry, "lfs", None)
    value = getattr(lfs, "sha256", None) or (lfs.get("sha256") if isinstance(lfs, dict) else None)
    return str(value).lower() if value else None


def _auth_hint(status: int, token: str | None) -> str:
    """What a 401 or 403 means for the token configured (or not)."""
    if not token:
        return f"HTTP {status}; {TOKEN_HINT}"
    if status == 401:
        return f"401 Unauthorized; HF_TOKEN was refused, {TOKEN_HINT}"
    return f"403 Forbidden; HF_TOKEN has no access to this repo, {TOKEN_HINT}"


def _hub_error(exc: Exception, shown: str, token: str | None) -> FetchError:
    """One line naming the cause and, for access problems, the variable to set."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(exc, GatedRepoError):
        if token:
            return AuthenticationError(
                f"{shown}: gated repo and HF_TOKEN has no access; request access on the Hub"
            )
        return AuthenticationError(f"{shown}: gated repo ({status}); {TOKEN_HINT}")
    if isinstance(exc, RevisionNotFoundError):
        return TargetNotFound(f"{shown}: revision not found")
    if isinstance(exc, EntryNotFoundError):
        return TargetNotFound(f"{shown}: no such file in the repo")
    if isinstance(exc, RepositoryNotFoundError):
        message = response.headers.get("x-error-message", "") if response is not None else ""
        if status == 401 and token and "Invalid credentials" in message:
            return AuthenticationError(
                f"{shown}: 401 Unauthorized; HF_TOKEN was refused, {TOKEN_HINT}"
            )
        if status == 401 and not token:
            return AuthenticationError(
                f"{shown}: 401 Unauthorized (private or missing repo); {TOKEN_HINT}"
            )
        if token:
            return TargetNotFound(f"{shown}: repository not found, or HF_TOKEN has no access to it")
        return TargetNotFound(f"{shown}: repository not found")
    if isinstance(exc, HfHubHTTPError) and status is not None:
        if status in (401, 403):
            return AuthenticationError(f"{shown}: {_auth_hint(status, token)}")
        if status == 429 or status >= 500:
            return TransientFetchError(f"{shown}: the Hub answered HTTP {status}")
        return FetchError(f"{shown}: the Hub answered HTTP {status}")
    return FetchError(f"{shown}: cannot reach the Hub ({type(exc).__name__})")


class HuggingFaceSource(Source):
    def __init__(self, target: str, config: Mapping[str, Any] | None = None) -> None:
        self.target = target
        self.hub = parse_target(target)
        self.endpoint = endpoint()
        self.token = _token()
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.client = HttpClient(auth, self.endpoint, self._hint)
        self._api: Any = None

    def _hint(self, status: int) -> str:
        return _auth_hint(status, self.token).split("; ", 1)[1]

    async def _hub_api(self) -> Any:
        """huggingface_hub's client, imported and built in a thread (its import alone would
        stall the event loop)."""
        if self._api is None:

            def build() -> Any:
                from huggingface_hub import HfApi

                return HfApi(endpoint=self.endpoint, token=self.token or False)

            self._api = await anyio.to_thread.run_sync(build)
        return self._api

    async def _call(self, shown: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            except FetchError:
                raise
            except Exception as exc:
                raise _hub_error(exc, shown, self.token) from None

        return await anyio.to_thread.run_sync(run)

    def _ref(
        self,
        path: str,
        size: int | None,
        commit: str,
        explicit: bool,
        sha256: str | None = None,
    ) -> ObjectRef:
        hub = self.hub
        kind = "datasets/" if hub.repo_type == "dataset" else ""
        url = (
            f"{self.endpoint}/{kind}{hub.repo_id}/resolve/{quote(commit, safe='')}/"
            f"{quote(path, safe='/')}"
        )
        shown = hub.shown(path)
        reader = HttpReader(self.client, url, shown, size)
        locator: dict[str, Any] = {"path": path, "commit": commit}
        if sha256 and _SHA256.fullmatch(sha256):
            reader.digests = {"sha256": sha256}
            reader.digest_source = "sha256 published by the Hugging Face Hub (LFS object id)"
            reader.redirects_expected = True  # LFS files are served from the CDN
            locator["sha256"] = sha256
        return ObjectRef(
            uri=shown,
            size=size,
            # A commit id pins every byte of the file (the URL reads at that commit).
            etag=f"commit:{commit}" if _COMMIT.fullmatch(commit) else None,
            reader=reader,
            explicit=explicit,
            # --blacklist matches the repository too, not only the file's own name.
            metadata={"model_names": [hub.repo_id]},
            locator=locator,
        )

    async def reopen(self, obj: ObjectRef) -> ObjectRef | None:
        locator = obj.locator or {}
        path, commit = locator.get("path"), locator.get("commit")
        if not isinstance(path, str) or not isinstance(commit, str):
            return None
        sha256 = locator.get("sha256")
        ref = self._ref(
            path, obj.size, commit, obj.explicit, sha256 if isinstance(sha256, str) else None
        )
        if ref.uri != obj.uri:
            if ref.reader is not None:
                await ref.reader.aclose()
            return None
        return ref

    async def objects(self) -> AsyncIterator[ObjectRef]:
        hub = self.hub
        api = await self._hub_api()
        repo_shown = hub.shown()
        info = await self._call(
            repo_shown, api.repo_info, hub.repo_id, repo_type=hub.repo_type, revision=hub.revision
        )
        commit = getattr(info, "sha", None) or hub.revision or "main"
        folder: str | None = None
        if hub.kind in ("file", "auto"):
            from huggingface_hub import RepoFile

            found = await self._call(
                hub.shown(hub.path),
                api.get_paths_info,
                hub.repo_id,
                [hub.path],
                revision=commit,
                repo_type=hub.repo_type,
            )
            if not found:
                raise TargetNotFound(f"{hub.shown(hub.path)}: not found in the repo")
            entry = found[0]
            if isinstance(entry, RepoFile):
                yield self._ref(entry.path, entry.size, commit, True, _lfs_sha256(entry))
                return
            if hub.kind == "file":
                raise TargetNotFound(f"{hub.shown(hub.path)}: is a folder, not a file")
            folder = hub.path
        elif hub.kind == "dir":
            folder = hub.path
        async for path, size, sha256 in self._listing(commit, folder):
            yield self._ref(path, size, commit, False, sha256)

    async def _listing(
        self, commit: str, folder: str | None
    ) -> AsyncIterator[tuple[str, int, str | None]]:
        api = await self._hub_api()
        from huggingface_hub import RepoFile

        hub = self.hub
        entries: Iterator[Any] = iter(
            api.list_repo_tree(
                hub.repo_id,
                path_in_repo=folder or None,
                recursive=True,
                revision=commit,
                repo_type=hub.repo_type,
            )
        )

        failed: list[BaseException] = []

        def next_batch() -> list[tuple[str, int, str | None]]:
            """Up to _BATCH files; a page that fails after some were listed is reported on the
            next call, so the files listed before it are still scanned."""
            if failed:
                raise failed[0]
            batch: list[tuple[str, int, str | None]] = []
            try:
                for entry in entries:
                    if isinstance(entry, RepoFile):
                        batch.append((entry.path, entry.size, _lfs_sha256(entry)))
                        if len(batch) >= _BATCH:
                            break
            except Exception as exc:
                if not batch:
                    raise
                failed.append(exc)
            return batch

        shown = hub.shown(folder or "")
        while batch := await self._call(shown, next_batch):
            for item in batch:
                yield item

    async def aclose(self) -> None:
        await self.client.aclose()
