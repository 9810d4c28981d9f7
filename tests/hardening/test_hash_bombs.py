"""Hash bombs: memoised tuples that share substructure used as dict keys or set members.

CPython hashes (and compares) tuples element by element with no cache, inside the C unpickler
where no limit can interrupt it. The stream is walked first (`pickle/hashcost.py`) and the load
cut before the opcode that would pass the hashing budget: the file ends inconclusive with an
MA9004 finding, in a moment, and whatever was found before the cut is kept.
"""

from __future__ import annotations

import os
import pickle

import pytest

from modelaudit.core import scan_report
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import SCAN_TIMEOUT
from modelaudit.rules.core import ANALYSIS_BUDGET
from modelaudit.scanners.pickle.hashcost import over_budget_at
from tests.hardening import _analysis_corpus as C

_SYSTEM = b"\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x04echo\x94\x85\x94R\x940"


def _dag(levels: int) -> bytes:
    return b"N\x94" + b"2\x86\x94" * levels


BOMBS = {
    "keys.pkl": C.pickle_dag_dict_keys(40),
    "system_then_key.pkl": b"\x80\x04" + _SYSTEM + b"}" + _dag(60) + b"Ns.",
    "frozenset.pkl": b"\x80\x04(" + _dag(60) + b"\x91.",
    "set.pkl": b"\x80\x04\x8f(" + _dag(60) + b"\x90.",
    "dict_op.pkl": b"\x80\x02(" + _dag(60) + b"Nd.",
    "proto0_get.pkl": b"(N"
    + b"".join(b"p%d\ng%d\ng%d\nt" % (i, i, i) for i in range(60))
    + b"p60\n(dp61\ng60\nNs.",
}


@pytest.fixture(scope="module")
def bomb_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("hash_bombs")
    for name, data in BOMBS.items():
        (folder / name).write_bytes(data)
    (folder / "clean.pkl").write_bytes(pickle.dumps({(1, (2, 3)): {4}, "a": frozenset({(5,)})}))
    report = scan_report(str(folder), jobs=2, timeout=300, file_timeout=60)
    return {os.path.basename(f.path): f for f in report.files}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_hash_bomb_ends_inconclusive_by_budget(bomb_files: dict[str, object], name: str) -> None:
    fr = bomb_files[name]
    rules = {i.rule for i in fr.issues}  # type: ignore[attr-defined]
    assert fr.status is FileStatus.INCONCLUSIVE, fr  # type: ignore[attr-defined]
    assert ANALYSIS_BUDGET in rules, fr
    assert SCAN_TIMEOUT not in rules, fr


def test_critical_before_the_bomb_is_kept(bomb_files: dict[str, object]) -> None:
    fr = bomb_files["system_then_key.pkl"]
    assert any(
        i.severity is IssueSeverity.CRITICAL and "os.system" in i.message
        for i in fr.issues  # type: ignore[attr-defined]
    )


def test_clean_neighbour_is_complete(bomb_files: dict[str, object]) -> None:
    fr = bomb_files["clean.pkl"]
    assert fr.status is FileStatus.COMPLETE, fr  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_honest_pickles_are_never_cut(protocol: int) -> None:
    shared = (1, (2, 3))
    value = {
        shared: {4, 5},
        "t": [shared, shared, (shared, shared)],
        frozenset({shared}): {"k": (shared,)},
        "rows": [{"id": i, "key": (i, "a")} for i in range(2000)],
    }
    assert over_budget_at(pickle.dumps(value, protocol=protocol)) is None


def test_walk_finds_the_opcode_that_goes_over() -> None:
    data = C.pickle_dag_dict_keys(40)
    at = over_budget_at(data)
    assert at is not None and data[at : at + 1] == b"s"
    assert over_budget_at(C.pickle_dag(60)) is None  # shared, but nothing hashes it
