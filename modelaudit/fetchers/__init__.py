"""Turn scan targets into sources of objects.

Resolution is explicit: each URI scheme maps to one fetcher module, imported only when a
target needs it so that cloud SDKs never slow down a local scan.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

from .base import Body, FailedReader, ObjectReader, ObjectRef, Source
from .errors import (
    AuthenticationError,
    ChecksumMismatch,
    FetchError,
    MissingDependency,
    ObjectChanged,
    ObjectTooLarge,
    TargetNotFound,
    TransientFetchError,
    UnsupportedTarget,
)

__all__ = [
    "FETCHERS",
    "AuthenticationError",
    "Body",
    "ChecksumMismatch",
    "FailedReader",
    "FetchError",
    "MissingDependency",
    "ObjectChanged",
    "ObjectReader",
    "ObjectRef",
    "ObjectTooLarge",
    "Source",
    "TargetNotFound",
    "TransientFetchError",
    "UnsupportedTarget",
    "is_remote_target",
    "resolve",
]

_REMOTE_PREFIXES = ("http://", "https://", "hf://", "s3://", "r2://", "gs://", "models:/")


def is_remote_target(target: str) -> bool:
    return target.startswith(_REMOTE_PREFIXES)


def _prefix(*prefixes: str) -> Callable[[str], bool]:
    return lambda target: target.startswith(prefixes)


def _is_huggingface(target: str) -> bool:
    if not target.startswith(("hf://", "https://", "http://")):
        return False  # a local path: no need to import the Hub fetcher to know
    from .huggingface import is_huggingface_target

    return is_huggingface_target(target)


def _is_jfrog(target: str) -> bool:
    if not target.startswith(("https://", "http://")):
        return False
    from .jfrog import is_jfrog_target

    return is_jfrog_target(target)


def _is_dvc_pointer(target: str) -> bool:
    return target.endswith(".dvc") and os.path.isfile(target)


#: (does this fetcher take the target?, "module:SourceClass"); the first match wins, and the
#: module is imported only then. A source class is called as `Cls(target, config)`.
FETCHERS: list[tuple[Callable[[str], bool], str]] = [
    (_is_huggingface, "huggingface:HuggingFaceSource"),
    (_is_jfrog, "jfrog:JFrogSource"),
    (_prefix("s3://", "r2://"), "s3:S3Source"),
    (_prefix("gs://"), "gcs:GcsSource"),
    (_prefix("models:/"), "mlflow:MlflowSource"),
    (_is_dvc_pointer, "dvc:DvcSource"),
    # cloud storage, registries and pointer files go here, one line each
    (_prefix("http://", "https://"), "http:HttpSource"),
]


#: Fetchers whose client library is an optional extra: module -> (import, extra, what).
OPTIONAL: dict[str, tuple[str, str, str]] = {
    "s3": ("aiobotocore", "s3", "S3 and R2"),
    "gcs": ("gcloud.aio.storage", "gcs", "Google Cloud Storage"),
}


def _require(module_name: str, target: str) -> None:
    """One line naming the extra to install, instead of an ImportError mid-scan."""
    need = OPTIONAL.get(module_name)
    if need is None:
        return
    name, extra, what = need
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        found = False
    if not found:
        raise MissingDependency(
            f"{target}: {what} support is not installed; install modelaudit with its "
            f"'{extra}' (or 'all') extra, e.g. pip install -e '.[{extra}]' in its checkout"
        )


def _sniffio_absent() -> None:
    """Record a missing `sniffio` as missing. httpcore tries `import sniffio` for every
    lock it takes (some twenty per request); httpx and anyio no longer install it, and a
    failed import is not remembered, so each try searched sys.path again: about 2 ms of CPU
    per request, most of a ranged read's cost. Recorded, the import fails at once and
    httpcore takes asyncio, as it did."""
    if "sniffio" in sys.modules:
        return
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def resolve(target: str, config: dict[str, Any] | None = None) -> Source:
    """The source for one target; raises `UnsupportedTarget` for schemes we cannot fetch."""
    from ..redact import protect_names

    protect_names([target])
    for matches, where in FETCHERS:
        if matches(target):
            module_name, class_name = where.split(":")
            _require(module_name, target)
            _sniffio_absent()
            module = importlib.import_module(f".{module_name}", __name__)
            source: Source = getattr(module, class_name)(target, config)
            return source
    if is_remote_target(target):
        raise UnsupportedTarget(f"{target}: remote targets of this kind are not supported")
    from .local import LocalSource

    return LocalSource(target, config)
