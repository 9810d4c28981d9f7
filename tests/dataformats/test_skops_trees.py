"""Decision trees in skops archives: node indices scikit-learn follows without bounds checks.

Archives are written by skops.io.dump from fitted scikit-learn models; a hostile one has
fields of one node record patched in its `.npy` member (offsets from scikit-learn's own node
dtypes). Nothing is loaded: neither skops.io.load nor np.load runs on them.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn.tree._tree as tree_mod
import skops.io as sio

from modelaudit.findings import IssueSeverity
from modelaudit.formats.npy import read_header
from modelaudit.rules import text as rt
from tests.dataformats._dataformats_util import assert_clean, scan

RULE = rt.SKOPS_TREE_NODES
_PREDICTOR = "TreePredictor"


def _data() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.random((60, 3))
    return x, (x[:, 0] + x[:, 1] > 1.0).astype(int)


def _nodes(value: Any, cls: str) -> Iterator[dict[str, Any]]:
    """Every schema node of class `cls`, depth first."""
    if isinstance(value, dict):
        if value.get("__class__") == cls:
            yield value
        for item in value.values():
            yield from _nodes(item, cls)
    elif isinstance(value, list):
        for item in value:
            yield from _nodes(item, cls)


def _patched(
    tmp_path: Path, model: Any, cls: str, dtype: Any, record: int, **fields: int
) -> tuple[Path, dict[str, Any]]:
    """`model` dumped by skops, with `fields` of node `record` of the first `cls` node array
    overwritten in place (the rest of the archive as skops wrote it)."""
    clean = tmp_path / "clean.skops"
    sio.dump(model, clean)
    with zipfile.ZipFile(clean) as z:
        members = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(members["schema.json"])
    node = next(_nodes(schema, cls))
    member = node["content"]["content"]["nodes"]["file"]
    data = bytearray(members[member])
    start = read_header(io.BytesIO(bytes(data))).header_size + record * dtype.itemsize
    for name, value in fields.items():
        sub, offset = dtype.fields[name][:2]
        data[start + offset : start + offset + sub.itemsize] = np.array([value], sub).tobytes()
    members[member] = bytes(data)
    path = tmp_path / "patched.skops"
    with zipfile.ZipFile(path, "w") as z:
        for name, raw in members.items():
            z.writestr(name, raw)
    return path, node


def _tree_findings(path: Path) -> list[tuple[IssueSeverity, str]]:
    return [(i.severity, i.message) for i in scan(path).issues if i.rule == RULE]


def _tree_model() -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(*_data())


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"left_child": 10**9}, "children 1000000000"),
        ({"right_child": -7}, "outside its"),
        ({"feature": 3}, "feature 3 of 3"),
        ({"feature": -5}, "feature -5 of 3"),
    ],
)
def test_tree_node_index_out_of_bounds_is_critical(
    tmp_path: Path, fields: dict[str, int], needle: str
) -> None:
    path, _ = _patched(tmp_path, _tree_model(), "Tree", tree_mod.NODE_DTYPE, 0, **fields)
    [(severity, message)] = _tree_findings(path)
    assert severity is IssueSeverity.CRITICAL and needle in message, message


def test_tree_node_count_past_its_array_is_critical(tmp_path: Path) -> None:
    """`node_count` is what scikit-learn walks; the array's length is what it allocated."""
    clean = tmp_path / "clean.skops"
    sio.dump(_tree_model(), clean)
    with zipfile.ZipFile(clean) as z:
        members = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(members["schema.json"])
    state = next(_nodes(schema, "Tree"))["content"]["content"]
    state["node_count"] = {**state["node_count"], "content": "100000", "__id__": 1}
    members["schema.json"] = json.dumps(schema).encode()
    path = tmp_path / "count.skops"
    with zipfile.ZipFile(path, "w") as z:
        for name, raw in members.items():
            z.writestr(name, raw)
    [(severity, message)] = _tree_findings(path)
    assert severity is IssueSeverity.CRITICAL and "node_count 100000" in message


def test_tree_child_before_its_parent_warns(tmp_path: Path) -> None:
    """In range but pointing back: predict loops for ever, nothing is read out of bounds."""
    path, _ = _patched(tmp_path, _tree_model(), "Tree", tree_mod.NODE_DTYPE, 1, left_child=0)
    [(severity, message)] = _tree_findings(path)
    assert severity is IssueSeverity.WARNING and "loop" in message


def test_hist_gradient_boosting_predictor_child_out_of_bounds_is_critical(
    tmp_path: Path,
) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    model = HistGradientBoostingClassifier(max_iter=2).fit(*_data())
    path, _ = _patched(tmp_path, model, _PREDICTOR, PREDICTOR_RECORD_DTYPE, 0, right=70000)
    [(severity, message)] = _tree_findings(path)
    assert severity is IssueSeverity.CRITICAL and "TreePredictor" in message


def test_real_tree_ensembles_are_clean(tmp_path: Path) -> None:
    """Every tree scikit-learn builds passes: forests, boosting, pruning, isolation."""
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        HistGradientBoostingRegressor,
        IsolationForest,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeRegressor

    x, y = _data()
    models = {
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y),
        "extra": ExtraTreesRegressor(n_estimators=3, random_state=0).fit(x, x[:, 2]),
        "gbc": GradientBoostingClassifier(n_estimators=3).fit(x, y),
        "hgb": HistGradientBoostingRegressor(max_iter=3).fit(x, x[:, 1]),
        "iso": IsolationForest(n_estimators=3, random_state=0).fit(x),
        "pruned": DecisionTreeRegressor(ccp_alpha=0.01, random_state=0).fit(x, x[:, 0]),
    }
    for name, model in models.items():
        path = tmp_path / f"{name}.skops"
        sio.dump(model, path)
        assert_clean(scan(path))
