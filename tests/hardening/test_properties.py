"""Property tests: every scanner survives random and mutated inputs built from valid seeds.

Scanners run in-process here (through `dispatch.scan_path`, or called directly), each example
under an alarm that fails the test if one scan does not finish at all.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import FileStatus, ScanResult
from modelaudit.scanners import SCANNER_REGISTRY
from modelaudit.scanners.base import BaseScanner
from tests.hardening._hardening_seeds import SEEDS

HANG_SECONDS = 60
CONFIG = ScanConfig(max_expanded_size=64 << 20).scanner_config()
SEED_NAMES = sorted(SEEDS)
#: Formats where any strict prefix of a valid file is invalid, so a truncation must never be
#: reported as a complete scan.
STRICT_PREFIX = [
    "model.pkl",
    "model_p2.pkl",
    "model.pt",
    "model.joblib",
    "array.npy",
    "arrays.npz",
    "bundle.zip",
    "model.pkl.gz",
    "model.pkl.bz2",
    "model.pkl.xz",
    "model.pkl.lz4",
    "bundle.7z",
    "model.h5",
    "model.safetensors",
    "model.gguf",
    "config.json",
    "model.msgpack",
    "model.keras",
    "model.pmml",
]
PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Hang(BaseException):
    """A single scan did not finish at all (BaseException: dispatch must not swallow it)."""


@contextmanager
def hang_guard(seconds: int = HANG_SECONDS) -> Iterator[None]:
    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"scan still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def seed_bytes(seeds: dict[str, str]) -> dict[str, bytes]:
    out = {}
    for name, path in seeds.items():
        with open(path, "rb") as f:
            out[name] = f.read()
    return out


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("mutants"))


def _scan(work_dir: str, name: str, data: bytes) -> ScanResult:
    path = os.path.join(work_dir, name)
    with open(path, "wb") as f:
        f.write(data)
    with hang_guard():
        result = dispatch.scan_path(path, CONFIG, display=name, explicit=True)
    assert isinstance(result, ScanResult)
    assert result.end_time is not None
    reason = result.status_reason or ""
    assert not (result.status is FileStatus.ERROR and " scanner failed: " in reason), reason
    return result


@st.composite
def mutants(draw: st.DrawFn, seed_bytes: dict[str, bytes]) -> tuple[str, bytes]:
    name = draw(st.sampled_from(SEED_NAMES))
    data = bytearray(seed_bytes[name])
    op = draw(st.sampled_from(["truncate", "flip", "splice", "overwrite", "duplicate"]))
    n = len(data)
    if op == "truncate":
        data = data[: draw(st.integers(0, max(0, n - 1)))]
    elif op == "flip":
        for pos in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8)):
            data[pos] ^= 1 << draw(st.integers(0, 7))
    elif op == "splice":
        other = seed_bytes[draw(st.sampled_from(SEED_NAMES))]
        cut = draw(st.integers(0, n))
        data = data[:cut] + other[draw(st.integers(0, len(other))) :]
    elif op == "overwrite":
        pos = draw(st.integers(0, n))
        blob = draw(st.binary(min_size=1, max_size=16))
        data[pos : pos + len(blob)] = blob
    else:
        start = draw(st.integers(0, n))
        end = draw(st.integers(start, n))
        data = data[:end] + data[start:end] * draw(st.integers(1, 4)) + data[end:]
    return name, bytes(data)


def test_seeds_are_recognised(seed_bytes: dict[str, bytes], work_dir: str) -> None:
    """The seeds are what they claim, so mutations start from valid files."""
    for name, data in seed_bytes.items():
        _scan(work_dir, "seed-" + name, data)
    assert set(seed_bytes) == set(SEEDS)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_mutated_seeds_always_give_a_result(
    seed_bytes: dict[str, bytes], work_dir: str, data: st.DataObject
) -> None:
    name, blob = data.draw(mutants(seed_bytes))
    _scan(work_dir, name, blob)


@pytest.mark.parametrize("name", STRICT_PREFIX)
def test_truncated_file_is_never_complete(
    seed_bytes: dict[str, bytes], work_dir: str, name: str
) -> None:
    data = seed_bytes[name]
    for cut in sorted({1, len(data) // 3, len(data) // 2, len(data) - 1}):
        result = _scan(work_dir, name, data[:cut])
        assert result.status is not FileStatus.COMPLETE, (name, cut, result.issues)


def _registered() -> list[type[BaseScanner]]:
    return list(SCANNER_REGISTRY)


@pytest.mark.parametrize("cls", _registered(), ids=lambda c: c.name)
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    blob=st.one_of(
        st.binary(max_size=512),
        st.sampled_from(sorted(SEEDS)).flatmap(lambda n: st.just(n.encode() * 3)),
    ),
    ext_index=st.integers(0, 16),
)
def test_scanner_never_raises_on_random_bytes(
    cls: type[BaseScanner], blob: bytes, ext_index: int, tmp_path
) -> None:
    """Each registered scanner, called directly, returns a result for arbitrary bytes."""
    extensions = list(cls.supported_extensions) or [".bin"]
    path = str(tmp_path / ("random" + extensions[ext_index % len(extensions)]))
    with open(path, "wb") as f:
        f.write(blob)
    scanner = cls(CONFIG, context=dispatch.make_context(path, CONFIG))
    with hang_guard():
        result = scanner.scan(path)
    assert isinstance(result, ScanResult)
