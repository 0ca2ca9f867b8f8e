"""Network namespaces and processes for pytcp's end-to-end tests and benchmark.

Owns: creating and removing a throw-away network namespace (``Netns``), running processes in
it and stopping them with a bounded SIGTERM-then-SIGKILL (``stop_process``), opening sockets
*inside* it from this process (``Netns.socket``: the calling thread briefly enters the
namespace with setns(2); a socket stays in the namespace it was created in), and starting
``pytcp up`` in it and waiting for its ``ready`` line (``PytcpUp``).

No packet ever leaves a namespace created here: only ``lo`` and the interfaces a test adds
(pytcp's TUN, a veth pair between two of our namespaces) exist in it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Self

REPO_ROOT = Path(__file__).resolve().parent.parent
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_LIVE: set[Netns] = set()  # closed at interpreter exit if a caller forgot (or was interrupted)


@atexit.register
def _close_leftovers() -> None:
    for ns in list(_LIVE):
        ns.close()


def environment_problem() -> str | None:
    """Why namespaces + TUN cannot be used here (a skip reason), or None when they can."""
    if os.geteuid() != 0:
        return "end-to-end tests need root (network namespaces and a TUN device)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    for tool in ("ip",):
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                               check=False)
        if found.returncode:
            return f"`{tool}` is not installed"
    return None


def pytcp_argv(*args: str) -> list[str]:
    """The command line that runs this checkout's pytcp CLI with the current interpreter.

    ``PYTCP_E2E_CLI`` (a command prefix, shell-split) replaces it: a hook to check the
    harness itself against a stand-in.
    """
    override = os.environ.get("PYTCP_E2E_CLI")
    if override:
        return [*shlex.split(override), *args]
    return [sys.executable, "-m", "pytcp", *args]


def pytcp_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a pytcp subprocess: this checkout first on the import path."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM,
                 timeout: float = 5.0) -> int:
    """Send ``sig`` to the process (and its group), wait up to ``timeout`` s, then SIGKILL.

    Returns the exit status (negative for a signal, as Popen reports it).
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=5.0)
    # Children left in the group (a server's workers) go too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


class Netns:
    """One network namespace with ``lo`` up, removed (with its processes) by ``close()``."""

    def __init__(self, prefix: str = "pytcp-e2e") -> None:
        self.name = f"{prefix}-{secrets.token_hex(4)}"
        self._procs: list[subprocess.Popen[Any]] = []
        self._created = False
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True,
                       timeout=10)
        self._created = True
        _LIVE.add(self)
        self.ip("link", "set", "lo", "up")

    # -- commands ----------------------------------------------------------------------
    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped so that it runs inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def ip(self, *args: str) -> None:
        """``ip -n NS args...``; raises RuntimeError with ip's message on failure."""
        res = subprocess.run(["ip", "-n", self.name, *args], capture_output=True, text=True,
                             timeout=10, check=False)
        if res.returncode:
            raise RuntimeError(f"ip -n {self.name} {' '.join(args)}: {res.stderr.strip()}")

    def sysctl(self, key: str, value: str) -> None:
        self.run(["sysctl", "-q", "-w", f"{key}={value}"], timeout=10, check=True)

    def run(self, argv: Sequence[str], *, timeout: float, check: bool = False,
            input: bytes | None = None, **kw: Any) -> subprocess.CompletedProcess[Any]:
        """Run to completion inside the namespace; stdout/stderr captured unless given."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw["stdin"] = subprocess.PIPE if input is not None else subprocess.DEVNULL
        proc = self.popen(argv, **kw)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(proc, signal.SIGKILL, 1.0)
            out, err = proc.communicate(timeout=5)
            raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from None
        finally:
            with contextlib.suppress(ValueError):
                self._procs.remove(proc)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if check:
            result.check_returncode()
        return result

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start a process in the namespace (its own process group); stopped by ``close()``."""
        kw.setdefault("start_new_session", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        proc: subprocess.Popen[Any] = subprocess.Popen(self.argv(argv), **kw)
        self._procs.append(proc)
        return proc

    # -- sockets opened inside the namespace from this process --------------------------
    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the body with the calling thread inside the namespace (setns(2)), then leave."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns into {self.name}: {os.strerror(err)}")
            try:
                yield
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - cannot recover
                    err = ctypes.get_errno()
                    os._exit(f"cannot leave namespace: {os.strerror(err)}")  # type: ignore
        finally:
            os.close(own)
            os.close(target)

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
               proto: int = 0) -> socket.socket:
        """A socket that lives in the namespace (it stays there after this thread leaves)."""
        with self.entered():
            return socket.socket(family, type, proto)

    # -- teardown ----------------------------------------------------------------------
    def close(self) -> None:
        """Stop every process started here (bounded), then delete the namespace."""
        for proc in reversed(self._procs):
            stop_process(proc, signal.SIGTERM, 3.0)
        self._procs.clear()
        if self._created:
            # Anything else still running inside (a grandchild) would keep the netns alive.
            pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                                  text=True, timeout=10, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            for _ in range(20):
                res = subprocess.run(["ip", "netns", "del", self.name], capture_output=True,
                                     timeout=10, check=False)
                if res.returncode == 0 or not os.path.exists(f"/run/netns/{self.name}"):
                    break
                time.sleep(0.1)
            self._created = False
            _LIVE.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PytcpUp:
    """``pytcp up ARGS`` running in a namespace; ``start()`` waits for its ``ready`` line.

    stdout is drained by a thread into ``lines`` (so a chatty ``-v`` never blocks the stack);
    stderr goes to a file whose text ``stderr()`` returns for failure messages.
    """

    def __init__(self, ns: Netns, args: Sequence[str], workdir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.ns = ns
        self.args = list(args)
        self.lines: list[str] = []
        self.ready_line: str | None = None
        self._ready = threading.Event()
        self._stderr_path = workdir / f"pytcp-up-{secrets.token_hex(3)}.stderr"
        self._stderr: IO[bytes] = open(self._stderr_path, "wb")  # noqa: SIM115 - closed by stop()
        self.proc = ns.popen(pytcp_argv("up", *self.args), stdout=subprocess.PIPE,
                             stderr=self._stderr, env=pytcp_env(env), cwd=str(REPO_ROOT))
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if self.ready_line is None and line.startswith("ready "):
                self.ready_line = line
                self._ready.set()
        self._ready.set()  # EOF: wake a waiter, which then sees no ready line

    def wait_ready(self, timeout: float = 20.0) -> str:
        """Block until ``ready `` is printed; raise RuntimeError (with stderr) otherwise."""
        self._ready.wait(timeout)
        if self.ready_line is None:
            rc = self.proc.poll()
            stop_process(self.proc, signal.SIGKILL, 1.0)
            raise RuntimeError(
                f"pytcp up {' '.join(self.args)} did not print 'ready ' within {timeout} s "
                f"(exit status {rc}); stdout={self.lines[-20:]!r}\nstderr:\n{self.stderr()}")
        return self.ready_line

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        try:
            return self._stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal it, wait (bounded) for exit; returns the exit status."""
        rc = stop_process(self.proc, sig, timeout)
        self._reader.join(timeout=2.0)
        if not self._stderr.closed:
            self._stderr.close()
        return rc
