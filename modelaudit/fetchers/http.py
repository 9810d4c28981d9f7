"""Objects behind plain HTTP(S) URLs, and the HTTP machinery the other web fetchers share.

`HttpClient` owns the retries (429, 5xx, resets; exponential backoff with full jitter,
honouring Retry-After) and follows redirects itself, so credential headers are only ever
sent to the origin they belong to. `HttpReader` reads byte ranges and whole objects, copes
with servers that ignore Range, and raises `ObjectChanged` when the ETag or size moves.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import SplitResult, parse_qsl, unquote, urljoin, urlsplit, urlunsplit

import anyio
import anyio.to_thread

from . import backoff
from .base import (
    BlockingBody,
    Body,
    FirstReads,
    Held,
    Hold,
    ObjectReader,
    ObjectRef,
    Piece,
    RetryStatus,
    Source,
)
from .errors import (
    AuthenticationError,
    FetchError,
    ObjectChanged,
    TargetNotFound,
    TransientFetchError,
)
from .http_pool import KEEP_PER_ORIGIN, KeptConnections
from .stopper import Stopper

if TYPE_CHECKING:
    import http.client
    import ssl

    import httpx

    from .http_connect import StoppableHTTPConnection

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_REDIRECTS = 10

AuthHint = Callable[[int], str]


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _host_port(parts: SplitResult) -> str:
    """`host[:port]` of a split URL without its user info (an IPv6 host keeps its brackets)."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def display_url(url: str) -> str:
    """The URL without user info or query string, safe to show in messages."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, _host_port(parts), parts.path, "", ""))


def split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its user info, and the Basic credential that user info stands for
    (none without it). The credential then goes through `HttpClient`'s origin check like any
    other, so the ranged reads sent over `http.client` carry it as httpx's requests would,
    and a redirect to another origin carries it no more than the URL it leads to."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, {}
    bare = urlunsplit((parts.scheme, _host_port(parts), parts.path, parts.query, parts.fragment))
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return bare, {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


class HttpClient:
    """One httpx client, shared by a source and its readers, closed when the last one is.

    `auth` headers go only to `auth_origin`; every redirect is followed here, so a redirect
    to a CDN or anywhere else never carries them.
    """

    def __init__(
        self,
        auth: Mapping[str, str] | None = None,
        auth_origin: str | None = None,
        auth_hint: AuthHint | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._extra_headers = dict(headers or {})
        self._client: httpx.AsyncClient | None = None
        self._auth = dict(auth or {})
        self._auth_origin = origin(auth_origin) if auth_origin else None
        self._auth_hint = auth_hint
        self._users = 1
        self._ssl: ssl.SSLContext | None = None

    def _build(self) -> httpx.AsyncClient:
        """The httpx client; built in a thread, since importing httpx and loading the CA
        bundle take long enough to stall a running event loop."""
        import logging

        import httpx

        from .._version import __version__

        # Their request logs carry full URLs, signed CDN redirects included.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # One TLS context (loading the CA bundle takes 20-40 ms) for this client, its proxy
        # transports and the blocking fills (`ssl_context`), made here, off the event loop.
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=True)
        from . import http_connect

        return httpx.AsyncClient(
            verify=self._ssl,
            follow_redirects=False,
            timeout=httpx.Timeout(60.0, connect=http_connect.CONNECT_TIMEOUT),
            headers={"User-Agent": f"modelaudit/{__version__}", **self._extra_headers},
            # Proxies and CA bundles from the environment; httpx reads no credentials there.
            trust_env=True,
            # (httpx keeps 20: a walk's rounds through a proxy have more in flight, and each
            # connection past 20 would be opened anew for every request)
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=KEEP_PER_ORIGIN),
        )

    async def _httpx(self) -> httpx.AsyncClient:
        if self._client is None:
            client = await anyio.to_thread.run_sync(self._build)
            if self._client is None:
                self._client = client
            else:
                await client.aclose()
        return self._client

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings httpx uses (CA bundle, SSL_CERT_FILE/DIR), for blocking fills."""
        if self._ssl is None:
            import httpx

            self._ssl = httpx.create_ssl_context(trust_env=True)
        return self._ssl

    def blocking_headers(self, url: str, extra: Mapping[str, str]) -> dict[str, str]:
        """What a blocking request to `url` sends: the client's headers, and credentials
        only when `url` is their origin."""
        from .._version import __version__

        return {
            "User-Agent": f"modelaudit/{__version__}",
            **self._extra_headers,
            **self._headers_for(url, extra),
        }

    def share(self) -> HttpClient:
        self._users += 1
        return self

    async def aclose(self) -> None:
        self._users -= 1
        if self._users <= 0 and self._client is not None:
            await self._client.aclose()

    def _headers_for(self, url: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self._auth and self._auth_origin is not None and origin(url) == self._auth_origin:
            headers.update(self._auth)
        return headers

    async def _send_once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        params: Any,
        redirects: list[Headers] | None,
    ) -> httpx.Response:
        client = await self._httpx()
        for _ in range(MAX_REDIRECTS + 1):
            request = client.build_request(
                method, url, headers=self._headers_for(url, headers), params=params
            )
            response = await client.send(request, stream=True)
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("location")
            if redirects is not None:
                redirects.append(response.headers)
            await response.aclose()
            if not location:
                return response
            url = urljoin(str(response.url), location)
            if urlsplit(url).scheme not in ("http", "https"):
                raise FetchError(f"{display_url(str(response.url))}: redirect to a non-HTTP URL")
            params = None
            if response.status_code == 303:
                method = "GET"
        raise FetchError(f"too many redirects for {display_url(url)}")

    async def send(
        self,
        method: str,
        url: str,
        shown: str,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
        ok: tuple[int, ...] = (200,),
        redirects: list[Headers] | None = None,
    ) -> httpx.Response:
        """An open streamed response with a status in `ok`; the caller closes it.

        Retries transient failures, then maps the rest onto the FetchError tree. `shown` is
        how messages name the target (never a redirected URL, which may carry signatures).
        `redirects` collects the headers of the redirects followed (the Hub's X-Linked-Etag).
        """
        await self._httpx()
        import httpx

        from . import http_connect

        last = ""
        timeouts = 0
        for attempt in range(backoff.ATTEMPTS):
            retry_after = None
            try:
                response = await self._send_once(method, url, headers, params, redirects)
            except (httpx.TransportError, OSError) as exc:
                last = type(exc).__name__
                if isinstance(exc, httpx.ConnectTimeout):
                    timeouts += 1
                    if timeouts >= http_connect.CONNECT_ATTEMPTS:
                        raise TransientFetchError(
                            f"{shown}: no connection within {http_connect.CONNECT_TIMEOUT:g} s "
                            f"after {attempt + 1} attempts"
                        ) from None
            else:
                status = response.status_code
                if status in ok:
                    return response
                if status not in RETRY_STATUSES:
                    await response.aclose()
                    raise self.error_for(status, shown)
                retry_after = response.headers.get("retry-after")
                await response.aclose()
                last = f"HTTP {status}"
            if attempt + 1 < backoff.ATTEMPTS:
                await anyio.sleep(backoff.delay(attempt, retry_after))
        raise TransientFetchError(f"{shown}: {last} after {backoff.ATTEMPTS} attempts")

    def error_for(self, status: int, shown: str) -> FetchError:
        if status in (401, 403):
            hint = self._auth_hint(status) if self._auth_hint else ""
            reason = "401 Unauthorized" if status == 401 else "403 Forbidden"
            return AuthenticationError(f"{shown}: {reason}{'; ' + hint if hint else ''}")
        if status in (404, 410):
            return TargetNotFound(f"{shown}: not found (HTTP {status})")
        return FetchError(f"{shown}: HTTP {status}")

    async def get_json(
        self, url: str, shown: str, params: Any = None, ok: tuple[int, ...] = (200,)
    ) -> Any:
        response = await self.send("GET", url, shown, params=params, ok=ok)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        import json

        try:
            return json.loads(body)
        except ValueError:
            raise FetchError(f"{shown}: the server sent invalid JSON") from None


class Headers(Protocol):
    """Response headers, httpx's or http.client's: case-insensitive `get`."""

    def get(self, key: str, default: Any = None, /) -> Any: ...


def _etag(headers: Headers) -> str | None:
    tag: str | None = headers.get("etag")
    if tag is None:
        return None
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def _content_range(headers: Headers) -> tuple[int, int, int | None] | None:
    value = headers.get("content-range", "")
    try:
        _unit, rest = value.split(" ", 1)
        span, total = rest.split("/", 1)
        first, last = span.split("-", 1)
        return int(first), int(last), None if total.strip() == "*" else int(total)
    except ValueError:
        return None


class HttpReader(FirstReads["_Ahead"], ObjectReader):
    """Byte access to one URL. The first response pins the ETag and size; later ones must match.

    A redirect to another origin (the Hub's 302 to its CDN, a presigned URL) is remembered
    and reused for later reads of the object until it expires, so each ranged read costs one
    request; the credentials of the first origin never go there.
    """

    def __init__(
        self,
        client: HttpClient,
        url: str,
        shown: str,
        size: int | None = None,
        etag: str | None = None,
    ) -> None:
        self.client = client.share()
        self.url = url
        self.shown = shown
        self.size = size
        self.etag = etag
        scheme, host, port = origin(url)
        self.endpoint = f"{scheme}://{host}:{port}"
        self.digests: dict[str, str] = {}
        self._location: str | None = None
        self._location_until = 0.0
        self._resolving: anyio.Lock | None = None
        #: (the same, for a round's threads: `_get_blocking`)
        self._resolving_blocking = threading.Lock()
        #: connections a round's reads keep alive (`Hold.keep_alive`)
        self._kept = KeptConnections()
        #: the origin answers with a redirect (the Hub for LFS files): parallel first reads
        #: wait for the first to learn where it goes, rather than each asking the origin
        self.redirects_expected = False
        #: the bodies of the reads the listing sent (`read_ahead`), and a whole-object
        #: response from byte 0 it opened (`open_ahead`, or a Range-ignoring answer to
        #: `read_ahead`), its body not read yet
        self._init_first_reads()

    def _check(self, headers: Headers, total: int | None) -> None:
        tag = _etag(headers)
        if tag is not None:
            if self.etag is None:
                self.etag = tag
            elif tag != self.etag:
                raise ObjectChanged(f"{self.shown}: the object changed while being read (ETag)")
        if total is not None:
            if self.size is None:
                self.size = total
            elif total != self.size:
                raise ObjectChanged(f"{self.shown}: the object changed while being read (size)")
        sha256 = headers.get("x-checksum-sha256", "").strip().lower()
        if "sha256" not in self.digests and _SHA256.fullmatch(sha256):
            self.digests["sha256"] = sha256
            self.digest_source = "sha256 from the server's X-Checksum-Sha256 header"

    def _cached_location(self) -> str | None:
        if self._location is not None and time.time() < self._location_until:
            return self._location
        self._location = None
        return None

    def _remember(self, final: str, redirects: list[Headers]) -> None:
        for headers in redirects:
            linked = headers.get("x-linked-etag", "").strip().strip('"').lower()
            if "sha256" not in self.digests and _SHA256.fullmatch(linked):
                self.digests["sha256"] = linked
                self.digest_source = "sha256 from the Hub's X-Linked-Etag (LFS object id)"
        if redirects and final != self.url:
            self._location = final
            self._location_until = redirect_expiry(final)

    async def _get(self, headers: dict[str, str]) -> httpx.Response:
        """A GET of the object: straight to the remembered redirect target while it is
        valid (a refusal there means it expired: back through the origin once), else through
        the origin, remembering where it redirected."""
        location = self._cached_location()
        if location is not None:
            response = await self.client.send(
                "GET", location, self.shown, headers=headers, ok=(200, 206, *_EXPIRED)
            )
            if response.status_code not in _EXPIRED:
                return response
            await response.aclose()
            self._location = None
        if not self.redirects_expected:
            return await self._resolve(headers)
        if self._resolving is None:
            self._resolving = anyio.Lock()
        async with self._resolving:
            # the first of several parallel reads follows the redirect; the others reuse it
            location = self._cached_location()
            if location is not None:
                return await self.client.send(
                    "GET", location, self.shown, headers=headers, ok=(200, 206)
                )
            return await self._resolve(headers)

    async def _resolve(self, headers: dict[str, str]) -> httpx.Response:
        redirects: list[Headers] = []
        response = await self.client.send(
            "GET", self.url, self.shown, headers=headers, ok=(200, 206), redirects=redirects
        )
        self._remember(str(response.url), redirects)
        return response

    def _landing(self, status: int, headers: Headers, start: int, ranged: bool) -> int:
        """Check a 200/206 answer against what is pinned; where its body starts."""
        if status == 206:
            span = _content_range(headers)
            if span is None or span[0] != start:
                raise FetchError(f"{self.shown}: the server sent a wrong range")
            self._check(headers, span[2])
            self.supports_ranges = True
            return start
        length = headers.get("content-length")
        self._check(headers, int(length) if length and length.isdigit() else None)
        if ranged:
            self.supports_ranges = False
        return 0

    @asynccontextmanager
    async def open(self, start: int, end: int | None) -> AsyncIterator[Body]:
        headers = _range_headers(start, end)
        response = await self._get(headers)
        try:
            offset = self._landing(
                response.status_code, response.headers, start, "Range" in headers
            )
            yield Body(offset, response.aiter_raw())
        finally:
            await response.aclose()

    def blocking_fills(self) -> bool:
        """A whole-object fill reads a plain socket (http.client into the fill's buffers:
        a third of httpx's CPU per byte), unless a proxy is configured: httpx knows it."""
        # what urllib.request.getproxies reads, without importing it on the event loop
        return not any(
            value and name.lower() in ("http_proxy", "https_proxy", "all_proxy")
            for name, value in os.environ.items()
        )

    @contextmanager
    def open_blocking(
        self, start: int, end: int | None, hold: Hold | None = None
    ) -> Iterator[BlockingBody]:
        keep = hold is not None and hold.keep_alive
        ahead = self._take_ahead() if start == 0 and not keep else None
        if ahead is not None:
            conn, response = ahead.conn, ahead.response
            try:
                yield BlockingBody(0, response.readinto, conn.abort, ahead.waited)
            finally:
                conn.close()
            return
        headers = _range_headers(start, end)
        conn, response = self._get_blocking(headers, hold)
        whole = False
        try:
            offset = self._landing(response.status, response.headers, start, "Range" in headers)
            yield BlockingBody(offset, response.readinto, conn.abort)
            # (a body read to its end leaves the connection ready for another request)
            whole = response.isclosed()
        finally:
            self._release(conn, hold, whole)

    # -- the object's first read, sent by the listing ------------------------------------

    def head_blocking(self, hold: Hold | None = None) -> str:
        """Blocking: the object's HEAD over `http.client`, its size and validators pinned;
        returns its Accept-Ranges. Sent through httpx, a listing's HEAD waited for httpx's
        import, TLS context and client (0.06-0.12 s), which a run whose reads all block never
        needs otherwise. Any failure is the caller's to retry the usual way."""
        conn, response = self._resolve_blocking({"Accept-Encoding": "identity"}, hold, "HEAD")
        try:
            response.read()
            length = response.headers.get("content-length")
            if response.status != 200 or not (length and length.isdigit()):
                raise FetchError(f"{self.shown}: HEAD gave no size")
            self._check(response.headers, int(length))
            return str(response.headers.get("accept-ranges", "")).strip().lower()
        finally:
            self._release(conn, hold)

    def open_ahead(self, hold: Hold | None = None) -> None:
        """Blocking: the whole object's GET, sent by the listing in place of a HEAD (its
        headers give the size and validators) and kept open for the first whole-object fill
        (`open_blocking(0, ...)`) or the head (`held`): one round trip fewer before the
        stream's first byte. Its connection is in `hold` until the response is kept."""
        began = time.monotonic()
        conn, response = self._get_blocking(_range_headers(0, None), hold)
        try:
            self._landing(response.status, response.headers, 0, False)
            if response.headers.get("accept-ranges", "").strip().lower() == "none":
                self.supports_ranges = False
        except BaseException:
            self._release(conn, hold)
            raise
        if hold is not None:
            hold.drop(conn)
        self._ahead = _Ahead(conn, response, time.monotonic() - began)

    def read_ahead(self, start: int, length: int, hold: Hold | None = None) -> None:
        """Blocking: one ranged read sent by the listing in place of a HEAD (`start` < 0:
        the last `length` bytes, a suffix range), its body kept for `held`; the answer's
        Content-Range gives the size. A server that ignores Range sends the whole object
        from byte 0: the head read's response is kept open for the fill (`open_ahead`), a
        suffix read's closed. Its connection is in `hold` while in use."""
        began = time.monotonic()
        suffix = start < 0
        spec = f"-{length}" if suffix else f"{start}-{start + length - 1}"
        conn, response = self._get_blocking(
            {"Accept-Encoding": "identity", "Range": f"bytes={spec}"}, hold
        )
        first = time.monotonic() - began
        try:
            if response.status == 206:
                span = _content_range(response.headers)
                if span is None or (not suffix and span[0] != start):
                    raise FetchError(f"{self.shown}: the server sent a wrong range")
                self._check(response.headers, span[2])
                self.supports_ranges = True
                data = response.read()
                if len(data) == span[1] - span[0] + 1:
                    self._held.append(Piece(span[0], data, first, time.monotonic() - began))
                return
            length_header = response.headers.get("content-length")
            total = int(length_header) if length_header and length_header.isdigit() else None
            self._check(response.headers, total)
            if suffix:
                return
            self.supports_ranges = False
            if hold is not None:
                hold.drop(conn)
            self._ahead = _Ahead(conn, response, first)
            conn = None  # type: ignore[assignment]
        finally:
            if conn is not None:
                self._release(conn, hold)

    async def _head_off(self, ahead: _Ahead, end: int) -> Held | None:
        try:
            began = time.monotonic()
            stopper = Stopper(self.shown)
            stopper.hold(ahead.conn, ahead.conn.abort)
            data = await stopper.in_thread(ahead.response.read, end)
        except Exception:
            # (the response broke off: the ranged reads that follow, with their retries, go on)
            import logging

            logging.getLogger("modelaudit").debug(
                "the first GET of %s broke off", self.shown, exc_info=True
            )
            return None
        finally:
            ahead.conn.close()
        if len(data) == end:
            return Held(data, ahead.waited, ahead.waited + time.monotonic() - began)
        return None

    def _close_ahead(self, ahead: _Ahead) -> None:
        ahead.conn.close()

    def _release(
        self, conn: StoppableHTTPConnection, hold: Hold | None, whole: bool = False
    ) -> None:
        """Done with `conn`: kept alive for the round's next read when its response was read
        to the end (`whole`), else closed."""
        if hold is not None:
            hold.drop(conn)
            if whole and hold.keep_alive:
                self._kept.give(conn)
                return
        conn.close()

    def _get_blocking(
        self, headers: dict[str, str], hold: Hold | None = None
    ) -> tuple[StoppableHTTPConnection, http.client.HTTPResponse]:
        """`_get`, blocking: the remembered redirect target while valid, else the origin,
        following redirects here (credentials only to their origin). Parallel reads of an
        object that redirects wait for the first to learn where (`redirects_expected`)."""
        location = self._cached_location()
        if location is not None:
            conn, response = self._request_blocking(location, headers, hold)
            if response.status not in _EXPIRED:
                return conn, self._accept(conn, response, hold)
            self._release(conn, hold)
            self._location = None
        if not self.redirects_expected:
            return self._resolve_blocking(headers, hold)
        with self._resolving_blocking:
            location = self._cached_location()
            if location is None:
                return self._resolve_blocking(headers, hold)
        conn, response = self._request_blocking(location, headers, hold)
        return conn, self._accept(conn, response, hold)

    def _resolve_blocking(
        self, headers: dict[str, str], hold: Hold | None, method: str = "GET"
    ) -> tuple[StoppableHTTPConnection, http.client.HTTPResponse]:
        url = self.url
        redirects: list[Headers] = []
        for _ in range(MAX_REDIRECTS + 1):
            conn, response = self._request_blocking(url, headers, hold, method)
            if response.status not in (301, 302, 303, 307, 308):
                self._remember(url, redirects)
                return conn, self._accept(conn, response, hold)
            redirects.append(response.headers)
            self._release(conn, hold)
            location = response.headers.get("location")
            if not location:
                raise FetchError(f"{self.shown}: redirect without a location")
            url = urljoin(url, location)
            if urlsplit(url).scheme not in ("http", "https"):
                raise FetchError(f"{self.shown}: redirect to a non-HTTP URL")
        raise FetchError(f"too many redirects for {self.shown}")

    def _accept(
        self,
        conn: StoppableHTTPConnection,
        response: http.client.HTTPResponse,
        hold: Hold | None = None,
    ) -> http.client.HTTPResponse:
        if response.status in (200, 206):
            return response
        self._release(conn, hold)
        if response.status in RETRY_STATUSES:
            raise RetryStatus(f"HTTP {response.status}", response.headers.get("retry-after"))
        raise self.client.error_for(response.status, self.shown)

    def _request_blocking(
        self, url: str, headers: dict[str, str], hold: Hold | None = None, method: str = "GET"
    ) -> tuple[StoppableHTTPConnection, http.client.HTTPResponse]:
        """One GET (or `method`) of `url`, its connection in `hold` (from before it connects) until
        released: a new one, or with `hold.keep_alive` one kept alive; a kept one the server
        has closed meanwhile (its request fails before any answer) is replaced by a fresh
        one, which is not a failure."""

        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        sent = self.client.blocking_headers(url, headers)
        keep = hold is not None and hold.keep_alive
        while True:
            conn = self._kept.take(origin(url)) if keep else None
            reused = conn is not None
            if conn is None:
                conn = self._connection(parts.scheme, parts.hostname or "", parts.port)
            try:
                if hold is not None:
                    hold.hold(conn, conn.abort)
                conn.request(method, target, headers=sent)
                return conn, conn.getresponse()
            except BaseException as exc:
                self._release(conn, hold)
                if hold is None or not reused or hold.stopped() or not _closed_by_peer(exc):
                    raise

    def _connection(self, scheme: str, host: str, port: int | None) -> StoppableHTTPConnection:
        """A connection whose connect a stop ends and that gives up after
        `http_connect.CONNECT_TIMEOUT`; reads wait up to 60 s."""
        from .http_connect import StoppableHTTPConnection, StoppableHTTPSConnection

        if scheme == "https":
            return StoppableHTTPSConnection(
                host, port, timeout=60.0, context=self.client.ssl_context()
            )
        return StoppableHTTPConnection(host, port, timeout=60.0)

    def is_transient(self, exc: BaseException) -> bool:
        import http.client

        import httpx

        return isinstance(exc, httpx.TransportError | OSError | http.client.HTTPException)

    async def aclose(self) -> None:
        self.drop_held()
        self._kept.close()
        await self.client.aclose()


class _Ahead(NamedTuple):
    """A response opened before anyone read it (`HttpReader.open_ahead`)."""

    conn: StoppableHTTPConnection
    response: http.client.HTTPResponse
    #: seconds it took to open
    waited: float


def _range_headers(start: int, end: int | None) -> dict[str, str]:
    headers = {"Accept-Encoding": "identity"}
    if start or end is not None:
        headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
    return headers


def _closed_by_peer(exc: BaseException) -> bool:
    """Whether a request on a kept-alive connection failed because the server had closed it
    (no answer at all: sent into a closed socket, or the socket ended before a status line)."""
    import http.client

    return isinstance(
        exc,
        ConnectionResetError | BrokenPipeError | ConnectionAbortedError | http.client.BadStatusLine,
    )


#: What a remembered redirect target answers once its signature has expired.
_EXPIRED = (401, 403, 404, 410)
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: How long a redirect target that says nothing of its expiry is reused.
REDIRECT_TTL = 60.0
#: Stop using a signed URL this long before it says it expires.
EXPIRY_MARGIN = 30.0


def redirect_expiry(url: str) -> float:
    """When a redirect target stops being valid (epoch seconds), from the signature in its
    query: S3-style X-Amz-Date + X-Amz-Expires, CloudFront/GCS-style Expires; else a minute."""
    import calendar

    query = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query)}
    now = time.time()
    until = now + REDIRECT_TTL
    try:
        if "x-amz-date" in query and "x-amz-expires" in query:
            signed = calendar.timegm(time.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ"))
            until = signed + int(query["x-amz-expires"])
        elif "expires" in query:
            until = float(query["expires"])
        elif "x-goog-date" in query and "x-goog-expires" in query:
            signed = calendar.timegm(time.strptime(query["x-goog-date"], "%Y%m%dT%H%M%SZ"))
            until = signed + int(query["x-goog-expires"])
    except (ValueError, OverflowError):
        pass
    return min(until, now + 24 * 3600) - EXPIRY_MARGIN


def _userinfo_hint(status: int) -> str:
    return "the server refused the user name and password given in the URL"


class HttpSource(Source):
    """Any other http(s) URL: one object, sized by its first read (or by HEAD)."""

    def __init__(self, target: str, config: Mapping[str, Any] | None = None) -> None:
        self.target, auth = split_userinfo(target)
        self.shown = display_url(target)
        self.client = HttpClient(
            auth, self.target if auth else None, _userinfo_hint if auth else None
        )
        self.config = dict(config or {})

    async def objects(self) -> AsyncIterator[ObjectRef]:
        reader = HttpReader(self.client, self.target, self.shown)
        if not await self._first_read(reader):
            reader.size, reader.etag = await self._probe(reader)
            if self._accept_ranges == "none":
                # said up front: no ranged plan (whose concurrent reads would each get it all)
                reader.supports_ranges = False
        yield ObjectRef(
            uri=self.shown, size=reader.size, etag=reader.etag, reader=reader, explicit=True
        )

    async def _first_read(self, reader: HttpReader) -> bool:
        """Size and validators from the object's first read instead of a HEAD before it:
        one round trip fewer before the first byte. A run that hashes the whole object
        opens the whole object's GET and keeps it open for the fill; any other reads the
        head and the end (a suffix range: a zip's end record and the longest comment; a
        large zip's longer tail is read by acquisition) in parallel.

        False (HEAD then) for a call with other targets (their first reads would go out
        beside the engine's bound on objects fetched at once), a cluster (its nodes list
        the target again), `--cache` (it must know the object's identity before reading
        it), a proxy, an ONNX model without --hash-remote (a large one starts with a
        whole-object stream, engine/acquire.py) or a first read that failed for any reason
        but not-found or refused."""
        if (
            not self.config.get("one_target")
            or self.config.get("cache_dir")
            or self.config.get("cluster")
            or not reader.blocking_fills()
        ):
            return False
        # (a --max-size limit: ranged first reads, since a too-large object's stream, closed
        # at once, would still have moved what the sockets' buffers hold)
        whole = bool(
            self.config.get("hashes")
            and self.config.get("hash_remote")
            and not self.config.get("max_file_size")
        )
        if not whole and urlsplit(self.target).path.lower().endswith(".onnx"):
            return False
        failures: list[Exception] = []
        end_failures: list[Exception] = []

        async def read(into: list[Exception], call: Callable[..., None], *args: int) -> None:
            # (a run stopped meanwhile aborts the request, wherever it blocks)
            stopper = Stopper(self.shown)
            try:
                await stopper.in_thread(call, *args, stopper)
            except Exception as exc:
                into.append(exc)

        if whole:
            await read(failures, reader.open_ahead)
        else:
            from ..formats.format import head_read, unsized_end_read

            name = urlsplit(self.target).path
            tail = unsized_end_read(name)

            async with anyio.create_task_group() as tg:
                tg.start_soon(read, failures, reader.read_ahead, 0, head_read(name))
                tg.start_soon(read, end_failures, reader.read_ahead, -tail, tail)
        for exc in failures + end_failures:
            if isinstance(exc, TargetNotFound | AuthenticationError):
                reader.drop_held()
                raise exc
        if any(isinstance(exc, ObjectChanged) for exc in failures + end_failures):
            # the first answer pinned the object: the reads that follow report the change
            reader.drop_held()
            return reader.size is not None
        if failures or reader.size is None:
            # a server refusing ranges oddly (416 for an empty object), a transient failure:
            # the HEAD path, with its retries, decides
            reader.drop_held()
            reader.size = reader.etag = None
            reader.supports_ranges = None
            return False
        # (an end read that failed alone, a server without suffix ranges: acquisition reads
        # the end itself)
        return True

    _accept_ranges = ""

    async def _probe(self, reader: HttpReader) -> tuple[int | None, str | None]:
        if reader.blocking_fills():
            stopper = Stopper(self.shown)
            try:
                self._accept_ranges = await stopper.in_thread(reader.head_blocking, stopper)
                return reader.size, reader.etag
            except Exception:
                # (refused, moved, transient: the HEAD below, with its retries, decides)
                reader.size = reader.etag = None
        try:
            response = await self.client.send("HEAD", self.target, self.shown)
            await response.aclose()
            self._accept_ranges = response.headers.get("accept-ranges", "").strip().lower()
            length = response.headers.get("content-length")
            if length and length.isdigit():
                return int(length), _etag(response.headers)
        except FetchError:
            # Some servers refuse HEAD (405, or 403 for GET-only signed URLs): GET decides.
            pass
        response = await self.client.send(
            "GET", self.target, self.shown, headers={"Range": "bytes=0-0"}, ok=(200, 206)
        )
        await response.aclose()
        span = _content_range(response.headers) if response.status_code == 206 else None
        if span is not None:
            return span[2], _etag(response.headers)
        length = response.headers.get("content-length")
        return (int(length) if length and length.isdigit() else None), _etag(response.headers)

    async def aclose(self) -> None:
        await self.client.aclose()
