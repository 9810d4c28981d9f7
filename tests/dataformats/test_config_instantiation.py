"""Config-driven instantiation beyond Hydra's `_target_`: jsonargparse/LightningCLI
`class_path`, albumentations' `__class_fullname__`, jsonpickle's `py/*` keys and OmegaConf
resolvers, judged with the pickle policy. Benign files are written by the real tools
(jsonargparse, OmegaConf, jsonpickle); hostile ones by those tools where they write them,
else by hand in their layout. Nothing is ever instantiated or resolved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import text as rt
from modelaudit.rules.core import ANALYSIS_BUDGET
from tests.dataformats._dataformats_util import assert_clean, rules_of, scan, wide

CRIT = IssueSeverity.CRITICAL
WARN = IssueSeverity.WARNING


def _write(path: Path, doc: Any) -> Path:
    if path.suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(doc))
    else:
        path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        (
            {"model": {"class_path": "subprocess.Popen", "init_args": {"args": "id"}}},
            "subprocess.Popen",
        ),
        ({"trainer": {"callbacks": [{"class_path": "os.system", "init_args": {}}]}}, "os.system"),
        (
            {"__version__": "1.4.0", "transform": {"__class_fullname__": "builtins.exec", "p": 1}},
            "builtins.exec",
        ),
        ({"obj": {"py/object": "subprocess.Popen", "args": ["id"]}}, "subprocess.Popen"),
        ({"hook": "${get_method:os.system}"}, "os.system"),
        ({"x": '${eval:\'__import__("os").system("id")\'}'}, "eval"),
        ({"cmd": ["${python:open('/etc/passwd').read()}"]}, "python"),
        ({"payload": {"py/repr": "os/os.system('id')"}}, "py/repr"),
    ],
)
def test_dangerous_instantiation_is_critical(
    tmp_path: Path, suffix: str, doc: dict[str, Any], needle: str
) -> None:
    result = scan(_write(tmp_path / f"config{suffix}", doc))
    found = [i.message for i in result.issues if i.severity is CRIT]
    assert any(needle in m for m in found), [i.message for i in result.issues]
    assert rt.JSON_DANGEROUS_TARGET in rules_of(result, CRIT)


def test_jsonpickle_encoded_reduce_is_critical(tmp_path: Path) -> None:
    import jsonpickle

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, ("id",))

    path = tmp_path / "state.json"
    path.write_text(jsonpickle.encode(Evil(), keys=False))
    result = scan(path)
    assert any("system" in i.message for i in result.issues if i.severity is CRIT)


def test_omegaconf_saved_eval_resolver_is_critical(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"a": 1, "run": '${eval:\'__import__("os").system("id")\'}'})
    path = tmp_path / "config.yaml"
    OmegaConf.save(cfg, path)
    result = scan(path)
    assert rt.JSON_DANGEROUS_TARGET in rules_of(result, CRIT)


# ---- benign configs written by the real tools stay without warnings


def test_lightning_cli_config_written_by_jsonargparse(tmp_path: Path) -> None:
    import torch
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_subclass_arguments(torch.optim.Optimizer, "optimizer", skip={"params"})
    cfg = parser.parse_args(["--optimizer=torch.optim.AdamW", "--optimizer.lr=0.001"])
    path = tmp_path / "config.yaml"
    path.write_text(parser.dump(cfg))
    result = scan(path)
    assert rules_of(result, CRIT) == set() and rules_of(result, WARN) == set()
    info = [i for i in result.issues if i.rule == rt.JSON_CONFIG_TARGET]
    assert info and "torch.optim.AdamW" in info[0].message


def test_omegaconf_arithmetic_and_env_resolvers(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {
            "hidden": 64,
            "ffn": "${eval:'${hidden} * 4'}",
            "home": "${oc.env:HOME}",
            "ref": "${hidden}",
            "opt": {"_target_": "torch.optim.Adam", "lr": 0.001},
        }
    )
    path = tmp_path / "config.yaml"
    OmegaConf.save(cfg, path)
    result = scan(path)
    assert rules_of(result, CRIT) == set() and rules_of(result, WARN) == set()
    assert rt.CONFIG_RESOLVER in rules_of(result)


def test_jsonpickle_of_plain_data(tmp_path: Path) -> None:
    import collections

    import jsonpickle

    path = tmp_path / "state.json"
    path.write_text(
        jsonpickle.encode({"od": collections.OrderedDict(a=1), "n": [1, 2]}, keys=False)
    )
    result = scan(path)
    assert rules_of(result, CRIT) == set() and rules_of(result, WARN) == set()


def test_albumentations_transform_names(tmp_path: Path) -> None:
    doc = {
        "__version__": "1.4.0",
        "transform": {
            "__class_fullname__": "Compose",
            "p": 1.0,
            "transforms": [
                {"__class_fullname__": "HorizontalFlip", "p": 0.5},
                {"__class_fullname__": "RandomBrightnessContrast", "p": 0.2},
            ],
        },
    }
    result = scan(_write(tmp_path / "transforms.json", doc))
    assert rules_of(result, CRIT) == set() and rules_of(result, WARN) == set()


@pytest.mark.parametrize(
    "text",
    [
        '{"cmd": "\\u0024{python:open(\'/etc/passwd\').read()}"}',
        '{"cmd": "$\\u007bpython:open(\'/etc/passwd\').read()}"}',
        '{"m": {"py\\/object": "subprocess.Popen", "args": ["id"]}}',
        '{"m": {"_tar\\u0067et_": "os.system", "command": "id"}}',
    ],
)
def test_json_escapes_spell_what_the_loader_reads(tmp_path: Path, text: str) -> None:
    """JSON escapes decode before any loader sees the text: a `$` written as \\u0024 is an
    interpolation, `py\\/object` a jsonpickle key (json.loads says so below), and each is
    judged exactly as its plain spelling."""
    decoded = json.loads(text)
    plain_path = _write(tmp_path / "plain.json", decoded)
    assert "\\" not in plain_path.read_text()
    escaped_path = tmp_path / "config.json"
    escaped_path.write_text(text)
    expected = rules_of(scan(plain_path), CRIT)
    assert expected, "the plain spelling is dangerous"
    assert rules_of(scan(escaped_path), CRIT) == expected


def test_small_config_without_hooked_keys_keeps_its_metadata(tmp_path: Path) -> None:
    """A small config with none of the hooked keys (parsed without the object hook) still
    yields its names, type, architectures and task."""
    path = _write(
        tmp_path / "config.json",
        {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "_name_or_path": "x/y"},
    )
    result = scan(path)
    assert result.metadata["model_type"] == "llama"
    assert result.metadata["architectures"] == ["LlamaForCausalLM"]
    assert result.metadata["model_names"] == ["x/y", "llama"]
    assert result.metadata["task"] == "text-generation"
    assert rules_of(result, CRIT) == set() and rules_of(result, WARN) == set()


_CODE = '\'__import__("os").system("id")\''
#: `__import__('os').system('id')` to Python, with no ASCII name a pattern could see.
_FULLWIDTH = (
    "${python:'_" + wide("_import__") + "(chr(111)+chr(115))." + wide("system") + "(chr(105))'}"
)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("alias-value.yaml", "cmd: &cmd os.system\nobj:\n  _target_: *cmd\n  _args_: [id]\n"),
        ("alias-key.yaml", "key: &key _target_\nobj:\n  *key : os.system\n"),
        ("alias-class-path.yaml", "c: &c subprocess.Popen\nm: {class_path: *c}\n"),
    ],
)
def test_yaml_alias_stands_for_its_anchored_text(tmp_path: Path, name: str, text: str) -> None:
    """An alias is the anchored scalar to every loader (yaml.safe_load says so below): a
    `_target_` key or value given as an alias is judged like its text."""
    doc = yaml.safe_load(text)
    plain = _write(tmp_path / "plain.yaml", doc)
    assert "*" not in plain.read_text()
    expected = rules_of(scan(plain), CRIT)
    assert expected, "the plain spelling is dangerous"
    path = tmp_path / name
    path.write_text(text)
    assert rules_of(scan(path), CRIT) == expected


def test_yaml_alias_of_a_redefined_anchor_is_the_latest_node(tmp_path: Path) -> None:
    """YAML 1.2 lets an anchor be redefined (ruamel reads the latest; PyYAML refuses the
    document): the alias is then the mapping, not the earlier scalar."""
    path = tmp_path / "redefined.yaml"
    path.write_text("n: &n os.system\nm: &n {a: 1}\nobj: {_target_: *n}\n")
    assert rules_of(scan(path), CRIT) == set()
    path.write_text("n: &n {a: 1}\nm: &n os.system\nobj: {_target_: *n}\n")
    assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(path), CRIT)


def _omegaconf_reads(doc: Any) -> list[str]:
    """The arguments OmegaConf hands to a resolver registered as `python` (recorded by the
    test, never evaluated) when the whole config is resolved."""
    from omegaconf import OmegaConf

    seen: list[str] = []
    OmegaConf.clear_resolver("python")

    def record(arg: str) -> str:
        seen.append(arg)
        return ""

    OmegaConf.register_new_resolver("python", record)
    try:
        OmegaConf.to_container(OmegaConf.create(doc), resolve=True)
    finally:
        OmegaConf.clear_resolver("python")
    return seen


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("name", "doc"),
    [
        ("nested-list.json", {"x": [["${python:" + _CODE + "}"]]}),
        ("top-level-list.json", ["${python:" + _CODE + "}"]),
        ("named-at-load.json", {"r": "python", "x": "${${r}:" + _CODE + "}"}),
        ("named-at-load.yaml", {"r": "python", "x": "${${r}:" + _CODE + "}"}),
        ("fullwidth.json", {"x": _FULLWIDTH}),
        ("fullwidth.yaml", {"x": _FULLWIDTH}),
    ],
)
def test_interpolations_omegaconf_resolves_are_judged(tmp_path: Path, name: str, doc: Any) -> None:
    """Every string OmegaConf resolves is looked at: inside nested and top-level lists, with
    a resolver name that is itself an interpolation, and with code in compatibility
    characters (Python reads identifiers in NFKC form)."""
    assert _omegaconf_reads(doc), "OmegaConf hands this text to the resolver"
    path = tmp_path / name
    if path.suffix == ".json":
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(path), CRIT)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    "doc",
    [
        {"cmd": "__import__('os').system('id')", "x": "${python:${cmd}}"},
        {"x": "${python:${a.cmd}}", "a": {"cmd": "__import__('os').system('id')"}},
        {"p": {"one": "__imp", "two": "ort__('o'+'s')"}, "x": "${python:${p.one}${p.two}}"},
    ],
)
def test_evaluated_text_spliced_from_other_keys_is_judged(
    tmp_path: Path, suffix: str, doc: dict[str, Any]
) -> None:
    """`${python:${cmd}}` evaluates what `cmd` holds: OmegaConf hands the resolver the
    spliced text (recorded below), so the scanner judges that text."""
    (spliced,) = _omegaconf_reads(doc)
    assert "__import__(" in spliced
    path = _write(tmp_path / f"config{suffix}", doc)
    assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(path), CRIT)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_arithmetic_on_spliced_numbers_stays_quiet(tmp_path: Path, suffix: str) -> None:
    doc = {"model": {"dim": 64, "name": "llama"}, "hidden": "${python:'${model.dim} * 4'}"}
    assert _omegaconf_reads(doc) == ["64 * 4"]
    path = _write(tmp_path / f"config{suffix}", doc)
    assert rules_of(scan(path), CRIT) == set() and rules_of(scan(path), WARN) == set()


def test_evaluated_text_spliced_from_an_alias_is_judged(tmp_path: Path) -> None:
    text = "a: &p \"__import__('os').system('id')\"\ncmd: *p\nx: ${python:${cmd}}\n"
    assert yaml.safe_load(text)["cmd"].startswith("__import__")
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(path), CRIT)


# ---- instantiated loaders told to trust remote code

_REMOTE_HYDRA = {
    "model": {
        "_target_": "transformers.AutoModelForCausalLM.from_pretrained",
        "pretrained_model_name_or_path": "someone/remote-model",
        "trust_remote_code": True,
    }
}


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    ("doc", "target"),
    [
        (_REMOTE_HYDRA, "transformers.AutoModelForCausalLM.from_pretrained"),
        (
            {
                "model": {
                    "class_path": "my_project.models.LitLM",
                    "init_args": {"backbone": "someone/remote", "trust_remote_code": True},
                }
            },
            "my_project.models.LitLM",
        ),
        (
            {
                "pipeline": {
                    "_target_": "transformers.pipeline",
                    "model": "someone/remote",
                    "model_kwargs": [{"trust_remote_code": "True"}],
                }
            },
            "transformers.pipeline",
        ),
        (
            {
                "trainer": {
                    "callbacks": [
                        {"class_path": "my.Callback", "init_args": {"trust_remote_code": "yes"}}
                    ]
                }
            },
            "my.Callback",
        ),
    ],
)
def test_instantiation_with_trust_remote_code_warns(
    tmp_path: Path, suffix: str, doc: dict[str, Any], target: str
) -> None:
    result = scan(_write(tmp_path / f"config{suffix}", doc))
    found = [i for i in result.issues if i.rule == rt.CONFIG_TARGET_REMOTE_CODE]
    assert len(found) == 1, [i.message for i in result.issues]
    assert found[0].severity is WARN
    assert target in found[0].message and "trust_remote_code" in found[0].message


def test_hydra_config_saved_by_omegaconf_with_trust_remote_code_warns(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    path = tmp_path / "config.yaml"
    OmegaConf.save(OmegaConf.create(_REMOTE_HYDRA), path)
    found = [i for i in scan(path).issues if i.rule == rt.CONFIG_TARGET_REMOTE_CODE]
    assert len(found) == 1 and "someone/remote-model" in found[0].message


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    "doc",
    [
        {"model": {**_REMOTE_HYDRA["model"], "trust_remote_code": False}},
        {"model": {**_REMOTE_HYDRA["model"], "trust_remote_code": "${trust_remote_code}"}},
        {"model": {**_REMOTE_HYDRA["model"], "trust_remote_code": "false"}},
        {"trust_remote_code": True, "model_name_or_path": "someone/remote-model"},
        {"model": {"_target_": "torch.nn.Linear"}, "data": {"trust_remote_code": True}},
    ],
)
def test_remote_code_off_or_outside_an_instantiated_node_is_quiet(
    tmp_path: Path, suffix: str, doc: dict[str, Any]
) -> None:
    result = scan(_write(tmp_path / f"config{suffix}", doc))
    assert rules_of(result, WARN) == set() and rules_of(result, CRIT) == set()


# ---- loaders handed a remote source or told to drop their guard (MA4309)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    ("node", "severity", "needle"),
    [
        # pandas opens http(s) with urllib and other schemes with fsspec, then unpickles
        (
            {"_target_": "pandas.read_pickle", "filepath_or_buffer": "https://h.example/x.pkl"},
            CRIT,
            "https://h.example/x.pkl",
        ),
        ({"_target_": "pandas.read_pickle", "_args_": ["s3://bucket/x.pkl"]}, CRIT, "s3://"),
        (
            {"_target_": "pandas.io.pickle.read_pickle", "path": "simplecache::gcs://b/x.pkl"},
            CRIT,
            "gcs://",
        ),
        # the remote part of a chain after 16 local wrappers was not looked at
        (
            {"_target_": "pandas.read_pickle", "path": "simplecache::" * 16 + "s3://b/x.pkl"},
            CRIT,
            "simplecache::",
        ),
        # Keras copies any `scheme://` path locally; safe_mode=False deserialises lambdas
        (
            {
                "_target_": "keras.models.load_model",
                "filepath": "gs://b/m.keras",
                "safe_mode": False,
            },
            CRIT,
            "safe_mode=",
        ),
        ({"_target_": "keras.saving.load_model", "filepath": "hf://someone/m"}, WARN, "hf://"),
        # guards off on a local path
        ({"_target_": "numpy.load", "file": "arr.npy", "allow_pickle": True}, WARN, "allow_pickle"),
        ({"_target_": "torch.load", "f": "model.pt", "weights_only": False}, WARN, "weights_only"),
        ({"_target_": "torch.load", "f": "model.pt", "pickle_module": "dill"}, WARN, "pickle_mod"),
        (
            {"_target_": "keras.models.load_model", "filepath": "m.keras", "safe_mode": None},
            WARN,
            "safe_mode",
        ),
        (
            {
                "class_path": "my_project.Lit.load_from_checkpoint",
                "init_args": {"checkpoint_path": "https://h.example/last.ckpt"},
            },
            WARN,
            "last.ckpt",
        ),
    ],
)
def test_loader_given_a_remote_source_or_its_guard_off(
    tmp_path: Path, suffix: str, node: dict[str, Any], severity: IssueSeverity, needle: str
) -> None:
    result = scan(_write(tmp_path / f"config{suffix}", {"stage": node}))
    found = [i for i in result.issues if i.rule == rt.CONFIG_LOADER_ARGS]
    assert len(found) == 1, [i.message for i in result.issues]
    assert found[0].severity is severity
    assert needle in found[0].message


def test_omegaconf_saved_yaml_plain_spellings_are_read_as_yaml_does(tmp_path: Path) -> None:
    """YAML 1.1 plain `off`/`no` are false, `yes` is true; quoted "false" is a true string
    to torch (`if weights_only:`), so it keeps the guard on."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "a:\n  _target_: torch.load\n  f: m.pt\n  weights_only: off\n"
        "b:\n  _target_: numpy.load\n  file: a.npy\n  allow_pickle: yes\n"
        "c:\n  _target_: torch.load\n  f: m.pt\n  weights_only: 'false'\n"
        "d: !new:pandas.read_pickle\n  path: http://h.example/x.pkl\n"
    )
    found = sorted(
        (i.severity.name, i.message.split("'")[1])
        for i in scan(path).issues
        if i.rule == rt.CONFIG_LOADER_ARGS
    )
    assert found == [
        ("CRITICAL", "pandas.read_pickle"),
        ("WARNING", "numpy.load"),
        ("WARNING", "torch.load"),
    ]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    "node",
    [
        {"_target_": "torch.load", "f": "checkpoints/last.pt", "map_location": "cpu"},
        {"_target_": "torch.load", "f": "m.pt", "weights_only": True},
        {"_target_": "pandas.read_pickle", "filepath_or_buffer": "data/features.pkl"},
        {"_target_": "joblib.load", "filename": "file:///data/model.joblib"},
        {"_target_": "numpy.load", "file": "emb.npy", "allow_pickle": False},
        {"_target_": "keras.models.load_model", "filepath": "m.keras", "safe_mode": True},
        {
            "_target_": "transformers.AutoModel.from_pretrained",
            "pretrained_model_name_or_path": "bert-base-uncased",
        },
        {
            "_target_": "torch.hub.load_state_dict_from_url",
            "url": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
        },
        # not loaders: URLs and switches beside them change nothing
        {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "dirpath": "s3://b/ckpt"},
        {"_target_": "my_project.data.NpyDataset", "root": "s3://b/d", "allow_pickle": True},
        {"_target_": "lightning.pytorch.loggers.WandbLogger", "weights_only": False},
    ],
)
def test_loader_with_a_local_path_and_its_guard_on_is_not_ma4309(
    tmp_path: Path, suffix: str, node: dict[str, Any]
) -> None:
    result = scan(_write(tmp_path / f"config{suffix}", {"stage": node}))
    assert rt.CONFIG_LOADER_ARGS not in rules_of(result), [i.message for i in result.issues]


def test_real_hydra_and_lightning_configs_stay_quiet(tmp_path: Path) -> None:
    """Configs as OmegaConf and jsonargparse write them, with loaders on local files, hub
    repositories and remote log/checkpoint folders: no warning."""
    from omegaconf import OmegaConf

    hydra = {
        "model": {
            "_target_": "transformers.AutoModelForSequenceClassification.from_pretrained",
            "pretrained_model_name_or_path": "distilbert-base-uncased",
            "num_labels": 2,
        },
        "init_weights": {"_target_": "torch.load", "f": "${paths.ckpt}", "map_location": "cpu"},
        "paths": {"ckpt": "outputs/last.ckpt", "log_dir": "s3://team-bucket/logs"},
        "callbacks": {
            "ckpt": {
                "_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
                "dirpath": "s3://team-bucket/ckpt",
                "save_weights_only": False,
            }
        },
        "logger": {
            "_target_": "lightning.pytorch.loggers.MLFlowLogger",
            "tracking_uri": "http://mlflow:5000",
        },
    }
    path = tmp_path / "config.yaml"
    OmegaConf.save(OmegaConf.create(hydra), path)
    result = scan(path)
    assert rules_of(result, WARN) == set() and rules_of(result, CRIT) == set(), [
        i.message for i in result.issues
    ]


# ---- every interpolation, reference and anchor is judged (no silent caps)


def _write_text(path: Path, doc: Any) -> Path:
    """`doc` as JSON or as YAML, by the suffix (wide lines: no folding inside a string)."""
    if path.suffix == ".json":
        path.write_text(json.dumps(doc))
    else:
        path.write_text(yaml.safe_dump(doc, width=1 << 30))
    return path


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(
            {"x": "${python:'1'}" * 50 + "${python:" + _CODE + "}"}, id="51st-in-a-string"
        ),
        pytest.param(
            {"x": "${python:'" + "1 or " * 500 + _CODE.strip("'") + "'}"}, id="padded-argument"
        ),
        pytest.param(
            {
                **{f"k{n}": "1" for n in range(20)},
                "k20": _CODE.strip("'"),
                "x": "${python:" + "+".join(f"${{k{n}}}" for n in range(21)) + "}",
            },
            id="21st-reference",
        ),
    ],
)
def test_every_interpolation_and_all_of_its_argument_are_judged(
    tmp_path: Path, suffix: str, doc: dict[str, Any]
) -> None:
    """A string's 51st interpolation, an argument's text past 2,000 characters and an
    expression's 21st reference went unread; OmegaConf hands the resolver all of them."""
    assert any("__import__" in arg for arg in _omegaconf_reads(doc))
    path = _write_text(tmp_path / f"config{suffix}", doc)
    assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(path), CRIT)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("first", [True, False], ids=["first", "last"])
def test_a_dangerous_interpolation_among_a_thousand_harmless_strings_is_critical(
    tmp_path: Path, suffix: str, first: bool
) -> None:
    """Only 1,000 strings holding `${` were judged per file (JSON took them last first)."""
    harmless = ["${python:1}"] * 1000
    bad = "${python:" + _CODE + "}"
    doc = {"x": [bad, *harmless] if first else [*harmless, bad]}
    path = _write_text(tmp_path / f"config{suffix}", doc)
    assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(path), CRIT)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"x": "${a:" * 20_000}, id="nested-starts"),
        pytest.param({"v": "v" * 200_000, "x": ["${python:${v}}"] * 400}, id="one-value-spliced"),
    ],
)
def test_rescanning_interpolation_text_spends_a_budget(
    tmp_path: Path, suffix: str, doc: dict[str, Any]
) -> None:
    """Starts nested in one another rescan the text after them, and an expression splices
    its values anew each time: past the budget the file is inconclusive, not judged on part
    of its interpolations."""
    result = scan(_write_text(tmp_path / f"config{suffix}", doc))
    assert ANALYSIS_BUDGET in rules_of(result, IssueSeverity.INFO)
    assert result.status is FileStatus.INCONCLUSIVE


def test_yaml_alias_of_the_ten_thousand_and_first_anchor_is_judged(tmp_path: Path) -> None:
    """Only 10,000 anchored scalars were remembered: an alias of a later one went unjudged."""
    anchors = "".join(f"a{n}: &a{n} v{n}\n" for n in range(10_000))
    path = tmp_path / "config.yaml"
    path.write_text(anchors + "cmd: &cmd os.system\nobj:\n  _target_: *cmd\n")
    assert yaml.safe_load(path.read_text())["obj"]["_target_"] == "os.system"
    assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(path), CRIT)


def test_yaml_alias_of_a_long_scalar_as_a_hooked_value_is_inconclusive(tmp_path: Path) -> None:
    """Anchored text past 1,000 characters is not kept (each alias would judge it anew): an
    alias of it where jsonpickle evaluates text goes unjudged, so the file is inconclusive."""
    path = tmp_path / "config.yaml"
    path.write_text(f"r: &r \"os/os.system('id') or {'x' * 1200}\"\nobj: {{py/repr: *r}}\n")
    assert yaml.safe_load(path.read_text())["obj"]["py/repr"].startswith("os/os.system")
    result = scan(path)
    assert ANALYSIS_BUDGET in rules_of(result, IssueSeverity.INFO)
    assert result.status is FileStatus.INCONCLUSIVE


# ---- NeMo's and Hydra 0.x's older spellings of _target_


def _nemo_config(preprocessor: dict[str, Any], target: str) -> dict[str, Any]:
    return {
        "target": target,
        "sample_rate": 16000,
        "labels": ["a", "b"],
        "preprocessor": preprocessor,
        "train_ds": {"manifest_filepath": "train.json", "target": "text", "class": 3},
    }


@pytest.mark.parametrize(
    ("preprocessor", "target", "needle"),
    [
        ({"cls": "os.system", "params": {"command": "id"}}, "nemo.M", "os.system"),
        ({"cls": "subprocess.Popen", "args": ["id"]}, "nemo.M", "subprocess.Popen"),
        ({"target": "posix.system", "params": {"command": "id"}}, "nemo.M", "posix.system"),
        ({"cls": "nemo.Pre", "params": {}}, "builtins.exec", "builtins.exec"),
    ],
)
def test_nemo_legacy_target_keys_naming_dangerous_callables_are_critical(
    tmp_path: Path, preprocessor: dict[str, Any], target: str, needle: str
) -> None:
    """NeMo's restore runs `maybe_update_config_version` (every `cls` becomes `_target_`,
    `params` merged into the node) and `from_config_dict` (imports `target` and calls it with
    the config), so these instantiate what they name, in a .nemo tar as on their own."""
    import tarfile

    config = _write(tmp_path / "model_config.yaml", _nemo_config(preprocessor, target))
    nemo = tmp_path / "model.nemo"
    with tarfile.open(nemo, "w:") as tar:
        tar.add(config, "./model_config.yaml")
    for path in (config, nemo):
        result = scan(path)
        found = [i.message for i in result.issues if i.severity is CRIT]
        assert any(needle in m for m in found), [i.message for i in result.issues]
        assert rt.JSON_DANGEROUS_TARGET in rules_of(result, CRIT)


def test_nemo_legacy_target_keys_naming_model_classes_or_data_stay_quiet(tmp_path: Path) -> None:
    """NeMo's own classes, and logging's dictConfig `class` (Hydra's job logging config)."""
    doc = _nemo_config(
        {"cls": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor", "params": {}},
        "nemo.collections.asr.models.EncDecCTCModel",
    )
    doc["handlers"] = {"file": {"class": "logging.FileHandler", "filename": "job.log"}}
    result = scan(_write(tmp_path / "model_config.yaml", doc))
    assert not result.issues, [i.message for i in result.issues]


# ---- Fiddle's JSON (NeMo 2 checkpoints' context/io.json)


def _pyref(module: str, name: str) -> dict[str, str]:
    return {"type": "pyref", "module": module, "name": name}


def _fiddle_json(fn: dict[str, str], args: dict[str, Any]) -> dict[str, Any]:
    """A `fdl.Config(fn, **args)` as `fiddle._src.experimental.serialization.dump_json`
    writes it: the callable is a pyref in the Config's traverser metadata."""
    config = {
        "type": _pyref("fiddle._src.config", "Config"),
        "items": [[f"Attr(name={k!r})", {"type": "leaf", "value": v}] for k, v in args.items()],
        "metadata": {
            "type": _pyref("fiddle._src.config", "BuildableTraverserMetadata"),
            "items": [
                ["Attr(name='fn_or_cls')", fn],
                ["Attr(name='argument_names')", list(args)],
            ],
            "metadata": None,
        },
        "paths": ["<root>"],
    }
    return {
        "root": {"type": "ref", "key": "config_1"},
        "objects": {"config_1": config},
        "refcounts": {"config_1": 1},
        "version": "0.0.1",
    }


@pytest.mark.parametrize(
    ("fn", "escaped"),
    [
        (_pyref("subprocess", "Popen"), False),
        (_pyref("os", "popen"), False),
        (_pyref("subprocess", "Popen"), True),
    ],
)
def test_fiddle_pyref_to_a_dangerous_callable_is_critical(
    tmp_path: Path, fn: dict[str, str], escaped: bool
) -> None:
    """`nemo.lightning.io.load` deserializes io.json with Fiddle (every pyref imported) and
    builds it (every Config's callable called with its arguments)."""
    text = json.dumps(_fiddle_json(fn, {"args": "id", "shell": True}))
    if escaped:
        text = text.replace('"pyref"', '"\\u0070yref"')
    folder = tmp_path / "context"
    folder.mkdir()
    path = folder / "io.json"
    path.write_text(text)
    result = scan(path)
    found = [i.message for i in result.issues if i.severity is CRIT]
    assert any(f"{fn['module']}.{fn['name']}" in m for m in found), found
    assert rt.JSON_DANGEROUS_TARGET in rules_of(result, CRIT)


def test_nemo2_io_json_naming_its_own_classes_stays_quiet(tmp_path: Path) -> None:
    """NeMo's own `nemo.lightning.io` package is not the standard `io` module."""
    doc = _fiddle_json(
        _pyref("nemo.collections.llm.gpt.model.llama", "LlamaModel"),
        {"seq_length": 2048},
    )
    doc["objects"]["artifact_1"] = {
        "type": _pyref("nemo.lightning.io.artifact.file", "DirOrStringArtifact"),
        "items": [],
        "metadata": _pyref("nemo.lightning.io.pl", "MegatronCheckpointIO"),
    }
    doc["objects"]["dtype_1"] = _pyref("torch", "bfloat16")
    path = tmp_path / "io.json"
    path.write_text(json.dumps(doc))
    result = scan(path)
    assert not result.issues, [i.message for i in result.issues]


# ---- `_target_` paths through a package's own subpackage named like a standard module


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    "target",
    [
        "nemo.lightning.io.pl.MegatronCheckpointIO",
        "lightning.pytorch.plugins.io.TorchCheckpointIO",
        "lightning.fabric.plugins.io.torch_io.TorchCheckpointIO",
        "scipy.signal.windows.hann",
        "skimage.io.imread",
    ],
)
def test_target_through_a_package_subpackage_named_like_a_stdlib_module_stays_quiet(
    tmp_path: Path, suffix: str, target: str
) -> None:
    """Hydra's `_locate` reaches `a.b.io.pl` by getattr or by importing `a.b.io.pl`: were
    `a.b.io` the standard `io`, it has no `pl`, so the package's own module is reached."""
    doc = {"trainer": {"plugins": [{"_target_": target}]}, "seed": 1}
    result = scan(_write(tmp_path / f"config{suffix}", doc))
    assert_clean(result)
    assert rules_of(result) == {rt.JSON_CONFIG_TARGET}, [i.message for i in result.issues]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("x.os.system", "x.os.system"),
        ("mypkg.subprocess.Popen", "mypkg.subprocess.Popen"),
        ("mypkg.io.open", "mypkg.io.open"),
        ("mypkg.io.FileIO.write", "mypkg.io.FileIO"),
        ("mypkg.io._io.open", "mypkg.io._io.open"),
        ("nemo.lightning.io.pl.os.system", "os.system"),
        ("mypkg.signal.signal", "mypkg.signal.signal"),
        ("mypkg.platform.os.system", "os.system"),
        ("mypkg.platform.popen", "mypkg.platform.popen"),
        ("tensorflow.python.platform.gfile.GFile", "GFile"),
    ],
)
def test_target_through_a_real_stdlib_reexport_stays_critical(
    tmp_path: Path, suffix: str, target: str, needle: str
) -> None:
    doc = {"trainer": {"plugins": [{"_target_": target, "args": "id"}]}}
    result = scan(_write(tmp_path / f"config{suffix}", doc))
    found = [i.message for i in result.issues if i.severity is CRIT]
    assert any(needle in m for m in found), [i.message for i in result.issues]
