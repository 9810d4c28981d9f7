"""The README's and docs/ci.md's commands and code, run as written on real files.

Commands and code blocks are read out of the documents; each runs in a working directory
laid out as they assume (`_doc_layout`: zoo repositories under `models/`, with and without a
malicious pickle). Install lines are not run (`test_ci_integrations` installs this checkout
into a fresh venv as the Action does); commands on `s3://` and a Dask cluster are covered by
tests/remote_cloud and tests/cluster.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.reporting._doc_layout import AZURE_STAGING, REPO, sh
from tests.reporting._sarif_checks import validate_sarif

CI = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
README = (REPO / "README.md").read_text(encoding="utf-8")


def _indented_commands(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("    modelaudit scan ")]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.DOTALL)


def _code(malicious: bool) -> int:
    return 1 if malicious else 0


def _sarif(path: Path, malicious: bool) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    validate_sarif(doc)
    levels = {r["level"] for r in doc["runs"][0]["results"] if "suppressions" not in r}
    assert ("error" in levels) is malicious
    return doc


def test_ci_indented_commands(workdir: tuple[Path, bool]) -> None:
    """`--fail-on critical`, `--strict`, the baseline pair and the SBOM command, in the order
    written."""
    root, malicious = workdir
    commands = _indented_commands(CI)
    assert len(commands) == 5, commands
    fail_on, strict, write_baseline, use_baseline, sbom = commands
    assert sh(fail_on, root).returncode == _code(malicious)
    assert "--strict" in strict
    assert sh(strict, root).returncode == _code(malicious)
    assert sh(write_baseline, root).returncode == _code(malicious)
    done = sh(use_baseline, root)
    assert done.returncode == 0, done.stderr  # every finding is in the baseline
    doc = _sarif(root / "model-scan.sarif", False)
    suppressed = [r for r in doc["runs"][0]["results"] if r.get("suppressions")]
    assert bool(suppressed) is malicious
    assert sh(sbom, root).returncode == _code(malicious)
    assert json.loads((root / "model-sbom.json").read_text())["bomFormat"] == "CycloneDX"
    _sarif(root / "model-scan.sarif", malicious)


def test_ci_github_steps_without_the_action(workdir: tuple[Path, bool]) -> None:
    root, malicious = workdir
    steps = next(yaml.safe_load(b) for b in _blocks(CI, "yaml") if "Install modelaudit" in b)
    assert isinstance(steps, list)
    assert steps[0]["run"] == "pip install ./tools/modelaudit"
    done = sh(steps[1]["run"], root, shell="bash")
    assert done.returncode == _code(malicious), done.stderr
    _sarif(root / steps[2]["with"]["sarif_file"], malicious)


@pytest.mark.parametrize("missing", [False, True], ids=["models", "no-models-folder"])
def test_ci_gitlab_recipes(workdir: tuple[Path, bool], missing: bool) -> None:
    root, malicious = workdir
    gitlab = [yaml.safe_load(b) for b in _blocks(CI, "yaml") if "script:" in b]
    grep_job = gitlab[0]["model_security_scan"]["script"]
    fail_on = gitlab[1]["script"]
    if missing:
        shutil.rmtree(root / "models")
    for script, expected in (
        (grep_job, 1 if malicious or missing else 0),
        (fail_on, 2 if missing else _code(malicious)),
    ):
        lines = [line for line in script if "pip install" not in line]
        done = sh("\n".join(lines), root)
        assert done.returncode == expected, (lines, done.stdout, done.stderr)


def test_ci_azure_script(workdir: tuple[Path, bool]) -> None:
    root, malicious = workdir
    [azure] = [yaml.safe_load(b) for b in _blocks(CI, "yaml") if "azure-pipelines" in b]
    [scan] = [s for s in azure["steps"] if s.get("displayName") == "Scan models"]
    staging = root / "staging"
    shutil.rmtree(staging)  # the recipe makes its folder itself
    staging.mkdir()
    done = sh(scan["script"].replace(AZURE_STAGING, str(staging)), root, shell="bash")
    assert done.returncode == _code(malicious), done.stderr
    [publish] = [s for s in azure["steps"] if s.get("task") == "PublishBuildArtifacts@1"]
    folder = Path(publish["inputs"]["PathtoPublish"].replace(AZURE_STAGING, str(staging)))
    _sarif(folder / "model-scan.sarif", malicious)


def test_ci_local_hook_is_the_references_with_this_command() -> None:
    from tests.reporting.test_reference_examples import PRE_COMMIT

    [local] = [yaml.safe_load(b) for b in _blocks(CI, "yaml") if "repo: local" in b]
    reference = yaml.safe_load(PRE_COMMIT)
    reference["repos"][0]["hooks"][0]["entry"] = "modelaudit scan"
    assert local == reference


def test_readme_quick_start_scan() -> None:
    command = re.search(r"\.venv/bin/(modelaudit scan examples/)", README)
    assert command
    done = sh(command.group(1), REPO)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "examples/evil.pkl" in done.stdout


def test_readme_baseline_command(workdir: tuple[Path, bool]) -> None:
    root, malicious = workdir
    command = re.search(r"`(modelaudit scan models/ --format json --output [^`]+)`", README)
    assert command
    assert sh(command.group(1), root).returncode == _code(malicious)
    assert json.loads((root / "modelaudit-baseline.json").read_text())["issues"] or not malicious


def _python_blocks() -> list[str]:
    return _blocks(README, "python")


def test_readme_sync_python(workdir: tuple[Path, bool]) -> None:
    root, malicious = workdir
    shutil.copytree(root / "models", root / "path" / "to" / "models")
    block = _python_blocks()[0]
    assert 'scan_model_directory_or_file("path/to/models/"' in block
    done = sh(f"{sys.executable} - <<'EOF'\n{block}\nEOF", root)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert ("- CRITICAL: Dangerous global: posix.system" in lines) is malicious
    assert bool(lines) is malicious


def test_readme_async_python(workdir: tuple[Path, bool], monkeypatch: pytest.MonkeyPatch) -> None:
    """Top-level `await`, as in an async REPL or notebook."""
    root, malicious = workdir
    block = _python_blocks()[1]
    monkeypatch.chdir(root)
    code = compile(block, "<readme>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {}
    result = eval(code, namespace)
    if result is not None:
        asyncio.run(result)
    report = namespace["report"]
    assert report.exit_code == _code(malicious)
    assert ("Dangerous global: posix.system" in [i.message for i in report.findings]) is malicious


def test_readme_aiohttp_service(tmp_path: Path) -> None:
    """The service block as written: one Scanner for the app's life, a POST per upload."""
    from aiohttp.test_utils import TestClient, TestServer

    from tests.reporting._doc_layout import EVIL, ZOO

    block = _python_blocks()[2]
    namespace: dict[str, Any] = {"__name__": "readme_service"}
    exec(compile(block, "<readme>", "exec"), namespace)
    (tmp_path / "evil.pkl").write_bytes(EVIL)
    clean = ZOO / "sklearn-joblib-pickle" / "model.pkl"

    async def exercise() -> list[dict[str, Any]]:
        async with TestClient(TestServer(namespace["app"])) as client:
            answers = []
            for path in (tmp_path / "evil.pkl", clean):
                response = await client.post("/scan", json={"path": str(path)})
                assert response.status == 200
                answers.append(await response.json())
            return answers

    evil, ok = asyncio.run(exercise())
    assert evil["exit_code"] == 1 and "Dangerous global: posix.system" in evil["findings"]
    assert ok == {"exit_code": 0, "findings": []}
