"""Doubling properties: every parser and analysis does at most about twice the work on twice
the input (size, depth or sharing), measured deterministically (calls made, memory peak, and
the characters handed to named functions: see `_work.py`), never by the clock.

Inputs share or nest structure the way an attacker would build them
(`_analysis_corpus.py`), at sizes small enough that the quadratic or exponential versions
these tests guard against still finish (and fail the assertion) in a moment.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import ScanResult
from tests.hardening import _analysis_corpus as C
from tests.hardening._work import Work, assert_doubling, measure


def _scan(path: Path) -> Callable[[], ScanResult]:
    config = ScanConfig().scanner_config()
    return lambda: dispatch.scan_path(str(path), config, explicit=True)


def _file(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _pair(
    tmp_path: Path,
    name: str,
    build: Callable[[int], bytes | str],
    n: int,
    sized: dict[str, str] | None = None,
) -> tuple[Work, Work]:
    works = []
    for size in (n, 2 * n):
        folder = tmp_path / str(size)
        folder.mkdir()
        works.append(measure(_scan(_file(folder, name, build(size))), sized))
    return works[0], works[1]


# --- pickle stream and emulation ---------------------------------------------------------


def test_pickle_shared_tuples_passed_to_a_call(tmp_path: Path) -> None:
    """os.system(DAG): the finding's rendering of the argument must not expand the DAG."""
    small, large = _pair(tmp_path, "dag.pkl", lambda n: C.pickle_dag_call(n), 10)
    assert_doubling(small, large)


def test_pickle_shared_tuples_pure_data(tmp_path: Path) -> None:
    small, large = _pair(tmp_path, "dag.pkl", lambda n: C.pickle_dag(n), 30)
    assert_doubling(small, large)


def test_pickle_payload_fetched_from_the_memo_is_scanned_once(tmp_path: Path) -> None:
    """pickle.loads(P) repeated k times on one memoised payload: scanned once, not k times."""
    small, large = _pair(
        tmp_path,
        "nest.pkl",
        lambda n: C.pickle_loads_repeated(payload=n * 1024, times=n),
        64,
        sized={"scan_blob": "data"},
    )
    assert_doubling(small, large)


def test_pickle_hash_cost_walk() -> None:
    """The pre-load walk over dict keys built from shared tuples is linear in the stream."""
    from modelaudit.scanners.pickle.hashcost import over_budget_at

    def build(n: int) -> bytes:
        return b"\x80\x04}\x94" + b"".join(C.pickle_dag(8)[2:-1] + b"Ns" for _ in range(n)) + b"."

    small = measure(lambda: over_budget_at(build(200)))
    large = measure(lambda: over_budget_at(build(400)))
    assert_doubling(small, large)


def test_pickle_many_objects(tmp_path: Path) -> None:
    import pickle

    small, large = _pair(
        tmp_path,
        "data.pkl",
        lambda n: pickle.dumps([{"a": i, "b": (i, i)} for i in range(n)], protocol=4),
        5_000,
    )
    assert_doubling(small, large)


# --- chat templates ----------------------------------------------------------------------


def test_jinja_folding_visits(tmp_path: Path) -> None:
    def template(n: int) -> str:
        body = "".join(
            f"{{% set ns.out = ns.out ~ 'part{i}' ~ message['content'] %}}" for i in range(n)
        )
        return (
            "{% set ns = namespace(out='') %}{% for message in messages %}"
            + body
            + ("{% endfor %}{{ ns.out }}")
        )

    small, large = _pair(tmp_path, "t.jinja", template, 200)
    assert_doubling(small, large)


def test_jinja_in_tokenizer_config(tmp_path: Path) -> None:
    small, large = _pair(
        tmp_path,
        "tokenizer_config.json",
        lambda n: C.tokenizer_config("".join(f"{{{{ m{i} ~ 'x' }}}}" for i in range(n))),
        300,
    )
    assert_doubling(small, large)


# --- flatbuffers -------------------------------------------------------------------------


def test_tflite_shared_tables(tmp_path: Path) -> None:
    """Subgraph and operator vectors pointing many times at one table: each table once."""
    small, large = _pair(tmp_path, "m.tflite", lambda n: C.tflite_shared(n, n, 64), 300)
    assert_doubling(small, large)


# --- YAML, JSON, Keras configs -----------------------------------------------------------


def test_yaml_anchors_and_aliases(tmp_path: Path) -> None:
    small, large = _pair(tmp_path, "c.yaml", C.yaml_laughs, 12)
    assert_doubling(small, large)


def test_yaml_many_aliases(tmp_path: Path) -> None:
    small, large = _pair(tmp_path, "c.yaml", C.yaml_alias_chain, 2000)
    assert_doubling(small, large)


def test_json_config(tmp_path: Path) -> None:
    def config(n: int) -> str:
        return json.dumps(
            {f"k{i}": {"_target_": "torch.nn.Linear", "v": [i] * 4} for i in range(n)}
        )

    small, large = _pair(tmp_path, "config.json", config, 2000)
    assert_doubling(small, large)


def test_keras_config_deep_with_long_keys(tmp_path: Path) -> None:
    """Deep configs with long keys: config paths are cut, not rebuilt in full per node."""
    from modelaudit.scanners.keras.config import KerasConfigAnalyzer

    def walk(n: int) -> Callable[[], None]:
        doc: object = {"class_name": "Dense", "config": {"name": "d", "units": [0] * (10 * n)}}
        for i in range(n):
            doc = {"k" * 400 + str(i): doc}
        return lambda: KerasConfigAnalyzer().analyze(doc)

    small = measure(walk(40), {"_walk": "where"})
    large = measure(walk(80), {"_walk": "where"})
    assert_doubling(small, large)


def test_keras_nested_models_in_h5(tmp_path: Path) -> None:
    import h5py

    def build(n: int) -> Path:
        path = tmp_path / f"m{n}.h5"
        with h5py.File(path, "w") as f:
            f.attrs["keras_version"] = "2.15.0"
            f.attrs["backend"] = "tensorflow"
            f.attrs["model_config"] = json.dumps(C.keras_wide_config(n))
        return path

    small, large = measure(_scan(build(500))), measure(_scan(build(1000)))
    assert_doubling(small, large)


# --- protobuf ----------------------------------------------------------------------------


def _onnx_nested(depth: int, name_len: int, leaves: int) -> bytes:
    from onnx import GraphProto, NodeProto, TensorProto, helper

    def graph(nodes: list[NodeProto], name: str) -> GraphProto:
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
        return helper.make_graph(nodes, name, [], [y])

    inner = graph(
        [helper.make_node("Relu", ["x"], ["y"], name=f"r{i}") for i in range(leaves)], "g"
    )
    empty = graph([], "e")
    for i in range(depth):
        node = helper.make_node(
            "If", ["c"], ["y"], name="n" * name_len + str(i), then_branch=inner, else_branch=empty
        )
        inner = graph([node], "s" * name_len)
    model = helper.make_model(inner, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def test_onnx_nested_subgraphs_with_long_names(tmp_path: Path) -> None:
    small, large = _pair(
        tmp_path,
        "m.onnx",
        lambda n: _onnx_nested(n // 10, 2000, n * 10),
        60,
        sized={"node": "where"},
    )
    assert_doubling(small, large)


# --- headers and directories -------------------------------------------------------------


def test_gguf_key_values(tmp_path: Path) -> None:
    import gguf

    def build(n: int) -> Path:
        path = tmp_path / f"m{n}.gguf"
        writer = gguf.GGUFWriter(str(path), "llama")
        for i in range(n):
            writer.add_string(f"custom.key{i}", "v" * 16)
        writer.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(n)])
        writer.add_tensor("w", np.ones((4, 8), np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path

    small, large = measure(_scan(build(1000))), measure(_scan(build(2000)))
    assert_doubling(small, large)


def test_safetensors_header(tmp_path: Path) -> None:
    def build(n: int) -> bytes:
        header: dict[str, object] = {"__metadata__": {f"m{i}": "x" for i in range(n)}}
        for i in range(n):
            header[f"t{i}"] = {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
        blob = json.dumps(header).encode()
        return struct.pack("<Q", len(blob)) + blob + bytes(4 * n)

    small, large = _pair(tmp_path, "m.safetensors", build, 2000)
    assert_doubling(small, large)


def test_npy_header_fields(tmp_path: Path) -> None:
    import io

    def build(n: int) -> bytes:
        dtype = np.dtype([(f"f{i}", [("a", "<i4"), ("b", "<f4")]) for i in range(n)])
        buf = io.BytesIO()
        np.save(buf, np.zeros(2, dtype=dtype))
        return buf.getvalue()

    small, large = _pair(tmp_path, "a.npy", build, 300)
    assert_doubling(small, large)


def test_zip_directory_entries(tmp_path: Path) -> None:
    def build(n: int) -> bytes:
        path = tmp_path / f"z{n}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for i in range(n):
                zf.writestr(f"d/{i}.txt", b"")
        return path.read_bytes()

    small, large = _pair(tmp_path, "a.zip", build, 500)
    assert_doubling(small, large)


def test_templates_of_one_file_share_one_folding_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of templates in one tokenizer_config.json cannot each spend a fresh budget."""
    from modelaudit.scanners.text import jinja_template

    template = (
        "{% set ns = namespace(out='') %}"
        + "".join(f"{{% set ns.out = ns.out ~ 'p{i}' %}}" for i in range(20))
        + "{{ ns.out }}"
    )
    one = jinja_template.analyse_template(template)
    assert not one.parse_error
    used = jinja_template.fold_budget()
    jinja_template.analyse_template(template, used)
    monkeypatch.setattr(jinja_template, "FOLD_BUDGET", used.used * 10)
    path = _file(
        tmp_path,
        "tokenizer_config.json",
        json.dumps({"chat_template": [{"name": f"t{i}", "template": template} for i in range(40)]}),
    )
    result = _scan(path)()
    assert result.status.value == "inconclusive", result.status_reason
    budget_findings = [i for i in result.issues if i.rule == "MA9004"]
    assert len(budget_findings) == 1 and "folding" in budget_findings[0].message


def test_templates_past_the_source_budget_are_not_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing costs time per character: a file's template text is budgeted as a whole."""
    from modelaudit.scanners.text import jinja_template

    monkeypatch.setattr(jinja_template, "SOURCE_BUDGET", 20_000)
    templates = [{"name": f"t{i}", "template": "{{ x }}" * 100} for i in range(1000)]
    path = _file(tmp_path, "tokenizer_config.json", json.dumps({"chat_template": templates}))
    parsed = measure(_scan(path), {"analyse_template": "source"})
    assert parsed.chars <= 20_000
    result = _scan(path)()
    assert result.status.value == "inconclusive"
    assert [i.rule for i in result.issues].count("MA9004") == 1
