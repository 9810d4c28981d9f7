"""Bytes a loader unpickles are recognised by following their opcodes, not by their first bytes.

`torch.storage._load_from_bytes(b)` unpickles `b` (torch.load of a legacy stream reads its first
pickle with the full unpickler). Only a pickle header, a GLOBAL line or a MARK/list/dict at the
very start was recognised; a protocol-0 pickle that pads first (`N0`: push None, pop it) or
imports with INST was not scanned at all, and the call itself is a safe one: clean. The bytes
here are assembled by hand and only ever read by the scanner.
"""

from __future__ import annotations

import pytest

from tests.pickle._pickle_corpus import Op, call, critical, p4, scan, sg


def _load_from_bytes(payload: bytes) -> bytes:
    blob = Op(b"C" + bytes([len(payload)]) + payload) if len(payload) < 256 else None
    if blob is None:
        blob = Op(b"B" + len(payload).to_bytes(4, "little") + payload)
    return p4(call(sg("torch.storage", "_load_from_bytes"), blob))


@pytest.mark.parametrize(
    "payload",
    [
        b"N0cos\nsystem\n(S'id'\ntR.",  # padding, then GLOBAL
        b"N0(S'id'\nios\nsystem\n.",  # padding, then INST
        b"I1\n0" * 100 + b"(S'id'\nios\nsystem\n.",  # the import past byte 256
    ],
    ids=["padded-global", "padded-inst", "long-padding-inst"],
)
def test_padded_protocol_0_pickle_a_loader_unpickles_is_scanned(payload: bytes) -> None:
    result, _ = scan(_load_from_bytes(payload))
    assert any("os.system" in m for m in critical(result)), [i.message for i in result.issues]


def test_bytes_that_reach_no_import_stay_quiet() -> None:
    result, _ = scan(_load_from_bytes(b"N0N0I1\n0 just bytes, no pickle."))
    assert not critical(result)
