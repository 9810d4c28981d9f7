"""Amazon S3 and Cloudflare R2 (`s3://BUCKET/KEY-or-PREFIX`, `r2://BUCKET/...`) via aiobotocore.

Credentials come only from the environment and are handed to botocore explicitly; without them
requests go unsigned, so botocore never consults profile files or the instance-metadata service.
Every read is pinned to the ETag seen at listing time, so an object replaced mid-scan fails with
`ObjectChanged` instead of mixing two versions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
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

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_CHANGED = {"412", "PreconditionFailed"}
_REFUSED_KEY = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
_DENIED = {"403", "AccessDenied", "AllAccessDisabled", "AccountProblem", "401", "Unauthorized"}
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "TooManyRequests",
}
_R2_HINT = "https://ACCOUNT_ID.r2.cloudflarestorage.com"

log = logging.getLogger("modelaudit")


def parse_uri(target: str) -> tuple[str, str, str]:
    """`s3://bucket/some/key` -> ("s3", "bucket", "some/key")."""
    scheme, _, rest = target.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme not in ("s3", "r2") or not bucket:
        raise UnsupportedTarget(f"{target}: expected {scheme}://BUCKET/KEY-or-PREFIX")
    return scheme, bucket, key


class Credentials:
    """What the environment says about where and how to reach the bucket (never printed).

    `endpoint` and `region` may come from elsewhere (a DVC remote's `endpointurl`). Credentials
    from the environment go to such an endpoint only when it is `trusted` (the user's own
    machine-local configuration) or is the AWS_ENDPOINT_URL they were configured for;
    otherwise requests go unsigned and `withheld` names the endpoint they were kept from.
    """

    def __init__(
        self,
        scheme: str,
        endpoint: str | None = None,
        region: str | None = None,
        trusted: bool = False,
    ) -> None:
        env = os.environ
        self.scheme = scheme
        self.key_id = env.get("AWS_ACCESS_KEY_ID") or None
        self.secret = env.get("AWS_SECRET_ACCESS_KEY") or None
        self.token = env.get("AWS_SESSION_TOKEN") or None
        configured = env.get("AWS_ENDPOINT_URL") or None
        self.endpoint = endpoint or configured
        self.withheld: str | None = None
        if endpoint and not trusted and _norm(endpoint) != _norm(configured or ""):
            if self.key_id or self.secret:
                self.withheld = endpoint
            self.key_id = self.secret = self.token = None
        default_region = "auto" if scheme == "r2" else "us-east-1"
        self.region = (
            region or env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or default_region
        )

    @property
    def signed(self) -> bool:
        return bool(self.key_id and self.secret)

    def check(self, target: str) -> None:
        if self.scheme == "r2" and not self.endpoint:
            raise AuthenticationError(
                f"{target}: set AWS_ENDPOINT_URL to your account's R2 endpoint ({_R2_HINT})"
            )
        if bool(self.key_id) != bool(self.secret):
            missing = "AWS_SECRET_ACCESS_KEY" if self.key_id else "AWS_ACCESS_KEY_ID"
            raise AuthenticationError(f"{target}: set {missing} as well (only one key is set)")


def _norm(url: str) -> str:
    return url.strip().rstrip("/").lower()


def _error_code(exc: BaseException) -> tuple[str, int]:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code or str(status), status


def is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code, status = _error_code(exc)
        return status == 429 or status >= 500 or code in _TRANSIENT_CODES
    if isinstance(exc, BotoCoreError | OSError | asyncio.TimeoutError):
        return True
    import aiohttp

    return isinstance(exc, aiohttp.ClientError)


def to_fetch_error(exc: BaseException, uri: str, creds: Credentials) -> FetchError:
    """A message safe to show: our own words and the service's error code, never a secret."""
    from botocore.exceptions import ClientError

    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, ClientError):
        code, status = _error_code(exc)
        if code in _NOT_FOUND or status == 404:
            what = "bucket" if code == "NoSuchBucket" else "object"
            return TargetNotFound(f"{uri}: no such {what}")
        if code in _CHANGED or status == 412:
            return ObjectChanged(f"{uri}: the object changed while being read (ETag mismatch)")
        if code in ("ExpiredToken", "InvalidToken"):
            return AuthenticationError(
                f"{uri}: the session token in AWS_SESSION_TOKEN was refused ({code})"
            )
        if code in _REFUSED_KEY:
            return AuthenticationError(
                f"{uri}: the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                f"were refused ({code})"
            )
        if code in _DENIED or status in (401, 403):
            if creds.withheld:
                return AuthenticationError(
                    f"{uri}: access denied; AWS credentials were not sent to {creds.withheld}, "
                    "which comes from the scanned repository's configuration: set "
                    f"AWS_ENDPOINT_URL={creds.withheld} to send them there"
                )
            if not creds.signed:
                return AuthenticationError(
                    f"{uri}: access denied without credentials; set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY"
                )
            if code == str(status):
                # No error document (a HEAD): a wrong secret looks the same as a missing grant.
                return AuthenticationError(
                    f"{uri}: access denied (HTTP {status}, no reason given); check "
                    "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) for the key in "
                    "AWS_ACCESS_KEY_ID, and that the key may s3:GetObject here"
                )
            return AuthenticationError(
                f"{uri}: access denied for the key in AWS_ACCESS_KEY_ID ({code}); it needs "
                "s3:GetObject and s3:ListBucket on this bucket"
            )
        if is_transient(exc):
            return TransientFetchError(f"{uri}: {code} (HTTP {status}) persisted after retries")
        return FetchError(f"{uri}: storage error {code} (HTTP {status})")
    where = creds.endpoint or "the S3 endpoint"
    return TransientFetchError(f"{uri}: cannot reach {where} ({type(exc).__name__})")


def digests_of(head: dict[str, Any]) -> dict[str, str]:
    """What a HeadObject answer says of the object's bytes, by algorithm."""
    out: dict[str, str] = {}
    checksum = str(head.get("ChecksumSHA256") or "")
    kind = str(head.get("ChecksumType") or "FULL_OBJECT")
    # a multipart upload's composite checksum ("...-N") is a hash of part hashes
    if checksum and "-" not in checksum and kind == "FULL_OBJECT":
        value = b64_to_hex(checksum)
        if value and len(value) == 64:
            out["sha256"] = value
    etag = str(head.get("ETag") or "").strip('"').lower()
    encrypted = head.get("ServerSideEncryption") == "aws:kms" or head.get("SSECustomerAlgorithm")
    if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag) and not encrypted:
        out["md5"] = etag
    return out


def describe_digests(digests: dict[str, str]) -> str:
    parts = []
    if "sha256" in digests:
        parts.append("sha256 from S3 ChecksumSHA256")
    if "md5" in digests:
        parts.append("md5 from the S3 ETag (single-part upload)")
    return ", ".join(parts)


class _Opened(NamedTuple):
    """The whole object's GetObject the listing sent (`S3Reader.open_ahead`), body unread."""

    resp: dict[str, Any]
    #: seconds it took to answer
    waited: float


class S3Reader(FirstReads[_Opened], ObjectReader):
    def __init__(
        self,
        source: S3Source,
        client: Any,
        bucket: str,
        key: str,
        uri: str,
        etag: str | None,
        size: int | None,
    ) -> None:
        self._source = source
        self._client = client
        self.bucket = bucket
        self.key = key
        self.uri = self.shown = uri
        self.etag = etag
        self.size = size
        self.endpoint = source.creds.endpoint or f"{source.scheme}://"
        self.supports_ranges = True
        self._published: dict[str, str] | None = None
        self._released = False
        #: the bodies of the ranged reads the listing sent in place of HeadObject
        #: (`read_ahead`), and the whole object's GetObject it sent (`open_ahead`), its body
        #: unread, with the seconds it took to answer
        self._init_first_reads()
        source.shared.retain()

    def _get_args(self, first: int, last: int | None) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        if self.etag:
            args["IfMatch"] = self.etag
        if first or last is not None:
            args["Range"] = f"bytes={first}-{'' if last is None else last}"
        return args

    @asynccontextmanager
    async def open(self, start: int, end: int | None) -> AsyncIterator[Body]:
        ahead = self._take_ahead() if start == 0 else None
        if ahead is not None:
            async with ahead.resp["Body"] as body:
                yield Body(0, body.iter_chunks(READ_SIZE))
            return
        # botocore has already retried the request itself: a failure here is final.
        try:
            resp = await self._client.get_object(
                **self._get_args(start, None if end is None else end - 1)
            )
        except Exception as exc:
            raise to_fetch_error(exc, self.uri, self._source.creds) from None
        async with resp["Body"] as body:
            ranged = "ContentRange" in resp
            if ranged:
                self.supports_ranges = True
            yield Body(start if ranged else 0, body.iter_chunks(READ_SIZE))

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def fetch_error(self, exc: BaseException) -> FetchError:
        return to_fetch_error(exc, self.uri, self._source.creds)

    async def published_digests(self) -> dict[str, str]:
        """ChecksumSHA256 when the object has a whole-object one, and the ETag as md5 when
        it is one (a single-part upload without KMS or customer keys): one HeadObject."""
        if self._published is None:
            try:
                head = await self._client.head_object(
                    Bucket=self.bucket, Key=self.key, ChecksumMode="ENABLED"
                )
            except Exception as exc:
                raise to_fetch_error(exc, self.uri, self._source.creds) from None
            self.publish(head)
        assert self._published is not None
        return dict(self._published)

    def publish(self, head: dict[str, Any]) -> None:
        """What a HeadObject asked with ChecksumMode said of the object's digests."""
        self._published = digests_of(head)
        self.digest_source = describe_digests(self._published)

    # -- the object's first reads, sent by the listing in place of HeadObject -------------

    def _pin(self, etag: str | None, size: int) -> None:
        """The first answer pins the object; a later one of another version is a change."""
        self.etag = pinned(self.etag, etag, "ETag", self.uri)
        self.size = pinned(self.size, size, "size", self.uri)

    async def read_ahead(self, start: int, length: int) -> None:
        """One ranged GetObject (`start` < 0: the last `length` bytes, a suffix range), its
        body kept for `held`; its ContentRange gives the size, its ETag pins the object.
        Raises the SDK's own error (the listing reads its code)."""
        began = time.monotonic()
        spec = f"-{length}" if start < 0 else f"{start}-{start + length - 1}"
        resp = await self._client.get_object(
            Bucket=self.bucket, Key=self.key, Range=f"bytes={spec}"
        )
        first = time.monotonic() - began
        data = bytearray()
        async with resp["Body"] as body:
            # (no more than asked, and a byte to tell: a server that ignores Range sends the
            # whole object)
            while len(data) <= length and (chunk := await body.read(length + 1 - len(data))):
                data += chunk
        span = content_range(str(resp.get("ContentRange") or ""))
        if span is None:
            # a whole answer (a suffix longer than the object, on some servers)
            if "ContentLength" not in resp and len(data) > length:
                raise FetchError(f"{self.uri}: a whole answer without its length")
            span = (0, int(resp.get("ContentLength", len(data))))
        at, total = span
        self._pin(resp.get("ETag"), total)
        if (start < 0 or at == start) and len(data) == min(length, total - at):
            self._held.append(Piece(at, bytes(data), first, time.monotonic() - began))

    async def open_ahead(self) -> None:
        """The whole object's GetObject, sent by the listing in place of HeadObject and kept
        open for the first whole-object fill (`open(0, ...)`) or the head (`held`): its
        answer gives the size, the ETag and the published digests (asked with ChecksumMode:
        a whole-object GetObject carries ChecksumSHA256 as HeadObject does, a ranged one
        does not)."""
        began = time.monotonic()
        resp = await self._client.get_object(
            Bucket=self.bucket, Key=self.key, ChecksumMode="ENABLED"
        )
        try:
            self._pin(resp.get("ETag"), int(resp.get("ContentLength", 0)))
        except BaseException:
            resp["Body"].close()
            raise
        self.publish(resp)
        self._ahead = _Opened(resp, time.monotonic() - began)

    async def _head_off(self, ahead: _Opened, end: int) -> Held | None:
        resp, waited = ahead.resp, ahead.waited
        began = time.monotonic()
        data = bytearray()
        try:
            async with resp["Body"] as body:
                while len(data) < end and (chunk := await body.read(end - len(data))):
                    data += chunk
        except Exception:
            log.debug("the first GetObject of %s broke off", self.uri, exc_info=True)
            return None
        if len(data) == end:
            return Held(bytes(data), waited, waited + time.monotonic() - began)
        return None

    def _close_ahead(self, ahead: _Opened) -> None:
        ahead.resp["Body"].close()

    async def aclose(self) -> None:
        self.drop_held()
        if not self._released:
            self._released = True
            await self._source.shared.release()


class S3Source(Source):
    """One bucket key, or every object under a prefix, listed lazily page by page."""

    def __init__(self, target: str, config: dict[str, Any] | None = None) -> None:
        self.target = target
        self.scheme, self.bucket, self.key = parse_uri(target)
        settings = config or {}
        self.creds = Credentials(
            self.scheme,
            endpoint=settings.get("s3_endpoint_url"),
            region=settings.get("s3_region"),
            trusted=bool(settings.get("s3_endpoint_trusted")),
        )
        self._connections = max(4, int((config or {}).get("fetch_jobs", 8)) * 2)
        #: SARIF and SBOM runs want the object's published digests: the listing's HeadObject
        #: asks for them (ChecksumMode), sparing a second HeadObject before the first read
        self._digests_wanted = bool(settings.get("hashes"))
        self._settings = settings
        self._page_size = int((config or {}).get("list_page_size", 1000))
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._client_lock = anyio.Lock()
        self.shared = backoff.SharedClient(self._stack.aclose)

    def uri(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{key}"

    async def client(self) -> Any:
        # One client, however many tasks ask at once (a cluster node reopens objects of
        # several shards through one source).
        async with self._client_lock:
            if self._client is None:
                self.creds.check(self.target)
                # Imports, the session and botocore's service models are loaded in a thread;
                # only the part that binds the client to this event loop runs here.
                factory = await anyio.to_thread.run_sync(self._client_factory)
                self._client = await self._stack.enter_async_context(factory)
        return self._client

    def _client_factory(self) -> Any:
        import logging

        import botocore

        # Their debug lines quote signed headers and presigned URLs.
        for name in ("botocore", "aiobotocore", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from aiobotocore.config import AioConfig
        from aiobotocore.session import AioSession

        creds = self.creds
        options: dict[str, Any] = {
            "retries": {"mode": "standard", "total_max_attempts": backoff.ATTEMPTS},
            "connect_timeout": 10,
            "read_timeout": 60,
            "max_pool_connections": self._connections,
            # botocore otherwise asks for checksums on every GetObject and hashes each
            # checksummed body it streams, on the event loop: only a read that asks for the
            # published checksums (ChecksumMode) has them checked
            "response_checksum_validation": "when_required",
            "request_checksum_calculation": "when_required",
        }
        if not creds.signed:
            options["signature_version"] = botocore.UNSIGNED
        if creds.endpoint:
            options["s3"] = {"addressing_style": "path"}
        kwargs: dict[str, Any] = {"region_name": creds.region, "config": AioConfig(**options)}
        if creds.endpoint:
            kwargs["endpoint_url"] = creds.endpoint
        if creds.signed:
            kwargs.update(
                aws_access_key_id=creds.key_id,
                aws_secret_access_key=creds.secret,
                aws_session_token=creds.token,
            )
        session = AioSession()
        loader = session.get_component("data_loader")
        for name in ("service-2", "endpoint-rule-set-1", "paginators-1"):
            loader.load_service_model("s3", name)
        for name in ("partitions", "endpoints", "sdk-default-configuration", "_retry"):
            loader.load_data(name)
        loader.list_available_services("service-2")
        return session.create_client("s3", **kwargs)

    def reader(self, key: str, etag: str | None, size: int | None) -> S3Reader:
        return S3Reader(self, self._client, self.bucket, key, self.uri(key), etag, size)

    async def head(self, key: str) -> ObjectRef | None:
        """The object at exactly `key`, or None when there is none."""
        from botocore.exceptions import ClientError

        client = await self.client()
        checksums = {"ChecksumMode": "ENABLED"} if self._digests_wanted else {}
        headed = True
        try:
            head = await client.head_object(Bucket=self.bucket, Key=key, **checksums)
        except ClientError as exc:
            code, status = _error_code(exc)
            if status == 404 or code in _NOT_FOUND:
                return None
            if code != str(status):
                raise to_fetch_error(exc, self.uri(key), self.creds) from None
            # A HEAD error has no body, so no reason: a one-byte GET tells a refused secret
            # (SignatureDoesNotMatch) from a missing permission (AccessDenied).
            head = await self._probe(key, exc)
            headed = False
        except Exception as exc:
            raise to_fetch_error(exc, self.uri(key), self.creds) from None
        size = int(head.get("ContentLength", 0))
        etag = head.get("ETag")
        reader = self.reader(key, etag, size)
        if checksums and headed:
            reader.publish(head)
        return ObjectRef(
            uri=self.uri(key),
            size=size,
            etag=etag,
            reader=reader,
            explicit=True,
            locator={"key": key},
        )

    async def _probe(self, key: str, head_error: Exception) -> dict[str, Any]:
        """HeadObject's answer rebuilt from a one-byte GetObject, or that request's error."""
        from botocore.exceptions import ClientError

        try:
            resp = await self._client.get_object(Bucket=self.bucket, Key=key, Range="bytes=0-0")
        except ClientError as exc:
            code, status = _error_code(exc)
            if status == 404 or code in _NOT_FOUND:
                raise TargetNotFound(f"{self.uri(key)}: no such object") from None
            raise to_fetch_error(exc, self.uri(key), self.creds) from None
        async with resp["Body"] as body:
            await body.read()
        total = str(resp.get("ContentRange", "")).rpartition("/")[2]
        if not total.isdigit():
            raise to_fetch_error(head_error, self.uri(key), self.creds)
        return {"ContentLength": int(total), "ETag": resp.get("ETag")}

    def _reads_first(self, key: str) -> str | None:
        """How the only target's key is sized: by its first reads ("ranges": the head and a
        suffix range of the end, in parallel; "whole": the whole object's GetObject, for a
        run that hashes every byte unless the store publishes a sha256), or None: by
        HeadObject, for a call with other targets (their first reads would go out beside
        the engine's bound on objects fetched at once), a cluster (its nodes list the
        target again), `--cache` (it must know the object's identity before reading it) and
        an ONNX model without --hash-remote (a large one starts with a whole-object stream,
        engine/acquire.py)."""
        settings = self._settings
        if not settings.get("one_target") or settings.get("cache_dir") or settings.get("cluster"):
            return None
        # (a --max-size limit: ranged first reads, since a too-large object's stream, closed
        # at once, would still have moved what the sockets' buffers hold)
        if (
            settings.get("hashes")
            and settings.get("hash_remote")
            and not settings.get("max_file_size")
        ):
            return "whole"
        if key.lower().endswith(".onnx"):
            return None
        return "ranges"

    async def first_read(self, key: str, how: str) -> tuple[bool, ObjectRef | None]:
        """The key sized by its first reads instead of a HeadObject before them: one round
        trip fewer before the first byte; the bodies are held by the reader for the spool.
        A SARIF/SBOM run's published checksums come from a HeadObject sent beside the ranged
        reads (a ranged GetObject carries none), or from the whole object's GetObject.

        (True, the object); (True, None): no such key, the listing looks for a prefix;
        (False, None): the HeadObject path decides (an empty object, whose ranged read S3
        refuses; a failure its retries may get past). Refusals are raised as today's HeadObject
        path reports them, the GetObject's error code naming the cause."""
        from botocore.exceptions import ClientError

        await self.client()
        reader = self.reader(key, None, None)
        failures, aside = await send_first_reads(
            reader,
            key,
            self._digests_wanted,
            whole=reader.open_ahead if how == "whole" else None,
        )

        def missing(failure: Exception) -> bool:
            if not isinstance(failure, ClientError):
                return False
            code, status = _error_code(failure)
            return status == 404 or code in _NOT_FOUND

        return await decide_first_reads(
            reader,
            failures,
            aside,
            shown=self.uri(key),
            missing=missing,
            refusal=lambda failure: to_fetch_error(failure, self.uri(key), self.creds),
            pinned=lambda: reader.size is not None,
            single=lambda: self._single(key, reader),
        )

    def _single(self, key: str, reader: S3Reader) -> ObjectRef:
        return ObjectRef(
            uri=self.uri(key),
            size=reader.size,
            etag=reader.etag,
            reader=reader,
            explicit=True,
            locator={"key": key},
        )

    async def objects(self) -> AsyncIterator[ObjectRef]:
        if self.key and not self.key.endswith("/"):
            how = self._reads_first(self.key)
            decided, single = await self.first_read(self.key, how) if how else (False, None)
            if not decided:
                single = await self.head(self.key)
            if single is not None:
                yield single
                return
        prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        client = await self.client()
        found = False
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self._page_size}
        )
        try:
            async for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    size = int(item.get("Size", 0))
                    if key.endswith("/") and size == 0:
                        continue
                    found = True
                    etag = item.get("ETag")
                    yield ObjectRef(
                        uri=self.uri(key),
                        size=size,
                        etag=etag,
                        reader=self.reader(key, etag, size),
                        locator={"key": key},
                    )
        except FetchError:
            raise
        except Exception as exc:
            raise to_fetch_error(exc, self.target, self.creds) from None
        if not found:
            raise TargetNotFound(f"{self.target}: no such object or prefix")

    async def reopen(self, obj: ObjectRef) -> ObjectRef | None:
        key = (obj.locator or {}).get("key")
        if not isinstance(key, str) or self.uri(key) != obj.uri:
            return None
        await self.client()
        return ObjectRef(
            uri=obj.uri,
            size=obj.size,
            etag=obj.etag,
            reader=self.reader(key, obj.etag, obj.size),
            explicit=obj.explicit,
            metadata=dict(obj.metadata),
            locator=obj.locator,
        )

    async def aclose(self) -> None:
        await self.shared.release()
