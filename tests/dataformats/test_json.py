from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import text as rt
from modelaudit.rules.core import ANALYSIS_BUDGET
from modelaudit.rules.text import TEMPLATE_INJECTION
from tests.dataformats._chat_templates import LLAMA3, MALICIOUS, MISTRAL
from tests.dataformats._dataformats_util import assert_clean, rules_of, scan

HF_CONFIG = {
    "_name_or_path": "meta-llama/Llama-3.2-1B-Instruct",
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 2048,
    "num_attention_heads": 32,
    "rope_scaling": {"factor": 32.0, "rope_type": "llama3"},
    "torch_dtype": "bfloat16",
    "transformers_version": "4.45.0",
    "eos_token_id": [128001, 128008, 128009],
}


def _dump(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_hf_config_is_clean_with_metadata(tmp_path: Path) -> None:
    result = scan(_dump(tmp_path / "config.json", HF_CONFIG))
    assert result.scanner_name == "json"
    assert_clean(result)
    assert result.metadata["model_names"] == ["meta-llama/Llama-3.2-1B-Instruct", "llama"]
    assert result.metadata["architectures"] == ["LlamaForCausalLM"]
    assert result.metadata["model_type"] == "llama"
    assert result.metadata["task"] == "text-generation"


def test_auto_map_needs_remote_code(tmp_path: Path) -> None:
    doc = dict(HF_CONFIG)
    doc["auto_map"] = {
        "AutoConfig": "configuration_phi3.Phi3Config",
        "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM",
        "AutoTokenizer": ["other-org/tok--tokenization_x.XTokenizer", None],
    }
    result = scan(_dump(tmp_path / "config.json", doc))
    issue = next(i for i in result.issues if i.rule == rt.JSON_REMOTE_CODE)
    assert issue.severity is IssueSeverity.WARNING
    assert "modeling_phi3.py" in issue.message and "configuration_phi3.py" in issue.message
    assert "other-org/tok" in issue.message
    assert issue.why


def test_tokenizer_config_templates(tmp_path: Path) -> None:
    good = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "model_max_length": 32768,
        "tokenizer_class": "LlamaTokenizer",
        "chat_template": MISTRAL,
        "added_tokens_decoder": {"0": {"content": "<unk>", "special": True}},
    }
    assert_clean(scan(_dump(tmp_path / "tokenizer_config.json", good)))
    listed = dict(good)
    listed["chat_template"] = [
        {"name": "default", "template": LLAMA3},
        {"name": "rag", "template": MALICIOUS["joiner_attr"]},
    ]
    result = scan(_dump(tmp_path / "tokenizer_config.json", listed))
    crit = [i for i in result.issues if i.severity is IssueSeverity.CRITICAL]
    assert crit and all(i.rule == TEMPLATE_INJECTION and "[rag]" in i.message for i in crit)


def test_named_templates_as_a_dict_are_analysed(tmp_path: Path) -> None:
    """transformers keeps a {name: template} chat_template as it is and renders `tool_use`
    whenever the caller passes tools."""
    doc = {
        "eos_token": "</s>",
        "chat_template": {"default": LLAMA3, "tool_use": MALICIOUS["joiner_attr"]},
    }
    result = scan(_dump(tmp_path / "tokenizer_config.json", doc))
    crit = [i for i in result.issues if i.severity is IssueSeverity.CRITICAL]
    assert crit and all(i.rule == TEMPLATE_INJECTION and "[tool_use]" in i.message for i in crit)
    doc["chat_template"] = {"default": LLAMA3, "tool_use": MISTRAL}
    assert_clean(scan(_dump(tmp_path / "tokenizer_config.json", doc)))


def test_tokenizer_config_escape_through_a_call_block(tmp_path: Path) -> None:
    """A `{% call %}` body is what `caller()` returns: here the name of the escape."""
    escape = (
        "{% macro m() %}{% set g = lipsum[caller()] %}{% endmacro %}"
        "{% call m() %}__globals__{% endcall %}"
    )
    doc = {"eos_token": "</s>", "chat_template": escape + MISTRAL}
    result = scan(_dump(tmp_path / "tokenizer_config.json", doc))
    assert TEMPLATE_INJECTION in rules_of(result, IssueSeverity.CRITICAL)


def test_chat_template_json_and_jinja_file(tmp_path: Path) -> None:
    result = scan(_dump(tmp_path / "chat_template.json", {"chat_template": MALICIOUS["mro_walk"]}))
    assert TEMPLATE_INJECTION in rules_of(result, IssueSeverity.CRITICAL)
    jinja = tmp_path / "chat_template.jinja"
    jinja.write_text(MALICIOUS["lipsum_globals"])
    assert TEMPLATE_INJECTION in rules_of(scan(jinja), IssueSeverity.CRITICAL)
    jinja.write_text(LLAMA3)
    assert_clean(scan(jinja))


def test_hydra_target_in_json(tmp_path: Path) -> None:
    doc = {"model": {"_target_": "torch.nn.Linear", "in_features": 3}}
    result = scan(_dump(tmp_path / "model_config.json", doc))
    assert_clean(result)
    assert rt.JSON_CONFIG_TARGET in rules_of(result, IssueSeverity.INFO)
    doc["hook"] = {"_target_": "os.system", "_args_": ["id"]}
    result = scan(_dump(tmp_path / "model_config.json", doc))
    assert rt.JSON_DANGEROUS_TARGET in rules_of(result, IssueSeverity.CRITICAL)


@pytest.mark.parametrize("padding", [0, 600, 5000], ids=["small", "near-1k", "large"])
@pytest.mark.parametrize(
    ("key", "value"),
    [("_target_", "os.system"), ("py/function", "os.system"), ("class_path", "os.system")],
)
def test_a_dangerous_target_is_found_in_a_document_of_any_size(
    tmp_path: Path, key: str, value: str, padding: int
) -> None:
    """The needles that send a document to the hooked parse are found one way in a small
    document (one pattern) and another in a larger one (a search per needle)."""
    doc = {"pad": "x" * padding, "hook": {key: value, "_args_": ["id"]}}
    result = scan(_dump(tmp_path / "model_config.json", doc))
    assert rt.JSON_DANGEROUS_TARGET in rules_of(result, IssueSeverity.CRITICAL)


def test_the_hook_needles_are_found_as_substrings_would_be() -> None:
    from modelaudit.scanners.text import json_scanner

    for needle in json_scanner._HOOK_NEEDLES:
        for size in (0, 100, json_scanner._NEEDLE_RE_MAX, 3000):
            for at in (0, size // 2, size):
                raw = b"y" * at + needle + b"y" * (size - at)
                assert json_scanner._holds_hook_needle(raw), (needle, size, at)
                assert not json_scanner._holds_hook_needle(raw.replace(needle, needle[:-1]))


def test_deep_nesting_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    start = time.monotonic()
    result = scan(path)
    assert time.monotonic() - start < 30
    assert result.status is FileStatus.INCONCLUSIVE
    assert rt.JSON_EXCESSIVE_NESTING in rules_of(result, IssueSeverity.WARNING)


def test_invalid_json_is_inconclusive(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "llama",')
    assert scan(path).status is FileStatus.INCONCLUSIVE


def test_json_renamed_to_model_extension_is_routed(tmp_path: Path) -> None:
    path = _dump(tmp_path / "config.bin", {"auto_map": {"AutoModel": "modeling_x.X"}})
    result = scan(path)
    assert result.scanner_name == "json"
    assert rt.JSON_REMOTE_CODE in rules_of(result)


def test_text_files_in_a_walk_stay_skipped(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("[![badge](https://x)](https://y)\n# Model card\n")
    notes = tmp_path / "notes.txt"
    notes.write_text('{"not": "scanned"')
    page = tmp_path / "index.html"
    page.write_text(
        '<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html/>'
    )
    script = tmp_path / "run.sh"
    script.write_text("python train.py\n")
    for path in (readme, notes, page, script):
        result = scan(path, explicit=False)
        assert result.status is FileStatus.SKIPPED, (path, result.scanner_name)
        assert not result.issues


def test_sentence_transformers_modules(tmp_path: Path) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    path = _dump(tmp_path / "modules.json", modules)
    assert_clean(scan(path))
    modules.append({"idx": 2, "name": "2", "path": "2_X", "type": "custom_layers.Gate"})
    result = scan(_dump(path, modules))
    assert rt.JSON_REMOTE_CODE in rules_of(result, IssueSeverity.WARNING)
    modules.append({"idx": 3, "name": "3", "path": "", "type": "subprocess.Popen"})
    assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(_dump(path, modules)), IssueSeverity.CRITICAL)


def test_adapter_config_names_its_base_model(tmp_path: Path) -> None:
    doc = {"base_model_name_or_path": "mistralai/Mistral-7B-v0.1", "peft_type": "LORA", "r": 8}
    result = scan(_dump(tmp_path / "adapter_config.json", doc))
    assert_clean(result)
    assert result.metadata["model_names"] == ["mistralai/Mistral-7B-v0.1"]


def test_task_from_architecture(tmp_path: Path) -> None:
    cases = {
        "WhisperForConditionalGeneration": "automatic-speech-recognition",
        "LlavaForConditionalGeneration": "image-text-to-text",
        "T5ForConditionalGeneration": "text2text-generation",
        "BertForSequenceClassification": "text-classification",
        "ViTForImageClassification": "image-classification",
        "BertModel": "feature-extraction",
    }
    for arch, task in cases.items():
        result = scan(_dump(tmp_path / "config.json", {"architectures": [arch]}))
        assert result.metadata["task"] == task, arch


def test_document_of_millions_of_values_is_inconclusive_on_a_budget(tmp_path: Path) -> None:
    """A 64 MiB JSON of `{"a":{}}` objects took 2 GB and 11 s to parse with the hook."""
    from modelaudit.formats.json_values import MAX_DOCUMENT_VALUES
    from modelaudit.rules import core

    path = tmp_path / "config.json"
    path.write_bytes(b'{"_target_":"x","a":[' + b"{}," * MAX_DOCUMENT_VALUES + b"{}]}")
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert core.ANALYSIS_BUDGET in rules_of(result)


# ---- every hooked object, module and auto_map class is judged (no silent caps)


def test_a_dangerous_target_after_a_thousand_harmless_ones_is_critical(tmp_path: Path) -> None:
    """Only the first 1,000 objects holding `_target_` (or a chat template) were judged."""
    harmless = [{"_target_": "torchvision.transforms.Resize", "size": 224}] * 1000
    doc = {"transforms": [*harmless, {"_target_": "posix.system", "command": "id"}]}
    result = scan(_dump(tmp_path / "config.json", doc))
    crit = [i.details.get("target") for i in result.issues if i.severity is IssueSeverity.CRITICAL]
    assert crit == ["posix.system"]


def test_a_malicious_template_after_a_thousand_harmless_ones_is_critical(tmp_path: Path) -> None:
    harmless = [{"chat_template": MISTRAL}] * 1000
    doc = {"processors": [*harmless, {"chat_template": MALICIOUS["cycler_init"]}]}
    result = scan(_dump(tmp_path / "tokenizer_config.json", doc))
    assert TEMPLATE_INJECTION in rules_of(result, IssueSeverity.CRITICAL)


def test_thousands_of_tiny_templates_spend_the_template_budget(tmp_path: Path) -> None:
    """Analysing any template costs about as much as parsing a kilobyte: a file of many tiny
    ones is inconclusive once the budget is spent, instead of judged on its first 1,000."""
    doc = {"t": [{"chat_template": f"{{{{ x{n} }}}}"} for n in range(5000)]}
    result = scan(_dump(tmp_path / "tokenizer_config.json", doc))
    assert rules_of(result, IssueSeverity.INFO) >= {ANALYSIS_BUDGET}
    assert result.status is FileStatus.INCONCLUSIVE


def test_a_dangerous_module_after_a_thousand_is_critical(tmp_path: Path) -> None:
    """sentence-transformers imports every module's type: only 1,000 were judged."""
    norm = {"idx": 0, "name": "n", "path": "", "type": "sentence_transformers.models.Normalize"}
    modules = [norm] * 1000 + [{"idx": 1000, "name": "x", "path": "", "type": "posix.system"}]
    result = scan(_dump(tmp_path / "modules.json", modules))
    assert rt.JSON_DANGEROUS_TARGET in rules_of(result, IssueSeverity.CRITICAL)


def test_the_twenty_first_auto_map_module_is_read(tmp_path: Path) -> None:
    """Only 20 local modules an auto_map names were read for what they do at import."""
    for n in range(21):
        body = "import os\nos.system('id')\n" if n == 20 else ""
        (tmp_path / f"mod_{n:02}.py").write_text(body + f"class C{n}:\n    pass\n")
    doc = dict(HF_CONFIG)
    doc["auto_map"] = {f"Auto{n}": f"mod_{n:02}.C{n}" for n in range(21)}
    result = scan(_dump(tmp_path / "config.json", doc))
    assert rt.JSON_REMOTE_CODE in rules_of(result, IssueSeverity.CRITICAL)


def test_a_large_real_shaped_tokenizer_config_stays_clean(tmp_path: Path) -> None:
    """Many added tokens and two named templates: complete and clean."""
    tokens = {
        str(n): {"content": f"<extra_{n}>", "lstrip": False, "special": True} for n in range(50_000)
    }
    doc = {
        "added_tokens_decoder": tokens,
        "chat_template": [
            {"name": "default", "template": LLAMA3},
            {"name": "tool_use", "template": MISTRAL},
        ],
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    assert_clean(scan(_dump(tmp_path / "tokenizer_config.json", doc)))


def test_bounded_loads_refuse_before_parsing() -> None:
    """The one loader for JSON inside model files (safetensors headers, torch.export configs,
    skops schemas): past the bound it raises before `json.loads` builds a thing."""
    from modelaudit.budget import BudgetExceeded
    from modelaudit.formats.json_values import loads_bounded, values_bound

    assert loads_bounded('{"a": [1, {}]}', "t") == {"a": [1, {}]}
    bomb = "[" + "{}," * 10 + "{}]"
    assert values_bound(bomb) == 23  # 10 commas, 12 opening brackets, and one
    with pytest.raises(BudgetExceeded):
        loads_bounded(bomb, "t", limit=22)
    assert loads_bounded(bomb, "t", limit=23) == [{}] * 11
