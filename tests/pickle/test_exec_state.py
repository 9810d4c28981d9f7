"""State that an allowed class's `__setstate__` hands to exec.

`rv_generic.__setstate__` (every scipy.stats distribution) execs `_parse_arg_template` from
the pickled state. Legitimate samples are `pickle.dumps` of real distributions (dumps never
calls `__setstate__`); malicious ones are hand-assembled. Nothing here is loaded.
"""

from __future__ import annotations

import pickle

import pytest

from modelaudit.scanners.pickle.exec_state import foreign_template
from tests.pickle._pickle_corpus import Op, critical, g0, p2, p4, s, scan, sg, warnings_of

_EVIL = "import os\nos.system('id')\ndef _parse_args(self, loc=0, scale=1):\n    return (), loc, scale\n"


def _state(template: str) -> Op:
    return Op(b"}" + s("_parse_arg_template") + s(template) + b"s")


def test_a_distribution_rebuilt_with_foreign_source_is_critical() -> None:
    data = p4(sg("scipy.stats._continuous_distns", "norm_gen") + b")\x81" + _state(_EVIL) + b"b")
    found = critical(scan(data)[0])
    assert any("_parse_arg_template" in m for m in found), found


def test_state_and_slots_pair_and_protocol_2_are_read_too() -> None:
    pair = p4(
        sg("scipy.stats._discrete_distns", "poisson_gen") + b")\x81" + _state(_EVIL) + b"N\x86b"
    )
    rebuilt = p2(
        g0("copyreg", "_reconstructor")
        + b"("
        + g0("scipy.stats._continuous_distns", "beta_gen")
        + g0("builtins", "object")
        + b"NtR"
        + _state(_EVIL)
        + b"b"
    )
    for data in (pair, rebuilt):
        assert critical(scan(data)[0])


@pytest.mark.parametrize("proto", [2, 4, 5])
def test_real_distributions_stay_quiet(proto: int) -> None:
    import scipy.stats

    for obj in (
        scipy.stats.norm,
        scipy.stats.beta,
        scipy.stats.uniform(0, 2),
        scipy.stats.gamma(2.0),
        scipy.stats.loguniform(1e-3, 1),
        scipy.stats.poisson(3),
        scipy.stats.randint(0, 5),
    ):
        result, _ = scan(pickle.dumps(obj, protocol=proto))
        assert not critical(result), (obj, critical(result))
        assert not warnings_of(result), (obj, warnings_of(result))


@pytest.mark.parametrize(
    "template",
    [
        "def _parse_args(self, a, loc=0):\n    return __import__('os').system('id')\n",
        "def _parse_args(self, a=__import__('os').system('id')):\n    return (a), 0\n",
        "@print\ndef _parse_args(self):\n    return ()\n",
        "def other(self):\n    return ()\n",
        "",
        "def _parse_args(self:\n",
    ],
)
def test_anything_but_scipy_parser_functions_is_foreign(template: str) -> None:
    assert foreign_template(template)
    assert foreign_template(b"def _parse_args(self): return ()")
