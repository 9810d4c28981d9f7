"""The range planner and the scanners read the same bytes the same way (one parser per format).

Each object is planned over HTTP from a loopback server; every byte the planner did not fetch
is then overwritten with junk, and the junk-filled copy must scan exactly like the real file.
Had a scanner read one byte the planner skipped, it would have read junk there instead.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelaudit
from modelaudit.engine.range_plan import plan
from modelaudit.engine.spool import Spool
from modelaudit.fetchers import resolve
from modelaudit.formats import Format, sniff_head
from modelaudit.formats.zipdir import read_directory
from modelaudit.report import FileReport
from modelaudit.rules import frameworks as R
from tests.frameworks.test_keras_zip_reading import keras_two_directories
from tests.remote_http._remote_http_servers import (
    BIG_EVIL_PICKLE,
    EVIL_PICKLE,
    Blob,
    Server,
    pin_slow_link,
)

Files = tuple[Server, dict[str, Blob], dict[str, Any]]
JUNK = b"\xa5\x5a"


#: TorchScript source and mobile bytecode whose program writes a file (past the tensors).
TS_SOURCE = b"def __setstate__(self, state: str):\n    t = torch.from_file(state, True, 4)\n"
TS_BYTECODE = pickle.dumps((6, ("__torch__.M.forward", (("operators", (("aten::save", "", 2),)),))))


def _torch_zip(extra: list[tuple[str, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(300_000), "b": torch.ones(300_000)}, buf)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_STORED)
        folder = src.infolist()[0].filename.split("/", 1)[0]
        for name, data in extra:
            dst.writestr(f"{folder}/{name}", data, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def _duplicate_entries() -> bytes:
    """A second data.pkl between two large storages, far from the head and the tail, where
    only a planner that reads duplicates as the scanner does fetches it."""
    import warnings

    data = _torch_zip()
    out = io.BytesIO()
    with (
        warnings.catch_warnings(),
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w") as dst,
    ):
        warnings.simplefilter("ignore")
        infos = src.infolist()
        folder = infos[0].filename.split("/", 1)[0]
        storages = [i for i in infos if "/data/" in i.filename]
        dst.writestr(storages[0].filename, src.read(storages[0]))
        dst.writestr(f"{folder}/data.pkl", EVIL_PICKLE)
        for info in [*storages[1:], *(i for i in infos if i not in storages)]:
            dst.writestr(info.filename, src.read(info))
    return out.getvalue()


def _zip64_middle() -> bytes:
    """Zip64 end records and zip64 extra fields (forced by lowering zipfile's limit), with a
    pickle record between the storages whose offset only the zip64 extra field holds."""
    saved = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 1000  # type: ignore[misc]
    try:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
            zf.writestr("archive/version", "3")
            zf.writestr("archive/data/0", bytes(3_000_000))
            zf.writestr("archive/extra/state.pkl", BIG_EVIL_PICKLE)
            zf.writestr("archive/data/1", bytes(3_000_000))
    finally:
        zipfile.ZIP64_LIMIT = saved  # type: ignore[misc]
    return buf.getvalue()


def _record_between_tensors() -> bytes:
    """A pickle record far from both ends, between two large storages."""
    data = _torch_zip()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        infos = src.infolist()
        folder = infos[0].filename.split("/", 1)[0]
        storages = [i for i in infos if "/data/" in i.filename]
        for info in storages[:1]:
            dst.writestr(info.filename, src.read(info))
        dst.writestr(f"{folder}/extra/state.pkl", BIG_EVIL_PICKLE)
        for info in [*storages[1:], *(i for i in infos if i not in storages)]:
            dst.writestr(info.filename, src.read(info))
    return out.getvalue()


def _deflated_members() -> bytes:
    data = _torch_zip()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            method = zipfile.ZIP_DEFLATED if info.filename.endswith(".pkl") else 0
            dst.writestr(info.filename, src.read(info), compress_type=method)
    return out.getvalue()


def _safetensors_with_zip() -> bytes:
    from safetensors.numpy import save

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("archive/data.pkl", EVIL_PICKLE)
    return save({"w": np.zeros(200_000, np.float32)}) + inner.getvalue()


def _safetensors_with_pickle() -> bytes:
    from safetensors.numpy import save

    return save({"w": np.zeros(200_000, np.float32)}) + EVIL_PICKLE


def _encrypted_flag_data_pkl() -> bytes:
    """data.pkl flagged encrypted but stored in the clear: torch's miniz reads it."""
    data = bytearray(_torch_zip())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("data.pkl"))
        local, name = info.header_offset, info.filename.encode()
    data[local + 6] |= 0x1
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) >= 0:
        if data[pos + 46 : pos + 46 + len(name)] == name:
            data[pos + 8] |= 0x1
        pos += 4
    return bytes(data)


def _gguf_with_template() -> bytes:
    import tempfile

    import gguf

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.gguf")
        writer = gguf.GGUFWriter(path, "llama")
        writer.add_token_list([f"tok{i}" for i in range(30_000)])
        writer.add_chat_template("{{ ''.__class__.__mro__[1].__subclasses__() }}")
        # (tensors past the 4 MiB a GGUF's first read takes: formats.format.head_read)
        for i in range(4):
            writer.add_tensor(f"w{i}", np.zeros((1024, 1024), dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return Path(path).read_bytes()


def _onnx_many_tensors() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.zeros((64, 1024), np.float32), name=f"w{i}") for i in range(40)
    ]
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 1024])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 1024])
    nodes = [helper.make_node("Add", ["x", "w0"], ["y"], name="add")]
    nodes.append(helper.make_node("PyOp", ["x"], ["z"], name="py", domain="ai.onnx.contrib"))
    graph = helper.make_graph(nodes, "g", [value], [out], initializer=inits)
    return bytes(helper.make_model(graph).SerializeToString())


def _unreferenced_record() -> bytes:
    """A storage record data.pkl never names, holding a pickle (MA2013)."""
    return _torch_zip([("data/99", BIG_EVIL_PICKLE)])


def _unreferenced_deflated() -> bytes:
    data = _torch_zip()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            method = zipfile.ZIP_DEFLATED if info.filename.endswith(".pkl") else 0
            dst.writestr(info.filename, src.read(info), compress_type=method)
        folder = src.infolist()[0].filename.split("/", 1)[0]
        dst.writestr(f"{folder}/data/7", BIG_EVIL_PICKLE, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _arrow(kind: str) -> bytes:
    """4 MB of rows under a schema whose field pyarrow < 14.0.1 unpickles (CVE-2023-47248):
    the schema is at the head (IPC), the tail (Parquet) or both (IPC file)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    meta = {
        b"ARROW:extension:name": b"arrow.py_extension_type",
        b"ARROW:extension:metadata": EVIL_PICKLE,
    }
    rows = np.random.default_rng(0).integers(0, 2**62, 500_000)
    table = pa.table([pa.array(rows)], schema=pa.schema([pa.field("x", pa.int64(), metadata=meta)]))
    buf = io.BytesIO()
    if kind == "parquet":
        pq.write_table(table, buf, compression="none")
    else:
        with (ipc.new_file if kind == "file" else ipc.new_stream)(buf, table.schema) as w:
            w.write_table(table)
    return buf.getvalue()


SAMPLES = {
    "zip64.pt": lambda samples: samples["zip64"],
    "zip64-middle.pt": lambda samples: _zip64_middle(),
    "prepended-checkpoint": lambda samples: b"\x00junk before the zip" * 20_000 + _torch_zip(),
    "duplicates.pt": lambda samples: _duplicate_entries(),
    "deflated.pt": lambda samples: _deflated_members(),
    "middle.pt": lambda samples: _record_between_tensors(),
    "hidden.bin": lambda samples: samples["hidden_torch_zip"],
    "model.gguf": lambda samples: _gguf_with_template(),
    "model.onnx": lambda samples: _onnx_many_tensors(),
    "weights.npy": lambda samples: _npy(np.arange(400_000, dtype=np.float64)),
    "model.safetensors": lambda samples: samples["big_safetensors"],
    "polyglot.safetensors": lambda samples: _safetensors_with_zip(),
    "trailing.safetensors": lambda samples: _safetensors_with_pickle(),
    "encrypted-flag.pt": lambda samples: _encrypted_flag_data_pkl(),
    "unreferenced.pt": lambda samples: _unreferenced_record(),
    "unreferenced-deflated.pt": lambda samples: _unreferenced_deflated(),
    "trailing.gguf": lambda samples: _gguf_with_template() + BIG_EVIL_PICKLE,
    "trailing-big.safetensors": lambda samples: (
        samples["big_safetensors"] + b"\x7fELF" + bytes(60) + b"\x02\x00\x3e\x00" + bytes(9000)
    ),
    "trailing.pt": lambda samples: _torch_zip() + EVIL_PICKLE,
    "torchscript-source.pt": lambda samples: _torch_zip([("code/__torch__.py", TS_SOURCE)]),
    "torchscript-bytecode.pt": lambda samples: _torch_zip([("bytecode.pkl", TS_BYTECODE)]),
    "train.parquet": lambda samples: _arrow("parquet"),
    "train.feather": lambda samples: _arrow("file"),
    "data-00000-of-00001.arrow": lambda samples: _arrow("stream"),
}

#: Samples whose finding lies beyond every header: a planner that skipped it would miss it.
BEYOND_HEADERS = {
    "unreferenced.pt": "MA2013",
    "unreferenced-deflated.pt": "MA2013",
    "trailing.gguf": "MA2015",
    "trailing.safetensors": "MA2015",
    "trailing-big.safetensors": "MA2015",
    "trailing.pt": "MA2015",
    "torchscript-source.pt": "MA2018",
    "torchscript-bytecode.pt": "MA2018",
}


def _shape(fr: FileReport, path: str) -> tuple[Any, ...]:
    issues = sorted(
        (i.severity.value, i.rule or "", i.message, (i.location or "").replace(path, "FILE"))
        for i in fr.issues
    )
    return fr.status, fr.status_reason, fr.format, issues


@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_planner_and_scanner_read_the_same_bytes(
    files_server: Files, samples: dict[str, bytes], tmp_path: Path, name: str
) -> None:
    server, blobs, _ = files_server
    data = SAMPLES[name](samples)
    blobs[name] = Blob(data)
    pin_slow_link(server.url)
    source = resolve(f"{server.url}/{name}")
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None
    path = str(tmp_path / name)
    spool = Spool(obj.reader, path, len(data), obj.uri)
    try:
        head = await spool.read(0, 64 * 1024)
        fmt = sniff_head(head[:4096], name, len(data))
        planned = await plan(spool, fmt)
        gaps = spool.missing(0, len(data))
        moved = spool.transferred
    finally:
        spool.close()
        await obj.reader.aclose()
    if name == "polyglot.safetensors":
        assert not planned  # an appended zip is scanned whole: download it
        return
    assert planned, name
    # (a payload past the headers is fetched whole: those samples need only leave gaps)
    assert moved < len(data) // (1 if name in BEYOND_HEADERS else 2), f"{moved} of {len(data)}"
    with open(path, "r+b") as f:
        for start, end in gaps:
            f.seek(start)
            f.write((JUNK * ((end - start) // 2 + 1))[: end - start])
    whole = tmp_path / "whole" / name
    whole.parent.mkdir()
    whole.write_bytes(data)
    report = await modelaudit.scan([path, str(whole)])
    by_path = {f.path: f for f in report.files}
    from_ranges, from_file = by_path[path], by_path[str(whole)]
    assert _shape(from_ranges, path) == _shape(from_file, str(whole))
    if fmt in (Format.PARQUET, Format.ARROW_IPC):
        assert "MA4802" in {i.rule for i in from_ranges.issues}
    if name.endswith((".pt", ".bin", "checkpoint")):
        with open(path, "rb") as planned_copy, open(whole, "rb") as real:
            assert read_directory(planned_copy, len(data)) == read_directory(real, len(data))


def test_samples_are_what_they_claim(samples: dict[str, bytes]) -> None:
    """The zip samples hold the structures the parity test is about."""
    zip64 = samples["zip64"]
    assert b"PK\x06\x06" in zip64[-200:]
    duplicates = _duplicate_entries()
    with io.BytesIO(duplicates) as f:
        directory = read_directory(f, len(duplicates))
    assert len(directory.names) != len(set(directory.names))
    [first, _] = [e for e in directory.entries if e.name.endswith("/data.pkl")]
    assert 1_000_000 < first.local_offset < len(duplicates) - 1_000_000
    middle = _zip64_middle()
    assert b"PK\x06\x06" in middle[-200:]
    with io.BytesIO(middle) as f:
        [state] = [e for e in read_directory(f, len(middle)).entries if "state" in e.name]
    assert 3_000_000 < state.local_offset < len(middle) - 3_000_000
    central = middle.rfind(b"PK\x01\x02", 0, middle.rfind(b"archive/extra/state.pkl"))
    assert middle[central + 42 : central + 46] == b"\xff" * 4  # offset in the zip64 extra
    prepended = SAMPLES["prepended-checkpoint"](samples)
    with io.BytesIO(prepended) as f:
        assert read_directory(f, len(prepended)).concat > 0


@pytest.mark.parametrize("name", sorted(BEYOND_HEADERS))
async def test_remote_scan_finds_what_a_local_scan_finds(
    files_server: Files, samples: dict[str, bytes], name: str, tmp_path: Path
) -> None:
    """The whole remote path (head and tail, plan, scan of the spool) against a local scan
    of the same bytes, on findings that lie past every header."""
    server, blobs, _ = files_server
    data = SAMPLES[name](samples)
    blobs[name] = Blob(data)
    pin_slow_link(server.url)
    remote = await modelaudit.scan(f"{server.url}/{name}")
    local_path = tmp_path / name
    local_path.write_bytes(data)
    local = await modelaudit.scan(str(local_path))
    (r,), (lo,) = remote.files, local.files
    assert BEYOND_HEADERS[name] in {i.rule for i in lo.issues}
    assert _shape(r, f"{server.url}/{name}") == _shape(lo, str(local_path))
    assert server.sent() < len(data)


@pytest.fixture(scope="module")
def keras_models(tf_models: Path) -> dict[str, bytes]:
    """A model saved by real Keras (by the session's TensorFlow builder, in a subprocess: the
    test session never imports TensorFlow), and the same members behind two central
    directories."""
    saved = (tf_models / "wide_lambda.keras").read_bytes()
    with zipfile.ZipFile(io.BytesIO(saved)) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    return {
        "lambda.keras": saved,
        "two-directories.keras": keras_two_directories(members, evil_loaded=False),
    }


#: What each Keras sample must be found to hold (the second one's dangerous Lambda is in the
#: directory only miniz reads, past the first reads of head and tail).
KERAS_FINDINGS = {
    "lambda.keras": R.KERAS_LAMBDA,
    "two-directories.keras": R.KERAS_LAMBDA_DANGEROUS,
}


@pytest.mark.parametrize("name", sorted(KERAS_FINDINGS))
async def test_keras_is_declined_by_the_planner_and_scans_remotely_as_locally(
    files_server: Files, keras_models: dict[str, bytes], tmp_path: Path, name: str
) -> None:
    """The planner declines a .keras: its scanner reads every member, the weights `.h5`
    included (through h5py, which no ranged parser stands for), so the object is fetched
    whole, once; the remote scan must then find what the local scan of the same bytes finds."""
    server, blobs, _ = files_server
    data = keras_models[name]
    blobs[name] = Blob(data)
    pin_slow_link(server.url)
    url = f"{server.url}/{name}"
    source = resolve(url)
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None
    spool = Spool(obj.reader, str(tmp_path / name), len(data), obj.uri)
    try:
        head = await spool.read(0, 64 * 1024)
        fmt = sniff_head(head[:4096], name, len(data))
        planned = await plan(spool, fmt)
    finally:
        spool.close()
        await obj.reader.aclose()
    assert fmt == Format.ZIP
    assert not planned
    server.reset()
    remote = await modelaudit.scan(url)
    assert len(data) <= server.sent(name) < len(data) + 2 * 64 * 1024 + 1024
    local_path = tmp_path / "local" / name
    local_path.parent.mkdir()
    local_path.write_bytes(data)
    local = await modelaudit.scan(str(local_path))
    (r,), (lo,) = remote.files, local.files
    assert lo.format == Format.KERAS_ZIP
    assert KERAS_FINDINGS[name] in {i.rule for i in lo.issues}
    assert _shape(r, url) == _shape(lo, str(local_path))
