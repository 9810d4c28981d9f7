"""Analysis bombs: small inputs whose structure shares or nests, built as bytes (never loaded).

Each builder takes a size knob (levels, depth, count) so that property tests can build the
input at n and 2n and compare the work the analysis does, and the benchmark can build the
issue's sizes.
"""

from __future__ import annotations

import json
import struct


def pickle_dag(levels: int = 60, *, system: bool = False) -> bytes:
    """Tuples sharing substructure: level i is (level i-1, level i-1), via DUP and MEMOIZE.

    Anything that hashes, compares, renders or walks it without a visited set does 2**levels work.
    """
    out = bytearray(b"\x80\x04")
    if system:
        out += b"\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x04echo\x94\x85\x94R\x940"
    out += b"N\x94"
    for _ in range(levels):
        out += b"2\x86\x94"  # DUP, TUPLE2, MEMOIZE
    out += b"."
    return bytes(out)


def pickle_dag_call(levels: int) -> bytes:
    """os.system called with the shared-tuple DAG as its argument."""
    out = bytearray(b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94N\x94")
    out += b"2\x86\x94" * levels
    return bytes(out + b"\x85R.")


def pickle_loads_repeated(payload: int, times: int) -> bytes:
    """pickle.loads called `times` times on one memoised pickle of `payload` bytes."""
    inner = b"\x80\x04\x8e" + struct.pack("<Q", payload) + b"x" * payload + b"\x94."
    out = bytearray(b"\x80\x04\x8c\x06pickle\x94\x8c\x05loads\x94\x93\x94")
    out += b"\x8e" + struct.pack("<Q", len(inner)) + inner + b"\x94"
    out += b"h\x02h\x03\x85R0" * times
    return bytes(out + b"N.")


def pickle_dag_get(levels: int = 40) -> bytes:
    """The same DAG through memo GETs (BINGET of the previous level twice), protocol 2."""
    out = bytearray(b"\x80\x02Nq\x00")
    for i in range(levels):
        out += b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86q" + bytes([i + 1])
    out += b"."
    return bytes(out)


def pickle_dag_dict_keys(levels: int = 40) -> bytes:
    """Shared tuples used as dict keys and set members (hashing them is recursive)."""
    out = bytearray(b"\x80\x04N\x94")
    for _ in range(levels):
        out += b"2\x86\x94"
    # {dag: dag} then a frozenset of it
    out += b"}\x94h" + bytes([levels]) + b"h" + bytes([levels]) + b"s"
    out += b"(h" + bytes([levels]) + b"\x91\x94" + b"\x86."
    return bytes(out)


def jinja_doubling(k: int) -> str:
    """`{% set x = x ~ x %}` k times: the folded value doubles each time."""
    return '{% set x = "a" %}' + "{% set x = x ~ x %}" * k + "{{ x }}"


def tokenizer_config(template: str) -> bytes:
    return json.dumps({"chat_template": template, "model_max_length": 512}).encode()


def yaml_laughs(levels: int, fanout: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * fanout)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]")
    return "\n".join(lines) + "\n"


def yaml_alias_chain(count: int) -> str:
    """Many aliases of one big anchor: expansion is count x anchor size, parse is linear."""
    body = ", ".join(f"k{i}" for i in range(200))
    return f"base: &b [{body}]\n" + "".join(f"r{i}: *b\n" for i in range(count))


def keras_nested_config(depth: int) -> str:
    """A model config nested `depth` times (Sequential inside Sequential ...), as JSON text."""
    head = '{"class_name": "Sequential", "config": {"name": "s", "layers": ['
    leaf = '{"class_name": "Dense", "config": {"name": "d", "units": 1}}'
    return head * depth + leaf + "]}}" * depth


def keras_wide_config(layers: int) -> dict[str, object]:
    return {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "Dense", "config": {"name": f"d{i}", "units": 1}}
                for i in range(layers)
            ],
        },
    }


def json_nested(depth: int) -> bytes:
    return b'{"a": ' + b"[" * depth + b"]" * depth + b"}"


# --- flatbuffers -------------------------------------------------------------------------


class _FlatBuilder:
    """Just enough of a flatbuffer writer: tables and vectors laid out front to back."""

    def __init__(self) -> None:
        self.buf = bytearray(b"\x00" * 8)  # root offset + file identifier

    def here(self) -> int:
        while len(self.buf) % 4:
            self.buf += b"\x00"
        return len(self.buf)

    def table(self, fields: list[tuple[int, bytes]]) -> tuple[int, list[int]]:
        """A table whose field i holds raw bytes; returns (table pos, field positions)."""
        nslots = max((i for i, _ in fields), default=-1) + 1
        vt = self.here()
        size = 4 + sum(len(b) for _, b in fields)
        offsets = [0] * nslots
        rel = 4
        for i, b in fields:
            offsets[i] = rel
            rel += len(b)
        vt_bytes = struct.pack("<HH", 4 + 2 * nslots, size) + b"".join(
            struct.pack("<H", o) for o in offsets
        )
        self.buf += vt_bytes
        tab = self.here()
        self.buf += struct.pack("<i", tab - vt)
        positions = []
        for _, b in fields:
            positions.append(len(self.buf))
            self.buf += b
        return tab, positions

    def vector(self, count: int) -> int:
        """A vector of `count` offsets, to be pointed with `point_all` (flatbuffer offsets
        point forward, so targets are written after what refers to them)."""
        vec = self.here()
        self.buf += struct.pack("<I", count) + bytes(4 * count)
        return vec

    def point_all(self, vec: int, target: int) -> None:
        count = struct.unpack_from("<I", self.buf, vec)[0]
        for i in range(count):
            slot = vec + 4 + 4 * i
            struct.pack_into("<I", self.buf, slot, target - slot)

    def string(self, text: bytes) -> int:
        pos = self.here()
        self.buf += struct.pack("<I", len(text)) + text + b"\x00"
        return pos

    def patch(self, field_pos: int, target: int) -> None:
        struct.pack_into("<I", self.buf, field_pos, target - field_pos)


def tflite_shared(subgraphs: int, operators: int, name_len: int = 4000) -> bytes:
    """`subgraphs` entries of the subgraphs vector all point at one subgraph table, whose
    operators vector has `operators` entries all pointing at one operator table; that
    subgraph's name is `name_len` bytes. Work without sharing: subgraphs x operators."""
    fb = _FlatBuilder()
    model, (m_codes, m_sgs) = fb.table([(1, bytes(4)), (2, bytes(4))])
    struct.pack_into("<I", fb.buf, 0, model)
    fb.buf[4:8] = b"TFL3"
    codes = fb.vector(1)
    fb.patch(m_codes, codes)
    sgs = fb.vector(subgraphs)
    fb.patch(m_sgs, sgs)
    sg, (sg_ops, sg_name) = fb.table([(3, bytes(4)), (4, bytes(4))])
    fb.point_all(sgs, sg)
    ops = fb.vector(operators)
    fb.patch(sg_ops, ops)
    op, _ = fb.table([(0, struct.pack("<I", 0))])
    fb.point_all(ops, op)
    op_code, (code_custom, _) = fb.table([(1, bytes(4)), (3, struct.pack("<i", 32))])
    fb.point_all(codes, op_code)
    fb.patch(code_custom, fb.string(b"MyCustomOp"))
    fb.patch(sg_name, fb.string(b"n" * name_len))
    return bytes(fb.buf)
