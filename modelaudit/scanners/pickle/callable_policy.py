"""Judge a dotted callable name that a config asks a loader to import and call.

Hydra/OmegaConf `_target_`, HyperPyYAML `!new:`/`!apply:`/`!name:` tags and similar keys make
the loader import a module and call a name from it. Decided from the name alone, never by
importing anything: the pickle engine's policy (same question: may this global be called?)
plus a short list of config-specific entry points.
"""

from __future__ import annotations

from typing import Final

from . import policy

#: Modules where every callable runs commands, touches files or the network, or loads code.
_DANGEROUS_MODULES: Final = frozenset(
    {
        "os",
        "posix",
        "nt",
        "subprocess",
        "pty",
        "commands",
        "sys",
        "importlib",
        "runpy",
        "ctypes",
        "socket",
        "shutil",
        "pickle",
        "_pickle",
        "cPickle",
        "dill",
        "marshal",
        "code",
        "codeop",
        "webbrowser",
        "urllib",
        "http",
        "requests",
        "httpx",
        "multiprocessing",
        "pdb",
        "timeit",
        "cProfile",
        "profile",
        "asyncio.subprocess",
        "torch.hub",
        "tensorflow.io",
        "shelve",
    }
)
_DANGEROUS_BUILTINS: Final = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "__import__",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "execfile",
    }
)
_DANGEROUS_NAMES: Final = frozenset(
    {
        "hydra.utils.call",
        "hydra.utils.get_method",
        "hydra.utils.instantiate",
        "functools.partial",
        "operator.attrgetter",
        "operator.methodcaller",
    }
)


#: Pickle-policy families that configs name legitimately (`from_pretrained`, hub downloads).
_CONFIG_NORMAL_FAMILIES: Final = frozenset({"nested-unpickler", "network"})


def is_dangerous_callable(target: str) -> bool:
    """True when importing and calling `target` can run commands or arbitrary code."""
    name = target.strip().replace(":", ".")
    if name in _DANGEROUS_NAMES or _pickle_policy_denies(name):
        return True
    module, _, attr = name.rpartition(".")
    if module in ("builtins", "__builtin__", "") and attr in _DANGEROUS_BUILTINS:
        return True
    parts = name.split(".")
    return any(".".join(parts[:i]) in _DANGEROUS_MODULES for i in range(1, len(parts) + 1))


def is_dangerous_import(module: str, qualname: str) -> bool:
    """`is_dangerous_callable` for a name whose module part is known (a loader that imports
    `module` and follows `qualname`, as Fiddle's pyrefs say): no other split of the dotted
    path is tried, so a package's own `io` subpackage is not taken for the standard one."""
    full = f"{module}.{qualname}"
    if full in _DANGEROUS_NAMES:
        return True
    if policy.valid_name(module, qualname):
        verdict = policy.classify(module, qualname)
        if verdict.kind == policy.DANGER and verdict.family not in _CONFIG_NORMAL_FAMILIES:
            return True
    if module in ("builtins", "__builtin__") and qualname in _DANGEROUS_BUILTINS:
        return True
    parts = module.split(".")
    return any(".".join(parts[:i]) in _DANGEROUS_MODULES for i in range(1, len(parts) + 1))


def config_normal_family(target: str) -> str | None:
    """The pickle-policy family (`nested-unpickler`, `network`) that a callable configs name
    legitimately falls in, or None: what it does then depends on the arguments it is given."""
    parts = target.strip().replace(":", ".").split(".")
    for i in range(len(parts) - 1, 0, -1):
        module, qualname = ".".join(parts[:i]), ".".join(parts[i:])
        if not policy.valid_name(module, qualname):
            continue
        verdict = policy.classify(module, qualname)
        if verdict.kind == policy.DANGER and verdict.family in _CONFIG_NORMAL_FAMILIES:
            return verdict.family
    return None


def _pickle_policy_denies(name: str) -> bool:
    """Ask the pickle engine's policy, trying every module/attribute split of the name."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module, qualname = ".".join(parts[:i]), ".".join(parts[i:])
        if not policy.valid_name(module, qualname):
            continue
        verdict = policy.classify(module, qualname)
        if verdict.kind == policy.DANGER and verdict.family not in _CONFIG_NORMAL_FAMILIES:
            return True
    return False
