"""Small files at file-system speed (issue 15, part 2): the CLI against picklescan.

    python benchmarks/small_files.py [--only one-pickle one-safetensors one-torch dir-2000 dir-50000]

Inputs are generated under benchmarks/data/ (50,000 files take about a minute the first
time). Each row is the best of a few runs of the command in a fresh process, beside
picklescan (a benchmark dependency only: `pip install picklescan`) measured in the same run,
with the ratio. CPU is the whole process tree's (parent, fork server, workers).
"""

from __future__ import annotations

import argparse
import io
import pickle
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from _measure import DATA, Measurement, measure, modelaudit_cmd

_MIX = ("pkl", "npy", "safetensors", "json")


def _small_tree(folder: Path, count: int) -> None:
    """`count` small models (pickles, .npy, safetensors, config JSON), 1,000 per folder."""
    import numpy as np
    from safetensors.numpy import save as save_safetensors

    buf = io.BytesIO()
    np.save(buf, np.arange(32, dtype=np.float32))
    npy = buf.getvalue()
    safetensors = save_safetensors({"w": np.zeros(16, dtype=np.float32)})
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for i in range(count):
        sub = tmp / f"d{i // 1000:03}"
        if i % 1000 == 0:
            sub.mkdir(parents=True)
        kind = _MIX[i % 4]
        target = sub / f"m{i}.{kind}"
        if kind == "pkl":
            target.write_bytes(pickle.dumps({"w": list(range(20)), "i": i}))
        elif kind == "npy":
            target.write_bytes(npy)
        elif kind == "safetensors":
            target.write_bytes(safetensors)
        else:
            target.write_text('{"model_type": "bert", "hidden_size": 8}')
    tmp.rename(folder)


def _tree(count: int) -> Path:
    folder = DATA / f"small_tree_{count}"
    if not folder.exists():
        print(f"generating {folder.name} ...", file=sys.stderr, flush=True)
        _small_tree(folder, count)
    return folder


def _one(kind: str) -> Path:
    folder = _tree(2000)
    return next(folder.glob(f"d000/*.{kind}"))


def _one_torch() -> Path:
    """A small PyTorch checkpoint (zip with a pickle and tensor records), as torch.save
    writes it."""
    path = DATA / "one_torch" / "model.pt"
    if not path.exists():
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"w": torch.zeros(64), "b": torch.ones(8)}, path)
    return path


def picklescan_cmd(path: Path) -> list[str]:
    exe = Path(sys.executable).with_name("picklescan")
    return [str(exe), "-p", str(path)]


def _row(label: str, ours: Measurement, base: Measurement) -> str:
    return (
        f"{label:<30} ours {ours.wall:7.3f}s cpu {ours.cpu:6.2f}s rc={ours.rc}"
        f"  | picklescan {base.wall:7.3f}s cpu {base.cpu:6.2f}s"
        f"  | ratio {ours.wall / base.wall:5.2f}x"
    )


def _compare(label: str, path: Path, repeat: int) -> str:
    ours = measure(modelaudit_cmd(str(path)), repeat=repeat)
    base = measure(picklescan_cmd(path), repeat=repeat)
    return _row(label, ours, base)


BENCHES: dict[str, Callable[[], str]] = {
    "one-pickle": lambda: _compare("one pickle (pre-commit)", _one("pkl"), 7),
    "one-safetensors": lambda: _compare("one safetensors", _one("safetensors"), 7),
    "one-torch": lambda: _compare("one torch checkpoint", _one_torch(), 7),
    "dir-2000": lambda: _compare("2,000 small files", _tree(2000), 3),
    "dir-50000": lambda: _compare("50,000 small files", _tree(50_000), 2),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=None)
    args = parser.parse_args()
    if shutil.which("picklescan", path=str(Path(sys.executable).parent)) is None:
        sys.exit("picklescan is the baseline: pip install picklescan")
    for name in args.only or BENCHES:
        print(BENCHES[name](), flush=True)


if __name__ == "__main__":
    main()
