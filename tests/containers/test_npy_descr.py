"""NumPy headers: every `descr` form numpy's `descr_to_dtype` accepts that means objects makes
the data a pickle, which is scanned. Object arrays are saved with numpy itself where numpy
writes that form; other forms are hand-written headers (numpy would load them all).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelaudit.formats.npy import read_header
from modelaudit.formats.npy_dtype import dtype_layout
from tests.containers._container_corpus import criticals, npy_bytes, payload, scan


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("id",))


OBJECT_DESCRS = [
    "|O",
    "O",
    "<O",
    "O8",
    "object",
    "i4,O",
    "2O",
    "(2,3)O",
    ("|O", (2,)),
    [("a", "<f4"), ("b", "|O")],
    [("a", [("b", [("c", "|O")])])],
    [("a", ("|O", (2,)))],
    [("a", "|O", (2, 2))],
    [(("title", "a"), "|O")],
    {"aO": 0},
    # NumPy 2's StringDType: numpy marks it hasobject, so np.load unpickles the data
    "T",
    "<f4,T",
    ("T", (2,)),
    [("a", "T")],
]


@pytest.mark.parametrize("descr", OBJECT_DESCRS, ids=[repr(d) for d in OBJECT_DESCRS])
def test_object_descr_forms_are_object_arrays(descr: Any) -> None:
    assert dtype_layout(descr)[1] is True
    # numpy's own reading of the same descr (a dtype is built; no data is read)
    assert np.lib.format.descr_to_dtype(descr).hasobject


@pytest.mark.parametrize("descr", OBJECT_DESCRS, ids=[repr(d) for d in OBJECT_DESCRS])
def test_object_payload_is_scanned(tmp_path: Path, descr: Any) -> None:
    path = tmp_path / "a.npy"
    path.write_bytes(npy_bytes(descr, (1,), payload(2)))
    result = scan(path)
    assert any("system" in m for m in criticals(result)), [i.message for i in result.issues]


def test_numpy_written_nested_structured_object_array(tmp_path: Path) -> None:
    arr = np.empty(2, dtype=[("meta", [("hook", "O")]), ("w", "<f4")])
    arr["meta"]["hook"] = [Evil(), Evil()]
    path = tmp_path / "nested.npy"
    np.save(path, arr, allow_pickle=True)
    header = read_header(io.BytesIO(path.read_bytes()))
    assert header.has_object and isinstance(header.descr, list)
    assert any("system" in m for m in criticals(scan(path)))


def test_npz_member_with_tuple_descr(tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("w.npy", npy_bytes(("|O", (2,)), (1,), payload(2)))
    assert any("system" in m for m in criticals(scan(path)))


NUMERIC = [
    np.dtype("<f4"),
    np.dtype("<i8"),
    np.dtype([("x", "<f8"), ("y", "<i2", (3,))]),
    np.dtype("datetime64[ns]"),
    np.dtype("<U7"),
    np.dtype("|S5"),
    np.dtype("<c16"),
    np.dtype("?"),
    np.dtype([("a", [("b", "<f2"), ("c", "|u1")])]),
]


@pytest.mark.parametrize("dtype", NUMERIC, ids=[str(d) for d in NUMERIC])
def test_numpy_saved_numeric_arrays_are_clean_and_sized(tmp_path: Path, dtype: np.dtype) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(5, dtype=dtype))
    header = read_header(io.BytesIO(path.read_bytes()))
    assert not header.has_object
    assert header.itemsize == dtype.itemsize
    result = scan(path)
    assert not result.issues and result.status.value == "complete"


def test_python2_long_shape_header_is_read() -> None:
    text = "{'descr': '|O', 'fortran_order': False, 'shape': (1L,), }"
    body = text.encode() + b" " * (-(len(text) + 11) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body
    header = read_header(io.BytesIO(data + payload(2)))
    assert header.has_object and header.shape == (1,)


def test_extra_header_keys_are_refused_as_numpy_does(tmp_path: Path) -> None:
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"
    body = text.encode() + b" " * (-(len(text) + 11) % 64) + b"\n"
    path = tmp_path / "a.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body + b"\0" * 4)
    assert scan(path).status.value == "inconclusive"


@pytest.mark.parametrize(
    "shape",
    ["()", "(3,)", "(2, 3)", "(2, 3,)", "(0, 5)", "(3)", "(007,)", "(2, )", "(1,2)", "(-1,)"],
)
@pytest.mark.parametrize("descr", ["<f4", "|O", "<M8[ns]", "<U7", "O\\x00", "<f4'"])
@pytest.mark.parametrize("order", ["False", "True", "0"])
def test_headers_read_without_ast_mean_what_ast_reads(shape: str, descr: str, order: str) -> None:
    """The fast path for headers as NumPy writes them agrees with `ast.literal_eval` on every
    header it accepts, and leaves the others (a bare int shape, leading zeros) to it."""
    import ast

    from modelaudit.formats.npy import _canonical

    text = f"{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}   \n"
    fast = _canonical(text)
    if fast is None:
        return
    assert fast == ast.literal_eval(text)
    assert type(fast["shape"]) is tuple and type(fast["fortran_order"]) is bool
    assert order != "0" and shape not in ("(3)", "(007,)", "(2, )", "(1,2)", "(-1,)")


def test_numpy_headers_take_the_fast_path() -> None:
    from modelaudit.formats.npy import _canonical

    for array in (np.zeros(3, "<f4"), np.zeros((2, 3), ">i8"), np.zeros((), "U7")):
        buf = io.BytesIO()
        np.save(buf, array)
        raw = buf.getvalue()
        text = raw[10 : 10 + int.from_bytes(raw[8:10], "little")].decode("latin1")
        assert _canonical(text) is not None


def test_a_remembered_dtype_layout_is_the_one_worked_out() -> None:
    """String descrs are remembered after their first layout; the answer never changes,
    and a descr numpy refuses is refused every time (never remembered)."""
    from modelaudit.formats import npy_dtype

    for descr in ("<f4", "|O", "i4,O", "(2,3)O", "<U7", "datetime64[ns]"):
        first = dtype_layout(descr)
        assert npy_dtype._KNOWN[descr] == first
        assert dtype_layout(descr) == first == npy_dtype._layout(descr, [10_000], 0)
    for _ in range(2):
        with pytest.raises(npy_dtype.DescrError):
            dtype_layout("not-a-dtype")
    assert "not-a-dtype" not in npy_dtype._KNOWN
    assert len(npy_dtype._KNOWN) <= npy_dtype._KNOWN_MAX


def _long_header_npy(data: bytes, pad: int = 70_000) -> bytes:
    """A version 2.0 header padded past the 64 KiB parse cap: `np.load` without
    allow_pickle refuses it, `np.load(allow_pickle=True)` lifts the limit and unpickles."""
    header = repr({"descr": "|O", "fortran_order": False, "shape": (1,)}).encode()
    header += b" " * (pad - len(header) - 1) + b"\n"
    return b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header + data


def test_object_array_behind_an_over_long_header_is_still_scanned(tmp_path: Path) -> None:
    path = tmp_path / "long.npy"
    path.write_bytes(_long_header_npy(payload(2)))
    result = scan(path)
    assert any("system" in m for m in criticals(result))
    assert result.status.value == "inconclusive"
    archive = tmp_path / "long.npz"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("arr_0.npy", _long_header_npy(payload(2)))
    assert any("system" in m for m in criticals(scan(archive)))


def test_numeric_data_behind_an_over_long_header_raises_no_alarm(tmp_path: Path) -> None:
    path = tmp_path / "long.npy"
    path.write_bytes(_long_header_npy(np.arange(4, dtype="<f4").tobytes()))
    assert criticals(scan(path)) == []
