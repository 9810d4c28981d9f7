"""The working directory the documentation's examples assume, laid out with real files.

`models/` holds repositories the real libraries wrote (the zoo), `model.pkl` a real
scikit-learn pickle with its `dvc add` pointer and cache object; the malicious layout adds a
pickle that runs `posix.system` and a model named like a blacklist pattern. Commands run in a
shell with this checkout's modelaudit first on PATH.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "tests" / "zoo" / "repos"
BIN = Path(sys.executable).parent
#: posix.system('id') as protocol 4; the STACK_GLOBAL sits at byte 28, as in the page's JSON.
EVIL = (
    b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94"
    b"\x93\x94\x8c\x02id\x94\x85\x94R\x94."
)
MODEL_REPOS = (
    "sklearn-joblib-pickle",
    "onnx-exports",
    "keras3-and-legacy-h5",
    "transformers-bert-sharded",
)
#: Azure DevOps replaces its macros before the shell sees the script.
AZURE_STAGING = "$(Build.ArtifactStagingDirectory)"


def env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NO_COLOR", "FORCE_COLOR"))}
    env["PATH"] = f"{BIN}:/usr/bin:/bin"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def layout(root: Path, malicious: bool) -> None:
    """The working directory the page's examples assume, with real files."""
    models = root / "models"
    for name in MODEL_REPOS:
        shutil.copytree(ZOO / name, models / name)
    model = EVIL if malicious else (ZOO / "sklearn-joblib-pickle" / "model.pkl").read_bytes()
    if malicious:
        (models / "evil.pkl").write_bytes(EVIL)
        shutil.copy(
            ZOO / "transformers-mistral-safetensors" / "model.safetensors",
            models / "unsafe_model.safetensors",
        )
    (root / "model.pkl").write_bytes(model)
    # `dvc add model.pkl`: the pointer beside it and the object in the local cache
    md5 = hashlib.md5(model).hexdigest()
    cached = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(model)
    (root / ".dvc" / "config").write_text("")
    (root / "model.pkl.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {len(model)}\n  hash: md5\n  path: model.pkl\n"
    )
    (root / "staging").mkdir()
    (root / "path" / "to").mkdir(parents=True)


def sh(script: str, cwd: Path, shell: str = "sh") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shell, "-ec", script],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
