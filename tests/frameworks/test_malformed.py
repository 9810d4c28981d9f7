"""Damaged copies of legitimate files never make a framework scanner fail or report clean by
mistake: each ends complete (the damage was harmless) or inconclusive, never in error."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelaudit.findings import FileStatus
from tests.frameworks._frameworks_helpers import scan

MUTATIONS = 40


def _onnx(folder: Path) -> Path:
    w = numpy_helper.from_array(np.ones((8, 8), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [w],
    )
    path = folder / "m.onnx"
    onnx.save(helper.make_model(graph), path)
    return path


def _mutate(data: bytes, rng: random.Random) -> bytes:
    d = bytearray(data)
    kind = rng.randrange(4)
    pos = rng.randrange(len(d))
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            d[rng.randrange(len(d))] = rng.randrange(256)
    elif kind == 1:
        del d[pos:]
    elif kind == 2:
        d[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
        del d[pos : pos + rng.randint(1, 64)]
    return bytes(d)


@pytest.mark.parametrize(
    "source",
    ["onnx", "legit.tflite", "legit_savedmodel/saved_model.pb", "legit_keras3.h5", "legit.keras"],
)
def test_mutations_end_complete_or_inconclusive(
    tf_models: Path, tmp_path: Path, source: str
) -> None:
    original = _onnx(tmp_path) if source == "onnx" else tf_models / source
    data = original.read_bytes()
    rng = random.Random(source)
    target = tmp_path / "mut" / original.name
    target.parent.mkdir()
    statuses = set()
    for _ in range(MUTATIONS):
        target.write_bytes(_mutate(data, rng))
        result = scan(target)
        assert result.status is not FileStatus.ERROR, result.status_reason
        statuses.add(result.status)
    assert FileStatus.INCONCLUSIVE in statuses
    shutil.rmtree(target.parent)
