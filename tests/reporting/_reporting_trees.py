"""Directory trees built with real libraries for the reporting tests."""

from __future__ import annotations

from pathlib import Path

from tests.reporting._reporting_scanner import POSIX_SYSTEM_PICKLE


def real_mixed_tree(root: Path) -> None:
    """models/: a benign and a malicious pickle, safetensors, config.json, a zip holding the
    malicious pickle, and a 50 kB file to exceed a 20 kB --max-size."""
    import pickle
    import zipfile

    import numpy as np
    from safetensors.numpy import save_file

    repo = root / "models"
    (repo / "nested").mkdir(parents=True)
    (repo / "benign.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0], "name": "ok"}))
    (repo / "evil.pkl").write_bytes(POSIX_SYSTEM_PICKLE)
    save_file({"w": np.zeros((2,), dtype=np.float32)}, str(repo / "model.safetensors"))
    (repo / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"]}')
    with zipfile.ZipFile(repo / "nested" / "bundle.zip", "w") as zf:
        zf.writestr("inner/payload.pkl", POSIX_SYSTEM_PICKLE)
    (repo / "nested" / "huge.bin").write_bytes(b"\0" * 50_000)
