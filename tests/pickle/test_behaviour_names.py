"""Default-deny by behaviour: an unknown global whose name says it spawns, executes or loads
native code is CRITICAL without --strict, in any package. Samples are `pickle.dumps` of
objects reducing to the real function (dumps never calls it) or hand-assembled STACK_GLOBALs.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from tests.pickle._pickle_corpus import call, critical, p4, scan, sg, warnings_of


class _Reduce:
    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args)


def test_real_loky_fork_exec_is_critical() -> None:
    from joblib.externals.loky.backend import fork_exec

    data = pickle.dumps(_Reduce(fork_exec.fork_exec, ["/bin/sh", "-c", "id"], (), None))
    result, _ = scan(data)
    found = critical(result)
    assert any("fork_exec" in m for m in found), found


def test_real_loky_popen_class_is_critical() -> None:
    from joblib.externals.loky.backend import popen_loky_posix

    data = pickle.dumps(_Reduce(popen_loky_posix.Popen, None))
    result, _ = scan(data)
    assert any("popen_loky_posix.Popen" in m for m in critical(result))


SAYS_WHAT_IT_DOES = [
    ("vendor.backend.fork_exec", "fork_exec"),
    ("acme.workers", "spawn_worker"),
    ("acme.workers", "ProcessSpawner"),
    ("acme.util", "run_command"),
    ("acme.util", "exec_command"),
    ("acme.util", "popen"),
    ("acme.compat", "Popen"),
    ("acme.util", "os_system"),
    ("acme.util", "system"),
    ("acme.util", "run_shell"),
    ("acme.win", "CreateProcessW"),
    ("acme.win", "ShellExecuteW"),
    ("acme.util", "start_process"),
    ("acme.aio", "create_subprocess_exec"),
    ("acme.loader", "exec_module"),
    ("acme.loader", "execute"),
    ("acme.native", "load_library"),
    ("acme.native", "_preload_cuda_lib"),
    ("acme.native", "LoadLibraryA"),
    ("acme.native", "dlopen"),
    ("acme.popen_spawn_posix", "Launcher"),
    ("acme.util", "execvpe"),
]


@pytest.mark.parametrize(("module", "name"), SAYS_WHAT_IT_DOES)
def test_names_that_say_they_execute_are_critical(module: str, name: str) -> None:
    result, _ = scan(p4(call(sg(module, name), "id")))
    assert any(f"{module}.{name}" in m for m in critical(result)), result.issues


INNOCENT = [
    ("acme.geometry", "CoordinateSystem"),
    ("acme.data", "Preprocessor"),
    ("acme.data", "preprocess"),
    ("acme.data", "process_batch"),
    ("acme.cli", "CommandLineConfig"),
    ("acme.eco", "ecosystem_model"),
    ("acme.layers", "ExecutionBlock"),
    ("acme.layers", "Forker"),
]


@pytest.mark.parametrize(("module", "name"), INNOCENT)
def test_innocent_unknown_names_stay_warnings(module: str, name: str) -> None:
    result, _ = scan(p4(call(sg(module, name), "x")))
    assert not critical(result), result.issues
    assert any(f"{module}.{name}" in m for m in warnings_of(result))
