"""Small threaded HTTP servers on 127.0.0.1 that behave like the Hub, its CDN and Artifactory.

They serve real bytes with real HTTP semantics (Range, ETag, redirects, Link pagination,
error headers) and record every request, so tests can count bytes sent and check headers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

#: A protocol-2 pickle whose REDUCE calls posix.system: built from bytes, never loaded.
EVIL_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00echo hiq\x01\x85q\x02Rq\x03."
#: The same call after a 300 kB string that is pushed and popped: big enough to be streamed.
BIG_EVIL_PICKLE = (
    b"\x80\x02X" + (300_000).to_bytes(4, "little") + b"A" * 300_000 + b"0" + EVIL_PICKLE[2:]
)

HF_GOOD_TOKEN = "hf_test_valid_token_0123456789"
JFROG_API_KEY = "jfrog-api-key-abcdef0123456789"
JFROG_ACCESS = "jfrog-access-token-9876543210"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    sent: int = 0


@dataclass
class Blob:
    data: bytes
    etag: str = ""
    #: after this many body-serving GETs, `data` and `etag` switch to `changed`
    change_after: int | None = None
    changed: bytes = b""
    served: int = 0

    def __post_init__(self) -> None:
        if not self.etag:
            self.etag = '"' + hashlib.sha256(self.data).hexdigest()[:32] + '"'

    def current(self) -> tuple[bytes, str]:
        if self.change_after is not None and self.served >= self.change_after:
            return self.changed, '"' + hashlib.sha256(self.changed).hexdigest()[:32] + '"'
        return self.data, self.etag


Reply = tuple[int, dict[str, str], bytes]
Route = Callable[["Handler"], "Reply | None"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # (headers and body are separate writes: no 40 ms delayed-ACK wait on kept connections)
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        with self.server.lock:
            self.server.requests.append(seen)
        status, headers, body = self.server.route(self)
        cut = headers.pop("X-Test-Cut", None)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut is not None:
            body = body[: int(cut)]
            self.close_connection = True
        hold = self.server.hold
        rate = self.server.rate
        try:
            for i in range(0, len(body), 65536):
                if hold is not None and i and i + 65536 >= len(body) and hold(seen) is False:
                    # the test cuts the connection here, short of the promised length
                    self.close_connection = True
                    break
                if rate:
                    time.sleep(min(65536, len(body) - i) / rate)
                self.wfile.write(body[i : i + 65536])
                with self.server.lock:
                    seen.sent += min(65536, len(body) - i)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if self.server.drop_kept:
            # closed without a word (no Connection: close): as a server whose keep-alive
            # timeout passed does, under a client about to send its next request
            self.close_connection = True

    do_GET = do_HEAD = do_POST = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    #: parallel ranged reads open their connections at once
    request_queue_size = 128

    def __init__(self, route: Callable[[Handler], Reply]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.route = route
        self.lock = threading.Lock()
        self.requests: list[Seen] = []
        #: called before the last 64 KiB of a longer body is sent (a test holds it there;
        #: False: the connection is cut there instead)
        self.hold: Callable[[Seen], bool | None] | None = None
        #: bytes per second each body is sent at (a slow link; 0: as fast as it goes)
        self.rate = 0.0
        #: close every connection after its first response, without saying so
        self.drop_kept = False
        #: connections accepted
        self.connections = 0
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def get_request(self) -> Any:
        accepted = super().get_request()
        with self.lock:
            self.connections += 1
        return accepted

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def sent(self, needle: str = "") -> int:
        with self.lock:
            return sum(r.sent for r in self.requests if needle in r.path)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.connections = 0

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def serve_blob(h: Handler, blob: Blob, honour_range: bool = True) -> Reply:
    data, etag = blob.current()
    if h.command == "GET":
        blob.served += 1
    headers = {"ETag": etag, "Accept-Ranges": "bytes" if honour_range else "none"}
    m = _RANGE.match(h.headers.get("Range", "").strip())
    if m and honour_range:
        first, last = m.groups()
        size = len(data)
        if first == "":
            start, end = max(0, size - int(last)), size
        else:
            start, end = int(first), min(size, int(last) + 1 if last else size)
        if start >= size:
            return 416, {"Content-Range": f"bytes */{size}"}, b""
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        return 206, headers, data[start:end]
    return 200, headers, data


@dataclass
class Faults:
    """Statuses to answer before serving, per path substring, used up one per request."""

    plan: dict[str, list[int]] = field(default_factory=dict)
    retry_after: str = "0"

    def take(self, path: str) -> Reply | None:
        for needle, statuses in self.plan.items():
            if needle in path and statuses:
                status = statuses.pop(0)
                return status, {"Retry-After": self.retry_after}, b"busy"
        return None


@dataclass
class Repo:
    files: dict[str, bytes]
    kind: str = "model"
    private: bool = False
    gated: bool = False
    sha: str = "0123456789abcdef0123456789abcdef01234567"


class CDN:
    """Serves blobs by key, honours Range unless told not to, records every header it got.
    A signed URL whose `Expires` has passed, or that was revoked, is refused with a 403."""

    def __init__(self) -> None:
        self.blobs: dict[str, Blob] = {}
        self.honour_range = True
        self.faults = Faults()
        #: signed URLs (their query strings) refused from now on, as an expired signature is
        self.revoked: set[str] = set()
        self.server = Server(self.route)

    def route(self, h: Handler) -> Reply:
        fault = self.faults.take(h.path)
        if fault:
            return fault
        query = urlsplit(h.path).query
        expires = parse_qs(query).get("Expires", [""])[0]
        if query in self.revoked or (expires.isdigit() and int(expires) < time.time()):
            return 403, {}, b"<Error><Code>AccessDenied</Code>Request has expired</Error>"
        key = urlsplit(h.path).path.rsplit("/", 1)[-1]
        blob = self.blobs.get(key)
        if blob is None:
            return 404, {}, b"no such blob"
        return serve_blob(h, blob, self.honour_range)


class FakeHub:
    """The Hub's API paths as huggingface_hub calls them, plus /resolve/ with a CDN redirect."""

    page_size = 2

    def __init__(self, cdn: CDN) -> None:
        self.cdn = cdn
        self.repos: dict[tuple[str, str], Repo] = {}
        self.blobs: dict[tuple[str, str, str], Blob] = {}
        self.faults = Faults()
        #: answer a refused token as huggingface.co does: no X-Error-Code, just the message
        self.bare_401 = False
        #: how long the CDN URLs it redirects to stay valid (their `Expires`)
        self.cdn_ttl = 3600
        #: redirects handed out, by the signed URL's query
        self.signed: list[str] = []
        self.server = Server(self.route)

    def add(self, repo_id: str, repo: Repo) -> None:
        self.repos[(repo.kind, repo_id)] = repo
        for path, data in repo.files.items():
            blob = Blob(data)
            self.blobs[(repo.kind, repo_id, path)] = blob
            self.cdn.blobs[hashlib.sha256(repo_id.encode() + path.encode()).hexdigest()] = blob

    def _access(self, h: Handler, repo: Repo | None) -> Reply | None:
        auth = h.headers.get("Authorization")
        if auth is not None and auth != f"Bearer {HF_GOOD_TOKEN}":
            headers = {"X-Error-Message": "Invalid credentials in Authorization header"}
            if not self.bare_401:
                headers["X-Error-Code"] = "RepoNotFound"
            return 401, headers, b'{"error":"Invalid credentials in Authorization header"}'

        if repo is None:
            return (
                404,
                {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
                b"{}",
            )
        if (repo.private or repo.gated) and auth is None:
            code = "GatedRepo" if repo.gated else "RepoNotFound"
            return 401, {"X-Error-Code": code, "X-Error-Message": "Access restricted"}, b"{}"
        return None

    def _split(self, rest: str, verbs: tuple[str, ...]) -> tuple[str, str, str] | None:
        """`org/repo/VERB/tail` -> (repo_id, verb, tail)."""
        for verb in verbs:
            m = re.match(rf"^(.+?)/{verb}(?:/(.*))?$", rest)
            if m:
                return m.group(1), verb, m.group(2) or ""
        return None

    def _entries(self, kind: str, repo_id: str, repo: Repo, folder: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        dirs: set[str] = set()
        prefix = folder + "/" if folder else ""
        for path in sorted(repo.files):
            if not path.startswith(prefix):
                continue
            parts = path.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d.startswith(prefix) and d not in dirs:
                    dirs.add(d)
                    out.append({"type": "directory", "oid": "d" * 40, "size": 0, "path": d})
            out.append(self._file_entry(repo_id, repo, path, kind))
        return out

    def _file_entry(self, repo_id: str, repo: Repo, path: str, kind: str) -> dict[str, Any]:
        data = repo.files[path]
        entry: dict[str, Any] = {"type": "file", "oid": "f" * 40, "size": len(data), "path": path}
        if not path.endswith((".md", ".json")):
            entry["lfs"] = {
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": 134,
            }
        return entry

    def route(self, h: Handler) -> Reply:
        fault = self.faults.take(h.path)
        if fault:
            return fault
        parts = urlsplit(h.path)
        path = parts.path
        m = re.match(r"^/api/(models|datasets)/(.+)$", path)
        if m:
            return self._api(
                h, m.group(1)[:-1], m.group(2), parse_qs(parts.query, keep_blank_values=True)
            )
        kind = "model"
        if path.startswith("/datasets/"):
            kind, path = "dataset", path[len("/datasets") :]
        split = self._split(path.lstrip("/"), ("resolve",))
        if split is None:
            return 404, {}, b"not found"
        repo_id, _, tail = split
        repo = self.repos.get((kind, repo_id))
        denied = self._access(h, repo)
        if denied:
            return denied
        assert repo is not None
        rev, _, file_path = tail.partition("/")
        file_path = unquote(file_path)
        if unquote(rev) not in ("main", repo.sha):
            return 404, {"X-Error-Code": "RevisionNotFound"}, b"{}"
        blob = self.blobs.get((kind, repo_id, file_path))
        if blob is None:
            return (
                404,
                {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"},
                b"{}",
            )
        if file_path.endswith((".md", ".json")):
            return serve_blob(h, blob)
        key = hashlib.sha256(repo_id.encode() + file_path.encode()).hexdigest()
        query = f"Expires={int(time.time()) + self.cdn_ttl}&X-Signature=abc{len(self.signed)}"
        self.signed.append(query)
        headers = {
            "Location": f"{self.cdn.server.url}/blobs/{key}?{query}",
            "X-Linked-Size": str(len(blob.data)),
            # as the Hub does for LFS files: the object id, a sha256 of the content
            "X-Linked-Etag": '"' + hashlib.sha256(blob.data).hexdigest() + '"',
        }
        return 302, headers, b""

    def _api(self, h: Handler, kind: str, rest: str, query: dict[str, list[str]]) -> Reply:
        split = self._split(rest, ("tree", "paths-info", "revision"))
        repo_id = split[0] if split else rest
        repo = self.repos.get((kind, repo_id))
        denied = self._access(h, repo)
        if denied:
            return denied
        assert repo is not None
        if split is None or split[1] == "revision":
            if split is not None and unquote(split[2]) not in ("main", repo.sha):
                return 404, {"X-Error-Code": "RevisionNotFound"}, b"{}"
            info = {
                "id": repo_id,
                "sha": repo.sha,
                "private": repo.private,
                "gated": repo.gated,
                "siblings": [{"rfilename": p} for p in sorted(repo.files)],
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()
        _, verb, tail = split
        rev, _, folder = tail.partition("/")
        if unquote(rev) not in ("main", repo.sha):
            return 404, {"X-Error-Code": "RevisionNotFound"}, b"{}"
        if verb == "paths-info":
            form = parse_qs(h.body.decode())
            out = []
            for p in form.get("paths", []):
                if p in repo.files:
                    out.append(self._file_entry(repo_id, repo, p, kind))
                elif any(f.startswith(p + "/") for f in repo.files):
                    out.append({"type": "directory", "oid": "d" * 40, "path": p})
            return 200, {"Content-Type": "application/json"}, json.dumps(out).encode()
        folder = unquote(folder)
        entries = self._entries(kind, repo_id, repo, folder)
        if folder and not entries:
            return 404, {"X-Error-Code": "EntryNotFound"}, b"{}"
        cursor = int(query.get("cursor", ["0"])[0])
        page = entries[cursor : cursor + self.page_size]
        headers = {"Content-Type": "application/json"}
        if cursor + self.page_size < len(entries):
            nxt = (
                f"{self.server.url}/api/{kind}s/{repo_id}/tree/{rev}"
                f"{'/' + quote(folder, safe='') if folder else ''}"
                f"?recursive=True&cursor={cursor + self.page_size}"
            )
            headers["Link"] = f'<{nxt}>; rel="next"'
        return 200, headers, json.dumps(page).encode()


class FakeArtifactory:
    """Storage API, file downloads with Range, and both JFrog token styles."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Blob]] = {}
        self.private: set[str] = set()
        self.deep_list = True
        self.server = Server(self.route)

    def add(self, repo: str, files: dict[str, bytes], private: bool = False) -> None:
        self.repos[repo] = {p: Blob(d) for p, d in files.items()}
        if private:
            self.private.add(repo)

    def _authorised(self, h: Handler, repo: str) -> Reply | None:
        key = h.headers.get("X-JFrog-Art-Api")
        bearer = h.headers.get("Authorization")
        if key is not None and key != JFROG_API_KEY:
            return 401, {}, b'{"errors":[{"status":401,"message":"Bad API key"}]}'
        if bearer is not None and bearer != f"Bearer {JFROG_ACCESS}":
            return 401, {}, b'{"errors":[{"status":401,"message":"Bad credentials"}]}'
        if repo in self.private and key is None and bearer is None:
            return 401, {}, b'{"errors":[{"status":401,"message":"Unauthorized"}]}'
        return None

    def route(self, h: Handler) -> Reply:
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        storage = path.startswith("/artifactory/api/storage/")
        rest = path[len("/artifactory/api/storage/") if storage else len("/artifactory/") :]
        repo, _, inner = rest.partition("/")
        inner = inner.strip("/")
        denied = self._authorised(h, repo)
        if denied:
            return denied
        files = self.repos.get(repo)
        missing: tuple[int, dict[str, str], bytes] = (
            404,
            {},
            b'{"errors":[{"status":404,"message":"Not found"}]}',
        )
        if files is None:
            return missing
        if not storage:
            blob = files.get(inner)
            if blob is None:
                return missing
            status, headers, body = serve_blob(h, blob)
            headers["X-Checksum-Sha256"] = hashlib.sha256(blob.data).hexdigest()
            return status, headers, body
        prefix = inner + "/" if inner else ""
        uri = f"{self.server.url}/artifactory/api/storage/{repo}/{inner}"
        if inner in files:
            data = files[inner].data
            info = {
                "repo": repo,
                "path": "/" + inner,
                "size": str(len(data)),
                "uri": uri,
                "checksums": {
                    "sha1": hashlib.sha1(data).hexdigest(),
                    "md5": hashlib.md5(data).hexdigest(),
                    "sha256": hashlib.sha256(data).hexdigest(),
                },
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()
        under = sorted(p for p in files if p.startswith(prefix))
        if not under:
            return missing
        if "list" in parts.query:
            if not self.deep_list:
                return 400, {}, b'{"errors":[{"status":400,"message":"Bad request"}]}'
            listed = [
                {
                    "uri": "/" + p[len(prefix) :],
                    "size": len(files[p].data),
                    "folder": False,
                    "sha1": hashlib.sha1(files[p].data).hexdigest(),
                    "sha2": hashlib.sha256(files[p].data).hexdigest(),
                }
                for p in under
            ]
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"uri": uri, "files": listed}).encode(),
            )
        children: dict[str, bool] = {}
        for p in under:
            head, sep, _ = p[len(prefix) :].partition("/")
            children[head] = bool(sep) or children.get(head, False)
        listing: dict[str, object] = {
            "repo": repo,
            "path": "/" + inner,
            "uri": uri,
            "children": [{"uri": "/" + c, "folder": f} for c, f in sorted(children.items())],
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(listing).encode()


def onnx_with_tensors(tensors: int, floats: int) -> bytes:
    """An ONNX model with `tensors` embedded initializers of `floats` zeros each: a walk of
    one record per tensor for the range planner."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.zeros(floats, np.float32), name=f"w{i}") for i in range(tensors)
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [floats])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [floats])
    node = helper.make_node("Add", ["x", "w0"], ["y"], name="add")
    graph = helper.make_graph([node], "g", [x], [y], initializer=inits)
    return bytes(helper.make_model(graph).SerializeToString())


async def same_findings_as_local(report: Any, data: bytes, tmp_path: Path) -> None:
    """The report's one file is complete, with the findings a scan of `data` as a local
    file makes."""
    import modelaudit
    from modelaudit.findings import FileStatus

    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    local = tmp_path / "local.onnx"
    local.write_bytes(data)
    (whole,) = (await modelaudit.scan(str(local))).files
    assert [i.message for i in file.issues] == [i.message for i in whole.issues]


def pin_link(url: str, latency: float, bandwidth: float) -> None:
    """Fix what the planner believes of `url`'s server, so its choice does not depend on
    how busy this machine is."""
    from modelaudit.engine import link

    parts = urlsplit(url)
    link.pin(f"{parts.scheme}://{parts.hostname}:{parts.port}", latency, bandwidth)


def pin_slow_link(url: str, bandwidth: float = 1e6) -> None:
    """Make requests to `url`'s server look cheap next to a download (1 ms, 1 MB/s), so the
    planner reads ranges however small the object: for tests about what a plan reads."""
    from urllib.parse import urlsplit

    from modelaudit.engine import link

    parts = urlsplit(url)
    link.pin(f"{parts.scheme}://{parts.hostname}:{parts.port}", 0.001, bandwidth)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`modelaudit scan ARGS` in a child process, with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--no-progress", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
