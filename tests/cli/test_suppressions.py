"""Accepting findings on purpose: project config ignores, baselines, and `modelaudit rules`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelaudit.rules import RULES
from tests.cli._helper import EVIL_PICKLE, SAFE_PICKLE, json_report, run
from tests.reporting._sarif_checks import validate_sarif

IGNORE_LEGACY = """
[[ignore]]
rules = ["MA1001", "CallOf"]
paths = ["models/legacy/*.pkl"]
reason = "legacy model, loaded only in the sandboxed evaluator"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models" / "legacy").mkdir(parents=True)
    (tmp_path / "models" / "legacy" / "old.pkl").write_bytes(EVIL_PICKLE)
    (tmp_path / "models" / "ok.pkl").write_bytes(SAFE_PICKLE)
    return tmp_path


def _rule_names() -> dict[str, str]:
    return {r.id: r.name for r in RULES.values()}


def _call_rule() -> str:
    [rule] = [r for r in RULES.values() if r.id == "MA1002"]
    return rule.name


@pytest.fixture
def ignore_legacy(project: Path) -> str:
    text = IGNORE_LEGACY.replace("CallOf", _call_rule())
    (project / ".modelaudit.toml").write_text(text)
    return text


def test_config_ignore_silences_a_rule_for_a_path_with_its_reason(
    project: Path, ignore_legacy: str
) -> None:
    proc = run("models", "--format", "json", cwd=project)
    assert proc.returncode == 0, proc.stdout
    report = json_report(proc)
    suppressed = [i for i in report["issues"] if i.get("suppressed")]
    assert {i["rule"] for i in suppressed} == {"MA1001", "MA1002"}
    for issue in suppressed:
        assert issue["suppressed"] == {
            "kind": "config",
            "reason": "legacy model, loaded only in the sandboxed evaluator",
            "source": str(project / ".modelaudit.toml"),
        }
    assert report["summary"]["suppressed"] == 2
    assert report["summary"]["severity_counts"]["critical"] == 0

    # Anything else still fails: another path, or the same file elsewhere.
    shutil.copy(project / "models" / "legacy" / "old.pkl", project / "models" / "new.pkl")
    proc = run("models", "--format", "json", cwd=project)
    assert proc.returncode == 1
    open_ = [i for i in json_report(proc)["issues"] if not i.get("suppressed")]
    assert {i["location"].split(" ")[0] for i in open_} == {"models/new.pkl"}


def test_suppressed_findings_stay_in_sarif(project: Path, ignore_legacy: str) -> None:
    proc = run("models", "--format", "sarif", cwd=project)
    assert proc.returncode == 0
    doc = orjson.loads(proc.stdout)
    validate_sarif(doc)
    results = doc["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"MA1001", "MA1002"}
    for result in results:
        if result["ruleId"] in ("MA1001", "MA1002"):
            assert result["suppressions"] == [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": "legacy model, loaded only in the sandboxed evaluator",
                    "properties": {
                        "modelaudit/kind": "config",
                        "modelaudit/source": str(project / ".modelaudit.toml"),
                    },
                }
            ]
    assert doc["runs"][0]["invocations"][0]["exitCode"] == 0


def test_text_hides_suppressed_findings_unless_verbose(project: Path, ignore_legacy: str) -> None:
    proc = run("models", cwd=project)
    assert proc.returncode == 0
    assert b"CRITICAL" not in proc.stdout
    assert proc.stdout.rstrip().endswith(b"; 2 suppressed -> clean")
    verbose = run("models", "-v", cwd=project)
    assert b"(suppressed by config: legacy model, loaded only" in verbose.stdout


def test_pyproject_table_found_from_a_subfolder(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n\n[tool.modelaudit]\nexclude = ['ok.pkl']\n"
        + IGNORE_LEGACY.replace("[[ignore]]", "[[tool.modelaudit.ignore]]").replace(
            "CallOf", "MA1002"
        )
    )
    sub = project / "models"
    proc = run(".", "--format", "json", cwd=sub)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = {f["path"]: f for f in json_report(proc)["files"]}
    assert files["./ok.pkl"]["reason"] == "excluded by --exclude ok.pkl"
    # --no-config: the same scan fails.
    assert run(".", "--no-config", cwd=sub).returncode == 1
    # A pyproject.toml without the table is passed over on the way up.
    (sub / "pyproject.toml").write_text("[project]\nname = 'inner'\n")
    assert run(".", cwd=sub).returncode == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[ignore]]\nrules = ["MA1001"]\npaths = ["*.pkl"]\n', "'reason' is required"),
        ('[[ignore]]\nrules = ["MA1001"]\npaths = ["*.pkl"]\nreason = "  "\n', "'reason'"),
        ('[[ignore]]\nrules = ["NoSuchRule"]\npaths = ["*"]\nreason = "x"\n', "unknown rule"),
        ('[[ignore]]\nrules = ["MA1001"]\nreason = "x"\n', "'paths' must be"),
        ('excludes = ["x"]\n', "unknown setting 'excludes'"),
        ('fail-on = "info"\n', "'fail-on'"),
        ("[[ignore\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(project: Path, text: str, message: str) -> None:
    (project / ".modelaudit.toml").write_text(text)
    proc = run("models", cwd=project)
    assert proc.returncode == 2
    [line] = proc.stderr.decode().splitlines()
    assert line.startswith("modelaudit: error: ") and message in line, line
    assert proc.stdout == b""


def test_expired_ignore_no_longer_applies(project: Path) -> None:
    (project / ".modelaudit.toml").write_text(
        IGNORE_LEGACY.replace("CallOf", "MA1002") + "expires = 2020-01-01\n"
    )
    proc = run("models", cwd=project)
    assert proc.returncode == 1
    assert b"expired on 2020-01-01" in proc.stderr


def test_config_fail_on_and_explicit_config(project: Path, tmp_path: Path) -> None:
    settings = tmp_path / "elsewhere.toml"
    settings.write_text('fail-on = "critical"\n')
    (project / "models" / "legacy" / "old.pkl").unlink()
    (project / "models" / "odd.pkl").write_bytes(b"\x80\x02cmystery_pkg\nthing\n)R.")
    assert run("models", cwd=project).returncode == 1  # an unknown global is a WARNING
    assert run("models", "--config", str(settings), cwd=project).returncode == 0
    assert (
        run("models", "--config", str(settings), "--fail-on", "warning", cwd=project).returncode
        == 1
    )


def _scan_json(project: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = run("models", "--format", "json", *args, cwd=project)
    return proc.returncode, json_report(proc)


def test_baseline_accepts_known_findings_only(project: Path) -> None:
    proc = run("models", "--format", "json", "--output", "baseline.json", cwd=project)
    assert proc.returncode == 1
    baseline = json.loads((project / "baseline.json").read_text())
    assert all(i.get("fingerprint") for i in baseline["issues"])

    code, report = _scan_json(project, "--baseline", "baseline.json")
    assert code == 0
    kinds = {i["suppressed"]["kind"] for i in report["issues"] if i["severity"] == "critical"}
    assert kinds == {"baseline"}

    # The same findings at other byte positions in the same file are still the same findings.
    legacy = project / "models" / "legacy" / "old.pkl"
    legacy.write_bytes(b"\x80\x02N0" + EVIL_PICKLE[2:])
    assert _scan_json(project, "--baseline", "baseline.json")[0] == 0

    # The same message in another file is a new finding: fingerprints name the file.
    shutil.copy(legacy, project / "models" / "copy.pkl")
    code, report = _scan_json(project, "--baseline", "baseline.json")
    assert code == 1
    open_ = {i["location"].split(" ")[0] for i in report["issues"] if not i.get("suppressed")}
    assert open_ == {"models/copy.pkl"}

    # A SARIF report serves as a baseline too.
    run("models", "--format", "sarif", "--output", "base.sarif", cwd=project)
    assert _scan_json(project, "--baseline", "base.sarif")[0] == 0


def test_baseline_from_the_config_file(project: Path) -> None:
    run("models", "--format", "json", "--output", "accepted.json", cwd=project)
    (project / ".modelaudit.toml").write_text('baseline = "accepted.json"\n')
    sub = project / "models"
    assert run(".", cwd=sub).returncode == 1  # fingerprints are relative to where it ran
    assert run("models", cwd=project).returncode == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"not json", "not a JSON report"),
        (b'{"a": 1}', "not a modelaudit JSON or SARIF report"),
        (
            b'{"issues": [{"message": "m", "severity": "critical", "rule": "MA1001"}]}',
            "carry no fingerprints",
        ),
    ],
)
def test_unusable_baseline_is_one_line_and_exit_2(
    project: Path, content: bytes | None, message: str
) -> None:
    if content is not None:
        (project / "b.json").write_bytes(content)
    proc = run("models", "--baseline", "b.json", cwd=project)
    assert proc.returncode == 2
    [line] = proc.stderr.decode().splitlines()
    assert message in line


def test_rules_lists_and_explains_without_importing_a_scanner() -> None:
    code = (
        "import sys\n"
        "from modelaudit.cli import main\n"
        "rc = main(['rules'])\n"
        "assert rc == 0\n"
        "assert not [m for m in sys.modules if m.startswith('modelaudit.scanners')], 'scanner'\n"
        "assert not [m for m in sys.modules if m.startswith('modelaudit.engine')], 'engine'\n"
        "from modelaudit.rules import RULES\n"
        "print(len(RULES), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == int(proc.stderr) > 50
    assert lines[0].startswith("MA0000  GenericFinding")

    one = run("rules", "MA1001")
    assert one.returncode == 0
    text = one.stdout.decode()
    rule = RULES["MA1001"]
    assert text.startswith(f"MA1001 {rule.name} (default severity {rule.severity.value}")
    assert rule.short in text and f"What to do: {rule.help}" in text

    by_name = run("rules", rule.name.lower(), "--format", "json")
    [entry] = json.loads(by_name.stdout)
    assert entry["id"] == "MA1001" and entry["what_to_do"] == rule.help

    unknown = run("rules", "MA4242")
    assert unknown.returncode == 2
    assert b"unknown rule 'MA4242'" in unknown.stderr
