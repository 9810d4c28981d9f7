"""Analysis bombs (issue 11): time, whole-tree peak RSS and verdict of a default CLI scan.

    python benchmarks/analysis_bombs.py [--only NAME ...] [--timeout S]

Inputs are the small shared-structure and nesting files of tests/hardening/_analysis_corpus.py
at the sizes the issue names, generated under a temp folder. Each is scanned alone with the
CLI's defaults (`--timeout` bounds the whole run, default 300 s as the CLI). Target: every
input ends within 60 s and 2 GB, its findings kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hardening import _analysis_corpus as C  # noqa: E402

MIB = 1 << 20


def _write(data: bytes | str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        return _put(folder, "input", data)

    return build


def _put(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _named(name: str, data: Callable[[], bytes | str]) -> Callable[[Path], Path]:
    return lambda folder: _put(folder, name, data())


def _h5_config(folder: Path) -> Path:
    import h5py

    path = folder / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = C.keras_nested_config(5000)
    return path


def _keras_zip(folder: Path) -> Path:
    import zipfile

    path = folder / "model.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        zf.writestr("config.json", C.keras_nested_config(5000))
        zf.writestr("model.weights.h5", b"")
    return path


def _dev_zero(folder: Path) -> Path:
    path = folder / "config.json"
    path.symlink_to("/dev/zero")
    return path


_WRAPPER = b"\x8c\x13joblib.numpy_pickle\x94\x8c\x11NumpyArrayWrapper\x94\x93\x940"


def _empty_dicts(folder: Path, name: str, head: bytes) -> Path:
    """100 MB of EMPTY_DICT opcodes in one list: ~64 bytes of objects per byte of input."""
    path = folder / name
    with path.open("wb") as f:
        f.write(b"\x80\x04" + head + b"(")
        block = b"}" * (1 << 20)
        for _ in range(100):
            f.write(block)
        f.write(b"l.")
    return path


def _fifo_module(folder: Path) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps({"auto_map": {"AutoModel": "modeling.Net"}}))
    os.mkfifo(folder / "modeling.py")
    return path


def _keras_long_keys(folder: Path) -> Path:
    import zipfile

    doc: object = {"class_name": "Dense", "config": {"name": "d", "units": [0] * 200_000}}
    for i in range(150):
        doc = {"k" * 10_000 + str(i): doc}
    path = folder / "model.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        zf.writestr("config.json", json.dumps(doc))
    return path


def _onnx_long_names(folder: Path) -> Path:
    from onnx import TensorProto, helper

    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    empty = helper.make_graph([], "e", [], [y])
    nodes = [
        helper.make_node("If", ["c"], ["y"], name=f"i{i}", then_branch=empty, else_branch=empty)
        for i in range(50_000)
    ]
    inner = helper.make_graph(nodes, "g", [], [y])
    for i in range(28):
        node = helper.make_node(
            "If", ["c"], ["y"], name="n" * 100_000 + str(i), then_branch=inner, else_branch=empty
        )
        inner = helper.make_graph([node], "s", [], [y])
    path = folder / "model.onnx"
    path.write_bytes(helper.make_model(inner).SerializeToString())
    return path


INPUTS: dict[str, Callable[[Path], Path]] = {
    "dag60.pkl": _named("dag60.pkl", lambda: C.pickle_dag(60)),
    "dag60_system.pkl": _named("dag60_system.pkl", lambda: C.pickle_dag(60, system=True)),
    "dag_get40.pkl": _named("dag_get40.pkl", lambda: C.pickle_dag_get(40)),
    "dag_keys40.pkl": _named("dag_keys40.pkl", lambda: C.pickle_dag_dict_keys(40)),
    "jinja_k5.jinja": _named("t5.jinja", lambda: C.jinja_doubling(5)),
    "jinja_k10.jinja": _named("t10.jinja", lambda: C.jinja_doubling(10)),
    "jinja_k40.jinja": _named("t40.jinja", lambda: C.jinja_doubling(40)),
    "jinja_k40_tokenizer": _named(
        "tokenizer_config.json", lambda: C.tokenizer_config(C.jinja_doubling(40))
    ),
    "tflite_1.6MB": _named("a.tflite", lambda: C.tflite_shared(200_000, 200_000, 64)),
    "tflite_4MB": _named("b.tflite", lambda: C.tflite_shared(1_000_000, 10, 4000)),
    "yaml_laughs20.yaml": _named("laughs.yaml", lambda: C.yaml_laughs(20)),
    "yaml_aliases.yaml": _named("aliases.yaml", lambda: C.yaml_alias_chain(200_000)),
    "keras_nested.h5": _h5_config,
    "keras_nested.keras": _keras_zip,
    "json_nested": _named("config.json", lambda: C.json_nested(1_000_000)),
    "dev_zero_config.json": _dev_zero,
    "nested_payload.pkl": _named(
        "nest.pkl", lambda: C.pickle_loads_repeated(payload=1 << 20, times=5000)
    ),
    "templates_x2000.json": _named(
        "tokenizer_config.json",
        lambda: json.dumps(
            {
                "chat_template": [
                    {"name": f"t{i}", "template": C.jinja_doubling(40)} for i in range(2000)
                ]
            }
        ),
    ),
    "fifo_modeling.py": _fifo_module,
    "keras_long_keys.keras": _keras_long_keys,
    "onnx_long_names.onnx": _onnx_long_names,
    "joblib_dicts_100MB": lambda folder: _empty_dicts(folder, "m.joblib", _WRAPPER),
    "c_dicts_100MB.pkl": lambda folder: _empty_dicts(folder, "m.pkl", b""),
}

_RSS_PAGES = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(parts[1]), int(parts[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * _RSS_PAGES
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def run(path: Path, timeout: float) -> dict[str, object]:
    exe = Path(sys.executable).with_name("modelaudit")
    cmd = [str(exe), "scan", str(path), "--format", "json", "--no-progress"]
    cmd += ["--timeout", str(timeout)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    verdict = "?"
    try:
        report = json.loads(out)
        files = report.get("files") or []
        f = files[0] if files else {}
        counts = report["summary"]["severity_counts"]
        found = ",".join(f"{n} {sev}" for sev, n in counts.items() if n and sev != "debug")
        rules = sorted({i.get("rule", "") for i in report.get("issues", [])})
        verdict = f"{f.get('status')} [{found}] {' '.join(rules)} {f.get('status_reason') or ''}"
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    return {"wall": wall, "rss": peak, "rc": proc.returncode, "verdict": verdict.strip()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in INPUTS.items():
            if args.only and name not in args.only:
                continue
            folder = Path(tmp) / name
            folder.mkdir()
            path = build(folder)
            size = path.lstat().st_size
            m = run(path, args.timeout)
            print(
                f"{name:<22} {size:>10} B  {m['wall']:7.1f}s  rss {int(m['rss']) / MIB:7.0f} MiB"  # type: ignore[call-overload]
                f"  rc={m['rc']}  {str(m['verdict'])[:110]}",
                flush=True,
            )


if __name__ == "__main__":
    main()
