"""Credential canaries never appear in any report format, log line or error message."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelaudit.redact import (
    PLACEHOLDER,
    Redactor,
    redact,
    redact_argv,
    redact_text,
    redact_uri,
    secret_values,
)
from tests.hardening._hardening_util import write_hostile

CANARIES = {
    "HF_TOKEN": "hf_CanaryHfToken0001",
    "AWS_ACCESS_KEY_ID": "AKIACANARY0000000002",
    "AWS_SECRET_ACCESS_KEY": "canary/Aws+Secret=Key0003",
    "AWS_SESSION_TOKEN": "CanaryAwsSessionToken0004",
    "JFROG_API_TOKEN": "CanaryJfrogApiToken0005",
    "JFROG_ACCESS_TOKEN": "CanaryJfrogAccessToken0006",
    "MLFLOW_TRACKING_PASSWORD": "CanaryMlflowPassword0007",
    "MLFLOW_TRACKING_USERNAME": "canary-mlflow-user-0008",
    "MLFLOW_TRACKING_TOKEN": "CanaryMlflowToken0009",
}
GOOGLE_KEY = (
    "-----BEGIN PRIVATE KEY-----\nCanaryGooglePrivateKeyLine0010abc\n-----END PRIVATE KEY-----\n"
)
GOOGLE_KEY_ID = "canarygooglekeyid0011"
CLI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_hostile_cli.py")


#: Identifiers, not secrets: shown where they occur (masking them mangled paths, issue 13).
IDENTIFIERS = ("AWS_ACCESS_KEY_ID", "MLFLOW_TRACKING_USERNAME")


def _needles() -> list[bytes]:
    values = [v for k, v in CANARIES.items() if k not in IDENTIFIERS]
    values.append("CanaryGooglePrivateKeyLine0010abc")
    return [v.encode() for v in values]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Reflector(BaseHTTPRequestHandler):
    """A hostile server: answers every request with an error that quotes its headers."""

    def _reflect(self) -> None:
        body = json.dumps({"error": "denied", "headers": dict(self.headers)}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo-Auth", self.headers.get("Authorization", ""))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _reflect

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def reflector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Reflector)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def canary_env(tmp_path, reflector: str) -> dict[str, str]:
    google = tmp_path / "service-account.json"
    google.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "canary-project",
                "private_key_id": GOOGLE_KEY_ID,
                "private_key": GOOGLE_KEY,
                "client_email": "canary-sa-0012@canary-project.iam.gserviceaccount.com",
            }
        )
    )
    closed = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HF_", "JFROG"))}
    env.update(CANARIES)
    env.update(
        GOOGLE_APPLICATION_CREDENTIALS=str(google),
        HF_ENDPOINT=reflector,
        AWS_ENDPOINT_URL=closed,
        GCS_ENDPOINT_URL=closed,
        MLFLOW_TRACKING_URI=reflector,
        JFROG_URL=f"{reflector}/artifactory",
        NO_COLOR="1",
    )
    return env


def _targets(tmp_path, reflector: str) -> list[str]:
    from tests.hardening._malicious_corpus import build_corpus

    local = tmp_path / "local"
    build_corpus(str(local), str(tmp_path / "sentinels"))
    for name in CANARIES:
        write_hostile(str(local), f"leak-{name}.hostile", "leak-env", name)
    port = _closed_port()
    return [
        str(local),
        f"http://canary-user:{CANARIES['HF_TOKEN']}@127.0.0.1:{port}/model.pkl",
        f"{reflector}/plain/model.pkl",
        "hf://canary-org/canary-model",
        "s3://canary-bucket/model.pkl",
        "gs://canary-bucket/model.pkl",
        "models:/canary-model/1",
        f"{reflector}/artifactory/canary-repo/model.pkl",
    ]


def test_no_canary_in_any_output(tmp_path, canary_env, reflector: str) -> None:
    """Every format, with --verbose, over local files and remote targets that all fail."""
    targets = _targets(tmp_path, reflector)
    runs = {}
    for fmt in ("text", "json", "sarif"):
        out = tmp_path / f"report.{fmt}"
        argv = [sys.executable, CLI, "scan", *targets, "-f", fmt, "-o", str(out)]
        argv += ["--verbose", "--no-progress", "--timeout", "60"]
        argv += ["--sbom", str(tmp_path / f"sbom-{fmt}.json")]
        proc = subprocess.Popen(
            argv, env=canary_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        runs[fmt] = (proc, out)
    for fmt, (proc, out) in runs.items():
        stdout, stderr = proc.communicate(timeout=120)
        report = out.read_bytes() + (tmp_path / f"sbom-{fmt}.json").read_bytes()
        assert proc.returncode in (1, 2), stderr.decode()[-3000:]
        assert b"canary-bucket" in report, fmt  # the failing remote targets are reported
        assert b"leak-HF_TOKEN.hostile" in report, fmt
        assert b"modelaudit: DEBUG" in stderr or b"modelaudit: WARNING" in stderr
        for needle in _needles():
            assert needle not in report, (fmt, needle)
            assert needle not in stdout, (fmt, needle)
            assert needle not in stderr, (fmt, needle)


def test_no_canary_in_the_python_api(
    tmp_path, canary_env, reflector: str, monkeypatch, hostile
) -> None:
    from modelaudit.core import scan_model_directory_or_file

    for key, value in canary_env.items():
        monkeypatch.setenv(key, value)
    targets = [t for t in _targets(tmp_path, reflector) if "://" not in t or "/plain/" in t]
    targets += ["hf://canary-org/canary-model", "models:/canary-model/1"]
    result = scan_model_directory_or_file(targets, timeout=60)
    blob = json.dumps(result).encode()
    assert b"canary-model" in blob
    assert b"saw " + PLACEHOLDER.encode() in blob
    for needle in _needles():
        assert needle not in blob, needle


def test_secret_values_come_from_names_and_the_google_file(tmp_path) -> None:
    google = tmp_path / "sa.json"
    google.write_text(json.dumps({"private_key": GOOGLE_KEY, "client_id": "1234567890"}))
    env = {
        "HF_TOKEN": "hf_abcdefgh",
        "MY_SERVICE_PASSWORD": "longenough-value",
        "SHORT_TOKEN": "1",
        "PATH": "/usr/bin",
        "GOOGLE_APPLICATION_CREDENTIALS": str(google),
    }
    values = secret_values(env)
    assert "hf_abcdefgh" in values and "longenough-value" in values
    assert "1" not in values and "/usr/bin" not in values
    assert GOOGLE_KEY in values and "CanaryGooglePrivateKeyLine0010abc" in values


def test_identifiers_are_not_secrets(tmp_path) -> None:
    google = tmp_path / "sa.json"
    google.write_text(
        json.dumps(
            {
                "private_key": GOOGLE_KEY,
                "private_key_id": GOOGLE_KEY_ID,
                "client_email": "sa@project.iam.gserviceaccount.com",
                "client_id": "1234567890",
            }
        )
    )
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAIDENTIFIER000001",
        "R2_ACCESS_KEY_ID": "r2-identifier-000001",
        "MLFLOW_TRACKING_USERNAME": "admin-user",
        "MY_SERVICE_API_KEY_ID": "identifier-000001",
        "MY_TOKEN_URL": "https://tokens.example/issue",
        "GOOGLE_APPLICATION_CREDENTIALS": str(google),
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    assert set(secret_values(env)) >= {"test", GOOGLE_KEY}
    for value in (*list(env.values())[:-1], GOOGLE_KEY_ID, "1234567890"):
        assert value not in secret_values(env)


def test_whole_occurrences_never_inside_names(monkeypatch) -> None:
    from modelaudit.findings import FileStatus, Issue, IssueSeverity
    from modelaudit.redact import redact_report
    from modelaudit.report import FileReport, ScanReport

    assert Redactor(["abc1"]).text("xabc12 abc1 _abc1 abc1.") == (
        f"xabc12 {PLACEHOLDER} _abc1 {PLACEHOLDER}."
    )
    for name in list(os.environ):
        if name in CANARIES or name.startswith(("AWS_", "HF_", "JFROG")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    path = "s3://models/test-models/latest_model.pkl"
    member = "archive/test.pkl"
    fr = FileReport(path=path, status=FileStatus.ERROR)
    fr.status_reason = f"{path}: signature test refused (attest)"
    fr.issues.append(
        Issue(
            message=f"saw test in {member}",
            severity=IssueSeverity.INFO,
            location=f"{path}:{member} (pos 3)",
            details={"value": "test", "member": member},
        )
    )
    report = ScanReport(targets=[path], files=[fr], command_line=["scan", path, "test"])
    report.target_errors.append({"target": path, "error": "key test! no test-models"})
    redact_report(report)
    assert fr.path == path
    assert fr.status_reason == f"{path}: signature {PLACEHOLDER} refused (attest)"
    assert fr.issues[0].message == f"saw {PLACEHOLDER} in {member}"
    assert fr.issues[0].location == f"{path}:{member} (pos 3)"
    assert fr.issues[0].details == {"value": PLACEHOLDER, "member": member}
    assert report.target_errors == [{"target": path, "error": f"key {PLACEHOLDER}! no test-models"}]
    assert report.command_line == ["scan", path, PLACEHOLDER]


def test_written_reports_keep_the_names_they_are_about(monkeypatch) -> None:
    """The bytes written (the report, stderr lines, the SBOM) are masked again with the
    report's own names protected: a secret value inside a path stays, a whole one elsewhere
    goes; with no secret configured nothing is looked for."""
    from modelaudit.redact import report_redactor
    from modelaudit.report import FileReport, ScanReport

    for name in list(os.environ):
        if name in CANARIES or name.startswith(("AWS_", "HF_", "JFROG")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    path = "s3://models/test-models/latest_model.pkl"
    report = ScanReport(targets=[path], files=[FileReport(path=path)])
    written = f'{{"path": "{path}", "note": "test"}}'.encode()
    assert report_redactor(report).bytes(written) == (
        f'{{"path": "{path}", "note": "{PLACEHOLDER}"}}'.encode()
    )
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    red = report_redactor(report)
    assert red.knows_none and red.bytes(written) == written


def test_redaction_covers_escaped_forms() -> None:
    secret = 'a/b+c="d"\nline2'
    text = json.dumps({"msg": f"token {secret}"}) + repr(secret) + "?t=a%2Fb%2Bc%3D%22d%22%0Aline2"
    cleaned = redact(text, [secret])
    assert "line2" not in cleaned and cleaned.count(PLACEHOLDER) == 3
    assert Redactor([secret]).bytes(f"x {secret} y".encode()) == f"x {PLACEHOLDER} y".encode()


def test_uri_and_argv_redaction(monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_SecretInArgs01")
    assert redact_uri("https://bob:pw@host/x?X-Amz-Signature=abc&a=1") == (
        f"https://{PLACEHOLDER}@host/x?X-Amz-Signature={PLACEHOLDER}&a=1"
    )
    assert redact_text("GET https://u:p@h/m failed") == f"GET https://{PLACEHOLDER}@h/m failed"
    assert redact_argv(["modelaudit", "scan", "hf_SecretInArgs01"]) == [
        "modelaudit",
        "scan",
        PLACEHOLDER,
    ]


def test_quoted_credential_headers_are_masked_whatever_their_value() -> None:
    line = "{'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAX/1, Signature=ab12', 'X-Amz-Date': b'1'}"
    assert redact_text(line, []) == f"{{'Authorization': b'{PLACEHOLDER}', 'X-Amz-Date': b'1'}}"
    assert redact_text("Authorization: Bearer unknown-token\nnext", []) == (
        f"Authorization: Bearer {PLACEHOLDER}\nnext"
    )
    assert redact_text("the authorization failed", []) == "the authorization failed"


@pytest.mark.parametrize(
    "value",
    [
        "see https://bob:pw@host/m?sig=abc",
        "header Authorization: Bearer abc",
        "cookie=abc",
        'quoted "x-api-key": abc',
        ["nested", {"deep": "https://u:p@h/x"}],
    ],
)
def test_large_report_metadata_is_still_masked(monkeypatch, value: object) -> None:
    """A sweep's report takes a shortcut past metadata that cannot need masking (no secret
    known, one dump of it all); a URL or header hidden in one file's metadata, in any of
    the spellings the shortcut must notice, is masked as in a small report."""
    from modelaudit.findings import FileStatus
    from modelaudit.redact import redact_report
    from modelaudit.report import FileReport, ScanReport

    for name in list(os.environ):
        if name in CANARIES or name.startswith(("AWS_", "HF_", "JFROG", "MLFLOW", "GOOGLE")):
            monkeypatch.delenv(name)
    files = [
        FileReport(path=f"/m/{n}.npy", status=FileStatus.COMPLETE, metadata={"k": "v", "n": n})
        for n in range(300)
    ]
    files[150].metadata = {"format_details": {"note": value}}
    report = ScanReport(targets=["/m"], files=files)
    redact_report(report)
    masked = json.dumps(files[150].metadata)
    assert PLACEHOLDER in masked
    assert "abc" not in masked and "pw@" not in masked and "u:p@" not in masked
    assert files[0].metadata == {"k": "v", "n": 0}
