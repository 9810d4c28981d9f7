"""Fixtures shared by the data-format tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: One child process writes both sets of MLflow models (importing MLflow, scikit-learn and
#: torch once): `_mlflow_models.main` into the first folder, `_mlflow_code_models.main` into
#: the second.
_SAVE_BOTH = (
    "import sys; from pathlib import Path; "
    "from tests.dataformats import _mlflow_code_models, _mlflow_models; "
    "_mlflow_models.main(Path(sys.argv[1])); _mlflow_code_models.main(Path(sys.argv[2]))"
)


@pytest.fixture(scope="session")
def mlflow_saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """MLflow models written by MLflow's own `save_model`, in a child process: (the
    environment-file models of test_mlflow_env, the shipped-code models of
    test_mlflow_shipped_code)."""
    env_models = tmp_path_factory.mktemp("mlflow-models")
    code_models = tmp_path_factory.mktemp("mlflow-code-models")
    subprocess.run(
        [sys.executable, "-c", _SAVE_BOTH, str(env_models), str(code_models)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return env_models, code_models
