"""Parquet and Arrow IPC schemas: pickled `arrow.py_extension_type` fields (CVE-2023-47248).

Files are written by real pyarrow (and pandas); the malicious ones get their field metadata
from pyarrow's writers as given. None of them is ever read back with pyarrow.
"""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import flatbuffers
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from modelaudit.findings import FileStatus, IssueSeverity, ScanResult
from modelaudit.formats import Format
from modelaudit.formats.arrow_schema import (
    ArrowSchemaError,
    parse_message,
    read_schemas,
    read_stream_schema,
)
from modelaudit.formats.parquet_footer import (
    ParquetError,
    decode_arrow_schema,
    parse_key_value_metadata,
)
from modelaudit.formats.sniff import sniff_head
from modelaudit.formats.view import BufferView
from modelaudit.rules import data as rd
from tests.dataformats._dataformats_util import assert_clean, rules_of, scan

#: protocol 0: posix.system('id')
P0 = b"cposix\nsystem\n(S'id'\ntR."
#: protocol 4 (no frame): os.system('id') through STACK_GLOBAL
P4 = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94."


class _Labels(pa.ExtensionType):
    """A registered extension type with a name of its own, as libraries define them."""

    def __init__(self) -> None:
        super().__init__(pa.int64(), "myorg.labels")

    def __arrow_ext_serialize__(self) -> bytes:
        return b'{"classes": 3}'

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> _Labels:
        return cls()


@pytest.fixture(scope="module", autouse=True)
def _labels_registered() -> object:
    pa.register_extension_type(_Labels())
    yield
    pa.unregister_extension_type("myorg.labels")


def _legit_table() -> pa.Table:
    df = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [0.5, 1.5, None],
            "s": ["a", "b", "c"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "b": [True, False, True],
        }
    )
    table = pa.Table.from_pandas(df)  # pandas metadata in the schema
    table = table.append_column(
        "nested",
        pa.array(
            [{"x": 1, "y": [1, 2]}, {"x": 2, "y": []}, {"x": 3, "y": None}],
            type=pa.struct([("x", pa.int32()), ("y", pa.list_(pa.float32()))]),
        ),
    )
    table = table.append_column("cat", pa.array(["p", "q", "p"]).dictionary_encode())
    table = table.append_column(
        "m", pa.array([[("k", 1)], [], None], type=pa.map_(pa.string(), pa.int64()))
    )
    return table.append_column(
        "labels", pa.ExtensionArray.from_storage(_Labels(), pa.array([0, 1, 2]))
    )


def _field_md(pickle_bytes: bytes) -> dict[bytes, bytes]:
    return {
        b"ARROW:extension:name": b"arrow.py_extension_type",
        b"ARROW:extension:metadata": pickle_bytes,
    }


def _evil_table(pickle_bytes: bytes = P0, nested: bool = False) -> pa.Table:
    if nested:
        inner = pa.field("inner", pa.int64(), metadata=_field_md(pickle_bytes))
        field = pa.field("outer", pa.list_(pa.struct([inner])))
        return pa.table([pa.array([[{"inner": 1}]], type=field.type)], schema=pa.schema([field]))
    field = pa.field("x", pa.int64(), metadata=_field_md(pickle_bytes))
    return pa.table([pa.array([1, 2])], schema=pa.schema([field]))


def _write(kind: str, table: pa.Table, path: Path) -> Path:
    if kind == "parquet":
        pq.write_table(table, path)
    elif kind == "feather":
        feather.write_feather(table, path)
    elif kind == "file":
        with ipc.new_file(path, table.schema) as w:
            w.write_table(table)
    else:
        with ipc.new_stream(path, table.schema) as w:
            w.write_table(table)
    return path


_KINDS = [
    ("parquet", "data.parquet"),
    ("feather", "data.feather"),
    ("file", "data.arrow"),
    ("stream", "data-00000-of-00001.arrow"),
    ("stream", "events.arrows"),
]


def _assert_flagged(result: ScanResult) -> None:
    assert result.scanner_name == "arrow"
    assert {"MA1001", "MA1002"} <= rules_of(result, IssueSeverity.CRITICAL)
    assert rd.ARROW_PICKLED_EXTENSION in rules_of(result, IssueSeverity.WARNING)


@pytest.mark.parametrize(("kind", "name"), _KINDS)
def test_legitimate_files_are_clean(tmp_path: Path, kind: str, name: str) -> None:
    result = scan(_write(kind, _legit_table(), tmp_path / name))
    assert result.scanner_name == "arrow"
    assert_clean(result)
    assert result.metadata["format_details"]["fields"] >= 10


@pytest.mark.filterwarnings("ignore:Feather V1:DeprecationWarning")
def test_feather_v1_is_clean(tmp_path: Path) -> None:
    """Feather v1 keeps no Arrow schema (and no extension types): nothing to judge."""
    path = tmp_path / "old.feather"
    feather.write_feather(pa.table({"a": [1, 2], "b": ["x", "y"]}), path, version=1)
    assert path.read_bytes()[:4] == b"FEA1"
    result = scan(path)
    assert result.scanner_name == "arrow"
    assert_clean(result)


def test_pandas_parquet_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "frame.parquet"
    pd.DataFrame({"a": range(100), "b": [str(i) for i in range(100)]}).to_parquet(path)
    assert_clean(scan(path))


@pytest.mark.parametrize(("kind", "name"), _KINDS)
@pytest.mark.parametrize("pickle_bytes", [P0, P4], ids=["protocol0", "protocol4"])
def test_pickled_extension_type_is_flagged(
    tmp_path: Path, kind: str, name: str, pickle_bytes: bytes
) -> None:
    result = scan(_write(kind, _evil_table(pickle_bytes), tmp_path / name))
    _assert_flagged(result)
    # an IPC file keeps the schema twice (first message and footer): reported once
    assert len([i for i in result.issues if i.rule == rd.ARROW_PICKLED_EXTENSION]) == 1


@pytest.mark.parametrize(("kind", "name"), _KINDS[:3])
def test_nested_field_is_flagged(tmp_path: Path, kind: str, name: str) -> None:
    result = scan(_write(kind, _evil_table(nested=True), tmp_path / name))
    _assert_flagged(result)
    warning = next(i for i in result.issues if i.rule == rd.ARROW_PICKLED_EXTENSION)
    assert "outer/item/inner" in warning.message


@pytest.mark.parametrize(
    ("kind", "name"), [("parquet", "x"), ("stream", "cache.bin"), ("file", "y")]
)
def test_renamed_files_are_sniffed(tmp_path: Path, kind: str, name: str) -> None:
    _assert_flagged(scan(_write(kind, _evil_table(), tmp_path / name)))


@pytest.mark.parametrize("where", ["schema", "footer"])
def test_ipc_file_schema_in_footer_or_first_message(tmp_path: Path, where: str) -> None:
    """Readers of the file format take the footer's schema, of a stream the first message's:
    either one alone is found."""
    decoy = b"arrow.py_extension_typX"
    field = pa.field(
        "x", pa.int64(), metadata={b"ARROW:extension:name": decoy, b"ARROW:extension:metadata": P0}
    )
    path = _write(
        "file", pa.table([pa.array([1])], schema=pa.schema([field])), tmp_path / "f.arrow"
    )
    data = path.read_bytes()
    at = data.find(decoy) if where == "schema" else data.rfind(decoy)
    assert data.find(decoy) != data.rfind(decoy)
    path.write_bytes(data[:at] + b"arrow.py_extension_type" + data[at + len(decoy) :])
    result = scan(path)
    _assert_flagged(result)
    assert any(f"{where}/x" in i.location for i in result.issues if i.location)


def test_other_extension_name_is_not_flagged(tmp_path: Path) -> None:
    field = pa.field(
        "x",
        pa.int64(),
        metadata={
            b"ARROW:extension:name": b"arrow.py_extension_typ",
            b"ARROW:extension:metadata": P0,
        },
    )
    table = pa.table([pa.array([1])], schema=pa.schema([field]))
    assert_clean(scan(_write("parquet", table, tmp_path / "d.parquet")))


def test_cli_exits_1(tmp_path: Path) -> None:
    path = _write("parquet", _evil_table(), tmp_path / "train.parquet")
    proc = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--format", "json", str(path)],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 1
    rules = {i.get("rule") for i in json.loads(proc.stdout)["issues"]}
    assert {"MA1001", rd.ARROW_PICKLED_EXTENSION} <= rules


# -- sniffing


def test_sniff(tmp_path: Path) -> None:
    pq_bytes = _write("parquet", _legit_table(), tmp_path / "a").read_bytes()
    file_bytes = _write("file", _legit_table(), tmp_path / "b").read_bytes()
    stream_bytes = _write("stream", _legit_table(), tmp_path / "c").read_bytes()
    assert sniff_head(pq_bytes[:4096], "x", len(pq_bytes)) is Format.PARQUET
    assert sniff_head(file_bytes[:4096], "x", len(file_bytes)) is Format.ARROW_IPC
    assert sniff_head(stream_bytes[:4096], "x", len(stream_bytes)) is Format.ARROW_IPC
    # a continuation marker alone is no stream
    assert sniff_head(b"\xff\xff\xff\xff" + bytes(60), "x", 64) is not Format.ARROW_IPC


# -- malformed input: inconclusive, never a crash or a hang


def _inconclusive(result: ScanResult) -> None:
    assert result.scanner_name == "arrow"
    assert result.status is FileStatus.INCONCLUSIVE
    assert result.status_reason and "malformed" in result.status_reason


@pytest.mark.parametrize("kind", ["parquet", "feather", "stream"])
def test_truncated_files_are_inconclusive(tmp_path: Path, kind: str) -> None:
    name = {"parquet": "d.parquet", "feather": "d.feather", "stream": "d.arrow"}[kind]
    path = _write(kind, _legit_table(), tmp_path / name)
    data = path.read_bytes()
    cut = {"parquet": len(data) - 3, "feather": len(data) - 5, "stream": 40}[kind]
    path.write_bytes(data[:cut])
    _inconclusive(scan(path))


def test_parquet_footer_length_outside_file(tmp_path: Path) -> None:
    path = _write("parquet", _legit_table(), tmp_path / "d.parquet")
    data = path.read_bytes()
    path.write_bytes(data[:-8] + struct.pack("<I", len(data)) + b"PAR1")
    _inconclusive(scan(path))


def test_parquet_encrypted_footer_is_inconclusive(tmp_path: Path) -> None:
    path = _write("parquet", _legit_table(), tmp_path / "d.parquet")
    path.write_bytes(path.read_bytes()[:-4] + b"PARE")
    _inconclusive(scan(path))


def test_parquet_schema_value_not_a_schema(tmp_path: Path) -> None:
    path = _write("parquet", _legit_table(), tmp_path / "d.parquet")
    data = path.read_bytes()
    (length,) = struct.unpack_from("<I", data, len(data) - 8)
    kv = dict(parse_key_value_metadata(data[len(data) - 8 - length : -8]))
    encoded = kv[b"ARROW:schema"]
    path.write_bytes(data.replace(encoded, b"A" * len(encoded)))
    _inconclusive(scan(path))


def test_stream_schema_message_of_other_type(tmp_path: Path) -> None:
    path = _write("stream", _legit_table(), tmp_path / "d.arrow")
    data = bytearray(path.read_bytes())
    flat = bytes(data[8:])
    (table,) = struct.unpack_from("<I", flat, 0)
    vtable = table - struct.unpack_from("<i", flat, table)[0]
    (slot,) = struct.unpack_from("<H", flat, vtable + 6)  # Message.header_type
    data[8 + table + slot] = 3  # RecordBatch
    path.write_bytes(bytes(data))
    _inconclusive(scan(path))


def _deep_thrift(levels: int) -> bytes:
    """FileMetaData whose field 1 is a list of lists ... `levels` deep."""
    return b"\x19" + b"\x19" * levels + b"\x00" * (levels + 1) + b"\x00"


def test_thrift_nesting_is_bounded() -> None:
    with pytest.raises(ParquetError, match="deeper"):
        parse_key_value_metadata(_deep_thrift(100_000))


def test_thrift_huge_counts_end_at_the_footer() -> None:
    # list<i64> claiming 2**60 elements, four bytes of them
    footer = b"\x19\xf6" + b"\x80\x80\x80\x80\x80\x80\x80\x80\x10" + b"\x02\x02\x02\x02"
    with pytest.raises(ParquetError, match="ends"):
        parse_key_value_metadata(footer)


def _footer(kv: list[tuple[bytes, bytes]]) -> bytes:
    """FileMetaData with only field 5 (Thrift compact), as a legacy writer might emit."""
    out = bytearray(b"\x59" + bytes([len(kv) << 4 | 12]))
    for key, value in kv:
        out += b"\x18" + bytes([len(key)]) + key + b"\x18" + bytes([len(value)]) + value + b"\x00"
    return bytes(out) + b"\x00"


def test_thrift_key_values_read_after_skipped_fields() -> None:
    kv = [(b"a", b"1"), (b"ARROW:schema", b"xyz")]
    # i32 version, list<struct> schema (one empty), i64 num_rows, then key_value_metadata
    head = b"\x15\x02" + b"\x19\x1c\x00" + b"\x16\x04" + b"\x19\x0c"
    assert parse_key_value_metadata(head + b"\x19" + _footer(kv)[1:]) == kv
    assert parse_key_value_metadata(_footer(kv)) == kv


def test_base64_as_arrow_decodes() -> None:
    assert decode_arrow_schema(b"aGVsbG8=") == b"hello"
    assert decode_arrow_schema(b"aGVsbG8") == b"hello"
    assert decode_arrow_schema(b"aGVs!bG8") == b"hel"


def _message(top: list[int], b: flatbuffers.Builder) -> bytes:
    """A Schema message whose fields vector holds `top` (offsets of Field tables in `b`)."""
    b.StartVector(4, len(top), 4)
    for field in reversed(top):
        b.PrependUOffsetTRelative(field)
    fields = b.EndVector()
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(1, fields, 0)
    schema = b.EndObject()
    b.StartObject(5)
    b.PrependInt16Slot(0, 4, 0)
    b.PrependUint8Slot(1, 1, 0)
    b.PrependUOffsetTRelativeSlot(2, schema, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def _field(b: flatbuffers.Builder, name: str, children: int | None) -> int:
    text = b.CreateString(name)
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(0, text, 0)
    if children is not None:
        b.PrependUOffsetTRelativeSlot(5, children, 0)
    return int(b.EndObject())


def _vector(b: flatbuffers.Builder, tables: list[int]) -> int:
    b.StartVector(4, len(tables), 4)
    for t in tables:
        b.PrependUOffsetTRelative(t)
    return int(b.EndVector())


def test_shared_fields_are_visited_once() -> None:
    """Each level's children vector names the next level's one Field a thousand times: a
    walk that followed every reference would visit 1000**20 fields."""
    b = flatbuffers.Builder(0)
    field = _field(b, "f0", None)
    for level in range(1, 20):
        field = _field(b, f"f{level}", _vector(b, [field] * 1000))
    schema = parse_message(_message([field], b))
    assert len(schema.fields) == 20
    assert schema.fields[-1].path == "/".join(f"f{i}" for i in range(19, -1, -1))


def test_shared_children_vectors_charge_the_budget() -> None:
    """Two thousand distinct fields sharing one children vector of two thousand entries: four
    million visits from 40 KB, stopped by the budget."""
    b = flatbuffers.Builder(0)
    leaf = _field(b, "leaf", None)
    shared = _vector(b, [leaf] * 2000)
    parents = [_field(b, f"p{i}", shared) for i in range(2000)]
    with pytest.raises(ArrowSchemaError, match="more tables"):
        parse_message(_message(parents, b))


def test_field_nesting_is_bounded() -> None:
    b = flatbuffers.Builder(0)
    field = _field(b, "f", None)
    for _ in range(300):
        field = _field(b, "f", _vector(b, [field]))
    with pytest.raises(ArrowSchemaError, match="deeper"):
        parse_message(_message([field], b))


def test_every_single_byte_corruption_is_handled(tmp_path: Path) -> None:
    """Each byte of a real schema message and a real footer replaced: the parsers end or
    raise their own error, never anything else."""
    path = _write("stream", _legit_table(), tmp_path / "d.arrow")
    data = path.read_bytes()
    length = struct.unpack_from("<i", data, 4)[0]
    message = data[8 : 8 + length]
    read_stream_schema(BufferView(data))
    for i in range(len(message)):
        for value in (0x00, 0xFF, 0x7F):
            mutated = message[:i] + bytes([value]) + message[i + 1 :]
            with contextlib.suppress(ArrowSchemaError):
                parse_message(mutated)
    pq_data = _write("parquet", _legit_table(), tmp_path / "d.parquet").read_bytes()
    (footer_len,) = struct.unpack_from("<I", pq_data, len(pq_data) - 8)
    start = len(pq_data) - 8 - footer_len
    for i in range(start, len(pq_data) - 8, 3):
        for value in (0x00, 0xFF, 0x19):
            mutated = pq_data[:i] + bytes([value]) + pq_data[i + 1 :]
            with contextlib.suppress(ArrowSchemaError, ParquetError):
                read_schemas(BufferView(mutated))


#: What `datasets` before 2.15 pickled for an Array2D feature (a `pa.PyExtensionType`):
#: `Array2DExtensionType((2, 3), "float32")`, protocol 4.
_DATASETS_ARRAY2D = (
    b"\x80\x04\x8c\x1adatasets.features.features\x94\x8c\x14Array2DExtensionType\x94\x93\x94"
    b"K\x02K\x03\x86\x94\x8c\x07float32\x94\x86\x94R\x94."
)


@pytest.mark.parametrize(("kind", "name"), _KINDS[:2])
def test_old_datasets_array_features_are_info(tmp_path: Path, kind: str, name: str) -> None:
    """Legitimate caches of `datasets` < 2.15 hold such fields: a pickle that rebuilds only a
    class the pickle policy knows is what old pyarrow runs, so the finding is INFO (it was a
    WARNING, exit 1, on a real data set)."""
    result = scan(_write(kind, _evil_table(_DATASETS_ARRAY2D), tmp_path / name))
    assert result.status is FileStatus.COMPLETE, result.status_reason
    assert rd.ARROW_PICKLED_EXTENSION in rules_of(result, IssueSeverity.INFO)
    assert not [i for i in result.issues if i.severity.rank >= IssueSeverity.WARNING.rank]
