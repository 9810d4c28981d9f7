"""MLflow Model Registry (`models:/NAME/VERSION`, `models:/NAME/STAGE`, `models:/NAME@ALIAS`).

The version is resolved through the tracking server's REST API, then its download URI decides
where the bytes come from: artifacts proxied by the server (`mlflow-artifacts:`) are listed and
read through it; a bucket URI (s3://, gs://, https://) is handed to that store's fetcher.
Credentials (MLFLOW_TRACKING_USERNAME/PASSWORD, or MLFLOW_TRACKING_TOKEN) go only to the
tracking server's origin.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from .base import (
    AuthenticationError,
    FetchError,
    ObjectRef,
    Source,
    TargetNotFound,
    UnsupportedTarget,
)
from .http import HttpClient, HttpReader

_API = "/api/2.0/mlflow"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
_DELEGATED = ("s3://", "r2://", "gs://", "https://", "http://")


def parse_target(target: str) -> tuple[str, str, str]:
    """`models:/NAME/REF` or `models:/NAME@ALIAS` -> (name, kind, ref), kind in version|stage|alias."""
    rest = target[len("models:/") :].strip("/")
    if "@" in rest and "/" not in rest.split("@", 1)[1]:
        name, alias = rest.rsplit("@", 1)
        if name and alias:
            return name, "alias", alias
    name, _, ref = rest.rpartition("/")
    if not name or not ref:
        raise UnsupportedTarget(
            f"{target}: expected models:/NAME/VERSION, models:/NAME/STAGE or models:/NAME@ALIAS"
        )
    return name, ("version" if ref.isdigit() else "stage"), ref


def _credentials() -> tuple[dict[str, str], str | None]:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if user and password:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}, "MLFLOW_TRACKING_USERNAME/PASSWORD"
    if bearer := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {bearer}"}, "MLFLOW_TRACKING_TOKEN"
    return {}, None


class MlflowSource(Source):
    def __init__(self, target: str, config: Mapping[str, Any] | None = None) -> None:
        self.target = target
        self.config = dict(config or {})
        self.name, self.kind, self.ref = parse_target(target)
        self.base = (os.environ.get("MLFLOW_TRACKING_URI") or "").rstrip("/")
        auth, self.variable = _credentials()
        self.client = HttpClient(auth, self.base or None, self._hint)
        self._inner: Source | None = None

    def _hint(self, status: int) -> str:
        if status == 403:
            return f"model {self.name} does not exist or the MLflow user may not read it"
        if self.variable:
            return f"the credentials in {self.variable} were refused"
        return (
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
        )

    def _check_server(self) -> None:
        if not self.base:
            raise AuthenticationError(
                f"{self.target}: set MLFLOW_TRACKING_URI to your MLflow tracking server"
            )
        if not self.base.startswith(("http://", "https://")):
            raise UnsupportedTarget(
                f"{self.target}: MLFLOW_TRACKING_URI must be an http(s) tracking server"
            )

    async def _api(self, endpoint: str, params: Mapping[str, str], what: str) -> dict[str, Any]:
        response = await self.client.send(
            "GET",
            f"{self.base}{_API}/{endpoint}",
            self.target,
            params=dict(params),
            ok=(200, 400, 404),
        )
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            raise FetchError(f"{self.target}: the tracking server sent invalid JSON") from None
        if response.status_code == 200 and isinstance(data, dict):
            return data
        code = data.get("error_code", "") if isinstance(data, dict) else ""
        message = str(data.get("message", "")) if isinstance(data, dict) else ""
        if (
            response.status_code == 404
            or code == "RESOURCE_DOES_NOT_EXIST"
            or "not found" in message
        ):
            raise TargetNotFound(f"{self.target}: {what} not found")
        raise FetchError(
            f"{self.target}: the tracking server refused the request ({code or 'HTTP 400'})"
        )

    async def resolve_version(self) -> str:
        if self.kind == "version":
            await self._api(
                "model-versions/get", {"name": self.name, "version": self.ref}, "version"
            )
            return self.ref
        if self.kind == "alias":
            data = await self._api(
                "registered-models/alias", {"name": self.name, "alias": self.ref}, "alias"
            )
            return str(data["model_version"]["version"])
        params = {"name": self.name}
        if self.ref.lower() != "latest":
            params["stages"] = self.ref
        data = await self._api("registered-models/get-latest-versions", params, "model")
        versions = [int(v["version"]) for v in data.get("model_versions", ())]
        if self.ref.lower() != "latest":
            versions = [
                int(v["version"])
                for v in data.get("model_versions", ())
                if str(v.get("current_stage", "")).lower() == self.ref.lower()
            ]
        if not versions:
            raise TargetNotFound(f"{self.target}: no version in stage {self.ref}")
        return str(max(versions))

    async def objects(self) -> AsyncIterator[ObjectRef]:
        self._check_server()
        version = await self.resolve_version()
        data = await self._api(
            "model-versions/get-download-uri", {"name": self.name, "version": version}, "version"
        )
        artifact_uri = str(data.get("artifact_uri", ""))
        if artifact_uri.startswith("mlflow-artifacts:"):
            path = urlsplit(artifact_uri).path.strip("/")
            async for obj in self._proxied(path, f"models:/{self.name}/{version}"):
                yield obj
            return
        if artifact_uri.startswith(_DELEGATED):
            from . import resolve

            self._inner = resolve(artifact_uri, self.config)
            root = artifact_uri.rstrip("/")
            async for obj in self._inner.objects():
                # Named like proxied artifacts, whichever store holds them.
                rel = obj.uri[len(root) + 1 :] if obj.uri.startswith(root + "/") else obj.name
                obj.uri = f"models:/{self.name}/{version}/{rel}"
                yield obj
            return
        scheme = artifact_uri.split(":", 1)[0] or "local"
        raise UnsupportedTarget(
            f"{self.target}: its artifacts are in a {scheme}: store the scanner cannot reach; "
            "serve them through the tracking server (mlflow server --serve-artifacts)"
        )

    def _download_url(self, path: str) -> str:
        return f"{self.base}{_ARTIFACTS}/{quote(path)}"

    async def _list(self, path: str) -> list[dict[str, Any]]:
        data = await self.client.get_json(f"{self.base}{_ARTIFACTS}", self.target, {"path": path})
        files = data.get("files", []) if isinstance(data, dict) else []
        return [f for f in files if isinstance(f, dict) and f.get("path")]

    async def _proxied(self, root: str, shown_root: str) -> AsyncIterator[ObjectRef]:
        """Depth-first over the artifact tree, one listing call per folder, lazily."""
        found = False
        stack = [""]
        while stack:
            rel = stack.pop()
            entries = await self._list(f"{root}/{rel}".rstrip("/"))
            subdirs = []
            for entry in sorted(entries, key=lambda e: str(e["path"])):
                child = f"{rel}/{entry['path'].rsplit('/', 1)[-1]}".lstrip("/")
                if entry.get("is_dir"):
                    subdirs.append(child)
                    continue
                found = True
                size = entry.get("file_size")
                shown = f"{shown_root}/{child}"
                yield ObjectRef(
                    uri=shown,
                    size=int(size) if size is not None else None,
                    reader=HttpReader(self.client, self._download_url(f"{root}/{child}"), shown),
                )
            stack.extend(reversed(subdirs))
        if not found:
            raise TargetNotFound(f"{self.target}: the model version has no artifacts")

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()
        await self.client.aclose()
