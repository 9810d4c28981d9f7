"""TorchServe model archives in the layout torch-model-archiver writes: a deflated zip with the
serialized model, the model file and the handler at its root, and `MAR-INF/MANIFEST.json`
(`runtime`, `model` with `modelName`, `serializedFile`, `handler`, `modelFile`,
`modelVersion`, then `archiverVersion`)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

MODEL_PY = """import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
"""
HOSTILE_HANDLER = """import os

from ts.torch_handler.base_handler import BaseHandler


class ModelHandler(BaseHandler):
    def initialize(self, context):
        os.system("id")
        super().initialize(context)
"""
HARMLESS_HANDLER = """from ts.torch_handler.base_handler import BaseHandler


class ModelHandler(BaseHandler):
    def preprocess(self, data):
        return data
"""

#: A handler as TorchServe's examples write one: loads the model and a label map, runs it.
ROUTINE_HANDLER = """import json
import os

import torch
from ts.torch_handler.base_handler import BaseHandler


class ModelHandler(BaseHandler):
    def initialize(self, context):
        model_dir = context.system_properties.get("model_dir")
        self.model = torch.jit.load(os.path.join(model_dir, "model.pt"))
        with open(os.path.join(model_dir, "index_to_name.json")) as f:
            self.mapping = json.load(f)
        self.initialized = True

    def preprocess(self, data):
        return torch.tensor([row.get("data") or row.get("body") for row in data])

    def inference(self, data):
        with torch.no_grad():
            return self.model(data)

    def postprocess(self, data):
        return [self.mapping.get(str(int(i)), "") for i in data.argmax(1)]
"""


def state_dict_bytes() -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(torch.nn.Linear(4, 2).state_dict(), buf)
    return buf.getvalue()


def manifest(
    name: str,
    handler: str,
    serialized: str,
    model_file: str | None,
    requirements: str | None = None,
) -> str:
    """`requirements` is `--requirements-file`'s name, which the archiver records as
    `model.requirementsFile`."""
    model = {"modelName": name, "serializedFile": serialized, "handler": handler}
    if model_file:
        model["modelFile"] = model_file
    if requirements:
        model["requirementsFile"] = requirements
    model["modelVersion"] = "1.0"
    doc = {
        "createdOn": "07/12/2026 12:00:00",
        "runtime": "python",
        "model": model,
        "archiverVersion": "0.12.0",
    }
    return json.dumps(doc, indent=2)


def write_mar(
    path: Path,
    handler: str,
    files: dict[str, bytes | str],
    serialized: str = "model.pt",
    model_file: str | None = "model.py",
    requirements: str | None = None,
) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
        text = manifest(path.stem, handler, serialized, model_file, requirements)
        z.writestr("MAR-INF/MANIFEST.json", text)
    return path


def write_folder(
    root: Path,
    handler: str,
    files: dict[str, bytes | str],
    serialized: str = "model.pt",
    requirements: str | None = None,
) -> Path:
    """The `no-archive` format: the same files in a folder."""
    (root / "MAR-INF").mkdir(parents=True)
    for name, data in files.items():
        target = root / name
        if isinstance(data, str):
            target.write_text(data)
        else:
            target.write_bytes(data)
    text = manifest(root.name, handler, serialized, None, requirements)
    (root / "MAR-INF" / "MANIFEST.json").write_text(text)
    return root


def write_tgz(
    path: Path,
    handler: str,
    files: dict[str, bytes | str],
    prefix: str,
    requirements: str | None = None,
) -> Path:
    """torch-model-archiver's `tgz` format: the archive's files in a gzipped tar, under
    `prefix` (a folder named for the model, or none)."""
    text = manifest("net", handler, "model.pt", None, requirements)
    members = {**files, "MAR-INF/MANIFEST.json": text}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(prefix + name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path
