"""Helpers shared by the hardening tests."""

from __future__ import annotations

import os

from tests.hardening._hostile_scanners import HOSTILE_MAGIC


def child_pids(pid: int) -> set[int]:
    """Live (non-zombie) descendants of `pid`."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return set()
    alive = set()
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return alive


#: (pid, start time) of this process's live descendants when the running test started.
_STARTED_WITH: set[tuple[int, float]] = set()


def note_processes() -> None:
    """Remember the descendants this process has as a test starts: the servers other
    fixtures keep for the whole session (moto, the GCS emulator, MLflow) are not the test's."""
    _STARTED_WITH.clear()
    _STARTED_WITH.update(_identities(child_pids(os.getpid())))


def left_behind() -> set[int]:
    """Live descendants of this process that the running test started (what "no child
    left" is about): those that were there when it started, and their children, are not."""
    import psutil

    out = set()
    for pid in child_pids(os.getpid()):
        try:
            chain = [psutil.Process(pid), *psutil.Process(pid).parents()]
            identities = {(p.pid, p.create_time()) for p in chain}
        except psutil.NoSuchProcess:
            continue
        if not identities & _STARTED_WITH:
            out.add(pid)
    return out


def _identities(pids: set[int]) -> set[tuple[int, float]]:
    """(pid, start time): a pid the system reuses is another process."""
    import psutil

    out = set()
    for pid in pids:
        try:
            out.add((pid, psutil.Process(pid).create_time()))
        except psutil.NoSuchProcess:
            continue
    return out


def scanner_pids(scanner: object) -> set[int]:
    """The processes a `Scanner` owns right now: its fork server and the server's live
    descendants (its workers), or the pool's workers where they are spawned.

    Scoped to the scanner, so that processes other parts of the test session start or end
    at the same moment cannot race a comparison.
    """
    pool = getattr(scanner, "pool", None)
    if pool is None:
        return set()
    pids = {worker.pid for worker in pool.workers}
    server = getattr(pool.launcher, "server_pid", None)
    if server is not None:
        pids.add(server)
        pids |= child_pids(server)
    return {pid for pid in pids if alive(pid)}


def alive(pid: int) -> bool:
    """`pid` exists and is not a zombie."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def write_hostile(folder: str, name: str, command: str, arg: str = "") -> str:
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{HOSTILE_MAGIC}\n{command}\n{arg}")
    return path
