"""TFLite flatbuffers: converted by TensorFlow, or assembled with the flatbuffers library."""

from __future__ import annotations

import struct
from pathlib import Path

import flatbuffers
import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import frameworks as R
from tests.frameworks._frameworks_helpers import alarms, rules_at, scan

CRIT = IssueSeverity.CRITICAL
WARN = IssueSeverity.WARNING
CUSTOM = 32
ADD = 0


def build_tflite(ops: list[tuple[int, str | None]], deprecated: int | None = None) -> bytes:
    """A Model (schema.fbs) with one subgraph that uses each operator code once; each
    `deprecated_builtin_code` (a signed byte) is `deprecated` when given."""
    b = flatbuffers.Builder(1024)
    codes = []
    for code, custom in ops:
        name = b.CreateString(custom) if custom else None
        b.StartObject(4)
        if name is not None:
            b.PrependUOffsetTRelativeSlot(1, name, 0)
        b.PrependInt32Slot(3, code, 0)
        b.PrependInt32Slot(2, 1, 0)
        b.PrependInt8Slot(0, min(code, 127) if deprecated is None else deprecated, 0)
        codes.append(b.EndObject())
    operators = []
    for i in range(len(ops)):
        b.StartObject(9)
        b.PrependUint32Slot(0, i, 0)
        operators.append(b.EndObject())

    def vector(items: list[int]) -> int:
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return int(b.EndVector())

    ops_vec = vector(operators)
    sg_name = b.CreateString("main")
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(3, ops_vec, 0)
    b.PrependUOffsetTRelativeSlot(4, sg_name, 0)
    subgraph = b.EndObject()
    b.StartObject(0)
    empty_buffer = b.EndObject()
    codes_vec = vector(codes)
    subgraphs = vector([subgraph])
    buffers = vector([empty_buffer])
    desc = b.CreateString("hand built")
    b.StartObject(8)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, codes_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs, 0)
    b.PrependUOffsetTRelativeSlot(3, desc, 0)
    b.PrependUOffsetTRelativeSlot(4, buffers, 0)
    model = b.EndObject()
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def test_converted_model_is_clean(tf_models: Path) -> None:
    result = scan(tf_models / "legit.tflite")
    assert result.scanner_name == "tflite"
    assert result.status is FileStatus.COMPLETE
    assert alarms(result) == []
    assert result.metadata["format_details"]["operators"] >= 1


def test_builtin_only_hand_built_model_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(build_tflite([(ADD, None)]))
    result = scan(path)
    assert result.status is FileStatus.COMPLETE and alarms(result) == []


def test_custom_and_flex_operators(tmp_path: Path) -> None:
    ops: list[tuple[int, str | None]] = [
        (ADD, None),
        (CUSTOM, "VendorSecretOp"),
        (CUSTOM, "FlexPyFunc"),
        (CUSTOM, "FlexReadFile"),
        (CUSTOM, "FlexAddV2"),
        (CUSTOM, "TFLite_Detection_PostProcess"),
    ]
    path = tmp_path / "m.tflite"
    path.write_bytes(build_tflite(ops))
    result = scan(path)
    by_code = {i.details["custom_code"]: i for i in result.issues}
    assert by_code["VendorSecretOp"].rule == R.TFLITE_CUSTOM_OP
    assert by_code["VendorSecretOp"].severity is WARN
    assert by_code["FlexPyFunc"].severity is CRIT and by_code["FlexReadFile"].severity is CRIT
    assert by_code["FlexAddV2"].severity is IssueSeverity.INFO
    assert by_code["TFLite_Detection_PostProcess"].severity is IssueSeverity.INFO


def test_deprecated_builtin_code_is_a_signed_byte(tmp_path: Path) -> None:
    """TFLite takes the larger of `builtin_code` and the int8 `deprecated_builtin_code`: a
    deprecated code of 0xFF is -1 and leaves CUSTOM in charge (read unsigned, it was 255)."""
    ops: list[tuple[int, str | None]] = [(CUSTOM, "FlexPyFunc"), (CUSTOM, "VendorSecretOp")]
    path = tmp_path / "m.tflite"
    path.write_bytes(build_tflite(ops, deprecated=-1))
    result = scan(path)
    by_code = {i.details["custom_code"]: i.severity for i in result.issues}
    assert by_code == {"FlexPyFunc": CRIT, "VendorSecretOp": WARN}, by_code


def test_renamed_tflite_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "weights.dat"
    path.write_bytes(build_tflite([(CUSTOM, "FlexEagerPyFunc")]))
    result = scan(path)
    assert result.scanner_name == "tflite"
    assert rules_at(result, CRIT) == {R.TFLITE_DANGEROUS_OP}


def _model_with_opcode_index(index: int) -> bytes:
    """One operator pointing at opcode `index` of an empty operator_codes table."""
    b = flatbuffers.Builder(256)
    b.StartObject(9)
    b.PrependUint32Slot(0, index, 0)
    op = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(op)
    ops_vec = b.EndVector()
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(3, ops_vec, 0)
    sg = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(sg)
    sgs = b.EndVector()
    b.StartObject(8)
    b.PrependUOffsetTRelativeSlot(2, sgs, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.mark.parametrize("damage", ["root", "truncate", "opcode_index"])
def test_malformed_offsets_are_inconclusive(tmp_path: Path, damage: str) -> None:
    data = bytearray(build_tflite([(ADD, None), (CUSTOM, "X")]))
    if damage == "root":
        struct.pack_into("<I", data, 0, len(data) + 1000)
    elif damage == "truncate":
        del data[len(data) // 2 :]
    else:
        data = bytearray(_model_with_opcode_index(7))
    path = tmp_path / "bad.tflite"
    path.write_bytes(bytes(data))
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert result.status_reason and result.status_reason.startswith("malformed")


_EVIL_PICKLE = b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00echo\x85R."


def _with_associated_zip(members: dict[str, bytes]) -> bytes:
    """TFLite metadata packs associated files as a zip appended to the flatbuffer."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return build_tflite([(ADD, None)]) + buf.getvalue()


def test_associated_files_zip_is_not_a_polyglot_alarm(tmp_path: Path) -> None:
    path = tmp_path / "labels.tflite"
    path.write_bytes(_with_associated_zip({"labels.txt": b"cat\ndog\n"}))
    result = scan(path)
    assert alarms(result) == []


def test_payload_in_the_associated_zip_is_still_found(tmp_path: Path) -> None:
    path = tmp_path / "evil.tflite"
    path.write_bytes(_with_associated_zip({"vocab.pkl": _EVIL_PICKLE}))
    assert CRIT in {i.severity for i in scan(path).issues}


def test_flex_op_is_judged_by_its_node_def(tf_models: Path) -> None:
    """FlexWriteFile renamed FlexStringLength still carries the WriteFile NodeDef, which is
    the kernel the Flex delegate runs."""
    legit = scan(tf_models / "flex_legit.tflite")
    assert legit.status is FileStatus.COMPLETE and alarms(legit) == []
    assert rules_at(scan(tf_models / "flex_write.tflite"), CRIT) == {R.TFLITE_DANGEROUS_OP}
    renamed = scan(tf_models / "flex_renamed.tflite")
    issue = next(i for i in renamed.issues if i.severity is CRIT)
    assert issue.rule == R.TFLITE_DANGEROUS_OP
    assert issue.details["custom_code"] == "FlexStringLength"
    assert issue.details["node_def_op"] == "WriteFile"


def _node_def(op: str) -> bytes:
    """A NodeDef with a name (field 1) and an op (field 2), in protobuf wire format."""
    return b"\x0a\x01n\x12" + bytes([len(op)]) + op.encode()


def test_flex_options_reader_is_bounded() -> None:
    from flatbuffers import flexbuffers

    from modelaudit.scanners.native.tflite_scanner import FlatbufferError, flex_node_def

    options = flexbuffers.Dumps(["EagerPyFunc", _node_def("EagerPyFunc")])
    name, start, end = flex_node_def(options, 0, len(options))
    assert name == "EagerPyFunc" and options[start:end] == _node_def("EagerPyFunc")
    long_def = _node_def("ReadFile") + b"\x1a\x01x" * 200  # over 255 bytes: wider offsets
    options = flexbuffers.Dumps(["ReadFile", long_def])
    _, start, end = flex_node_def(options, 0, len(options))
    assert options[start:end] == long_def
    # cut anywhere, or read within a span one byte too short: refused, never read past it
    for cut in range(len(options) - 1):
        with pytest.raises(FlatbufferError):
            flex_node_def(options[cut:], 0, len(options) - cut - 1)
    with pytest.raises(FlatbufferError):
        flex_node_def(b"\x00\x01", 0, 2)
