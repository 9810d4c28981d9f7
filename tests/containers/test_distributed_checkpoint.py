"""torch.distributed.checkpoint folders, written by `dcp.save` (one process) and never loaded.

A `.distcp` shard is the `torch.save` of every item end to end; the reader `torch.load`s each
non-tensor item with `weights_only=False`, so a pickle in any item runs, not only in the last
one (the only one a zip reader sees).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.formats import Format, sniff_path
from tests.containers._container_corpus import Evil, criticals, scan


def _save(folder: Path, state: dict[str, Any]) -> Path:
    from torch.distributed.checkpoint.state_dict_saver import save

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save(state, checkpoint_id=str(folder))
    (shard,) = folder.glob("*.distcp")
    return shard


def _state(extra: object) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    return {"extra": extra, "model": torch.nn.Linear(4, 2).state_dict(), "step": {"n": 3}}


def test_legitimate_shard_is_complete_and_quiet(tmp_path: Path) -> None:
    shard = _save(tmp_path / "ckpt", _state({"epoch": 1, "lr": 1e-3}))
    assert sniff_path(str(shard)) is Format.TORCH_DCP
    result = scan(shard)
    loud = [i.message for i in result.issues if i.severity.rank >= IssueSeverity.WARNING.rank]
    assert not loud
    assert result.status is FileStatus.COMPLETE
    assert result.metadata["items"] == 5  # extra.epoch, extra.lr, the two tensors, step.n
    assert result.bytes_scanned == shard.stat().st_size


@pytest.mark.parametrize("key", ["extra", "step"])
def test_payload_in_any_item_is_critical(tmp_path: Path, key: str) -> None:
    state = _state({"epoch": 1})
    state[key] = Evil()
    shard = _save(tmp_path / "ckpt", state)
    assert criticals(scan(shard))


def test_bytes_after_the_items_are_inconclusive(tmp_path: Path) -> None:
    shard = _save(tmp_path / "ckpt", _state({"epoch": 1}))
    shard.write_bytes(shard.read_bytes() + b"\x80\x02cos\nsystem\n")
    assert scan(shard).status is FileStatus.INCONCLUSIVE


def test_end_record_signatures_are_charged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelaudit.rules.core import ANALYSIS_BUDGET
    from modelaudit.scanners.containers import dcp_scanner

    monkeypatch.setattr(dcp_scanner, "_MAX_CANDIDATES", 1000)
    shard = tmp_path / "__0_0.distcp"
    shard.write_bytes(b"PK\x03\x04" + b"PK\x05\x06" * 5000)
    result = scan(shard)
    assert result.status is FileStatus.INCONCLUSIVE
    assert ANALYSIS_BUDGET in {i.rule for i in result.issues}


def test_items_are_slices_of_the_shard_not_expansion(tmp_path: Path) -> None:
    """The items are the shard's own bytes, stored: a shard larger than the expansion
    budget (legitimate ones reach many GiB) was a "decompression limit exceeded" WARNING."""
    shard = _save(tmp_path / "ckpt", _state({"epoch": 1, "lr": 1e-3}))
    result = scan(shard, max_expanded_size=shard.stat().st_size // 2)
    assert result.status is FileStatus.COMPLETE, result.status_reason
    assert result.metadata["items"] == 5
    assert not [i for i in result.issues if i.severity.rank >= IssueSeverity.WARNING.rank]
