"""Small text members and nested bytes are judged in memory: no file is written for them,
nothing is imported for a spool, and the verdict is the one the file route gives."""

from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import ScanResult
from modelaudit.formats import Format, sniff
from modelaudit.formats.ctranslate2 import looks_like_ctranslate2
from modelaudit.formats.fasttext import looks_like_fasttext
from modelaudit.formats.sentencepiece import looks_like_sentencepiece
from modelaudit.formats.word2vec import looks_like_word2vec

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
from modelaudit.engine import dispatch, sandbox
from modelaudit.scanners.pickle import pickle_scanner  # what a one-file worker has already
sandbox.install({})
before = set(sys.modules)
sandbox.wrote = False
with sandbox.watching(sys.argv[1]):
    result = dispatch.scan_path(sys.argv[1], {})
print(json.dumps({
    "wrote": sandbox.wrote,
    "status": result.status.value,
    "issues": [[i.severity.value, i.message] for i in result.issues],
    "modules": sorted(set(sys.modules) - before),
}))
"""


def _probe(path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)],
        capture_output=True,
        # no .pyc written by an import during the scan: the probe would count it
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=120,
        check=True,
    )
    out: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return out


def test_a_torch_checkpoint_is_scanned_without_writing_a_file(tmp_path: Path) -> None:
    """Every record of torch.save's zip beside data.pkl is tiny text (`version`,
    `byteorder`, `.data/serialization_id`): judging them in memory spares the spool folder,
    the files and the imports behind them (what a pre-commit hook pays per commit)."""
    import torch

    model = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(64), "b": torch.ones(8)}, model)
    seen = _probe(model)
    assert seen["status"] == "complete"
    assert seen["issues"] == []
    assert seen["wrote"] is False
    spool = ("tempfile", "shutil", "random", "bz2", "lzma")
    assert [m for m in seen["modules"] if m.startswith(spool)] == []
    lazy = ("fasttext", "sentencepiece", "ctranslate2", "word2vec")
    parsers = tuple(f"modelaudit.formats.{m}" for m in lazy)
    assert [m for m in seen["modules"] if m.startswith(parsers)] == []

    # The probe sees a member that still goes through a file (a JSON config: its scanner
    # opens a path), so the first answer is not a probe that sees nothing.
    with zipfile.ZipFile(model, "a") as z:
        z.writestr("model/extra/config.json", json.dumps({"model_type": "bert"}))
    assert _probe(model)["wrote"] is True


def _file_route(tmp_path: Path, data: bytes, name: str, config: dict[str, Any]) -> ScanResult:
    path = tmp_path / "embedded.bin"
    path.write_bytes(data)
    return dispatch.scan_path(str(path), config, display=name, explicit=False, depth=1)


def _view(result: ScanResult) -> tuple[Any, ...]:
    issues = sorted(
        (i.severity.value, i.rule or "", i.message, i.location or "") for i in result.issues
    )
    meta = {k: v for k, v in result.metadata.items() if k != "file_hash"}
    return result.status.value, result.scanner_name, result.bytes_scanned, issues, repr(meta)


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (__import__("os").system, ("echo owned",))


_SAMPLES = {
    "text": b"little",
    "empty": b"",
    "license": b"MIT License\n\nCopyright (c) 2026\n",
    "benign pickle": pickle.dumps({"w": [1, 2, 3]}),
    "pickle that runs a command": pickle.dumps(_Evil()),
}


@pytest.mark.parametrize("label", sorted(_SAMPLES))
def test_nested_bytes_judged_in_memory_read_as_their_file_would(tmp_path: Path, label: str) -> None:
    config = ScanConfig().scanner_config()
    data = _SAMPLES[label]
    name = "outer.zip:inner/member"
    judged = dispatch._judge_in_memory(data, name, None, 1, config, None)
    assert judged is not None, "these bytes are meant for the in-memory route"
    assert _view(judged) == _view(_file_route(tmp_path, data, name, config))


def test_bytes_holding_a_zip_end_record_go_through_a_file(tmp_path: Path) -> None:
    """A pickle followed by a zip is two programs (a polyglot): the appended zip's view is
    looked at through a file, and its payload is found."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(_Evil(), protocol=2))
    data = pickle.dumps({"w": 1}) + inner.getvalue()
    config = ScanConfig().scanner_config()
    assert dispatch._judge_in_memory(data, "blob", None, 1, config, None) is None
    result = dispatch.scan_member(data, "blob", depth=1, config=config)
    assert any(i.severity.value == "critical" for i in result.issues)


def _data_format_unguarded(head: bytes, name: str) -> Format | None:
    """`sniff._data_format` before its imports were guarded by each check's first byte."""
    if looks_like_sentencepiece(head):
        return Format.SENTENCEPIECE
    if looks_like_ctranslate2(head):
        return Format.CTRANSLATE2
    lower = sniff._basename(name).lower()
    if lower.endswith(".bin") and looks_like_word2vec(head):
        return Format.WORD2VEC
    guarded = sniff._data_format(head, name)
    # (formats told by more than their first bytes, which that guard never covered)
    later = (Format.MSGPACK, Format.COREML_WEIGHTS, Format.LLAMA2C, Format.LLAMA2C_TOKENIZER)
    return guarded if guarded in (*later, Format.TIKTOKEN) else None


_FIRST = st.sampled_from(
    [
        b"\x0a",
        b"\x8a",
        b"\x02\x00\x00\x00",
        b"\x06\x00\x00\x00",
        b"12 ",
        b"7",
        b"",
        b"\x00",
        # fastText's magic with a version it accepts: the guard must let these through
        struct.pack("<ii", 793712314, 12),
    ]
)


@settings(max_examples=400, deadline=None)
@given(first=_FIRST, rest=st.binary(max_size=64), name=st.sampled_from(["w.bin", "spm", "x"]))
def test_the_guards_before_the_magic_less_checks_change_no_verdict(
    first: bytes, rest: bytes, name: str
) -> None:
    head = first + rest
    assert sniff._data_format(head, name) == _data_format_unguarded(head, name)
    if looks_like_fasttext(head):
        assert head[:4] == sniff.FASTTEXT_MAGIC
        assert sniff.sniff_head(head, name, 10_000) is Format.FASTTEXT


def test_real_magic_less_heads_still_sniff() -> None:
    piece = b"\x0a\x0a\x0a\x03abc\x15\x00\x00\x80\xbf"
    assert sniff._data_format(piece * 3, "tokenizer.model") is Format.SENTENCEPIECE
    ct2 = b"\x06\x00\x00\x00" + (10).to_bytes(2, "little") + b"TransSpec\x00" + b"\0" * 8
    assert looks_like_ctranslate2(ct2)
    assert sniff._data_format(ct2, "model.bin") is Format.CTRANSLATE2
    assert sniff._data_format(b"3 2\nw " + b"\0" * 32, "vectors.bin") is Format.WORD2VEC
    fasttext = sniff.FASTTEXT_MAGIC + (12).to_bytes(4, "little") + b"\0" * 64
    assert sniff.sniff_head(fasttext, "cc.bin", 10_000) is Format.FASTTEXT


@pytest.mark.parametrize(("member", "data"), [("README", b"hello world\n"), ("LICENSE", b"MIT\n")])
def test_text_members_at_a_zips_root_are_text(tmp_path: Path, member: str, data: bytes) -> None:
    """A member sniffed as text by its own name is judged as text: the name shown
    (`bundle.zip:README`, no folder to split off) is no file name, and re-sniffed by it the
    bytes went to the pickle scanner as `embedded.bin` (`h` is BINGET: a malformed pickle)."""
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)
    result = dispatch.scan_path(str(path), ScanConfig().scanner_config())
    assert result.status.value == "complete", result.status_reason
    assert result.issues == []
