"""Local servers and sample models for the cloud-fetcher tests (S3/R2, GCS, MLflow, DVC).

Each server runs as a child process on 127.0.0.1 on a free port, so its global state (moto's
auth switch, the emulator's buckets) cannot leak into the test process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: A protocol-2 pickle whose REDUCE calls posix.system("id"): built from bytes, never loaded.
EVIL_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."

S3_BUCKET = "models-private"
R2_BUCKET = "r2-models"
GCS_BUCKET = "gcs-models"
GCS_PRIVATE_BUCKET = "gcs-private"

CLOUD_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "STORAGE_EMULATOR_HOST",
    "GCS_ENDPOINT_URL",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)


def clean_safetensors() -> bytes:
    from safetensors.numpy import save

    return save({"weight": np.arange(64, dtype=np.float32).reshape(8, 8)})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes], deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def start_process(
    args: Sequence[str], url: str, deadline: float = 120.0, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start a server and wait for `url` to answer; generous deadline for a loaded machine."""
    proc = subprocess.Popen(
        list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs
    )
    try:
        wait_http(url, proc, deadline)
    except BaseException:
        stop(proc)
        raise
    return proc


@dataclass
class MotoServer:
    endpoint: str
    key_id: str
    secret: str
    proc: subprocess.Popen[bytes]

    def admin(self, service: str = "s3") -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )


def start_moto(buckets: Mapping[str, Mapping[str, bytes]], enforce_auth: bool) -> MotoServer:
    """A moto S3 server holding `buckets`; with `enforce_auth`, only its IAM user's key works."""
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = start_process(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        endpoint + "/moto-api/",
    )
    boot = {"aws_access_key_id": "boot", "aws_secret_access_key": "boot"}
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", **boot)
    iam.create_user(UserName="scanner")
    policy = iam.create_policy(
        PolicyName="read-models",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    iam.attach_user_policy(UserName="scanner", PolicyArn=policy["Policy"]["Arn"])
    key = iam.create_access_key(UserName="scanner")["AccessKey"]
    server = MotoServer(endpoint, key["AccessKeyId"], key["SecretAccessKey"], proc)
    s3 = server.admin()
    for bucket, objects in buckets.items():
        s3.create_bucket(Bucket=bucket)
        for name, data in objects.items():
            s3.put_object(Bucket=bucket, Key=name, Body=data)
    if enforce_auth:
        request = urllib.request.Request(
            endpoint + "/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).read()
    return server


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any cloud variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in CLOUD_ENV}
    env.update(extra)
    return env


def run_cli(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--no-progress", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=180,
    )


@dataclass
class MlflowServer:
    url: str
    user: str
    password: str
    proc: subprocess.Popen[bytes]
    admin: tuple[str, str]

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        import base64

        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        token = base64.b64encode(":".join(self.admin).encode()).decode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Basic {token}",
                "Content-Type": "application/octet-stream"
                if raw is not None
                else "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text.strip() else {}

    def register(self, name: str, files: Mapping[str, bytes], source: str | None = None) -> str:
        """A new version of `name` whose artifacts are `files`, uploaded through the proxy."""
        api = "/api/2.0/mlflow"
        experiment = self.call("GET", f"{api}/experiments/get-by-name?experiment_name=Default")
        run = self.call(
            "POST",
            f"{api}/runs/create",
            {"experiment_id": experiment["experiment"]["experiment_id"]},
        )["run"]["info"]
        base = run["artifact_uri"].split(":", 1)[1].lstrip("/")
        for rel, data in files.items():
            self.call("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{base}/model/{rel}", raw=data)
        try:
            self.call("POST", f"{api}/registered-models/create", {"name": name})
        except urllib.error.HTTPError as exc:
            if exc.code != 400:
                raise
        version = self.call(
            "POST",
            f"{api}/model-versions/create",
            {
                "name": name,
                "source": source or f"{run['artifact_uri']}/model",
                "run_id": run["run_id"],
            },
        )["model_version"]["version"]
        return str(version)


@dataclass
class MlflowModels:
    server: MlflowServer
    s3_version: str


def launch_mlflow(folder: str) -> MlflowServer:
    """Start a real `mlflow server` (basic auth, sqlite store, proxied artifacts) without
    waiting: it takes seconds to import, so the tests start it early and `ready` it later."""
    admin = ("admin", "admin-pass-4417")
    ini = os.path.join(folder, "auth.ini")
    with open(ini, "w") as f:
        f.write(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = sqlite:///{folder}/auth.db\n"
            f"admin_username = {admin[0]}\nadmin_password = {admin[1]}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            "grant_default_workspace_access = false\nauth_cache_ttl_seconds = 600\n"
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, MLFLOW_AUTH_CONFIG_PATH=ini, MLFLOW_FLASK_SERVER_SECRET_KEY="t3st")
    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    args = [exe, "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db"]
    args += ["--artifacts-destination", os.path.join(folder, "artifacts"), "--serve-artifacts"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--app-name", "basic-auth"]
    args += ["--workers", "1"]
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=folder
    )
    return MlflowServer(url, "scanner", "scanner-pass-9921", proc, admin)


def ready_mlflow(server: MlflowServer) -> MlflowServer:
    """Wait for a launched server and add the read-only user the scans log in as."""
    try:
        wait_http(server.url + "/health", server.proc, 300.0)
    except BaseException:
        stop(server.proc)
        raise
    server.call(
        "POST",
        "/api/2.0/mlflow/users/create",
        {"username": server.user, "password": server.password},
    )
    return server


@dataclass
class GcsEmulator:
    url: str
    proc: subprocess.Popen[bytes]

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test",
            data=json.dumps({"name": name}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    def upload(self, bucket: str, name: str, data: bytes) -> None:
        from urllib.parse import quote

        request = urllib.request.Request(
            f"{self.url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(name)}",
            data=data,
            method="POST",
            headers={"Content-Type": "application/octet-stream"},
        )
        urllib.request.urlopen(request, timeout=10).read()


def start_gcs_emulator() -> GcsEmulator:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    exe = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
    args = [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "-q"]
    return GcsEmulator(url, start_process(args, url + "/"))


def _send(handler: Any, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    """One whole answer from a stand-in server's request handler."""
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class GcsFront:
    """What gcp-storage-emulator lacks of GCS's media downloads, in front of it: it ignores a
    suffix Range (`bytes=-N`: it answers 200 with the whole object) and `ifGenerationMatch`,
    and its answers carry no `x-goog-generation` (nor `x-goog-hash` on a ranged one). This
    front answers a media GET as GCS does, from the emulator's own object and metadata
    (fetched behind the scenes, not counted): 206 with Content-Range for any Range, 416 past
    the end, 412 for another generation, and the x-goog-* headers. Everything else is
    passed through. `requests` are what the scans sent, as the server side saw them:
    ("media", Range or "whole") or ("meta", path). With `deny`, every request gets that
    status and GCS's error document."""

    def __init__(self, upstream: str, deny: int | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.upstream = upstream
        self.deny = deny
        self.requests: list[tuple[str, str]] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                url = urlsplit(self.path)
                query = parse_qs(url.query)
                media = query.get("alt") == ["media"]
                rng = self.headers.get("Range", "whole")
                front.requests.append(("media", rng) if media else ("meta", self.path))
                if front.deny:
                    error = {"error": {"code": front.deny, "message": "denied"}}
                    _send(self, front.deny, json.dumps(error).encode(), {})
                    return
                if not media:
                    _send(self, *front.fetch(self.path))
                    return
                status, raw, _ = front.fetch(url.path)
                if status != 200:
                    _send(self, status, raw, {"Content-Type": "application/json"})
                    return
                meta = json.loads(raw)
                wanted = query.get("ifGenerationMatch")
                if wanted and wanted != [str(meta["generation"])]:
                    _send(self, 412, b'{"error": {"code": 412}}', {})
                    return
                size = int(meta["size"])
                headers = {
                    "Content-Type": "application/octet-stream",
                    "x-goog-generation": str(meta["generation"]),
                    "x-goog-metageneration": str(meta.get("metageneration", 1)),
                    "x-goog-stored-content-length": str(size),
                    "x-goog-stored-content-encoding": "identity",
                    "x-goog-hash": f"crc32c={meta['crc32c']},md5={meta['md5Hash']}",
                }
                media_path = url.path + "?alt=media"
                if rng == "whole":
                    _send(self, 200, front.fetch(media_path)[1], headers)
                    return
                first, _, last = rng.removeprefix("bytes=").partition("-")
                if not first:
                    start, end = max(0, size - int(last)), size
                else:
                    start, end = int(first), min(size, int(last) + 1 if last else size)
                if start >= size:
                    headers["Content-Range"] = f"bytes */{size}"
                    _send(self, 416, b"", headers)
                    return
                # (the emulator serves a range FIRST-LAST itself)
                data = front.fetch(media_path, f"bytes={start}-{end - 1}")[1]
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
                _send(self, 206, data, headers)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def fetch(self, path: str, rng: str = "") -> tuple[int, bytes, dict[str, str]]:
        """The emulator's own answer (status, body, Content-Type)."""
        request = urllib.request.Request(
            self.upstream + path, headers={"Range": rng} if rng else {}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, data, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            status, data, kind = exc.code, exc.read(), exc.headers
        return status, data, {"Content-Type": kind.get("Content-Type") or "application/json"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GcsAuthProxy:
    """Google's token endpoint and an authenticated front for the emulator, on one port.

    `POST /token` checks the service account's signed JWT with its public key and hands out
    an access token; every other request needs that token as a Bearer header and is passed on
    to the emulator, so GOOGLE_APPLICATION_CREDENTIALS is exercised end to end.
    """

    def __init__(self, upstream: str, key_file: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_key = key.public_key()
        self.token = "ya29.test-access-token-5521"
        self.upstream = upstream
        #: every object request as it arrived (path, its Range or "whole")
        self.requests: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                from urllib.parse import parse_qs

                import jwt

                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                try:
                    jwt.decode(
                        form["assertion"][0],
                        proxy.public_key,
                        algorithms=["RS256"],
                        audience=f"{proxy.url}/token",
                    )
                except Exception:
                    _send(self, 400, b'{"error": "invalid_grant"}', {})
                    return
                body = {"access_token": proxy.token, "expires_in": 3600, "token_type": "Bearer"}
                _send(self, 200, json.dumps(body).encode(), {"Content-Type": "application/json"})

            def do_GET(self) -> None:
                proxy.requests.append((self.path, self.headers.get("Range", "whole")))
                if self.headers.get("Authorization") != f"Bearer {proxy.token}":
                    body = b'{"error": {"code": 401, "message": "Anonymous caller"}}'
                    _send(self, 401, body, {"Content-Type": "application/json"})
                    return
                headers = {"Range": self.headers["Range"]} if "Range" in self.headers else {}
                request = urllib.request.Request(proxy.upstream + self.path, headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, data, got = response.status, response.read(), response.headers
                except urllib.error.HTTPError as exc:
                    status, data, got = exc.code, exc.read(), exc.headers
                keep = {k: v for k, v in got.items() if k.lower().startswith("x-goog-")}
                for name in ("Content-Type", "Content-Range", "ETag"):
                    if got.get(name):
                        keep[name] = got[name]
                _send(self, status, data, keep)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.key_file = key_file
        with open(key_file, "w") as f:
            json.dump(
                {
                    "type": "service_account",
                    "project_id": "test",
                    "private_key_id": "k1",
                    "private_key": pem,
                    "client_email": "scanner@test.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": f"{self.url}/token",
                },
                f,
            )
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FlakyProxy:
    """A pass-through HTTP front that fails on purpose: the first `fail_first` requests get a
    503, the first GET of a body over 64 KiB (the whole object, or the rest of it after the
    planner's head and tail; not a suffix range, which only a listing's first read sends) is
    cut off halfway through (`cut_sent` says how many bytes of it went out), and GETs of the paths in `gone` answer S3's NoSuchKey (an object deleted after
    it was listed). Headers (Host, Authorization) are forwarded untouched, so signed requests
    still verify upstream. `events` are in the order responses were ready, which for requests
    sent in parallel is not the order they were sent in."""

    def __init__(
        self, upstream: str, fail_first: int = 2, gone: Sequence[str] = (), cut: bool = True
    ) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        target = urlsplit(upstream)
        self.events: list[str] = []
        self.paths: list[str] = []
        #: every request's headers, lower-cased names, as the server side saw them
        self.headers: list[dict[str, str]] = []
        #: every request as it arrived: method, its Range ("whole": none), its headers
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_left = fail_first
        #: (`cut` False: no body is cut)
        self.cut_done = not cut
        self.cut_sent = 0
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _relay(self, method: str) -> None:
                proxy.paths.append(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                proxy.headers.append(headers)
                proxy.requests.append((method, headers.get("range", "whole"), headers))
                with lock:
                    fail = proxy.fail_left > 0
                    proxy.fail_left -= int(fail)
                if method == "GET" and self.path.split("?")[0] in gone:
                    proxy.events.append("gone")
                    body = b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
                    self.send_response(404)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if fail:
                    proxy.events.append("503")
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
                conn.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    conn.putheader(name, value)
                conn.endheaders()
                response = conn.getresponse()
                body = response.read()
                conn.close()
                rng = self.headers.get("Range")
                with lock:
                    cut = method == "GET" and len(body) > 65536
                    cut = cut and not (rng or "").startswith("bytes=-")
                    cut = cut and not proxy.cut_done
                    proxy.cut_done = proxy.cut_done or cut
                proxy.events.append(
                    f"cut {rng or 'whole'}" if cut else f"{method} {rng or 'whole'}"
                )
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.end_headers()
                if method == "HEAD":
                    return
                if cut:
                    proxy.cut_sent = len(body) // 2
                    self.wfile.write(body[: proxy.cut_sent])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._relay("GET")

            def do_HEAD(self) -> None:
                self._relay("HEAD")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
