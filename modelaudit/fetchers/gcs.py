"""Google Cloud Storage (`gs://BUCKET/KEY-or-PREFIX`) via gcloud-aio-storage.

Auth comes only from GOOGLE_APPLICATION_CREDENTIALS (a service-account key file). Without it,
requests are anonymous (public buckets), so the library never falls back to the metadata
server. STORAGE_EMULATOR_HOST points at an emulator (no auth); GCS_ENDPOINT_URL points at
another authenticated endpoint (Private Service Connect). Reads are pinned to the generation
seen at listing time (`ifGenerationMatch`), so a replaced object fails with `ObjectChanged`.
A key that is its call's only target is sized by its first reads instead of a metadata GET
before them (`GcsSource.first_read`): one round trip fewer before the first byte.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import anyio.to_thread

from . import backoff
from .base import (
    READ_SIZE,
    Body,
    FirstReads,
    Held,
    ObjectReader,
    ObjectRef,
    Piece,
    Source,
    b64_to_hex,
    content_range,
    decide_first_reads,
    pinned,
    send_first_reads,
)
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
_DIGEST_FIELDS = (("md5", "md5Hash"), ("crc32c", "crc32c"))


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


def digests_of(meta: Mapping[str, Any]) -> dict[str, str]:
    """What an object's metadata publishes of its bytes, by algorithm (GCS has no sha256)."""
    return {
        alg: value
        for alg, field in _DIGEST_FIELDS
        if (value := b64_to_hex(meta.get(field))) is not None
    }


def describe_digests(digests: Mapping[str, str]) -> str:
    return " and ".join(
        f"{alg} from the GCS object's {field}" for alg, field in _DIGEST_FIELDS if alg in digests
    )


class GcsSource(Source):
    def __init__(self, target: str, config: Mapping[str, Any] | None = None) -> None:
        self.target = target
        self.bucket, self.key = parse_uri(target)
        env = os.environ
        self.emulator = env.get("STORAGE_EMULATOR_HOST") or None
        self.endpoint = env.get("GCS_ENDPOINT_URL") or None
        self.creds = None if self.emulator else (env.get(_CREDS) or None)
        self._settings: Mapping[str, Any] = config or {}
        self._page_size = str(int(self._settings.get("list_page_size", _PAGE)))
        #: SARIF and SBOM runs want the object's published digests: a key sized by its first
        #: reads gets them from a metadata GET sent beside those reads
        self._digests_wanted = bool(self._settings.get("hashes"))
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
        digests = digests_of(item)
        reader.publish(digests, describe_digests(digests))
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
        if isinstance(digests, dict):
            known = {str(k): str(v) for k, v in digests.items()}
            reader.publish(known, "published by GCS (" + ", ".join(sorted(known)) + ")")
        return ObjectRef(
            uri=obj.uri,
            size=obj.size,
            etag=obj.etag,
            reader=reader,
            explicit=obj.explicit,
            metadata=dict(obj.metadata),
            locator=obj.locator,
        )

    def _reads_first(self, key: str) -> bool:
        """Whether the only target's key is sized by its first reads (the head and a suffix
        range of the end, in parallel) instead of a metadata GET before them. Not for a call
        with other targets (their first reads would go out beside the engine's bound on
        objects fetched at once), a cluster (its nodes list the target again), `--cache` (it
        must know the object's identity before reading it), an ONNX model (a large one starts
        with a whole-object stream, engine/acquire.py), nor `--hash-remote`: GCS publishes no
        sha256, so that run streams the whole object anyway and one round trip is lost in
        it."""
        settings = self._settings
        if not settings.get("one_target") or settings.get("cache_dir") or settings.get("cluster"):
            return False
        if settings.get("hashes") and settings.get("hash_remote"):
            return False
        return not key.lower().endswith(".onnx")

    async def first_read(self, key: str) -> tuple[bool, ObjectRef | None]:
        """The key sized by its first reads instead of a metadata GET before them: one round
        trip fewer before the first byte; the bodies are held by the reader for the spool.
        Their Content-Range gives the size and their x-goog-generation pins the object (the
        reads after carry it as `ifGenerationMatch`). A SARIF/SBOM run's md5/crc32c come from
        a metadata GET sent beside them, as the listing's own metadata GET gave them.

        (True, the object); (True, None): no such key, the listing looks for a prefix;
        (False, None): the metadata GET decides (an answer that is not the range asked for
        or has no generation: a server ignoring Range, a stored gzip object GCS decompresses,
        an emulator; a failure its retries may get past). A refusal is raised as the
        metadata GET's would be."""
        import aiohttp

        reader = GcsReader(self, key, None, None)
        failures, aside = await send_first_reads(reader, key, self._digests_wanted)
        return await decide_first_reads(
            reader,
            failures,
            aside,
            shown=self.uri(key),
            missing=lambda failure: (
                isinstance(failure, aiohttp.ClientResponseError) and failure.status == 404
            ),
            refusal=lambda failure: self.error(failure, self.uri(key)),
            pinned=lambda: reader.size is not None and reader.generation is not None,
            single=lambda: self._single(key, reader),
        )

    def _single(self, key: str, reader: GcsReader) -> ObjectRef:
        locator: dict[str, Any] = {"key": key, "generation": reader.generation}
        if reader.published is not None:
            locator["digests"] = dict(reader.published)
        return ObjectRef(
            uri=self.uri(key),
            size=reader.size,
            etag=reader.etag or reader.generation,
            reader=reader,
            explicit=True,
            locator=locator,
        )

    async def _by_metadata(self, storage: Any) -> ObjectRef | None:
        """The object at exactly the target's key, by its metadata GET; None: there is none."""
        import aiohttp

        try:
            meta = await backoff.retry(
                lambda: storage.download_metadata(self.bucket, self.key), is_transient
            )
        except aiohttp.ClientResponseError as exc:
            if exc.status != 404:
                raise self.error(exc, self.target) from None
            return None
        except Exception as exc:
            raise self.error(exc, self.target) from None
        return self._ref(meta, explicit=True)

    async def objects(self) -> AsyncIterator[ObjectRef]:
        storage = await self.storage()
        if self.key and not self.key.endswith("/"):
            reads_first = self._reads_first(self.key)
            decided, single = await self.first_read(self.key) if reads_first else (False, None)
            if not decided:
                single = await self._by_metadata(storage)
            if single is not None:
                yield single
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


class _Unfit(Exception):
    """A first read's answer that does not size and pin the object: not the range asked for
    (a server ignoring Range, a stored gzip object decompressed whole) or no generation."""


class _NoAhead(NamedTuple):
    """(A GCS reader opens no whole-object response ahead: see `GcsSource._reads_first`.)"""

    waited: float


class GcsReader(FirstReads[_NoAhead], ObjectReader):
    def __init__(
        self, source: GcsSource, key: str, generation: str | None, size: int | None
    ) -> None:
        self._source = source
        self.key = key
        self.uri = self.shown = source.uri(key)
        self.generation = generation
        self.etag: str | None = None
        self.size = size
        self.endpoint = source.emulator or source.endpoint or "gs://"
        self.supports_ranges = True
        #: what the object's metadata publishes (None: not asked yet, a key sized by its
        #: first reads)
        self.published: dict[str, str] | None = None
        self._released = False
        #: the bodies of the ranged reads the listing sent in place of the metadata GET
        self._init_first_reads()
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

    def publish(self, digests: dict[str, str], source: str) -> None:
        self.published = self.digests = dict(digests)
        self.digest_source = source if digests else ""

    async def published_digests(self) -> dict[str, str]:
        """md5 and crc32c as the object's metadata gives them: the listing's, or one metadata
        GET for a key sized by its first reads (it must name the generation they pinned)."""
        if self.published is None:
            storage = await self._source.storage()
            try:
                meta = await backoff.retry(
                    lambda: storage.download_metadata(self._source.bucket, self.key),
                    is_transient,
                )
            except Exception as exc:
                raise self.fetch_error(exc) from None
            generation = str(meta["generation"]) if meta.get("generation") else None
            self._pin(generation, int(meta.get("size", 0)))
            self.etag = meta.get("etag") or self.etag
            digests = digests_of(meta)
            self.publish(digests, describe_digests(digests))
        assert self.published is not None
        return dict(self.published)

    # -- the object's first reads, sent by the listing in place of the metadata GET -------

    def _pin(self, generation: str | None, size: int) -> None:
        """The first answer pins the object; a later one of another version is a change."""
        self.generation = pinned(self.generation, generation, "generation", self.uri)
        self.size = pinned(self.size, size, "size", self.uri)

    async def read_ahead(self, start: int, length: int) -> None:
        """One ranged media GET (`start` < 0: the last `length` bytes, a suffix range), its
        body kept for `held`: its Content-Range gives the size, its x-goog-generation pins
        the object. Raises the client's own error (the listing reads its status), or
        `_Unfit`, the body left unread."""
        began = time.monotonic()
        spec = f"-{length}" if start < 0 else f"{start}-{start + length - 1}"
        storage = await self._source.storage()
        stream = await storage._download_stream(
            self._source.bucket,
            self.key,
            params={"alt": "media"},
            headers={"Accept-Encoding": "identity", "Range": f"bytes={spec}"},
        )
        first = time.monotonic() - began
        async with stream as response:
            headers = response.headers
            generation = headers.get("x-goog-generation")
            span = _span(response.status, headers, length)
            if span is None or not generation:
                raise _Unfit(f"HTTP {response.status}, generation {generation!r}")
            at, total = span
            self._pin(generation, total)
            want = min(length, total - at)
            data = bytearray()
            while len(data) <= want and (chunk := await stream.read(READ_SIZE)):
                data += chunk
        if (start < 0 or at == start) and len(data) == want:
            self._held.append(Piece(at, bytes(data), first, time.monotonic() - began))

    async def _head_off(self, ahead: _NoAhead, end: int) -> Held | None:
        return None

    def _close_ahead(self, ahead: _NoAhead) -> None:
        return None

    async def aclose(self) -> None:
        self.drop_held()
        if not self._released:
            self._released = True
            await self._source.shared.release()


def _span(status: int, headers: Mapping[str, str], length: int) -> tuple[int, int] | None:
    """(first byte, object size) of a first read's answer: a 206's Content-Range, or a whole
    answer no longer than the read (an object smaller than the range) whose length is the
    stored object's; None for anything else (its body is not worth reading)."""
    if status == 206:
        return content_range(headers.get("Content-Range", ""))
    size = headers.get("Content-Length", "")
    stored = headers.get("x-goog-stored-content-length")
    if status == 200 and size.isdigit() and int(size) <= length and stored in (None, size):
        return 0, int(size)
    return None


async def _read_all(stream: Any) -> AsyncIterator[bytes]:
    while chunk := await stream.read(READ_SIZE):
        yield chunk
