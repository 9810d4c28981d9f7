from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import text as rt
from tests.dataformats._dataformats_util import assert_clean, rules_of, scan


def test_plain_yaml_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "model": {"name": "resnet50", "layers": [3, 4, 6, 3], "dropout": 0.1},
                "train": {"lr": 3e-4, "epochs": 90, "date": "2024-01-01"},
                "labels": ["cat", "dog"],
            }
        )
    )
    assert_clean(scan(path))


def test_anchors_and_merge_keys_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yml"
    path.write_text("base: &b {lr: 0.1, wd: 0.0}\nrun1:\n  <<: *b\n  lr: 0.2\nrun2: *b\n")
    assert_clean(scan(path))


def test_python_tags_are_critical(tmp_path: Path) -> None:
    cases = [
        "x: !!python/object/apply:os.system ['id']\n",
        "x: !!python/object/new:subprocess.Popen [['id']]\n",
        "x: !!python/name:builtins.eval\n",
        "x: !!python/module:os\n",
        "x: !<tag:yaml.org,2002:python/object/apply:os.system> ['id']\n",
        "%TAG !p! tag:yaml.org,2002:python/\n---\nx: !p!object/apply:os.system ['id']\n",
    ]
    for i, text in enumerate(cases):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(text)
        result = scan(path)
        assert rt.YAML_PYTHON_TAG in rules_of(result, IssueSeverity.CRITICAL), text


def test_hydra_targets(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("optimizer:\n  _target_: torch.optim.AdamW\n  lr: 0.001\n")
    result = scan(path)
    assert_clean(result)
    assert rt.JSON_CONFIG_TARGET in rules_of(result, IssueSeverity.INFO)
    for target in ("os.system", "subprocess.run", "builtins.eval", "posix.system"):
        path.write_text(f"cb:\n  _target_: {target}\n  _args_: ['id']\n")
        assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(path), IssueSeverity.CRITICAL), target


def test_hyperpyyaml_call_tags(tmp_path: Path) -> None:
    path = tmp_path / "hyperparams.yaml"
    path.write_text("model: !new:torch.nn.Linear\n  in_features: 3\n  out_features: 4\n")
    assert_clean(scan(path))
    path.write_text("pwn: !apply:os.system ['id']\n")
    assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(path), IssueSeverity.CRITICAL)


def test_alias_bomb_is_bounded(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.monotonic()
    result = scan(path)
    assert time.monotonic() - start < 30
    assert rt.YAML_ALIAS_BOMB in rules_of(result, IssueSeverity.WARNING)


def test_deep_nesting_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 100_000 + "]" * 100_000)
    start = time.monotonic()
    result = scan(path)
    assert time.monotonic() - start < 30
    assert result.status is FileStatus.INCONCLUSIVE
    assert rt.JSON_EXCESSIVE_NESTING in rules_of(result, IssueSeverity.WARNING)


def test_invalid_yaml_is_inconclusive(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: [1, 2\nb: }\n")
    assert scan(path).status is FileStatus.INCONCLUSIVE


def test_scanning_never_constructs(tmp_path: Path) -> None:
    marker = tmp_path / "constructed"
    path = tmp_path / "evil.yaml"
    path.write_text(f"x: !!python/object/apply:os.system ['touch {marker}']\n")
    scan(path)
    assert not marker.exists()


def test_lightning_hparams_tags_are_not_critical(tmp_path: Path) -> None:
    """What `yaml.dump` writes for Lightning's `hparams.yaml`: a tuple hyperparameter as
    `!!python/tuple`, argparse arguments as `!!python/object:argparse.Namespace`."""
    import argparse

    path = tmp_path / "hparams.yaml"
    path.write_text(
        yaml.dump({"betas": (0.9, 0.999), "args": argparse.Namespace(lr=0.1, layers=[1, 2])})
    )
    assert "!!python/tuple" in path.read_text()
    result = scan(path)
    assert_clean(result)
    assert rules_of(result) == {rt.YAML_CUSTOM_TAG}
    # the same tag naming a class that does something stays critical
    for text in (
        "x: !!python/object:subprocess.Popen {args: id}\n",
        "x: !!python/object:os.system {}\n",
        "x: !!python/object:argparse.ArgumentParser.exit {}\n",
    ):
        path.write_text(text)
        assert rt.YAML_PYTHON_TAG in rules_of(scan(path), IssueSeverity.CRITICAL), text


def test_rl_zoo_ordered_dict_configs_are_not_critical(tmp_path: Path) -> None:
    """rl_zoo3 writes config.yml and args.yml with `yaml.dump` of an OrderedDict, which tags
    the document `!!python/object/apply:collections.OrderedDict` over a list of pairs."""
    from collections import OrderedDict

    path = tmp_path / "config.yml"
    path.write_text(yaml.dump(OrderedDict([("n_envs", 8), ("policy", "MlpPolicy")])))
    assert path.read_text().startswith("!!python/object/apply:collections.OrderedDict")
    result = scan(path)
    assert_clean(result)
    assert rules_of(result) == {rt.YAML_CUSTOM_TAG}
    # what the pairs hold is judged on its own; other calls and look-alikes stay critical
    for text in (
        "!!python/object/apply:collections.OrderedDict\n- - - a\n"
        "    - !!python/object/apply:os.system ['id']\n",
        "!!python/object/apply:collections.OrderedDict.fromkeys [[a]]\n",
        "!!python/object/apply:collections.OrderedDictx [[]]\n",
        "!!python/object/apply:collections.defaultdict [!!python/name:os.system ]\n",
    ):
        path.write_text(text)
        assert rt.YAML_PYTHON_TAG in rules_of(scan(path), IssueSeverity.CRITICAL), text


def test_numpy_values_in_lightning_hparams_are_not_critical(tmp_path: Path) -> None:
    """Lightning's save_hparams_to_yaml yaml.dumps numpy hyperparameters: scalars as
    `object/apply:numpy...scalar` over `object/apply:numpy.dtype`, arrays as
    `object/apply:..._reconstruct` naming `!!python/name:numpy.ndarray`."""
    import numpy as np

    path = tmp_path / "hparams.yaml"
    path.write_text(
        yaml.dump({"lr": np.float64(0.01), "hidden": np.int64(8), "w": np.array([0.3, 0.7])})
    )
    text = path.read_text()
    assert "!!python/name:numpy.ndarray" in text and "multiarray.scalar" in text
    result = scan(path)
    assert_clean(result)
    assert rules_of(result) == {rt.YAML_CUSTOM_TAG}
    for bad in (
        "x: !!python/object/apply:numpy.load ['/tmp/evil.npy', null, true]\n",
        "x: !!python/name:numpy.ctypeslib.load_library ''\n",
        "x: !!python/object/apply:numpy.core._ufunc_reconstruct [os, system]\n",
        "x: !!python/module:numpy\n",
        "x: !!python/object/apply:numpy.dtype.__reduce__ []\n",
        "x: !!python/object/new:numpy.ndarray.__class__.__subclasses__ []\n",
    ):
        path.write_text(bad)
        assert rt.YAML_PYTHON_TAG in rules_of(scan(path), IssueSeverity.CRITICAL), bad


# ---- RL Baselines3 Zoo: hyperparameter strings rl_zoo3 passes to eval()


def _rl_zoo_run(tmp_path: Path, layout: str, hyperparams: list[tuple[str, object]]) -> Path:
    """A `config.yml` as rl_zoo3's ExperimentManager saves it (`yaml.dump` of an
    OrderedDict), where `rl_zoo3.enjoy` reads it: its log layout or a Hub repository's."""
    import zipfile
    from collections import OrderedDict

    if layout == "logs":
        folder = tmp_path / "logs" / "ppo" / "CartPole-v1_1" / "CartPole-v1"
        folder.mkdir(parents=True)
    else:
        folder = tmp_path
        with zipfile.ZipFile(folder / "ppo-CartPole-v1.zip", "w") as zf:
            zf.writestr("data", "{}")
        (folder / "args.yml").write_text(yaml.dump(OrderedDict([("algo", "ppo")])))
    path = folder / "config.yml"
    path.write_text(yaml.dump(OrderedDict(hyperparams)))
    return path


_RL_ZOO_WRITES = [
    ("n_envs", 8),
    ("normalize", "dict(norm_obs=True, norm_reward=False)"),
    (
        "policy_kwargs",
        "dict(log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU, "
        "net_arch=dict(pi=[256, 256], vf=[256, 256]) )",
    ),
    ("replay_buffer_class", "HerReplayBuffer"),
    ("replay_buffer_kwargs", "dict( goal_selection_strategy='future', n_sampled_goal=4 )"),
    ("policy", "MlpPolicy"),
]


@pytest.mark.parametrize("layout", ["logs", "hub"])
@pytest.mark.parametrize(
    "normalize", ["dict(norm_obs=True, norm_reward=False)", "{'norm_obs': False}", True]
)
def test_rl_zoo_dict_literals_stay_quiet(tmp_path: Path, layout: str, normalize: object) -> None:
    """Strings from rl_zoo3's own hyperparams/*.yml."""
    hyperparams = [*_RL_ZOO_WRITES, ("normalize", normalize)]
    result = scan(_rl_zoo_run(tmp_path, layout, hyperparams))
    assert_clean(result)
    assert rt.JSON_DANGEROUS_TARGET not in rules_of(result)


@pytest.mark.parametrize("layout", ["logs", "hub"])
@pytest.mark.parametrize(
    ("key", "text", "needle"),
    [
        ("normalize", "__import__('os').system('id')", "__import__"),
        ("normalize", "dict(norm_obs=eval('True'))", "eval"),
        ("normalize", "dict(norm_obs=().__class__.__base__.__subclasses__())", "__class__"),
        ("policy_kwargs", "dict(activation_fn=nn.ReLU, f=subprocess.Popen)", "subprocess.Popen"),
        ("policy_kwargs", "dict(net_arch=[open('/etc/passwd').read()])", "open"),
        ("monitor_kwargs", "dict(x=th.load)", "th.load"),
        ("replay_buffer_class", "importlib.import_module('os')", "importlib.import_module"),
    ],
)
def test_rl_zoo_strings_that_call_other_names_are_critical(
    tmp_path: Path, layout: str, key: str, text: str, needle: str
) -> None:
    result = scan(_rl_zoo_run(tmp_path, layout, [*_RL_ZOO_WRITES, (key, text)]))
    found = [i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL]
    assert any(key in m and needle in m for m in found), [i.message for i in result.issues]
    assert rt.JSON_DANGEROUS_TARGET in rules_of(result, IssueSeverity.CRITICAL)


def test_rl_zoo_config_written_as_a_mapping_is_judged(tmp_path: Path) -> None:
    path = _rl_zoo_run(tmp_path, "logs", [])
    path.write_text(yaml.safe_dump({"normalize": "__import__('os').system('id')"}))
    assert rt.JSON_DANGEROUS_TARGET in rules_of(scan(path), IssueSeverity.CRITICAL)


def test_rl_zoo_text_too_long_to_judge_is_inconclusive(tmp_path: Path) -> None:
    text = "dict(net_arch=[" + "64, " * 2000 + "])"
    result = scan(_rl_zoo_run(tmp_path, "hub", [("normalize", text)]))
    assert result.status is FileStatus.INCONCLUSIVE


def test_other_yaml_keys_named_like_rl_zoo_ones_are_not_judged(tmp_path: Path) -> None:
    """A config.yml outside RL Zoo's layouts: its strings are nobody's eval() input."""
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"normalize": "per_channel(mean, std)", "policy_kwargs": "x"}))
    assert not scan(path).issues


@pytest.mark.parametrize("layout", ["logs", "hub"])
@pytest.mark.parametrize(
    "wrapper",
    [
        "os.system",
        ["rl_zoo3.wrappers.PlotActionWrapper", "subprocess.Popen"],
        [{"subprocess.Popen": {"shell": True}}],
        {"builtins.exec": {"x": 1}},
    ],
)
def test_rl_zoo_env_wrapper_naming_a_dangerous_callable_is_critical(
    tmp_path: Path, layout: str, wrapper: object
) -> None:
    """rl_zoo3's `get_wrapper_class` imports each name's module and calls it with the env and
    the item's keyword arguments, when enjoy builds the environment."""
    result = scan(_rl_zoo_run(tmp_path, layout, [*_RL_ZOO_WRITES, ("env_wrapper", wrapper)]))
    assert rt.JSON_DANGEROUS_TARGET in rules_of(result, IssueSeverity.CRITICAL), [
        i.message for i in result.issues
    ]


def test_rl_zoo_env_wrappers_it_ships_stay_quiet(tmp_path: Path) -> None:
    """The keyword names of a wrapper item are arguments, not callables."""
    wrappers = [
        "sb3_contrib.common.wrappers.TimeFeatureWrapper",
        {"stable_baselines3.common.atari_wrappers.AtariWrapper": {"terminal_on_life_loss": False}},
    ]
    hyperparams = [*_RL_ZOO_WRITES, ("env_wrapper", wrappers)]
    result = scan(_rl_zoo_run(tmp_path, "logs", hyperparams))
    assert_clean(result)
    assert rules_of(result) <= {rt.JSON_CONFIG_TARGET, rt.YAML_CUSTOM_TAG}
