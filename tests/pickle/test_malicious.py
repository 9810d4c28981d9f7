"""Every malicious sample is CRITICAL through the real engine."""

from __future__ import annotations

import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import pickle as R
from tests.pickle._pickle_corpus import DANGEROUS, critical, malicious, scan, stacked, truncated

SAMPLES = malicious()


def test_corpus_size_and_families() -> None:
    assert len(SAMPLES) >= 150
    assert len({name for name, _ in SAMPLES}) == len(SAMPLES)
    assert set(DANGEROUS) >= {
        "process",
        "code-exec",
        "resolver",
        "nested-unpickler",
        "file",
        "network",
    }


@pytest.mark.parametrize(("name", "data"), SAMPLES, ids=[n for n, _ in SAMPLES])
def test_malicious_is_critical(name: str, data: bytes) -> None:
    result, _ = scan(data)
    found = critical(result)
    assert found, f"{name}: {[i.message for i in result.issues]}"
    for issue in result.issues:
        if issue.severity is IssueSeverity.CRITICAL:
            assert issue.rule and issue.rule.startswith("MA1")
            assert issue.why
            assert {"module", "function", "position", "opcode"} <= set(issue.details)


@pytest.mark.parametrize(("name", "data"), truncated(), ids=[n for n, _ in truncated()])
def test_truncated_after_payload_is_malformed_and_critical(name: str, data: bytes) -> None:
    result, info = scan(data)
    assert critical(result), name
    assert not info.complete
    assert result.status is FileStatus.INCONCLUSIVE
    assert result.status_reason and result.status_reason.startswith("malformed")
    assert any(i.rule == R.MALFORMED_PICKLE for i in result.issues)


@pytest.mark.parametrize("position", range(5))
def test_stacked_payload_in_any_position(position: int) -> None:
    result, info = scan(stacked(position))
    assert critical(result)
    assert info.pickles == 5
    assert info.complete


def test_stacked_false_reads_only_the_first() -> None:
    result, info = scan(stacked(3), stacked=False)
    assert not critical(result)
    assert info.pickles == 1


def test_positions_point_at_the_opcodes() -> None:
    from tests.pickle._pickle_corpus import call, p4, sg

    data = p4(b"}" + b"0" + call(sg("os", "system"), "id"))
    result, _ = scan(data)
    by_op = {i.details["opcode"]: i.details["position"] for i in result.issues}
    assert data[by_op["STACK_GLOBAL"]] == 0x93
    assert data[by_op["REDUCE"]] == ord("R")
    assert "Dangerous global: posix.system" in critical(
        result
    ) or "Dangerous global: os.system" in critical(result)


def test_message_names_the_callable() -> None:
    from tests.pickle._pickle_corpus import call, g0, p2

    result, _ = scan(p2(call(g0("posix", "system"), "echo pwned")))
    assert "Dangerous global: posix.system" in critical(result)
    assert "Call to posix.system('echo pwned')" in critical(result)


def test_nested_depth_limit_is_respected() -> None:
    import base64
    import pickle

    from tests.pickle._pickle_corpus import _Reduce

    inner = pickle.dumps(_Reduce(__import__("os").system, "id"))
    data = inner
    for _ in range(8):
        data = pickle.dumps({"x": base64.b64encode(data)})
    result, info = scan(data)
    assert info.complete
    assert not critical(result)


def test_call_positions_count_every_build() -> None:
    from tests.pickle._pickle_corpus import Op, call, p4, sg

    built = Op(sg("collections", "OrderedDict") + b")\x81}b0")
    data = p4(built + built + call(sg("os", "system"), "id"))
    result, _ = scan(data)
    reduce = next(i for i in result.issues if i.details["opcode"] == "REDUCE")
    assert data[reduce.details["position"]] == ord("R")
    assert reduce.details["position"] == len(data) - 2


def test_non_seekable_stream() -> None:
    import io

    from modelaudit.findings import ScanResult
    from modelaudit.scanners.context import ScanContext
    from modelaudit.scanners.pickle import scan_pickle_stream
    from tests.pickle._pickle_corpus import call, p4, sg

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
            return self._inner.readinto(b)

    first = p4(call(sg("os", "system"), "id"))
    result = ScanResult()
    info = scan_pickle_stream(
        Pipe(first + b"\x00trailing"),  # type: ignore[arg-type]
        result,
        location=lambda p: f"pipe (pos {p})",
        ctx=ScanContext.standalone("pipe"),
    )
    assert info.complete and info.pickles == 1 and info.end == len(first)
    assert "Call to os.system('id')" in critical(result)


def test_hostile_arguments_do_not_hide_the_call() -> None:
    from tests.pickle._pickle_corpus import Op, call, p4, sg

    huge = (1 << 200_000).to_bytes(25_001, "little", signed=True)
    long4 = Op(b"\x8b" + len(huge).to_bytes(4, "little") + huge)
    result, info = scan(p4(call(sg("os", "system"), long4)))
    assert info.complete
    assert any(m.startswith("Call to os.system(<int of") for m in critical(result))
