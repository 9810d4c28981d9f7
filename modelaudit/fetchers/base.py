"""What the engine needs from a source of model files, local or remote.

A `Source` turns one target (a path, a bucket prefix, a repo) into `ObjectRef`s, lazily, so a
sweep of a million objects starts scanning at once. A remote object carries an `ObjectReader`
that can fetch byte ranges or stream the whole object; the engine decides which to use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


class FetchError(Exception):
    """Base of every error a fetcher raises; the message is safe to show (no secrets)."""


class TargetNotFound(FetchError):
    """The path, object, repo or version does not exist."""


class AuthenticationError(FetchError):
    """Credentials are missing or refused; the message names the variable to set."""


class TransientFetchError(FetchError):
    """A retryable failure (429, 5xx, reset) that persisted after the retries."""


class ObjectChanged(FetchError):
    """The object changed while it was being read (ETag or size mismatch)."""


class UnsupportedTarget(FetchError):
    """No fetcher understands this target."""


class ObjectReader(ABC):
    """Byte access to one remote object.

    `supports_ranges` is False once the server is known to ignore ranges; the engine then
    downloads the object once instead of planning ranged reads.
    """

    supports_ranges: bool | None = None

    @abstractmethod
    async def read_range(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the object."""

    @abstractmethod
    def stream(self, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The whole object, in chunks."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections held for this object."""


@dataclass
class ObjectRef:
    """One file to scan.

    `uri` is how findings name the file (the path as the user gave it, or the remote URI).
    Exactly one of `local_path` and `reader` is set.
    """

    uri: str
    size: int | None = None
    etag: str | None = None
    local_path: str | None = None
    reader: ObjectReader | None = None
    explicit: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_remote(self) -> bool:
        return self.local_path is None


class Source(ABC):
    """A target resolved to something that can list its objects."""

    target: str

    @abstractmethod
    def objects(self) -> AsyncIterator[ObjectRef]:
        """Every object under the target, lazily; raises `FetchError` for the whole target."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and sessions."""
