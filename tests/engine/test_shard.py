"""`--shard K/N`: N disjoint, deterministic parts whose union is the whole sweep."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import modelaudit
from modelaudit.engine.sharding import Shard, parse_shard
from modelaudit.report import ScanReport
from tests.cluster._cluster import small_sweep


def scan(target: str, **options: Any) -> ScanReport:
    return anyio.run(lambda: modelaudit.scan([target], **options))


def entries(report: ScanReport) -> dict[str, tuple[str, list[str]]]:
    return {
        f.path: (f.status.value, sorted(f"{i.severity}:{i.message}" for i in f.issues))
        for f in report.files
    }


def test_parts_are_disjoint_and_their_union_is_the_sweep(tmp_path: Path) -> None:
    target = str(small_sweep(tmp_path / "models", 300))
    whole = entries(scan(target))
    parts = [entries(scan(target, shard=f"{k}/4")) for k in range(1, 5)]
    assert all(parts), "a part is empty"
    seen: set[str] = set()
    for part in parts:
        assert not seen & part.keys()
        seen |= part.keys()
        for path, verdict in part.items():
            assert whole[path] == verdict
    assert seen == whole.keys()
    assert entries(scan(target, shard="2/4")) == parts[1]


def test_the_split_is_pinned() -> None:
    """CI jobs on different machines and versions must agree on every object's part: the
    first 8 bytes of the URI's SHA-256, big-endian, modulo N, plus one."""
    uris = [f"s3://bucket/models/model{i}.safetensors" for i in range(8)]
    uris += ["models/evil.pkl", "hf://org/repo/model.bin"]

    def part(uri: str, parts: int) -> int:
        [k] = [k for k in range(1, parts + 1) if Shard(k, parts).holds(uri)]
        return k

    assert [part(u, 3) for u in uris] == [3, 1, 1, 1, 3, 2, 2, 1, 1, 1]
    assert [part(u, 7) for u in uris] == [1, 6, 4, 7, 5, 6, 2, 5, 1, 7]
    assert Shard(1, 1).holds("anything")


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "x/2", "1-2", ""])
def test_bad_shards_are_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        parse_shard(text)
    proc = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--shard", text, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--shard" in proc.stderr


CLI = [sys.executable, "-m", "modelaudit", "scan", "--no-progress", "-f", "json"]


def test_cli_parts_cover_a_directory(tmp_path: Path) -> None:
    import json

    target = str(small_sweep(tmp_path / "models", 60))
    paths: list[str] = []
    for k in (1, 2):
        proc = subprocess.run(
            [*CLI, "--shard", f"{k}/2", target],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode in (0, 1), proc.stderr
        paths += [f["path"] for f in json.loads(proc.stdout)["files"]]
    assert sorted(paths) == sorted(str(p) for p in Path(target).rglob("*.pkl"))
