"""formats/pickle_names.py: the globals and constants of a pickle, read off its opcodes.

The pickles are written by the real pickler (never loaded)."""

from __future__ import annotations

import collections
import pickle

import pytest

from modelaudit.formats.pickle_names import pickle_names


def test_a_module_named_again_through_the_memo_is_still_seen() -> None:
    """Protocol 4 memoizes the string 'collections' and fetches it back (BINGET) for the
    second class of that module: both STACK_GLOBALs are named."""
    data = pickle.dumps([collections.OrderedDict, collections.Counter], protocol=4)
    assert data.count(b"collections") == 1
    assert pickle_names(data).names == ["collections.OrderedDict", "collections.Counter"]


def test_protocol_2_globals_and_constants() -> None:
    data = pickle.dumps((collections.OrderedDict, "FloatStorage", 7), protocol=2)
    names, values, _ = pickle_names(data)
    assert names == ["collections.OrderedDict"]
    assert values == ["FloatStorage", 7]


def test_a_broken_stream_raises_unless_lenient() -> None:
    data = pickle.dumps([collections.OrderedDict, collections.Counter], protocol=4)
    cut = data[: data.index(b"Counter") + 3]
    with pytest.raises(ValueError):
        pickle_names(cut)
    assert pickle_names(cut, lenient=True).names == ["collections.OrderedDict"]


def test_max_names_stops_the_walk() -> None:
    data = pickle.dumps([collections.OrderedDict, collections.Counter], protocol=4)
    assert pickle_names(data, max_names=1).names == ["collections.OrderedDict"]
