from __future__ import annotations

import pickle
import struct
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import data as rd
from tests.dataformats._dataformats_util import assert_clean, has_pickle_scanner, rules_of, scan


def _flax_default(obj: Any) -> Any:
    """flax.serialization's encoding: ndarrays as ext 1, NumPy scalars as ext 3."""
    if isinstance(obj, np.ndarray):
        payload = msgpack.packb((obj.shape, obj.dtype.name, obj.tobytes("C")), use_bin_type=True)
        return msgpack.ExtType(1, payload)
    if isinstance(obj, np.generic):
        payload = msgpack.packb((obj.dtype.name, obj.tobytes()), use_bin_type=True)
        return msgpack.ExtType(3, payload)
    raise TypeError(type(obj))


def _flax_bytes(tree: Any) -> bytes:
    return msgpack.packb(tree, default=_flax_default, strict_types=False, use_bin_type=True)


PARAMS = {
    "params": {
        "Dense_0": {"kernel": np.ones((64, 32), np.float32), "bias": np.zeros(32, np.float32)},
        "Embed_0": {"embedding": np.arange(100, dtype=np.int32).reshape(10, 10)},
    },
    "step": np.int64(1000),
    "opt_state": [{"count": 3}, None, True, -1.5],
}


def test_flax_checkpoint_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "flax_model.msgpack"
    path.write_bytes(_flax_bytes(PARAMS))
    result = scan(path)
    assert result.scanner_name == "msgpack"
    assert_clean(result)


def test_tensor_bytes_are_skipped_not_read(tmp_path: Path) -> None:
    path = tmp_path / "big.msgpack"
    path.write_bytes(_flax_bytes({"w": np.zeros((1024, 1024), np.float32)}))
    result = scan(path)
    assert_clean(result)
    assert result.bytes_scanned == path.stat().st_size


def test_embedded_pickle_in_bytes_value(tmp_path: Path) -> None:
    path = tmp_path / "evil.msgpack"
    blob = pickle.dumps({"state": [1, 2, 3]}, protocol=4)
    path.write_bytes(_flax_bytes({"params": {"w": np.ones(3, np.float32)}, "extra": blob}))
    result = scan(path)
    assert rd.MSGPACK_EMBEDDED_PICKLE in rules_of(result, IssueSeverity.WARNING)


def test_embedded_malicious_pickle_reaches_pickle_scanner(tmp_path: Path) -> None:
    payload = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    path = tmp_path / "evil.msgpack"
    path.write_bytes(_flax_bytes({"extra": payload}))
    result = scan(path)
    assert rd.MSGPACK_EMBEDDED_PICKLE in rules_of(result, IssueSeverity.WARNING)
    if has_pickle_scanner():
        assert IssueSeverity.CRITICAL in {i.severity for i in result.issues}


def test_unknown_extension_type(tmp_path: Path) -> None:
    path = tmp_path / "ext.msgpack"
    path.write_bytes(msgpack.packb({"w": msgpack.ExtType(42, b"opaque")}))
    assert rd.MSGPACK_UNKNOWN_EXT in rules_of(scan(path), IssueSeverity.WARNING)


def test_object_dtype_array_is_flagged(tmp_path: Path) -> None:
    payload = msgpack.packb(((2,), "object", b"\x00" * 16), use_bin_type=True)
    path = tmp_path / "obj.msgpack"
    path.write_bytes(msgpack.packb({"w": msgpack.ExtType(1, payload)}))
    assert rd.MSGPACK_PAYLOAD in rules_of(scan(path), IssueSeverity.WARNING)


def test_trailing_data(tmp_path: Path) -> None:
    path = tmp_path / "trail.msgpack"
    path.write_bytes(_flax_bytes({"a": 1}) + pickle.dumps([1], protocol=2))
    result = scan(path)
    assert rd.MSGPACK_PAYLOAD in rules_of(result, IssueSeverity.WARNING)


def test_hostile_lengths_and_nesting_are_bounded(tmp_path: Path) -> None:
    cases = {
        "map32": b"\xdf\xff\xff\xff\xff" + b"\xc0" * 8,
        "bin32": b"\x81\xa1w\xc6\xff\xff\xff\xf0" + b"x" * 16,
        "str32": b"\xdb\x7f\xff\xff\xff" + b"x",
        "deep": b"\x91" * 100_000 + b"\xc0",
        "ext32": b"\xc9\xff\xff\xff\xff\x01",
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.msgpack"
        path.write_bytes(data)
        start = time.monotonic()
        result = scan(path)
        assert time.monotonic() - start < 30
        assert result.status is FileStatus.INCONCLUSIVE, name
        assert rd.MSGPACK_HOSTILE in rules_of(result, IssueSeverity.WARNING), name


def test_truncated_file_is_inconclusive(tmp_path: Path) -> None:
    data = _flax_bytes(PARAMS)
    path = tmp_path / "cut.msgpack"
    path.write_bytes(data[: len(data) // 2])
    assert scan(path).status is FileStatus.INCONCLUSIVE


def test_big_endian_lengths(tmp_path: Path) -> None:
    body = b"\x81\xa1w\xc5" + struct.pack(">H", 300) + bytes(300)
    path = tmp_path / "be.msgpack"
    path.write_bytes(body)
    assert_clean(scan(path))


def test_array_size_must_match_shape(tmp_path: Path) -> None:
    payload = msgpack.packb(((4, 4), "float32", b"\x00" * 64 + b"hidden"), use_bin_type=True)
    path = tmp_path / "size.msgpack"
    path.write_bytes(msgpack.packb({"w": msgpack.ExtType(1, payload)}))
    result = scan(path)
    assert any("needs 64 bytes" in i.message for i in result.issues if i.rule == rd.MSGPACK_PAYLOAD)


def test_all_numeric_dtypes_are_consistent(tmp_path: Path) -> None:
    tree = {
        name: np.zeros((3, 2), dtype=name)
        for name in ("bool", "int8", "uint16", "int32", "float16", "float64", "complex64")
    }
    tree["scalar"] = np.float32(2.5)  # type: ignore[assignment]
    tree["zero_d"] = np.array(7, dtype=np.int64)
    path = tmp_path / "dtypes.msgpack"
    path.write_bytes(_flax_bytes(tree))
    assert_clean(scan(path))


_EVIL = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def _critical_os_system(result: Any) -> bool:
    return any(
        "os.system" in i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL
    )


def test_a_pickle_in_a_string_past_64_kib_is_scanned(tmp_path: Path) -> None:
    """Strings over 64 KiB were skipped without being searched: a base64 os.system pickle
    after 64 KiB of text went unread (clean)."""
    import base64

    text = "x" * (70 << 10) + " " + base64.b64encode(_EVIL).decode()
    path = tmp_path / "big-string.msgpack"
    path.write_bytes(_flax_bytes({"params": {"w": np.ones(3, np.float32)}, "note": text}))
    result = scan(path)
    assert rd.MSGPACK_EMBEDDED_PICKLE in rules_of(result)
    if has_pickle_scanner():
        assert _critical_os_system(result)


def test_a_bytes_pickle_with_trailing_bytes_or_a_late_global_is_scanned(tmp_path: Path) -> None:
    """pickle.loads stops at STOP and ignores what follows, and reads a protocol-0 stream from
    its first opcode: a bytes value with a byte after the STOP, or whose GLOBAL came past its
    first 512 bytes, was skipped (clean)."""
    late = b"S'" + b"a" * 600 + b"'\n0cos\nsystem\n(S'id'\ntR."
    path = tmp_path / "bytes.msgpack"
    path.write_bytes(_flax_bytes({"a": _EVIL + b"\x00", "b": late}))
    result = scan(path)
    found = [i for i in result.issues if i.rule == rd.MSGPACK_EMBEDDED_PICKLE]
    assert len(found) == 2, result.issues
    if has_pickle_scanner():
        assert _critical_os_system(result)


def test_a_pickle_past_the_size_bound_leaves_the_file_inconclusive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bytes value, unknown extension or trailing data that is a pickle too large to
    scan returned silently (clean): it is named and the file is inconclusive (MA9004)."""
    from modelaudit.scanners.data import msgpack_scanner

    monkeypatch.setattr(msgpack_scanner, "_MAX_PICKLE", 16)
    for name, packed in [
        ("bytes", _flax_bytes({"a": _EVIL})),
        ("ext", msgpack.packb({"a": msgpack.ExtType(42, _EVIL)})),
        ("trailing", _flax_bytes({"a": 1}) + _EVIL),
    ]:
        path = tmp_path / f"{name}.msgpack"
        path.write_bytes(packed)
        result = scan(path)
        assert result.status is FileStatus.INCONCLUSIVE, (name, result.issues)
        assert "MA9004" in rules_of(result), name


def test_plain_bytes_values_are_not_pickles(tmp_path: Path) -> None:
    """Raw bytes values (random, text, a pickle-looking head that never imports) stay quiet."""
    rng = np.random.default_rng(0)
    values = {f"b{i}": rng.bytes(4096) for i in range(64)}
    values["text"] = b"hello world " * 100
    values["noimport"] = b"(lp0\nI1\naI2\na."
    path = tmp_path / "plain.msgpack"
    path.write_bytes(msgpack.packb(values))
    result = scan(path)
    assert rd.MSGPACK_EMBEDDED_PICKLE not in rules_of(result)
    assert result.status is FileStatus.COMPLETE
