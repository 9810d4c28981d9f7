"""ONNX models built with onnx.helper, with and without external data, then scanned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelaudit import rules
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import frameworks as R
from tests.frameworks._frameworks_helpers import alarms, rules_at, scan, scan_without_module

CRIT = IssueSeverity.CRITICAL
WARN = IssueSeverity.WARNING


def make_model(
    extra_nodes: list[onnx.NodeProto] | None = None,
    name: str = "classifier",
    opsets: list[tuple[str, int]] | None = None,
    functions: list[onnx.FunctionProto] | None = None,
) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.random.default_rng(0).random((16, 16), np.float32), "W")
    b = numpy_helper.from_array(np.zeros(16, np.float32), "B")
    nodes = [
        helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="fc"),
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
        *(extra_nodes or []),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [w, b],
    )
    imports = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, v) for d, v in (opsets or [])]
    return helper.make_model(
        graph, producer_name="unit-test", opset_imports=imports, functions=functions or []
    )


def test_model_with_initializers_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(make_model(), path)
    result = scan(path)
    assert result.scanner_name == "onnx"
    assert result.status is FileStatus.COMPLETE
    assert alarms(result) == []
    details = result.metadata["format_details"]
    assert details["initializers"] == 2 and details["nodes"] == 2
    assert result.metadata["model_names"] == ["classifier", "unit-test"]


def test_in_folder_external_data_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save_model(
        make_model(),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (tmp_path / "weights.bin").exists()
    result = scan(path)
    assert result.metadata["format_details"]["external_tensors"] == 2
    assert alarms(result) == []


def _external(path: Path, location: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
    model = make_model()
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "1024"), *extra):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "C:\\Windows\\win.ini"])
def test_external_data_escaping_folder_is_critical(tmp_path: Path, location: str) -> None:
    path = tmp_path / "model.onnx"
    _external(path, location)
    result = scan(path)
    assert rules_at(result, CRIT) == {R.ONNX_EXTERNAL_ESCAPE}
    assert result.issues[0].details["location"] == location


#: Windows paths that leave the model's folder (ntpath's reading): drive-relative paths are
#: relative to that drive's current folder, not the model's; UNC shares and device paths.
WINDOWS_ESCAPES = [
    "C:weights.bin",
    "c:..\\weights.bin",
    "c:../weights.bin",
    "Z:",
    "\\\\?\\C:\\Windows\\win.ini",
    "//?/C:/Windows/win.ini",
    "\\\\.\\PhysicalDrive0",
    "\\\\host\\share\\weights.bin",
    "//host/share/weights.bin",
    "sub\\.. \\.. \\weights.bin",
]


@pytest.mark.parametrize("location", WINDOWS_ESCAPES)
def test_external_data_on_another_windows_drive_or_host_is_critical(
    tmp_path: Path, location: str
) -> None:
    """A file of that very name next to the model (legal on Linux) does not make it safe:
    Windows reads `C:weights.bin` from drive C's current folder."""
    folder = tmp_path / "model"
    folder.mkdir()
    if "/" not in location:
        (folder / location).write_bytes(b"\0" * 4096)
    _external(folder / "model.onnx", location)
    result = scan(folder / "model.onnx")
    assert rules_at(result, CRIT) == {R.ONNX_EXTERNAL_ESCAPE}
    assert result.issues[0].details["location"] == location


#: Names Windows opens as something other than a file of the model: reserved device names as
#: any part, with any extension, case or trailing dots and spaces (the console, a printer or
#: serial port, the null device), and NTFS alternate data streams (`name:stream`).
WINDOWS_DEVICES_AND_STREAMS = [
    "CON",
    "nul.bin",
    "Aux.tar.gz",
    "sub/COM1.data",
    "lpt9",
    "COM\u00b9.bin",
    "NUL .bin",
    "prn.",
    "conout$",
    "com0\\weights.bin",
    "weights.bin:0",
    "weights.bin:hidden:$DATA",
    "sub:stream/weights.bin",
]


@pytest.mark.parametrize("location", WINDOWS_DEVICES_AND_STREAMS)
def test_external_data_at_a_windows_device_or_stream_is_critical(
    tmp_path: Path, location: str
) -> None:
    """A file of that very name next to the model (legal on Linux) does not make it safe:
    Windows reads `nul.bin` from the null device and `weights.bin:0` from a stream of
    weights.bin no listing shows."""
    folder = tmp_path / "model"
    (folder / location).parent.mkdir(parents=True)
    (folder / location).write_bytes(b"\0" * 4096)
    _external(folder / "model.onnx", location)
    result = scan(folder / "model.onnx")
    assert rules_at(result, CRIT) == {R.ONNX_EXTERNAL_ESCAPE}
    assert result.issues[0].details["location"] == location
    assert "device or stream" in result.issues[0].message


@pytest.mark.parametrize(
    "location", ["weights.bin", "sub/weights.v1..2.bin", "console.bin", "sub/com10.bin", "nullable"]
)
def test_unusual_but_local_external_names_are_not_escapes(tmp_path: Path, location: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / location).write_bytes(b"\0" * 4096)
    _external(tmp_path / "model.onnx", location)
    assert alarms(scan(tmp_path / "model.onnx")) == []


def test_external_data_symlink_out_of_folder_is_critical(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 4096)
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(outside, folder / "weights.bin")
    _external(folder / "model.onnx", "weights.bin")
    result = scan(folder / "model.onnx")
    assert rules_at(result, CRIT) == {R.ONNX_EXTERNAL_ESCAPE}


def test_empty_location_after_an_escape_is_still_critical(tmp_path: Path) -> None:
    """ONNX Runtime skips an entry whose value is empty (`ExternalDataInfo::Create`), so a
    trailing `location=""` leaves it reading the escape before it; the onnx package's
    last-wins reading used to make the scan see only "no location given"."""
    _external(tmp_path / "model.onnx", "../../etc/passwd", (("location", ""),))
    result = scan(tmp_path / "model.onnx")
    assert rules_at(result, CRIT) == {R.ONNX_EXTERNAL_ESCAPE}
    assert result.issues[0].details["location"] == "../../etc/passwd"


def test_every_location_of_a_tensor_is_judged(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0" * 4096)
    _external(tmp_path / "model.onnx", "/etc/passwd", (("location", "weights.bin"),))
    assert rules_at(scan(tmp_path / "model.onnx"), CRIT) == {R.ONNX_EXTERNAL_ESCAPE}
    _external(tmp_path / "clean.onnx", "weights.bin", (("location", "weights.bin"),))
    assert alarms(scan(tmp_path / "clean.onnx")) == []


def test_ort_memory_address_tag_is_critical(tmp_path: Path) -> None:
    """ONNX Runtime's `*/_ORT_MEM_ADDR_/*` location makes the loader take `offset` as a
    pointer into its own memory (OpenVINO's ONNX frontend copies from it); it was reported as
    a missing file."""
    _external(tmp_path / "model.onnx", "*/_ORT_MEM_ADDR_/*", (("offset", "4096"),))
    result = scan(tmp_path / "model.onnx")
    assert rules_at(result, CRIT) == {R.ONNX_EXTERNAL_ESCAPE}
    assert "memory address" in result.issues[0].message


def test_missing_and_short_external_data_warn(tmp_path: Path) -> None:
    _external(tmp_path / "missing.onnx", "nowhere.bin")
    assert rules_at(scan(tmp_path / "missing.onnx"), WARN) == {R.ONNX_EXTERNAL_MISSING}
    (tmp_path / "short.bin").write_bytes(b"\0" * 10)
    _external(tmp_path / "short.onnx", "short.bin")
    short = scan(tmp_path / "short.onnx")
    assert rules_at(short, WARN) == {R.ONNX_EXTERNAL_MISSING}
    assert short.issues[0].details["file_size"] == 10


def test_python_operators_are_critical(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("PyOp", ["y"], ["z"], domain="ai.onnx.contrib", name="py"),
        helper.make_node("PythonOp", ["y"], ["z2"], domain="com.microsoft", name="ort_py"),
    ]
    path = tmp_path / "m.onnx"
    onnx.save(make_model(nodes, opsets=[("ai.onnx.contrib", 1), ("com.microsoft", 1)]), path)
    result = scan(path)
    assert rules_at(result, CRIT) == {R.ONNX_PYTHON_OP}
    assert sorted(i.details["node"] for i in result.issues) == ["ort_py", "py"]


def test_custom_domains_and_unknown_standard_ops(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("FusedGemm", ["y", "W", "B"], ["a"], domain="com.microsoft", name="ok"),
        helper.make_node("SecretSauce", ["y"], ["b"], domain="com.vendor", name="vendor"),
        helper.make_node("NotAnOnnxOp", ["y"], ["c"], name="bogus"),
    ]
    path = tmp_path / "m.onnx"
    onnx.save(make_model(nodes, opsets=[("com.microsoft", 1), ("com.vendor", 1)]), path)
    result = scan(path)
    flagged = {i.details["op_type"]: i.rule for i in result.issues}
    assert flagged == {"SecretSauce": R.ONNX_CUSTOM_DOMAIN, "NotAnOnnxOp": R.ONNX_UNKNOWN_OP}
    assert rules_at(result, CRIT) == set()


def test_python_op_inside_if_subgraph(tmp_path: Path) -> None:
    def branch(op: str, domain: str, out: str) -> onnx.GraphProto:
        return helper.make_graph(
            [helper.make_node(op, ["y"], [out], domain=domain, name=f"{op}_node")],
            f"branch_{op}",
            [],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 16])],
        )

    cond = helper.make_node(
        "If",
        ["flag"],
        ["z"],
        name="gate",
        then_branch=branch("PyOp", "ai.onnx.contrib", "t"),
        else_branch=branch("Identity", "", "e"),
    )
    path = tmp_path / "m.onnx"
    onnx.save(make_model([cond], opsets=[("ai.onnx.contrib", 1)]), path)
    result = scan(path)
    issue = next(i for i in result.issues if i.rule == R.ONNX_PYTHON_OP)
    assert "gate.then_branch" in issue.details["scope"]


def test_model_local_function_is_not_custom(tmp_path: Path) -> None:
    fn = helper.make_function(
        "local.fns",
        "DoubleRelu",
        ["a"],
        ["b"],
        [
            helper.make_node("Relu", ["a"], ["t"]),
            helper.make_node("Relu", ["t"], ["b"]),
        ],
        [helper.make_opsetid("", 17)],
    )
    call = helper.make_node("DoubleRelu", ["y"], ["z"], domain="local.fns", name="call")
    path = tmp_path / "m.onnx"
    onnx.save(make_model([call], opsets=[("local.fns", 1)], functions=[fn]), path)
    assert alarms(scan(path)) == []


def test_truncated_model_is_inconclusive(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(make_model(), path)
    data = path.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) - 100])
    result = scan(cut)
    assert result.status is FileStatus.INCONCLUSIVE
    assert result.status_reason and result.status_reason.startswith("malformed")


def test_graph_name_feeds_blacklist(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(make_model(name="forbidden-llm"), path)
    result = scan(path, blacklist_patterns=["FORBIDDEN"])
    assert rules.BLACKLISTED in rules_at(result, CRIT)


def test_missing_onnx_is_reported_and_inconclusive(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(make_model(), path)
    result = scan_without_module(path, "onnx")
    assert result["status"] == "inconclusive"
    issues = result["issues"]
    assert isinstance(issues, list)
    messages = [i["message"] for i in issues if i.get("rule") == rules.MISSING_DEPENDENCY]
    assert messages and messages[0].startswith("onnx not installed, cannot scan ONNX models")


def test_renamed_onnx_is_sniffed_by_content(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    node = helper.make_node("PyOp", ["y"], ["z"], domain="ai.onnx.contrib", name="py")
    onnx.save(make_model([node], opsets=[("ai.onnx.contrib", 1)]), path)
    result = scan(path)
    assert result.scanner_name == "onnx"
    assert rules_at(result, CRIT) == {R.ONNX_PYTHON_OP}


def test_random_bytes_are_not_taken_for_onnx(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes([0x08, 0x07, 0x99, 0x01, 0x02]) + b"\xff" * 64)
    assert scan(path).scanner_name != "onnx"


def test_fresh_process_judges_ops_without_importing_the_onnx_package(tmp_path: Path) -> None:
    """The schema registry comes from onnx's extension alone: same verdicts, no numpy/ml_dtypes."""
    nodes = [
        helper.make_node("SecretSauce", ["y"], ["b"], domain="com.vendor", name="vendor"),
        helper.make_node("NotAnOnnxOp", ["y"], ["c"], name="bogus"),
        helper.make_node("LayerNormalization", ["y", "B"], ["d"], name="ln"),
    ]
    path = tmp_path / "m.onnx"
    onnx.save(make_model(nodes, opsets=[("com.vendor", 1)]), path)
    code = (
        "import json, sys\n"
        "from modelaudit.engine.dispatch import scan_path\n"
        f"r = scan_path({str(path)!r}, {{}})\n"
        "heavy = sorted(m for m in ('onnx', 'numpy', 'ml_dtypes', 'google.protobuf')"
        " if m in sys.modules)\n"
        "print(json.dumps({'result': r.to_dict(), 'heavy': heavy}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["heavy"] == []
    result = answer["result"]
    assert result["status"] == "complete"
    flagged = {i["details"]["op_type"]: i["rule"] for i in result["issues"] if "details" in i}
    assert flagged == {"SecretSauce": R.ONNX_CUSTOM_DOMAIN, "NotAnOnnxOp": R.ONNX_UNKNOWN_OP}


def test_onnx_imports_after_an_in_process_scan(tmp_path: Path) -> None:
    """The scanner loads onnx's C++ extension without the onnx package (a second of start-up
    per worker); a program that scanned an ONNX file in its own process and then imports
    onnx must get a working onnx, not nanobind's refusal to initialise the extension twice."""
    model = tmp_path / "relu.onnx"
    code = f"""
import modelaudit
report = modelaudit.scan_model_directory_or_file({str(model)!r}, use_processes=False)
assert report["files_scanned"] == 1, report
import onnx
from onnx import helper
assert onnx.defs.has("Relu")
print(helper.make_node("Relu", ["x"], ["y"]).op_type)
"""
    onnx.save(make_model(), str(model))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "Relu"


def test_repeated_nodes_are_kept_once_and_counted(tmp_path: Path) -> None:
    """One kept node per kind: a file of millions of tiny nodes held an object for each and
    ran the worker out of memory."""
    from modelaudit.formats.onnx import read_model

    nodes = [helper.make_node("Relu", ["y"], ["y"], name=f"r{i}") for i in range(500)]
    path = tmp_path / "m.onnx"
    onnx.save(make_model(nodes), path)
    model = read_model(str(path))
    assert model.node_count == 502
    assert [n.op_type for _, n in model.nodes] == ["Gemm", "Relu"]
    result = scan(path)
    assert alarms(result) == []
    assert result.metadata["format_details"]["nodes"] == 502


def test_too_many_operator_kinds_is_inconclusive(tmp_path: Path) -> None:
    from modelaudit.formats.onnx import MAX_NODE_KINDS

    graph = make_model().graph
    for i in range(MAX_NODE_KINDS + 1):
        graph.node.add(op_type=f"Op{i}", domain="com.vendor")
    path = tmp_path / "m.onnx"
    path.write_bytes(_model_with(graph))
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert any(i.rule == rules.core.ANALYSIS_BUDGET for i in result.issues)


def _model_with(graph: onnx.GraphProto) -> bytes:
    model = make_model()
    model.graph.CopyFrom(graph)
    return model.SerializeToString()


@pytest.mark.parametrize(
    ("domain", "op", "rule"),
    [
        ("", "PyOp", R.ONNX_PYTHON_OP),
        ("ai.onnx.contrib", "PyMyTransform", R.ONNX_PYTHON_OP),
        ("com.microsoft", "EPContext", R.ONNX_EXTERNAL_ESCAPE),
    ],
)
def test_node_judged_by_name_after_the_kinds_cap_is_still_reported(
    tmp_path: Path, domain: str, op: str, rule: str
) -> None:
    """Past `MAX_NODE_KINDS` distinct kinds new kinds are dropped, but a Python op or an
    EPContext loading its cache from outside the folder is still kept and reported."""
    from modelaudit.formats.onnx import MAX_NODE_KINDS

    graph = make_model().graph
    for i in range(MAX_NODE_KINDS + 10):
        graph.node.add(op_type=f"Op{i}", domain="com.vendor")
    last = helper.make_node(op, ["y"], ["z"], domain=domain, name="late")
    if op == "EPContext":
        last.attribute.extend(
            [
                helper.make_attribute("embed_mode", 0),
                helper.make_attribute("ep_cache_context", "/etc/engine.bin"),
            ]
        )
    graph.node.append(last)
    path = tmp_path / "m.onnx"
    path.write_bytes(_model_with(graph))
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert rule in rules_at(result, IssueSeverity.CRITICAL), [i.message for i in result.issues]


def test_many_benign_ep_contexts_past_the_cap_do_not_hide_a_python_op(tmp_path: Path) -> None:
    from modelaudit.formats.onnx import MAX_NODE_KINDS, read_model
    from modelaudit.scanners.onnx.onnx_scanner import judged_by_name

    graph = make_model().graph
    for i in range(MAX_NODE_KINDS + 1):
        graph.node.add(op_type=f"Op{i}", domain="com.vendor")
    for i in range(3):
        node = helper.make_node("EPContext", [], [], domain="com.microsoft", name=f"ep{i}")
        node.attribute.extend(
            [
                helper.make_attribute("embed_mode", 0),
                helper.make_attribute("ep_cache_context", f"cache{i}.bin"),
            ]
        )
        graph.node.append(node)
    graph.node.append(helper.make_node("PyOp", ["y"], ["z"], name="py"))
    path = tmp_path / "m.onnx"
    path.write_bytes(_model_with(graph))
    kept = [n.name for _, n in read_model(str(path), judged_by_name).nodes][-4:]
    assert kept == ["ep0", "ep1", "ep2", "py"]
    assert [n.name for _, n in read_model(str(path)).nodes][-1] != "py"


def _pnnx_graph(extra: list[onnx.NodeProto] | None = None) -> onnx.GraphProto:
    """pnnx's `model.pnnx.onnx`: its IR as graph nodes, the model written without an IR
    version or an opset import."""
    nodes = [
        helper.make_node("pnnx.Input", [], ["0"], name="pnnx_input_0"),
        helper.make_node("nn.Conv2d", ["0"], ["1"], name="0"),
        helper.make_node("F.relu", ["1"], ["2"], name="F.relu_0"),
        helper.make_node("torch.flatten", ["2"], ["3"], name="torch.flatten_0"),
        helper.make_node("Tensor.view", ["3"], ["4"], name="Tensor.view_0"),
        helper.make_node("prim::Constant", [], ["5"], name="c"),
        *(extra or []),
        helper.make_node("pnnx.Output", ["4"], [], name="pnnx_output_0"),
    ]
    return helper.make_graph(nodes, "main_graph", [], [])


def test_pnnx_debug_graph_is_info(tmp_path: Path) -> None:
    path = tmp_path / "model.pnnx.onnx"
    path.write_bytes(onnx.ModelProto(graph=_pnnx_graph()).SerializeToString())
    result = scan(path)
    assert alarms(result) == []
    (info,) = [i for i in result.issues if i.rule == R.ONNX_UNKNOWN_OP]
    assert info.severity is IssueSeverity.INFO
    assert info.details["operators"][:3] == ["pnnx.Input", "nn.Conv2d", "F.relu"]


def test_pnnx_names_in_a_runnable_model_or_beside_other_ops_still_warn(tmp_path: Path) -> None:
    runnable = tmp_path / "runnable.onnx"
    model = helper.make_model(_pnnx_graph(), opset_imports=[helper.make_opsetid("", 17)])
    runnable.write_bytes(model.SerializeToString())
    assert {i.details["op_type"] for i in scan(runnable).issues if i.severity is WARN} >= {
        "pnnx.Input",
        "nn.Conv2d",
    }
    mixed = tmp_path / "mixed.pnnx.onnx"
    extra = [
        helper.make_node("EvilOp", ["4"], ["6"], name="evil"),
        helper.make_node("PyOp", ["4"], ["7"], domain="ai.onnx.contrib", name="py"),
        helper.make_node("Secret", ["4"], ["8"], domain="com.vendor", name="vendor"),
    ]
    mixed.write_bytes(onnx.ModelProto(graph=_pnnx_graph(extra)).SerializeToString())
    result = scan(mixed)
    flagged = {
        i.details["op_type"]: (i.rule, i.severity)
        for i in result.issues
        if i.severity in (WARN, CRIT)
    }
    assert flagged == {
        "EvilOp": (R.ONNX_UNKNOWN_OP, WARN),
        "PyOp": (R.ONNX_PYTHON_OP, CRIT),
        "Secret": (R.ONNX_CUSTOM_DOMAIN, WARN),
    }


def test_onnxruntime_extensions_operators_are_info(tmp_path: Path) -> None:
    """A tokenizer model as onnxruntime-extensions' gen_processing_models writes it: its
    operators are that library's; its Python, HTTP and file-reading ones still count."""
    contrib = "ai.onnx.contrib"
    nodes = [
        helper.make_node("GPT2Tokenizer", ["y"], ["ids"], domain=contrib, name="tok"),
        helper.make_node("BpeDecoder", ["ids"], ["text"], domain=contrib, name="detok"),
    ]
    quiet = tmp_path / "tokenizer.onnx"
    onnx.save(make_model(nodes, opsets=[(contrib, 1)]), quiet)
    result = scan(quiet)
    assert alarms(result) == []
    (info,) = [i for i in result.issues if i.rule == R.ONNX_CUSTOM_DOMAIN]
    assert info.severity is IssueSeverity.INFO
    assert info.details["operators"] == ["GPT2Tokenizer", "BpeDecoder"]
    loud = tmp_path / "invoker.onnx"
    nodes += [
        helper.make_node("AzureTextToText", ["text"], ["a"], domain=contrib, name="azure"),
        helper.make_node("ImageReader", ["text"], ["b"], domain=contrib, name="reader"),
        helper.make_node("PyOp", ["text"], ["c"], domain=contrib, name="py"),
    ]
    onnx.save(make_model(nodes, opsets=[(contrib, 1)]), loud)
    flagged = {
        i.details["op_type"]: i.severity for i in scan(loud).issues if "op_type" in i.details
    }
    assert flagged == {"AzureTextToText": WARN, "ImageReader": WARN, "PyOp": CRIT}


def test_tensorrt_plugins_are_info(tmp_path: Path) -> None:
    """YOLO end-to-end exports name TensorRT's shipped NMS plugin (domain TRT, or the default
    one); a plugin name TensorRT does not ship still warns."""
    nodes = [
        helper.make_node("EfficientNMS_TRT", ["y"], ["a"], domain="TRT", name="nms"),
        helper.make_node("ROIAlign_TRT", ["y"], ["b"], name="roi"),
    ]
    quiet = tmp_path / "yolo_end2end.onnx"
    onnx.save(make_model(nodes, opsets=[("TRT", 1)]), quiet)
    result = scan(quiet)
    assert alarms(result) == []
    (info,) = [i for i in result.issues if i.severity is IssueSeverity.INFO]
    assert info.details["operators"] == ["EfficientNMS_TRT", "ROIAlign_TRT"]
    assert info.details["library"] == "TensorRT plugins"
    loud = tmp_path / "vendor.onnx"
    nodes.append(helper.make_node("Evil_TRT", ["y"], ["c"], domain="TRT", name="evil"))
    onnx.save(make_model(nodes, opsets=[("TRT", 1)]), loud)
    flagged = {
        i.details["op_type"]: i.severity for i in scan(loud).issues if "op_type" in i.details
    }
    assert flagged == {"Evil_TRT": WARN}


def test_onnx_runtime_own_operators_are_known(tmp_path: Path) -> None:
    """A model ONNX Runtime saved optimized (its NCHWc layout domain, as 1.32 writes a Conv and
    MaxPool) and contrib ops newer releases added (PagedAttention, SwiGLU)."""
    nodes = [
        helper.make_node("ReorderInput", ["y"], ["a"], domain="com.microsoft.nchwc", name="in"),
        helper.make_node("Conv", ["a", "W"], ["b"], domain="com.microsoft.nchwc", name="conv"),
        helper.make_node("ReorderOutput", ["b"], ["c"], domain="com.microsoft.nchwc", name="out"),
        helper.make_node("PagedAttention", ["c"], ["d"], domain="com.microsoft", name="attn"),
        helper.make_node("SwiGLU", ["d"], ["e"], domain="com.microsoft", name="glu"),
    ]
    opsets = [("com.microsoft.nchwc", 1), ("com.microsoft", 1)]
    path = tmp_path / "optimized.onnx"
    onnx.save(make_model(nodes, opsets=opsets), path)
    assert scan(path).issues == []
    nodes.append(helper.make_node("Secret", ["e"], ["f"], domain="com.microsoft.nchwc", name="s"))
    onnx.save(make_model(nodes, opsets=opsets), path)
    assert {i.details["op_type"] for i in scan(path).issues if i.severity is WARN} == {"Secret"}


def test_preview_domain_operators_are_standard(tmp_path: Path) -> None:
    """onnx 1.20+ defines FlexAttention in ai.onnx.preview; a name it does not define there
    is an unknown standard op."""
    preview = "ai.onnx.preview"
    nodes = [helper.make_node("FlexAttention", ["y", "y", "y"], ["a"], domain=preview, name="fa")]
    path = tmp_path / "m.onnx"
    onnx.save(make_model(nodes, opsets=[(preview, 1)]), path)
    assert scan(path).issues == []
    nodes.append(helper.make_node("NotYetAnOp", ["a"], ["b"], domain=preview, name="x"))
    onnx.save(make_model(nodes, opsets=[(preview, 1)]), path)
    assert {i.rule for i in scan(path).issues} == {R.ONNX_UNKNOWN_OP}


def _name_written_last(attribute: onnx.AttributeProto) -> bytes:
    """The attribute's bytes with its name field (field 1, which protobuf writes first)
    moved after its value: the same message to any protobuf parser."""
    raw = attribute.SerializeToString()
    name = attribute.name.encode()
    head = b"\x0a" + bytes([len(name)]) + name
    assert raw.startswith(head)
    return raw[len(head) :] + head


@pytest.mark.parametrize(
    ("context", "reorder"),
    [("../../../../tmp/engine.bin", True), ("../" + "a" * 5000 + "/engine.bin", False)],
)
def test_ep_context_path_is_read_whatever_the_field_order_and_length(
    tmp_path: Path, context: str, reorder: bool
) -> None:
    """onnx and ONNX Runtime read an attribute's fields in any order, the name after the
    value included, and a path of any length; the walk lost such values."""
    node = helper.make_node(
        "EPContext", ["y"], ["z"], domain="com.microsoft", name="ctx", source="QNN"
    )
    node.attribute.extend(
        [helper.make_attribute("embed_mode", 0), helper.make_attribute("ep_cache_context", context)]
    )
    model = make_model([node], opsets=[("com.microsoft", 1)])
    data = model.SerializeToString()
    if reorder:
        for attribute in node.attribute:
            raw = attribute.SerializeToString()
            assert data.count(raw) == 1
            data = data.replace(raw, _name_written_last(attribute))
    parsed = onnx.ModelProto()
    parsed.ParseFromString(data)
    read = {a.name: a for a in parsed.graph.node[-1].attribute}
    assert read["embed_mode"].i == 0 and read["ep_cache_context"].s == context.encode()
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    result = scan(path)
    assert R.ONNX_EXTERNAL_ESCAPE in rules_at(result, CRIT), [i.message for i in result.issues]
