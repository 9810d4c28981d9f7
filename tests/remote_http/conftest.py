from __future__ import annotations

import io
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.remote_http._remote_http_servers import (
    BIG_EVIL_PICKLE,
    CDN,
    EVIL_PICKLE,
    Blob,
    FakeArtifactory,
    FakeHub,
    Repo,
    Server,
)

_CREDENTIAL_ENV = (
    "HF_TOKEN",
    "HF_ENDPOINT",
    "HUGGING_FACE_HUB_TOKEN",
    "JFROG_URL",
    "JFROG_API_TOKEN",
    "JFROG_ACCESS_TOKEN",
)


def _onnx_model() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.zeros((512, 512), np.float32), name=f"w{i}") for i in range(4)
    ]
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [512, 512])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [512, 512])
    node = helper.make_node("Add", ["x", "w0"], ["y"], name="add")
    graph = helper.make_graph([node], "g", [value], [out], initializer=inits)
    return bytes(helper.make_model(graph).SerializeToString())


def _gguf_model() -> bytes:
    import tempfile

    import gguf

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.gguf")
        writer = gguf.GGUFWriter(path, "llama")
        writer.add_token_list([f"tok{i}" for i in range(2000)])
        # (past the 4 MiB a GGUF's first read takes: formats.format.head_read)
        writer.add_tensor("w", np.zeros((3072, 1024), dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(path, "rb") as f:
            return f.read()


def _zip64_torch_like() -> bytes:
    """A PyTorch-layout zip with zip64 end records (forced by lowering zipfile's limit)."""
    saved = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 1000  # type: ignore[misc]
    try:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("archive/data.pkl", EVIL_PICKLE)
            zf.writestr("archive/version", "3")
            zf.writestr("archive/data/0", bytes(3_000_000))
            zf.writestr("archive/data/1", bytes(3_000_000))
    finally:
        zipfile.ZIP64_LIMIT = saved  # type: ignore[misc]
    data = buf.getvalue()
    assert b"PK\x06\x06" in data[-200:]
    return data


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def _fresh_links() -> Iterator[None]:
    """Each test measures its servers afresh (the planner keeps figures per endpoint)."""
    from modelaudit.engine import link

    link.forget()
    yield
    link.forget()


@pytest.fixture(scope="session")
def samples() -> dict[str, bytes]:
    """Models built with the real libraries (or as bytes), once per session."""
    import torch
    from safetensors.numpy import save

    big = save({"weight": np.zeros((1024, 1024), np.float32), "bias": np.ones(16, np.float32)})
    small = save({"weight": np.arange(16, dtype=np.float32)})
    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(512, 1024), "bias": torch.ones(8)}, buf)
    torch_zip = buf.getvalue()
    evil = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(torch_zip)) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = EVIL_PICKLE if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_STORED)
    hidden = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(torch_zip)) as src, zipfile.ZipFile(hidden, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_STORED)
        folder = info.filename.split("/", 1)[0]
        dst.writestr(f"{folder}/extra/data/0", EVIL_PICKLE, compress_type=zipfile.ZIP_STORED)
    return {
        "hidden_torch_zip": hidden.getvalue(),
        "zip64": _zip64_torch_like(),
        "onnx": _onnx_model(),
        "gguf": _gguf_model(),
        "npy": _npy(np.zeros((512, 512), np.float32)),
        "object_npy": _npy(np.array([{"a": 1}, [2, 3]] * 20000, dtype=object)),
        "random": np.random.default_rng(0).bytes(1 << 20),
        "big_safetensors": big,
        "small_safetensors": small,
        "torch_zip": torch_zip,
        "evil_torch_zip": evil.getvalue(),
        "evil_pickle": EVIL_PICKLE,
        "config": b'{"model_type": "bert", "architectures": ["BertModel"]}',
    }


@pytest.fixture(scope="session")
def cdn() -> Iterator[CDN]:
    server = CDN()
    yield server
    server.server.stop()


@pytest.fixture(scope="session")
def hub_server(cdn: CDN, samples: dict[str, bytes]) -> Iterator[FakeHub]:
    hub = FakeHub(cdn)
    hub.add(
        "acme/clean",
        Repo(
            {
                "README.md": b"# clean model\n",
                "config.json": samples["config"],
                "model.safetensors": samples["big_safetensors"],
                "sub/weights.safetensors": samples["small_safetensors"],
            }
        ),
    )
    hub.add(
        "acme/evil",
        Repo(
            {
                "model.pkl": samples["evil_pickle"],
                "pytorch_model.bin": samples["evil_torch_zip"],
                "model.safetensors": samples["small_safetensors"],
            }
        ),
    )
    hub.add("acme/private", Repo({"model.pkl": samples["evil_pickle"]}, private=True))
    hub.add("acme/gated", Repo({"model.safetensors": samples["small_safetensors"]}, gated=True))
    hub.add(
        "acme/assets", Repo({"blob.dat": samples["random"], "model.pkl": samples["evil_pickle"]})
    )
    hub.add("acme/torch", Repo({"pytorch_model.bin": samples["torch_zip"]}))
    hub.add("acme/data", Repo({"train/data.pkl": samples["evil_pickle"]}, kind="dataset"))
    hub.add("bert-base-uncased", Repo({"model.safetensors": samples["small_safetensors"]}))
    yield hub
    hub.server.stop()


def _reset_blobs(blobs: Any) -> None:
    for blob in blobs:
        blob.change_after = None
        blob.served = 0


@pytest.fixture
def hub(hub_server: FakeHub, cdn: CDN, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The fake Hub as HF_ENDPOINT, no token, fresh request logs and no faults."""
    for name in _CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub_server.server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    hub_server.server.reset()
    cdn.server.reset()
    yield hub_server
    cdn.honour_range = True
    cdn.revoked.clear()
    hub_server.bare_401 = False
    hub_server.cdn_ttl = 3600
    hub_server.signed.clear()
    cdn.faults.plan.clear()
    hub_server.faults.plan.clear()
    _reset_blobs(hub_server.blobs.values())


@pytest.fixture
def artifactory(
    samples: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeArtifactory]:
    for name in _CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    art = FakeArtifactory()
    art.add(
        "models",
        {
            "evil/model.pkl": samples["evil_pickle"],
            "clean/model.safetensors": samples["big_safetensors"],
            "clean/nested/small.safetensors": samples["small_safetensors"],
        },
    )
    art.add("private-models", {"team/model.pkl": samples["evil_pickle"]}, private=True)
    yield art
    art.server.stop()


@pytest.fixture
def files_server(
    samples: dict[str, bytes],
) -> Iterator[tuple[Server, dict[str, Blob], dict[str, Any]]]:
    """A plain web server: /NAME serves blobs[NAME]; `opts` switches Range off, adds faults
    and delays."""
    from tests.remote_http._remote_http_servers import Faults, serve_blob

    blobs = {
        "evil.pkl": Blob(samples["evil_pickle"]),
        "big_evil.pkl": Blob(BIG_EVIL_PICKLE),
        "model.safetensors": Blob(samples["big_safetensors"]),
        "pytorch_model.bin": Blob(samples["torch_zip"]),
        "evil_model.bin": Blob(samples["evil_torch_zip"]),
        "model.onnx": Blob(samples["onnx"]),
        "hidden.bin": Blob(samples["hidden_torch_zip"]),
        "zip64.pt": Blob(samples["zip64"]),
        "model.gguf": Blob(samples["gguf"]),
        "weights.npy": Blob(samples["npy"]),
        "objects.npy": Blob(samples["object_npy"]),
    }
    opts: dict[str, Any] = {
        "range": True,
        "faults": Faults(),
        "head": True,
        "cut": {},
        "delay": 0.0,
        "active": 0,
        "peak": 0,
        "objects": {},
        "peak_objects": 0,
        # bytes per second an endpoint that reads the whole object for every GET, ranged
        # or not, one GET at a time (as moto does), reads before it answers
        "whole_read": 0.0,
        # the same for GETs of part of the object only: a GET of all of it answers at once
        # (an endpoint whose stream's quick answer says nothing of what a ranged read costs)
        "ranged_whole_read": 0.0,
    }
    lock = threading.Lock()
    reading = threading.Lock()

    def route(h: Any) -> tuple[int, dict[str, str], bytes]:
        fault = opts["faults"].take(h.path)
        if fault:
            return fault  # type: ignore[no-any-return]
        if h.command == "GET" and opts["delay"]:
            # Two GETs inside this pause were both sent before either was answered.
            name = h.path.lstrip("/").split("?", 1)[0]
            with lock:
                opts["active"] += 1
                opts["peak"] = max(opts["peak"], opts["active"])
                objects = opts["objects"]
                objects[name] = objects.get(name, 0) + 1
                opts["peak_objects"] = max(opts["peak_objects"], len(objects))
            time.sleep(opts["delay"])
            with lock:
                opts["active"] -= 1
                objects[name] -= 1
                if not objects[name]:
                    del objects[name]
        if h.command == "HEAD" and opts["head"] is not True:
            return int(opts["head"] or 405), {}, b""
        blob = blobs.get(h.path.lstrip("/").split("?", 1)[0])
        if blob is None:
            return 404, {}, b"not found"
        if h.command == "GET" and opts["whole_read"]:
            with reading:
                time.sleep(len(blob.data) / opts["whole_read"])
        status, headers, body = serve_blob(h, blob, opts["range"])
        if h.command == "GET" and opts["ranged_whole_read"] and len(body) < len(blob.data):
            with reading:
                time.sleep(len(blob.data) / opts["ranged_whole_read"])
        cuts = opts["cut"].get(h.path.lstrip("/"))
        if cuts and h.command == "GET" and len(body) > cuts[0]:
            # A connection that breaks `cuts[0]` bytes into this body.
            headers["X-Test-Cut"] = str(cuts.pop(0))
        return status, headers, body

    server = Server(route)
    yield server, blobs, opts
    server.stop()


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry pauses drawn from a 10 ms base instead of 250 ms (the same count of attempts,
    the same jitter), for tests of what a failure that outlasts the retries becomes, not of
    their pacing: four pauses of up to 0.25-2 s each were most of their time."""
    from modelaudit.fetchers import backoff

    monkeypatch.setattr(backoff, "BASE_DELAY", 0.01)
