"""Atheris harness: every registered scanner, reached through dispatch, fed mutated seeds.

Not part of pytest or CI (run it by hand):

    /work/venv/bin/python tests/fuzz/fuzz_scanners.py -atheris_runs=200000 -max_len=65536

A crash is an exception escaping `dispatch.scan_path` or a result that is not a ScanResult;
scanner failures that dispatch turns into an "error" status are crashes too, because a
scanner must never raise for a bad file. Escaping exceptions stop the fuzzer (libFuzzer
writes the input); scanner failures are logged once per distinct message, with the input
saved under $FUZZ_FINDINGS (default ./fuzz-findings), so one known bug does not stop the run.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import atheris

with atheris.instrument_imports():
    from modelaudit.config import ScanConfig
    from modelaudit.engine import dispatch
    from modelaudit.findings import FileStatus, ScanResult

from tests.hardening._hardening_seeds import SEEDS, build_seeds

_DIR = tempfile.mkdtemp(prefix="modelaudit-fuzz-")
_NAMES = sorted(SEEDS)
_CONFIG = {**ScanConfig(max_expanded_size=64 << 20).scanner_config(), "timeout": 10}
_FINDINGS = os.environ.get("FUZZ_FINDINGS", "fuzz-findings")
_seen: set[str] = set()


def _record(name: str, reason: str, data: bytes) -> None:
    signature = re.sub(r"\d+", "N", reason)[:200]
    if signature in _seen:
        return
    _seen.add(signature)
    os.makedirs(_FINDINGS, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(_FINDINGS, f"{name}-{digest}"), "wb") as f:
        f.write(data)
    print(f"FINDING {name}: {reason}", file=sys.stderr, flush=True)


def test_one(data: bytes) -> None:
    if not data:
        return
    name = _NAMES[data[0] % len(_NAMES)]
    path = os.path.join(_DIR, "input-" + name)
    with open(path, "wb") as f:
        f.write(data[1:])
    result = dispatch.scan_path(path, _CONFIG, display=name, explicit=True)
    if not isinstance(result, ScanResult):
        raise AssertionError(f"{name}: not a ScanResult: {result!r}")
    reason = result.status_reason or ""
    # A module another engineer has not landed yet is not a parser crash.
    if "ModuleNotFoundError" in reason or "ImportError" in reason:
        return
    if result.status is FileStatus.ERROR and " scanner failed: " in reason:
        _record(name, reason, data[1:])


def main() -> None:
    corpus = os.path.join(_DIR, "corpus")
    os.makedirs(corpus)
    seeds = build_seeds(os.path.join(_DIR, "seeds"))
    for i, name in enumerate(_NAMES):
        with open(seeds[name], "rb") as f:
            body = f.read()
        with open(os.path.join(corpus, f"seed{i}"), "wb") as f:
            f.write(bytes([i]) + body)
    # Like a scan worker: an absurd allocation fails with MemoryError instead of an OOM kill.
    limit = int(os.environ.get("FUZZ_MEMORY_LIMIT", str(4 << 30)))
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    atheris.Setup([*sys.argv, corpus], test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
