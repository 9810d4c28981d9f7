"""Build Keras 3 files holding a TorchModuleWrapper layer; run as a subprocess by conftest
with KERAS_BACKEND=torch (the backend is fixed when Keras is imported)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import sys
import zipfile

os.environ["KERAS_BACKEND"] = "torch"

import h5py
import keras
import torch


class _Planted:
    """Pickles as a call to os.system; only pickled here, never loaded."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo modelaudit-never-run",))


def _evil_module_b64() -> str:
    buffer = io.BytesIO()
    torch.save({"module": _Planted()}, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plant(config: dict[str, object], payload: str) -> None:
    for layer in config["config"]["layers"]:  # type: ignore[index]
        if layer["class_name"] == "TorchModuleWrapper":
            layer["config"]["module"] = payload


def main(out: str) -> None:
    inputs = keras.Input(shape=(4,), name="features")
    wrapped = keras.layers.TorchModuleWrapper(
        torch.nn.Linear(4, 2), name="torch_linear", output_shape=(None, 2)
    )
    model = keras.Model(inputs, wrapped(inputs), name="torch_wrapped")
    legit = os.path.join(out, "torch_wrapper.keras")
    model.save(legit)
    legit_h5 = os.path.join(out, "torch_wrapper.h5")
    model.save(legit_h5)

    payload = _evil_module_b64()
    evil = os.path.join(out, "torch_wrapper_evil.keras")
    with zipfile.ZipFile(legit) as zin, zipfile.ZipFile(evil, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                _plant(config, payload)
                data = json.dumps(config).encode()
            zout.writestr(item, data)
    evil_h5 = os.path.join(out, "torch_wrapper_evil.h5")
    shutil.copy(legit_h5, evil_h5)
    with h5py.File(evil_h5, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        _plant(config, payload)
        f.attrs["model_config"] = json.dumps(config)


if __name__ == "__main__":
    main(sys.argv[1])
