"""Pickles that carry code get one clear finding; gensim's own classes are quiet, its loaders not."""

from __future__ import annotations

import os
from typing import Any

import cloudpickle

from modelaudit.findings import FileStatus
from modelaudit.rules import pickle as R
from tests.pickle._pickle_corpus import critical, scan, warnings_of


def _user_code() -> object:
    """A class and a closure defined where cloudpickle must ship them by value."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(  # building the sample; the scanner never runs it
        "class Scaler:\n"
        "    def __init__(self, k):\n"
        "        self.k = k\n"
        "    def apply(self, xs):\n"
        "        return [x * self.k for x in xs]\n"
        "def make(k):\n"
        "    return lambda x: Scaler(k).apply([x])\n",
        namespace,
    )
    make = namespace["make"]
    assert callable(make)
    return [namespace["Scaler"](3), make(2)]


class _Shell:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_cloudpickled_code_is_one_critical() -> None:
    result, info = scan(cloudpickle.dumps(_user_code()))
    assert info.complete and result.status is FileStatus.COMPLETE
    carried = [i for i in result.issues if i.rule == R.CARRIED_CODE]
    assert len(carried) == 1
    assert critical(result) == [carried[0].message]
    assert "carries Python code that runs when loaded" in carried[0].message
    assert "Scaler" in carried[0].details["classes"]
    assert carried[0].details["opcodes"] > 5
    assert carried[0].location and "(pos " in carried[0].location


def test_shell_call_beside_carried_code_is_still_its_own_finding() -> None:
    result, _ = scan(cloudpickle.dumps([_user_code(), _Shell()]))
    messages = critical(result)
    assert sum("carries Python code" in m for m in messages) == 1
    assert any("system" in m and "carries" not in m for m in messages), messages


def test_marshal_code_is_one_critical() -> None:
    data = b"\x80\x04cmarshal\nloads\nC\x05\xe3\x00\x00\x00\x00\x85R."
    result, _ = scan(data)
    messages = critical(result)
    assert len(messages) == 1 and "carries Python code" in messages[0], result.issues


def test_gensim_classes_are_quiet_but_its_loaders_are_not() -> None:
    word2vec = b"\x80\x02cgensim.models.word2vec\nWord2Vec\n)\x81}(X\x01\x00\x00\x00aK\x01ub."
    result, _ = scan(word2vec)
    assert critical(result) == [] and warnings_of(result) == []
    unpickle = b"cgensim.utils\nunpickle\n(S'/tmp/evil.pkl'\ntR."
    result, _ = scan(unpickle)
    assert critical(result) or warnings_of(result), result.issues
    corpus = b"cgensim.corpora.mmcorpus\nMmCorpus\n(S'x'\nS'/tmp/evil.pkl'\ntR."
    result, _ = scan(corpus)
    assert critical(result) or warnings_of(result), result.issues
