"""Hostile names in every reporter: carried losslessly, rendered safely, never a crash.

Names come from three places an attacker controls: file names (undecodable bytes arrive as
surrogate escapes), pickle strings (the unpickler passes lone surrogates through), and JSON
values (`"\\udcff"` escapes). Text output must also never let a name drive the terminal or
start a line of its own.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import orjson
import pytest

from modelaudit.reporters.safe import json_safe, printable
from tests.cli._helper import EVIL_PICKLE, run
from tests.reporting._sarif_checks import validate_sarif
from tests.reporting.test_sbom import validate_bom


def _sbu(text: bytes) -> bytes:
    return b"\x8c" + bytes([len(text)]) + text


#: posix.<lone surrogates> called with an ANSI-laden argument: 40-odd bytes, never loaded.
SURROGATE_GLOBAL = (
    b"\x80\x04"
    + _sbu(b"posix")
    + _sbu(b"sys\xed\xb3\xbftem\xed\xa0\x80\x1b[2J")
    + b"\x93"
    + _sbu(b"echo \x1b[2Jhi")
    + b"\x85R."
)
FAKE_SUMMARY = "\nScanned 0 file(s), 0 bytes in 0.00s: 0 critical, 0 warning, 0 info -> clean\n"


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    with open(os.fsencode(root) + b"/evil\xff\x1b[31m.pkl", "wb") as f:
        f.write(EVIL_PICKLE)
    (root / "surrogate.pkl").write_bytes(SURROGATE_GLOBAL)
    (root / "config.json").write_bytes(
        b'{"architectures": ["Bad\\udcffModel"], "model_type": "\\udcff",'
        b' "auto_map": {"AutoModel": "mod\\udcff\\u001b[2J.Model"}}'
    )
    (root / f"x{FAKE_SUMMARY}\x1b[1A\x1b[2K.pkl").write_bytes(EVIL_PICKLE)
    return root


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_every_reporter_survives_hostile_names(hostile: Path, tmp_path: Path, fmt: str) -> None:
    sbom = tmp_path / "bom.json"
    proc = run(str(hostile), "--format", fmt, "--sbom", str(sbom))
    assert proc.returncode == 1, proc.stderr.decode()[-3000:]
    assert b"Traceback" not in proc.stderr
    assert proc.stdout.decode("utf-8")  # valid UTF-8, whatever the names held
    if fmt == "json":
        doc = orjson.loads(proc.stdout)
        paths = sorted(f["path"] for f in doc["files"])
        assert any(p.endswith("evil\\xff\x1b[31m.pkl") for p in paths)
        messages = " ".join(i["message"] for i in doc["issues"])
        assert "posix.sys\\xfftem\\ud800" in messages
        assert sum(i["severity"] == "critical" for i in doc["issues"]) >= 4
    if fmt == "sarif":
        doc = orjson.loads(proc.stdout)
        validate_sarif(doc)
        uris = [a["location"]["uri"] for a in doc["runs"][0]["artifacts"]]
        # The undecodable byte is percent-encoded as the byte it was.
        assert any(u.endswith("evil%FF%1B%5B31m.pkl") for u in uris), uris
    bom = orjson.loads(sbom.read_bytes())
    validate_bom(bom)


def test_text_escapes_everything_that_came_from_a_name(hostile: Path) -> None:
    proc = run(str(hostile))
    assert proc.returncode == 1
    out = proc.stdout.decode()
    assert "\x1b" not in out
    lines = out.splitlines()
    # The only summary line is the real one, at the end.
    assert [line for line in lines if line.startswith("Scanned ")] == [lines[-1]]
    assert lines[-1].endswith("-> issues found")
    assert "x\\nScanned 0 file(s)" in out and "clean\\n\\x1b[1A\\x1b[2K.pkl" in out
    assert "evil\\xff\\x1b[31m.pkl" in out
    assert "posix.sys\\xfftem\\ud800\\x1b[2J" in out
    # With colour on, the only escapes are our own colour codes.
    coloured = run(str(hostile), env={"FORCE_COLOR": "1"}).stdout.decode()
    assert set(re.findall(r"\x1b\[[0-9;]*m", coloured)) <= {
        "\x1b[1;31m",
        "\x1b[33m",
        "\x1b[36m",
        "\x1b[2m",
        "\x1b[0m",
    }
    assert "\x1b[2J" not in coloured and "\x1b[1A" not in coloured


def test_errors_on_stderr_are_escaped_too(tmp_path: Path) -> None:
    target = str(tmp_path / "missing\x1b[2J\nScanned 0 file(s) -> clean")
    proc = run(target, "--format", "json")
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "\x1b" not in err and err.count("\n") == 1
    assert "missing\\x1b[2J\\nScanned" in err


def test_printable_and_json_safe() -> None:
    assert printable("a\x1b[31mb\nc\td\x7f\x9b") == "a\\x1b[31mb\\nc\\td\\x7f\\x9b"
    # Bidi overrides and zero-width characters cannot reorder or hide text.
    assert printable("evil\u202egnp.pkl\u200b") == "evil\\u202egnp.pkl\\u200b"
    # Undecodable file-name bytes show as the bytes they were; lone surrogates by code point.
    assert printable(os.fsdecode(b"m\xff.pkl")) == "m\\xff.pkl"
    assert printable("x\ud800") == "x\\ud800"
    # Ordinary text, accents and CJK included, is left alone.
    assert printable("modèle/模型.pkl") == "modèle/模型.pkl"
    safe = json_safe({"k\udcff": ["v\ud800", 1, None, True], "n": 1.5})
    assert safe == {"k\\xff": ["v\\ud800", 1, None, True], "n": 1.5}
    assert json.loads(orjson.dumps(safe)) == safe
