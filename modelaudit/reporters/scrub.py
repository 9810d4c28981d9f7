"""Strip secrets from command lines and URIs before they land in a SARIF log or SBOM.

Those files are uploaded to dashboards and kept as build artifacts, so a token typed on the
command line or embedded in a presigned URL must not reach them even when it is not one of
the environment credentials `modelaudit.redact` knows by value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

_SECRET_FLAG = re.compile(
    r"^--?[\w.-]*(token|password|passwd|secret|key|credential|auth|cookie|session)[\w.-]*$",
    re.IGNORECASE,
)
_SECRET_PARAM = re.compile(
    r"(token|password|passwd|pwd|secret|key|sig|signature|credential|auth|session|"
    r"^code$|x-amz-security|x-goog-)",
    re.IGNORECASE,
)
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_uri(uri: str) -> str:
    """Mask userinfo and secret-looking query parameters of a URI; other text passes as is."""
    if "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(k) for k, _ in pairs):
            query = urlencode(
                [(k, MASK if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*"
            )
    fragment = parts.fragment
    if fragment and _SECRET_PARAM.search(fragment):
        fragment = MASK
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_text(text: str) -> str:
    """Mask secrets in every URI inside free text, and every configured credential value."""
    from ..redact import redact

    return redact(_URI_IN_TEXT.sub(lambda m: redact_uri(m.group(0)), text))


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A copy of argv with the values of secret-named options and URI secrets masked."""
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if arg.startswith("-") and "=" in arg:
            flag, _value = arg.split("=", 1)
            if _SECRET_FLAG.match(flag):
                out.append(f"{flag}={MASK}")
                continue
        elif arg.startswith("-") and _SECRET_FLAG.match(arg):
            out.append(arg)
            mask_next = True
            continue
        out.append(redact_text(arg))
    return out
