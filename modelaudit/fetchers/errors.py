"""Every error a fetcher raises, in one tree.

    FetchError                  the target or object could not be read; never "clean"
    ├── UnsupportedTarget       no fetcher takes this target, or its form is wrong
    ├── TargetNotFound          the path, object, bucket, repo, version or revision is missing
    ├── AuthenticationError     a credential is missing, refused or not allowed to be sent;
    │                           the message names the variable to set
    ├── TransientFetchError     429, 5xx, resets or cut bodies that outlasted the retries
    ├── ObjectChanged           the object's ETag, generation or size moved while being read
    ├── ChecksumMismatch        the bytes do not have the digest a pointer file records
    ├── ObjectTooLarge          the object grew past --max-size while being downloaded
    └── MissingDependency       the target needs an optional extra that is not installed;
                                the message names the extra

Messages are written to be shown as they are: they name the target as the user gave it (or
its display URI), say what to do, and never carry a secret, a signed URL or a header. Readers
map library exceptions onto this tree at the edge (`ObjectReader.fetch_error`); nothing else
of a client library reaches the engine.
"""

from __future__ import annotations


class FetchError(Exception):
    """Base of every error a fetcher raises; the message is safe to show (no secrets)."""


class UnsupportedTarget(FetchError):
    """No fetcher understands this target."""


class TargetNotFound(FetchError):
    """The path, object, repo or version does not exist."""


class AuthenticationError(FetchError):
    """Credentials are missing or refused; the message names the variable to set."""


class TransientFetchError(FetchError):
    """A retryable failure (429, 5xx, reset, cut body) that persisted after the retries."""


class ObjectChanged(FetchError):
    """The object changed while it was being read (ETag, generation or size mismatch)."""


class ChecksumMismatch(FetchError):
    """The bytes found for an object do not have the digest its pointer file records."""


class ObjectTooLarge(FetchError):
    """A remote object grew past --max-size while being downloaded."""


class MissingDependency(FetchError):
    """The client library this target needs is an optional extra that is not installed."""
