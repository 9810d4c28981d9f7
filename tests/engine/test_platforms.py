"""Runs where developers are (issue 14): every Linux-only sandbox piece has a fallback or is
skipped with a notice, and the caller's `__main__` is never imported by a worker.

The missing pieces are simulated on Linux by `tests/engine/_simulate/sitecustomize.py`, which every
process of the scan (CLI, fork server, workers) imports at start-up.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.hardening._hardening_util import write_hostile

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
HOSTILE_CLI = TESTS / "hardening" / "_hostile_cli.py"


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def _env(simulate: str = "", **extra: str) -> dict[str, str]:
    paths = [str(TESTS / "engine" / "_simulate"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "MODELAUDIT_SIMULATE": simulate,
        **extra,
    }


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "evil.pkl").write_bytes(pickle.dumps(_Evil(), protocol=2))
    (folder / "safe.pkl").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return folder


SIMULATIONS = {
    "windows-like": (
        "no-resource,no-prctl,no-fork,no-pidfd,no-sigxcpu,no-sigmask,no-nonblock,no-positional"
    ),
    "macos-like": "no-prctl,no-fork,no-pidfd",
    "old-linux": "no-pidfd",
}


@pytest.mark.parametrize("platform", sorted(SIMULATIONS))
def test_scans_where_sandbox_pieces_are_missing(tmp_path: Path, platform: str) -> None:
    folder = _folder(tmp_path)
    write_hostile(str(folder), "planted.hostile", "critical-then-kill")
    write_hostile(str(folder), "oom.hostile", "oom")
    proc = subprocess.run(
        [
            *(sys.executable, str(HOSTILE_CLI), "scan", str(folder), "-f", "json"),
            *("--verbose", "--memory-limit", "512MB", "--no-progress"),
        ],
        capture_output=True,
        env=_env(SIMULATIONS[platform]),
        timeout=180,
        check=False,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1, err[-3000:]
    files = {Path(f["path"]).name: f for f in json.loads(proc.stdout)["files"]}
    assert files["safe.pkl"]["status"] == "complete"
    report = json.loads(proc.stdout)
    critical = {
        Path(i["location"].split(" ")[0]).name
        for i in report["issues"]
        if i["severity"] == "critical"
    }
    assert critical == {"evil.pkl", "planted.hostile"}
    assert files["planted.hostile"]["status"] == "error"
    assert files["oom.hostile"]["status"] == "error"
    assert "out of memory" in files["oom.hostile"]["reason"]
    if "no-resource" in SIMULATIONS[platform]:
        assert "no `resource` module" in err
    if "no-prctl" in SIMULATIONS[platform]:
        assert "PR_SET_PDEATHSIG unavailable" in err
    if "no-fork" in SIMULATIONS[platform]:
        assert "no fork server" in err
    if "no-sigxcpu" in SIMULATIONS[platform]:
        assert "no SIGXCPU" in err
    # One line per missing piece, not one per worker.
    assert err.count("PR_SET_PDEATHSIG unavailable") <= 1


def test_notices_are_quiet_without_verbose(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", str(folder), "--no-progress"],
        capture_output=True,
        env=_env(SIMULATIONS["windows-like"]),
        timeout=180,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr == b""


SCRIPT = """
import json, os, sys
# No main guard, top-level side effects, argv read at import: a worker must never run this.
with open(sys.argv[1], "a") as marker:
    marker.write("ran in %d\\n" % os.getpid())
target = sys.argv[2]
from modelaudit.core import scan_model_directory_or_file
results = scan_model_directory_or_file(target)
print(json.dumps({"pid": os.getpid(), "results": results}))
"""


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_workers_never_import_the_callers_main(tmp_path: Path, start: str) -> None:
    folder = _folder(tmp_path)
    script = tmp_path / "plain_script.py"
    script.write_text(SCRIPT)
    marker = tmp_path / "marker.txt"
    proc = subprocess.run(
        [sys.executable, str(script), str(marker), str(folder)],
        capture_output=True,
        env=_env(MODELAUDIT_WORKER_START=start),
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    out = json.loads(proc.stdout)
    assert marker.read_text() == f"ran in {out['pid']}\n"
    messages = [i["message"] for i in out["results"]["issues"]]
    assert any("system" in m for m in messages), messages
    assert out["results"]["has_errors"] is False


MAIN_SCANNER = """
import json, os, sys
from modelaudit.core import scan_model_directory_or_file
from modelaudit.scanners import SCANNER_REGISTRY
from modelaudit.scanners.base import BaseScanner, IssueSeverity


class NotebookScanner(BaseScanner):
    name = "notebook_scanner"
    supported_extensions = [".nb"]

    def scan(self, path):
        result = self._create_result()
        with open(path, "rb") as f:
            if b"bad" in f.read():
                result.add_issue(
                    "found by a scanner defined in __main__",
                    severity=IssueSeverity.WARNING,
                    details={"pid": os.getpid()},
                )
        result.finish()
        return result


SCANNER_REGISTRY.append(NotebookScanner)
results = scan_model_directory_or_file(sys.argv[1])
print(json.dumps({"pid": os.getpid(), "results": results}))
"""


@pytest.mark.parametrize("how", ["script", "dash-c"])
def test_a_scanner_defined_in_main_runs_in_the_parent(tmp_path: Path, how: str) -> None:
    folder = _folder(tmp_path)
    (folder / "a.nb").write_bytes(b"bad")
    (folder / "b.nb").write_bytes(b"good")
    if how == "script":
        script = tmp_path / "notebook.py"
        script.write_text(MAIN_SCANNER)
        command = [sys.executable, str(script), str(folder)]
    else:
        command = [sys.executable, "-c", MAIN_SCANNER, str(folder)]
    proc = subprocess.run(command, capture_output=True, env=_env(), timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    out = json.loads(proc.stdout)
    issues = out["results"]["issues"]
    (found,) = [i for i in issues if "__main__" in i["message"]]
    assert found["details"]["pid"] == out["pid"]
    assert any(i["severity"] == "critical" and "system" in i["message"] for i in issues)
    assert out["results"]["has_errors"] is False
    statuses = {Path(f["path"]).name: f["status"] for f in out["results"]["files"]}
    assert statuses == {n: "complete" for n in ("a.nb", "b.nb", "evil.pkl", "safe.pkl")}
    assert "No module named" not in proc.stderr.decode()


@pytest.mark.parametrize("processes", [True, False], ids=["parent-run", "threads"])
def test_a_scanner_defined_in_main_keeps_its_deadline(tmp_path: Path, processes: bool) -> None:
    """The scanner runs in the parent's thread (no worker can import `__main__`; or no
    workers at all) and ignores its deadline: the run reports it at 1 s, and the process
    then exits instead of waiting an hour for the abandoned thread."""
    script = tmp_path / "slow.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, sys, time
            from modelaudit.core import scan_model_directory_or_file
            from modelaudit.scanners import SCANNER_REGISTRY
            from modelaudit.scanners.base import BaseScanner

            class Slow(BaseScanner):
                name = "slow"
                supported_extensions = [".slow"]

                def scan(self, path):
                    time.sleep(3600)
                    return self._create_result()

            SCANNER_REGISTRY.append(Slow)
            results = scan_model_directory_or_file(
                sys.argv[1], file_timeout=1, use_processes={processes}
            )
            print(json.dumps(results["files"]))
            """
        )
    )
    (tmp_path / "x.slow").write_bytes(b"x")
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "x.slow")],
        capture_output=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    (entry,) = json.loads(proc.stdout)
    assert entry["status"] == "inconclusive"
    assert entry["reason"] == "Scan timeout after 1 seconds"
