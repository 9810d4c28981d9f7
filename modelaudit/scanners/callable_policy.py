"""Judge a dotted callable name that a config asks a loader to import and call.

Hydra/OmegaConf `_target_`, HyperPyYAML `!new:`/`!apply:`/`!name:` tags and similar keys make
the loader import a module and call a name from it. Decided from the name alone, never by
importing anything.
"""

from __future__ import annotations

from typing import Final

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
        "torch.load",
        "numpy.load",
        "joblib.load",
        "pandas.read_pickle",
        "hydra.utils.call",
        "hydra.utils.get_method",
        "hydra.utils.instantiate",
        "functools.partial",
        "operator.attrgetter",
        "operator.methodcaller",
    }
)


def is_dangerous_callable(target: str) -> bool:
    """True when importing and calling `target` can run commands or arbitrary code."""
    name = target.strip().replace(":", ".")
    if name in _DANGEROUS_NAMES:
        return True
    module, _, attr = name.rpartition(".")
    if module in ("builtins", "__builtin__", "") and attr in _DANGEROUS_BUILTINS:
        return True
    parts = name.split(".")
    return any(".".join(parts[:i]) in _DANGEROUS_MODULES for i in range(1, len(parts) + 1))
