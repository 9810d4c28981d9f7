"""Malicious model files across formats whose payload would create a sentinel file if loaded.

Each builder writes bytes only (pickle.dumps, torch.save and friends pickle a `__reduce__`
payload without running it). Used by the hardening sentinel test.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import marshal
import os
import pickle
import tarfile
import zipfile
from collections.abc import Callable
from typing import Any


class SystemPayload:
    def __init__(self, sentinel: str) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.sentinel}",))


class ExecPayload:
    def __init__(self, sentinel: str) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({self.sentinel!r}, 'w').close()",))


def _pickled(sentinel: str, protocol: int = 4) -> bytes:
    return pickle.dumps({"weights": [1.0], "hook": SystemPayload(sentinel)}, protocol=protocol)


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _torch(path: str, sentinel: str, legacy: bool = False) -> None:
    import torch

    torch.save(
        {"w": torch.zeros(2), "x": SystemPayload(sentinel)},
        path,
        _use_new_zipfile_serialization=not legacy,
    )


def _joblib(path: str, sentinel: str, compress: int = 0) -> None:
    import joblib
    import numpy as np

    joblib.dump({"coef": np.ones(3), "x": ExecPayload(sentinel)}, path, compress=compress)


def _dill(path: str, sentinel: str) -> None:
    import dill

    _write(path, dill.dumps({"x": SystemPayload(sentinel)}))


def _npy(path: str, sentinel: str) -> None:
    import numpy as np

    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = SystemPayload(sentinel), 1
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=True)


def _npz(path: str, sentinel: str) -> None:
    import numpy as np

    arr = np.empty(1, dtype=object)
    arr[0] = ExecPayload(sentinel)
    with open(path, "wb") as f:
        np.savez(f, ok=np.ones(2), bad=arr)


def _zip(path: str, sentinel: str) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("deep/model.pkl", _pickled(sentinel))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", "hello")
        zf.writestr("model.pkl", _pickled(sentinel, 2))
        zf.writestr("nested.zip", inner.getvalue())


def _tar(path: str, sentinel: str) -> None:
    data = _pickled(sentinel)
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("model/model.pkl")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def _sevenzip(path: str, sentinel: str) -> None:
    import py7zr

    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(_pickled(sentinel), "model.pkl")


def _yaml(path: str, sentinel: str) -> None:
    _write(path, f'model: !!python/object/apply:os.system ["touch {sentinel}"]\n'.encode())


def _lambda_config(sentinel: str) -> dict[str, Any]:
    code = compile(f"open({sentinel!r}, 'w').close()", "<lambda>", "exec")
    blob = base64.b64encode(marshal.dumps(code)).decode()
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "seq",
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "Lambda",
                    "config": {
                        "name": "evil",
                        "function": {
                            "class_name": "__lambda__",
                            "config": {"code": blob, "defaults": None, "closure": None},
                        },
                    },
                }
            ],
        },
    }


def _keras_zip(path: str, sentinel: str) -> None:
    import h5py

    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        f.create_group("layers")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(_lambda_config(sentinel)))
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        zf.writestr("model.weights.h5", weights.getvalue())


def _keras_h5(path: str, sentinel: str) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(_lambda_config(sentinel))
        f.attrs["keras_version"] = "2.15.0"
        f.create_group("model_weights")


def _ssti(sentinel: str) -> str:
    return (
        "{% for m in messages %}{{ m.content }}{% endfor %}"
        f"{{{{ cycler.__init__.__globals__.os.popen('touch {sentinel}').read() }}}}"
    )


def _tokenizer_config(path: str, sentinel: str) -> None:
    _write(path, json.dumps({"chat_template": _ssti(sentinel), "eos_token": "</s>"}).encode())


def _gguf_template(path: str, sentinel: str) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_string("tokenizer.chat_template", _ssti(sentinel))
    writer.add_tensor("w", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _compressed(compress: Callable[[bytes], bytes]) -> Callable[[str, str], None]:
    def build(path: str, sentinel: str) -> None:
        _write(path, compress(_pickled(sentinel)))

    return build


def _lz4(path: str, sentinel: str) -> None:
    import lz4.frame

    _write(path, lz4.frame.compress(_pickled(sentinel)))


BUILDERS: dict[str, Callable[[str, str], None]] = {
    "p0.pkl": lambda p, s: _write(p, _pickled(s, 0)),
    "p2.pkl": lambda p, s: _write(p, _pickled(s, 2)),
    "p5.pickle": lambda p, s: _write(p, _pickled(s, 5)),
    "exec.bin": lambda p, s: _write(p, pickle.dumps(ExecPayload(s), protocol=4)),
    "model.pt": _torch,
    "legacy.pt": lambda p, s: _torch(p, s, legacy=True),
    "model.joblib": _joblib,
    "compressed.joblib": lambda p, s: _joblib(p, s, compress=3),
    "model.dill": _dill,
    "objects.npy": _npy,
    "objects.npz": _npz,
    "bundle.zip": _zip,
    "bundle.tar.gz": _tar,
    "bundle.7z": _sevenzip,
    "model.pkl.gz": _compressed(gzip.compress),
    "model.pkl.xz": _compressed(lzma.compress),
    "model.pkl.bz2": _compressed(bz2.compress),
    "model.pkl.lz4": _lz4,
    "config.yaml": _yaml,
    "lambda.keras": _keras_zip,
    "lambda.h5": _keras_h5,
    "tokenizer_config.json": _tokenizer_config,
    "template.gguf": _gguf_template,
}


def build_corpus(folder: str, sentinel_dir: str) -> dict[str, str]:
    """name -> path; each file's payload would create `sentinel_dir/<name>`."""
    os.makedirs(folder, exist_ok=True)
    out = {}
    for name, build in BUILDERS.items():
        path = os.path.join(folder, name)
        build(path, os.path.join(sentinel_dir, name))
        out[name] = path
    return out
