"""Fixtures for the framework-format tests: real TensorFlow/Keras files built once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def tf_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SavedModels, GraphDefs, TFLite and Keras files written by TensorFlow in a subprocess."""
    out = tmp_path_factory.mktemp("tf_models")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(HERE / "_build_tf_models.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Keras fixes its backend at import: the TorchModuleWrapper files need a second process
    proc = subprocess.run(
        [sys.executable, str(HERE / "_build_torch_keras.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "KERAS_BACKEND": "torch"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
