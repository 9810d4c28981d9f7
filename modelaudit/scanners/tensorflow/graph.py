"""The graph both SavedModel readers (binary protobuf and text format) fill and the op judge
consumes, kept apart so neither reader depends on the other."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, list[str]] = field(default_factory=dict)
    #: (offset, size) of the raw bytes of the string tensor values of the `value` attribute
    #: (the last entry of that key, as protobuf keeps it) in the binary file: a Const's
    #: serialized GraphDef for DatasetFromGraph; the text reader leaves it empty
    blobs: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Graph:
    """Nodes of the top-level graph and of each library function, plus what SavedModel adds."""

    nodes: list[tuple[str, Node]] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)
    saver_scopes: set[str] = field(default_factory=set)
    asset_tensors: set[str] = field(default_factory=set)
    asset_files: list[str] = field(default_factory=list)
    keras_metadata: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    #: nodes running a graph the file does not show (given at run time, or nested too deep)
    unseen: list[str] = field(default_factory=list)
    tf_version: str = ""
