"""What a config hands the model loader its `_target_` names: a remote source, a guard off.

Configs name loaders legitimately (`torch.load`, `pandas.read_pickle`, `numpy.load`, Keras
`load_model`, `from_pretrained`), so the name alone is INFO (`MA4302`). Two kinds of argument
change what instantiating the config does, read from the installed loaders' source:

- a remote source: `pandas.read_pickle` opens `http(s)://` with urllib and any other
  `scheme://` (`s3://`, `gcs://`, `hf://`, chained `simplecache::s3://`) with fsspec
  (pandas/io/common.py `_get_filepath_or_buffer`); Keras `load_model` copies any `.*://`
  path to a temporary file (keras/src/saving/saving_api.py, file_utils.is_remote_path).
  What is fetched was never scanned and can change after the scan;
- a guard turned off: `numpy.load(allow_pickle=<truthy>)` unpickles object arrays;
  `torch.load(weights_only=<falsy, not None>)`, or with any `pickle_module` (then
  weights_only defaults to False), runs the full unpickler (torch/serialization.py);
  Keras `safe_mode=<falsy, None included>` deserialises lambdas as bytecode
  (serialization_lib.deserialize_keras_object tests `if safe_mode:`).

Some loaders unpickle whatever they read (`read_pickle`, joblib, torch.hub's
`load_state_dict_from_url`, whose weights_only defaults to False). Values are judged as the
loader tests them: Python truthiness of what the YAML/JSON parser produced, YAML 1.1 plain
scalars included. Nothing is imported or fetched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from ..base import IssueSeverity
from ..pickle.callable_policy import config_normal_family

#: Keys whose values are the callable's arguments too (Hydra positional `_args_`,
#: jsonargparse `init_args`).
ARGUMENT_KEYS: Final = frozenset({"_args_", "init_args"})
#: Loader methods the pickle policy does not list by name but that load a checkpoint from a
#: path or URL (Lightning's `load_from_checkpoint` opens URLs with fsspec or torch.hub).
_LOADER_LEAVES: Final = frozenset({"load_from_checkpoint"})
#: Loaders that unpickle whatever they read, with the argument that would stop them if any.
_UNPICKLING_LEAVES: Final[dict[str, str | None]] = {
    "read_pickle": None,
    "read_gpickle": None,
    "load_pickle": None,
    "load_state_dict_from_url": "weights_only",
    "load_url": "weights_only",
}
_UNPICKLING_MODULES: Final = ("joblib.", "sklearn.externals.joblib.", "dill.", "cloudpickle.")
#: Schemes that stay on the loading machine (fsspec's local, in-memory and wrapping
#: file systems); any other `scheme://` is fetched from somewhere else.
_LOCAL_SCHEMES: Final = frozenset(
    {"file", "local", "memory", "simplecache", "filecache", "blockcache", "cached"}
    | {"zip", "tar", "libarchive", "dir"}
)
_SCHEME: Final = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.\-]*)://")
_YAML_FALSE: Final = frozenset({"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"})
_YAML_NULL: Final = frozenset({"", "~", "null", "Null", "NULL"})
_YAML_TRUE: Final = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})
_MAX_SHOWN: Final = 200


def remote_source(value: str) -> bool:
    """Whether a loader given `value` as a path fetches it from another machine: a URL, or
    an fsspec chain (`simplecache::s3://b/k`, `zip://m::https://h/a.zip`) with a part whose
    scheme is not local."""
    if "://" not in value:
        return False
    for part in value.split("::"):
        m = _SCHEME.match(part)
        if m is not None and m.group(1).lower() not in _LOCAL_SCHEMES:
            return True
    return False


def _truth(value: object, plain: bool) -> bool | None:
    """Python's truth of the value a YAML/JSON parser makes of a scalar; None for null."""
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return bool(value)
    if not isinstance(value, str):
        return True
    if not plain:
        return value != ""
    if value in _YAML_NULL:
        return None
    if value in _YAML_FALSE:
        return False
    if value in _YAML_TRUE:
        return True
    try:
        return float(value.replace("_", "")) != 0
    except ValueError:
        return True


def _guard_off(key: str, value: object, plain: bool) -> bool:
    """Whether `key: value` turns off the guard a loader keeps on by default."""
    if isinstance(value, str) and "${" in value:
        return False  # an interpolation: its target is judged where it is written
    truth = _truth(value, plain)
    if key == "allow_pickle":
        return truth is True
    if key == "safe_mode":
        return truth is not True
    if key == "weights_only":
        return truth is False
    if key == "pickle_module":
        return truth is not None
    return False


_GUARDS: Final = frozenset({"allow_pickle", "safe_mode", "weights_only", "pickle_module"})


def may_matter(key: str | None, value: str) -> bool:
    """A cheap test of whether `LoaderArgs.see` could keep anything of this argument."""
    return key in _GUARDS or "://" in value


@dataclass(slots=True)
class LoaderArgs:
    """The arguments beside a `_target_` that change what its loader does (see module doc)."""

    remote: tuple[str, str] | None = None
    guards_off: list[tuple[str, str]] = field(default_factory=list)
    guards_on: set[str] = field(default_factory=set)

    def see(self, key: str | None, value: object, plain: bool = True) -> None:
        """One scalar argument (`key` None for a positional one)."""
        if isinstance(value, str) and self.remote is None and remote_source(value):
            self.remote = (key or "_args_", value[:_MAX_SHOWN])
        if key in _GUARDS:
            if _guard_off(key, value, plain):
                if len(self.guards_off) < len(_GUARDS):
                    self.guards_off.append((key, str(value)[:_MAX_SHOWN]))
            elif _truth(value, plain):
                self.guards_on.add(key)

    def absorb(self, other: LoaderArgs) -> None:
        """Arguments given through `_args_` or `init_args`."""
        self.remote = self.remote or other.remote
        for item in other.guards_off:
            if len(self.guards_off) < len(_GUARDS):
                self.guards_off.append(item)
        self.guards_on |= other.guards_on

    def __bool__(self) -> bool:
        return self.remote is not None or bool(self.guards_off) or bool(self.guards_on)


def is_loader(target: str) -> bool:
    """Whether `target` is a callable that loads a model or pickle from its arguments."""
    name = target.strip().replace(":", ".")
    if name.rsplit(".", 1)[-1] in _LOADER_LEAVES:
        return True
    return config_normal_family(name) == "nested-unpickler"


def _unpickles(target: str, args: LoaderArgs) -> bool:
    name = target.strip().replace(":", ".")
    if name.startswith(_UNPICKLING_MODULES):
        return True
    leaf = name.rsplit(".", 1)[-1]
    if leaf not in _UNPICKLING_LEAVES:
        return False
    stop = _UNPICKLING_LEAVES[leaf]
    return stop is None or stop not in args.guards_on


def judge_loader(target: str, args: LoaderArgs) -> tuple[IssueSeverity, str] | None:
    """(severity, what it does) for a loader given a remote source or a guard off; None when
    its arguments change nothing (a plain in-model path stays the INFO of its name).

    CRITICAL: it unpickles what it fetches from another machine (code nobody scanned, chosen
    by whoever serves the URL when the config is instantiated). WARNING: it loads a model
    from another machine with its guards on, or runs with a guard off on a local path (the
    file there may be scanned, but the loader's own protection is gone).
    """
    if not args or not is_loader(target):
        return None
    off = ", ".join(f"{k}={v}" for k, v in args.guards_off)
    unpickles = _unpickles(target, args)
    if args.remote is not None:
        key, url = args.remote
        what = f"fetches '{url}' (at {key})"
        if off:
            return IssueSeverity.CRITICAL, f"{what} and loads it with {off}"
        if unpickles:
            return IssueSeverity.CRITICAL, f"{what} and unpickles it"
        return IssueSeverity.WARNING, f"{what} and loads it"
    if off:
        return IssueSeverity.WARNING, f"loads with its guard off ({off})"
    return None


__all__ = [
    "ARGUMENT_KEYS",
    "LoaderArgs",
    "is_loader",
    "judge_loader",
    "may_matter",
    "remote_source",
]
