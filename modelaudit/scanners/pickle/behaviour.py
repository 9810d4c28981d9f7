"""Default-deny by behaviour: a name that says it spawns, executes or loads native code.

Lists of dangerous modules never end: every package vendors its own process launcher
(`joblib.externals.loky.backend.fork_exec.fork_exec`, a `popen_spawn_posix.Popen`). A
callable's name is the author's own description of what it does, so names whose words say
"start a process", "execute", "run this command" or "load this library" are dangerous
wherever they live. Words come from snake_case and CamelCase; nothing is imported.
"""

from __future__ import annotations

from typing import Final

from ...lazy_re import LazyPattern

_WORDS: Final = LazyPattern(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_EXEC_FAMILY: Final = LazyPattern(r"^exec[lv]p?e?$")
_STARTERS: Final = frozenset(
    {"run", "exec", "execute", "call", "check", "invoke", "do", "spawn", "start", "launch"}
)
_PROCESS_STARTERS: Final = _STARTERS | {"create", "open", "new", "fork"}
_NATIVE_WORDS: Final = frozenset(
    {"dlopen", "dlsym", "loadlibrary", "loadlibrarya", "loadlibraryw", "cdll", "windll"}
)


def words(name: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(name)]


def _leaf_family(leaf: str) -> str | None:
    w = words(leaf)
    if not w:
        return None
    ws = set(w)
    is_function = leaf.lstrip("_")[:1].islower()
    if any(x.startswith("spawn") or x.endswith("popen") for x in w) or "subprocess" in ws:
        return "process"
    if ws & {"fork", "forkpty", "forkexec", "forkserver"}:
        return "process"
    if any(_EXEC_FAMILY.match(x) for x in w if x != "exec"):
        return "process"
    if "process" in ws and ws & _PROCESS_STARTERS:
        return "process"
    if "system" in ws and is_function:
        return "process"
    if ("shell" in ws or "command" in ws or "cmd" in ws) and (ws & _STARTERS or len(w) == 1):
        return "process"
    if ws & {"exec", "execfile", "execute", "executes"}:
        return "code-exec"
    if ws & _NATIVE_WORDS or (ws & {"load", "preload"} and ws & {"library", "dll", "lib", "libs"}):
        return "native"
    return None


def _module_family(module: str) -> str | None:
    for part in module.split("."):
        w = set(words(part))
        if w & {"subprocess", "popen"} or any(x.startswith("spawn") for x in w):
            return "process"
        if "fork" in w and "exec" in w:
            return "process"
    return None


def behaviour_family(module: str, qualname: str) -> str | None:
    """The danger family a global's own name claims, or None."""
    for part in qualname.split("."):
        fam = _leaf_family(part)
        if fam:
            return fam
    return _module_family(module)


__all__ = ["behaviour_family", "words"]
