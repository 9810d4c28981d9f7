"""SavedModels and GraphDefs in protobuf text format (`saved_model.pbtxt`, `*.pbtxt`).

TensorFlow's loader reads `saved_model.pbtxt` when no `saved_model.pb` exists, so the same op
checks apply. The text is tokenised in chunks (never held whole) and walked as a stream of
field events against a stack of enclosing field names; only the fields the binary reader
uses are collected, into the same `Graph` the op judge consumes.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import Final

from .graph import Graph, Node

CHUNK: Final = 1 << 20
MAX_TOKEN: Final = 64 << 20
_TOKEN: Final = re.compile(
    rb"""\s+|\#[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[{}<>:\[\],;]|[^\s{}<>:\[\],;"'\#]+""",
    re.S,
)
_OPEN: Final = frozenset({b"{", b"<"})
_CLOSE: Final = frozenset({b"}", b">"})


class TextProtoError(ValueError):
    """The text is not protobuf text format."""


def tokens(path: str) -> Iterator[bytes]:
    """Tokens of the file, whitespace and comments dropped, read a chunk at a time."""
    with open(path, "rb") as f:
        buf = b""
        eof = False
        while not eof:
            chunk = f.read(CHUNK)
            eof = not chunk
            buf += chunk
            pos = 0
            while pos < len(buf):
                m = _TOKEN.match(buf, pos)
                if m is None:
                    raise TextProtoError(f"unexpected character {buf[pos : pos + 1]!r}")
                if m.end() == len(buf) and not eof:
                    break  # the token may continue in the next chunk
                tok = m.group()
                if not tok[:1].isspace() and not tok.startswith(b"#"):
                    yield tok
                pos = m.end()
            buf = buf[pos:]
            if len(buf) > MAX_TOKEN:
                raise TextProtoError("token longer than 64 MiB")
        if buf.strip():
            raise TextProtoError("unterminated string at end of file")


def _unquote(tok: bytes) -> str:
    if tok[:1] in (b'"', b"'"):
        raw = codecs.escape_decode(tok[1:-1])[0]
        return bytes(raw).decode("utf-8", "replace")
    return tok.decode("utf-8", "replace")


def events(toks: Iterator[bytes]) -> Iterator[tuple[tuple[str, ...], str, str | None]]:
    """(enclosing field path, field, scalar or None for an opening message); ("", "}") closes.

    A message list (`input [ { ... }, { ... } ]`, as Triton's config.pbtxt writes repeated
    fields) yields each element as if the field were repeated (`input { ... } input { ... }`).
    """
    stack: list[str] = []
    # (depth, field) of each open message list whose elements sit at that depth
    lists: list[tuple[int, str]] = []
    for tok in toks:
        if lists and lists[-1][0] == len(stack):
            if tok == b",":
                continue
            if tok == b"]":
                lists.pop()
                continue
            if tok not in _OPEN:
                raise TextProtoError("a message list mixes messages and scalars")
            yield tuple(stack), lists[-1][1], None
            stack.append(lists[-1][1])
            continue
        if tok in _CLOSE:
            if not stack:
                raise TextProtoError("unbalanced closing brace")
            stack.pop()
            yield tuple(stack), "}", None
            continue
        if tok in (b",", b";"):
            continue
        name = tok.decode("utf-8", "replace")
        if tok == b"[":
            parts = []
            for part in toks:
                if part == b"]":
                    break
                parts.append(part.decode("utf-8", "replace"))
            name = "[" + "".join(parts) + "]"
        nxt = next(toks, None)
        if nxt == b":":
            nxt = next(toks, None)
        if nxt is None:
            raise TextProtoError(f"field {name} has no value")
        if nxt in _OPEN:
            yield tuple(stack), name, None
            stack.append(name)
        elif nxt == b"[":
            first = next(toks, None)
            if first in _OPEN:
                lists.append((len(stack), name))
                yield tuple(stack), name, None
                stack.append(name)
                continue
            item = first
            while item is not None and item != b"]":
                if item in _OPEN:
                    raise TextProtoError("a message list mixes messages and scalars")
                if item != b",":
                    yield tuple(stack), name, _unquote(item)
                item = next(toks, None)
            if item is None:
                raise TextProtoError(f"list {name} is not closed")
        else:
            yield tuple(stack), name, _unquote(nxt)
    if stack or lists:
        raise TextProtoError("unterminated message at end of file")


def read_graph(path: str) -> Graph:
    """The nodes, functions, saver scopes, assets and Keras metadata of a text SavedModel."""
    g = Graph()
    node: Node | None = None
    node_depth = 0
    attr_key = ""
    function = ""
    for stack, field, value in events(tokens(path)):
        depth = len(stack)
        if field == "}":
            if node is not None and depth < node_depth:
                g.nodes.append((f"function {function}" if function else "graph", node))
                node = None
            if stack and stack[-1] == "library" and function:
                function = ""
            continue
        if value is None:
            if field in ("node", "node_def") and node is None:
                node, node_depth = Node("", ""), depth + 1
                if field == "node":
                    function = ""
            continue
        parent = stack[-1] if stack else ""
        if node is not None:
            rel = stack[node_depth:]
            if not rel and field in ("name", "op"):
                setattr(node, field, value)
            elif not rel and field == "input" and len(node.inputs) < 64:
                node.inputs.append(value)
            elif rel[:1] == ("attr",) and field == "key" and len(rel) == 1:
                attr_key = value
            elif rel[:1] == ("attr",) and field in ("s", "string_val", "name"):
                node.attrs.setdefault(attr_key, []).append(value)
        elif parent == "signature" and field == "name" and "function" in stack:
            function = value
            g.functions.add(value)
        elif parent == "saver_def" and field.endswith(("tensor_name", "op_name")):
            g.saver_scopes.add(value.split("/", 1)[0].split(":", 1)[0])
        elif parent == "asset_file_def" and field == "filename":
            g.asset_files.append(value)
        elif parent == "tensor_info" and "asset_file_def" in stack and field == "name":
            g.asset_tensors.add(value.split(":", 1)[0])
        elif parent == "user_object" and field == "metadata":
            g.keras_metadata.append(value)
        elif parent == "meta_info_def" and field == "tags":
            g.tags.append(value)
        elif parent == "meta_info_def" and field == "tensorflow_version":
            g.tf_version = value
    return g
