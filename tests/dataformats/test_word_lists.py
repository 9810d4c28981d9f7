"""word2vec and fastText word lists are read a word at a time, not a byte at a time: a real
vocabulary of millions of words cost a Python call (and a view read) per byte."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from modelaudit.formats import view
from modelaudit.formats.bounded_reader import Malformed
from modelaudit.formats.fasttext import read_fasttext
from modelaudit.formats.word2vec import read_word2vec
from tests.dataformats._dataformats_util import assert_clean, scan

ZOO = Path(__file__).resolve().parents[1] / "zoo" / "repos"


def _word2vec(words: list[bytes], dim: int = 4) -> bytes:
    vector = struct.pack(f"<{dim}f", *range(dim))
    body = b"".join(w + b" " + vector + b"\n" for w in words)
    return b"%d %d\n" % (len(words), dim) + body


@pytest.fixture
def view_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = view.FileView.get

    def counted(self: view.FileView, start: int, end: int) -> bytes:
        calls.append(end - start)
        return original(self, start, end)

    monkeypatch.setattr(view.FileView, "get", counted)
    return calls


def test_word2vec_reads_a_word_at_a_time(view_reads: list[int]) -> None:
    data = _word2vec([b"word%06d" % i for i in range(2000)])
    info = read_word2vec(io.BytesIO(data), len(data))
    assert (info.words, info.dim) == (2000, 4)
    assert len(view_reads) < 3 * 2000


def test_fasttext_dictionary_reads_a_word_at_a_time(view_reads: list[int]) -> None:
    data = (ZOO / "fasttext-training/cc.zoo.4.bin").read_bytes()
    info = read_fasttext(io.BytesIO(data), len(data))
    assert info.words > 20
    assert len(view_reads) < 2 * (info.words + info.labels) + 40


def test_real_word_lists_stay_clean() -> None:
    assert_clean(scan(ZOO / "gensim-saves/vectors.bin"))
    assert_clean(scan(ZOO / "fasttext-training/cc.zoo.4.bin"))


@pytest.mark.parametrize(
    ("words", "error"),
    [
        ([b"x" * 70_000], "longer than"),
        ([b"ok", b"y" * 70_000], "longer than"),
        ([b"a\nb"], "empty word"),
    ],
)
def test_hostile_word2vec_words_are_refused(words: list[bytes], error: str) -> None:
    data = _word2vec(words)
    with pytest.raises(Malformed, match=error):
        read_word2vec(io.BytesIO(data), len(data))


def test_word2vec_ending_inside_a_word_is_malformed() -> None:
    data = b"2 1\nab " + struct.pack("<f", 1.0) + b"\n" + b"c" * 12
    with pytest.raises(Malformed):
        read_word2vec(io.BytesIO(data), len(data))
