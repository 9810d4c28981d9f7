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


def write_hostile(folder: str, name: str, command: str, arg: str = "") -> str:
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{HOSTILE_MAGIC}\n{command}\n{arg}")
    return path
