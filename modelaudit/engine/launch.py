"""How the parent starts worker processes, and its handle on each one.

Two launchers with one interface. `ForkServerLauncher` (Linux) asks a fork server for each
worker: a millisecond per worker, the worker modules already imported. `SpawnLauncher`
(everywhere: macOS, Windows, or `worker_start="spawn"`) starts a fresh interpreter per worker
that talks over its stdin and stdout. Both start interpreters with `python -c` and an entry
point of ours, so the caller's `__main__` is never imported in a worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from typing import Any, Final

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream, ByteStream, Process, SocketStream

from .procs import describe_status
from .protocol import FrameReader, ProtocolError, frame, loads_untrusted
from .worker_socket import worker_stream

log = logging.getLogger("modelaudit")

#: Bootstraps a fresh interpreter: modelaudit's own location first, then our entry point.
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from modelaudit.engine.{module} import main; main()"
)


def _package_root() -> str:
    import modelaudit

    return os.path.dirname(os.path.dirname(os.path.abspath(modelaudit.__file__)))


def python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-c", _BOOT.format(module=module), _package_root(), *args]


class WorkerProcess(ABC):
    """One worker process as the parent sees it: a byte pipe, a pid, a way to end it."""

    pid: int

    @abstractmethod
    async def send(self, data: bytes) -> None: ...

    @abstractmethod
    async def receive(self) -> bytes:
        """Bytes from the worker; b"" once it is gone."""

    @abstractmethod
    def kill(self) -> None:
        """End the worker now; safe to call more than once and after it died."""

    @abstractmethod
    async def wait(self) -> str:
        """Wait for the worker to end; how it ended, in words."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the pipe (the process must be ending or ended)."""


class Launcher(ABC):
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def spawn(self) -> WorkerProcess: ...

    async def preload(self, modules: list[str]) -> None:  # noqa: B027 - optional
        """Import modules once where later workers inherit them (fork server only)."""

    @abstractmethod
    async def aclose(self) -> None: ...


async def _receive(stream: ByteReceiveStream) -> bytes:
    try:
        return await stream.receive(1 << 16)
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        return b""


class _ForkedWorker(WorkerProcess):
    def __init__(
        self, launcher: ForkServerLauncher, pid: int, stream: ByteStream, pidfd: int | None
    ) -> None:
        self.launcher = launcher
        self.pid = pid
        self.stream = stream
        self.pidfd = pidfd
        self.status: str | None = None

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def receive(self) -> bytes:
        return await _receive(self.stream)

    def kill(self) -> None:
        if self.status is not None:
            return
        with contextlib.suppress(OSError):
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)  # type: ignore[attr-defined]
            elif self.launcher.alive:
                # The server reaps only when asked, so this pid is still ours.
                os.kill(self.pid, signal.SIGKILL)

    async def wait(self) -> str:
        if self.status is None:
            self.status = describe_status(await self.launcher.reap(self.pid))
        return self.status

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.stream.aclose()
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None


#: How long closing waits for a fork in flight (the server answers in milliseconds).
_CLOSE_WAIT: Final = 2.0


class ForkServerLauncher(Launcher):
    """Workers forked by a fork server, which is either forked early by the CLI (`early`) or
    started here as a fresh interpreter."""

    def __init__(self, early: tuple[socket.socket, int] | None = None) -> None:
        self.early = early
        self.process: Process | None = None
        self.server_pid: int | None = None
        self.control: SocketStream | None = None
        self.frames = FrameReader()
        self.ready: list[bytes] = []
        self.lock = anyio.Lock()
        self.alive = False

    async def start(self) -> None:
        from anyio.abc import UNIXSocketStream

        if self.early is not None:
            sock, self.server_pid = self.early
            self.early = None
        else:
            sock, child = socket.socketpair()
            try:
                self.process = await anyio.open_process(
                    python_command("forkserver", str(child.fileno())),
                    stdin=subprocess.DEVNULL,
                    stdout=None,
                    stderr=None,
                    pass_fds=(child.fileno(),),
                )
            finally:
                child.close()
            self.server_pid = self.process.pid
        self.control = await UNIXSocketStream.from_socket(sock)
        self.alive = True

    async def _reply(self) -> tuple[Any, list[int]]:
        """The server's next reply, and any descriptors passed with it."""
        assert self.control is not None
        fds: list[int] = []
        while not self.ready:
            data, got = await self.control.receive_fds(1 << 16, 4)  # type: ignore[attr-defined]
            fds.extend(got)
            if not data:
                for fd in fds:
                    os.close(fd)
                self.alive = False
                raise ProtocolError("the fork server is gone")
            self.ready.extend(self.frames.feed(data))
        return loads_untrusted(self.ready.pop(0)), fds

    async def spawn(self) -> WorkerProcess:
        if self.control is None or not self.alive:
            raise ProtocolError("the fork server is not running")
        async with self.lock:
            with anyio.CancelScope(shield=True):
                await self.control.send(frame(("fork",)))
                message, fds = await self._reply()
        if not (isinstance(message, tuple) and message[0] == "forked" and fds):
            for fd in fds:
                os.close(fd)
            raise ProtocolError("unexpected reply from the fork server")
        _, pid, has_pidfd = message
        pidfd = fds[1] if has_pidfd and len(fds) > 1 else None
        stream = await worker_stream(socket.socket(fileno=fds[0]))
        return _ForkedWorker(self, int(pid), stream, pidfd)

    async def reap(self, pid: int) -> int | None:
        if self.control is None or not self.alive:
            return None
        try:
            async with self.lock:
                with anyio.CancelScope(shield=True):
                    await self.control.send(frame(("reap", pid)))
                    message, fds = await self._reply()
        except (ProtocolError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            self.alive = False
            return None
        for fd in fds:
            os.close(fd)
        status = message[2] if isinstance(message, tuple) and len(message) == 3 else None
        return status if isinstance(status, int) else None

    async def preload(self, modules: list[str]) -> None:
        if self.control is None or not self.alive:
            return
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            async with self.lock:
                await self.control.send(frame(("preload", list(modules))))

    async def aclose(self) -> None:
        """Close the control socket: the server kills its workers and exits.

        A fork in flight (a worker booting ahead, `pool._prestart`) is let finish first,
        briefly: anyio's stream completes a pending receive when it closes, and the socket's
        reader then fires on that finished future, which the loop logs as an ERROR
        ("Exception in callback Future.set_result") on the CLI's stderr and in services."""
        self.alive = False
        with anyio.CancelScope(shield=True):
            if self.control is not None:
                with anyio.move_on_after(_CLOSE_WAIT):
                    await self.lock.acquire()
                    self.lock.release()
                with contextlib.suppress(Exception):
                    await self.control.aclose()
                self.control = None
            if self.process is not None:
                with anyio.move_on_after(10) as scope:
                    await self.process.wait()
                if scope.cancelled_caught:
                    with contextlib.suppress(ProcessLookupError):
                        self.process.kill()
                    await self.process.wait()
                await self.process.aclose()
                self.process = None
            elif self.server_pid is not None:
                await anyio.to_thread.run_sync(_wait_or_kill, self.server_pid)
            self.server_pid = None


def _wait_or_kill(pid: int) -> None:
    """Reap a fork server forked by this process (it exits once its socket closes)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.005)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


class _SpawnedWorker(WorkerProcess):
    def __init__(self, process: Process) -> None:
        self.process = process
        self.pid = process.pid
        assert process.stdin is not None and process.stdout is not None
        self.stdin: ByteSendStream = process.stdin
        self.stdout: ByteReceiveStream = process.stdout

    async def send(self, data: bytes) -> None:
        await self.stdin.send(data)

    async def receive(self) -> bytes:
        return await _receive(self.stdout)

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, OSError):
                self.process.kill()

    async def wait(self) -> str:
        return describe_status(None, await self.process.wait())

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.process.aclose()


class SpawnLauncher(Launcher):
    """A fresh interpreter per worker (every platform)."""

    async def start(self) -> None:
        return

    async def spawn(self) -> WorkerProcess:
        process = await anyio.open_process(
            python_command("worker"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
        )
        return _SpawnedWorker(process)

    async def aclose(self) -> None:
        return


def choose_launcher(method: str, early: tuple[socket.socket, int] | None = None) -> Launcher:
    """`method` is the `worker_start` setting: "auto", "fork" or "spawn"."""
    from . import forkserver

    if method not in ("auto", "fork", "spawn"):
        raise ValueError(f"worker_start must be auto, fork or spawn, not {method!r}")
    if method == "spawn":
        return SpawnLauncher()
    if forkserver.supported():
        return ForkServerLauncher(early)
    log.info("sandbox: no fork server on this platform: each worker starts as a fresh interpreter")
    return SpawnLauncher()
