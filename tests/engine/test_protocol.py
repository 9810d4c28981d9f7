"""Worker messages carry plain data only: the parent's loader refuses every global."""

from __future__ import annotations

import enum
import pickle

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
