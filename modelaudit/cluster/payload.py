"""What a cluster task carries, and what it brings back: JSON, never pickles of our objects.

A shard names objects, not bytes or credentials: for each target, each object's URI, size,
ETag, whether it was named explicitly, the absolute path of a local file, and the fetcher's
`locator` (a key, a path, a commit). The node rebuilds readers from those with its own
environment's credentials. Before a shard leaves, its encoded bytes are searched for every
secret value of the client's environment (and their JSON-escaped forms); a shard that holds
one is never sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..config import ENGINE_KEYS
from ..fetchers import ObjectRef
from ..report import FileReport

__all__ = [
    "PAYLOAD_VERSION",
    "Group",
    "Results",
    "ShardEntry",
    "ShardTask",
    "decode_results",
    "decode_shard",
    "encode_results",
    "encode_shard",
    "find_secret",
    "node_settings",
]

PAYLOAD_VERSION = 1
#: Settings that stay with the client: the node's own engine, and what the client already did
#: (sharding, caching).
_CLIENT_ONLY = ENGINE_KEYS | {
    "cache_dir",
    "shard",
    "shard_files",
    "shard_bytes",
    "shards_per_thread",
    "cluster_idle_timeout",
}


@dataclass
class ShardEntry:
    uri: str
    size: int | None
    etag: str | None
    explicit: bool
    local_path: str | None
    locator: dict[str, Any] | None
    model_names: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, obj: ObjectRef, local_path: str | None) -> ShardEntry:
        names = obj.metadata.get("model_names") or []
        return cls(
            obj.uri,
            obj.size,
            obj.etag,
            obj.explicit,
            local_path,
            obj.locator,
            [str(n) for n in names],
        )

    def wire(self) -> list[Any]:
        return [
            self.uri,
            self.size,
            self.etag,
            self.explicit,
            self.local_path,
            self.locator,
            self.model_names,
        ]

    def ref(self) -> ObjectRef:
        """The object as listed, without a reader (the node's source adds one)."""
        metadata: dict[str, Any] = (
            {"model_names": list(self.model_names)} if self.model_names else {}
        )
        return ObjectRef(
            uri=self.uri,
            size=self.size,
            etag=self.etag,
            explicit=self.explicit,
            metadata=metadata,
            locator=self.locator,
        )


@dataclass
class Group:
    target: str
    entries: list[ShardEntry]


@dataclass
class ShardTask:
    run: str
    key: str
    #: Wall-clock time (epoch seconds) by which the node must have returned; None: no deadline.
    deadline: float | None
    #: The run's whole deadline as the user gave it (for the node's messages).
    timeout: float
    settings: dict[str, Any]
    registry: list[str] | None
    groups: list[Group]

    @property
    def count(self) -> int:
        return sum(len(g.entries) for g in self.groups)


def node_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The scan settings a node applies to its own engine (`Scanner.config.with_overrides`)."""
    return {k: v for k, v in config.items() if k not in _CLIENT_ONLY}


def encode_shard(task: ShardTask) -> bytes:
    return orjson.dumps(
        {
            "v": PAYLOAD_VERSION,
            "run": task.run,
            "key": task.key,
            "deadline": task.deadline,
            "timeout": task.timeout,
            "settings": task.settings,
            "registry": task.registry,
            "groups": [
                {"target": g.target, "objects": [e.wire() for e in g.entries]} for g in task.groups
            ],
        },
        default=str,
    )


def decode_shard(payload: bytes) -> ShardTask:
    """Raises ValueError on a payload this version cannot read."""
    try:
        data = orjson.loads(payload)
        if data.get("v") != PAYLOAD_VERSION:
            raise ValueError(
                f"a shard of payload version {data.get('v')!r}, this node reads "
                f"{PAYLOAD_VERSION}: install the same modelaudit on the client and every node"
            )
        groups = []
        for group in data["groups"]:
            entries = []
            for uri, size, etag, explicit, local_path, locator, names in group["objects"]:
                entries.append(
                    ShardEntry(
                        str(uri),
                        None if size is None else int(size),
                        None if etag is None else str(etag),
                        bool(explicit),
                        None if local_path is None else str(local_path),
                        dict(locator) if isinstance(locator, dict) else None,
                        [str(n) for n in names or ()],
                    )
                )
            groups.append(Group(str(group["target"]), entries))
        registry = data.get("registry")
        return ShardTask(
            run=str(data["run"]),
            key=str(data["key"]),
            deadline=None if data.get("deadline") is None else float(data["deadline"]),
            timeout=float(data.get("timeout") or 0),
            settings=dict(data["settings"]),
            registry=None if registry is None else [str(r) for r in registry],
            groups=groups,
        )
    except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"malformed shard payload ({type(exc).__name__}: {exc})") from None


@dataclass
class Results:
    node: str
    files: list[FileReport]
    #: The node stopped the shard short (deadline, stop order, cancelled task).
    interrupted: bool = False


def encode_results(node: str, files: Iterable[FileReport], interrupted: bool = False) -> bytes:
    return orjson.dumps(
        {
            "v": PAYLOAD_VERSION,
            "node": node,
            "files": [f.to_record() for f in files],
            "interrupted": interrupted,
        },
        default=str,
    )


def decode_results(payload: bytes) -> Results:
    """Raises ValueError on anything but a node's answer."""
    try:
        data = orjson.loads(payload)
        if data.get("v") != PAYLOAD_VERSION:
            raise ValueError(f"a node answered with payload version {data.get('v')!r}")
        return Results(
            str(data.get("node") or "?"),
            [FileReport.from_record(f) for f in data["files"]],
            bool(data.get("interrupted")),
        )
    except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"malformed answer from a node ({type(exc).__name__}: {exc})") from None


def find_secret(payload: bytes, secrets: Sequence[str]) -> bool:
    """Does the encoded payload hold any of these values, as is or JSON-escaped?"""
    for secret in secrets:
        if not secret:
            continue
        forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
        if any(form.encode() in payload for form in forms):
            return True
    return False
