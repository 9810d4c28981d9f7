"""The byte-level preconditions that let a small pickle skip a walk are sound.

`hashcost._cannot_stop` lets the load skip the hash-cost walk, and `structure.cannot_flag`
skips the walk of a pure-data result, when the stream's bytes prove the walk would find
nothing. Here the walks run anyway beside the proofs: on random opcode streams (at budgets as
tight as the proof allows), on honest pickles and on every hostile fixture, whenever a proof
says "nothing", the walk must agree; and the hostile fixtures are never proved harmless.
"""

from __future__ import annotations

import io
import pickle
import random
import struct
from typing import Any

import pytest

from modelaudit.findings import ScanResult
from modelaudit.scanners.pickle import hashcost, structure
from modelaudit.scanners.pickle.emulate import CUnpickler, run
from modelaudit.scanners.pickle.reader import CANDIDATE_PATTERNS, Reader, _plausible
from modelaudit.scanners.pickle.stubs import Session
from tests.hardening import _analysis_corpus as C
from tests.hardening.test_hash_bombs import BOMBS
from tests.pickle.test_counted_lengths import HOSTILE

# opcode templates: tuples and frozensets (weights), DUP and GETs (sharing), hashing ops,
# counted arguments with lengths that may or may not fit
_PLAIN = [b"N", b"K\x01", b")", b"(", b"}", b"]", b"\x8f", b"\x94", b"q\x00", b"0", b"e"]
_WEIGHTY = [b"t", b"\x85", b"\x86", b"\x87", b"\x91"]
_SHARING = [b"2", b"h\x00", b"h\x01", b"h\x02", b"g0\n", b"j\x00\x00\x00\x00"]
_HASHING = [b"s", b"u", b"d", b"\x90"]


def _counted(rng: random.Random) -> bytes:
    op, width = rng.choice([(b"B", 4), (b"X", 4), (b"T", 4), (b"\x8e", 8), (b"\x96", 8)])
    announced = rng.choice([0, 1, 3, 40, 1 << 20])
    return op + announced.to_bytes(width, "little") + b"x" * min(announced, 8)


def _stream(rng: random.Random, kinds: list[list[bytes]], counted: bool) -> bytes:
    out = bytearray(b"\x80\x04")
    for _ in range(rng.randrange(1, 80)):
        if counted and rng.random() < 0.05:
            out += _counted(rng)
        else:
            out += rng.choice(rng.choice(kinds))
    return bytes(out + b".")


def _random_streams(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    mixes = [
        [_PLAIN, _WEIGHTY, _HASHING],
        [_PLAIN, _SHARING, _HASHING],
        [_PLAIN, _WEIGHTY, _SHARING, _HASHING],
        [_WEIGHTY, _HASHING, [b"N", b"(", b"\x8f"]],
    ]
    return [_stream(rng, rng.choice(mixes), rng.random() < 0.5) for _ in range(count)]


def _honest() -> list[bytes]:
    shared = (1, (2, 3))
    values: list[Any] = [
        {"w": list(range(20)), "i": 7},
        {shared: {4, 5}, "t": [shared, (shared, shared)], frozenset({shared}): (shared,)},
        [f"name{i}" for i in range(30)],
        {"rows": [{"id": i, "key": (i, "a")} for i in range(200)]},
        (frozenset({(1, 2), (3,)}), {b"k": bytearray(b"v")}),
    ]
    return [pickle.dumps(v, protocol=p) for v in values for p in range(pickle.HIGHEST_PROTOCOL + 1)]


def _hostile() -> list[bytes]:
    return [
        *BOMBS.values(),
        *HOSTILE.values(),
        C.pickle_dag(60),
        C.pickle_dag_get(40),
        C.pickle_dag_dict_keys(40),
    ]


def _agrees(data: bytes, remaining: int | None, budget: int) -> None:
    if hashcost._cannot_stop(data, remaining, budget):
        assert hashcost._walk(data, remaining, budget) is None, (data, remaining, budget)


@pytest.mark.parametrize("seed", range(4))
def test_no_stop_proved_where_the_walk_finds_one(seed: int) -> None:
    for data in _random_streams(seed, 2500):
        # the tightest budget the proof accepts, and the real one
        for budget in (2 * len(data), hashcost.HASH_BUDGET):
            _agrees(data, None, budget)
            _agrees(data, len(data), budget)
        _agrees(data, len(data) // 2, hashcost.HASH_BUDGET)


def test_the_proof_is_tight_enough_to_matter() -> None:
    """Random streams do reach stops at these budgets (the test above can fail), and the
    proof does skip the walk for small honest pickles."""
    streams = _random_streams(99, 2500)
    stops = [d for d in streams if hashcost._walk(d, len(d), 2 * len(d)) is not None]
    assert len(stops) > 50
    small = pickle.dumps({"w": list(range(20)), "i": 7})
    assert hashcost._cannot_stop(small, len(small), hashcost.HASH_BUDGET)


@pytest.mark.parametrize("data", _honest() + _hostile())
def test_known_streams_agree(data: bytes) -> None:
    for remaining in (None, len(data), 0):
        _agrees(data, remaining, hashcost.HASH_BUDGET)
        _agrees(data, remaining, 2 * len(data))


@pytest.mark.parametrize("data", [*BOMBS.values(), *HOSTILE.values()])
def test_hostile_streams_still_stop(data: bytes) -> None:
    assert hashcost.first_stop(data[: hashcost.WINDOW], len(data)) is not None


def _load(data: bytes) -> tuple[Any, Session] | None:
    """What our emulator builds from `data` (no import is ever resolved), or None."""
    result = ScanResult(scanner_name="pickle")
    session = Session(result, lambda pos: "sample", 4)
    unpickler = CUnpickler(Reader(io.BytesIO(data), find_candidates=False), session)
    try:
        value = run(unpickler, session, lambda n: _NoBudget())
    except Exception:
        return None
    return value, session


class _NoBudget:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _tree(rng: random.Random, depth: int) -> Any:
    """A random pure-data value: containers nested `depth` deep at most, nothing shared."""
    if depth == 0 or rng.random() < 0.3:
        return rng.choice([rng.randrange(-(1 << 40), 1 << 40), f"s{rng.random()}", b"b" * 3, None])
    kind = rng.choice(["list", "tuple", "dict", "set", "frozenset"])
    items = [_tree(rng, depth - 1) for _ in range(rng.randrange(0, 6))]
    if kind == "list":
        return items
    if kind == "tuple":
        return tuple(items)
    if kind == "dict":
        return {rng.randrange(1 << 30): v for v in items}
    scalars = {rng.randrange(1 << 30) for _ in items}
    return scalars if kind == "set" else frozenset(scalars)


def _structure_streams() -> list[bytes]:
    rng = random.Random(7)
    streams = [
        pickle.dumps(_tree(rng, rng.randrange(1, 8)), protocol=rng.randrange(0, 6))
        for _ in range(1500)
    ]
    deep = b"\x80\x04" + b"]" * 4999 + b"a" * 4998 + b"."
    laughs = bytearray(b"\x80\x04]\x94")
    for level in range(1, 9):
        laughs += b"(" + (b"h" + bytes([level - 1])) * 10 + b"l\x94"
    return [
        *streams,
        *_honest(),
        deep,
        bytes(laughs) + b".",
        b"\x80\x04N" + b"2" * 5_000 + b".",
        b"\x80\x04" + b"]" * 6000 + b"a" * 5999 + b".",
        C.pickle_dag(60),
    ]


def test_pure_data_proof_agrees_with_the_walk() -> None:
    proved = 0
    for data in _structure_streams():
        loaded = _load(data)
        if loaded is None:
            continue
        value, session = loaded
        if session.globals or session.n_calls or session.used_persistent:
            continue
        length = len(data)
        if structure.cannot_flag(data, length):
            proved += 1
            assert structure.check(value, length) is None, data
    assert proved > 100


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x04N" + b"2" * 500_000 + b".",
        b"\x80\x04" + b"]" * 50_000 + b"a" * 49_999 + b".",
        C.pickle_dag(60),
        b"\x80\x04" + b"N0" * 40_000 + b"N.",
    ],
)
def test_structure_bombs_are_never_proved_harmless(data: bytes) -> None:
    assert not structure.cannot_flag(data, len(data))
    loaded = _load(data)
    assert loaded is not None
    assert structure.check(loaded[0], len(data)) is not None


def test_cannot_flag_sees_only_the_pickle() -> None:
    """The head may run past the pickle (stacked pickles): only its own bytes count."""
    first = pickle.dumps([1, 2, 3])
    stacked = first + b"\x80\x04N2."
    assert structure.cannot_flag(stacked, len(first))
    assert not structure.cannot_flag(stacked, len(stacked))
    assert not structure.cannot_flag(first[:5], len(first))  # head shorter than the pickle


def test_counted_lengths_that_fit_are_proved() -> None:
    fits = b"\x80\x04B" + struct.pack("<I", 3) + b"abc."
    assert hashcost._cannot_stop(fits, len(fits), hashcost.HASH_BUDGET)
    long = b"\x80\x04B" + struct.pack("<I", 30) + b"abc."
    assert hashcost._cannot_stop(long, None, hashcost.HASH_BUDGET)  # lengths not asked
    assert not hashcost._cannot_stop(long, len(long), hashcost.HASH_BUDGET)
    assert hashcost._cannot_stop(long, len(long) + 27, hashcost.HASH_BUDGET)  # the rest follows


def _derived_table() -> dict[int, tuple[int, tuple[int, int]]]:
    """`hashcost.OPCODE_TABLE` as pickletools describes the opcodes."""
    import pickletools

    layouts = {
        pickletools.UP_TO_NEWLINE: hashcost._NEWLINE,
        pickletools.TAKEN_FROM_ARGUMENT1: hashcost._LEN1,
        pickletools.TAKEN_FROM_ARGUMENT4: hashcost._LEN4,
        pickletools.TAKEN_FROM_ARGUMENT4U: hashcost._LEN4,
        pickletools.TAKEN_FROM_ARGUMENT8U: hashcost._LEN8,
    }
    table: dict[int, tuple[int, tuple[int, int]]] = {}
    for op in pickletools.opcodes:
        a = op.arg
        if a is None:
            layout = 0
        elif a.n >= 0:
            layout = a.n
        elif a.name == "stringnl_noescape_pair":
            layout = hashcost._TWO_LINES
        else:
            layout = layouts[a.n]
        if pickletools.markobject in op.stack_before:
            below = op.stack_before.index(pickletools.markobject)
            effect = (-2 if below else -1, 0 if below else len(op.stack_after))
        else:
            effect = (len(op.stack_before), len(op.stack_after))
        table[op.code.encode("latin-1")[0]] = (layout, effect)
    return table


def test_the_opcode_table_is_what_pickletools_says() -> None:
    assert _derived_table() == hashcost.OPCODE_TABLE


def _leading_byte(source: bytes) -> int:
    if source.startswith(b"\\x"):
        return int(source[2:4], 16)
    assert source[:1].isalnum(), source
    return source[0]


def test_candidate_patterns_start_with_distinct_literal_bytes() -> None:
    """What lets a small chunk's one combined-pattern match stand for the per-pattern search."""
    leading = [_leading_byte(p.pattern) for p in CANDIDATE_PATTERNS]
    assert len(set(leading)) == len(leading)
    for pattern, byte in zip(CANDIDATE_PATTERNS, leading, strict=True):
        assert pattern.match(bytes([byte ^ 0x01]) * 32) is None


@pytest.mark.parametrize("seed", range(3))
def test_small_chunks_find_what_each_pattern_finds(seed: int) -> None:
    """The small-chunk shortcut keeps the candidates the per-pattern search keeps."""
    rng = random.Random(seed)
    pieces = [
        b"\x80\x04\x95",
        b"cos\nsystem\n",
        b"gASVAAAAAAAAAAAAAAAA",
        b"x\x9c",
        b"\x1f\x8b\x08",
        b"800495aaaaaaaaaaaa",
        b"Y2NvcwpzeXN0ZW0KKFMn",
        b"abc",
        bytes(rng.randrange(256) for _ in range(20)),
    ]
    for _ in range(400):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 8)))
        fast = Reader(io.BytesIO(b""))
        fast._search(data)
        expected = [
            (m.start(), data[m.start() : m.start() + 4096])
            for p in CANDIDATE_PATTERNS
            for m in p.finditer(data)
            if _plausible(data[m.start() : m.start() + 4096])
        ]
        assert sorted(fast.candidates) == sorted(expected), data
