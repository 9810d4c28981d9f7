"""Google Cloud Storage (`gs://BUCKET/KEY-or-PREFIX`) via gcloud-aio-storage.

Auth comes only from GOOGLE_APPLICATION_CREDENTIALS (a service-account key file). Without it,
requests are anonymous (public buckets), so the library never falls back to the metadata
server. STORAGE_EMULATOR_HOST points at an emulator (no auth); GCS_ENDPOINT_URL points at
another authenticated endpoint (Private Service Connect). Reads are pinned to the generation
seen at listing time (`ifGenerationMatch`), so a replaced object fails with `ObjectChanged`.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread

from . import backoff
from .base import READ_SIZE, Body, ObjectReader, ObjectRef, Source, b64_to_hex
from .errors import (
    AuthenticationError,
    FetchError,
    ObjectChanged,
    TargetNotFound,
    TransientFetchError,
    UnsupportedTarget,
)

_CREDS = "GOOGLE_APPLICATION_CREDENTIALS"
_PAGE = "1000"


def parse_uri(target: str) -> tuple[str, str]:
    rest = target[len("gs://") :]
    bucket, _, key = rest.partition("/")
    if not target.startswith("gs://") or not bucket:
        raise UnsupportedTarget(f"{target}: expected gs://BUCKET/KEY-or-PREFIX")
    return bucket, key


class _TokenError(Exception):
    """The service-account key could not be turned into an access token."""


def _storage(creds: str | None, emulator: str | None, endpoint: str | None) -> Any:
    from gcloud.aio.storage import Storage

    class _Storage(Storage):  # type: ignore[misc]
        async def _headers(self) -> dict[str, str]:
            if creds is None:
                return {}
            try:
                headers: dict[str, str] = await super()._headers()
            except Exception as exc:
                raise _TokenError(type(exc).__name__) from None
            return headers

    if emulator:
        root = emulator if emulator.startswith("http") else f"http://{emulator}"
        return _Storage(api_root=root.rstrip("/"), api_is_dev=True, token=_NoToken())  # type: ignore[arg-type]
    root = endpoint.rstrip("/") if endpoint else "https://www.googleapis.com"
    if creds is None:
        return _Storage(api_root=root, api_is_dev=False, token=_NoToken())  # type: ignore[arg-type]
    return _Storage(service_file=creds, api_root=root, api_is_dev=False)


class _NoToken:
    """Stands in for gcloud's Token when requests are anonymous: it is never asked."""

    async def get(self) -> str:
        raise _TokenError("anonymous")

    async def close(self) -> None:
        return None


def is_transient(exc: BaseException) -> bool:
    import aiohttp

    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in (408, 429) or exc.status >= 500
    return isinstance(exc, aiohttp.ClientError | OSError | asyncio.TimeoutError)


class GcsSource(Source):
    def __init__(self, target: str, config: Mapping[str, Any] | None = None) -> None:
        self.target = target
        self.bucket, self.key = parse_uri(target)
        env = os.environ
        self.emulator = env.get("STORAGE_EMULATOR_HOST") or None
        self.endpoint = env.get("GCS_ENDPOINT_URL") or None
        self.creds = None if self.emulator else (env.get(_CREDS) or None)
        self._page_size = str(int((config or {}).get("list_page_size", _PAGE)))
        self._storage: Any = None
        self.shared = backoff.SharedClient(self._close)

    async def _close(self) -> None:
        if self._storage is not None:
            await self._storage.close()

    async def storage(self) -> Any:
        """The gcloud-aio client (its import runs in a thread)."""
        if self._storage is None:
            if self.creds is not None and not os.path.isfile(self.creds):
                raise AuthenticationError(
                    f"{self.target}: {_CREDS} does not point to a readable key file"
                )
            # The import is the slow part; the client itself must be built on the loop.
            await anyio.to_thread.run_sync(importlib.import_module, "gcloud.aio.storage")
            try:
                storage = _storage(self.creds, self.emulator, self.endpoint)
            except (ValueError, KeyError, OSError):
                raise AuthenticationError(
                    f"{self.target}: {_CREDS} is not a valid service-account key file"
                ) from None
            if self._storage is None:
                self._storage = storage
            else:
                await storage.close()
        return self._storage

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{key}"

    def error(self, exc: BaseException, uri: str) -> FetchError:
        import aiohttp

        if isinstance(exc, FetchError):
            return exc
        if isinstance(exc, _TokenError):
            return AuthenticationError(
                f"{uri}: could not get an access token with the key in {_CREDS}"
            )
        if isinstance(exc, aiohttp.ClientResponseError):
            status = exc.status
            if status in (401, 403):
                if self.creds is None:
                    return AuthenticationError(
                        f"{uri}: access denied without credentials; set {_CREDS} to a "
                        "service-account key file"
                    )
                return AuthenticationError(
                    f"{uri}: access denied for the service account in {_CREDS}; it needs "
                    "storage.objects.get and storage.objects.list"
                )
            if status == 404:
                return TargetNotFound(f"{uri}: no such object or bucket")
            if status == 412:
                return ObjectChanged(f"{uri}: the object changed while being read (generation)")
            if is_transient(exc):
                return TransientFetchError(f"{uri}: HTTP {status} persisted after retries")
            return FetchError(f"{uri}: storage error (HTTP {status})")
        return TransientFetchError(
            f"{uri}: cannot reach the storage endpoint ({type(exc).__name__})"
        )

    def _ref(self, item: Mapping[str, Any], explicit: bool) -> ObjectRef:
        key = str(item["name"])
        size = int(item.get("size", 0))
        generation = str(item["generation"]) if item.get("generation") else None
        reader = GcsReader(self, key, generation, size)
        digests = {
            alg: value
            for alg, field in (("md5", "md5Hash"), ("crc32c", "crc32c"))
            if (value := b64_to_hex(item.get(field))) is not None
        }
        if digests:
            reader.digests = digests
            reader.digest_source = " and ".join(
                f"{alg} from the GCS object's {field}"
                for alg, field in (("md5", "md5Hash"), ("crc32c", "crc32c"))
                if alg in digests
            )
        return ObjectRef(
            uri=self.uri(key),
            size=size,
            etag=item.get("etag") or generation,
            reader=reader,
            explicit=explicit,
            locator={"key": key, "generation": generation, "digests": digests},
        )

    async def reopen(self, obj: ObjectRef) -> ObjectRef | None:
        locator = obj.locator or {}
        key, generation = locator.get("key"), locator.get("generation")
        if not isinstance(key, str) or self.uri(key) != obj.uri or obj.size is None:
            return None
        if generation is not None and not isinstance(generation, str):
            return None
        reader = GcsReader(self, key, generation, obj.size)
        digests = locator.get("digests")
        if isinstance(digests, dict) and digests:
            reader.digests = {str(k): str(v) for k, v in digests.items()}
            reader.digest_source = "published by GCS (" + ", ".join(sorted(reader.digests)) + ")"
        return ObjectRef(
            uri=obj.uri,
            size=obj.size,
            etag=obj.etag,
            reader=reader,
            explicit=obj.explicit,
            metadata=dict(obj.metadata),
            locator=obj.locator,
        )

    async def objects(self) -> AsyncIterator[ObjectRef]:
        import aiohttp

        storage = await self.storage()
        if self.key and not self.key.endswith("/"):
            try:
                meta = await backoff.retry(
                    lambda: storage.download_metadata(self.bucket, self.key), is_transient
                )
            except aiohttp.ClientResponseError as exc:
                if exc.status != 404:
                    raise self.error(exc, self.target) from None
            except Exception as exc:
                raise self.error(exc, self.target) from None
            else:
                yield self._ref(meta, explicit=True)
                return
        prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        found = False
        token: str | None = None
        while True:
            params = {"prefix": prefix, "maxResults": self._page_size}
            if token:
                params["pageToken"] = token
            try:
                page = await backoff.retry(
                    lambda p=params: storage.list_objects(self.bucket, params=p),  # type: ignore[misc]
                    is_transient,
                )
            except Exception as exc:
                raise self.error(exc, self.target) from None
            for item in page.get("items") or ():
                if str(item.get("name", "")).endswith("/") and int(item.get("size", 0)) == 0:
                    continue
                found = True
                yield self._ref(item, explicit=False)
            token = page.get("nextPageToken")
            if not token:
                break
        if not found:
            raise TargetNotFound(f"{self.target}: no such object or prefix")

    async def aclose(self) -> None:
        await self.shared.release()


class GcsReader(ObjectReader):
    def __init__(self, source: GcsSource, key: str, generation: str | None, size: int) -> None:
        self._source = source
        self.key = key
        self.uri = self.shown = source.uri(key)
        self.generation = generation
        self.size = size
        self.endpoint = source.emulator or source.endpoint or "gs://"
        self.supports_ranges = True
        self._released = False
        source.shared.retain()

    def _params(self) -> dict[str, str]:
        params = {"alt": "media"}
        if self.generation:
            params["ifGenerationMatch"] = self.generation
        return params

    @asynccontextmanager
    async def open(self, start: int, end: int | None) -> AsyncIterator[Body]:
        # gcloud-aio does not retry downloads: transient failures here are retried by the
        # caller, like a cut body.
        headers = {"Accept-Encoding": "identity"}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        storage = await self._source.storage()
        stream = await storage._download_stream(
            self._source.bucket, self.key, params=self._params(), headers=headers
        )
        async with stream as response:
            ranged = response.status == 206
            if ranged:
                self.supports_ranges = True
            yield Body(start if ranged else 0, _read_all(stream))

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def fetch_error(self, exc: BaseException) -> FetchError:
        return self._source.error(exc, self.uri)

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            await self._source.shared.release()


async def _read_all(stream: Any) -> AsyncIterator[bytes]:
    while chunk := await stream.read(READ_SIZE):
        yield chunk
