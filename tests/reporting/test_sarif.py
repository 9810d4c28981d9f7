from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelaudit.findings import FileStatus, Issue, IssueSeverity
from modelaudit.report import FileReport, ScanReport
from modelaudit.reporters import FORMATS, get_renderer
from modelaudit.reporters.sarif import MAX_RESULTS, build_sarif
from tests.reporting._reporting_scanner import POSIX_SYSTEM_PICKLE
from tests.reporting._reporting_trees import real_mixed_tree
from tests.reporting._sarif_checks import SCHEMA_PATH, results_by_level, validate_sarif

RunCli = Callable[..., tuple[int, Any]]
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


def _evil_mdl() -> bytes:
    return b"#mdl\n" + POSIX_SYSTEM_PICKLE


def test_schema_copy_is_the_official_one() -> None:
    assert hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_sarif_is_registered() -> None:
    assert "sarif" in FORMATS
    assert callable(get_renderer("sarif"))


def test_clean_scan_still_emits_a_valid_log(in_tmp: Path, run_cli: RunCli) -> None:
    (in_tmp / "ok.mdl").write_bytes(b"#mdl\nnothing here\n")
    code, doc = run_cli("ok.mdl", "--format", "sarif")
    assert code == 0
    validate_sarif(doc)
    run = doc["runs"][0]
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    assert run["invocations"][0]["executionSuccessful"] is True
    assert run["invocations"][0]["toolExecutionNotifications"] == []
    [artifact] = run["artifacts"]
    assert artifact["location"] == {"uri": "ok.mdl", "uriBaseId": "%SRCROOT%"}
    assert artifact["length"] == len(b"#mdl\nnothing here\n")
    assert artifact["hashes"]["sha-256"] == hashlib.sha256(b"#mdl\nnothing here\n").hexdigest()


def test_malicious_file_is_an_error_with_cwe_rule_and_byte_offset(
    in_tmp: Path, run_cli: RunCli
) -> None:
    (in_tmp / "models").mkdir()
    (in_tmp / "models" / "evil.mdl").write_bytes(_evil_mdl())
    code, doc = run_cli("models", "--format", "sarif")
    assert code == 1
    validate_sarif(doc)
    run = doc["runs"][0]
    [result] = results_by_level(doc)["error"]
    assert result["ruleId"] == "MA9901"
    assert "posix.system" in result["message"]["text"]
    assert "shell command" in result["message"]["text"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "models/evil.mdl"
    assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    assert physical["region"] == {"byteOffset": _evil_mdl().index(b"cposix")}
    [rule] = run["tool"]["driver"]["rules"]
    assert rule["id"] == "MA9901"
    assert rule["defaultConfiguration"]["level"] == "error"
    assert "external/cwe/cwe-502" in rule["properties"]["tags"]
    assert float(rule["properties"]["security-severity"]) >= 9.0
    assert "rebuild the model" in rule["help"]["text"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == in_tmp.resolve().as_uri() + "/"


def test_levels_follow_the_reference_mapping(in_tmp: Path, run_cli: RunCli) -> None:
    (in_tmp / "m.mdl").write_bytes(_evil_mdl() + b"\nodd\nnote\n")
    code, doc = run_cli("m.mdl", "--format", "sarif")
    assert code == 1
    validate_sarif(doc)
    levels = {r["ruleId"]: r["level"] for r in doc["runs"][0]["results"]}
    assert levels == {"MA9901": "error", "MA9902": "warning", "MA9903": "note"}
    member = next(r for r in doc["runs"][0]["results"] if r["ruleId"] == "MA9902")
    location = member["locations"][0]
    assert location["logicalLocations"][0]["name"] == "inner/part0.bin"
    # A position inside an archive member is not an offset into the archive.
    assert "region" not in location["physicalLocation"]


def test_inconclusive_file_over_max_size(in_tmp: Path, run_cli: RunCli) -> None:
    (in_tmp / "big.mdl").write_bytes(b"#mdl\n" + b"x" * 4096)
    code, doc = run_cli("big.mdl", "--format", "sarif", "--max-size", "100")
    # Unverified, not a finding: exit 2, and the result is a note.
    assert code == 2
    validate_sarif(doc)
    run = doc["runs"][0]
    assert [r["ruleId"] for r in run["results"]] == ["MA0002"]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    [note] = invocation["toolExecutionNotifications"]
    assert note["level"] == "warning"
    assert "big.mdl" in note["message"]["text"]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "big.mdl"
    assert run["artifacts"][0]["properties"]["status"] == "inconclusive"


def test_errored_file_and_target_error(in_tmp: Path, run_cli: RunCli) -> None:
    (in_tmp / "broken.mdl").write_bytes(b"#mdl\nexplode\n")
    code, doc = run_cli("broken.mdl", "missing-dir", "--format", "sarif")
    assert code == 2
    validate_sarif(doc)
    notes = doc["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    levels = sorted(n["level"] for n in notes)
    assert levels == ["error", "error"]
    texts = " ".join(n["message"]["text"] for n in notes)
    assert "broken.mdl" in texts and "missing-dir" in texts
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is False


def _mixed_tree(root: Path) -> None:
    (root / "repo" / "sub dir").mkdir(parents=True)
    (root / "repo" / "clean.mdl").write_bytes(b"#mdl\nfine\n")
    (root / "repo" / "evil.mdl").write_bytes(_evil_mdl())
    (root / "repo" / "sub dir" / "odd #1.mdl").write_bytes(b"#mdl\nodd odd\n")
    (root / "repo" / "sub dir" / "cut.mdl").write_bytes(b"#mdl\ntruncated\n")
    (root / "repo" / "huge.mdl").write_bytes(b"#mdl\n" + b"y" * 5000)
    (root / "repo" / "README.txt").write_text("not a model")


def test_mixed_directory(in_tmp: Path, run_cli: RunCli) -> None:
    _mixed_tree(in_tmp)
    code, doc = run_cli("repo", "--format", "sarif", "--max-size", "1000")
    assert code == 1
    validate_sarif(doc)
    run = doc["runs"][0]
    uris = {a["location"]["uri"] for a in run["artifacts"]}
    assert uris == {
        "repo/clean.mdl",
        "repo/evil.mdl",
        "repo/huge.mdl",
        "repo/sub%20dir/odd%20%231.mdl",
        "repo/sub%20dir/cut.mdl",
    }
    levels = [r["level"] for r in run["results"]]
    assert levels == sorted(levels, key=["error", "warning", "note", "none"].index)
    assert levels.count("error") == 1
    for result in run["results"]:
        index = result["locations"][0]["physicalLocation"]["artifactLocation"]["index"]
        assert (
            run["artifacts"][index]["location"]["uri"]
            == result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        )
    notes = run["invocations"][0]["toolExecutionNotifications"]
    noted = " ".join(n["message"]["text"] for n in notes)
    assert "huge.mdl" in noted and "cut.mdl" in noted


def test_fingerprints_are_stable_and_distinct(in_tmp: Path, run_cli: RunCli) -> None:
    _mixed_tree(in_tmp)
    _, first = run_cli("repo", "--format", "sarif", "--max-size", "1000", output="a.sarif")
    _, second = run_cli("repo", "--format", "sarif", "--max-size", "1000", output="b.sarif")

    def prints(doc: dict[str, Any]) -> list[tuple[str, ...]]:
        return sorted(
            tuple(sorted(r["partialFingerprints"].items())) for r in doc["runs"][0]["results"]
        )

    assert prints(first) == prints(second)
    values = [r["partialFingerprints"]["modelaudit/v1"] for r in first["runs"][0]["results"]]
    assert len(values) == len(set(values)) >= 4
    hashes = [
        r["partialFingerprints"]["primaryLocationLineHash"] for r in first["runs"][0]["results"]
    ]
    assert len(hashes) == len(set(hashes))


def test_fingerprint_ignores_position_and_timestamp_but_not_path() -> None:
    def report(path: str, pos: int) -> ScanReport:
        issue = Issue(
            "Suspicious module reference found: posix.system",
            IssueSeverity.CRITICAL,
            location=f"{path} (pos {pos})",
            details={"module": "posix", "position": pos},
            rule="MA0000",
            timestamp=float(pos),
        )
        return ScanReport(files=[FileReport(path=path, issues=[issue])])

    def fp(doc: dict[str, Any]) -> str:
        value: str = doc["runs"][0]["results"][0]["partialFingerprints"]["modelaudit/v1"]
        return value

    assert fp(build_sarif(report("a.pkl", 10))) == fp(build_sarif(report("a.pkl", 99)))
    assert fp(build_sarif(report("a.pkl", 10))) != fp(build_sarif(report("b.pkl", 10)))


def test_remote_uris_are_kept_and_redacted() -> None:
    uri = "https://user:hunter2@example.com/org/model/resolve/main/model.bin?token=abc123&rev=1"
    issue = Issue(
        f"Suspicious reference in {uri}",
        IssueSeverity.WARNING,
        location=f"{uri}:data.pkl (pos 3)",
        rule="MA0000",
    )
    report = ScanReport(
        targets=["hf://org/model"],
        files=[
            FileReport(
                path=uri, remote=True, size=10, sha256="0" * 64, issues=[issue], format="pickle"
            ),
            FileReport(path="s3://bucket/models/clean.safetensors", remote=True, size=5),
        ],
        command_line=[
            "modelaudit",
            "scan",
            uri,
            "--hf-token",
            "s3cr3t-value",
            "--api-key=abcdef",
            "--format",
            "sarif",
        ],
    )
    doc = build_sarif(report)
    validate_sarif(doc)
    text = json.dumps(doc)
    for secret in ("hunter2", "abc123", "s3cr3t-value", "abcdef"):
        assert secret not in text
    run = doc["runs"][0]
    uris = [a["location"]["uri"] for a in run["artifacts"]]
    assert uris[0].startswith("https://***@example.com/org/model/resolve/main/model.bin?")
    assert uris[1] == "s3://bucket/models/clean.safetensors"
    assert all("uriBaseId" not in a["location"] for a in run["artifacts"])
    [result] = run["results"]
    assert result["locations"][0]["logicalLocations"][0]["name"] == "data.pkl"
    invocation = run["invocations"][0]
    assert (
        "--hf-token '***'" in invocation["commandLine"]
        or "--hf-token ***" in (invocation["commandLine"])
    )
    assert "--api-key=***" in invocation["commandLine"]
    assert invocation["arguments"][0] == "scan"


def _many(n_warning: int, n_critical: int) -> ScanReport:
    issues = [
        Issue(
            f"warning {hashlib.sha256(str(i).encode()).hexdigest()}",
            IssueSeverity.WARNING,
            location="m.pkl",
            rule="MA0000",
        )
        for i in range(n_warning)
    ]
    issues += [
        Issue(f"critical {i}", IssueSeverity.CRITICAL, location=f"m.pkl (pos {i})", rule="MA0006")
        for i in range(n_critical)
    ]
    return ScanReport(files=[FileReport(path="m.pkl", size=1, issues=issues)])


def test_result_limit_keeps_the_most_severe() -> None:
    assert MAX_RESULTS == 25_000
    doc = build_sarif(_many(600, 100), max_results=500)
    validate_sarif(doc)
    run = doc["runs"][0]
    assert len(run["results"]) == 500
    assert sum(1 for r in run["results"] if r["level"] == "error") == 100
    notes = run["invocations"][0]["toolExecutionNotifications"]
    [cut] = [n for n in notes if "most severe" in n["message"]["text"]]
    assert cut["properties"] == {"resultsTotal": 700, "resultsIncluded": 500}
    assert "at most 500 results" in cut["message"]["text"]


def test_size_limit_keeps_the_most_severe() -> None:
    budget = 16_000
    doc = build_sarif(_many(1000, 50), max_gzip_bytes=budget)
    validate_sarif(doc)
    assert len(gzip.compress(orjson.dumps(doc))) <= budget
    run = doc["runs"][0]
    assert 50 <= len(run["results"]) < 1050
    assert all(r["level"] == "error" for r in run["results"][:50])
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("gzip" in n["message"]["text"] for n in notes)


def test_artifacts_and_notifications_for_many_incomplete_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelaudit.reporters import sarif

    monkeypatch.setattr(sarif, "MAX_FILE_NOTIFICATIONS", 10)
    files = [
        FileReport(path=f"f{i}.bin", status=FileStatus.INCONCLUSIVE, status_reason="timeout")
        for i in range(15)
    ]
    doc = build_sarif(ScanReport(files=files))
    validate_sarif(doc)
    notes = doc["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == 11
    assert "5 more files" in notes[-1]["message"]["text"]
    assert len(doc["runs"][0]["artifacts"]) == 15


def test_debug_results_only_when_verbose() -> None:
    issue = Issue("a debug fact", IssueSeverity.DEBUG, location="x.pkl", rule="MA0000")
    report = ScanReport(files=[FileReport(path="x.pkl", issues=[issue])])
    assert build_sarif(report)["runs"][0]["results"] == []
    doc = build_sarif(report, include_debug=True)
    validate_sarif(doc)
    assert doc["runs"][0]["results"][0]["level"] == "none"


def test_malicious_pickle_file(in_tmp: Path, run_cli: RunCli) -> None:
    """A raw pickle calling posix.system, scanned by the real pickle scanner."""
    (in_tmp / "evil.pkl").write_bytes(POSIX_SYSTEM_PICKLE)
    code, doc = run_cli("evil.pkl", "--format", "sarif")
    validate_sarif(doc)
    assert code == 1
    run = doc["runs"][0]
    errors = results_by_level(doc)["error"]
    assert any("posix.system" in r["message"]["text"] for r in errors)
    for result in errors:
        rule = run["tool"]["driver"]["rules"][result["ruleIndex"]]
        assert "external/cwe/cwe-502" in rule["properties"]["tags"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert 0 <= region["byteOffset"] < len(POSIX_SYSTEM_PICKLE)


def test_real_mixed_directory(in_tmp: Path) -> None:
    from modelaudit.core import scan_report

    real_mixed_tree(in_tmp)
    report = scan_report("models", jobs=1, hashes=True, max_file_size=20_000)
    doc = build_sarif(report)
    validate_sarif(doc)
    run = doc["runs"][0]
    by_uri: dict[str, list[str]] = {}
    for result in run["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        by_uri.setdefault(uri, []).append(result["level"])
    assert "error" in by_uri["models/evil.pkl"]
    assert "error" in by_uri["models/nested/bundle.zip"]
    assert by_uri["models/nested/huge.bin"] == ["note"]
    for clean in ("models/benign.pkl", "models/model.safetensors", "models/config.json"):
        assert clean not in by_uri or set(by_uri[clean]) <= {"note"}
    member = next(
        r
        for r in run["results"]
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("bundle.zip")
        and r["level"] == "error"
    )
    assert member["locations"][0]["logicalLocations"][0]["name"].startswith("inner/payload.pkl")
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("huge.bin" in n["message"]["text"] for n in notes)


def test_output_to_stdout_and_file_match(in_tmp: Path, reporting_scanner: type) -> None:
    from modelaudit.core import scan_report

    (in_tmp / "evil.mdl").write_bytes(_evil_mdl())
    report = scan_report("evil.mdl", jobs=1, hashes=True)
    rendered = get_renderer("sarif")(report)
    doc = json.loads(rendered)
    validate_sarif(doc)
    assert (
        doc["runs"][0]["artifacts"][0]["hashes"]["sha-256"]
        == hashlib.sha256(_evil_mdl()).hexdigest()
    )


def test_configured_credentials_never_reach_the_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnop")
    issue = Issue(
        "Fetch failed with header Authorization: Bearer hf_abcdefghijklmnop",
        IssueSeverity.WARNING,
        location="x.pkl",
        rule="MA0000",
    )
    report = ScanReport(
        files=[
            FileReport(
                path="x.pkl",
                issues=[issue],
                status=FileStatus.ERROR,
                status_reason="401 for token hf_abcdefghijklmnop",
            )
        ],
        target_errors=[{"target": "hf://org/m", "error": "bad token hf_abcdefghijklmnop"}],
    )
    doc = build_sarif(report)
    validate_sarif(doc)
    text = json.dumps(doc)
    assert "hf_abcdefghijklmnop" not in text
    assert "Bearer ***" in text


def test_real_formats_clean_repository(in_tmp: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    from modelaudit.core import scan_report

    (in_tmp / "m").mkdir()
    (in_tmp / "m" / "config.json").write_text('{"architectures": ["BertModel"]}')
    save_file({"w": np.ones((3,), dtype=np.float32)}, str(in_tmp / "m" / "model.safetensors"))
    report = scan_report("m", jobs=1, hashes=True)
    doc = build_sarif(report)
    validate_sarif(doc)
    run = doc["runs"][0]
    assert run["results"] == []
    assert {a["location"]["uri"] for a in run["artifacts"]} == {
        "m/config.json",
        "m/model.safetensors",
    }
    assert all(len(a["hashes"]["sha-256"]) == 64 for a in run["artifacts"])


def test_rule_level_follows_what_it_reported() -> None:
    timeout = Issue(
        "Scan timeout after 1 seconds", IssueSeverity.INFO, location="a.pkl", rule="MA0001"
    )
    report = ScanReport(
        files=[
            FileReport(
                path="a.pkl",
                status=FileStatus.INCONCLUSIVE,
                status_reason="Scan timeout after 1 seconds",
                issues=[timeout],
            )
        ]
    )
    doc = build_sarif(report)
    validate_sarif(doc)
    [rule] = doc["runs"][0]["tool"]["driver"]["rules"]
    assert rule["id"] == "MA0001"
    assert rule["defaultConfiguration"]["level"] == "note"
    assert rule["properties"]["security-severity"] == "2.0"
    assert doc["runs"][0]["results"][0]["level"] == "note"


def test_size_limit_prunes_artifacts_and_keeps_indices_right() -> None:
    files = [
        FileReport(path=f"clean{i:05d}.safetensors", size=1, sha256=f"{i:064x}") for i in range(800)
    ]
    files += [
        FileReport(path=f"late{i}.bin", status=FileStatus.ERROR, status_reason="crashed")
        for i in range(5)
    ]
    files.append(_many(400, 5).files[0])
    doc = build_sarif(ScanReport(files=files), max_gzip_bytes=20_000)
    validate_sarif(doc)
    run = doc["runs"][0]
    assert len(run["artifacts"]) < len(files)
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert sum(1 for n in notes if "crashed" in n["message"]["text"]) == 5
    assert any("left out of the artifacts list" in n["message"]["text"] for n in notes)
    assert [r["level"] for r in run["results"][:5]] == ["error"] * 5
