"""Local-scan benchmark (issues 2 and 4). Generates its own inputs under benchmarks/data/.

    python benchmarks/local_scan.py [--only NAME ...]

Every figure is a ratio against a baseline measured in the same run: `cat FILE >/dev/null`
for big files, a plain `pickletools.genops` walk for pickles. Targets are printed beside them.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections.abc import Callable
from pathlib import Path

from _measure import DATA, Measurement, measure, modelaudit_cmd, row

GIB = 1 << 30
MIB = 1 << 20


def _torch_checkpoint(path: Path) -> None:
    import torch

    n = 16
    size = GIB // n // 4
    state = {f"layer{i}.weight": torch.ones(size, dtype=torch.float32) for i in range(n)}
    torch.save(state, path)


def _million_objects(path: Path) -> None:
    data = [{"id": i, "score": i * 0.5, "tag": "t"} for i in range(1_000_000)]
    path.write_bytes(pickle.dumps(data, protocol=4))


def _random_records(path: Path) -> None:
    import random

    r = random.Random(1)
    data = [{"id": i, "f": r.random(), "n": r.randrange(1 << 40)} for i in range(300_000)]
    path.write_bytes(pickle.dumps(data, protocol=2))


def _small_models(folder: Path) -> None:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(2000):
        kind = i % 4
        if kind == 0:
            (folder / f"m{i}.pkl").write_bytes(pickle.dumps({"w": list(range(20)), "i": i}))
        elif kind == 1:
            np.save(folder / f"m{i}.npy", np.arange(32, dtype=np.float32))
        elif kind == 2:
            from safetensors.numpy import save_file

            save_file({"w": np.zeros(16, dtype=np.float32)}, str(folder / f"m{i}.safetensors"))
        else:
            (folder / f"m{i}.json").write_text('{"model_type": "bert", "hidden_size": 8}')


def _safetensors(path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    n = 8
    save_file(
        {f"t{i}": np.ones(500 * MIB // n // 4, dtype=np.float32) for i in range(n)}, str(path)
    )


def _joblib_forest(path: Path) -> None:
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.random((60_000, 20))
    y = rng.integers(0, 2, 60_000)
    forest = RandomForestClassifier(n_estimators=180, random_state=0, n_jobs=2).fit(x, y)
    joblib.dump(forest, path)


def _onnx_model(path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []
    prev = "x"
    for i in range(50):
        w = numpy_helper.from_array(np.full((1024, 1024), 0.01, dtype=np.float32), f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]))
        prev = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 1024])],
        inits,
    )
    onnx.save(helper.make_model(graph), str(path))


def ensure(path: Path, build: Callable[[Path], None]) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        build(path)
    return path


def cat(path: Path) -> Measurement:
    return measure(["sh", "-c", f"cat '{path}' >/dev/null"])


def genops(path: Path) -> Measurement:
    walk = "import pickletools,sys\nfor _ in pickletools.genops(open(sys.argv[1],'rb')): pass"
    return measure([sys.executable, "-c", walk, str(path)], repeat=1)


def bench_help() -> str:
    exe = Path(sys.executable).with_name("modelaudit")
    ours = measure([str(exe), "--help"], repeat=5)
    base = measure([sys.executable, "-c", "pass"], repeat=5)
    return row("modelaudit --help (target < 0.3 s)", ours, base, "python -c pass")


def bench_checkpoint() -> str:
    path = ensure(DATA / "checkpoint_1gib.pt", _torch_checkpoint)
    base = cat(path)
    return row(
        "1 GiB PyTorch checkpoint (<= 1x cat)", measure(modelaudit_cmd(str(path))), base, "cat"
    )


def bench_million() -> str:
    path = ensure(DATA / "million_objects.pkl", _million_objects)
    base = genops(path)
    return row(
        "1M-object pickle (<= 0.2x genops)", measure(modelaudit_cmd(str(path))), base, "genops"
    )


def bench_records() -> str:
    path = ensure(DATA / "random_records_p2.pkl", _random_records)
    base = genops(path)
    return row(
        "300K random records, protocol 2 (<= 0.2x genops)",
        measure(modelaudit_cmd(str(path))),
        base,
        "genops",
    )


def bench_directory() -> str:
    folder = DATA / "small_models"
    if not folder.exists():
        _small_models(folder)
    ours = measure(modelaudit_cmd(str(folder)))
    return row("2,000 small models (target < 1.5 s)", ours, None, "")


def bench_safetensors() -> str:
    path = ensure(DATA / "model_500mib.safetensors", _safetensors)
    base = cat(path)
    return row(
        "500 MiB safetensors (target < 0.3 s)", measure(modelaudit_cmd(str(path))), base, "cat"
    )


def bench_joblib() -> str:
    path = ensure(DATA / "forest.joblib", _joblib_forest)
    base = cat(path)
    size = path.stat().st_size / MIB
    return row(
        f"{size:.0f} MiB joblib forest (< 0.6 s)", measure(modelaudit_cmd(str(path))), base, "cat"
    )


def bench_onnx() -> str:
    path = ensure(DATA / "model_200mib.onnx", _onnx_model)
    base = cat(path)
    return row("200 MiB ONNX (< 1 s, < 300 MB)", measure(modelaudit_cmd(str(path))), base, "cat")


BENCHES = {
    "help": bench_help,
    "checkpoint": bench_checkpoint,
    "million": bench_million,
    "records": bench_records,
    "directory": bench_directory,
    "safetensors": bench_safetensors,
    "joblib": bench_joblib,
    "onnx": bench_onnx,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=None)
    args = parser.parse_args()
    for name in args.only or BENCHES:
        print(BENCHES[name](), flush=True)


if __name__ == "__main__":
    main()
