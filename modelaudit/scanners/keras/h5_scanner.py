"""HDF5 files, Keras H5 models in particular: links to other files and what the config loads.

h5py opens the file read-only; only links and dataset headers are walked (never weight
bytes), and the Keras `model_config`/`training_config` attributes are parsed as JSON and
handed to `keras_config`. External links are recorded, never followed.

PyTables (and so `pandas.read_hdf`) unpickles, as it opens a node, every scalar ASCII string
attribute that ends in "." and every row of a VLArray whose PSEUDOATOM is "object", and
hickle a scalar byte-string dataset holding a pickle: those bytes are scanned as nested
pickles (the only dataset bytes ever read).
"""

from __future__ import annotations

import json
from typing import Any

from ... import rules
from ...budget import BudgetExceeded, WorkBudget, report_budget
from ...formats import Format
from ...formats.hdf5_heaps import looping_heap
from ...formats.json_values import MAX_JSON_VALUES, values_bound
from ...formats.pickle_start import looks_like_pickle
from ...formats.view import BufferView, FileView
from ...rules import frameworks as R
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..nested_bytes import scan_nested_bytes
from .config import KerasConfigAnalyzer, model_names

MAX_LINKS = 1_000_000
MAX_GROUP_DEPTH = 64
#: Filters built into libhdf5 (deflate, shuffle, fletcher32, szip, nbit, scaleoffset) and h5py (lzf).
BUILTIN_FILTERS = frozenset({1, 2, 3, 4, 5, 6, 32000})
_INSTALL = "pip install h5py"
#: Attributes looked at, and object rows and bytes read, for what PyTables would unpickle.
MAX_ATTRIBUTES = 1_000_000
MAX_OBJECT_ROWS = 100_000
MAX_OBJECT_BYTES = 256 * 1024 * 1024


def missing_dependency(result: ScanResult, module: str, what: str, location: str) -> None:
    """A scanner whose library is absent reports it and leaves the file unverified."""
    message = f"{module} not installed, cannot scan {what}; install it with: pip install {module}"
    result.add_issue(
        message,
        severity=IssueSeverity.WARNING,
        location=location,
        details={"missing_module": module, "install": f"pip install {module}"},
        why="Without the library the file's content was not examined.",
        rule=rules.MISSING_DEPENDENCY,
    )
    result.mark_inconclusive(message)


def _attr_text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return None


class KerasH5Scanner(BaseScanner):
    name = "keras_h5"
    description = (
        "Keras H5 models and other HDF5 files: Lambda code, custom objects, external links"
    )
    supported_extensions = [".h5", ".hdf5"]
    formats = ("hdf5",)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        try:
            import h5py
        except ImportError:
            missing_dependency(result, "h5py", "Keras H5 files", self.location(path))
            result.finish()
            return result
        result.bytes_scanned = self.file_size(path)
        loop = self._looping_heap(path, result.bytes_scanned)
        if loop is not None:
            self.mark_malformed(result, path, "HDF5 file", loop)
            result.finish()
            return result
        try:
            with h5py.File(path, "r", locking=False) as f:
                self._walk_links(f, path, result)
                self._keras(f, path, result)
        except Exception as exc:  # h5py surfaces corrupt input as many exception types
            self.mark_malformed(result, path, "HDF5 file", f"{type(exc).__name__}: {exc}")
        result.finish()
        return result

    def _looping_heap(self, path: str, size: int) -> str | None:
        """A global heap libhdf5 would spin on (formats/hdf5_heaps.py), before it can."""
        whole = self.whole_file(path)
        if whole is not None:
            return looping_heap(BufferView(whole))
        try:
            with open(path, "rb") as f:
                return looping_heap(FileView(f, size))
        except OSError:
            return None

    def _walk_links(self, f: Any, path: str, result: ScanResult) -> None:
        """Every link, group by group (each lookup is one level, so depth costs nothing extra);
        hard-linked groups are entered once, soft and external links are never followed."""
        import h5py

        count = 0
        seen: set[int] = {hash(f.id)}
        stack: list[tuple[Any, str, int]] = [(f, "", 0)]
        pickles = _PyTablesPickles(self, path, result)
        if not pickles.attributes(f, ""):
            return
        while stack:
            group, prefix, depth = stack.pop()
            for key in group:
                count += 1
                if count > MAX_LINKS:
                    result.mark_inconclusive(f"more than {MAX_LINKS} HDF5 links; rest not checked")
                    return
                name = f"{prefix}{key}"
                link = group.get(key, getlink=True)
                where = self.location(path, name)
                if isinstance(link, h5py.ExternalLink):
                    result.add_issue(
                        f"HDF5 external link '{name}' -> {link.filename}:{link.path}",
                        severity=IssueSeverity.CRITICAL,
                        location=where,
                        details={"link": name, "filename": link.filename, "target": link.path},
                        why="Opening the model reads an object from a file the attacker names.",
                        rule=R.HDF5_EXTERNAL_LINK,
                    )
                if not isinstance(link, h5py.HardLink):
                    continue
                obj = group.get(key)
                if isinstance(obj, h5py.Dataset):
                    self._dataset(obj, name, where, result)
                    if hash(obj.id) not in seen:
                        seen.add(hash(obj.id))
                        if not (
                            pickles.attributes(obj, name)
                            and pickles.object_rows(obj, name)
                            and pickles.pickled_scalar(obj, name)
                        ):
                            return
                elif isinstance(obj, h5py.Group) and hash(obj.id) not in seen:
                    if depth + 1 > MAX_GROUP_DEPTH:
                        result.mark_inconclusive(
                            f"HDF5 groups nested deeper than {MAX_GROUP_DEPTH}; rest not checked"
                        )
                        continue
                    seen.add(hash(obj.id))
                    if not pickles.attributes(obj, name):
                        return
                    stack.append((obj, f"{name}/", depth + 1))

    def _dataset(self, ds: Any, name: str, where: str, result: ScanResult) -> None:
        plist = ds.id.get_create_plist()
        plugins = sorted(
            {plist.get_filter(i)[0] for i in range(plist.get_nfilters())} - BUILTIN_FILTERS
        )
        if plugins:
            result.add_issue(
                f"Dataset '{name}' needs HDF5 filter plugin(s) {plugins}",
                severity=IssueSeverity.WARNING,
                location=where,
                details={"dataset": name, "filters": plugins},
                why="Reading it makes HDF5 load a native library for the filter from its "
                "plugin path.",
                rule=R.HDF5_PLUGIN_FILTER,
            )
        external = ds.external
        if external:
            files = [
                (e[0].decode("utf-8", "replace") if isinstance(e[0], bytes) else str(e[0]))
                for e in external
            ]
            result.add_issue(
                f"Dataset '{name}' stores its data in external file(s): {', '.join(files[:5])}",
                severity=IssueSeverity.CRITICAL,
                location=where,
                details={"dataset": name, "files": files[:100]},
                why="Reading the weights reads these files, which can be any file on the host.",
                rule=R.HDF5_EXTERNAL_STORAGE,
            )
        if ds.is_virtual:
            sources = sorted({str(vs.file_name) for vs in ds.virtual_sources()} - {"."})
            if sources:
                result.add_issue(
                    f"Virtual dataset '{name}' maps data from {', '.join(sources[:5])}",
                    severity=IssueSeverity.CRITICAL,
                    location=where,
                    details={"dataset": name, "files": sources[:100]},
                    why="Reading the weights opens the named files.",
                    rule=R.HDF5_VIRTUAL_DATASET,
                )

    def _keras(self, f: Any, path: str, result: ScanResult) -> None:
        analyzer = KerasConfigAnalyzer()
        names: list[str] = []
        details: dict[str, Any] = {}
        for key in ("keras_version", "backend"):
            text = _attr_text(f.attrs.get(key))
            if text:
                details[key] = text
        budget = WorkBudget("Keras JSON values", MAX_JSON_VALUES)
        for key in ("model_config", "training_config"):
            text = _attr_text(f.attrs.get(key)) if key in f.attrs else None
            if text is None:
                continue
            try:
                budget.charge(values_bound(text))
            except BudgetExceeded as exc:
                report_budget(result, self.location(path, key), exc)
                break
            try:
                value = json.loads(text)
            except ValueError as exc:
                result.add_issue(
                    f"Keras {key} is not valid JSON: {exc}",
                    severity=IssueSeverity.WARNING,
                    location=self.location(path, key),
                    why="The loader may still act on it; nothing in it could be checked.",
                    rule=R.KERAS_UNREADABLE_CONFIG,
                )
                result.mark_inconclusive(f"malformed: {key} is not JSON")
                continue
            if key == "model_config":
                analyzer.analyze(value, key)
                names += model_names(value)
                if isinstance(value, dict) and isinstance(value.get("class_name"), str):
                    details["model_class"] = value["class_name"]
            else:
                analyzer.analyze_training(value, key)
        analyzer.report(
            result, lambda at: self.location(path, at), "model_config", "config", self.ctx
        )
        if names:
            result.metadata["model_names"] = names
        if details:
            result.metadata["format_details"] = details


class _PyTablesPickles:
    """What PyTables would unpickle, scanned one level deeper as pickles.

    PyTables reads every attribute of a node it opens and `pickle.loads` each scalar ASCII
    string ending in "." (its encoding of non-native values); an `ObjectAtom` VLArray pickles
    each row (pandas' fixed format stores object columns so). Bytes that reach no import are
    skipped: nothing in a pickle runs without one. Each object is visited once; attributes,
    rows and row bytes are charged to budgets, so a hostile file ends inconclusive."""

    def __init__(self, scanner: KerasH5Scanner, path: str, result: ScanResult) -> None:
        self.scanner = scanner
        self.path = path
        self.result = result
        self.attrs = WorkBudget("HDF5 attributes", MAX_ATTRIBUTES)
        self.rows = WorkBudget("HDF5 object rows", MAX_OBJECT_ROWS)
        self.bytes = WorkBudget("HDF5 string attribute and object row bytes", MAX_OBJECT_BYTES)

    def attributes(self, obj: Any, name: str) -> bool:
        """Scan the attributes of `obj` PyTables would unpickle; False once a budget is spent."""
        import h5py

        for attr in obj.attrs:
            try:
                self.attrs.charge()
            except BudgetExceeded as exc:
                report_budget(self.result, self.scanner.location(self.path, f"/{name}"), exc)
                return False
            aid = obj.attrs.get_id(attr)
            tid = aid.get_type()
            if (
                aid.shape != ()
                or not isinstance(tid, h5py.h5t.TypeStringID)
                or tid.get_cset() != h5py.h5t.CSET_ASCII
            ):
                continue
            value = obj.attrs[attr]
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            if not isinstance(raw, bytes):
                continue
            try:
                # (attributes may all name one large heap object: charged as read)
                self.bytes.charge(len(raw))
            except BudgetExceeded as exc:
                report_budget(self.result, self.scanner.location(self.path, f"/{name}"), exc)
                return False
            raw = raw.rstrip(b"\0")
            if raw.endswith(b".") and raw not in (b"0", b"0.") and looks_like_pickle(raw):
                self._scan(raw, f"/{name}@{attr}")
        return True

    def object_rows(self, ds: Any, name: str) -> bool:
        """Scan the rows of an object VLArray; False once a budget is spent."""
        import h5py
        import numpy as np

        if h5py.check_vlen_dtype(ds.dtype) is None or not (
            _attr_text(ds.attrs.get("PSEUDOATOM")) == "object"
            or _attr_text(ds.attrs.get("FLAVOR")) == "Object"
        ):
            return True
        for index in np.ndindex(ds.shape):
            try:
                self.rows.charge()
                row = ds[index]
                raw = (
                    row.encode("utf-8", "surrogateescape")
                    if isinstance(row, str)
                    else bytes(np.asarray(row).tobytes())
                )
                self.bytes.charge(len(raw))
            except BudgetExceeded as exc:
                report_budget(self.result, self.scanner.location(self.path, f"/{name}"), exc)
                return False
            if looks_like_pickle(raw):
                self._scan(raw, f"/{name}{list(index)}")
        return True

    def pickled_scalar(self, ds: Any, name: str) -> bool:
        """A scalar byte-string dataset holding a pickle (hickle's `create_pickled_dataset`,
        which its load unpickles); False once a budget is spent."""
        import h5py

        kind = ds.dtype.kind
        vlen = h5py.check_vlen_dtype(ds.dtype)
        if ds.shape != () or not (kind == "S" or (kind == "O" and vlen is bytes)):
            return True
        try:
            if kind == "S":  # (its bytes are the storage: charged before they are read)
                self.bytes.charge(ds.id.get_storage_size())
            value = ds[()]
            raw = bytes(value) if isinstance(value, (bytes, bytearray)) else b""
            if kind != "S":  # (a heap object, whose size only the read tells)
                self.bytes.charge(len(raw))
        except BudgetExceeded as exc:
            report_budget(self.result, self.scanner.location(self.path, f"/{name}"), exc)
            return False
        if looks_like_pickle(raw.rstrip(b"\0")):
            self._scan(raw.rstrip(b"\0"), f"/{name}")
        return True

    def _scan(self, data: bytes, member: str) -> None:
        shown = self.scanner.location(self.path, member)
        self.result.merge(scan_nested_bytes(self.scanner.ctx, data, shown, fmt=Format.PICKLE))
