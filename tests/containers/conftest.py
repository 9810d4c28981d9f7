"""Legitimate container files made once per session with the real libraries."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.containers._container_corpus import JOBLIB_COMPRESSORS


def _torch_files(root: Path) -> dict[str, Path]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    out: dict[str, Path] = {}
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    out["state_dict.pt"] = root / "state_dict.pt"
    torch.save(model.state_dict(), out["state_dict.pt"])
    out["whole_module.pth"] = root / "whole_module.pth"
    torch.save(model, out["whole_module.pth"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 8)).sum().backward()
    opt.step()
    out["optimizer.ckpt"] = root / "optimizer.ckpt"
    torch.save(
        {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3},
        out["optimizer.ckpt"],
    )
    out["legacy.pt"] = root / "legacy.pt"
    torch.save(model.state_dict(), out["legacy.pt"], _use_new_zipfile_serialization=False)
    out["folder_name.bin"] = root / "pytorch_model_custom_folder.bin"
    torch.save(model.state_dict(), out["folder_name.bin"])
    big = nn.Sequential(*[nn.Linear(512, 512) for _ in range(4)])
    out["big.pt"] = root / "big.pt"
    torch.save(big.state_dict(), out["big.pt"])
    return out


def _sklearn_files(root: Path) -> dict[str, Path]:
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = __import__("numpy").random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(x, y)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(x, y)
    out: dict[str, Path] = {}
    for label, obj in (("forest", forest), ("pipeline", pipe)):
        out[f"{label}.joblib"] = root / f"{label}.joblib"
        joblib.dump(obj, out[f"{label}.joblib"])
        for comp in JOBLIB_COMPRESSORS:
            key = f"{label}.{comp}.joblib"
            out[key] = root / key
            joblib.dump(obj, out[key], compress=(comp, 3))
    return out


def _numpy_files(root: Path) -> dict[str, Path]:
    import numpy as np

    out: dict[str, Path] = {}
    out["array.npy"] = root / "array.npy"
    np.save(out["array.npy"], np.arange(100, dtype=np.float32).reshape(10, 10))
    out["structured.npy"] = root / "structured.npy"
    np.save(out["structured.npy"], np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))]))
    out["arrays.npz"] = root / "arrays.npz"
    np.savez(out["arrays.npz"], a=np.ones(5), b=np.arange(3, dtype=np.int16))
    out["compressed.npz"] = root / "compressed.npz"
    np.savez_compressed(out["compressed.npz"], a=np.ones((50, 50)), s=np.array(["x", "yz"]))
    out["objects.npy"] = root / "objects.npy"
    np.save(out["objects.npy"], np.array([1, "two", None, 3.5], dtype=object), allow_pickle=True)
    return out


def _archives(root: Path, files: dict[str, Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    out["models.tar.gz"] = root / "models.tar.gz"
    with tarfile.open(out["models.tar.gz"], "w:gz") as tf:
        tf.add(files["state_dict.pt"], arcname="model/state_dict.pt")
        tf.add(files["array.npy"], arcname="model/array.npy")
        data = b'{"model_type": "mlp"}'
        ti = tarfile.TarInfo("model/config.json")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    out["models.zip"] = root / "models.zip"
    with zipfile.ZipFile(out["models.zip"], "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(files["whole_module.pth"], "whole_module.pth")
        zf.write(files["forest.gzip.joblib"], "forest.joblib")
        zf.write(files["arrays.npz"], "nested/arrays.npz")
    out["model.7z"] = root / "model.7z"
    import py7zr

    with py7zr.SevenZipFile(out["model.7z"], "w") as archive:
        archive.write(files["state_dict.pt"], "state_dict.pt")
    return out


@pytest.fixture(scope="session")
def legit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("legit")
    files: dict[str, Path] = {}
    files.update(_torch_files(root))
    files.update(_sklearn_files(root))
    files.update(_numpy_files(root))
    files.update(_archives(root, files))
    assert all(os.path.getsize(p) > 0 for p in files.values())
    return files
