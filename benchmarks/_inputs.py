"""Large model files for the remote benchmarks, generated in seconds."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def make_safetensors(path: Path, size: int) -> None:
    """Header written by hand, tensor data left as a sparse hole: instant to generate."""
    count = 16
    per = (size // count) // 4 * 4
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    for i in range(count):
        header[f"layers.{i}.weight"] = {
            "dtype": "F32",
            "shape": [per // 4],
            "data_offsets": [i * per, (i + 1) * per],
        }
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        f.truncate(8 + len(blob) + count * per)


def make_torch_zip(path: Path, size: int) -> None:
    """A real torch.save checkpoint of 16 zero tensors."""
    import torch

    count = 16
    state = {f"layers.{i}.weight": torch.zeros(size // count // 4) for i in range(count)}
    torch.save(state, path)
