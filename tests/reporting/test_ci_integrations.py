from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.reporting._reporting_scanner import POSIX_SYSTEM_PICKLE
from tests.reporting._sarif_checks import validate_sarif

REPO = Path(__file__).resolve().parents[2]
REFERENCE_FILES = (
    r"\.(pkl|h5|pb|pt|pth|keras|hdf5|json|yaml|yml|zip|onnx|safetensors|bin|tflite|msgpack"
    r"|pmml|joblib|npy|gguf|ggml)$"
)
BIN = Path(sys.executable).parent


def _onnx_model(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(path))


def _action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text())
    return data


def test_hook_manifest() -> None:
    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "modelaudit"
    assert hook["entry"] == "modelaudit scan"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    assert hook["files"] == REFERENCE_FILES
    pattern = re.compile(hook["files"])
    assert pattern.search("models/evil.pkl") and pattern.search("w.safetensors")
    assert not pattern.search("README.md")


def test_action_is_composite_with_the_documented_inputs() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == {"paths", "format", "output", "fail-on", "version"}
    assert action["inputs"]["format"]["default"] == "sarif"
    assert action["inputs"]["fail-on"]["default"] == "warning"


def test_action_never_interpolates_inputs_into_scripts() -> None:
    steps = _action()["runs"]["steps"]
    scripts = [s for s in steps if "run" in s]
    assert len(scripts) == 2
    for step in scripts:
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], step["name"]
        for value in step.get("env", {}).values():
            assert re.fullmatch(r"\$\{\{ inputs\.[a-z-]+ \}\}", value)
    # Every input reaches a script, and only through the environment.
    passed = {
        m.group(1)
        for s in scripts
        for v in s["env"].values()
        for m in [re.search(r"inputs\.([a-z-]+)", v)]
        if m
    }
    assert passed == set(_action()["inputs"])


def _run_scan_step(tmp: Path, env: dict[str, str]) -> tuple[int, dict[str, str]]:
    step = next(s for s in _action()["runs"]["steps"] if s.get("id") == "scan")
    script = tmp / "step.sh"
    script.write_text(step["run"])
    outputs = tmp / "github_output"
    outputs.write_text("")
    full_env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "GITHUB_OUTPUT": str(outputs),
        **env,
    }
    proc = subprocess.run(
        ["bash", "-e", str(script)],
        cwd=tmp,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
    return proc.returncode, values


def test_action_scan_step_runs_with_hostile_looking_inputs(tmp_path: Path) -> None:
    (tmp_path / "dir with space").mkdir()
    _onnx_model(tmp_path / "dir with space" / "model.onnx")
    _onnx_model(tmp_path / "-dash.onnx")
    marker = tmp_path / "pwned"
    code, outputs = _run_scan_step(
        tmp_path,
        {
            "MODELAUDIT_PATHS": f"dir with space\n-dash.onnx\n$(touch {marker})\n",
            "MODELAUDIT_FORMAT": "sarif",
            "MODELAUDIT_OUTPUT": "out file.sarif",
            "MODELAUDIT_FAIL_ON": "critical",
        },
    )
    assert not marker.exists()
    # The literal "$(touch ...)" path does not exist: a target error, so exit 2.
    assert code == 2
    assert outputs == {"exit-code": "2", "report": "out file.sarif"}
    doc = json.loads((tmp_path / "out file.sarif").read_text())
    validate_sarif(doc)
    uris = sorted(a["location"]["uri"] for a in doc["runs"][0]["artifacts"])
    assert uris == ["-dash.onnx", "dir%20with%20space/model.onnx"]


def test_action_scan_step_space_separated_clean(tmp_path: Path) -> None:
    _onnx_model(tmp_path / "a.onnx")
    _onnx_model(tmp_path / "b.onnx")
    code, outputs = _run_scan_step(
        tmp_path,
        {
            "MODELAUDIT_PATHS": "a.onnx b.onnx",
            "MODELAUDIT_FORMAT": "sarif",
            "MODELAUDIT_OUTPUT": "r.sarif",
            "MODELAUDIT_FAIL_ON": "warning",
        },
    )
    assert code == 0
    assert outputs["exit-code"] == "0"
    validate_sarif(json.loads((tmp_path / "r.sarif").read_text()))


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.slow
def test_pre_commit_try_repo(tmp_path: Path) -> None:
    """The hook as users get it: pre-commit builds a venv from this repository and runs it.

    `--ref HEAD` pins one revision, so the second run reuses the environment the first built
    (the hook is tested as committed)."""
    pre_commit = BIN / "pre-commit"
    if not pre_commit.exists():
        pre_commit = Path(shutil.which("pre-commit") or "pre-commit")
    work = tmp_path / "project"
    work.mkdir()
    _git(work, "init", "-q")
    (work / "evil.pkl").write_bytes(POSIX_SYSTEM_PICKLE)
    _onnx_model(work / "clean.onnx")
    (work / "notes.txt").write_text("not a model\n")
    _git(work, "add", ".")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }

    def try_repo(*files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(pre_commit),
                "try-repo",
                str(REPO),
                "modelaudit",
                "--ref",
                "HEAD",
                "--verbose",
                "--files",
                *files,
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    bad = try_repo("evil.pkl", "clean.onnx", "notes.txt")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "ModelAudit" in bad.stdout and "Failed" in bad.stdout
    assert "evil.pkl" in bad.stdout
    # notes.txt does not match the reference's pattern, so two files reach the scanner.
    assert "Scanned 2 file(s)" in bad.stdout

    good = try_repo("clean.onnx", "notes.txt")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
    assert "Scanned 1 file(s)" in good.stdout


def _doc_blocks(lang: str) -> list[str]:
    text = (REPO / "docs" / "ci.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.DOTALL)


def test_ci_doc_yaml_recipes_parse() -> None:
    blocks = _doc_blocks("yaml")
    assert len(blocks) >= 6
    for block in blocks:
        assert yaml.safe_load(block) is not None
    workflow = yaml.safe_load(blocks[0])
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["scan"]["steps"]
    upload = next(s for s in steps if "upload-sarif" in s.get("uses", ""))
    assert upload["if"] == "always()"
    scan = next(s for s in steps if s.get("id") == "modelaudit")
    assert set(scan["with"]) <= set(_action()["inputs"])
    assert upload["with"]["sarif_file"] == scan["with"]["output"]


def test_ci_doc_commands_are_valid_cli_invocations() -> None:
    import shlex

    from modelaudit.cli import build_parser

    text = (REPO / "docs" / "ci.md").read_text().replace("\\\n", " ")
    commands = re.findall(r"modelaudit scan [^\n|;`]*", text)
    assert len(commands) >= 6
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command.replace("$(Build.ArtifactStagingDirectory)", "/tmp"))[1:]
        args = parser.parse_args(argv)
        assert args.command == "scan" and args.paths, command
