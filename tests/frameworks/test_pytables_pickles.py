"""HDF5 files as PyTables (and `pandas.read_hdf`) read them: pickled attributes and object rows.

PyTables `pickle.loads` every scalar ASCII string attribute ending in "." of a node it opens,
and every row of a VLArray whose PSEUDOATOM is "object" (pandas' fixed format stores object
columns so). The files are written with h5py in PyTables' layout; the pickles are built by
hand or are `pickle.dumps` of harmless values, as PyTables and pandas write them.
"""

from __future__ import annotations

import datetime
import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from modelaudit.findings import FileStatus, IssueSeverity, ScanResult
from modelaudit.rules import pickle as P
from modelaudit.scanners.keras import h5_scanner
from tests.frameworks._frameworks_helpers import alarms, rules_at, scan

CRIT = IssueSeverity.CRITICAL
#: `posix.system("id")`, protocol 0 as PyTables writes attributes, and protocol 4.
P0 = b"cposix\nsystem\n(S'id'\ntR."
P4 = (
    b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94"
    b"\x93\x94\x8c\x02id\x94\x85\x94R\x94."
)


def _object_rows(group: h5py.Group, name: str, rows: list[bytes]) -> h5py.Dataset:
    """A VLArray of ObjectAtom rows, in the layout PyTables writes."""
    ds = group.create_dataset(name, (len(rows),), dtype=h5py.vlen_dtype(np.uint8))
    for i, row in enumerate(rows):
        ds[i] = np.frombuffer(row, np.uint8)
    ds.attrs["CLASS"] = "VLARRAY"
    ds.attrs["VERSION"] = "1.4"
    ds.attrs["TITLE"] = ""
    ds.attrs["PSEUDOATOM"] = "object"
    return ds


def _posix_system(result: ScanResult, where: str) -> None:
    crit = [i for i in result.issues if i.severity is CRIT]
    assert P.DANGEROUS_GLOBAL in rules_at(result, CRIT), alarms(result)
    assert any("posix.system" in i.message and where in (i.location or "") for i in crit), [
        (i.message, i.location) for i in crit
    ]


@pytest.mark.parametrize("node", ["root", "group", "dataset"])
@pytest.mark.parametrize(
    ("storage", "payload"),
    # PyTables reads a variable-length string up to its first NUL: protocol 0 has none
    [("fixed", P0), ("fixed", P4), ("variable", P0)],
    ids=["fixed-protocol0", "fixed-protocol4", "variable-protocol0"],
)
def test_pickled_attribute_is_scanned(
    tmp_path: Path, node: str, storage: str, payload: bytes
) -> None:
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as f:
        f.attrs["PYTABLES_FORMAT_VERSION"] = "2.1"
        group = f.create_group("df")
        group.attrs["pandas_type"] = "frame"
        ds = group.create_dataset("axis0", data=np.arange(4))
        obj = {"root": f, "group": group, "dataset": ds}[node]
        if storage == "fixed":
            obj.attrs["meta"] = np.bytes_(payload)
        else:
            obj.attrs.create("meta", np.array(payload, dtype=h5py.string_dtype("ascii")))
    where = {"root": "/@meta", "group": "/df@meta", "dataset": "/df/axis0@meta"}[node]
    _posix_system(scan(path), where)


def test_object_vlarray_rows_are_scanned(tmp_path: Path) -> None:
    path = tmp_path / "fixed.h5"
    benign = pickle.dumps(np.array([1, "a", None], dtype=object), 5)
    with h5py.File(path, "w") as f:
        group = f.create_group("df")
        group.attrs["pandas_type"] = "frame"
        _object_rows(group, "block0_values", [benign, P4])
    _posix_system(scan(path), "/df/block0_values[1]")


def test_what_pandas_and_pytables_pickle_is_quiet(tmp_path: Path) -> None:
    """Attributes and object rows as pandas' table and fixed formats write them (frequencies,
    time zones, dicts of numpy values, object columns), plus titles ending in a full stop."""
    path = tmp_path / "store.h5"
    meta = {"lr": 0.1, "when": datetime.datetime(2020, 1, 1), "scale": np.float32(1.5)}
    column = np.array([1, "a", 2.5, None, (1, 2), datetime.date(2020, 1, 1)], dtype=object)
    with h5py.File(path, "w") as f:
        f.attrs["TITLE"] = np.bytes_(b"Experiment results.")
        group = f.create_group("df")
        group.attrs["TITLE"] = np.bytes_(b"0.")
        group.attrs["info"] = np.bytes_(pickle.dumps({1: {"names": [None], "type": "Index"}}, 0))
        group.attrs["my_meta"] = np.bytes_(pickle.dumps(meta, 0))
        axis = group.create_dataset("axis1", data=np.arange(4))
        axis.attrs["freq"] = np.bytes_(pickle.dumps(pd.offsets.Hour(), 0))
        axis.attrs["tz"] = np.bytes_(pickle.dumps(datetime.UTC, 0))
        _object_rows(group, "block0_values", [pickle.dumps(column, 5)])
    result = scan(path)
    assert alarms(result) == []
    assert result.status is FileStatus.COMPLETE


def test_object_rows_past_the_budget_are_inconclusive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h5_scanner, "MAX_OBJECT_ROWS", 3)
    path = tmp_path / "rows.h5"
    benign = pickle.dumps([1, 2], 5)
    with h5py.File(path, "w") as f:
        _object_rows(f, "objs", [P4, benign, benign, benign, benign])
    result = scan(path)
    _posix_system(result, "/objs[0]")
    assert result.status is FileStatus.INCONCLUSIVE


def test_string_attribute_bytes_are_charged_as_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attributes may all name one large global heap object: what reading them costs is
    charged, so the walk ends inconclusive instead of reading it again and again."""
    monkeypatch.setattr(h5_scanner, "MAX_OBJECT_BYTES", 10_000)
    path = tmp_path / "attrs.h5"
    with h5py.File(path, "w") as f:
        for i in range(20):
            f.attrs[f"note{i}"] = np.bytes_(b"x" * 1000)
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert "string attribute and object row bytes" in (result.status_reason or "")


def test_hickle_pickled_scalar_dataset_is_scanned(tmp_path: Path) -> None:
    """hickle stores what it cannot map as `create_dataset(name, data=np.array(pickle))`, a
    scalar byte string its load unpickles; before, a payload there scanned clean."""
    path = tmp_path / "data.hkl"
    with h5py.File(path, "w") as f:
        group = f.create_group("data_0")
        group.create_dataset("obj", data=np.array(P0))
        f.create_dataset("note", data=np.array(b"just a note."))
    result = scan(path)
    _posix_system(result, "/data_0/obj")
    assert not [i for i in result.issues if "/note" in (i.location or "")]
