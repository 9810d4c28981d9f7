"""Worker messages carry plain data only: the parent's loader refuses every global."""

from __future__ import annotations

import enum
import pickle
import struct

import pytest

from modelaudit.engine.protocol import decode_issue, encode_issue, loads_untrusted, plain
from modelaudit.findings import Issue, IssueSeverity


class _Level(enum.IntEnum):
    HIGH = 3


class _Kind(str, enum.Enum):  # noqa: UP042 (str() differs from the value)
    OPCODE = "opcode"


def test_enum_values_and_keys_become_their_base_types() -> None:
    value = plain({_Level.HIGH: [_Kind.OPCODE, 2.5, True], "n": _Level.HIGH})
    assert value == {3: ["opcode", 2.5, True], "n": 3}
    (key,) = [k for k in value if k != "n"]
    assert type(key) is int
    assert [type(x) for x in value[3]] == [str, float, bool]
    assert type(value["n"]) is int


def test_an_issue_with_enum_details_crosses_the_process_boundary() -> None:
    issue = Issue(
        message="m",
        severity=IssueSeverity.WARNING,
        location="f.pkl",
        details={"level": _Level.HIGH, _Kind.OPCODE: "REDUCE"},
    )
    decoded = decode_issue(loads_untrusted(pickle.dumps(encode_issue(issue))))
    assert decoded.details == {"level": 3, "opcode": "REDUCE"}


def test_flat_metadata_takes_the_short_path_to_the_same_plain_data() -> None:
    """A small file's metadata (scalars, enum members, empty lists) comes out as the general
    walk makes it: base types only, so the parent's global-refusing unpickler loads it."""
    flat = {"format": _Kind.OPCODE, "count": _Level.HIGH, "names": [], "pairs": (), "x": None}
    value = plain(flat)
    assert value == {"format": "opcode", "count": 3, "names": [], "pairs": [], "x": None}
    assert [type(v) for v in value.values()] == [str, int, list, list, type(None)]
    assert loads_untrusted(pickle.dumps(value)) == value
    deeper = {"format": _Kind.OPCODE, "arrays": [{"dtype": _Kind.OPCODE}], "raw": b"ab"}
    assert plain(deeper) == {"format": "opcode", "arrays": [{"dtype": "opcode"}], "raw": b"ab"}
    assert loads_untrusted(pickle.dumps(plain(deeper))) == plain(deeper)


def test_nested_and_large_values_come_out_as_the_general_walk_makes_them() -> None:
    """The short path for a few nested containers and the general walk agree at the seam:
    up to the short path's container bound, just past it, deep nesting, budgets below it."""
    nested = {"format": _Kind.OPCODE, "details": {"arrays": [{"shape": (2, 3), "n": _Level.HIGH}]}}
    assert plain(nested) == {"format": "opcode", "details": {"arrays": [{"shape": [2, 3], "n": 3}]}}
    for count in (62, 63, 64, 65, 200):
        wide = {"rows": [{"i": i, "kind": _Kind.OPCODE} for i in range(count)]}
        assert plain(wide) == {"rows": [{"i": i, "kind": "opcode"} for i in range(count)]}
    deep: list[object] = [1]
    for _ in range(100):
        deep = [deep]
    flat = plain(deep)
    for _ in range(65):
        assert isinstance(flat, list) and len(flat) == 1
        flat = flat[0]
    assert flat == "<truncated>"
    assert plain({"a": [{"b": 1}], "c": [2]}, budget=2) == {
        "a": ["<truncated>"],
        "c": "<truncated>",
    }
    mixed = {"raw": b"ab", "set": {1}, "kind": _Kind.OPCODE}
    assert plain(mixed) == {"raw": b"ab", "set": [1], "kind": "opcode"}


def _records(n: int) -> list[tuple[int, tuple[object, ...]]]:
    metadata = {"format": "pickle", "pickle_globals": ["a.b"], "nested": {"k": [1, 2.5, None]}}
    return [
        (i, ("pickle", [], 70 + i, "complete", None, dict(metadata), 1.0, 2.0)) for i in range(n)
    ]


def test_result_records_are_read_back_in_order_by_one_reader() -> None:
    from modelaudit.engine.protocol import frame, result_frames, result_record

    records = _records(50)
    assert list(result_frames(b"".join(result_record(r) for r in records))) == records
    # frames pickled with a memo (older workers, the journal of any writer) read the same
    assert list(result_frames(b"".join(frame(r) for r in records))) == records
    mixed = b"".join(frame(r) if r[0] % 3 else result_record(r) for r in records)
    assert list(result_frames(mixed)) == records
    # a record cut short at the end (a worker died writing its journal) is left out
    whole = b"".join(result_record(r) for r in records[:3])
    assert list(result_frames(whole[:-5])) == records[:2]


def test_a_frame_never_reads_another_frames_memo() -> None:
    """Frame 1 memoises an object; frame 2 asks for memo entry 0 without storing one: it
    must fail, not be handed frame 1's object."""
    from modelaudit.engine.protocol import ProtocolError, frame, result_frames

    first = frame((1, ("pickle", [], 1, "complete", None, {"x": [1, 2]}, 1.0, 2.0)))
    # PROTO 4, BININT1 2, BINGET 0, TUPLE2, STOP: (2, <memo entry 0>)
    body = b"\x80\x04K\x02h\x00\x86."
    second = struct.pack("<I", len(body)) + body
    with pytest.raises(ProtocolError):
        list(result_frames(first + second))


def test_a_frame_must_end_where_its_length_says() -> None:
    from modelaudit.engine.protocol import ProtocolError, result_frames, result_record

    good = result_record(_records(1)[0])
    body = good[4:]
    for wrong in (len(body) - 1, len(body) + 1):
        bad = struct.pack("<I", wrong) + body + (b"." if wrong > len(body) else b"")
        with pytest.raises(ProtocolError):
            list(result_frames(bad + good))
