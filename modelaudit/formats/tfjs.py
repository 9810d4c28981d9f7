"""TensorFlow.js models: `model.json` (topology and `weightsManifest`) and the raw weight
shards it names (`group1-shard1of3.bin`), which `tf.loadLayersModel`/`loadGraphModel` fetch
and read as typed arrays; nothing in a shard is run."""

from __future__ import annotations

from typing import Any


def weight_paths(doc: Any) -> set[str]:
    """Every shard path of a manifest: `model.json`'s `weightsManifest`, or the weight
    writer's bare list of groups (`weights_manifest.json`)."""
    groups = doc.get("weightsManifest") if isinstance(doc, dict) else doc
    paths: set[str] = set()
    if not isinstance(groups, list):
        return paths
    for group in groups:
        listed = group.get("paths") if isinstance(group, dict) else None
        if isinstance(listed, list):
            paths.update(p.removeprefix("./") for p in listed if isinstance(p, str))
    return paths
