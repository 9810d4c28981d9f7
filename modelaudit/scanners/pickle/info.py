"""What scanning a stream of pickles found out about the stream itself."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PickleStreamInfo:
    """How many pickles the stream held, where the last one ended, whether every one was
    read to its STOP, and the globals they import (for metadata and the SBOM)."""

    pickles: int = 0
    end: int = 0
    complete: bool = True
    globals: list[str] = field(default_factory=list)
    #: Storage records the pickles name through torch persistent ids (`data/<key>`).
    storage_keys: set[str] = field(default_factory=set)
