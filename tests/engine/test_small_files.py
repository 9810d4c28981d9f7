"""Small files are read once: the sniff's bytes are handed to the scanner (ScanContext.whole).

What the scanner judges must be exactly the bytes the sniff routed, never a second reading of
the path, and a hand-over must never reach another file or nested content.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as save_safetensors

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch, protocol
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.formats import HEAD_SIZE, Format
from modelaudit.scanners.containers.numpy_scanner import NumPyScanner
from modelaudit.scanners.data.safetensors_scanner import SafetensorsScanner
from modelaudit.scanners.pickle.pickle_scanner import PickleScanner
from modelaudit.scanners.text.json_scanner import JsonScanner

#: Protocol 0 by hand: GLOBAL os.system, the argument, REDUCE. Never loaded, only scanned.
EVIL_PICKLE = b"cos\nsystem\n(S'id'\ntR."
BENIGN_PICKLE = b"(dp0\nS'w'\np1\nI1\ns."


def _config() -> dict[str, object]:
    return ScanConfig().scanner_config()


def test_sniff_hands_over_a_file_it_read_whole(tmp_path: Path) -> None:
    small = tmp_path / "m.pkl"
    small.write_bytes(BENIGN_PICKLE)
    fmt, no_zip_tail, size, data = dispatch._sniff(str(small), str(small))
    assert (fmt, no_zip_tail, size, data) == (
        Format.PICKLE,
        True,
        len(BENIGN_PICKLE),
        BENIGN_PICKLE,
    )
    big = tmp_path / "big.npy"
    np.save(big, np.zeros(HEAD_SIZE, dtype=np.uint8))
    assert dispatch._sniff(str(big), str(big))[3] is None


@pytest.mark.parametrize(
    ("scanner", "name", "on_disk", "handed", "critical"),
    [
        (PickleScanner, "m.pkl", BENIGN_PICKLE, EVIL_PICKLE, True),
        (PickleScanner, "m.pkl", EVIL_PICKLE, BENIGN_PICKLE, False),
    ],
)
def test_scanner_judges_the_handed_bytes(
    tmp_path: Path, scanner: type, name: str, on_disk: bytes, handed: bytes, critical: bool
) -> None:
    """The file changed between the sniff and the scan: the verdict is about what was routed."""
    path = tmp_path / name
    path.write_bytes(on_disk)
    ctx = dispatch.make_context(str(path), _config(), fmt=Format.PICKLE, whole=(str(path), handed))
    result = scanner(_config(), context=ctx).scan(str(path))
    found = any(i.severity is IssueSeverity.CRITICAL for i in result.issues)
    assert found is critical, [i.message for i in result.issues]


def test_a_hand_over_for_another_path_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(EVIL_PICKLE)
    other = str(tmp_path / "other.pkl")
    ctx = dispatch.make_context(str(path), _config(), fmt=Format.PICKLE, whole=(other, b"N."))
    scanner = PickleScanner(_config(), context=ctx)
    assert scanner.whole_file(str(path)) is None
    result = scanner.scan(str(path))
    assert any(i.severity is IssueSeverity.CRITICAL for i in result.issues)
    assert ctx.nested("m.pkl:inner").whole is None


def _small_files(folder: Path) -> list[Path]:
    pkl = folder / "a.pkl"
    pkl.write_bytes(EVIL_PICKLE)
    buf = io.BytesIO()
    np.save(buf, np.arange(8, dtype=np.float32))
    npy = folder / "b.npy"
    npy.write_bytes(buf.getvalue())
    short = folder / "short.npy"
    short.write_bytes(buf.getvalue()[:-4])
    st = folder / "c.safetensors"
    st.write_bytes(save_safetensors({"w": np.zeros(4, dtype=np.float32)}, {"note": "x"}))
    bad_st = folder / "d.safetensors"
    bad_st.write_bytes(b"\xff\x00\x00\x00\x00\x00\x00\x00{}")
    cfg = folder / "config.json"
    cfg.write_text(json.dumps({"auto_map": {"AutoModel": "modeling.Net"}, "model_type": "x"}))
    return [pkl, npy, short, st, bad_st, cfg]


def _scan_reading_the_path(path: Path) -> tuple[object, ...]:
    """The same routing, but with the format given: no sniff, so the scanner reads the path."""
    fmt = dispatch._sniff(str(path), str(path))[0]
    cls = dispatch.select_scanner(str(path), fmt)
    assert cls in (PickleScanner, NumPyScanner, SafetensorsScanner, JsonScanner)
    return _verdict(dispatch.scan_path(str(path), _config(), explicit=False, fmt=fmt))


def _verdict(result: object) -> tuple[object, ...]:
    encoded = protocol.encode_result(result)  # type: ignore[arg-type]
    issues = sorted((i[0], i[1], i[5]) for i in encoded[1])
    metadata = encoded[5]
    return (encoded[0], issues, encoded[2], encoded[3], encoded[4], metadata)


def test_hand_over_changes_no_verdict(tmp_path: Path) -> None:
    """Each format's scanner says the same about a small file whether it read the bytes
    itself or was handed them (findings, status, bytes scanned, metadata)."""
    for path in _small_files(tmp_path):
        handed = dispatch.scan_path(str(path), _config(), explicit=False)
        assert _verdict(handed) == _scan_reading_the_path(path), path.name
    assert dispatch.scan_path(str(tmp_path / "short.npy"), _config()).status is not (
        FileStatus.COMPLETE
    )
