from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.dataformats._chat_templates import LLAMA3

_PROBE = """
import json, sys
sys.modules["yaml"] = None
sys.modules["jinja2"] = None
from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
r = dispatch.scan_path(sys.argv[1], ScanConfig().scanner_config())
print(json.dumps({"status": r.status.value, "issues": [i.to_dict() for i in r.issues]}))
"""


def _scan_without_libraries(path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)], capture_output=True, timeout=120, check=True
    )
    return json.loads(proc.stdout)


def test_yaml_without_pyyaml_is_inconclusive_and_says_what_to_install(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\n")
    out = _scan_without_libraries(path)
    assert out["status"] == "inconclusive"
    assert any("pip install pyyaml" in i["message"] for i in out["issues"])


def test_template_without_jinja2_is_inconclusive(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps({"chat_template": LLAMA3}))
    out = _scan_without_libraries(path)
    assert out["status"] == "inconclusive"
    assert any("pip install jinja2" in i["message"] for i in out["issues"])
