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
