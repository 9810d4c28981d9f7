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


#: Public names of standard modules that packages also use for their own subpackages
#: (`nemo.lightning.io`, `lightning.pytorch.plugins.io`, `scipy.signal`,
#: `tensorflow.python.platform`), over Python 3.8-3.14. Written out, never read from the
#: running interpreter, so the verdict does not depend on what is installed.
_STDLIB_ATTRIBUTES: Final[dict[str, frozenset[str]]] = {
    "io": frozenset(
        {
            "BlockingIOError",
            "BufferedIOBase",
            "BufferedRWPair",
            "BufferedRandom",
            "BufferedReader",
            "BufferedWriter",
            "BytesIO",
            "FileIO",
            "IOBase",
            "IncrementalNewlineDecoder",
            "OpenWrapper",
            "RawIOBase",
            "Reader",
            "StringIO",
            "TextIOBase",
            "TextIOWrapper",
            "UnsupportedOperation",
            "Writer",
            "abc",
            "open",
            "open_code",
            "text_encoding",
        }
    ),
    "signal": frozenset(
        {
            "Handlers",
            "ItimerError",
            "Sigmasks",
            "Signals",
            "alarm",
            "default_int_handler",
            "getitimer",
            "getsignal",
            "pause",
            "pidfd_send_signal",
            "pthread_kill",
            "pthread_sigmask",
            "raise_signal",
            "set_wakeup_fd",
            "setitimer",
            "siginterrupt",
            "signal",
            "sigpending",
            "sigtimedwait",
            "sigwait",
            "sigwaitinfo",
            "strsignal",
            "struct_siginfo",
            "valid_signals",
        }
    ),
    "platform": frozenset(
        {
            "AndroidVer",
            "IOSVersionInfo",
            "android_ver",
            "architecture",
            "collections",
            "dist",
            "freedesktop_os_release",
            "functools",
            "invalidate_caches",
            "ios_ver",
            "itertools",
            "java_ver",
            "libc_ver",
            "linux_distribution",
            "mac_ver",
            "machine",
            "node",
            "os",
            "platform",
            "popen",
            "processor",
            "python_branch",
            "python_build",
            "python_compiler",
            "python_implementation",
            "python_revision",
            "python_version",
            "python_version_tuple",
            "re",
            "release",
            "shutil",
            "struct",
            "subprocess",
            "sys",
            "system",
            "system_alias",
            "uname",
            "uname_result",
            "version",
            "warnings",
            "win32_edition",
            "win32_is_iot",
            "win32_ver",
        }
    ),
}


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
    if f"{module}.{qualname}" in _DANGEROUS_NAMES or _split_denied(module, qualname):
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
        if not _not_the_stdlib_module(parts[i:]) and _split_denied(module, qualname):
            return True
    return False


def _split_denied(module: str, qualname: str) -> bool:
    """The pickle policy denies `qualname` of `module`, in a family configs do not name
    legitimately."""
    if not policy.valid_name(module, qualname):
        return False
    verdict = policy.classify(module, qualname)
    return verdict.kind == policy.DANGER and verdict.family not in _CONFIG_NORMAL_FAMILIES


def _not_the_stdlib_module(qparts: list[str]) -> bool:
    """True when the first re-export-looking segment of this split (`io` in
    `nemo.lightning` + `io.pl.MegatronCheckpointIO`) cannot be the standard module of that
    name, because the segment after it is nothing that module defines.

    Config loaders reach `a.b.io.pl` by getattr on `a.b` or by importing `a.b.io.pl`
    (Hydra's `_locate`, `pydoc.locate`, Keras' module + name): were `a.b.io` the standard
    `io`, `getattr(io, "pl")` fails and the import finds the package's own `a.b.io.pl`,
    the object the split `a.b.io` + `pl...` names, which is judged on its own. So this split
    is skipped; the others still are judged, a later `os` (`a.io.pl.os.system`) included.
    Kept narrow: only the standard modules `_STDLIB_ATTRIBUTES` lists (plain modules, no
    submodules), a segment that is private or ALL-CAPS (a constant, `SIGKILL`) may be the
    module's, and nothing before the segment may be private (a dunder walk)."""
    for k, part in enumerate(qparts):
        if part.startswith("_"):
            return False
        head = policy.reexported_module(part)
        if head is None:
            continue
        known = _STDLIB_ATTRIBUTES.get(head)
        if known is None or k + 1 >= len(qparts):
            return False
        after = qparts[k + 1]
        return not (after in known or after.startswith("_") or after.isupper())
    return False
