from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np


def _cli(*args: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--format", "json", *args],
        capture_output=True,
        timeout=120,
    )
    return proc.returncode, json.loads(proc.stdout)


def _gguf(path: Path, name: str) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_tensor("w", np.ones(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _blacklisted(report: dict) -> list[dict]:
    return [i for i in report["issues"] if i.get("rule") == "MA0006"]


def test_gguf_general_name_matches_blacklist(tmp_path: Path) -> None:
    path = _gguf(tmp_path / "model.gguf", "DeepSeek-R1-Distill-Qwen-1.5B")
    code, report = _cli(str(path), "--blacklist", "deepseek")
    assert code == 1
    hits = _blacklisted(report)
    assert hits and hits[0]["severity"] == "critical"
    assert "deepseek" in hits[0]["message"] and "DeepSeek-R1" in hits[0]["message"]
    code, report = _cli(str(path), "--blacklist", "mistral")
    assert code == 0 and not _blacklisted(report)


def test_config_name_or_path_matches_blacklist(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "_name_or_path": "Qwen/Qwen2.5-0.5B-Instruct",
                "architectures": ["Qwen2ForCausalLM"],
                "model_type": "qwen2",
            }
        )
    )
    code, report = _cli(str(path), "--blacklist", "QWEN2.5")
    assert code == 1
    assert _blacklisted(report)[0]["severity"] == "critical"
    code, report = _cli(str(path), "--blacklist", "llama")
    assert code == 0 and not _blacklisted(report)
