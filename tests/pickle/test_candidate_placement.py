"""Embedded-pickle candidates count only where a loader can reach them as a value.

A byte pattern that starts a pickle inside a LONG1's digits, a BINFLOAT or the opcodes
themselves is an accident of the encoding; inside a bytes or str argument it is a payload.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import random
import struct
from typing import BinaryIO

import pytest

from modelaudit.findings import ScanResult
from modelaudit.rules import pickle as R
from modelaudit.scanners.pickle.spans import StringSpans
from tests.pickle._pickle_corpus import Unseekable, call, critical, g0, p2, scan

#: A whole pickle that calls os.system, and one that only names an EXT code: both complete.
_EVIL = p2(call(g0("os", "system"), "id"))
_EXT_ONLY = b"\x80\x02(\x83\x13\x75t."
_EVIL0 = b"cos\nsystem\n(S'id'\ntR."


def _records(seed: int, n: int) -> bytes:
    r = random.Random(seed)
    data = [{"id": i, "f": r.random(), "n": r.randrange(1 << 40)} for i in range(n)]
    return pickle.dumps(data, protocol=2)


def test_random_records_protocol_2_are_quiet() -> None:
    # the reported sample: a raw candidate `\x80\x02(\x83\x13...` inside a LONG1's digits
    data = _records(1, 300_000)
    assert b"\x80\x02(\x83\x13" in data
    result, info = scan(data)
    assert info.complete
    assert not critical(result), critical(result)
    assert not [i for i in result.issues if i.severity.value == "warning"]


def _long_holding(payload: bytes) -> bytes:
    """A protocol-2 pickle of one big int whose LONG4 digits hold `payload`."""
    digits = b"\x01" * 300 + payload + b"\x01" * 300
    value = int.from_bytes(digits, "little")
    data = pickle.dumps([value, 1.5], protocol=2)
    assert payload in data
    return data


@pytest.mark.parametrize("payload", [_EVIL, _EXT_ONLY], ids=["os-system", "ext-only"])
def test_pickle_inside_integer_digits_is_not_a_payload(payload: bytes) -> None:
    result, info = scan(_long_holding(payload))
    assert info.complete
    assert not critical(result), critical(result)


def _binfloat_list_holding(payload: bytes) -> bytes:
    """Floats whose BINFLOAT bytes spell `payload`, 8 bytes at a time."""
    padded = payload + b"\x00" * (-len(payload) % 8)
    floats = [struct.unpack(">d", padded[i : i + 8])[0] for i in range(0, len(padded), 8)]
    data = pickle.dumps(floats, protocol=2)
    return data


def test_pickle_across_float_arguments_is_not_a_payload() -> None:
    data = _binfloat_list_holding(_EXT_ONLY)
    assert b"\x80\x02(\x83\x13" in data
    result, _ = scan(data)
    assert not critical(result), critical(result)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("short-binbytes", pickle.dumps({"blob": _EVIL}, protocol=3)),
        ("binbytes", pickle.dumps({"blob": _EVIL + b"\x00" * 300}, protocol=4)),
        ("binbytes8-framed", pickle.dumps([b"x" * 70_000, _EVIL], protocol=5)),
        ("bytearray8", pickle.dumps({"blob": bytearray(_EVIL)}, protocol=5)),
        ("binunicode-proto0", pickle.dumps({"s": _EVIL0.decode()}, 4)),
        ("ext-in-bytes", pickle.dumps({"blob": _EXT_ONLY}, protocol=3)),
        ("after-big-int", pickle.dumps([1 << 5000, 2.5, {"blob": _EVIL}], protocol=3)),
    ],
)
def test_pickle_inside_string_arguments_is_found(name: str, data: bytes) -> None:
    result, _ = scan(data)
    found = [i for i in result.issues if i.rule == R.NESTED_PICKLE]
    assert found, (name, [i.message for i in result.issues])


@pytest.mark.parametrize("inside", [True, False])
def test_unseekable_stream_walks_its_record(inside: bool) -> None:
    from modelaudit.engine.dispatch import make_context
    from modelaudit.scanners.pickle import scan_pickle_stream

    data = pickle.dumps({"b": _EVIL}, protocol=3) if inside else _long_holding(_EVIL)
    result = ScanResult(scanner_name="pickle")
    stream: BinaryIO = io.BufferedReader(Unseekable(data))
    scan_pickle_stream(stream, result, location=lambda p: "x", ctx=make_context("x", {}))
    assert bool(critical(result)) is inside


#: String-valued opcodes and the width of their length prefix (0: a text line).
_STRING_OPS = {
    "STRING": 0,
    "UNICODE": 0,
    "PERSID": 0,
    "BINSTRING": 4,
    "SHORT_BINSTRING": 1,
    "BINUNICODE": 4,
    "SHORT_BINUNICODE": 1,
    "BINUNICODE8": 8,
    "BINBYTES": 4,
    "SHORT_BINBYTES": 1,
    "BINBYTES8": 8,
    "BYTEARRAY8": 8,
}


def _reference(data: bytes) -> list[bool]:
    """Per offset, whether genops puts it inside a string argument."""
    inside = [False] * len(data)
    ops = list(pickletools.genops(data))
    for k, (op, _arg, pos) in enumerate(ops):
        assert pos is not None
        end = ops[k + 1][2] if k + 1 < len(ops) else len(data)
        assert end is not None
        if op.name not in _STRING_OPS:
            continue
        for i in range(pos + 1 + _STRING_OPS[op.name], end):
            inside[i] = True
    return inside


@pytest.mark.parametrize("protocol", range(6))
def test_walk_agrees_with_genops(protocol: int) -> None:
    r = random.Random(protocol)
    value = {
        "s": "text\nwith newline",
        "b": b"\x80\x02bytes",
        "big": b"y" * 70_000,
        "i": [r.getrandbits(600), -5, 1 << 40, 3.25],
        "u": "\u00e9" * 10,
        "t": (1, None, True),
    }
    if protocol >= 5:
        value["ba"] = bytearray(b"abc")
    data = pickle.dumps(value, protocol=protocol)
    want = _reference(data)
    data_len = len(data)
    spans = StringSpans(lambda at, n: data[at : at + n], range(data_len), start=0, end=data_len)
    got = [spans.inside(i) for i in range(data_len)]
    assert got == want


def test_walk_answers_unknown_as_inside() -> None:
    data = b"\x80\x02K\x01\xff" + b"\x00" * 20
    spans = StringSpans(lambda at, n: data[at : at + n], [2, 3, 10], start=0, end=len(data))
    assert not spans.inside(2)
    assert not spans.inside(3)
    assert spans.inside(10)  # past an opcode the walk does not know
    budget = StringSpans(lambda at, n: data[at : at + n], [3], start=0, end=len(data), max_ops=1)
    assert budget.inside(3)


def test_big_integers_are_not_crafted_waste() -> None:
    r = random.Random(2)
    data = pickle.dumps([r.getrandbits(4096) for _ in range(3000)], protocol=2)
    result, _ = scan(data)
    assert not [i for i in result.issues if i.rule == R.STRUCTURE_BOMB], [
        i.message for i in result.issues
    ]


def test_ext_in_random_array_bytes_is_quiet() -> None:
    # float64 bytes of numpy.random.default_rng(7) held this candidate: EXT4, then junk
    r = random.Random(3)
    junk = b"\x80\x03(\x84(Z\xc5?k\x06\xbf\xcd" + r.randbytes(8000)
    result, _ = scan(pickle.dumps({"w": r.randbytes(5000) + junk}, protocol=4))
    assert not critical(result), critical(result)


# (below protocol 3 bytes are pickled through _codecs.encode, which the engine reads apart)
@pytest.mark.parametrize(("protocol", "as_text"), [(1, True), (2, True), (3, True), (3, False)])
def test_protocol_0_pickle_held_by_a_protocol_1_to_3_stream(protocol: int, as_text: bool) -> None:
    # the stream's own GLOBAL opcodes look the same: only a string argument's start counts
    value: str | bytes = _EVIL0.decode() if as_text else _EVIL0
    data = pickle.dumps({"config": value, "w": [1.0, 2.0]}, protocol=protocol)
    assert b"cos\nsystem\n" in data
    result, _ = scan(data)
    assert critical(result), [i.message for i in result.issues]


def test_protocol_2_globals_are_not_candidates() -> None:
    import collections
    import datetime

    data = pickle.dumps(
        [collections.OrderedDict(a=1), datetime.date(2020, 1, 2), {"k": "cos\nx"}], protocol=2
    )
    result, _ = scan(data)
    assert not [i for i in result.issues if i.rule == R.NESTED_PICKLE]
    assert not critical(result)
