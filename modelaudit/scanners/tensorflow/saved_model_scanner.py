"""TensorFlow SavedModel, frozen GraphDef and Keras metadata protobufs, read without TensorFlow.

The wire walk follows SavedModel -> MetaGraphDef -> GraphDef -> NodeDef (op, name, attr) and
FunctionDefLibrary -> FunctionDef -> NodeDef, skipping tensor contents by length. Ops are judged
by name: ones that run Python, touch files or the network are CRITICAL, ops stock TensorFlow
does not define need a native library and are WARNING. Keras layer metadata (JSON inside
`keras_metadata.pb` and SavedUserObject) goes through the Keras config checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from typing import Any, Final

from ...budget import BudgetExceeded, WorkBudget, report_budget
from ...formats.json_values import MAX_JSON_VALUES, values_bound
from ...formats.protowire import FIXED64, LENGTH, VARINT, Wire, WireError, open_wire
from ...rules import frameworks as R
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..keras.config import KerasConfigAnalyzer, _escapes
from .dangerous_ops import (
    CACHE_OPS,
    CHECKPOINT_OPS,
    DEBUG_URL_OPS,
    FILE_OPS,
    GRAPH_INPUT_OPS,
    LOG_STREAMS,
    NETWORK_OPS,
    PROTO_OPS,
    PYTHON_OPS,
    SUMMARY_CREATORS,
    SUMMARY_WRITE_OPS,
    TEXT_TABLE_OPS,
)
from .graph import Graph, Node
from .op_names import TF_OP_NAMES, TF_TEXT_OPS
from .text_proto import read_graph

_SAVE_SCOPE: Final = re.compile(r"^save(_\d+)?$")
#: Graphs inside graphs (DatasetFromGraph constants) read before the rest counts as unseen.
_MAX_HIDDEN_DEPTH: Final = 4


class _Reader:
    def __init__(self, wire: Wire) -> None:
        self.w = wire
        self.g = Graph()

    def saved_model(self, start: int, end: int) -> None:
        for f, wt, a, b in self.w.fields(start, end):
            if f == 2 and wt == LENGTH:
                self.meta_graph(a, a + b)

    def meta_graph(self, start: int, end: int) -> None:
        for f, wt, a, b in self.w.fields(start, end):
            if wt != LENGTH:
                continue
            if f == 1:
                self.meta_info(a, a + b)
            elif f == 2:
                self.graph_def(a, a + b, "graph")
            elif f == 3:
                for sf, swt, sa, sb in self.w.fields(a, a + b):
                    if sf in (1, 2, 3) and swt == LENGTH:
                        scope = self.w.text(sa, sb).split("/", 1)[0].split(":", 1)[0]
                        self.g.saver_scopes.add(scope)
            elif f == 6:
                self.asset_file_def(a, a + b)
            elif f == 7:
                self.object_graph(a, a + b)

    def meta_info(self, start: int, end: int) -> None:
        for f, wt, a, b in self.w.fields(start, end):
            if f == 4 and wt == LENGTH:
                self.g.tags.append(self.w.text(a, b))
            elif f == 5 and wt == LENGTH:
                self.g.tf_version = self.w.text(a, b)

    def asset_file_def(self, start: int, end: int) -> None:
        for f, wt, a, b in self.w.fields(start, end):
            if f == 1 and wt == LENGTH:
                for tf, twt, ta, tb in self.w.fields(a, a + b):
                    if tf == 1 and twt == LENGTH:
                        self.g.asset_tensors.add(self.w.text(ta, tb).split(":", 1)[0])
            elif f == 2 and wt == LENGTH:
                self.g.asset_files.append(self.w.text(a, b))

    def object_graph(self, start: int, end: int) -> None:
        for f, wt, a, b in self.w.fields(start, end):
            if f != 1 or wt != LENGTH:
                continue
            for of, owt, oa, ob in self.w.fields(a, a + b):
                if of == 4 and owt == LENGTH:
                    for uf, uwt, ua, ub in self.w.fields(oa, oa + ob):
                        if uf == 3 and uwt == LENGTH and ub:
                            self.g.keras_metadata.append(self.w.text(ua, ub))

    def graph_def(self, start: int, end: int, where: str) -> None:
        for f, wt, a, b in self.w.fields(start, end):
            if wt != LENGTH:
                continue
            if f == 1:
                self.g.nodes.append((where, self.node(a, a + b)))
            elif f == 2:
                self.library(a, a + b)

    def library(self, start: int, end: int) -> None:
        for f, wt, a, b in self.w.fields(start, end):
            if f == 1 and wt == LENGTH:
                self.function(a, a + b)

    def function(self, start: int, end: int) -> None:
        name = ""
        nodes: list[Node] = []
        for f, wt, a, b in self.w.fields(start, end):
            if wt != LENGTH:
                continue
            if f == 1:
                for sf, swt, sa, sb in self.w.fields(a, a + b):
                    if sf == 1 and swt == LENGTH:
                        name = self.w.text(sa, sb)
            elif f == 3:
                nodes.append(self.node(a, a + b))
        self.g.functions.add(name)
        self.g.nodes.extend((f"function {name}", n) for n in nodes)

    def node(self, start: int, end: int) -> Node:
        node = Node("", "")
        for f, wt, a, b in self.w.fields(start, end):
            if wt != LENGTH:
                continue
            if f == 1:
                node.name = self.w.text(a, b)
            elif f == 2:
                node.op = self.w.text(a, b)
            elif f == 3 and len(node.inputs) < 64:
                node.inputs.append(self.w.text(a, b))
            elif f == 5:
                # A map entry: a later entry of the same key replaces the earlier one (as
                # protobuf reads maps), two values in one entry merge.
                key = ""
                values: list[str] = []
                blobs: list[tuple[int, int]] = []
                for ef, ewt, ea, eb in self.w.fields(a, a + b):
                    if ef == 1 and ewt == LENGTH:
                        key = self.w.text(ea, eb)
                    elif ef == 2 and ewt == LENGTH:
                        values += self.attr_strings(ea, ea + eb, blobs)
                node.attrs[key] = values
                if key == "value":
                    node.blobs = blobs
        return node

    def attr_strings(self, start: int, end: int, blobs: list[tuple[int, int]]) -> list[str]:
        """String values of an AttrValue: `s`, `list.s`, `func.name`, string tensors (whose
        raw spans are added to `blobs`)."""
        out: list[str] = []
        for f, wt, a, b in self.w.fields(start, end):
            if wt != LENGTH:
                continue
            if f == 2:
                out.append(self.w.text(a, b))
            elif f == 1:
                for lf, lwt, la, lb in self.w.fields(a, a + b):
                    if lf == 2 and lwt == LENGTH:
                        out.append(self.w.text(la, lb))
                    elif lf == 9 and lwt == LENGTH:
                        out += self.func_name(la, la + lb)
            elif f == 10:
                out += self.func_name(a, a + b)
            elif f == 8:
                for tf, twt, ta, tb in self.w.fields(a, a + b):
                    if tf == 8 and twt == LENGTH and len(out) < 64:
                        out.append(self.w.text(ta, tb))
                        blobs.append((ta, tb))
        return out

    def hidden_graphs(self) -> None:
        """Read the GraphDef each DatasetFromGraph node takes from a string constant as part
        of the graph (its ops run when the dataset does), graphs inside those too, up to
        `_MAX_HIDDEN_DEPTH`. Each constant's bytes are read once and a nested graph lies
        inside its parent's bytes, so the work is at most that depth times the file. A
        graph that is not a constant in the file (a function argument, a run-time input) is
        recorded in `unseen`."""
        done = 0
        parsed: set[tuple[int, int]] = set()
        for level in range(_MAX_HIDDEN_DEPTH + 1):
            batch = self.g.nodes[done:]
            done = len(self.g.nodes)
            users = [(w, n) for w, n in batch if n.op in GRAPH_INPUT_OPS]
            if not users:
                return
            if level == _MAX_HIDDEN_DEPTH:
                self.g.unseen += [f"{w}/{n.name} (nested too deep)" for w, n in users[:10]]
                return
            consts = {(w, n.name): n for w, n in batch if n.op == "Const"}
            for where, node in users:
                source = node.inputs[0].split(":", 1)[0].lstrip("^") if node.inputs else ""
                const = consts.get((where, source))
                if const is None or not const.blobs:
                    self.g.unseen.append(f"{where}/{node.name}")
                    continue
                a, b = const.blobs[0]
                if (a, b) not in parsed:
                    parsed.add((a, b))
                    self.graph_def(a, a + b, f"{where[:256]}/{node.name[:64]} graph")

    def func_name(self, start: int, end: int) -> list[str]:
        return [
            self.w.text(a, b)
            for f, wt, a, b in self.w.fields(start, end)
            if f == 1 and wt == LENGTH
        ]

    def saved_metadata(self, start: int, end: int) -> None:
        for f, wt, a, b in self.w.fields(start, end):
            if f == 1 and wt == LENGTH:
                for nf, nwt, na, nb in self.w.fields(a, a + b):
                    if nf == 5 and nwt == LENGTH and nb:
                        self.g.keras_metadata.append(self.w.text(na, nb))


#: GraphDebugInfo (`debug/saved_model_debug_info.pb`, SaveOptions(save_debug_info=True)):
#: field -> wire type per message. Map entries are (key 1, value 2) messages.
_DEBUG_INFO: Final = {1: LENGTH, 2: LENGTH, 4: LENGTH, 5: LENGTH, 6: LENGTH}
_FILE_LINE_COL: Final = {1: VARINT, 2: VARINT, 3: VARINT, 4: LENGTH, 5: LENGTH}


def _expect(wire: Wire, start: int, end: int, shape: dict[int, int]) -> list[tuple[int, int, int]]:
    """The (field, a, b) of a message whose every field is one `shape` allows."""
    out = []
    for f, wt, a, b in wire.fields(start, end):
        if shape.get(f) != wt:
            raise WireError(f"field {f} (wire type {wt}) is not part of a GraphDebugInfo")
        out.append((f, a, b))
    return out


def _stack_trace(wire: Wire, start: int, end: int) -> None:
    for f, wt, a, b in wire.fields(start, end):
        if f == 1 and wt == LENGTH:
            _expect(wire, a, a + b, _FILE_LINE_COL)
        elif f == 2 and (wt == FIXED64 or (wt == LENGTH and b % 8 == 0)):
            continue  # frame ids, packed or not
        else:
            raise WireError(f"field {f} (wire type {wt}) is not part of a StackTrace")


def check_debug_info(wire: Wire) -> None:
    """Raise WireError unless the whole buffer is a GraphDebugInfo: source file names and
    stack frames (file index, line, function name, code line) keyed by op name or frame id;
    nothing in it is an op or is loaded as a graph."""
    for f, a, b in _expect(wire, 0, wire.size, _DEBUG_INFO):
        if f == 1:
            continue
        key_type = LENGTH if f in (2, 5) else FIXED64
        value_type = FIXED64 if f == 5 else LENGTH
        for ef, ea, eb in _expect(wire, a, a + b, {1: key_type, 2: value_type}):
            if ef == 2 and f == 4:
                _expect(wire, ea, ea + eb, _FILE_LINE_COL)
            elif ef == 2 and f in (2, 6):
                _stack_trace(wire, ea, ea + eb)


def read_node(wire: Wire, start: int, end: int) -> Node:
    """One NodeDef at `wire[start:end]` (a TFLite Flex op carries one in its options)."""
    return _Reader(wire).node(start, end)


#: `SaveOptions(save_debug_info=True)` writes `debug/saved_model_debug_info.pb`: no SavedModel.
_DEBUG_INFO_NAME: Final = "saved_model_debug_info"


def _kind(wire: Wire, name: str) -> str:
    """SavedModel, GraphDef (or "both"), Keras metadata or fingerprint.

    `tf.saved_model.load` parses `saved_model.pb` as a SavedModel whatever its fields, and
    protobuf skips unknown fields and known ones of the wrong wire type, so a leading unknown
    field decides nothing: another name is a SavedModel when a top-level field 1 is a varint
    (its schema version), a GraphDef when one is a message (a node), both when neither or
    each is there (the graph a loader would build either way is read)."""
    base = os.path.basename(name).lower()
    if base.startswith("keras_metadata"):
        return "keras_metadata"
    if base.startswith("fingerprint"):
        return "fingerprint"
    if base.startswith("saved_model") and not base.startswith(_DEBUG_INFO_NAME):
        return "saved_model"
    version = node = False
    for f, wt, _, _ in wire.fields(0, wire.size) if wire.size else ():
        if f == 1:
            version, node = version or wt == VARINT, node or wt == LENGTH
            if version and node:
                break
    if version and not node:
        return "saved_model"
    if node and not version:
        return "graph_def"
    return "both"


class TensorFlowScanner(BaseScanner):
    name = "tensorflow"
    description = "TensorFlow SavedModel and GraphDef protobufs: Python, file and network ops"
    supported_extensions = [".pb", ".pbtxt"]
    formats = ("tf_protobuf",)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        result.bytes_scanned = self.file_size(path)
        try:
            kind, graph = self._read(path)
        except (WireError, OSError, ValueError) as exc:
            self.mark_malformed(result, path, "TensorFlow protobuf", exc)
            result.finish()
            return result
        self._judge_nodes(graph, path, result)
        self._judge_assets(graph, path, result)
        self._judge_keras(graph, path, result)
        if graph.unseen:
            result.mark_inconclusive(
                "DatasetFromGraph runs a graph the file does not show: "
                + ", ".join(graph.unseen[:5])
            )
        result.metadata["format_details"] = {
            "kind": kind,
            "nodes": len(graph.nodes),
            "functions": len(graph.functions),
            "tags": graph.tags[:20],
            "tensorflow_version": graph.tf_version,
        }
        result.finish()
        return result

    def _read(self, path: str) -> tuple[str, Graph]:
        name = self.display_path or path
        if name.lower().endswith(".pbtxt"):
            graph = read_graph(path)
            # the text reader keeps no raw bytes, so a graph held in a constant is not read
            graph.unseen += [f"{w}/{n.name}" for w, n in graph.nodes if n.op in GRAPH_INPUT_OPS]
            return "text", graph
        with open_wire(path) as wire:
            kind = _kind(wire, name)
            reader = _Reader(wire)
            if kind == "saved_model":
                reader.saved_model(0, wire.size)
            elif kind == "both":
                # the SavedModel reading of a file named otherwise is an extra: a GraphDef's
                # fields that do not parse as one leave the GraphDef reading in charge
                with contextlib.suppress(WireError):
                    reader.saved_model(0, wire.size)
            if kind == "keras_metadata":
                reader.saved_metadata(0, wire.size)
            elif kind != "saved_model":
                # a fingerprint has no nodes; walking it as a graph catches a renamed one
                try:
                    reader.graph_def(0, wire.size, "graph")
                except WireError:
                    if not os.path.basename(name).lower().startswith(_DEBUG_INFO_NAME):
                        raise
                    # debug info's file names are no NodeDefs: TensorFlow cannot parse it as
                    # a graph, so it is judged as what it says it is
                    check_debug_info(wire)
                    return "debug_info", Graph()
            reader.hidden_graphs()
        return kind, reader.g

    def _issue(
        self,
        result: ScanResult,
        path: str,
        where: str,
        node: Node,
        message: str,
        severity: IssueSeverity,
        rule: str,
        why: str,
        **extra: Any,
    ) -> None:
        result.add_issue(
            f"{message}: op {node.op} '{node.name}' in {where}",
            severity=severity,
            location=self.location(path, f"{where}/{node.name}"),
            details={"op": node.op, "node": node.name, "scope": where, **extra},
            why=why,
            rule=rule,
        )

    def _judge_nodes(self, graph: Graph, path: str, result: ScanResult) -> None:
        consts = {(w, n.name): n for w, n in graph.nodes if n.op == "Const"}
        named = {(w, n.name) for w, n in graph.nodes}
        custom: dict[str, tuple[str, Node]] = {}
        summary_writes: list[tuple[str, Node]] = []
        for where, node in graph.nodes:
            op = node.op
            if op in PYTHON_OPS:
                self._issue(
                    result,
                    path,
                    where,
                    node,
                    "Graph calls Python",
                    IssueSeverity.CRITICAL,
                    R.TF_PYTHON_OP,
                    "The op runs a Python function registered in the loading process, so the "
                    "model can execute arbitrary code.",
                    token=node.attrs.get("token", [""])[:1],
                )
            elif op in FILE_OPS:
                self._issue(
                    result,
                    path,
                    where,
                    node,
                    "Graph touches files",
                    IssueSeverity.CRITICAL,
                    R.TF_FILE_OP,
                    "Running the graph reads or writes files on the host.",
                )
            elif op in NETWORK_OPS:
                self._issue(
                    result,
                    path,
                    where,
                    node,
                    "Graph opens network connections",
                    IssueSeverity.CRITICAL,
                    R.TF_NETWORK_OP,
                    "Running the graph connects to a host the model names.",
                )
            elif op in CHECKPOINT_OPS:
                if not self._in_checkpoint(where, node, graph):
                    self._issue(
                        result,
                        path,
                        where,
                        node,
                        "Save/restore op outside the checkpoint",
                        IssueSeverity.CRITICAL,
                        R.TF_CHECKPOINT_OP,
                        "The op can write or read any path its inputs name when the graph runs.",
                    )
            elif op in TEXT_TABLE_OPS:
                self._text_table(result, path, where, node, graph, consts, named)
            elif op in SUMMARY_WRITE_OPS:
                summary_writes.append((where, node))
            elif op in CACHE_OPS:
                self._cache(result, path, where, node, consts)
            elif op == "PrintV2":
                stream = (node.attrs.get("output_stream") or [""])[0]
                if stream not in LOG_STREAMS:
                    self._issue(
                        result,
                        path,
                        where,
                        node,
                        f"PrintV2 writes to {stream!r}",
                        IssueSeverity.CRITICAL,
                        R.TF_PRINT_TO_FILE,
                        "Running the graph appends data to a file the model names.",
                        output_stream=stream,
                    )
            elif op in DEBUG_URL_OPS:
                urls = [u for u in node.attrs.get("debug_urls", []) if u]
                if urls:
                    self._issue(
                        result,
                        path,
                        where,
                        node,
                        "Debug op sends tensors to URLs",
                        IssueSeverity.CRITICAL,
                        R.TF_NETWORK_OP,
                        "Running the graph writes tensors to files or gRPC endpoints.",
                        debug_urls=urls[:10],
                    )
            elif op in PROTO_OPS:
                source = (node.attrs.get("descriptor_source") or ["local://"])[0]
                if source != "local://":
                    self._issue(
                        result,
                        path,
                        where,
                        node,
                        f"Proto op loads descriptors from {source!r}",
                        IssueSeverity.CRITICAL,
                        R.TF_FILE_OP,
                        "Running the graph reads the named file.",
                        descriptor_source=source,
                    )
            elif op and op not in TF_OP_NAMES and op not in graph.functions:
                custom.setdefault(op, (where, node))
        if summary_writes:
            self._summary_writes(result, path, graph, summary_writes)
        text_ops = [op for op in custom if op in TF_TEXT_OPS]
        if text_ops:
            result.add_issue(
                f"tensorflow-text ops: {', '.join(text_ops)}",
                severity=IssueSeverity.INFO,
                location=self.location(path),
                details={"ops": text_ops},
                why="Running the model needs tensorflow-text's op libraries loaded; these ops "
                "normalize and tokenize the strings they are given.",
                rule=R.TF_CUSTOM_OP,
            )
        for op, (where, node) in custom.items():
            if op in TF_TEXT_OPS:
                continue
            self._issue(
                result,
                path,
                where,
                node,
                f"Custom op '{op}' not defined by TensorFlow",
                IssueSeverity.WARNING,
                R.TF_CUSTOM_OP,
                "Running the model needs a native op library loaded with tf.load_op_library, "
                "which runs code the scan cannot see.",
            )

    def _summary_writes(
        self, result: ScanResult, path: str, graph: Graph, writes: list[tuple[str, Node]]
    ) -> None:
        """Summary writes with no writer created in the graph go into a writer the host made
        under a name the graph repeats: the host chose the file, the model writes the events.
        With a creator in the graph, the creator's finding says it all."""
        if any(node.op in SUMMARY_CREATORS for _, node in graph.nodes):
            return
        names = sorted(
            {
                name
                for _, node in graph.nodes
                if node.op == "SummaryWriter"
                for name in node.attrs.get("shared_name", [])[:1]
                if name
            }
        )
        where, node = writes[0]
        self._issue(
            result,
            path,
            where,
            node,
            "Graph writes summaries into a writer it does not create"
            + (f" ({', '.join(repr(n[:64]) for n in names[:3])})" if names else ""),
            IssueSeverity.WARNING,
            R.TF_FILE_OP,
            "Running the graph appends events to a summary writer the loading program "
            "created under a name the graph repeats (TF1 graphs, the legacy "
            "create_file_writer's 'logdir:<path>'): the program chose the file, the model "
            "writes what goes in it.",
            shared_names=names[:10],
        )

    @staticmethod
    def _in_checkpoint(where: str, node: Node, graph: Graph) -> bool:
        if where.startswith("function ") and (
            "_traced_save" in where or "_traced_restore" in where
        ):
            return True
        scope = node.name.split("/", 1)[0]
        if where == "graph" and "/" in node.name:
            return scope in graph.saver_scopes or bool(_SAVE_SCOPE.match(scope))
        return False

    def _text_table(
        self,
        result: ScanResult,
        path: str,
        where: str,
        node: Node,
        graph: Graph,
        consts: dict[tuple[str, str], Node],
        named: set[tuple[str, str]],
    ) -> None:
        source = node.inputs[1].split(":", 1)[0].lstrip("^") if len(node.inputs) > 1 else ""
        if where == "graph" and source in graph.asset_tensors:
            return
        const = consts.get((where, source))
        if const is None and where != "graph" and (where, source) not in named:
            return  # a function argument: TF2 passes the captured asset path in
        filename = (const.attrs.get("value") or [""])[0] if const else ""
        if filename and _escapes(filename):
            self._issue(
                result,
                path,
                where,
                node,
                f"Lookup table reads {filename!r}",
                IssueSeverity.CRITICAL,
                R.TF_ASSET_ESCAPE,
                "Loading the model reads a file outside the model's folder into a table.",
                filename=filename,
            )
        else:
            self._issue(
                result,
                path,
                where,
                node,
                "Lookup table initialised from a text file",
                IssueSeverity.WARNING,
                R.TF_TEXT_TABLE,
                "Loading the model reads a file that is not a registered model asset.",
                filename=filename,
            )

    def _cache(
        self,
        result: ScanResult,
        path: str,
        where: str,
        node: Node,
        consts: dict[tuple[str, str], Node],
    ) -> None:
        """A tf.data cache with a non-empty `filename` writes cache files there (and reads
        them back on later runs); the empty string caches in memory, as `Dataset.cache()`
        writes. A filename the graph does not hold leaves the file inconclusive."""
        source = node.inputs[1].split(":", 1)[0].lstrip("^") if len(node.inputs) > 1 else ""
        const = consts.get((where, source))
        if const is None:
            result.mark_inconclusive(
                f"dataset cache {where}/{node.name} takes its filename at run time"
            )
            return
        filename = (const.attrs.get("value") or [""])[0]
        if filename:
            self._issue(
                result,
                path,
                where,
                node,
                f"Dataset cache writes files at {filename!r}",
                IssueSeverity.CRITICAL,
                R.TF_FILE_OP,
                "Running the graph writes the dataset's elements to files at this path and "
                "reads whatever is there on later runs.",
                filename=filename,
            )

    def _judge_assets(self, graph: Graph, path: str, result: ScanResult) -> None:
        for name in graph.asset_files:
            if _escapes(name):
                result.add_issue(
                    f"SavedModel asset path escapes the assets folder: {name!r}",
                    severity=IssueSeverity.CRITICAL,
                    location=self.location(path, "asset_file_def"),
                    details={"asset": name},
                    why="Loading the SavedModel reads this file from anywhere on the host.",
                    rule=R.TF_ASSET_ESCAPE,
                )

    def _judge_keras(self, graph: Graph, path: str, result: ScanResult) -> None:
        analyzer = KerasConfigAnalyzer()
        names: list[str] = []
        budget = WorkBudget("Keras JSON values", MAX_JSON_VALUES)
        for i, text in enumerate(graph.keras_metadata):
            try:
                budget.charge(values_bound(text))
            except BudgetExceeded as exc:
                report_budget(result, self.location(path, f"keras_metadata[{i}]"), exc)
                break
            try:
                value = json.loads(text)
            except ValueError:
                continue
            analyzer.analyze(value, f"keras_metadata[{i}]")
            if isinstance(value, dict) and i == 0 and isinstance(value.get("name"), str):
                names.append(value["name"])
        analyzer.report(
            result, lambda at: self.location(path, at), "keras_metadata", "metadata", self.ctx
        )
        if names:
            result.metadata["model_names"] = names
