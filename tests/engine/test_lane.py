"""A worker batch's `dispatch.Lane` (settings and routing worked out once for its files)
changes nothing about any file's result, and the worker still empties its temp folder after
a scan that wrote there.

Every fixture file under tests/ and a set of small and hostile files are scanned both ways,
with and without a lane, and their encoded results (what the parent receives) compared with
the clock readings left out.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save as save_safetensors

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch, protocol, worker
from modelaudit.formats import Format

TESTS = Path(__file__).resolve().parents[1]
#: Protocol 0 by hand: GLOBAL os.system, the argument, REDUCE. Never loaded, only scanned.
EVIL_PICKLE = b"cos\nsystem\n(S'id'\ntR."
#: Fixtures larger than this are left out (the lane changes nothing size-dependent).
_FIXTURE_CAP = 4 << 20


def _fixtures() -> list[Path]:
    return sorted(
        p
        for p in TESTS.rglob("*")
        if p.is_file()
        and p.suffix not in (".py", ".pyc")
        and "__pycache__" not in p.parts
        and p.stat().st_size <= _FIXTURE_CAP
    )


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.pkl", EVIL_PICKLE)
    return buf.getvalue()


def _npy(array: np.ndarray[Any, Any]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def _made(folder: Path) -> list[Path]:
    """The benchmark tree's four kinds, and hostile variants of them."""
    small_pickle = pickle.dumps({"w": list(range(20)), "i": 7})
    npy = _npy(np.arange(32, dtype=np.float32))
    safetensors = save_safetensors({"w": np.zeros(16, dtype=np.float32)})
    config = b'{"model_type": "bert", "hidden_size": 8}'
    files = {
        "m.pkl": small_pickle,
        "m.npy": npy,
        "m.safetensors": safetensors,
        "config.json": config,
        "truncated.pkl": small_pickle[:-9],
        "truncated.npy": npy[:-17],
        "truncated.safetensors": safetensors[:-5],
        "zip-tail.pkl": small_pickle + _zip_bytes(),
        "zip-tail.safetensors": safetensors + _zip_bytes(),
        "zip-tail.npy": npy + _zip_bytes(),
        "bad.json": b'{"model_type": "bert", "hidden_size": ',
        "objects.npy": _npy(np.array([{"a": 1}, "text"], dtype=object)),
        "global.pkl": EVIL_PICKLE,
        "renamed.txt": EVIL_PICKLE,
        "trailing.safetensors": safetensors + EVIL_PICKLE,
        "empty.pkl": b"",
        "unknown.bin": b"\x00\x01\x02 not a model",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]


def _without_clocks(encoded: tuple[Any, ...]) -> tuple[Any, ...]:
    name, issues, scanned, status, reason, metadata, _start, _end = encoded
    return (name, [i[:6] for i in issues], scanned, status, reason, metadata)


def _compare(paths: list[Path], config: dict[str, Any]) -> tuple[list[str], set[str]]:
    """Scan each file with and without one lane for all (as in a batch): the files whose
    encoded results differ, and the scanners that judged them."""
    lane = dispatch.Lane(config)
    differ = []
    scanners = set()
    for path in paths:
        shown = str(path)
        plain = worker.scan_file(shown, config, shown, False)
        laned = worker.scan_file(shown, config, shown, False, lane=lane)
        expected = _without_clocks(protocol.encode_result(plain))
        if _without_clocks(protocol.encode_result(laned)) != expected:
            differ.append(shown)
        scanners.add(plain.scanner_name)
    return differ, scanners


def fixture_report() -> dict[str, Any]:
    """`_compare` over every fixture. Run in a child: the ONNX scanner loads onnx's
    extension directly, after which `import onnx` fails in that process."""
    fixtures = _fixtures()
    differ, scanners = _compare(fixtures, ScanConfig().scanner_config())
    return {"count": len(fixtures), "differ": differ, "scanners": sorted(scanners)}


_FIXTURES_CHILD = (
    "import json; from tests.engine.test_lane import fixture_report; "
    "print(json.dumps(fixture_report()))"
)


def test_fixtures_scan_the_same_with_a_lane() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _FIXTURES_CHILD],
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out.splitlines()[-1])
    assert report["count"] > 100
    assert report["differ"] == []
    assert {"pickle", "safetensors", "json", "onnx", "numpy"} <= set(report["scanners"])


@pytest.mark.parametrize(
    "settings",
    [{}, {"strict": True}, {"blacklist_patterns": ["bert", "m."]}, {"max_depth": 1}],
    ids=["default", "strict", "blacklist", "shallow"],
)
def test_small_and_hostile_files_scan_the_same_with_a_lane(
    tmp_path: Path, settings: dict[str, Any]
) -> None:
    config = {**ScanConfig().scanner_config(), **settings}
    differ, scanners = _compare(_made(tmp_path), config)
    assert differ == []
    assert {"pickle", "numpy", "safetensors", "json"} <= scanners
    laned = worker.scan_file(
        str(tmp_path / "global.pkl"), config, "global.pkl", False, lane=dispatch.Lane(config)
    )
    assert any(i.severity.value == "critical" for i in laned.issues)


def test_a_lane_routes_by_name_what_no_scanner_owns(tmp_path: Path) -> None:
    """The lane keeps only content routing; a format without an owner falls back to names."""
    config = ScanConfig().scanner_config()
    lane = dispatch.Lane(config)
    path = tmp_path / "w.npy"
    path.write_bytes(_npy(np.zeros(3)))
    assert lane.select(str(path), None) is dispatch.select_scanner(str(path), None)
    unowned: Any = "no-such-format"
    assert lane.select(str(path), unowned) is dispatch.select_scanner(str(path), unowned)
    owner = dispatch.select_scanner(str(path), Format.NUMPY)
    assert lane.select(str(path), Format.NUMPY) is owner
    assert lane.owners == {Format.NUMPY: owner}


_HOOK_PROBE = """
import os, sys, tempfile
from modelaudit.engine import sandbox
sandbox.install({})
folder = sys.argv[1]
seen = []
def scan(action):
    sandbox.wrote = False
    with sandbox.watching("f"):
        action()
    seen.append(sandbox.wrote)
probe = os.path.join(folder, "probe")
open(probe, "wb").close()
scan(lambda: open(probe, "rb").close())
scan(lambda: os.close(os.open(probe, os.O_RDONLY)))
scan(lambda: open(os.path.join(folder, "new"), "wb").close())
scan(lambda: os.close(os.open(os.path.join(folder, "raw"), os.O_WRONLY | os.O_CREAT)))
scan(lambda: tempfile.mkdtemp(dir=folder))
scan(lambda: tempfile.mkstemp(dir=folder))
scan(lambda: os.mkdir(os.path.join(folder, "d")))
# reads first, then a write: the write is still noticed
scan(lambda: (open(probe, "rb").close(), open(os.path.join(folder, "late"), "wb").close()))
# after reads (and a write), a refused action is still refused
def refused():
    open(probe, "rb").close()
    open(os.path.join(folder, "late2"), "wb").close()
    try:
        os.system("true")
    except sandbox.SandboxViolation:
        return
    raise AssertionError("not refused")
scan(refused)
print(seen)
"""


def test_the_sandbox_hook_notices_a_scan_that_writes(tmp_path: Path) -> None:
    """Run in a child: the hook stays installed in the process for good."""
    out = subprocess.run(
        [sys.executable, "-c", _HOOK_PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out.replace("False", "false").replace("True", "true")) == [
        False,
        False,
        True,
        True,
        True,
        True,
        True,
        True,
        True,
    ]


_BATCH_PROBE = """
import json, os, sys, tempfile
from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch, worker
from modelaudit.scanners.base import BaseScanner

folder, how, watch = sys.argv[1], sys.argv[2], sys.argv[3] == "watch"
tmp = os.path.join(folder, "tmp")
os.mkdir(tmp)
worker._use_tempdir(tmp)


class Leaver(BaseScanner):
    \"\"\"Leaves an entry in the temp folder; says whether it found one left before it.\"\"\"

    name = "leaver"
    supported_extensions = [".leave"]

    def scan(self, path):
        result = self._create_result()
        result.metadata["found"] = sorted(os.listdir(tmp))
        left = os.path.join(tmp, "left-" + os.path.basename(path))
        if how == "python":
            os.close(os.open(left, os.O_WRONLY | os.O_CREAT))
        else:
            os.mkfifo(left)  # no audit event: native code writing unseen
        result.finish()
        return result


for name in ("a.leave", "b.leave"):
    open(os.path.join(folder, name), "wb").close()
jobs = [(i, os.path.join(folder, n), n, False, 30.0, 0, False)
        for i, n in enumerate(("a.leave", "b.leave"))]
config = ScanConfig().scanner_config()
dispatch.set_registry((Leaver,))
parent_says, _ = os.pipe()  # nothing arrives from the parent
channel = worker.Channel(parent_says, os.open(os.devnull, os.O_WRONLY))
seen = []


class Results(worker._Results):
    def add(self, job_id, result):
        seen.append(result.metadata.get("found"))
        return super().add(job_id, result)


results = Results(channel, None)
worker._run_files(results, config, jobs, tmp, None, 30.0, 0, watch)
print(json.dumps({"seen": seen, "after": sorted(os.listdir(tmp))}))
"""


@pytest.mark.parametrize(
    ("how", "watch", "second_finds"),
    [
        ("python", "trust-hook", []),
        ("python", "watch", []),
        ("native", "watch", []),
        # What the registry guard is for: the hook cannot see a native write.
        ("native", "trust-hook", ["left-a.leave"]),
    ],
)
def test_the_worker_empties_its_temp_folder_after_a_file_that_wrote(
    tmp_path: Path, how: str, watch: str, second_finds: list[str]
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _BATCH_PROBE, str(tmp_path), how, watch],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out)
    assert report["seen"] == [[], second_finds]
    assert report["after"] == []  # the batch's end looks at the folder whatever happened
