"""Tiny valid files per sniffed format, built with the real libraries, as fuzzing seeds.

Used by tests/hardening (hypothesis) and tests/fuzz (atheris). Every builder writes only
benign content; nothing here loads what it builds.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable

Builder = Callable[[str], None]

_BENIGN = {"weights": [0.5, 1.5, -2.0], "name": "tiny", "layers": (1, 2), "ok": True}


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def pickle_bytes() -> bytes:
    return pickle.dumps(_BENIGN, protocol=4)


def _pickle(path: str) -> None:
    _write(path, pickle_bytes())


def _pickle_p2(path: str) -> None:
    _write(path, pickle.dumps(_BENIGN, protocol=2))


def _torch_zip(path: str) -> None:
    import torch

    torch.save({"w": torch.arange(4, dtype=torch.float32)}, path)


def _joblib(path: str) -> None:
    import joblib
    import numpy as np

    joblib.dump({"coef": np.arange(6, dtype=np.float64)}, path)


def _numpy(path: str) -> None:
    import numpy as np

    np.save(path, np.arange(8, dtype=np.int16))


def _npz(path: str) -> None:
    import numpy as np

    with open(path, "wb") as f:
        np.savez(f, a=np.arange(3), b=np.ones((2, 2)))


def _zip(path: str) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model/weights.pkl", pickle_bytes())
        zf.writestr("model/README.txt", "tiny model\n")


def _tar(path: str) -> None:
    with tarfile.open(path, "w") as tf:
        data = pickle_bytes()
        info = tarfile.TarInfo("model/weights.pkl")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def _compressed(compress: Callable[[bytes], bytes]) -> Builder:
    def build(path: str) -> None:
        _write(path, compress(pickle_bytes()))

    return build


def _lz4(path: str) -> None:
    import lz4.frame

    _write(path, lz4.frame.compress(pickle_bytes()))


def _sevenzip(path: str) -> None:
    import py7zr

    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(pickle_bytes(), "weights.pkl")


def _hdf5(path: str) -> None:
    import h5py
    import numpy as np

    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "3.0.0"
        group = f.create_group("layer0")
        group.create_dataset("kernel", data=np.ones((2, 2), dtype=np.float32))


def _safetensors(path: str) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.arange(4, dtype=np.float32)}, path, metadata={"format": "np"})


def _gguf(path: str) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_string("general.name", "tiny")
    writer.add_uint32("llama.context_length", 16)
    # 32 bytes of data: the file ends with the tensor, not with alignment padding.
    writer.add_tensor("w", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _ggml(path: str) -> None:
    # Legacy llama.cpp "ggjt" v3 header: magic, version, then hyperparameters.
    _write(path, b"tjgg" + struct.pack("<I7i", 3, 32, 8, 1, 2, 1, 2, 1) + b"\x00" * 32)


def _tflite(path: str) -> None:
    # Root table offset, then the TFL3 file identifier: a minimal flatbuffer prefix.
    _write(path, struct.pack("<I", 12) + b"TFL3" + b"\x00" * 4 + struct.pack("<I", 3) * 4)


def _onnx(path: str) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, producer_name="tests"), path)


def _tf_pb(path: str) -> None:
    # GraphDef { node { name: "c" op: "Const" } } in protobuf wire format.
    node = b"\x0a\x01c" + b"\x12\x05Const"
    _write(path, b"\x0a" + bytes([len(node)]) + node)


def _json(path: str) -> None:
    _write(path, json.dumps({"architectures": ["TinyModel"], "hidden_size": 8}).encode())


def _yaml(path: str) -> None:
    _write(path, b"model:\n  name: tiny\n  layers: [1, 2]\n  lr: 0.01\n")


def _pmml(path: str) -> None:
    _write(
        path,
        b'<?xml version="1.0"?>\n<PMML version="4.4" xmlns="http://www.dmg.org/PMML-4_4">'
        b'<Header description="tiny"/><DataDictionary numberOfFields="1">'
        b'<DataField name="x" optype="continuous" dataType="double"/></DataDictionary></PMML>',
    )


def _msgpack(path: str) -> None:
    import msgpack

    _write(path, msgpack.packb({"name": "tiny", "w": [1, 2, 3]}))


def _keras_zip(path: str) -> None:
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "seq",
            "layers": [{"module": "keras.layers", "class_name": "Dense", "config": {"units": 2}}],
        },
    }
    meta = {"keras_version": "3.0.0", "date_saved": "2024-01-01@00:00:00"}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps(meta))
        zf.writestr("model.weights.h5", b"")


def _dvc(path: str) -> None:
    _write(path, b"outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 10\n  path: model.pkl\n")


#: file name -> builder; the name's extension is part of the seed (routing uses it).
SEEDS: dict[str, Builder] = {
    "model.pkl": _pickle,
    "model_p2.pkl": _pickle_p2,
    "model.pt": _torch_zip,
    "model.joblib": _joblib,
    "array.npy": _numpy,
    "arrays.npz": _npz,
    "bundle.zip": _zip,
    "bundle.tar": _tar,
    "model.pkl.gz": _compressed(gzip.compress),
    "model.pkl.bz2": _compressed(bz2.compress),
    "model.pkl.xz": _compressed(lzma.compress),
    "model.pkl.lzma": _compressed(lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE)),
    "model.pkl.lz4": _lz4,
    "model.pkl.zlib": _compressed(zlib.compress),
    "bundle.7z": _sevenzip,
    "model.h5": _hdf5,
    "model.safetensors": _safetensors,
    "model.gguf": _gguf,
    "model.ggml": _ggml,
    "model.tflite": _tflite,
    "model.onnx": _onnx,
    "graph.pb": _tf_pb,
    "config.json": _json,
    "params.yaml": _yaml,
    "model.pmml": _pmml,
    "model.msgpack": _msgpack,
    "model.keras": _keras_zip,
    "model.dvc": _dvc,
}


def build_seeds(folder: str) -> dict[str, str]:
    """Write every seed into `folder`; returns name -> path (builders that fail are left out)."""
    os.makedirs(folder, exist_ok=True)
    paths: dict[str, str] = {}
    for name, build in SEEDS.items():
        path = os.path.join(folder, name)
        build(path)
        paths[name] = path
    return paths
