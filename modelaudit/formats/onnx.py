"""The ONNX ModelProto, walked at the protobuf wire level without reading tensor data.

The walk decodes what `onnx.load(..., load_external_data=False)` would parse for the scanner
to judge: the graph structure (nodes, attributes, subgraphs, functions), opsets, metadata and
each tensor's name and external-data entries, while `raw_data` and the typed data fields are
skipped by length. The scanner runs it over an mmap of the file, the range planner over the
ranges fetched so far (see `view.py`), so a large model costs a few page reads or requests.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Final

from .protowire import LENGTH, VARINT, Wire, WireError, open_wire

_MAX_DEPTH: Final = 64
_MAX_WHERE: Final = 256
#: A string attribute's bytes kept (paths are judged by how they start).
_MAX_ATTRIBUTE_TEXT: Final = 4096
#: Distinct node kinds kept for judging. Real models use a few hundred; a file of millions of
#: two-byte nodes, each a different op, would otherwise hold an object per node.
MAX_NODE_KINDS: Final = 65536


def _path(where: str, part: str) -> str:
    """A subgraph's path, cut at `_MAX_WHERE` characters: names are up to 1 MiB each and
    subgraphs nest 64 deep, so full paths would cost every node a copy of megabytes."""
    if len(where) >= _MAX_WHERE:
        return where
    text = where + part[:_MAX_WHERE]
    return text if len(text) <= _MAX_WHERE else text[: _MAX_WHERE - 3] + "..."


@dataclass
class OnnxNode:
    op_type: str = ""
    domain: str = ""
    name: str = ""
    strings: dict[str, str] = field(default_factory=dict)
    ints: dict[str, int] = field(default_factory=dict)


@dataclass
class External:
    """A tensor's external-data entries as ONNX Runtime reads them: an entry with an empty
    value is skipped (`ExternalDataInfo::Create`), so `[location=x, location=""]` reads x,
    while the onnx package's last-wins `setattr` reads "". `locations` keeps every non-empty
    location in order, so each one either loader could open is judged."""

    tensor: str
    entries: dict[str, str]
    locations: list[str] = field(default_factory=list)


@dataclass
class OnnxModel:
    producer: str = ""
    producer_version: str = ""
    ir_version: int = 0
    graph_names: list[str] = field(default_factory=list)
    #: The first node of each kind (domain, op and the EPContext attributes the scanner
    #: judges), with the path of the graph it is in; `node_count` counts them all.
    nodes: list[tuple[str, OnnxNode]] = field(default_factory=list)
    node_count: int = 0
    #: More than `MAX_NODE_KINDS` kinds: later new kinds were not kept.
    kinds_dropped: bool = False
    functions: set[tuple[str, str]] = field(default_factory=set)
    externals: list[External] = field(default_factory=list)
    opsets: dict[str, int] = field(default_factory=dict)
    initializers: int = 0
    metadata: dict[str, str] = field(default_factory=dict)


#: Says which nodes must be judged by name whatever came before them: (group, key), nodes
#: with one key being judged alike; None for the others.
JudgedKey = Callable[[OnnxNode], tuple[str, Hashable] | None]


class _Walker:
    def __init__(self, wire: Wire, judged: JudgedKey | None = None) -> None:
        self.w = wire
        self.m = OnnxModel()
        self.kinds: set[tuple[str, str, str | None, int | None]] = set()
        self.judged = judged
        #: Keys of the nodes kept past `MAX_NODE_KINDS` because `judged` named them, by group.
        self.judged_keys: dict[str, set[Hashable]] = {}

    def model(self) -> None:
        w = self.w
        for f, wt, a, b in w.fields(0, w.size):
            if f == 1 and wt == VARINT:
                self.m.ir_version = a
            elif wt != LENGTH:
                continue
            elif f == 2:
                self.m.producer = w.text(a, b)
            elif f == 3:
                self.m.producer_version = w.text(a, b)
            elif f == 7:
                self.graph(a, a + b, "graph", 0)
            elif f == 8:
                domain, version = self.opset(a, a + b)
                self.m.opsets[domain] = version
            elif f == 14:
                key, value = self.entry(a, a + b)
                self.m.metadata[key] = value
            elif f == 20:
                for tf, twt, ta, tb in w.fields(a, a + b):
                    if tf in (1, 2) and twt == LENGTH:
                        self.graph(ta, ta + tb, "training_info", 0)
            elif f == 25:
                self.function(a, a + b)

    def opset(self, start: int, end: int) -> tuple[str, int]:
        domain, version = "", 0
        for f, wt, a, b in self.w.fields(start, end):
            if f == 1 and wt == LENGTH:
                domain = self.w.text(a, b)
            elif f == 2 and wt == VARINT:
                version = a
        return domain, version

    def entry(self, start: int, end: int) -> tuple[str, str]:
        key = value = ""
        for f, wt, a, b in self.w.fields(start, end):
            if f == 1 and wt == LENGTH:
                key = self.w.text(a, b)
            elif f == 2 and wt == LENGTH:
                value = self.w.text(a, b)
        return key, value

    def graph(self, start: int, end: int, where: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise WireError("subgraphs nested too deeply")
        name = ""
        nodes: list[tuple[int, int]] = []
        for f, wt, a, b in self.w.fields(start, end):
            if wt != LENGTH:
                continue
            if f == 1:
                nodes.append((a, a + b))
            elif f == 2:
                name = self.w.text(a, b)
            elif f == 5:
                self.m.initializers += 1
                self.tensor(a, a + b)
            elif f == 15:
                self.sparse(a, a + b)
        if depth == 0 and name:
            self.m.graph_names.append(name)
        here = _path(where, f"/{name}") if name else where
        for a, e in nodes:
            self.node(a, e, here, depth)

    def function(self, start: int, end: int) -> None:
        name = domain = ""
        nodes: list[tuple[int, int]] = []
        for f, wt, a, b in self.w.fields(start, end):
            if wt != LENGTH:
                continue
            if f == 1:
                name = self.w.text(a, b)
            elif f == 10:
                domain = self.w.text(a, b)
            elif f == 7:
                nodes.append((a, a + b))
        self.m.functions.add((domain, name))
        for a, e in nodes:
            self.node(a, e, _path("function ", f"{domain}.{name}"), 0)

    def node(self, start: int, end: int, where: str, depth: int) -> None:
        node = OnnxNode()
        for f, wt, a, b in self.w.fields(start, end):
            if wt != LENGTH:
                continue
            if f == 3:
                node.name = self.w.text(a, b)
            elif f == 4:
                node.op_type = self.w.text(a, b)
            elif f == 7:
                node.domain = self.w.text(a, b)
            elif f == 5:
                self.attribute(a, a + b, node, where, depth)
        self.m.node_count += 1
        kind = (
            node.domain,
            node.op_type,
            node.strings.get("ep_cache_context"),
            node.ints.get("embed_mode"),
        )
        if kind in self.kinds:
            return
        if len(self.kinds) >= MAX_NODE_KINDS:
            self.m.kinds_dropped = True
            self._past_cap(where, node)
            return
        self.kinds.add(kind)
        self.m.nodes.append((where, node))

    def _past_cap(self, where: str, node: OnnxNode) -> None:
        """A node of a new kind once the kinds are full: kept when the scanner must judge it
        by name (a Python op, an EPContext's cache path), one per key, at most
        `MAX_NODE_KINDS` keys per group: a flood of distinct kinds, or of one group's, cannot
        push another group's out of sight."""
        judged = self.judged(node) if self.judged is not None else None
        if judged is None:
            return
        group, key = judged
        keys = self.judged_keys.get(group)
        if keys is None:
            keys = self.judged_keys[group] = set()
        if key in keys or len(keys) >= MAX_NODE_KINDS:
            return
        keys.add(key)
        self.m.nodes.append((where, node))

    def attribute(self, start: int, end: int, node: OnnxNode, where: str, depth: int) -> None:
        """Fields are taken as protobuf does: in any order, the last of a repeated scalar
        winning, so the value is stored under the name only once every field is read (a
        name written after its value, which onnx and ONNX Runtime read alike, was lost)."""
        name = ""
        number: int | None = None
        text: str | None = None
        graphs: list[tuple[int, int]] = []
        for f, wt, a, b in self.w.fields(start, end):
            if f == 1 and wt == LENGTH:
                name = self.w.text(a, b)
            elif f == 3 and wt == VARINT:
                number = a
            elif wt != LENGTH:
                continue
            elif f == 4:
                # a longer string is kept by its head: what a path starts with decides
                text = self.w.text(a, min(b, _MAX_ATTRIBUTE_TEXT))
            elif f in (5, 10):
                self.tensor(a, a + b)
            elif f in (22, 23):
                self.sparse(a, a + b)
            elif f in (6, 11):
                graphs.append((a, a + b))
        if number is not None:
            node.ints[name] = number
        if text is not None:
            node.strings[name] = text
        for a, e in graphs:
            self.graph(a, e, _path(where, f"/{node.name or node.op_type}.{name}"), depth + 1)

    def sparse(self, start: int, end: int) -> None:
        for f, wt, a, b in self.w.fields(start, end):
            if f in (1, 2) and wt == LENGTH:
                self.tensor(a, a + b)

    def tensor(self, start: int, end: int) -> None:
        name = ""
        location = 0
        entries: dict[str, str] = {}
        locations: list[str] = []
        for f, wt, a, b in self.w.fields(start, end):
            if f == 8 and wt == LENGTH:
                name = self.w.text(a, b)
            elif f == 13 and wt == LENGTH:
                key, value = self.entry(a, a + b)
                if value or key not in entries:
                    entries[key] = value
                if key == "location" and value and value not in locations:
                    locations.append(value)
            elif f == 14 and wt == VARINT:
                location = a
        if location == 1 or entries:
            self.m.externals.append(External(name, entries, locations))


def walk_model(wire: Wire, judged: JudgedKey | None = None) -> OnnxModel:
    """Everything the scanner judges, from the ModelProto in `wire`; raises `WireError`.
    `judged` names the nodes kept even past `MAX_NODE_KINDS` (see `_Walker._past_cap`)."""
    walker = _Walker(wire, judged)
    walker.model()
    return walker.m


def read_model(path: str, judged: JudgedKey | None = None) -> OnnxModel:
    with open_wire(path) as wire:
        return walk_model(wire, judged)
