"""Zarr arrays whose codecs unpickle the chunks they decode (numcodecs' Pickle codec).

The metadata is written as zarr writes it (`.zarray` of format 2, `zarr.json` of format 3);
zarr is not a dependency, and nothing here reads an array.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelaudit.findings import IssueSeverity
from modelaudit.rules import data as rd
from tests.dataformats._dataformats_util import rules_of, scan

_BLOSC = {"blocksize": 0, "clevel": 5, "cname": "lz4", "id": "blosc", "shuffle": 1}


def _v2(filters: list[dict[str, Any]] | None, dtype: str = "|O") -> dict[str, Any]:
    return {
        "chunks": [10],
        "compressor": _BLOSC,
        "dimension_separator": ".",
        "dtype": dtype,
        "fill_value": 0,
        "filters": filters,
        "order": "C",
        "shape": [10],
        "zarr_format": 2,
    }


def _v3(codecs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [10],
        "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [10]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0.0,
        "codecs": codecs,
        "attributes": {},
    }


def _write(folder: Path, name: str, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(doc, indent=4))
    return path


def test_object_array_with_the_pickle_codec_is_a_warning(tmp_path: Path) -> None:
    v2 = _write(tmp_path / "a", ".zarray", _v2([{"id": "pickle", "protocol": 5}]))
    assert rd.ZARR_PICKLE_CODEC in rules_of(scan(v2), IssueSeverity.WARNING)
    v3 = _write(
        tmp_path / "b",
        "zarr.json",
        _v3([{"name": "numcodecs.pickle", "configuration": {"protocol": 5}}]),
    )
    result = scan(v3)
    assert rd.ZARR_PICKLE_CODEC in rules_of(result, IssueSeverity.WARNING)
    assert "numcodecs.pickle" in result.issues[0].message


def test_arrays_of_data_codecs_are_quiet(tmp_path: Path) -> None:
    for folder, doc, name in (
        ("strings", _v2([{"id": "vlen-utf8"}]), ".zarray"),
        ("numbers", _v2(None, "<f4"), ".zarray"),
        (
            "v3",
            _v3(
                [
                    {"name": "bytes", "configuration": {"endian": "little"}},
                    {"name": "zstd", "configuration": {"level": 0, "checksum": False}},
                ]
            ),
            "zarr.json",
        ),
        ("group", {"zarr_format": 3, "node_type": "group", "attributes": {}}, "zarr.json"),
    ):
        result = scan(_write(tmp_path / folder, name, doc))
        assert not [
            i
            for i in result.issues
            if i.severity in (IssueSeverity.WARNING, IssueSeverity.CRITICAL)
        ], (folder, result.issues)
