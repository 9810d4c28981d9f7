"""An MLflow custom pyfunc on the Hub is judged as its local copy.

The model's `python_model.pkl` names its class by a module of the model's `code` folder.
Locally the pickle scanner finds that module beside it; a remote sweep spools each object on
its own, so the verdict is made across the sweep's reports (`engine/across_files.py`). The
model is the zoo's, written by MLflow's own `save_model`.
"""

from __future__ import annotations

import json
from pathlib import Path

from modelaudit.report import FileReport
from tests.remote_http._remote_http_servers import FakeHub, Repo, run_cli

MODEL = Path(__file__).resolve().parents[1] / "zoo" / "repos" / "mlflow-pyfunc-code-paths"
HARMFUL_CLASS = b"""import os


class ChurnModel:
    def __setstate__(self, state):
        os.system("id")
"""


def _files() -> dict[str, bytes]:
    return {
        p.relative_to(MODEL).as_posix(): p.read_bytes()
        for p in sorted(MODEL.rglob("*"))
        if p.is_file()
    }


def _verdicts(stdout: str) -> tuple[int, list[tuple[str, str, str]]]:
    report = json.loads(stdout)
    loud = sorted(
        (i["location"].split(" ")[0].rsplit("/", 2)[-1], i["rule"], i["severity"])
        for i in report["issues"]
        if i["severity"] in ("warning", "critical")
    )
    return report["summary"]["exit_code"], loud


def test_remote_custom_pyfunc_matches_the_local_verdict(hub: FakeHub, tmp_path: Path) -> None:
    files = _files()
    hub.add("acme/mlflow-pyfunc", Repo(files))
    local = run_cli(str(MODEL), "--format", "json")
    remote = run_cli("hf://acme/mlflow-pyfunc", "--format", "json")
    assert (local.returncode, remote.returncode) == (0, 0), remote.stdout[-2000:]
    pickled = [
        i
        for i in json.loads(remote.stdout)["issues"]
        if i["location"].startswith("hf://acme/mlflow-pyfunc/model/python_model.pkl")
    ]
    assert [(i["rule"], i["severity"]) for i in pickled] == [("MA1010", "info")]
    assert pickled[0]["details"]["shipped_code"] == "code/churn_model.py"
    # the MLmodel's note that loading puts the code folder on sys.path: judged whole here too
    mlmodel = [
        (i["rule"], i["severity"])
        for i in json.loads(remote.stdout)["issues"]
        if i["location"] == "hf://acme/mlflow-pyfunc/model/MLmodel"
    ]
    assert mlmodel == [("MA4903", "info")]


def test_remote_code_that_harms_when_rebuilt_is_not_vouched_for(hub: FakeHub) -> None:
    """A plain class whose __setstate__ runs a command: the .py file alone grades it as a
    method nobody calls, so the pickle's import stays a WARNING in a remote sweep."""
    files = _files()
    files["model/code/churn_model.py"] = HARMFUL_CLASS
    hub.add("acme/mlflow-harmful", Repo(files))
    code, loud = _verdicts(run_cli("hf://acme/mlflow-harmful", "--format", "json").stdout)
    assert code == 1
    assert ("python_model.pkl", "MA1010", "warning") in loud
    assert ("MLmodel", "MA4903", "warning") in loud


def test_remote_native_module_shadowing_the_code_is_not_vouched_for(hub: FakeHub) -> None:
    """`import churn_model` takes an extension module over the .py beside it."""
    files = _files()
    files["model/code/churn_model.cpython-311-x86_64-linux-gnu.so"] = b"\x7fELF" + bytes(60)
    hub.add("acme/mlflow-native", Repo(files))
    code, loud = _verdicts(run_cli("hf://acme/mlflow-native", "--format", "json").stdout)
    assert code == 1
    assert ("python_model.pkl", "MA1010", "warning") in loud
    assert ("MLmodel", "MA4903", "warning") in loud


async def test_iter_scan_yields_the_verdict_scan_reports(hub: FakeHub) -> None:
    """A service iterating the sweep hears the pickle's import and the MLmodel's note as
    INFO, as `scan` reports them, not the WARNINGs each file had before the pass across
    files."""
    import modelaudit

    hub.add("acme/mlflow-iter", Repo(_files()))

    def verdicts(files: list[FileReport]) -> list[tuple[str, str, str]]:
        return sorted(
            (f.path.rsplit("/", 1)[-1], str(i.rule), i.severity.value)
            for f in files
            for i in f.issues
            if f.path.endswith(("/python_model.pkl", "/MLmodel"))
        )

    async with modelaudit.Scanner(jobs=1) as scanner:
        streamed = [fr async for fr in scanner.iter_scan("hf://acme/mlflow-iter")]
        report = await scanner.scan("hf://acme/mlflow-iter")
    assert sorted(f.path for f in streamed) == sorted(f.path for f in report.files)
    assert verdicts(streamed) == verdicts(report.files)
    assert ("python_model.pkl", "MA1010", "info") in verdicts(streamed)
    assert ("MLmodel", "MA4903", "info") in verdicts(streamed)
