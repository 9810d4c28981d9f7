"""User name and password in an http(s) URL: every request to that origin carries them, the
ranged reads over `http.client` as much as httpx's; a redirect elsewhere carries none; a
refusal says which credential was refused; the password is never shown."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from tests.remote_http._remote_http_servers import Blob, Reply, Server, run_cli, serve_blob

USER, PASSWORD = "reader", "pw-7f3c9a1e"
GOOD = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture
def servers(samples: dict[str, bytes]) -> Iterator[tuple[Server, Server]]:
    """An origin that wants Basic auth and redirects /moved/NAME to a CDN, and the CDN."""
    blobs = {
        "model.safetensors": Blob(samples["big_safetensors"]),
        "evil.pkl": Blob(samples["evil_pickle"]),
    }

    def cdn_route(h: Any) -> Reply:
        return serve_blob(h, blobs[h.path.lstrip("/").split("?", 1)[0]])

    cdn = Server(cdn_route)

    def origin_route(h: Any) -> Reply:
        if h.headers.get("Authorization") != GOOD:
            return 401, {"WWW-Authenticate": 'Basic realm="models"'}, b""
        name = h.path.lstrip("/")
        if name.startswith("moved/"):
            return 302, {"Location": f"{cdn.url}/{name[6:]}"}, b""
        return serve_blob(h, blobs[name])

    origin = Server(origin_route)
    yield origin, cdn
    origin.stop()
    cdn.stop()


def _url(server: Server, name: str, password: str = PASSWORD) -> str:
    return server.url.replace("http://", f"http://{USER}:{password}@") + "/" + name


def test_ranged_reads_carry_the_urls_credentials(servers: tuple[Server, Server]) -> None:
    origin, _ = servers
    clean = run_cli(_url(origin, "model.safetensors"))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    evil = run_cli(_url(origin, "evil.pkl"), "-f", "json")
    assert evil.returncode == 1, evil.stdout + evil.stderr
    assert '"severity":"critical"' in evil.stdout
    gets = [r for r in origin.requests if r.method == "GET"]
    assert gets and all("range" in r.headers for r in gets)
    assert all(r.headers.get("authorization") == GOOD for r in origin.requests)
    for proc in (clean, evil):
        assert PASSWORD not in proc.stdout + proc.stderr


def test_a_redirect_elsewhere_carries_no_credentials(servers: tuple[Server, Server]) -> None:
    origin, cdn = servers
    proc = run_cli(_url(origin, "moved/model.safetensors"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cdn.requests
    assert not [r for r in cdn.requests if "authorization" in r.headers]


def test_a_refused_password_is_named_not_shown(servers: tuple[Server, Server]) -> None:
    origin, _ = servers
    proc = run_cli(_url(origin, "evil.pkl", password="wrong-secret-1234"))
    assert proc.returncode == 2
    assert "user name and password given in the URL" in proc.stdout + proc.stderr
    assert "wrong-secret-1234" not in proc.stdout + proc.stderr


def test_urls_shown_and_sent_keep_an_ipv6_hosts_brackets() -> None:
    from modelaudit.fetchers.http import display_url, split_userinfo

    assert display_url(f"http://{USER}:{PASSWORD}@[::1]:8080/m.pkl?sig=x") == (
        "http://[::1]:8080/m.pkl"
    )
    bare, auth = split_userinfo(f"http://{USER}:{PASSWORD}@[::1]:8080/m.pkl?a=1")
    assert bare == "http://[::1]:8080/m.pkl?a=1"
    assert auth == {"Authorization": GOOD}
