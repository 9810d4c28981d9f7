"""diffusers `model_index.json`: components and pipelines whose code is not diffusers'.

The base index is the one diffusers wrote for the zoo's DDPM pipeline; a Stable Diffusion index
in the layout diffusers writes (a safety checker from the `stable_diffusion` pipeline package,
an optional component left `[null, null]`) must stay quiet too. Hostile variants name other
libraries, ship `<component>/<library>.py` or a custom pipeline module. Nothing is imported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from modelaudit.findings import IssueSeverity
from modelaudit.rules import text as rt
from tests.dataformats._dataformats_util import assert_clean, scan

ZOO = Path(__file__).resolve().parents[1] / "zoo" / "repos"
HOSTILE_PY = (
    "import os\n\n\nclass EvilUNet:\n    def __init__(self, *a, **k):\n        os.system('id')\n"
)
HARMLESS_PY = (
    "import torch\n\n\nclass Name(torch.nn.Module):\n"
    "    def __init__(self, channels=4):\n        super().__init__()\n"
    "        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)\n\n"
    "    def forward(self, x):\n        return self.conv(x)\n"
)

STABLE_DIFFUSION = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.42.1",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": [None, None],
    "requires_safety_checker": True,
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dest = tmp_path / "pipeline"
    shutil.copytree(ZOO / "diffusers-ddpm", dest)
    return dest


def _index(repo: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((repo / "model_index.json").read_text())
    return doc


def _write(repo: Path, doc: dict[str, Any]) -> Path:
    path = repo / "model_index.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def _found(path: Path) -> list[tuple[IssueSeverity, str]]:
    return [(i.severity, i.message) for i in scan(path).issues if i.rule == rt.JSON_REMOTE_CODE]


def test_real_pipeline_indexes_stay_quiet(repo: Path) -> None:
    assert_clean(scan(repo / "model_index.json"))
    assert_clean(scan(_write(repo, STABLE_DIFFUSION)))


def test_component_from_an_unknown_library_warns(repo: Path) -> None:
    doc = _index(repo)
    doc["unet"] = ["evil_models", "EvilUNet"]
    [(severity, message)] = _found(_write(repo, doc))
    assert severity is IssueSeverity.WARNING
    assert "'unet'" in message and "evil_models" in message


def test_component_code_in_the_repository_is_critical(repo: Path) -> None:
    doc = _index(repo)
    doc["unet"] = ["evil_models", "EvilUNet"]
    (repo / "unet" / "evil_models.py").write_text(HOSTILE_PY)
    [(severity, message)] = _found(_write(repo, doc))
    assert severity is IssueSeverity.CRITICAL
    assert "unet/evil_models.py" in message and "os.system" in message


def test_component_code_doing_a_models_work_is_a_warning(repo: Path) -> None:
    """A custom component or pipeline published with its code is unvetted, not an attack."""
    doc = _index(repo)
    doc["unet"] = ["my_models", "MyUNet"]
    doc["_class_name"] = ["my_pipeline", "MyPipeline"]
    (repo / "unet" / "my_models.py").write_text(HARMLESS_PY.replace("Name", "MyUNet"))
    (repo / "my_pipeline.py").write_text(HARMLESS_PY.replace("Name", "MyPipeline"))
    found = _found(_write(repo, doc))
    assert [s for s, _ in found] == [IssueSeverity.WARNING] * 2, found
    assert any("unet/my_models.py" in m for _, m in found)


def test_component_file_named_like_diffusers_is_loaded_instead_and_critical(repo: Path) -> None:
    """diffusers checks `<component>/<library>.py` before importing the library itself."""
    (repo / "unet" / "diffusers.py").write_text(HOSTILE_PY.replace("EvilUNet", "UNet2DModel"))
    [(severity, message)] = _found(repo / "model_index.json")
    assert severity is IssueSeverity.CRITICAL and "unet/diffusers.py" in message


def test_custom_pipeline_class_name(repo: Path) -> None:
    doc = _index(repo)
    doc["_class_name"] = ["my_pipeline", "MyPipeline"]
    [(severity, message)] = _found(_write(repo, doc))
    assert severity is IssueSeverity.WARNING and "my_pipeline.py" in message
    (repo / "my_pipeline.py").write_text(HOSTILE_PY.replace("EvilUNet", "MyPipeline"))
    [(severity, message)] = _found(repo / "model_index.json")
    assert severity is IssueSeverity.CRITICAL and "os.system" in message


def test_component_names_cannot_leave_the_repository(repo: Path) -> None:
    (repo.parent / "outside.py").write_text(HOSTILE_PY)
    doc = _index(repo)
    doc[".."] = ["outside", "EvilUNet"]
    [(severity, _message)] = _found(_write(repo, doc))
    assert severity is IssueSeverity.WARNING


def test_component_config_is_no_pipeline_index(repo: Path) -> None:
    """A component's config.json has `_class_name` and lists of block names, not components."""
    assert_clean(scan(repo / "unet" / "config.json"))


def test_many_components_with_code_parse_a_bounded_number_of_files(repo: Path) -> None:
    """Every component is reported; only the first few files are parsed for what they do."""
    doc = _index(repo)
    for n in range(30):
        (repo / f"part{n}").mkdir()
        (repo / f"part{n}" / "evil_models.py").write_text(HOSTILE_PY)
        doc[f"part{n}"] = ["evil_models", "EvilUNet"]
    found = _found(_write(repo, doc))
    assert len(found) == 30 and all(s is IssueSeverity.CRITICAL for s, _ in found)
    assert sum("os.system" in m for _, m in found) == 10


def test_library_given_as_a_path_inside_the_repository_is_critical(repo: Path) -> None:
    """diffusers loads `<component>/<library>.py` as joined, so a library may be a path."""
    (repo / "shared").mkdir()
    (repo / "shared" / "unet_code.py").write_text(HOSTILE_PY)
    (repo / "dotted.name.py").write_text(HOSTILE_PY)
    doc = _index(repo)
    doc["unet"] = ["../shared/unet_code", "EvilUNet"]
    doc["scheduler"] = ["../dotted.name", "EvilUNet"]
    found = _found(_write(repo, doc))
    assert [s for s, _ in found] == [IssueSeverity.CRITICAL] * 2
    assert any("shared/unet_code.py" in m for _, m in found)


def test_component_after_two_hundred_keys_is_judged(repo: Path) -> None:
    """Only the first 200 keys were read: padding the index with keys diffusers ignores (not
    in the pipeline's signature) pushed the real `unet` past them, unjudged."""
    doc = _index(repo)
    (repo / "unet" / "evil_models.py").write_text(HOSTILE_PY)
    padded: dict[str, Any] = {f"unused_{n}": [None, None] for n in range(200)}
    padded.update(doc, unet=["evil_models", "EvilUNet"])
    [(severity, message)] = _found(_write(repo, padded))
    assert severity is IssueSeverity.CRITICAL and "unet/evil_models.py" in message


def test_second_class_named_from_one_file_is_judged(repo: Path) -> None:
    """Two components take different classes from one shared file: the file's reading was
    cached by file, so the harmful class named second was reported with the harmless first
    class's verdict (a WARNING)."""
    (repo / "shared").mkdir()
    (repo / "shared" / "models.py").write_text(
        HARMLESS_PY.replace("Name", "GoodUNet")
        + "\n\n"
        + HOSTILE_PY.replace("import os\n", "")
        + "\nimport os\n"
    )
    doc = {k: v for k, v in _index(repo).items() if k not in ("unet", "scheduler")}
    doc["unet"] = ["../shared/models", "GoodUNet"]  # read first, in the index's order
    doc["scheduler"] = ["../shared/models", "EvilUNet"]
    found = _found(_write(repo, doc))
    assert len(found) == 2, found
    evil = [(s, m) for s, m in found if "'scheduler'" in m]
    assert evil and evil[0][0] is IssueSeverity.CRITICAL and "os.system" in evil[0][1], found
