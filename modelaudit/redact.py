"""Keep credentials out of everything modelaudit prints, logs or writes.

Credentials reach us only through environment variables (and the Google service-account file
one of them names), so every secret value is known up front. Two kinds of masking:

- Structural: a URL's user info and the values of secret-looking query parameters
  (`X-Amz-Signature`, `sig`, `token`, `access_token`...) are masked wherever a URL is shown,
  whatever their value, so a presigned URL is safe in every format.
- By value: whole occurrences of a secret (secret keys, tokens, passwords; not identifiers such
  as access key ids or user names), in the escaped forms it may take in JSON, a repr or a URL,
  are replaced by a placeholder in error text, messages, details and log lines. Never inside
  the paths and names the report is about: a bucket key that happens to contain the text of a
  secret is shown as it is (it is shown anyway), so a weak secret such as moto's `test` does not
  turn `s3://models/test-models/` into `***-models`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .lazy_re import LazyPattern

if TYPE_CHECKING:
    from .report import ScanReport

PLACEHOLDER = "***"

#: Variables whose value is a secret, whatever it looks like.
SECRET_VARIABLES: tuple[str, ...] = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_TOKEN",
    "HF_API_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "R2_SECRET_ACCESS_KEY",
    "CLOUDFLARE_API_TOKEN",
    "JFROG_API_TOKEN",
    "JFROG_ACCESS_TOKEN",
    "ARTIFACTORY_API_KEY",
    "ARTIFACTORY_ACCESS_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "DATABRICKS_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "GOOGLE_API_KEY",
)
#: Any other variable named like a credential is treated as one if its value is long enough
#: not to collide with ordinary words...
_NAME_PATTERN = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE
)
#: ...unless its name says it holds an identifier or a location (AWS_ACCESS_KEY_ID,
#: MLFLOW_TRACKING_USERNAME, GOOGLE_APPLICATION_CREDENTIALS, *_URL).
_NOT_A_SECRET = re.compile(
    r"(_ID|_USER|_USERNAME|_NAME|_EMAIL|_URL|_URI|_ENDPOINT|_HOST|_PORT|_PATH|_FILE|_DIR|"
    r"_REGION|_TYPE)$|^GOOGLE_APPLICATION_CREDENTIALS$",
    re.IGNORECASE,
)
_GOOGLE_FILE = "GOOGLE_APPLICATION_CREDENTIALS"
_GOOGLE_SECRET_KEYS = ("private_key", "client_secret", "refresh_token", "access_token")
_MIN_NAMED = 4
_MIN_PATTERN = 8

#: A credential header quoted in text (a library's debug line, a server echoing a request).
_HEADER_IN_TEXT = re.compile(
    r"(?i)(?P<name>authorization|proxy-authorization|x-amz-security-token|x-jfrog-art-api|"
    r"cookie|x-api-key)(?P<sep>['\"]?\s*[:=]\s*(?-i:b)?['\"]?)"
    r"(?P<scheme>(?:bearer|basic|token|digest)\s+)?(?P<value>[^'\"\s,}][^'\"\r\n]*)"
)
_SECRET_FLAG = re.compile(
    r"^--?[\w.-]*(token|password|passwd|secret|key|credential|auth|cookie|session)[\w.-]*$",
    re.IGNORECASE,
)
_POSITION = re.compile(r" \(pos \d+\)$")


#: Query parameters and fragments whose values are credentials in presigned or tokened URLs.
#: This and `_URI_IN_TEXT` are compiled on first use: a local scan shows no URL.
_SECRET_PARAM = LazyPattern(
    r"(token|password|passwd|pwd|secret|key|sig|signature|credential|auth|session|"
    r"^code$|x-amz-security|x-goog-)",
    re.IGNORECASE,
)
_URI_IN_TEXT = LazyPattern(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


_google_cache: dict[tuple[str, float], list[str]] = {}

#: Names (targets, report paths) that contain the text of a secret, remembered so that log
#: lines and renderers of a finished report, which see no name list, leave them whole too.
#: Only such names are kept, and a bounded number of them.
_PROTECTED: set[str] = set()
_MAX_PROTECTED = 10_000


def protect_names(names: Iterable[str], secrets: list[str] | None = None) -> None:
    """Remember names never to mask into (a target as it is resolved, a report's paths)."""
    found = secret_values() if secrets is None else secrets
    forms = {f for s in found for f in _forms(s) if f}
    if not forms:
        return
    for name in names:
        if len(_PROTECTED) >= _MAX_PROTECTED:
            return
        shown = _mask_uri(name)[0] if "://" in name else name
        if any(f in shown for f in forms):
            _PROTECTED.add(shown)


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


#: The environment's secrets as last computed, keyed by the raw environment they came from:
#: a long-lived Scanner redacts every call's report, and the environment rarely changes.
_env_cache: list[tuple[dict[Any, Any], frozenset[str], list[str]]] = []


def _env_secrets(env: Mapping[str, str]) -> frozenset[str]:
    values: set[str] = set()
    for name, value in env.items():
        if not value:
            continue
        if name in SECRET_VARIABLES:
            if len(value) >= _MIN_NAMED:
                values.add(value)
        elif (
            _NAME_PATTERN.search(name)
            and not _NOT_A_SECRET.search(name)
            and len(value) >= _MIN_PATTERN
        ):
            values.add(value)
    return frozenset(values)


def _process_env_secrets() -> frozenset[str]:
    """`_env_secrets(os.environ)`, recomputed only when the environment changed (its raw
    mapping is compared whole, in C, without decoding every value)."""
    return _process_env()[0]


def _process_env() -> tuple[frozenset[str], list[str]]:
    """The environment's secrets, and the same longest first, recomputed only when the
    environment changed: its raw mapping is kept as a copy and compared whole (dict
    equality, in C, without decoding or hashing every value: a service's every call asks)."""
    raw = getattr(os.environ, "_data", None)
    if not isinstance(raw, dict):
        found = _env_secrets(os.environ)
        return found, sorted(found, key=len, reverse=True)
    if _env_cache and _env_cache[0][0] == raw:
        return _env_cache[0][1], _env_cache[0][2]
    found = _env_secrets(os.environ)
    _env_cache[:] = [(dict(raw), found, sorted(found, key=len, reverse=True))]
    return found, _env_cache[0][2]


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every secret value currently configured, longest first."""
    if environ is None and not os.environ.get(_GOOGLE_FILE):
        return list(_process_env()[1])
    env = os.environ if environ is None else environ
    values = set(_process_env_secrets() if environ is None else _env_secrets(env))
    google = env.get(_GOOGLE_FILE)
    if google:
        values.update(_google_secrets(google))
    return sorted(values, key=len, reverse=True)


def _forms(secret: str) -> Iterable[str]:
    """The ways a secret is written in JSON, a repr or a URL."""
    yield secret
    yield json.dumps(secret)[1:-1]
    yield repr(secret)[1:-1]
    yield quote(secret, safe="")


def _name_forms(name: str) -> set[str]:
    """A name and its path segments, as they are written in text, JSON and URIs."""
    parts = {name, *(p for p in re.split(r"[/\\:]", name) if p)}
    out: set[str] = set()
    for part in parts:
        out.update((part, json.dumps(part)[1:-1], quote(part, safe="/:@")))
    return out


class Redactor:
    """Masks whole occurrences of secret values, except inside protected names.

    A secret is matched whole: `abc1` is not found inside `xabc12`. A match that lies inside an
    occurrence of a protected name (a path, a bucket key, a member name, or one of their
    segments) is left alone.
    """

    def __init__(self, secrets: Iterable[str] | None = None, names: Iterable[str] = ()) -> None:
        found = secret_values() if secrets is None else list(secrets)
        self._forms = sorted({f for s in found for f in _forms(s) if f}, key=len, reverse=True)
        self._regex = _compile(tuple(self._forms)) if self._forms else None
        #: No secret value is known: only URLs and headers can need masking.
        self.knows_none = self._regex is None
        #: secret form -> (protected name form containing it, offset of the form in it)
        self._guards: dict[str, list[tuple[str, int]]] = {}
        if self._regex is not None:
            for name in (*names, *_PROTECTED):
                self.protect(name)

    def contains_secret(self, name: str) -> bool:
        return any(f in name for f in self._forms)

    def protect(self, name: str) -> None:
        if self._regex is None or not name or not self.contains_secret(name):
            return
        for variant in _name_forms(name):
            for form in self._forms:
                at = variant.find(form)
                while at >= 0:
                    self._guards.setdefault(form, []).append((variant, at))
                    at = variant.find(form, at + 1)

    def _keep(self, text: str, match: re.Match[str]) -> str:
        start = match.start()
        for name, offset in self._guards.get(match.group(), ()):
            if start >= offset and text.startswith(name, start - offset):
                return match.group()
        return PLACEHOLDER

    def text(self, text: str) -> str:
        if not text or self._regex is None:
            return text
        return self._regex.sub(lambda m: self._keep(text, m), text)

    def bytes(self, data: bytes) -> bytes:
        if not data or self._regex is None:
            return data
        return self.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


@lru_cache(maxsize=32)
def _compile(forms: tuple[str, ...]) -> re.Pattern[str]:
    parts = []
    for form in forms:
        left = r"(?<!\w)" if re.match(r"\w", form[0]) else ""
        right = r"(?!\w)" if re.match(r"\w", form[-1]) else ""
        parts.append(left + re.escape(form) + right)
    return re.compile("|".join(parts))


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every whole occurrence of a configured secret replaced by a placeholder."""
    return Redactor(secrets).text(text)


def _mask_uri(uri: str) -> tuple[str, bool]:
    """A URI with user info and secret-looking query and fragment values masked; and whether
    it parsed as a URI at all."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri, False
    if not parts.scheme or not parts.netloc:
        return uri, False
    netloc = parts.netloc
    if "@" in netloc:
        netloc = PLACEHOLDER + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True) if query else []
    if any(_SECRET_PARAM.search(k) for k, _ in pairs):
        query = urlencode(
            [(k, PLACEHOLDER if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*"
        )
    fragment = parts.fragment
    if fragment and _SECRET_PARAM.search(fragment):
        fragment = PLACEHOLDER
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment)), True


def carries_credentials(uri: str) -> bool:
    """Whether a URI holds a credential itself: user info, or a secret-looking query or
    fragment value (a presigned URL)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if not parts.scheme or not parts.netloc:
        return False
    if "@" in parts.netloc:
        return True
    pairs = parse_qsl(parts.query, keep_blank_values=True) if parts.query else []
    if any(_SECRET_PARAM.search(k) for k, _ in pairs):
        return True
    return bool(parts.fragment and _SECRET_PARAM.search(parts.fragment))


def redact_uri(uri: str, redactor: Redactor | None = None) -> str:
    """A URI (a name the report is about) safe to show: user info and secret query values
    masked, known secret values masked in its host and query but never in its path."""
    masked, is_uri = _mask_uri(uri)
    red = redactor or Redactor()
    if not is_uri:
        return uri
    parts = urlsplit(masked)
    return urlunsplit(
        (parts.scheme, red.text(parts.netloc), parts.path, red.text(parts.query), parts.fragment)
    )


def mask_urls(text: str) -> str:
    """Free text with URLs and quoted credential headers masked structurally (URL user info,
    secret query values, header values), whatever the values are."""
    if not text:
        return text
    if "://" in text:
        text = _URI_IN_TEXT.sub(lambda m: _mask_uri(m.group(0))[0], text)
    return _HEADER_IN_TEXT.sub(
        lambda m: m.group("name") + m.group("sep") + (m.group("scheme") or "") + PLACEHOLDER,
        text,
    )


def redact_text(text: str, secrets: list[str] | None = None, names: Iterable[str] = ()) -> str:
    """Free text (messages, reasons, log lines) with URLs masked and secret values removed."""
    return _redact_text(text, Redactor(secrets, names))


def _redact_text(text: str, red: Redactor) -> str:
    if red.knows_none and ":" not in text and "=" not in text:
        # Neither a URL nor a header can be written without one of them.
        return text
    return red.text(mask_urls(text))


def redact_value(value: Any, secrets: list[str], names: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like value with secrets removed from every string in it."""
    return _redact_value(value, Redactor(secrets, names))


#: Types `_redact_value` returns as they are (most of a file's metadata).
_UNCHANGED = frozenset({int, float, bool, type(None)})


def _redact_value(value: Any, red: Redactor) -> Any:
    if type(value) in _UNCHANGED:
        return value
    if isinstance(value, str):
        return _redact_text(value, red)
    if isinstance(value, dict):
        return {k: _redact_value(v, red) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, red) for v in value]
    if isinstance(value, tuple):
        return tuple(_redact_value(v, red) for v in value)
    return value


def redact_argv(argv: Sequence[str], secrets: list[str] | None = None) -> list[str]:
    """A command line safe to record: values of secret-named options, URL secrets and any
    argument that is a secret masked; targets are names, never masked into."""
    found = secret_values() if secrets is None else secrets
    whole = {f for s in found for f in _forms(s)}
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append(PLACEHOLDER)
            mask_next = False
        elif arg in whole:
            out.append(PLACEHOLDER)
        elif arg.startswith("-") and "=" in arg and _SECRET_FLAG.match(arg.split("=", 1)[0]):
            out.append(f"{arg.split('=', 1)[0]}={PLACEHOLDER}")
        elif arg.startswith("-") and _SECRET_FLAG.match(arg):
            out.append(arg)
            mask_next = True
        elif "://" in arg:
            out.append(redact_uri(arg, Redactor(found)))
        else:
            out.append(Redactor(found, [arg]).text(arg))
    return out


def report_redactor(report: ScanReport) -> Redactor:
    """The configured secrets, never masked into the report's own names (which are
    gathered only when a secret is known: a 50,000-file report's names cost a pass)."""
    red = Redactor()
    if not red.knows_none:
        for name in report_names(report):
            red.protect(name)
    return red


def report_names(report: ScanReport) -> list[str]:
    """The paths and names a report is about: targets, files, and the archive members and
    objects its findings point at."""
    names = [*report.targets]
    for fr in report.files:
        names.append(fr.path)
        for issue in fr.issues:
            if issue.location:
                names.append(_POSITION.sub("", issue.location))
    for err in report.target_errors:
        names.append(str(err.get("target", "")))
    return [_mask_uri(n)[0] if "://" in n else n for n in names if n]


#: Reports with fewer files walk every file's metadata (the shortcut below costs an import).
_SHORTCUT_FROM = 100


def _plain_metadata(report: ScanReport, red: Redactor) -> bool:
    """True when no file's metadata can need masking, told from one JSON dump of all of it
    instead of a walk of every value (most of the work of finishing a large sweep).

    Only when no secret value is known: then a string needs masking only if it holds a URL or
    a header, neither of which can be written without a ':' or an '='. In the dump, '='
    comes only from strings, and every ':' outside a string follows the quote that closes a
    key, while a quote inside a string is escaped; so a dump whose colons all follow an
    unescaped quote holds no string with either. Anything in doubt walks."""
    if not red.knows_none or len(report.files) < _SHORTCUT_FROM:
        return False
    import orjson

    try:
        blob = orjson.dumps([fr.metadata for fr in report.files], option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return b"=" not in blob and b'\\":' not in blob and blob.count(b":") == blob.count(b'":')


def redact_report(report: ScanReport) -> None:
    """Scrub a finished report in place, so every renderer and API caller gets clean text."""
    secrets = secret_values()
    # (names only guard secrets' text: a pass over every file spared when none is set)
    names = report_names(report) if secrets else []
    protect_names(names, secrets)
    red = Redactor(secrets, names)

    def text(value: str | None) -> str | None:
        return None if value is None else _redact_text(value, red)

    report.targets = [redact_uri(t, red) if "://" in t else t for t in report.targets]
    report.interrupted = text(report.interrupted)
    report.command_line = redact_argv(report.command_line, secrets)
    report.target_errors = [
        {
            k: (redact_uri(v, red) if k == "target" and "://" in v else _redact_value(v, red))
            for k, v in e.items()
        }
        for e in report.target_errors
    ]
    walk_metadata = not _plain_metadata(report, red)
    for fr in report.files:
        if "://" in fr.path:
            fr.path = redact_uri(fr.path, red)
        fr.status_reason = text(fr.status_reason)
        if fr.metadata and walk_metadata:
            fr.metadata = _redact_value(fr.metadata, red)
        for issue in fr.issues:
            issue.message = _redact_text(issue.message, red)
            issue.why = text(issue.why)
            issue.location = text(issue.location)
            if issue.details:
                issue.details = _redact_value(issue.details, red)
