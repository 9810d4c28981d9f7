"""A pyproject.toml is only parsed when it may hold [tool.modelaudit]: the cheap pre-check
must never pass over a file that tomllib would find the table in."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from modelaudit.project import _may_hold_table, find_config

HOLDS = [
    '[tool.modelaudit]\nfail-on = "critical"\n',
    '[ tool . "modelaudit" ]\nfail-on = "critical"\n',
    "[tool.'modelaudit']\nexclude = []\n",
    '[[tool.modelaudit.ignore]]\nrules = ["MA1002"]\npaths = ["*"]\nreason = "x"\n',
    '[tool]\nmodelaudit = { fail-on = "critical" }\n',
    '[tool]\nruff = {}\n[tool.black]\nx = 1\n[tool.modelaudit]\nexclude = ["a"]\n',
    '[tool]\nmodelaudit.fail-on = "critical"\n',
    'tool.modelaudit.fail-on = "critical"\n',
    'tool = { modelaudit = { fail-on = "critical" } }\n',
    '"tool".modelaudit = { exclude = [] }\n',
    "  [tool.modelaudit]  # indented, with a comment\n  exclude = []\n",
    '[tool."model\\u0061udit"]\nexclude = []\n',
    '[project]\nname = "x"\n\n[tool.ruff]\nline-length = 99\n\n[tool.modelaudit]\nexclude = []\n',
]
LACKS = [
    '[project]\nname = "x"\n',
    '[project]\nname = "modelaudit"\n[project.scripts]\nmodelaudit = "modelaudit.cli:main"\n'
    '[tool.setuptools.package-data]\nmodelaudit = ["py.typed"]\n[tool.ruff]\nline-length = 99\n',
    '[tool.ruff]\nextend-exclude = ["modelaudit"]\n',
    "",
]


def _holds(text: str) -> bool:
    tool = tomllib.loads(text).get("tool")
    return isinstance(tool, dict) and "modelaudit" in tool


@pytest.mark.parametrize("text", HOLDS)
def test_a_file_holding_the_table_is_parsed(text: str, tmp_path: Path) -> None:
    assert _holds(text)
    assert _may_hold_table(text.encode())
    (tmp_path / "pyproject.toml").write_text(text)
    assert find_config(str(tmp_path)) == str(tmp_path / "pyproject.toml")


@pytest.mark.parametrize("text", LACKS)
def test_a_file_without_it_is_passed_over_unparsed(text: str, tmp_path: Path) -> None:
    assert not _holds(text)
    assert not _may_hold_table(text.encode())
    (tmp_path / "pyproject.toml").write_text(text)
    assert find_config(str(tmp_path)) is None


def test_this_repository_pyproject_is_passed_over() -> None:
    """The benchmarks run from the checkout: its pyproject.toml names modelaudit (the
    project, its script) but holds no settings."""
    data = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_bytes()
    assert not _holds(data.decode())
    assert not _may_hold_table(data)
