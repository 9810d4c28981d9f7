"""stable-baselines3's model zip: the `data` JSON whose `:serialized:` values its loader
unpickles (`json_to_data`: cloudpickle.loads of the base64 text), scanned as those pickles."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from tests.dataformats._dataformats_util import assert_clean, scan
from tests.pickle._old_cloudpickle import constant_fn, dumps38, linear_schedule

ZOO_PPO = (
    Path(__file__).resolve().parents[1] / "zoo" / "repos" / "sb3-rl-zoo" / "ppo-CartPole-v1.zip"
)
EVIL = b"cos\nsystem\n(S'id'\ntR."


def _with_data(tmp_path: Path, edit: dict[str, str]) -> Path:
    """The zoo's PPO zip (what PPO.save writes) with `data` values replaced."""
    out = tmp_path / "ppo-CartPole-v1.zip"
    with zipfile.ZipFile(ZOO_PPO) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            if info.filename == "data":
                doc = json.loads(raw)
                for key, text in edit.items():
                    doc[key] = {
                        ":type:": "<class 'gymnasium.spaces.box.Box'>",
                        ":serialized:": text,
                    }
                raw = json.dumps(doc, indent=4).encode()
            dst.writestr(info, raw)
    return out


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(EVIL).decode(),
        # b64decode (not validating) drops characters outside the alphabet, as the loader's does
        "\n".join(base64.b64encode(EVIL).decode()),
    ],
)
def test_a_serialized_value_that_calls_is_critical(tmp_path: Path, text: str) -> None:
    """The zip PPO.save wrote is clean (policy class, spaces, schedules); the same zip with
    one value replaced by a pickle that calls os.system is not."""
    with zipfile.ZipFile(ZOO_PPO) as z:
        assert b'":serialized:"' in z.read("data")
    assert_clean(scan(ZOO_PPO))
    result = scan(_with_data(tmp_path, {"observation_space": text}))
    crit = [i for i in result.issues if i.severity is IssueSeverity.CRITICAL]
    assert crit and "observation_space" in (crit[0].location or ""), result.issues


def test_the_extracted_data_file_is_judged_too(tmp_path: Path) -> None:
    with zipfile.ZipFile(
        _with_data(tmp_path, {"lr_schedule": base64.b64encode(EVIL).decode()})
    ) as z:
        (tmp_path / "data").write_bytes(z.read("data"))
    result = scan(tmp_path / "data")
    assert any(i.severity is IssueSeverity.CRITICAL for i in result.issues), result.issues


def test_a_truncated_serialized_value_is_inconclusive(tmp_path: Path) -> None:
    result = scan(_with_data(tmp_path, {"action_space": base64.b64encode(EVIL[:-4]).decode()}))
    assert result.status is FileStatus.INCONCLUSIVE


def test_old_schedule_closures_are_info_and_a_twin_is_not(tmp_path: Path) -> None:
    """Before FloatSchedule, PPO.save cloudpickled its schedules as closures: names-free
    bytecode, INFO; the same closure holding os.system in its cell is CRITICAL."""

    old = _with_data(
        tmp_path,
        {
            "lr_schedule": base64.b64encode(dumps38(linear_schedule(0.0003))).decode(),
            "clip_range": base64.b64encode(dumps38(constant_fn(0.2))).decode(),
        },
    )
    result = scan(old)
    assert_clean(result)
    infos = [i for i in result.issues if "names no global" in i.message]
    assert len(infos) == 2 and all(i.severity is IssueSeverity.INFO for i in infos), infos
    run = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", str(old), "--format", "json"],
        capture_output=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    twin = tmp_path / "twin"
    twin.mkdir()
    shell: Any = os.system
    evil = _with_data(twin, {"clip_range": base64.b64encode(dumps38(constant_fn(shell))).decode()})
    crit = [i for i in scan(evil).issues if i.severity is IssueSeverity.CRITICAL]
    assert any("system" in i.message for i in crit), crit
