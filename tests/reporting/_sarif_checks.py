"""Validation shared by the SARIF tests: the OASIS schema plus GitHub code scanning's rules."""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"
_SEVERITY = re.compile(r"^\d{1,2}\.\d$")
_ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@cache
def _validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )


def validate_sarif(doc: dict[str, Any]) -> None:
    """Raise AssertionError for anything the schema or GitHub's upload would reject."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    assert doc["version"] == "2.1.0"
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    for key in ("name", "version", "semanticVersion"):
        assert driver.get(key), key
    # the package index's "modelaudit" is another project: never link to it
    assert "pypi.org" not in json.dumps(driver)
    rules = driver.get("rules", [])
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)), "duplicate rule ids"
    used = {r["ruleId"] for r in run["results"]}
    assert set(ids) == used, "driver.rules must be exactly the rules the results use"
    assert len(rules) <= 25_000
    for rule in rules:
        assert rule["name"]
        assert 0 < len(rule["shortDescription"]["text"]) <= 1024
        assert 0 < len(rule["fullDescription"]["text"]) <= 1024
        assert rule["help"]["text"].strip()
        assert rule["help"]["markdown"].strip()
        assert rule["defaultConfiguration"]["level"] in ("none", "note", "warning", "error")
        props = rule["properties"]
        severity = props["security-severity"]
        assert isinstance(severity, str) and _SEVERITY.match(severity), severity
        assert 0.0 <= float(severity) <= 10.0
        assert props["precision"] in ("very-high", "high", "medium", "low")
        assert "security" in props["tags"]
        assert len(props["tags"]) <= 20
        for tag in props["tags"]:
            if tag.startswith("external/cwe/"):
                assert re.fullmatch(r"external/cwe/cwe-\d+", tag), tag
    assert len(run["results"]) <= 25_000
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"].strip()
        assert result["level"] in ("none", "note", "warning", "error")
        fingerprints = result["partialFingerprints"]
        assert fingerprints and all(isinstance(v, str) and v for v in fingerprints.values())
        assert len(result["locations"]) == 1
        physical = result["locations"][0]["physicalLocation"]
        # A startLine would make the upload action hash the (binary, maybe huge) model file.
        assert "startLine" not in physical.get("region", {})
        location = physical["artifactLocation"]
        if location.get("uriBaseId"):
            assert location["uriBaseId"] in run["originalUriBaseIds"]
            assert not location["uri"].startswith("/")
    locations = [r["locations"][0] for r in run["results"]]
    invocation = run["invocations"][0]
    for note in invocation.get("toolExecutionNotifications", []):
        locations.extend(note.get("locations", []))
    for location in locations:
        artifact_location = location["physicalLocation"]["artifactLocation"]
        if "index" in artifact_location:
            artifact = run["artifacts"][artifact_location["index"]]
            assert artifact["location"]["uri"] == artifact_location["uri"]
    assert isinstance(invocation["executionSuccessful"], bool)
    assert _ISO_UTC.match(invocation["startTimeUtc"])
    assert _ISO_UTC.match(invocation["endTimeUtc"])
    for base in run["originalUriBaseIds"].values():
        assert base["uri"].endswith("/")
    assert len(gzip.compress(json.dumps(doc).encode())) <= 10 * 1000 * 1000


def results_by_level(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for result in doc["runs"][0]["results"]:
        out.setdefault(result["level"], []).append(result)
    return out
