"""Turn scan targets into sources of objects.

Resolution is explicit: each URI scheme maps to one fetcher module, imported only when a
target needs it so that cloud SDKs never slow down a local scan.
"""

from __future__ import annotations

from typing import Any

from .base import (
    AuthenticationError,
    FetchError,
    ObjectChanged,
    ObjectReader,
    ObjectRef,
    Source,
    TargetNotFound,
    TransientFetchError,
    UnsupportedTarget,
)

__all__ = [
    "AuthenticationError",
    "FetchError",
    "ObjectChanged",
    "ObjectReader",
    "ObjectRef",
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


def resolve(target: str, config: dict[str, Any] | None = None) -> Source:
    """The source for one target; raises `UnsupportedTarget` for schemes we cannot fetch."""
    if is_remote_target(target):
        raise UnsupportedTarget(f"{target}: remote targets are not supported yet")
    from .local import LocalSource

    return LocalSource(target)
