"""Fixtures shared across test areas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FRAMEWORKS = Path(__file__).parent / "frameworks"


@pytest.fixture(scope="session")
def tf_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SavedModels, GraphDefs, TFLite and Keras files written by TensorFlow in a subprocess
    (the test session never imports TensorFlow), built once for every area that scans them.

    Keras fixes its backend at import, so the TorchModuleWrapper files come from a second
    process; the two builders are independent and run side by side."""
    out = tmp_path_factory.mktemp("tf_models")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    builders = [
        ("_build_tf_models.py", env),
        ("_build_torch_keras.py", {**env, "KERAS_BACKEND": "torch"}),
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, str(FRAMEWORKS / script), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=script_env,
        )
        for script, script_env in builders
    ]
    try:
        for proc in procs:
            _, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out
