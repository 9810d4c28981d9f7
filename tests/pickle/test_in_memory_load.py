"""A buffered stream without frames, or of one frame to its end, is loaded from its bytes.

`stream._load_in_memory` skips the reader's Python callbacks for streams without a FRAME byte
(protocols 0-3) and the shape small pickles of protocol 4 and 5 have (header, one FRAME to the
last byte, STOP). Here every sample of the malicious, truncated and legitimate corpora, framed
that way too, is scanned both ways (the shortcut switched off for the second) and the results
must be the same to the byte position.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

import pytest

from modelaudit.scanners.pickle import stream
from tests.pickle._pickle_corpus import legitimate, malicious, scan, stacked, truncated


def _framed(data: bytes) -> bytes:
    """`data` (a protocol 4+ pickle) with everything after its header in one frame."""
    body = data[2:]
    return data[:2] + b"\x95" + struct.pack("<Q", len(body)) + body


def _corpus() -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for name, data in [*malicious(), *truncated()]:
        out.append((name, data))
        if data[:1] == b"\x80" and data[1:2] in (b"\x04", b"\x05") and data[2:3] != b"\x95":
            out.append((name + ":framed", _framed(data)))
    for name, value in legitimate():
        for protocol in (4, 5):
            out.append((f"{name}:p{protocol}", pickle.dumps(value, protocol=protocol)))
    out.extend((f"stacked{i}", stacked(i)) for i in range(5))
    out.append(("stacked-framed", _framed(pickle.dumps([1, 2], protocol=4)) * 3))
    out.append(("small-dict", pickle.dumps({"w": list(range(20)), "i": 7})))
    return out


CORPUS = _corpus()


def _summary(data: bytes) -> Any:
    result, info = scan(data)
    issues = [
        (i.message, i.severity, i.rule, i.location, sorted(map(str, i.details.items())))
        for i in result.issues
    ]
    return (
        issues,
        result.status,
        result.status_reason,
        (info.pickles, info.end, info.complete, info.globals, sorted(info.storage_keys)),
    )


def _shape(data: bytes) -> bool:
    return (
        len(data) >= 12
        and data[0] == 0x80
        and data[2] == 0x95
        and data[-1] == 0x2E
        and int.from_bytes(data[3:11], "little") == len(data) - 11
    )


def test_the_corpus_has_the_shapes_often() -> None:
    assert sum(_shape(d) for _, d in CORPUS) > 100
    assert sum(b"\x95" not in d for _, d in CORPUS) > 100


@pytest.mark.parametrize(("name", "data"), CORPUS, ids=[n for n, _ in CORPUS])
def test_same_result_without_the_shortcut(
    name: str, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _summary(data)
    monkeypatch.setattr(stream, "_read_as_bytes", lambda reader: None)
    slow = _summary(data)
    assert fast == slow, name


def test_a_failed_load_is_read_through_the_reader() -> None:
    """A framed stream whose load fails is read again: its findings and error are the
    reader's, never doubled."""
    from tests.pickle._pickle_corpus import call, sg

    body = call(sg("os", "system"), "id") + b"h\x63."
    data = _framed(b"\x80\x04" + body)
    assert _shape(data)
    result, info = scan(data)
    assert not info.complete
    messages = [i.message for i in result.issues]
    assert len(messages) == len(set(messages))
    assert any("os.system" in m for m in messages)
