from __future__ import annotations

import struct
import time
from pathlib import Path

import gguf
import numpy as np

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import data as rd
from modelaudit.rules.data import GGML_BAD_HEADER
from modelaudit.rules.text import TEMPLATE_INJECTION
from tests.dataformats._chat_templates import LLAMA3, MALICIOUS, QWEN_TOOLS
from tests.dataformats._dataformats_util import assert_clean, rules_of, scan


def _write_gguf(
    path: Path,
    template: str | None = LLAMA3,
    name: str = "TinyLlama-1.1B-Chat",
    named: dict[str, str] | None = None,
) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_license("apache-2.0")
    writer.add_context_length(2048)
    writer.add_token_list([f"tok{i}" for i in range(500)])
    writer.add_token_scores([0.0] * 500)
    if template is not None:
        writer.add_chat_template(template)
    if named:
        writer.add_chat_template([{"name": k, "template": v} for k, v in named.items()])
    writer.add_tensor("token_embd.weight", np.ones((32, 16), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(16, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_legitimate_gguf_is_clean_and_names_itself(tmp_path: Path) -> None:
    result = scan(_write_gguf(tmp_path / "model.gguf"))
    assert result.scanner_name == "gguf"
    assert_clean(result)
    assert result.metadata["model_names"] == ["TinyLlama-1.1B-Chat"]
    assert result.metadata["license"] == "apache-2.0"
    assert result.metadata["format_details"]["tensors"] == 2


def test_named_templates_are_analysed(tmp_path: Path) -> None:
    path = _write_gguf(
        tmp_path / "m.gguf",
        template=None,
        named={"default": QWEN_TOOLS, "tool_use": MALICIOUS["lipsum_globals"]},
    )
    result = scan(path)
    crit = [i for i in result.issues if i.severity is IssueSeverity.CRITICAL]
    assert crit and all("tokenizer.chat_template.tool_use" in i.message for i in crit)


def test_malicious_chat_template_is_critical(tmp_path: Path) -> None:
    path = _write_gguf(tmp_path / "evil.gguf", template=MALICIOUS["cve_2024_34359"])
    result = scan(path)
    assert TEMPLATE_INJECTION in rules_of(result, IssueSeverity.CRITICAL)
    assert any(i.why for i in result.issues if i.severity is IssueSeverity.CRITICAL)


def test_renamed_gguf_is_routed_by_content(tmp_path: Path) -> None:
    path = _write_gguf(tmp_path / "x.gguf", template=MALICIOUS["cycler_init"])
    renamed = path.rename(tmp_path / "weights.bin")
    result = scan(renamed)
    assert result.scanner_name == "gguf"
    assert IssueSeverity.CRITICAL in {i.severity for i in result.issues}


def _header(version: int, tensors: int, kvs: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kvs)


def test_absurd_counts_are_hostile_and_fast(tmp_path: Path) -> None:
    path = tmp_path / "counts.gguf"
    path.write_bytes(_header(3, 2**63, 2**63) + bytes(64))
    start = time.monotonic()
    result = scan(path)
    assert time.monotonic() - start < 30
    assert result.status is FileStatus.INCONCLUSIVE
    assert rd.GGUF_BAD_HEADER in rules_of(result, IssueSeverity.WARNING)


def test_absurd_string_length(tmp_path: Path) -> None:
    key = b"general.name"
    body = struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, 2**62) + b"abc"
    path = tmp_path / "strlen.gguf"
    path.write_bytes(_header(3, 0, 1) + body)
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert rd.GGUF_BAD_HEADER in rules_of(result, IssueSeverity.WARNING)


def test_absurd_array_length(tmp_path: Path) -> None:
    key = b"tokenizer.ggml.tokens"
    body = struct.pack("<Q", len(key)) + key + struct.pack("<IIQ", 9, 8, 2**60)
    path = tmp_path / "arr.gguf"
    path.write_bytes(_header(3, 0, 1) + body + bytes(32))
    result = scan(path)
    assert rd.GGUF_BAD_HEADER in rules_of(result, IssueSeverity.WARNING)


def test_unknown_version(tmp_path: Path) -> None:
    path = tmp_path / "v9.gguf"
    path.write_bytes(_header(9, 0, 0))
    result = scan(path)
    assert rd.GGUF_BAD_HEADER in rules_of(result, IssueSeverity.WARNING)


def test_truncated_file_is_inconclusive(tmp_path: Path) -> None:
    good = _write_gguf(tmp_path / "full.gguf").read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(good[:200])
    assert scan(path).status is FileStatus.INCONCLUSIVE


def test_tensor_offset_out_of_bounds(tmp_path: Path) -> None:
    path = _write_gguf(tmp_path / "oob.gguf")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 64])
    result = scan(path)
    assert rd.GGUF_BAD_TENSORS in rules_of(result, IssueSeverity.WARNING)
    assert result.status is FileStatus.INCONCLUSIVE


def test_misaligned_tensor_offset(tmp_path: Path) -> None:
    path = _write_gguf(tmp_path / "align.gguf")
    data = bytearray(path.read_bytes())
    name = b"output_norm.weight"
    at = data.index(name) + len(name) + 4 + 8 + 4
    (offset,) = struct.unpack_from("<Q", data, at)
    struct.pack_into("<Q", data, at, offset + 3)
    path.write_bytes(bytes(data))
    result = scan(path)
    issue = next(i for i in result.issues if i.rule == rd.GGUF_BAD_TENSORS)
    assert any("not aligned" in p for p in issue.details["problems"])


def test_legacy_ggml_header(tmp_path: Path) -> None:
    good = tmp_path / "model.ggml"
    good.write_bytes(b"tjgg" + struct.pack("<I7i", 3, 32000, 4096, 256, 32, 32, 128, 2) + bytes(64))
    result = scan(good)
    assert result.scanner_name == "ggml"
    assert_clean(result)
    bad = tmp_path / "bad.ggml"
    bad.write_bytes(b"tjgg" + struct.pack("<I7i", 3, -5, 2**30, 0, 0, 0, 0, 0) + bytes(64))
    result = scan(bad)
    assert GGML_BAD_HEADER in rules_of(result, IssueSeverity.WARNING)
    assert result.status is FileStatus.INCONCLUSIVE


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    name = b"general.name"
    entry = struct.pack("<Q", len(name)) + name + struct.pack("<IQ", 8, 3) + b"abc"
    path = tmp_path / "dup.gguf"
    path.write_bytes(_header(3, 0, 2) + entry + entry)
    result = scan(path)
    issue = next(i for i in result.issues if i.rule == rd.GGUF_BAD_HEADER)
    assert "general.name" in issue.message
    assert result.status is FileStatus.COMPLETE


def test_every_copy_of_a_repeated_chat_template_is_analysed(tmp_path: Path) -> None:
    """Older gguf-py (a dict filled first-come) and llama.cpp (`gguf_find_key`, the first
    match) render the first copy of a repeated key; the scan once judged only the last."""
    key = b"tokenizer.chat_template"

    def entry(text: str) -> bytes:
        value = text.encode()
        return struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, len(value)) + value

    path = tmp_path / "dup_template.gguf"
    path.write_bytes(_header(3, 0, 2) + entry(MALICIOUS["lipsum_globals"]) + entry(LLAMA3))
    result = scan(path)
    assert TEMPLATE_INJECTION in rules_of(result, IssueSeverity.CRITICAL), [
        i.message for i in result.issues
    ]


def test_big_endian_gguf(tmp_path: Path) -> None:
    path = tmp_path / "be.gguf"
    writer = gguf.GGUFWriter(str(path), "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_name("BE-model")
    writer.add_chat_template(MALICIOUS["lipsum_globals"])
    writer.add_tensor("t", np.ones((4, 4), np.float32).byteswap())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    result = scan(path)
    assert result.status is FileStatus.COMPLETE
    assert result.metadata["model_names"] == ["BE-model"]
    assert TEMPLATE_INJECTION in rules_of(result, IssueSeverity.CRITICAL)


def test_escape_folded_from_macros_and_dict_keys_in_a_real_template(tmp_path: Path) -> None:
    """Qwen's tool-use template with an escape spliced in whose name only a macro's output
    and a dict's keyword names spell: GGUF hands the template to the same analysis."""
    escape = (
        "{%- macro n() %}{{ dict(__glo=1, bals__=1)|join }}{% endmacro %}{%- set g = lipsum[n()] %}"
    )
    path = _write_gguf(tmp_path / "qwen.gguf", template=escape + QWEN_TOOLS)
    result = scan(path)
    assert TEMPLATE_INJECTION in rules_of(result, IssueSeverity.CRITICAL)
    assert_clean(scan(_write_gguf(tmp_path / "upstream.gguf", template=QWEN_TOOLS)))


def test_template_stored_as_string_array_is_analysed(tmp_path: Path) -> None:
    """llama.cpp hands a string-array value to template users as `["item", ...]` text
    (gguf_kv_to_str), which llama-cpp-python and the server render as the chat template."""
    path = tmp_path / "arr.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("x")
    writer.add_array("tokenizer.chat_template.tool_use", [MALICIOUS["lipsum_globals"], "x"])
    writer.add_tensor("token_embd.weight", np.ones((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    result = scan(path)
    crit = [i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL]
    assert crit and all("tokenizer.chat_template.tool_use" in m for m in crit), crit


def test_loaded_string_matches_llama_cpp() -> None:
    from modelaudit.formats.gguf import loaded_string

    assert loaded_string(['a"b\\c', "{{ x }}"]) == '["a\\"b\\\\c", "{{ x }}"]'
    assert loaded_string("plain") == "plain"
    assert loaded_string([]) is None
    assert loaded_string(None) is None
