"""Every example of the product's reference page works as written, on real files.

Commands are read out of the page (`_reference.commands`) and run in a shell, in a working
directory laid out as the page assumes (`models/`, `model.pkl`, `model.pkl.dvc`), once with
legitimate files written by the real libraries (the zoo) and once with a malicious pickle
among them. `promptfoo scan-model` is the page's front end to this scanner; it is run as
`modelaudit scan` with the same arguments, character for character. Code blocks (Python,
YAML) are run with their indentation restored, after checking that they are the page's
lines. The remote targets of the page run against real local servers in
`tests/remote_http/test_reference_remote.py` and `tests/remote_cloud`.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelaudit.reporters.sarif import LEVELS
from tests.reporting import _reference as ref
from tests.reporting._doc_layout import AZURE_STAGING, BIN, EVIL, REPO, env, sh
from tests.reporting._sarif_checks import validate_sarif

LOCAL = [c for c in ref.commands() if not ref.is_remote(c) and c != ref.FRONT_END]


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _check_json_shape(doc: dict[str, Any]) -> None:
    """The keys and value types of the page's JSON example are all there."""
    example = ref.json_example("structured results:", "SARIF Output Format")
    for key, value in example.items():
        assert isinstance(doc[key], type(value)), key
    for issue in doc["issues"]:
        for key in ("message", "severity", "location", "details", "timestamp"):
            assert key in issue, key
    for asset in doc["assets"]:
        assert set(example["assets"][0]) <= set(asset)


def _check_sarif(doc: dict[str, Any], malicious: bool) -> None:
    validate_sarif(doc)
    results = doc["runs"][0]["results"]
    errors = [r for r in results if r["level"] == "error"]
    assert bool(errors) is malicious
    for result in results:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not uri.startswith(("/", "file:")), uri  # relative to the checkout


@pytest.mark.parametrize("command", LOCAL)
def test_reference_command(workdir: tuple[Path, bool], command: str) -> None:
    root, malicious = workdir
    script = ref.as_modelaudit(command).replace(AZURE_STAGING, str(root / "staging"))
    done = sh(script, root)
    assert done.returncode == (1 if malicious else 0), done.stdout + done.stderr
    argv = shlex.split(script, comments=True)
    fmt = _option(argv, "--format") or "text"
    output = _option(argv, "--output")
    body = (root / output).read_text() if output else done.stdout
    if fmt == "json":
        _check_json_shape(json.loads(body))
        assert ('"severity":"critical"' in body) is malicious
    elif fmt == "sarif":
        _check_sarif(json.loads(body), malicious)
    else:
        assert "Scanned" in done.stdout
    if output:
        assert "modelaudit: Scanned" in done.stderr  # the CI log still shows the verdict
    sbom = _option(argv, "--sbom")
    if sbom:
        bom = json.loads((root / sbom).read_text())
        assert bom["bomFormat"] == "CycloneDX" and bom["components"]
    if "unsafe_model" in argv:
        blacklisted = "Blacklisted model name matches pattern 'unsafe_model'" in done.stdout
        assert blacklisted is malicious
    if argv[2] == "model.pkl.dvc":
        assert "Scanned 1 file(s)" in done.stdout


def test_every_local_command_was_found() -> None:
    assert len(LOCAL) >= 17
    assert any("model.pkl.dvc" in c for c in LOCAL)
    assert any("--sbom" in c for c in LOCAL)


@pytest.mark.parametrize("flag", ["--jfrog-api-token", "--jfrog-access-token", "--registry-uri"])
def test_removed_flags_are_errors_naming_the_variable(tmp_path: Path, flag: str) -> None:
    page = ref.text()
    row = re.search(rf"^{re.escape(flag)} \| (.+?) \|$", page, flags=re.MULTILINE)
    assert row, flag
    done = sh(f"modelaudit scan model.pkl {flag} secret-value", tmp_path)
    assert done.returncode == 2
    for variable in re.findall(r"[A-Z][A-Z_]+", row.group(1)):
        assert variable in done.stderr
    assert "secret-value" not in done.stderr


def test_json_example_shape_and_values(tmp_path: Path) -> None:
    (tmp_path / "evil.pickle").write_bytes(EVIL)
    done = sh("modelaudit scan evil.pickle --format json", tmp_path)
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    _check_json_shape(doc)
    example = ref.json_example("structured results:", "SARIF Output Format")
    [shown] = [i for i in example["issues"] if i["severity"] == "critical"]
    ours = next(i for i in doc["issues"] if i["location"] == shown["location"])
    assert ours["severity"] == "critical" and ours["why"]
    for key in ("module", "function", "position", "opcode"):
        assert ours["details"][key] == shown["details"][key], key
    assert doc["scanner_names"] == example["scanner_names"]
    assert doc["assets"] == example["assets"]
    assert doc["bytes_scanned"] == len(EVIL) and doc["files_scanned"] == 1
    assert doc["has_errors"] is False


def test_sarif_example_shape_and_severity_mapping(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(EVIL)
    done = sh("modelaudit scan model.pkl --format sarif", tmp_path)
    doc = json.loads(done.stdout)
    example = ref.json_example("Example SARIF output structure:", "Severity Mapping")
    assert set(example) <= set(doc) and doc["version"] == example["version"]
    assert doc["$schema"].endswith("sarif-schema-2.1.0.json")
    [run] = doc["runs"]
    driver, shown = run["tool"]["driver"], example["runs"][0]["tool"]["driver"]
    assert driver["name"] == shown["name"] and isinstance(driver["version"], str)
    for rule in driver["rules"]:
        assert set(shown["rules"][0]) <= set(rule)
        assert set(shown["rules"][0]["defaultConfiguration"]) <= set(rule["defaultConfiguration"])
    [shown_result] = example["runs"][0]["results"]
    result = next(r for r in run["results"] if "posix.system" in r["message"]["text"])
    assert set(shown_result) <= set(result)
    assert result["level"] == shown_result["level"] == "error"
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert location == shown_result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert run["artifacts"][0]["hashes"]["sha-256"]
    assert run["invocations"][0]["arguments"] == ["scan", "model.pkl", "--format", "sarif"]
    mapping = re.findall(r"^(CRITICAL|WARNING|INFO|DEBUG)\n→(\w+)$", ref.text(), flags=re.MULTILINE)
    assert len(mapping) == 4
    assert {severity.name: level for severity, level in LEVELS.items()} == dict(mapping)


PROGRAMMATIC = """\
from modelaudit.core import scan_model_directory_or_file
# Scan a single model
results = scan_model_directory_or_file("path/to/model.pkl")
"""
PROGRAMMATIC_CHECK = """\
# Check for issues
if results["issues"]:
    print(f"Found {len(results['issues'])} issues:")
    for issue in results["issues"]:
        print(f"- {issue['severity'].upper()}: {issue['message']}")
else:
    print("No issues found!")
# Scan with custom configuration
config = {
    "blacklist_patterns": ["unsafe_model", "malicious_net"],
    "max_file_size": 1073741824, # 1GB
    "timeout": 600 # 10 minutes
}
results = scan_model_directory_or_file("path/to/models/", **config)
"""


#: Put before the page's block: each process that runs the script adds a line.
RUNS = 'import os\nwith open("runs.txt", "a") as runs:\n    runs.write(f"{os.getpid()}\\n")\n'


def test_programmatic_usage(workdir: tuple[Path, bool]) -> None:
    """The page's Python block without its Hugging Face line (run against a local Hub in
    tests/remote_http/test_reference_remote.py), on a real and on a malicious pickle, as a
    plain script without a main guard: no worker runs it again (workers once re-imported the
    caller's `__main__`, each running the block anew)."""
    root, malicious = workdir
    ref.assert_from_reference(PROGRAMMATIC)
    ref.assert_from_reference(PROGRAMMATIC_CHECK)
    shutil.copy(root / "model.pkl", root / "path" / "to" / "model.pkl")
    shutil.copytree(root / "models", root / "path" / "to" / "models")
    script = RUNS + PROGRAMMATIC + PROGRAMMATIC_CHECK + "print(len(results['issues']))\n"
    (root / "example.py").write_text(script)
    done = subprocess.run(
        [sys.executable, "example.py"],
        cwd=root,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len((root / "runs.txt").read_text().splitlines()) == 1
    out = done.stdout.splitlines()
    if malicious:
        assert out[0] == "Found 2 issues:"
        assert out[1] == "- CRITICAL: Dangerous global: posix.system"
        assert int(out[-1]) >= 3  # the folder: evil.pkl and the blacklisted name
    else:
        assert out == ["No issues found!", "0"]


CUSTOM_SCANNER = """\
from modelaudit.scanners.base import BaseScanner, ScanResult, IssueSeverity
class CustomModelScanner(BaseScanner):
    \"\"\"Scanner for custom model format\"\"\"
    name = "custom_format"
    description = "Scans custom model format for security issues"
    supported_extensions = [".custom", ".mymodel"]
    @classmethod
    def can_handle(cls, path: str) -> bool:
        \"\"\"Check if this scanner can handle the given path\"\"\"
        return path.endswith(tuple(cls.supported_extensions))
    def scan(self, path: str) -> ScanResult:
        \"\"\"Scan the model file for security issues\"\"\"
        result = self._create_result()
        try:
            # Your custom scanning logic here
            with open(path, 'rb') as f:
                content = f.read()
            if b'malicious_pattern' in content:
                result.add_issue(
                    "Suspicious pattern found",
                    severity=IssueSeverity.WARNING,
                    location=path,
                    details={"pattern": "malicious_pattern"}
                )
        except Exception as e:
            result.add_issue(
                f"Error scanning file: {str(e)}",
                severity=IssueSeverity.CRITICAL,
                location=path,
                details={"exception": str(e)}
            )
        result.finish(success=True)
        return result
"""
REGISTER = """\
from modelaudit.scanners import SCANNER_REGISTRY
from my_custom_scanner import CustomModelScanner
# Register the custom scanner
SCANNER_REGISTRY.append(CustomModelScanner)
# Now you can use it
from modelaudit.core import scan_model_directory_or_file
results = scan_model_directory_or_file("path/to/custom_model.mymodel")
"""


@pytest.mark.parametrize("content", [b"weights", b"xx malicious_pattern yy"])
def test_custom_scanner_example(tmp_path: Path, content: bytes) -> None:
    ref.assert_from_reference(CUSTOM_SCANNER)
    ref.assert_from_reference(REGISTER)
    (tmp_path / "my_custom_scanner.py").write_text(CUSTOM_SCANNER)
    (tmp_path / "register.py").write_text(REGISTER + "import json; print(json.dumps(results))\n")
    (tmp_path / "path" / "to").mkdir(parents=True)
    (tmp_path / "path" / "to" / "custom_model.mymodel").write_bytes(content)
    (tmp_path / "path" / "to" / "evil.pkl").write_bytes(EVIL)
    done = subprocess.run(
        [sys.executable, "register.py"],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    [scanned] = results["files"]
    assert scanned["scanner"] == "custom_format" and scanned["status"] == "complete"
    messages = [(i["severity"], i["message"]) for i in results["issues"]]
    expected = [("warning", "Suspicious pattern found")] if b"malicious" in content else []
    assert messages == expected


GITHUB_WORKFLOW = """\
# .github/workflows/model-security.yml
name: Model Security Scan
on:
  push:
    paths:
      - 'models/**'
      - '**.pkl'
      - '**.h5'
      - '**.pb'
      - '**.pt'
      - '**.pth'
jobs:
  scan:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Set up Python
        uses: actions/setup-python@v5
        with:
          python-version: '3.10'
      - name: Install dependencies
        run: |
          npm install -g promptfoo
          pip install modelaudit[all]
      - name: Scan models
        run: promptfoo scan-model models/ --format sarif --output model-scan.sarif
      - name: Upload SARIF to GitHub Advanced Security
        uses: github/codeql-action/upload-sarif@v3
        if: always()
        with:
          sarif_file: model-scan.sarif
          category: model-security
      - name: Upload scan results as artifact
        uses: actions/upload-artifact@v4
        if: always()
        with:
          name: model-scan-results
          path: model-scan.sarif
"""


def test_github_workflow(workdir: tuple[Path, bool]) -> None:
    """The scan step as GitHub runs it (`bash -e`), then what the upload steps read.

    The install step is not run: it installs from the package index, where `modelaudit` is
    another project (docs/ci.md installs this one from its repository); the `all` extra it
    names exists here."""
    root, malicious = workdir
    ref.assert_from_reference(GITHUB_WORKFLOW)
    steps = yaml.safe_load(GITHUB_WORKFLOW)["jobs"]["scan"]["steps"]
    scan = next(s for s in steps if s.get("name") == "Scan models")
    done = sh(ref.as_modelaudit(scan["run"]), root, shell="bash")
    assert done.returncode == (1 if malicious else 0), done.stderr
    for step in steps:
        if step.get("if") == "always()":
            read = step["with"].get("sarif_file") or step["with"]["path"]
            _check_sarif(json.loads((root / read).read_text()), malicious)
    assert "all" in _extras()


GITLAB = """\
# .gitlab-ci.yml
model_security_scan:
  stage: test
  image: python:3.10
  script:
    - pip install modelaudit[all]
    - npm install -g promptfoo
    - promptfoo scan-model models/ --format json --output scan-results.json
    - if grep -q '"severity":"critical"' scan-results.json; then echo "Critical security issues found!"; exit 1; fi
  artifacts:
    paths:
      - scan-results.json
    when: always
  only:
    changes:
      - models/**
      - '**/*.pkl'
      - '**/*.h5'
      - '**/*.pb'
      - '**/*.pt'
      - '**/*.pth'
"""


@pytest.mark.parametrize("missing", [False, True], ids=["models", "no-models-folder"])
def test_gitlab_recipe(workdir: tuple[Path, bool], missing: bool) -> None:
    root, malicious = workdir
    ref.assert_from_reference(GITLAB)
    job = yaml.safe_load(GITLAB)["model_security_scan"]
    lines = [ref.as_modelaudit(s) if s.startswith(ref.FRONT_END) else s for s in job["script"]]
    script = "\n".join(line for line in lines if "install" not in line)
    if missing:
        shutil.rmtree(root / "models")
    done = sh(script, root)  # GitLab runs the script lines with `sh -e`
    # a folder that does not exist is unverified (2), before any finding could count
    assert done.returncode == (2 if missing else 1 if malicious else 0)
    report = (root / "scan-results.json").read_text()
    # the grep line alone, as a job whose scan step tolerated failure would reach it
    grep = sh(lines[-1], root)
    assert grep.returncode == (1 if malicious or missing else 0)
    assert ("Critical security issues found!" in grep.stdout) is (malicious or missing)
    assert ('"severity":"critical"' in report) is (malicious or missing)


PRE_COMMIT = """\
# .pre-commit-config.yaml
repos:
  - repo: local
    hooks:
      - id: modelaudit
        name: ModelAudit
        entry: promptfoo scan-model
        language: system
        files: '\\.(pkl|h5|pb|pt|pth|keras|hdf5|json|yaml|yml|zip|onnx|safetensors|bin|tflite|msgpack|pmml|joblib|npy|gguf|ggml)$'
        pass_filenames: true
"""


@pytest.mark.slow
def test_pre_commit_hook(workdir: tuple[Path, bool]) -> None:
    root, malicious = workdir
    ref.assert_from_reference(PRE_COMMIT)
    config = PRE_COMMIT.replace(f"entry: {ref.FRONT_END}", "entry: modelaudit scan")
    (root / ".pre-commit-config.yaml").write_text(config)
    (root / "notes.txt").write_text("not a model\n")
    hook_env = {
        **env(),
        "PRE_COMMIT_HOME": str(root.parent / f"{root.name}-cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["init", "-q"], ["add", "."]):
        subprocess.run(["git", *args], cwd=root, env=hook_env, check=True, capture_output=True)
    done = subprocess.run(
        [str(BIN / "pre-commit"), "run", "--all-files", "--verbose"],
        cwd=root,
        env=hook_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == (1 if malicious else 0), done.stdout + done.stderr
    assert ("Failed" if malicious else "Passed") in done.stdout
    assert "notes.txt" not in done.stdout
    if malicious:
        assert "evil.pkl" in done.stdout


def _extras() -> set[str]:
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return set(data["project"]["optional-dependencies"])


def test_reference_copy_matches_the_shared_reference() -> None:
    """The copy under data/ is the page as published (shared/reference beside the checkout)."""
    for folder in (REPO.parent / "shared" / "reference", Path("/work/shared/reference")):
        if folder.is_dir():
            pages = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))]
            assert ref.text() in pages
            return
    pytest.skip("no shared/reference beside this checkout")
