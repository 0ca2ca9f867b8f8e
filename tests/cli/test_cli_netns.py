"""``pytcp up`` / ``pytcp get`` as processes inside a network namespace each test creates and
removes: a taken interface name fails cleanly, ``up`` prints its ready line, serves, and
shuts down on SIGTERM/SIGINT with status 0 and no interface left; ``get`` downloads or fails
with one line and no output file."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    if subprocess.run(["ip", "netns", "list"], capture_output=True, check=False).returncode != 0:
        return "needs ip netns"
    return None


pytestmark = pytest.mark.skipif(_problem() is not None, reason=str(_problem()))


class Ns:
    def __init__(self) -> None:
        self.name = f"pytcp-e2cli-{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=10)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str) -> str:
        return subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True,
                              text=True, timeout=10).stdout

    def links(self) -> list[str]:
        return sorted(line.split(":")[1].strip().split("@")[0]
                      for line in self.ip("-o", "link").splitlines())

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def pytcp(self, *args: str) -> list[str]:
        return self.argv(sys.executable, "-m", "pytcp", *args)

    def popen(self, argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                start_new_session=True, **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        subprocess.run(["ip", "netns", "del", self.name], timeout=10, check=False)


@pytest.fixture
def ns() -> Iterator[Ns]:
    n = Ns()
    try:
        yield n
    finally:
        n.close()


def wait_ready(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> str:
    """The first stdout line (bounded in time; the process must still run)."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline and b"\n" not in buf:
        chunk = proc.stdout.read()
        if chunk:
            buf += chunk
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    assert b"\n" in buf, f"no ready line; rc={proc.poll()} stdout={buf!r}"
    return buf.split(b"\n", 1)[0].decode()


@pytest.mark.parametrize("command", [["up"], ["get", "http://10.77.0.1/"]])
def test_a_taken_interface_name_is_exit_2_and_leaves_everything_as_it_was(
        ns: Ns, command: list[str]) -> None:
    ns.ip("tuntap", "add", "pytcp0", "mode", "tun")  # persistent: survives our attempt
    before = ns.links()
    res = ns.run(ns.pytcp(*command))
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        (f"pytcp {command[0]}: error: interface name 'pytcp0' already taken by a TUN "
         "interface (another pytcp up?): pick another with --ifname")]
    assert ns.links() == before == ["lo", "pytcp0"]


def test_a_second_up_on_a_used_subnet_is_exit_2_with_a_free_one_named(ns: Ns) -> None:
    first = ns.popen(ns.pytcp("up", "--ifname", "e2a0", "--http", "8080"),
                     stdout=subprocess.PIPE)
    assert wait_ready(first).startswith("ready e2a0 10.77.0.2 ")
    res = ns.run(ns.pytcp("up", "--ifname", "e2b0"))
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        "pytcp up: error: subnet 10.77.0.0/24 is already used by e2a0 (10.77.0.1/24): use "
        "another subnet, e.g. --host-addr 10.77.1.1/24 --addr 10.77.1.2"]
    second = ns.popen(ns.pytcp("up", "--ifname", "e2b0", "--http", "8080", "--host-addr",
                               "10.77.1.1/24", "--addr", "10.77.1.2", "--profile", "rfc",
                               "--cc", "newreno", "-v"),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_ready(second).startswith("ready e2b0 10.77.1.2 ")
    status = ns.run(ns.argv("curl", "-sS", "-m", "10", "http://10.77.1.2:8080/status.json"))
    snap = json.loads(status.stdout)
    assert (snap["profile"], snap["cc"]) == ("rfc", "newreno")
    for proc in (first, second):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert second.stderr is not None
    assert b"profile rfc, congestion control newreno" in second.stderr.read()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_up_serves_then_a_signal_closes_with_fin_exit_0_and_no_interface(
        ns: Ns, tmp_path: Path, sig: int) -> None:
    capture = tmp_path / "cap.pcapng"
    up = ns.popen(ns.pytcp("up", "--ifname", "e2t0", "--http", "8080", "--echo", "7",
                           "--discard", "9", "--seed", "5", "--pcap", str(capture)),
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_ready(up) == "ready e2t0 10.77.0.2 http=8080 echo=7 discard=9 addr6=fd00:77::2"
    assert "e2t0" in ns.links()
    status = ns.run(ns.argv("curl", "-sS", "-m", "10", "http://10.77.0.2:8080/status.json"))
    assert status.returncode == 0, status.stderr
    snapshot = json.loads(status.stdout)
    assert snapshot["services"] == {"http": 8080, "echo": 7, "discard": 9}
    assert snapshot["interface"] == "e2t0" and snapshot["addr"] == "10.77.0.2"
    # A kernel-side client holds an idle echo connection open across the signal: it must see
    # the stack's FIN (EOF), not a reset, and the process must exit 0 and remove e2t0.
    client = ns.popen(ns.argv(sys.executable, "-c", (
        "import socket,sys\n"
        "s=socket.create_connection(('10.77.0.2',7),timeout=10)\n"
        "s.sendall(b'ping'); assert s.recv(4)==b'ping'\n"
        "print('connected',flush=True)\n"
        "print('eof' if s.recv(10)==b'' else 'data',flush=True)\n")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_ready(client) == "connected"
    up.send_signal(sig)
    out, err = client.communicate(timeout=15)
    assert out.decode().strip() == "eof", err
    assert up.wait(15) == 0, up.stderr.read() if up.stderr else ""
    assert "e2t0" not in ns.links()
    assert capture.stat().st_size > 0
    tshark = ns.run(["tshark", "-r", str(capture), "-Y", "tcp.flags.fin==1", "-T", "fields",
                     "-e", "tcp.srcport"]) if os.path.exists("/usr/bin/tshark") else None
    if tshark is not None:
        assert tshark.returncode == 0, tshark.stderr
        assert "7" in tshark.stdout.split()  # our FIN from the echo port is in the capture


@pytest.mark.parametrize("offload", [["--no-offload"], []], ids=["plain", "offload"])
def test_get_downloads_or_fails_with_one_line_and_no_file(ns: Ns, tmp_path: Path,
                                                          offload: list[str]) -> None:
    www = tmp_path / "www"
    www.mkdir()
    body = os.urandom(3 * 1024 * 1024 + 5)
    (www / "f.bin").write_bytes(body)
    # The kernel-side server binds the host address before pytcp creates it (nonlocal bind).
    ns.run(ns.argv("sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"))
    ns.popen(ns.argv(sys.executable, "-m", "http.server", "--bind", "10.77.0.1", "8000",
                     "--directory", str(www)), stdout=subprocess.DEVNULL,
             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while ":8000 " not in ns.run(ns.argv("ss", "-ltn")).stdout:
        assert time.monotonic() < deadline, "http.server did not start"
        time.sleep(0.05)
    out = tmp_path / "out.bin"
    res = ns.run(ns.pytcp("get", "http://10.77.0.1:8000/f.bin", "-o", str(out),
                          "--ifname", "e2g0", *offload))
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == body
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file, not 0600
    assert res.stderr.startswith(f"{len(body)} bytes in ")  # the summary line
    missing = tmp_path / "missing.bin"
    res = ns.run(ns.pytcp("get", "http://10.77.0.1:8000/nope", "-o", str(missing), *offload))
    assert res.returncode == 2
    assert res.stderr.splitlines() == ["pytcp get: error: HTTP 404 File not found for /nope"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "www"]  # no partial file
    res = ns.run(ns.pytcp("get", "http://10.77.0.1:8009/", "-o", str(missing)))
    assert res.returncode == 2
    assert res.stderr.splitlines() == ["pytcp get: error: connection refused by 10.77.0.1:8009"]
    assert ns.links() == ["lo"]


def test_get_from_a_silent_address_times_out_with_one_line(ns: Ns) -> None:
    # 10.77.0.5 is nobody: the kernel (forwarding off) drops our SYNs without a word.
    t0 = time.monotonic()
    res = ns.run(ns.pytcp("get", "http://10.77.0.5/", "--timeout", "1"))
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "pytcp get: error: timed out after 1 s connecting to 10.77.0.5:80"]
    assert res.stdout == ""
    assert time.monotonic() - t0 < 20
    assert ns.links() == ["lo"]


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_get_leaves_no_partial_file_and_no_interface(
        ns: Ns, tmp_path: Path, sig: int, status: int) -> None:
    out = tmp_path / "out.bin"
    get = ns.popen(ns.pytcp("get", "http://10.77.0.5/", "-o", str(out), "-v"),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while "pytcp0" not in ns.links():  # up and sending SYNs into the void
        assert time.monotonic() < deadline and get.poll() is None
        time.sleep(0.05)
    time.sleep(0.5)
    # ip netns exec runs the command as its child: signal the Python process itself.
    children = subprocess.run(["pgrep", "-P", str(get.pid)], capture_output=True, text=True,
                              check=False).stdout.split()
    target = int(children[0]) if children else get.pid
    os.kill(target, sig)
    assert get.wait(15) == status
    assert list(tmp_path.iterdir()) == []
    assert ns.links() == ["lo"]


def test_up_with_two_workers_spreads_connections_and_exits_clean(ns: Ns) -> None:
    """--workers 2: one multi-queue TUN, two processes; the kernel spreads connections over
    both (each status page names its worker), echoed data comes back whole, SIGTERM ends both
    with status 0 and the interface goes away with the last queue."""
    up = ns.popen(ns.pytcp("up", "--ifname", "e2w0", "--http", "8080", "--echo", "7",
                           "--workers", "2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_ready(up) == "ready e2w0 10.77.0.2 http=8080 echo=7 workers=2 addr6=fd00:77::2"
    assert "multi_queue numqueues 2" in ns.ip("-d", "link", "show", "e2w0")
    echo = ns.run(ns.argv(sys.executable, "-c", (
        "import hashlib,os,socket,threading\n"
        "for _ in range(4):\n"
        "    data=os.urandom(300_000)\n"
        "    s=socket.create_connection(('10.77.0.2',7),timeout=20)\n"
        "    threading.Thread(target=lambda: (s.sendall(data), s.shutdown(1))).start()\n"
        "    got=b''\n"
        "    while len(got)<len(data):\n"
        "        c=s.recv(65536)\n"
        "        if not c: break\n"
        "        got+=c\n"
        "    assert hashlib.sha256(got).digest()==hashlib.sha256(data).digest()\n"
        "    s.close()\n"
        "print('ok')\n")))
    assert echo.stdout.strip() == "ok", echo.stderr
    # A new source port each time: with 24 connections both queues are hit (the chance that
    # the flow hash sends all of them to one queue is 2**-23).
    workers = set()
    for _ in range(24):
        status = ns.run(ns.argv("curl", "-sS", "-m", "10", "http://10.77.0.2:8080/status.json"))
        assert status.returncode == 0, status.stderr
        snap = json.loads(status.stdout)
        assert snap["workers"] == 2
        workers.add(snap["worker"])
    up.send_signal(signal.SIGTERM)
    assert up.wait(15) == 0, up.stderr.read() if up.stderr else ""
    assert "e2w0" not in ns.links()
    assert workers == {0, 1}
