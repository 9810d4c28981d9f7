"""RL Baselines3 Zoo (`rl_zoo3`) hyperparameters: the strings it evaluates as Python.

`python -m rl_zoo3.enjoy` (and `record_video`) reads `<log>/<algo>/<env>_<n>/<env>/config.yml`
(where `load_from_hub` puts the `config.yml` of a Hub repository, beside the model's `.zip`)
with `get_saved_hyperparams`: a string `normalize` is passed to `eval()`. Its training
`ExperimentManager` evals `normalize`, `policy_kwargs`, `replay_buffer_class`,
`replay_buffer_kwargs` and `monitor_kwargs` the same way. What RL Zoo writes there is a
`dict(...)` of constants, lists and classes (`dict(activation_fn=nn.ReLU, net_arch=[64])`);
the text is parsed (never evaluated) and anything that calls another name, walks private
or dunder attributes, assigns, or names a callable the config policy denies or finds a loader
is reported.
"""

from __future__ import annotations

import ast
import os
from typing import Final

from ...lazy_re import LazyPattern
from ..pickle.callable_policy import config_normal_family, is_dangerous_callable

#: Key -> who evaluates its string value.
EVAL_KEYS: Final[dict[str, str]] = {
    "normalize": "rl_zoo3's enjoy/record_video (get_saved_hyperparams) and training",
    "policy_kwargs": "rl_zoo3's training (ExperimentManager)",
    "replay_buffer_class": "rl_zoo3's training (ExperimentManager)",
    "replay_buffer_kwargs": "rl_zoo3's training (ExperimentManager)",
    "monitor_kwargs": "rl_zoo3's training (ExperimentManager)",
}
#: Keys whose names (a string, a list of them, or `{name: kwargs}` items) rl_zoo3's
#: `get_wrapper_class` imports and calls with the environment, at enjoy as in training.
WRAPPER_KEYS: Final = frozenset({"env_wrapper", "vec_env_wrapper"})
#: Calls that only build containers and numbers from their arguments.
_SAFE_CALLS: Final = frozenset(
    {"dict", "list", "tuple", "set", "frozenset", "float", "int", "bool"}
)
#: Module aliases rl_zoo3's modules import under (`import torch as th`, `from torch import nn`).
_ALIASES: Final[dict[str, str]] = {"th": "torch", "nn": "torch.nn", "np": "numpy"}
#: Longer text is not judged (RL Zoo's are a line): the file is left inconclusive.
MAX_TEXT: Final = 4096
_RUN_DIR: Final = LazyPattern(r"(.+)_\d+")


def is_rl_zoo_config(path: str) -> bool:
    """Whether `path` is a `config.yml` where rl_zoo3 reads it: `<env>_<n>/<env>/config.yml`
    (its log layout) or beside a model `.zip` and the `args.yml`/`env_kwargs.yml` RL Zoo
    saves with it (a Hub repository)."""
    if os.path.basename(path) != "config.yml":
        return False
    folder = os.path.dirname(os.path.abspath(path))
    env = os.path.basename(folder)
    run = _RUN_DIR.fullmatch(os.path.basename(os.path.dirname(folder)))
    if run is not None and run.group(1) == env:
        return True
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    zoo_files = {"args.yml", "env_kwargs.yml"}
    return any(n.endswith(".zip") for n in names) and any(n in zoo_files for n in names)


def judge(text: str) -> list[str] | None:
    """What evaluating `text` would call or reach beyond plain data: [] when nothing, None
    when the text is too long or too deeply nested to judge. Text that does not parse as an
    expression makes eval() raise before anything runs, so it is []."""
    if len(text) > MAX_TEXT:
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return []
    except (RecursionError, MemoryError, ValueError):
        return None
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if not (isinstance(func, ast.Name) and func.id in _SAFE_CALLS):
                found.append(f"call of {_dotted(func) or ast.unparse(func)[:60]}")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                found.append(f"attribute {node.attr}")
        elif isinstance(node, ast.Name) and node.id.startswith("_"):
            found.append(node.id)
        if isinstance(node, ast.Attribute | ast.Name) and not isinstance(node.ctx, ast.Load):
            found.append("assignment")
    for node in ast.walk(tree):
        name = _dotted(node) if isinstance(node, ast.Attribute | ast.Name) else None
        if name is None:
            continue
        head, _, rest = name.partition(".")
        full = f"{_ALIASES[head]}.{rest}" if head in _ALIASES and rest else name
        full = full if "." in full else f"builtins.{full}"
        if is_dangerous_callable(full) or config_normal_family(full):
            found.append(name)
    return sorted(set(found))


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


__all__ = ["EVAL_KEYS", "MAX_TEXT", "WRAPPER_KEYS", "is_rl_zoo_config", "judge"]
