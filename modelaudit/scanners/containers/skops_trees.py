"""Decision trees in a skops archive: the node indices scikit-learn follows unchecked.

skops builds `sklearn.tree._tree.Tree` (inside every DecisionTree*, RandomForest*,
ExtraTrees*, GradientBoosting* and IsolationForest model) by handing the archive's `nodes`
array to `Tree.__setstate__`, which (scikit-learn 1.9) checks the array's dtype and
dimensions and the `values` shape, and nothing else: `node_count` is not compared with the
array's length, and each node's `left_child`, `right_child` and `feature` are raw indices C
code follows with bounds checks compiled out. A file that loads cleanly then makes `predict`
and `apply` read outside the node buffer and the input row (a segfault, or other memory read
as a tree), and `feature_importances_` add to `importances[feature]` wherever that lands: a
write out of bounds. A child that is not after its parent makes `predict` loop for ever.
HistGradientBoosting's `TreePredictor` follows its nodes' `left`/`right` the same way.
skops 0.16 stopped trusting both types by default for this reason, but callers trust what
`get_untrusted_types` lists, and MLflow what its MLmodel lists.

No tree scikit-learn builds has any of this (its builders append children after their
parent, and every split feature is below `n_features`), so any such node is reported.
The schema is read before the member walk; the arrays are judged as the walk extracts them
(never decompressed twice), read with NumPy's own `.npy` header rules, never loaded.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

from ...findings import IssueSeverity, ScanResult
from ...formats.npy import NpyError, read_header
from ...rules.text import SKOPS_TREE_NODES
from ..text.skops_schema import SchemaWalk

TREE: Final = ("sklearn.tree._tree", "Tree")
PREDICTOR: Final = ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor")
#: Loaders that build a Tree from its state (TreeNode; ReduceNode with the same state).
_TREE_LOADERS: Final = frozenset({"TreeNode", "ReduceNode"})
#: Node array bytes judged per archive; a larger forest is left inconclusive.
MAX_TOTAL_BYTES: Final = 1 << 30
_CHUNK_BYTES: Final = 1 << 20
#: The schema text that must be present for a walk to be worth it.
NEEDLES: Final = (TREE[0], PREDICTOR[1])


@dataclass
class _Use:
    """How the trees that share one node array would index it."""

    kind: str
    n_features: int | None = None
    node_count: int | None = None


@dataclass
class _Verdict:
    member: str
    kind: str
    nodes: int
    problems: list[str] = field(default_factory=list)
    loops: bool = False


class SkopsTrees:
    """The node arrays a skops schema hands to trees, judged as the member walk extracts
    them."""

    def __init__(self, schema: Any) -> None:
        self.uses: dict[str, _Use] = {}
        self.complete = True
        self._judged = 0
        self._verdicts: list[_Verdict] = []
        self._walk(schema)

    def wants(self, member: str) -> bool:
        return member in self.uses

    # -- the schema

    def _walk(self, schema: Any) -> None:
        """Every Tree and TreePredictor node, with what it would index its array by. skops
        memoizes nodes by `__id__` (the first one built wins), so a value is every value a
        node of that id holds: the smallest `n_features`, the largest `node_count`, each
        array file."""
        by_id: dict[Any, list[dict[str, Any]]] = {}
        found: list[tuple[str, dict[str, Any]]] = []
        walk = SchemaWalk(schema)
        for value in walk:
            node_id = value.get("__id__")
            if isinstance(node_id, int) and not isinstance(node_id, bool):
                by_id.setdefault(node_id, []).append(value)
            named = (value.get("__module__"), value.get("__class__"))
            if named == TREE and value.get("__loader__") in _TREE_LOADERS:
                found.append(("tree", value))
            elif named == PREDICTOR and value.get("__loader__") == "ObjectNode":
                found.append(("predictor", value))
        self.complete = self.complete and walk.complete
        for kind, node in found:
            self._note(kind, node, by_id)

    def _note(
        self, kind: str, node: dict[str, Any], by_id: dict[Any, list[dict[str, Any]]]
    ) -> None:
        def candidates(value: Any) -> list[dict[str, Any]]:
            if not isinstance(value, dict):
                return []
            same = by_id.get(value.get("__id__"), [])
            return [value, *(v for v in same if v is not value)]

        def ints(value: Any) -> list[int]:
            out = []
            for v in candidates(value):
                if v.get("__loader__") == "JsonNode" and isinstance(v.get("content"), str):
                    try:
                        number = json.loads(v["content"])
                    except ValueError:
                        continue
                    if isinstance(number, int) and not isinstance(number, bool):
                        out.append(number)
            return out

        def fields(value: Any) -> dict[str, Any]:
            merged: dict[str, Any] = {}
            for v in candidates(value):
                content = v.get("content")
                if isinstance(content, dict):
                    for key, item in content.items():
                        merged.setdefault(key, item)
            return merged

        state = fields(node.get("content"))
        files = [
            v["file"]
            for v in candidates(state.get("nodes"))
            if v.get("__loader__") == "NdArrayNode" and isinstance(v.get("file"), str)
        ]
        n_features = node_count = None
        if kind == "tree":
            reduce = node.get("__reduce__")
            args = candidates(reduce.get("args") if isinstance(reduce, dict) else None)
            first = [
                a["content"][0] for a in args if isinstance(a.get("content"), list) and a["content"]
            ]
            features = [n for a in first for n in ints(a)]
            n_features = min(features) if features else None
            counts = ints(state.get("node_count"))
            node_count = max(counts) if counts else None
        for file in files:
            use = self.uses.setdefault(file, _Use(kind))
            if n_features is not None:
                use.n_features = min(
                    n_features, use.n_features if use.n_features is not None else n_features
                )
            if node_count is not None:
                use.node_count = max(node_count, use.node_count or 0)

    # -- the arrays

    def judge(self, member: str, source: bytes | str) -> None:
        """Judge the extracted member (its bytes, or the file it was spooled to)."""
        use = self.uses.get(member)
        if use is None:
            return
        try:
            if isinstance(source, bytes):
                self._judge(member, use, io.BytesIO(source))
            else:
                with open(source, "rb") as f:
                    self._judge(member, use, f)
        except (OSError, NpyError, ValueError, TypeError):
            return  # not an array np.load would read: the tree never loads

    def _judge(self, member: str, use: _Use, f: BinaryIO) -> None:
        import numpy as np

        header = read_header(f)
        if header.has_object or len(header.shape) != 1 or header.itemsize <= 0:
            return
        dtype = np.lib.format.descr_to_dtype(header.descr)
        names = (
            ("left_child", "right_child", "feature")
            if use.kind == "tree"
            else ("left", "right", "is_leaf")
        )
        if (
            dtype.names is None
            or not set(names) <= set(dtype.names)
            or dtype.itemsize != header.itemsize
        ):
            return
        count = header.shape[0]
        if self._judged + count * dtype.itemsize > MAX_TOTAL_BYTES:
            self.complete = False
            return
        self._judged += count * dtype.itemsize
        verdict = _Verdict(member, use.kind, count)
        if use.node_count is not None and use.node_count > count:
            verdict.problems.append(
                f"node_count {use.node_count} exceeds the array's {count} nodes"
            )
        per = max(1, _CHUNK_BYTES // dtype.itemsize)
        start = 0
        while start < count and len(verdict.problems) < 3:
            raw = f.read(min(per, count - start) * dtype.itemsize)
            rows = len(raw) // dtype.itemsize
            if rows == 0:
                break  # truncated: np.load refuses it
            chunk = np.frombuffer(raw[: rows * dtype.itemsize], dtype=dtype)
            self._chunk(chunk, start, count, use, verdict)
            start += rows
        if verdict.problems or verdict.loops:
            self._verdicts.append(verdict)

    @staticmethod
    def _chunk(chunk: Any, start: int, count: int, use: _Use, verdict: _Verdict) -> None:
        import numpy as np

        index = np.arange(start, start + len(chunk), dtype=np.int64)
        if use.kind == "tree":
            left = chunk["left_child"].astype(np.int64)
            right = chunk["right_child"].astype(np.int64)
            split = left != -1  # sklearn's _TREE_LEAF: every other node is followed
        else:
            left = chunk["left"].astype(np.int64)
            right = chunk["right"].astype(np.int64)
            split = chunk["is_leaf"] == 0
        outside = split & ((left < 0) | (left >= count) | (right < 0) | (right >= count))
        for at in np.flatnonzero(outside)[:1]:
            verdict.problems.append(
                f"node {int(index[at])} has children {int(left[at])}, {int(right[at])} "
                f"outside its {count} nodes"
            )
        if use.kind == "tree" and use.n_features is not None:
            feature = chunk["feature"].astype(np.int64)
            bad = split & ((feature < 0) | (feature >= use.n_features))
            for at in np.flatnonzero(bad)[:1]:
                verdict.problems.append(
                    f"node {int(index[at])} splits on feature {int(feature[at])} of "
                    f"{use.n_features}"
                )
        if np.any(split & ~outside & ((left <= index) | (right <= index))):
            verdict.loops = True

    # -- findings

    def report(self, where: str, result: ScanResult) -> None:
        for verdict in self._verdicts:
            name = (
                "sklearn Tree" if verdict.kind == "tree" else "HistGradientBoosting TreePredictor"
            )
            if verdict.problems:
                message = (
                    f"skops {name} node array {verdict.member} indexes out of bounds: "
                    + "; ".join(verdict.problems)
                )
                severity = IssueSeverity.CRITICAL
                why = (
                    "scikit-learn follows these indices in C without bounds checks: predict "
                    "reads memory outside the tree (a crash, or memory read as a tree) and "
                    "feature_importances_ writes outside its array. No tree scikit-learn "
                    "builds has such a node."
                )
            else:
                message = (
                    f"skops {name} node array {verdict.member} has a child that is not after "
                    "its parent: predict can loop for ever"
                )
                severity = IssueSeverity.WARNING
                why = (
                    "scikit-learn's tree builders always add a node's children after it; a "
                    "loop makes every prediction that reaches it hang the process."
                )
            result.add_issue(
                message,
                severity=severity,
                location=where,
                details={"member": verdict.member, "kind": verdict.kind, "nodes": verdict.nodes},
                why=why,
                rule=SKOPS_TREE_NODES,
            )
        if not self.complete:
            result.mark_inconclusive("skops tree node arrays past the check's budget not judged")
