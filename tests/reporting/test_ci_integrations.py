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
    assert set(action["inputs"]) == {"paths", "format", "output", "fail-on", "extras"}
    assert action["inputs"]["extras"]["default"] == "all"
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


def _run_install_step(tmp: Path, extras: str, venv: Path) -> subprocess.CompletedProcess[str]:
    step = next(s for s in _action()["runs"]["steps"] if s["name"] == "Install modelaudit")
    script = tmp / "install.sh"
    script.write_text(step["run"])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        {
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "GITHUB_ACTION_PATH": str(REPO),
            "MODELAUDIT_EXTRAS": extras,
            # The dependencies are not what this test is about; this project is.
            "PIP_NO_DEPS": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    return subprocess.run(
        ["bash", "-e", str(script)],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_action_installs_this_checkout_not_the_package_index(tmp_path: Path) -> None:
    """The install step as GitHub runs it: `pip install $GITHUB_ACTION_PATH[extras]` into the
    runner's Python; the installed package must be this very tree."""
    import venv

    env_dir = tmp_path / "runner-python"
    venv.create(env_dir, with_pip=True)
    proc = _run_install_step(tmp_path, "all", env_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    python = env_dir / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import modelaudit.cli.scan as c; print(c.__file__)"],
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    installed = Path(where)
    assert env_dir in installed.parents
    assert installed.read_bytes() == (REPO / "modelaudit" / "cli" / "scan.py").read_bytes()
    version = subprocess.run(
        [str(env_dir / "bin" / "modelaudit"), "--version"],
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=False,
    )
    from modelaudit import __version__

    assert version.stdout.strip() == f"modelaudit {__version__}"
    # An extras value that is not a list of names never reaches pip.
    bad = _run_install_step(tmp_path, "all] @ https://example.com/x.whl", env_dir)
    assert bad.returncode == 2
    assert "extras must be" in bad.stdout


def _pyproject_extras() -> set[str]:
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return set(data["project"]["optional-dependencies"])


def test_docs_install_this_project_with_extras_that_exist() -> None:
    extras = _pyproject_extras()
    assert {"all", "s3", "gcs"} <= extras
    for doc in ("README.md", "docs/ci.md", "action.yml", ".pre-commit-hooks.yaml"):
        text = (REPO / doc).read_text()
        for line in text.splitlines():
            if "pip install" not in line or "modelaudit" not in line.split("pip install", 1)[1]:
                continue
            spec = line.split("pip install", 1)[1]
            # From a checkout or the repository, never the index's unrelated "modelaudit".
            path = spec.split()[0].strip("'\"").startswith(("./", "../", "/"))
            assert "@ git+" in spec or "-e" in spec or path, (doc, line)
            for names in re.findall(r"modelaudit\[([^\]]+)\]|\.\[([^\]]+)\]", spec):
                for name in ",".join(n for n in names if n).split(","):
                    assert name.strip() in extras, (doc, line)
    # Every extra the docs name, in any install spec, exists.
    mentioned: set[str] = set()
    for doc in ("README.md", "docs/ci.md"):
        text = (REPO / doc).read_text()
        for group in re.findall(r"(?:modelaudit|\.)\[([A-Za-z0-9_,-]+)\]", text):
            mentioned |= set(group.split(","))
    assert mentioned and mentioned <= extras, mentioned - extras


def test_docs_name_no_placeholder_home_for_this_project() -> None:
    """The project has no published URL: recipes install from a copy of the repository, and
    no page asks the reader to substitute an owner or a URL the docs made up."""
    for doc in ("README.md", "docs/ci.md", "docs/plugins.md", "action.yml"):
        text = (REPO / doc).read_text()
        for placeholder in ("OWNER/", "URL-OF-THIS-REPO", "github.com/OWNER"):
            assert placeholder not in text, (doc, placeholder)
    ci = (REPO / "docs" / "ci.md").read_text()
    assert "uses: ./tools/modelaudit" in ci
    assert (REPO / "action.yml").is_file()  # what `uses: ./tools/modelaudit` runs


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.slow
def test_pre_commit_try_repo(tmp_path: Path) -> None:
    """The hook as users get it: pre-commit builds a venv from this repository and runs it.

    `--ref HEAD` pins one revision (the hook is tested as committed). try-repo builds its
    environment in a store of its own every time (PRE_COMMIT_HOME does not keep it), so the
    two runs, each a full environment build, go side by side."""
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
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }

    def try_repo(home: str, *files: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
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
            env={**env, "PRE_COMMIT_HOME": str(tmp_path / home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
        stdout, stderr = proc.communicate(timeout=600)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    runs = [
        try_repo("cache-bad", "evil.pkl", "clean.onnx", "notes.txt"),
        try_repo("cache-good", "clean.onnx", "notes.txt"),
    ]
    try:
        bad = finish(runs[0])
        good = finish(runs[1])
    finally:
        for proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "ModelAudit" in bad.stdout and "Failed" in bad.stdout
    assert "evil.pkl" in bad.stdout
    # notes.txt does not match the reference's pattern, so two files reach the scanner.
    assert "Scanned 2 file(s)" in bad.stdout

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
