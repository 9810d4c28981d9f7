from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from modelaudit.findings import FileStatus, Issue, IssueSeverity
from modelaudit.report import FileReport, ScanReport
from modelaudit.sbom import build_bom, component_type, risk_score
from modelaudit.sbom.licenses import classify_license_text, copyright_holders, front_matter
from tests.reporting._reporting_scanner import POSIX_SYSTEM_PICKLE

RunCli = Callable[..., tuple[int, Any]]
APACHE_HEAD = "                                 Apache License\n                           Version 2.0, January 2004\n"
MIT_TEXT = (
    "MIT License\n\nCopyright (c) 2024 Acme Models Inc.\n\n"
    "Permission is hereby granted, free of charge, to any person obtaining a copy\n"
    "The above copyright notice and this permission notice shall be included\n"
)


def validate_bom(doc: dict[str, Any]) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    assert error is None, str(error)
    assert doc["bomFormat"] == "CycloneDX"
    assert doc["specVersion"] == "1.6"


def _components(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc.get("components", [])}


def _props(component: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == name]


def _license_ids(component: dict[str, Any]) -> list[str]:
    out = []
    for entry in component.get("licenses", []):
        if "expression" in entry:
            out.append(entry["expression"])
        else:
            lic = entry["license"]
            out.append(lic.get("id") or lic.get("name"))
    return out


def _scan_with_sbom(run_cli: RunCli, *args: str) -> tuple[int, dict[str, Any]]:
    code, _ = run_cli(*args, "--sbom", "bom.json", "--format", "json")
    with open("bom.json", "rb") as f:
        doc = json.load(f)
    validate_bom(doc)
    return code, doc


def test_clean_file(in_tmp: Path, run_cli: RunCli) -> None:
    body = b"#mdl\nfine\n"
    (in_tmp / "ok.mdl").write_bytes(body)
    code, doc = _scan_with_sbom(run_cli, "ok.mdl")
    assert code == 0
    comp = _components(doc)["ok.mdl"]
    assert comp["type"] == "file"
    hashes = {h["alg"]: h["content"] for h in comp["hashes"]}
    assert hashes["SHA-256"] == hashlib.sha256(body).hexdigest()
    assert hashes["SHA-1"] == hashlib.sha1(body).hexdigest()
    assert hashes["SHA-512"] == hashlib.sha512(body).hexdigest()
    assert _props(comp, "modelaudit:risk_score") == ["0.0"]
    assert _props(comp, "modelaudit:size") == [str(len(body))]
    assert doc["metadata"]["tools"]["components"][0]["name"] == "modelaudit"


def test_malicious_file_scores_critical_with_rule_ids(in_tmp: Path, run_cli: RunCli) -> None:
    (in_tmp / "evil.mdl").write_bytes(b"#mdl\n" + POSIX_SYSTEM_PICKLE + b"\nodd\n")
    code, doc = _scan_with_sbom(run_cli, "evil.mdl")
    assert code == 1
    comp = _components(doc)["evil.mdl"]
    assert float(_props(comp, "modelaudit:risk_score")[0]) >= 9.0
    assert _props(comp, "modelaudit:risk_level") == ["critical"]
    assert _props(comp, "modelaudit:rule_id") == ["MA9901", "MA9902"]


def test_inconclusive_and_errored_files(in_tmp: Path, run_cli: RunCli) -> None:
    (in_tmp / "big.mdl").write_bytes(b"#mdl\n" + b"z" * 3000)
    (in_tmp / "bad.mdl").write_bytes(b"#mdl\nexplode\n")
    code, doc = _scan_with_sbom(run_cli, "big.mdl", "bad.mdl", "--max-size", "500")
    assert code == 2
    comps = _components(doc)
    assert _props(comps["big.mdl"], "modelaudit:status") == ["inconclusive"]
    assert _props(comps["bad.mdl"], "modelaudit:status") == ["error"]
    assert float(_props(comps["bad.mdl"], "modelaudit:risk_score")[0]) >= 4.0
    assert "hashes" not in comps["big.mdl"]


def test_mixed_directory_with_model_card_and_license_file(in_tmp: Path, run_cli: RunCli) -> None:
    repo = in_tmp / "repo"
    (repo / "onnx").mkdir(parents=True)
    (repo / "README.md").write_text(
        "---\nlanguage:\n- en\nlicense: apache-2.0\ntags: [text]\n---\n# My model\n"
    )
    (repo / "LICENSE").write_text(APACHE_HEAD + "\n   Copyright 2023 The Example Authors\n")
    (repo / "weights.mdl").write_bytes(b"#mdl\narch=LlamaForCausalLM\n")
    (repo / "onnx" / "model.mdl").write_bytes(b"#mdl\nodd\n")
    (repo / "data.mdl").write_bytes(b"#mdl\nlicense=mit\ncopyright=Jane Doe\n")
    code, doc = _scan_with_sbom(run_cli, "repo")
    assert code == 1
    comps = _components(doc)
    assert set(comps) == {"repo/weights.mdl", "repo/onnx/model.mdl", "repo/data.mdl"}
    weights = comps["repo/weights.mdl"]
    assert _license_ids(weights) == ["Apache-2.0"]
    assert weights["copyright"] == "Copyright (c) 2023 The Example Authors"
    assert sorted(_props(weights, "modelaudit:license_source")) == ["LICENSE", "README.md"]
    # The repository's README covers weights in its subfolders too.
    assert _license_ids(comps["repo/onnx/model.mdl"]) == ["Apache-2.0"]
    # The file's own metadata is kept beside the repository's declaration.
    assert sorted(_license_ids(comps["repo/data.mdl"])) == ["Apache-2.0", "MIT"]
    assert "Copyright Jane Doe" in comps["repo/data.mdl"]["copyright"]


def test_model_card_for_models_from_config_metadata() -> None:
    report = ScanReport(
        targets=["m"],
        files=[
            FileReport(
                path="m/config.json",
                format="json",
                metadata={
                    "architectures": ["LlamaForCausalLM"],
                    "model_type": "llama",
                    "task": "text-generation",
                },
            ),
            FileReport(path="m/model.safetensors", format="safetensors", size=8),
            FileReport(path="m/sub/model.gguf", format="gguf", metadata={"license": "llama2"}),
            FileReport(path="m/train.parquet", format=None, size=3),
            FileReport(path="m/notes.txt", status=FileStatus.SKIPPED),
        ],
    )
    doc = build_bom(report)
    validate_bom(doc)
    comps = _components(doc)
    assert set(comps) == {
        "m/config.json",
        "m/model.safetensors",
        "m/sub/model.gguf",
        "m/train.parquet",
    }
    model = comps["m/model.safetensors"]
    assert model["type"] == "machine-learning-model"
    assert model["modelCard"] == {
        "modelParameters": {
            "task": "text-generation",
            "architectureFamily": "llama",
            "modelArchitecture": "LlamaForCausalLM",
        }
    }
    assert comps["m/sub/model.gguf"]["modelCard"]["modelParameters"]["task"] == "text-generation"
    assert _license_ids(comps["m/sub/model.gguf"]) == ["llama2"]
    assert "modelCard" not in comps["m/config.json"]
    assert comps["m/config.json"]["type"] == "file"
    assert comps["m/train.parquet"]["type"] == "data"


def test_remote_components_are_redacted() -> None:
    uri = "https://user:pw@example.com/org/m/resolve/main/model.safetensors?token=zzz"
    report = ScanReport(
        targets=[uri],
        files=[FileReport(path=uri, remote=True, format="safetensors", sha256="a" * 64, size=9)],
    )
    doc = build_bom(report)
    validate_bom(doc)
    text = json.dumps(doc)
    assert "zzz" not in text and ":pw@" not in text
    [comp] = doc["components"]
    assert comp["name"].startswith("https://***@example.com/")
    assert [h["alg"] for h in comp["hashes"]] == ["SHA-256"]


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        ("---\nlicense: mit\n---\n", ["mit"]),
        ("---\nlicense:\n  - apache-2.0\n  - cc-by-4.0\n---\n", ["apache-2.0", "cc-by-4.0"]),
        ("---\nlicense: [bsd-3-clause, mit]\n---\n", ["bsd-3-clause", "mit"]),
        ("---\nlicense: 'openrail'  # comment\n---\n", ["openrail"]),
        ("no front matter\nlicense: mit\n", []),
    ],
)
def test_front_matter_license(card: str, expected: list[str]) -> None:
    assert front_matter(card).get("license", []) == expected


def test_other_license_uses_license_name(in_tmp: Path) -> None:
    (in_tmp / "README.md").write_text(
        "---\nlicense: other\nlicense_name: acme-model-license\nlicense_link: LICENSE\n---\n"
    )
    report = ScanReport(
        targets=["."], files=[FileReport(path="model.safetensors", format="safetensors")]
    )
    doc = build_bom(report)
    validate_bom(doc)
    assert _license_ids(doc["components"][0]) == ["acme-model-license"]


@pytest.mark.parametrize(
    ("text", "spdx"),
    [
        (APACHE_HEAD, "Apache-2.0"),
        (MIT_TEXT, "MIT"),
        ("GNU GENERAL PUBLIC LICENSE\n   Version 3, 29 June 2007", "GPL-3.0-only"),
        ("Attribution-NonCommercial 4.0 International", "CC-BY-NC-4.0"),
        ("LLAMA 2 COMMUNITY LICENSE AGREEMENT", "llama2"),
        (
            "Redistribution and use in source and binary forms... Neither the name of X nor the names of",
            "BSD-3-Clause",
        ),
        ("Some bespoke terms nobody else uses", None),
    ],
)
def test_license_text_classification(text: str, spdx: str | None) -> None:
    assert classify_license_text(text) == spdx


def test_copyright_holders_skip_license_prose_and_templates() -> None:
    text = (
        MIT_TEXT
        + "   copyright, patent, trademark, and attribution notices from the Source\n"
        + "   Copyright [yyyy] [name of copyright owner]\n"
        + "# Copyright 2021 The HuggingFace Team. All rights reserved.\n"
        + "© 2020 Jane Doe\n"
    )
    assert copyright_holders(text) == [
        "Copyright (c) 2024 Acme Models Inc",
        "Copyright (c) 2021 The HuggingFace Team. All rights reserved",
        "Copyright (c) 2020 Jane Doe",
    ]


def test_license_expression_in_metadata_stays_valid() -> None:
    report = ScanReport(
        files=[
            FileReport(path="a.gguf", format="gguf", metadata={"license": "Apache-2.0 OR MIT"}),
            FileReport(
                path="b.gguf",
                format="gguf",
                metadata={"license": ["Apache-2.0 OR MIT", "cc-by-4.0"]},
            ),
        ]
    )
    doc = build_bom(report)
    validate_bom(doc)
    comps = _components(doc)
    assert comps["a.gguf"]["licenses"] == [
        {"expression": "Apache-2.0 OR MIT", "acknowledgement": "declared"}
    ]
    assert sorted(_license_ids(comps["b.gguf"])) == ["Apache-2.0 OR MIT", "CC-BY-4.0"]


def test_risk_score_bands() -> None:
    def fr(*severities: IssueSeverity, status: FileStatus = FileStatus.COMPLETE) -> FileReport:
        return FileReport(path="x", status=status, issues=[Issue("m", s) for s in severities])

    assert risk_score(fr()) == 0.0
    assert risk_score(fr(IssueSeverity.INFO)) == 0.0
    assert risk_score(fr(status=FileStatus.INCONCLUSIVE)) == 4.0
    assert 5.0 <= risk_score(fr(IssueSeverity.WARNING, IssueSeverity.WARNING)) < 7.0
    assert risk_score(fr(IssueSeverity.CRITICAL)) == 9.0
    assert risk_score(fr(*[IssueSeverity.CRITICAL] * 20)) == 10.0


@pytest.mark.parametrize(
    ("path", "fmt", "kind"),
    [
        ("a.pkl", "pickle", "machine-learning-model"),
        ("a.bin", None, "machine-learning-model"),
        ("a.onnx", "onnx", "machine-learning-model"),
        ("a.npy", "numpy", "data"),
        ("a.csv", None, "data"),
        ("config.json", "json", "file"),
        ("a.zip", "zip", "file"),
    ],
)
def test_component_types(path: str, fmt: str | None, kind: str) -> None:
    assert component_type(FileReport(path=path, format=fmt)) == kind


def test_sbom_alongside_sarif_and_written_atomically(in_tmp: Path, run_cli: RunCli) -> None:
    (in_tmp / "evil.mdl").write_bytes(b"#mdl\n" + POSIX_SYSTEM_PICKLE)
    code, sarif = run_cli("evil.mdl", "--format", "sarif", "--sbom", "bom.json")
    assert code == 1
    assert sarif["version"] == "2.1.0"
    doc = json.loads((in_tmp / "bom.json").read_text())
    validate_bom(doc)
    assert not [p for p in in_tmp.iterdir() if p.name.startswith(".modelaudit-")]


def test_unwritable_sbom_path_is_refused_before_the_scan(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelaudit.cli import main

    (in_tmp / "ok.mdl").write_bytes(b"#mdl\nfine\n")
    argv = ["ok.mdl", "--no-progress", "--output", "r.json", "--sbom", "no/such/dir/bom.json"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "modelaudit: error: cannot write SBOM no/such/dir/bom.json: folder "
        + str(in_tmp / "no" / "such" / "dir")
        + " does not exist\n"
    )
    assert not (in_tmp / "r.json").exists()


def _gguf(path: Path, license_id: str) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.license", license_id)
    writer.add_name("tiny-test")
    writer.add_tensor("w", np.zeros((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_real_model_repository(in_tmp: Path) -> None:
    """A Hugging Face style folder built with the real libraries, scanned by the real scanners."""
    import numpy as np
    from safetensors.numpy import save_file

    from modelaudit.core import scan_report

    repo = in_tmp / "tiny-llama"
    (repo / "gguf").mkdir(parents=True)
    (repo / "README.md").write_text(
        "---\nlicense: apache-2.0\npipeline_tag: text-generation\n---\n"
    )
    (repo / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    )
    save_file(
        {"w": np.zeros((2, 2), dtype=np.float32)},
        str(repo / "model.safetensors"),
        metadata={"license": "cc-by-4.0"},
    )
    _gguf(repo / "gguf" / "model.Q4.gguf", "mit")
    report = scan_report("tiny-llama", jobs=1, hashes=True)
    assert report.exit_code == 0, [i.message for i in report.issues]
    doc = build_bom(report)
    validate_bom(doc)
    comps = _components(doc)
    assert set(comps) == {
        "tiny-llama/config.json",
        "tiny-llama/model.safetensors",
        "tiny-llama/gguf/model.Q4.gguf",
    }
    weights = comps["tiny-llama/model.safetensors"]
    assert weights["type"] == "machine-learning-model"
    assert sorted(_license_ids(weights)) == ["Apache-2.0", "CC-BY-4.0"]
    assert weights["modelCard"]["modelParameters"] == {
        "task": "text-generation",
        "architectureFamily": "llama",
        "modelArchitecture": "LlamaForCausalLM",
    }
    gguf_comp = comps["tiny-llama/gguf/model.Q4.gguf"]
    assert sorted(_license_ids(gguf_comp)) == ["Apache-2.0", "MIT"]
    assert gguf_comp["modelCard"]["modelParameters"]["architectureFamily"] == "llama"
    sha = hashlib.sha256((repo / "model.safetensors").read_bytes()).hexdigest()
    assert {h["alg"]: h["content"] for h in weights["hashes"]}["SHA-256"] == sha
    assert comps["tiny-llama/config.json"]["type"] == "file"


def test_real_mixed_directory(in_tmp: Path) -> None:
    from modelaudit.core import scan_report
    from tests.reporting._reporting_trees import real_mixed_tree

    real_mixed_tree(in_tmp)
    report = scan_report("models", jobs=1, hashes=True, max_file_size=20_000)
    doc = build_bom(report)
    validate_bom(doc)
    comps = _components(doc)
    assert _props(comps["models/evil.pkl"], "modelaudit:risk_level") == ["critical"]
    assert comps["models/evil.pkl"]["type"] == "machine-learning-model"
    assert _props(comps["models/benign.pkl"], "modelaudit:risk_score") == ["0.0"]
    assert _props(comps["models/nested/bundle.zip"], "modelaudit:risk_level") == ["critical"]
    assert comps["models/nested/bundle.zip"]["type"] == "file"
    assert _props(comps["models/nested/huge.bin"], "modelaudit:status") == ["inconclusive"]
    assert (
        comps["models/model.safetensors"]["modelCard"]["modelParameters"]["modelArchitecture"]
        == "GPT2LMHeadModel"
    )
    rule_ids = _props(comps["models/evil.pkl"], "modelaudit:rule_id")
    assert rule_ids and all(r.startswith("MA") for r in rule_ids)


def test_configured_credentials_never_reach_the_sbom(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelaudit.sbom import build_sbom

    monkeypatch.setenv("JFROG_API_TOKEN", "jfrog-secret-value-123")
    report = ScanReport(
        targets=["https://art.example.com/models/m.pkl"],
        files=[
            FileReport(
                path="https://art.example.com/models/m.pkl",
                remote=True,
                status=FileStatus.ERROR,
                status_reason="401 with token jfrog-secret-value-123",
            )
        ],
    )
    data = build_sbom(report)
    assert b"jfrog-secret-value-123" not in data
    validate_bom(json.loads(data))
