"""Test scanners that misbehave on command, to prove the worker sandbox and fault isolation.

A `.hostile` file holds a magic line, one command word and an argument line; the scanner then does what a
parser driven by a hostile file might do. Nothing here loads a pickle: unpickling is triggered
through `Unpickler.find_class`, the audit point every default unpickle passes through.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time

from modelaudit.scanners.base import BaseScanner, IssueSeverity, ScanResult

#: First line of every .hostile file, so content sniffing never mistakes it for a pickle.
HOSTILE_MAGIC = "# hostile test file"


class HostileScanner(BaseScanner):
    name = "hostile_test"
    description = "Misbehaves on command (tests only)"
    supported_extensions = [".hostile"]

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        with open(path, encoding="utf-8") as f:
            text = f.read().strip().removeprefix(HOSTILE_MAGIC).strip()
        command, _, arg = text.partition("\n")
        result.bytes_scanned = os.path.getsize(path)
        swallow = command.startswith("swallow-")
        command = command.removeprefix("swallow-")
        if command.startswith("critical-then-"):
            # A finding made before the scan dies: it must reach the report anyway.
            result.add_issue(
                "Planted critical finding",
                severity=IssueSeverity.CRITICAL,
                location=self.location(path),
                rule="TEST-PLANTED",
            )
            command = command.removeprefix("critical-then-")
        if command.startswith("pid-then-"):
            # The worker's pid, streamed before the command runs, so it survives a crash.
            pid: dict[str, object] = {"pid": os.getpid()}
            result.add_issue("worker", severity=IssueSeverity.WARNING, details=pid)
            command = command.removeprefix("pid-then-")
        if command == "pickle-then-sleep":
            # The real pickle engine streams its findings; then the scan hangs.
            from modelaudit.scanners.pickle import scan_pickle_bytes

            scan_pickle_bytes(bytes.fromhex(arg), result, location=lambda _p: path, ctx=self.ctx)
            time.sleep(3600)
        if command == "report-process":
            watched = ("h5py", "onnx", "jinja2", "yaml", "py7zr", "modelaudit.scanners.")
            modules = sorted(m for m in sys.modules if m.startswith(watched))
            details = {
                "pid": os.getpid(),
                "tmp": tempfile.gettempdir(),
                "modules": modules,
                "at": time.monotonic(),
            }
            result.add_issue("process", severity=IssueSeverity.INFO, details=details)
            result.finish()
            return result
        if command == "many":
            for i in range(int(arg)):
                result.add_issue(f"finding {i}", severity=IssueSeverity.WARNING, rule="TEST-MANY")
            result.finish()
            return result
        if command == "report-limits":
            import resource

            names = ("RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CPU", "RLIMIT_CORE")
            limits = {n: resource.getrlimit(getattr(resource, n))[0] for n in names}
            result.add_issue("limits", severity=IssueSeverity.INFO, details=limits)
            result.finish()
            return result
        if command == "leak-env":
            value = os.environ.get(arg, "")
            result.add_issue(f"saw {value}", details={"value": value, "nested": [value]})
            result.mark_inconclusive(f"stopped at {value}")
            result.finish()
            return result
        try:
            self._do(command, arg)
        except PermissionError as exc:
            if not swallow:
                raise
            result.add_issue(f"refused: {exc}", severity=IssueSeverity.INFO)
        result.finish()
        return result

    @staticmethod
    def _do(command: str, arg: str) -> None:
        if command == "popen":
            subprocess.Popen(["touch", arg]).wait()
        elif command == "system":
            os.system(f"touch {arg}")
        elif command == "posix_spawn":
            os.posix_spawn("/usr/bin/touch", ["touch", arg], dict(os.environ))
        elif command == "exec":
            os.execv("/usr/bin/touch", ["touch", arg])
        elif command == "pty":
            import pty

            pty.spawn(["touch", arg])
        elif command == "spawnv":
            os.spawnv(os.P_WAIT, "/usr/bin/touch", ["touch", arg])
        elif command == "fork":
            pid = os.fork()
            if pid == 0:
                open(arg, "w").close()
                os._exit(0)
            os.waitpid(pid, 0)
        elif command == "connect":
            host, port = arg.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=2):
                pass
        elif command == "resolve":
            socket.getaddrinfo(arg, 80)
        elif command == "unpickle":
            pickle.Unpickler(io.BytesIO(b"")).find_class("os", "system")
        elif command == "ctypes":
            import ctypes

            ctypes.CDLL("libc.so.6")
        elif command == "write-big":
            with open(arg, "wb") as f:
                for _ in range(16):
                    f.write(bytes(1 << 20))
        elif command == "exit":
            raise SystemExit(3)
        elif command == "kill-parent":
            os.kill(os.getppid(), signal.SIGTERM)
        elif command == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif command == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif command == "oom":
            blocks = []
            while True:
                blocks.append(bytearray(64 * 1024 * 1024))
        elif command == "tmp-then-sleep":
            with tempfile.NamedTemporaryFile(delete=False) as f:
                f.write(bytes(1 << 20))
            open(arg, "w").close()
            time.sleep(3600)
        elif command == "mark-sleep":
            open(arg, "w").close()
            time.sleep(3600)
        elif command == "mark-sleep-1":
            open(arg, "w").close()
            time.sleep(1)
        elif command == "mark-sleep-2":
            open(arg, "w").close()
            time.sleep(2)
        elif command == "sleep":
            time.sleep(float(arg or 3600))
        elif command == "spin":
            while True:
                pass
        elif command == "clean":
            return
        else:
            raise ValueError(f"unknown command {command!r}")
