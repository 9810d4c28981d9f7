"""Keep credentials out of everything modelaudit prints, logs or writes.

Credentials reach us only through environment variables (and the Google service-account file
one of them names), so we know every secret value up front. Error messages from HTTP and
cloud libraries may quote headers, URLs or request signatures; rather than trusting each call
site, reports, log lines and error messages pass through `redact`, which replaces every known
secret value, in the escaped forms it may take in JSON or a repr, with a placeholder.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from .report import ScanReport

PLACEHOLDER = "***"

#: Variables that hold a credential, whatever their value looks like.
CREDENTIAL_VARIABLES: tuple[str, ...] = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_TOKEN",
    "HF_API_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "CLOUDFLARE_API_TOKEN",
    "JFROG_API_TOKEN",
    "JFROG_ACCESS_TOKEN",
    "ARTIFACTORY_API_KEY",
    "ARTIFACTORY_ACCESS_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "DATABRICKS_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "GOOGLE_API_KEY",
)
#: Any other variable named like a credential is treated as one if its value is long enough
#: not to collide with ordinary words.
_NAME_PATTERN = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE
)
_GOOGLE_FILE = "GOOGLE_APPLICATION_CREDENTIALS"
_GOOGLE_SECRET_KEYS = (
    "private_key",
    "private_key_id",
    "client_secret",
    "refresh_token",
    "client_id",
    "client_email",
    "access_token",
)
_MIN_NAMED = 4
_MIN_PATTERN = 8

_google_cache: dict[tuple[str, float], list[str]] = {}


def _google_secrets(path: str) -> list[str]:
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime)
        if key in _google_cache:
            return _google_cache[key]
        if stat.st_size > 1 << 20:
            return []
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return []
    found: list[str] = []
    if isinstance(data, dict):
        for name in _GOOGLE_SECRET_KEYS:
            value = data.get(name)
            if isinstance(value, str) and len(value) >= _MIN_NAMED:
                found.append(value)
                # PEM bodies are also matched line by line, in case only a part is quoted.
                found += [line for line in value.splitlines() if len(line) >= 16]
    _google_cache.clear()
    _google_cache[key] = found
    return found


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Every secret value currently configured, longest first."""
    env = os.environ if environ is None else environ
    values: set[str] = set()
    for name, value in env.items():
        if not value:
            continue
        if name in CREDENTIAL_VARIABLES:
            if len(value) >= _MIN_NAMED:
                values.add(value)
        elif _NAME_PATTERN.search(name) and len(value) >= _MIN_PATTERN:
            values.add(value)
    google = env.get(_GOOGLE_FILE)
    if google:
        values.update(_google_secrets(google))
    return sorted(values, key=len, reverse=True)


def _forms(secret: str) -> Iterable[str]:
    yield secret
    yield json.dumps(secret)[1:-1]
    yield repr(secret)[1:-1]
    yield quote(secret, safe="")


def _patterns(secrets: list[str]) -> list[str]:
    forms = {form for s in secrets for form in _forms(s) if form}
    return sorted(forms, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every configured secret replaced by a placeholder."""
    if not text:
        return text
    for form in _patterns(secret_values() if secrets is None else secrets):
        if form in text:
            text = text.replace(form, PLACEHOLDER)
    return text


def redact_bytes(data: bytes, secrets: list[str] | None = None) -> bytes:
    for form in _patterns(secret_values() if secrets is None else secrets):
        encoded = form.encode("utf-8", "surrogateescape")
        if encoded in data:
            data = data.replace(encoded, PLACEHOLDER.encode())
    return data


def redact_value(value: Any, secrets: list[str]) -> Any:
    """A copy of a JSON-like value with secrets removed from every string in it."""
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {k: redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, secrets) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v, secrets) for v in value)
    return value


_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_SECRET_QUERY = re.compile(
    r"(?i)token|signature|sig$|credential|secret|password|passwd|api_?key|access_?key|^key$|auth"
)


def redact_uri(uri: str) -> str:
    """A URI without user info, secret-looking query values or known secret values."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return redact_text(uri)
    if not parts.scheme or not parts.netloc:
        return redact_text(uri)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = PLACEHOLDER + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True) if query else []
    if any(_SECRET_QUERY.search(k) for k, _ in pairs):
        query = urlencode(
            [(k, PLACEHOLDER if _SECRET_QUERY.search(k) else v) for k, v in pairs], safe="*"
        )
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Free text (messages, reasons) without secret values or credentials embedded in URLs."""
    if not text:
        return text
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: m.group("scheme") + PLACEHOLDER + "@", text)
    return redact(text, secrets)


def redact_argv(argv: Iterable[str]) -> list[str]:
    """A command line safe to record in a report."""
    return [redact_uri(a) if "://" in a else redact_text(a) for a in argv]


def redact_report(report: ScanReport) -> None:
    """Scrub a finished report in place, so every renderer and API caller gets clean text."""
    secrets = secret_values()

    def text(value: str | None) -> str | None:
        return None if value is None else redact_text(value, secrets)

    report.interrupted = text(report.interrupted)
    report.command_line = redact_argv(report.command_line)
    report.target_errors = [redact_value(e, secrets) for e in report.target_errors]
    for fr in report.files:
        if "://" in fr.path:
            fr.path = redact_uri(fr.path)
        fr.status_reason = text(fr.status_reason)
        if fr.metadata:
            fr.metadata = redact_value(fr.metadata, secrets)
        for issue in fr.issues:
            issue.message = redact_text(issue.message, secrets)
            issue.why = text(issue.why)
            issue.location = text(issue.location)
            if issue.details:
                issue.details = redact_value(issue.details, secrets)


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's formatter so no log line (tracebacks included) carries a secret."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(self.inner.format(record))


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Redact every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter))
