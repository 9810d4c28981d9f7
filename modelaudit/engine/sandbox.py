"""Worker hardening: refuse what a hostile file could make a parser do, and cap resources.

Scanners never execute what they read, but they run third-party parsers on attacker bytes.
As defence in depth every worker process installs an audit hook (`sys.addaudithook`) which,
while a file is being scanned, refuses process creation, `ctypes` loading, network access and
unpickling through the default `find_class`, and remembers each attempt so that the worker can
report it as a CRITICAL finding on that file even when the scanner swallowed the refusal. The
hook is idle between scans because the worker protocol itself unpickles the next job.

Resource limits (address space, CPU time, open files, written file size, no core dumps) are
applied per file: a file that exceeds them fails on its own, and the worker survives for the
next one whenever the limit surfaces as a Python exception.

Some pieces need Linux (`resource` rlimits, `PR_SET_PDEATHSIG`, `/proc`). Where one is
missing the worker falls back (a thread that notices the parent is gone; the parent's own
deadline and memory watch) or goes without, and says so once in `NOTICES`, which the engine
logs under --verbose.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

from ..findings import Issue, IssueSeverity, ScanResult, format_location
from ..redact import redact
from ..rules import RESOURCE_LIMIT, SANDBOX_VIOLATION

resource: ModuleType | None
try:
    import resource
except ImportError:  # Windows
    resource = None

_PROCESS = "process creation"
_NATIVE = "native code loading (ctypes)"
_NETWORK = "network access"
_UNPICKLE = "unpickling with the default find_class"
_SIGNAL = "signalling another process"

#: Audit events refused during a scan, and what each one means.
REFUSED_EVENTS: dict[str, str] = {
    "os.system": _PROCESS,
    "os.exec": _PROCESS,
    "os.posix_spawn": _PROCESS,
    "os.spawn": _PROCESS,
    "os.fork": _PROCESS,
    "os.forkpty": _PROCESS,
    "os.startfile": _PROCESS,
    "subprocess.Popen": _PROCESS,
    "pty.spawn": _PROCESS,
    "webbrowser.open": _PROCESS,
    "ctypes.dlopen": _NATIVE,
    "ctypes.dlsym": _NATIVE,
    "ctypes.dlsym/handle": _NATIVE,
    "ctypes.call_function": _NATIVE,
    "ctypes.PyObj_FromPtr": _NATIVE,
    "ctypes.cdata": _NATIVE,
    "ctypes.string_at": _NATIVE,
    "ctypes.wstring_at": _NATIVE,
    "socket.connect": _NETWORK,
    "socket.bind": _NETWORK,
    "socket.sendto": _NETWORK,
    "socket.sendmsg": _NETWORK,
    "socket.getaddrinfo": _NETWORK,
    "socket.gethostbyname": _NETWORK,
    "socket.gethostbyaddr": _NETWORK,
    "socket.getnameinfo": _NETWORK,
    "pickle.find_class": _UNPICKLE,
    "os.kill": _SIGNAL,
    "os.killpg": _SIGNAL,
}

#: Argument positions worth showing per event (never environments: they hold credentials).
_SHOWN_ARGS: dict[str, tuple[int, ...]] = {
    "os.exec": (0, 1),
    "os.posix_spawn": (0, 1),
    "os.spawn": (1, 2),
    "subprocess.Popen": (0, 1),
    "socket.connect": (1,),
    "socket.bind": (1,),
    "socket.sendto": (1,),
}


class SandboxViolation(PermissionError):
    """Raised inside the scanner when it attempts a refused action."""


class ResourceLimitExceeded(BaseException):
    """Raised inside the scanner when the worker's CPU-time limit is reached.

    A BaseException so that a scanner's `except Exception` cannot keep burning CPU.
    """


@dataclass(frozen=True)
class Violation:
    event: str
    kind: str
    detail: str


@dataclass(frozen=True)
class Limits:
    """Per-file worker limits; 0 means no limit."""

    address_space: int = 0
    cpu_seconds: int = 0
    open_files: int = 0
    file_size: int = 0

    @classmethod
    def from_config(
        cls, config: dict[str, Any], deadline: float | None = None, mapped: int = 0
    ) -> Limits:
        """`deadline` is the file's own (wall-clock) deadline; CPU time gets twice that.
        `mapped` is the file's size: a file of 1 MiB or more may be memory-mapped whole
        (ONNX, TFLite), which counts as address space, so it is added to the limit."""
        cpu = config.get("worker_cpu_limit")
        if cpu is None:
            per_file = deadline or config.get("file_timeout") or config.get("timeout") or 0
            cpu = 2 * float(per_file) + 10 if per_file else 0
        file_size = config.get("worker_file_size_limit")
        if file_size is None:
            file_size = config.get("max_expanded_size") or 0
        return cls(
            address_space=_address_space(config, mapped),
            cpu_seconds=int(float(cpu or 0)),
            open_files=int(config.get("worker_open_files") or 0),
            file_size=int(file_size or 0),
        )


#: Files at least this large get their size added to the address-space limit.
MAPPED_FLOOR = 1024 * 1024


def _address_space(config: dict[str, Any], mapped: int) -> int:
    limit = int(config.get("worker_memory_limit") or 0)
    if limit and mapped >= MAPPED_FLOOR:
        limit += mapped
    return limit


_active: str | None = None
_violations: list[Violation] = []
_installed = False
#: The thread running `prewarm` while a scan is armed (its `uname -p` is ours, not the file's).
_prewarming: int | None = None
#: Called with each refused attempt as it happens (the worker streams it to the parent).
on_violation: Callable[[Violation], None] | None = None
#: One line per sandbox piece this platform lacks, and what stands in for it.
NOTICES: list[str] = []
#: Set by the hook when a scan may have written a file (opened one to write, made a
#: folder, a link, a temporary file); the worker clears it before each file and looks at
#: its temp folder only after a file that set it.
wrote = False
#: Audit events by which Python code puts an entry into a folder (and "open" to write,
#: which `_audit` looks at first).
_WRITES: Final = frozenset(
    {
        "os.mkdir",
        "os.symlink",
        "os.link",
        "os.rename",
        "tempfile.mkstemp",
        "tempfile.mkdtemp",
    }
)
_WRITE_FLAGS: Final = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _opens_to_write(args: tuple[Any, ...]) -> bool:
    """An "open" event's (path, mode, flags): flags that can create or change a file."""
    flags = args[2] if len(args) > 2 else None
    return not isinstance(flags, int) or bool(flags & _WRITE_FLAGS)


def has_rlimits() -> bool:
    """Does the kernel enforce a memory limit set here? macOS accepts RLIMIT_AS and ignores
    it, so there, as without `resource`, the parent watches the worker's memory instead."""
    return resource is not None and sys.platform != "darwin"


def _describe(event: str, args: tuple[Any, ...]) -> str:
    positions = _SHOWN_ARGS.get(event, tuple(range(len(args))))
    parts = []
    for i in positions:
        if i < len(args):
            text = repr(args[i])
            parts.append(text if len(text) <= 200 else text[:200] + "...")
    return redact(f"{event}({', '.join(parts)})")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    global wrote
    if _active is None:
        return
    if event == "open":
        # Every file a scan reads: never refused, only noted when it may write (and then
        # once is enough), so it takes the shortest way through.
        if not wrote and _opens_to_write(args):
            wrote = True
        return
    kind = REFUSED_EVENTS.get(event)
    if kind is None:
        if event in _WRITES:
            wrote = True
        return
    if _prewarming == threading.get_ident():
        return
    if event == "os.kill" and args and args[0] == os.getpid():
        return
    try:
        detail = _describe(event, args)
    except Exception:
        detail = event
    violation = Violation(event, kind, detail)
    _violations.append(violation)
    if on_violation is not None:
        with contextlib.suppress(Exception):
            on_violation(violation)
    raise SandboxViolation(f"{kind} refused while scanning a file: {event}")


def _on_cpu_limit(signum: int, frame: object) -> None:
    # Between scans the limit is being lifted; an exception there would escape the worker.
    if _active is not None:
        raise ResourceLimitExceeded("CPU time limit of the scan worker reached")


def _pdeathsig() -> bool:
    """Ask Linux to kill this process when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (ImportError, OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    """Fallback for PR_SET_PDEATHSIG: exit once this process has been orphaned."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def die_with_parent() -> None:
    """Make sure this process does not outlive the one that started it."""
    parent = os.getppid()
    if _pdeathsig():
        if os.getppid() != parent:
            os._exit(1)
        return
    if os.name == "posix":
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
        NOTICES.append(
            "PR_SET_PDEATHSIG unavailable: workers poll for their parent and exit within 0.5 s "
            "of it"
        )
    else:
        NOTICES.append(
            "no parent-death signal on this platform: an orphaned worker exits when it next "
            "reads from its closed pipe"
        )


def install(config: dict[str, Any]) -> None:
    """Harden this worker once, before its first scan (a `WORKER_SETUP` hook)."""
    global _installed
    if _installed:
        return
    _installed = True
    die_with_parent()
    # A terminal's Ctrl-C reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGXCPU"):
        signal.signal(signal.SIGXCPU, _on_cpu_limit)
    else:
        NOTICES.append("no SIGXCPU: a file over its CPU time is stopped by its deadline instead")
    if hasattr(signal, "SIGXFSZ"):
        # Writing past RLIMIT_FSIZE then fails with EFBIG instead of killing the worker.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if resource is not None:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(
                resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1])
            )
        if not has_rlimits():
            NOTICES.append(
                "this kernel ignores RLIMIT_AS: the parent watches each worker's memory instead"
            )
    else:
        NOTICES.append(
            "no `resource` module: per-file memory, CPU, open-file and file-size limits are "
            "not set in workers; the parent's deadline and memory watch still apply"
        )
    with contextlib.suppress(ImportError):
        # Importing ctypes opens the C library (a `ctypes.dlopen` the hook refuses); once it
        # is loaded, importing the rest of ctypes later (ctypes.util) is harmless.
        import ctypes  # noqa: F401
    if not _prewarmed():
        sys.meta_path.insert(0, _PrewarmBeforeThirdParty())
    sys.addaudithook(_audit)


def prewarm() -> None:
    """Run what libraries do lazily with a subprocess or ctypes, while nothing refuses it.

    `platform.processor()` runs `uname -p` once and caches it; h5py and others ask for it
    on import, which would otherwise be refused (and reported) during an innocent scan.
    """
    import platform

    with contextlib.suppress(ImportError):
        import ctypes  # noqa: F401
    platform.processor()


def _prewarmed() -> bool:
    platform = sys.modules.get("platform")
    return platform is not None and "processor" in vars(platform.uname())


class _PrewarmBeforeThirdParty:
    """An import finder that finds nothing: before the first module from outside the
    standard library and modelaudit loads, it runs `prewarm` (a worker forked by the
    fork server inherits that server's prewarm; one forked by the CLI for one pickle or
    safetensors file never needs it, and skips a process start).

    The hook lets through only this thread's `prewarm` (a fixed `uname -p`, whatever the
    file); every other attempt, in this thread before and after or in any other thread, is
    refused as before."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        top = fullname.partition(".")[0]
        if top == "modelaudit" or top in sys.stdlib_module_names:
            return None
        global _prewarming
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        _prewarming = threading.get_ident()
        try:
            with contextlib.suppress(Exception):
                prewarm()
        finally:
            _prewarming = None
        return None


def _set_soft(which: int, value: int) -> None:
    """Set a soft limit, never above the hard one; 0 or RLIM_INFINITY lift it to the hard one."""
    assert resource is not None
    try:
        _soft, hard = resource.getrlimit(which)
        target = value if value > 0 and value != resource.RLIM_INFINITY else hard
        if hard != resource.RLIM_INFINITY and target != hard:
            target = min(target, hard)
        resource.setrlimit(which, (target, hard))
    except (ValueError, OSError):
        return


def _apply(limits: Limits) -> None:
    if resource is None:
        return
    _set_soft(resource.RLIMIT_AS, limits.address_space or resource.RLIM_INFINITY)
    _set_soft(resource.RLIMIT_NOFILE, limits.open_files)
    _set_soft(resource.RLIMIT_FSIZE, limits.file_size or resource.RLIM_INFINITY)
    if limits.cpu_seconds:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = int(usage.ru_utime + usage.ru_stime) + 1
        _set_soft(resource.RLIMIT_CPU, used + limits.cpu_seconds)
    else:
        _set_soft(resource.RLIMIT_CPU, resource.RLIM_INFINITY)


def _release() -> None:
    if resource is None:
        return
    for which in (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_FSIZE):
        _set_soft(which, resource.RLIM_INFINITY)


@contextmanager
def limited(
    config: dict[str, Any], deadline: float | None = None, mapped: int = 0
) -> Iterator[None]:
    """Apply the per-file resource limits (a worker arms them once for a batch of small
    files, and again after a file that ran into one)."""
    _apply(Limits.from_config(config, deadline, mapped))
    try:
        yield
    finally:
        _release()


def rearm(config: dict[str, Any], deadline: float | None = None, mapped: int = 0) -> None:
    """Fresh limits inside `limited` (after a file used up CPU time or memory)."""
    _apply(Limits.from_config(config, deadline, mapped))


def arm(display: str) -> None:
    """Arm the hook for one file (`disarm` when it ends, whatever happens)."""
    global _active
    _violations.clear()
    _active = display


def disarm() -> list[Violation]:
    """The hook idle again; the attempts it refused since `arm`."""
    global _active
    _active = None
    found = _violations[:]
    _violations.clear()
    return found


class watching:
    """`arm` and `disarm` as a context manager; the list of refused attempts is filled on
    exit."""

    __slots__ = ("display", "found")

    def __init__(self, display: str) -> None:
        self.display = display
        self.found: list[Violation] = []

    def __enter__(self) -> list[Violation]:
        arm(self.display)
        return self.found

    def __exit__(self, *exc: object) -> None:
        self.found.extend(disarm())


@contextmanager
def scanning(
    display: str, config: dict[str, Any], deadline: float | None = None
) -> Iterator[list[Violation]]:
    """Arm the hook and the limits for one file; yields the list of refused attempts."""
    with limited(config, deadline), watching(display) as found:
        yield found


#: This process's /proc/self/statm, kept open: read once or twice per pickle. A forked
#: child opens its own (the inherited one would describe the parent).
_statm: int | None = None


def _forget_statm() -> None:
    global _statm
    _statm = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_statm)


def _address_space_in_use() -> int:
    global _statm
    assert resource is not None
    if _statm is None:
        _statm = os.open("/proc/self/statm", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    return int(os.pread(_statm, 256, 0).split()[0]) * int(resource.getpagesize())


def resident_bytes() -> int:
    """This process's resident memory now (Linux), else its peak, else 0."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    if resource is None:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def armed() -> bool:
    """True while a file is being scanned (the hook refuses, the limits apply)."""
    return _active is not None


@contextmanager
def quiet_cpu_limit() -> Iterator[None]:
    """Hold SIGXCPU back for a moment: a frame half-written to the parent would break the
    protocol, while a limit noticed a few microseconds late costs nothing."""
    if not hasattr(signal, "pthread_sigmask") or not hasattr(signal, "SIGXCPU"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGXCPU})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class memory_budget:
    """Within a scan in a worker, let the block grow the address space by `extra` at most.

    Outside a hardened worker (the parent, in-process debugging) it changes nothing. Going
    over raises MemoryError inside the block, which scanners report as an unfinished file.
    (A class rather than a generator: it is entered once per pickle of a sweep.)
    """

    __slots__ = ("extra", "restore")

    def __init__(self, extra: int) -> None:
        self.extra = extra
        self.restore: tuple[int, int] | None = None

    def __enter__(self) -> None:
        if _active is None or resource is None:
            return
        try:
            previous, hard = resource.getrlimit(resource.RLIMIT_AS)
            cap = _address_space_in_use() + self.extra
        except (OSError, ValueError):
            return
        if previous != resource.RLIM_INFINITY and previous <= cap:
            return
        # `_set_soft` without its own getrlimit: this runs once per pickle of a sweep
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        # try/except rather than contextlib.suppress (three Python calls), here and below
        try:  # noqa: SIM105
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        except (ValueError, OSError):
            pass
        self.restore = (previous, hard)

    def __exit__(self, *exc: object) -> None:
        if self.restore is not None and resource is not None:
            try:  # noqa: SIM105
                resource.setrlimit(resource.RLIMIT_AS, self.restore)
            except (ValueError, OSError):
                pass
            self.restore = None


def violation_issue(display: str, v: Violation) -> Issue:
    return Issue(
        message=f"Scanning tried {v.kind}: {v.detail} (refused)",
        severity=IssueSeverity.CRITICAL,
        location=format_location(display),
        details={"event": v.event, "action": v.kind, "call": v.detail},
        why="Content of this file drove the parser into an action that gives an attacker "
        "code execution, native code or network access when the file is loaded.",
        rule=SANDBOX_VIOLATION,
    )


def report_violations(result: ScanResult, display: str, found: list[Violation]) -> None:
    """Add one CRITICAL finding per distinct refused attempt."""
    seen: set[tuple[str, str]] = set()
    for v in found:
        if (v.event, v.detail) in seen:
            continue
        seen.add((v.event, v.detail))
        result.issues.append(violation_issue(display, v))


def report_resource_limit(result: ScanResult, display: str, reason: str) -> None:
    result.add_issue(
        f"Scan stopped: {reason}",
        severity=IssueSeverity.INFO,
        location=format_location(display),
        details={"limit": reason},
        rule=RESOURCE_LIMIT,
    )
    result.mark_inconclusive(reason)
