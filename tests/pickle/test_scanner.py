"""PickleScanner through the engine and the CLI: renamed files, stacked and joblib layouts."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from modelaudit.engine.dispatch import scan_path
from tests.pickle._pickle_corpus import Op, _Reduce, call, p4, s, sg

REPO = Path(__file__).resolve().parents[2]


def _cli(*paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--format", "json", *paths],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_cli_examples() -> None:
    assert _cli("examples/evil.pkl").returncode == 1
    assert _cli("examples/safe.pkl").returncode == 0


@pytest.mark.parametrize("suffix", [".txt", ".bin", ".pt", ".ckpt", ""])
def test_renamed_pickle_is_caught(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"model{suffix}"
    target.write_bytes((REPO / "examples/evil.pkl").read_bytes())
    result = scan_path(str(target), {})
    assert result.scanner_name == "pickle"
    assert any(i.severity.value == "critical" for i in result.issues)
    issue = next(i for i in result.issues if i.severity.value == "critical")
    assert issue.location == f"{target} (pos 2)"
    assert issue.details["module"] == "posix" and issue.details["function"] == "system"


def test_protocol0_renamed_is_caught(tmp_path: Path) -> None:
    target = tmp_path / "weights.txt"
    target.write_bytes(pickle.dumps(_Reduce(os.system, "id"), protocol=0))
    proc = _cli(str(target))
    assert proc.returncode == 1, proc.stdout


def test_truncated_file_is_never_clean(tmp_path: Path) -> None:
    target = tmp_path / "broken.pkl"
    target.write_bytes(pickle.dumps({"a": list(range(50))}, protocol=4)[:-7])
    assert _cli(str(target)).returncode == 2
    evil = tmp_path / "broken_evil.pkl"
    evil.write_bytes(p4(call(sg("os", "system"), "id"))[:-1])
    result = scan_path(str(evil), {})
    assert result.status.value == "inconclusive"
    assert _cli(str(evil)).returncode == 1


def test_legacy_torch_save_is_clean_and_payload_found(tmp_path: Path) -> None:
    import torch

    legacy = tmp_path / "legacy.pt"
    module = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU())
    torch.save(module, legacy, _use_new_zipfile_serialization=False)
    result = scan_path(str(legacy), {})
    assert result.success and not result.issues
    assert result.metadata["pickle_count"] == 5
    state = tmp_path / "state.pt"
    torch.save(module.state_dict(), state, _use_new_zipfile_serialization=False)
    data = state.read_bytes()
    # the payload rides as a third pickle in place of sys_info; the storage bytes follow
    first = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    second = pickle.dumps(1001, protocol=2)
    assert data.startswith(first + second)
    evil = tmp_path / "evil_legacy.pt"
    evil.write_bytes(
        first
        + second
        + pickle.dumps(_Reduce(os.system, "id"), protocol=2)
        + data[len(first + second) :]
    )
    found = scan_path(str(evil), {})
    assert any(i.severity.value == "critical" for i in found.issues)


def test_plain_joblib_is_clean_and_payload_after_arrays_found(tmp_path: Path) -> None:
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    x = np.random.default_rng(0).random((30, 3))
    model = RandomForestClassifier(n_estimators=2, random_state=0).fit(x, x[:, 0] > 0.5)
    plain = tmp_path / "model.joblib"
    joblib.dump({"model": model, "objects": np.array([1, "a", None], dtype=object)}, plain)
    result = scan_path(str(plain), {})
    assert result.success and not result.issues, [i.message for i in result.issues]

    evil = tmp_path / "evil.joblib"
    joblib.dump({"weights": np.arange(1000.0), "hook": _Reduce(os.system, "id")}, evil)
    found = scan_path(str(evil), {})
    assert any(i.message == "Call to posix.system('id')" for i in found.issues)


def _joblib_array_stream(raw: bytes, tail: bytes = b".") -> bytes:
    """A joblib-layout pickle: a uint8 NumpyArrayWrapper whose array bytes are `raw`."""
    dtype = call(sg("numpy", "dtype"), "u1", Op(b"\x89"), Op(b"\x88")) + (
        b"(K\x03" + s("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )
    state = (
        b"}("
        + s("subclass")
        + sg("numpy", "ndarray")
        + s("shape")
        + b"K"
        + bytes([len(raw)])
        + b"\x85"
        + s("order")
        + s("C")
        + s("dtype")
        + dtype
        + s("allow_mmap")
        + b"\x89u"
    )
    wrapper = sg("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + state + b"b"
    return b"\x80\x04" + wrapper + raw + tail


def test_joblib_array_bytes_are_skipped(tmp_path: Path) -> None:
    target = tmp_path / "arrays.joblib"
    target.write_bytes(_joblib_array_stream(bytes(range(200))))
    result = scan_path(str(target), {})
    assert result.success and not result.issues, [i.message for i in result.issues]


def test_joblib_polyglot_payload_in_array_bytes(tmp_path: Path) -> None:
    """pickle.load executes the bytes joblib skips as array data: both readings are scanned."""
    payload = b"0" + call(sg("os", "system"), "id") + b"."
    target = tmp_path / "poly.joblib"
    target.write_bytes(_joblib_array_stream(payload))
    result = scan_path(str(target), {})
    found = [i for i in result.issues if i.severity.value == "critical"]
    assert any(i.message == "Call to os.system('id')" for i in found)
    assert all(i.details.get("interpretation") == "pickle.load" for i in found)


def test_finishes_on_hostile_nesting(tmp_path: Path) -> None:
    target = tmp_path / "deep.pkl"
    target.write_bytes(b"\x80\x04" + b"(" * 200_000 + b".")
    result = scan_path(str(target), {})
    assert not result.success


def test_structure_bombs_are_warnings(tmp_path: Path) -> None:
    laughs = bytearray(b"\x80\x04]\x94")
    for level in range(40):
        laughs += b"(" + (b"h" + bytes([level])) * 10 + b"l\x94"
    samples = {
        "laughs.pkl": bytes(laughs) + b".",
        "deep.pkl": b"\x80\x04" + b"]" * 50_000 + b"a" * 49_999 + b".",
        "dup.pkl": b"\x80\x04N" + b"2" * 500_000 + b".",
    }
    for name, data in samples.items():
        target = tmp_path / name
        target.write_bytes(data)
        result = scan_path(str(target), {})
        assert [i.rule for i in result.issues] == ["MA1012"], name
    big_but_plain = tmp_path / "plain.pkl"
    big_but_plain.write_bytes(pickle.dumps([(1, 2)] * 100_000 + [[]] * 1000, protocol=2))
    assert not scan_path(str(big_but_plain), {}).issues
