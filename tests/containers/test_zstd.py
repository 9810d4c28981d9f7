"""Zstandard streams: pandas' `read_pickle` infers zstd from a `.zst` name and unpickles what
it decompresses (pandas/io/common.py), so a `.pkl.zst` was a pickle the scan skipped."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path
from types import ModuleType

import pytest

from modelaudit.findings import FileStatus
from modelaudit.rules import containers as crules
from modelaudit.scanners.containers.decompress import open_stream
from tests.containers._container_corpus import criticals, payload, rules_of, scan, tar_bytes


def _zstd() -> ModuleType:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # type: ignore[no-redef]
    return zstd  # type: ignore[no-any-return]


def _skippable(data: bytes) -> bytes:
    return struct.pack("<II", 0x184D2A50, len(data)) + data


@pytest.mark.parametrize("name", ["model.pkl.zst", "model.zstd", "weights.bin"])
def test_pickle_in_zstd_is_scanned(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_zstd().compress(payload(2)))
    result = scan(path)
    assert result.scanner_name == "compressed"
    assert any("system" in m for m in criticals(result))


def test_payload_after_a_skippable_frame_or_in_a_later_frame(tmp_path: Path) -> None:
    zstd = _zstd()
    skip = tmp_path / "skip.pkl.zst"
    skip.write_bytes(_skippable(b"hide") + zstd.compress(payload(2)))
    assert criticals(scan(skip))
    frames = tmp_path / "frames.pkl.zst"
    frames.write_bytes(zstd.compress(pickle.dumps([1, 2])) + zstd.compress(payload(2)))
    assert criticals(scan(frames))


def test_tar_in_zstd_is_walked(tmp_path: Path) -> None:
    path = tmp_path / "bundle.tar.zst"
    path.write_bytes(_zstd().compress(tar_bytes([("m/model.pkl", payload(2))])))
    assert criticals(scan(path))


def test_zstd_bomb_stops_on_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zst"
    path.write_bytes(_zstd().compress(b"\0" * (256 << 20)))
    result = scan(path)
    assert crules.DECOMPRESSION_BOMB in rules_of(result)
    assert result.status is FileStatus.INCONCLUSIVE


def test_benign_zstd_pickle_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "frame.pkl.zst"
    path.write_bytes(_zstd().compress(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4)))
    result = scan(path)
    assert result.status is FileStatus.COMPLETE
    assert not criticals(result)
    assert result.metadata["format_details"]["compression"] == "zstd"


def test_zstd_frames_decode_in_order() -> None:
    zstd = _zstd()
    blob = zstd.compress(b"a" * 5000) + _skippable(b"x") + zstd.compress(b"b")
    raw, stream = open_stream(io.BytesIO(blob), "zstd", limit=1 << 20)
    assert stream.read() == b"a" * 5000 + b"b"
    assert raw.clean_end
