"""TunLink in a throw-away network namespace: interface setup, ping answered by the stack,
removal on close, clear errors. Each test body runs in a child process inside the namespace
(``ip netns exec``), so nothing is ever sent outside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "TUN tests need root"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if subprocess.run(["ip", "netns", "list"], capture_output=True, check=False).returncode != 0:
        return "`ip netns` is not available"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"pytcp-d-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=10, check=False)


def run_in(ns: str, body: str, timeout: float = 30.0) -> dict:
    """Run ``body`` (Python; it sets ``result``) inside namespace ``ns``; return ``result``."""
    code = "import json\nresult = {}\n" + textwrap.dedent(body) + \
        "\nprint('RESULT ' + json.dumps(result))\n"
    p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], cwd=REPO,
                       capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert p.returncode == 0, p.stderr
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[7:])


def test_open_configures_and_close_removes(netns: str) -> None:
    r = run_in(netns, """
        from pyroute2 import IPRoute
        from pytcp.link.tun import TunLink
        link = TunLink.open("pytcpt0", host_addr="10.77.0.1/24", mtu=1400)
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname="pytcpt0")[0]
            info = ipr.get_links(idx)[0]
            result["mtu"] = info.get_attr("IFLA_MTU")
            result["up"] = bool(info["flags"] & 1)
            result["addrs"] = [(a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                               for a in ipr.get_addr(index=idx, family=2)]
        # Nothing but the kernel's own IPv6 chatter (router solicitation, MLD) may be waiting.
        result["early"] = [p[0] >> 4 for p in link.read_batch()]
        link.close()
        link.close()
        with IPRoute() as ipr:
            result["after_close"] = ipr.link_lookup(ifname="pytcpt0")
    """)
    assert r["mtu"] == 1400
    assert r["up"] is True
    assert r["addrs"] == [["10.77.0.1", 24]]
    assert all(v == 6 for v in r["early"])
    assert r["after_close"] == []


def test_clear_errors(netns: str) -> None:
    r = run_in(netns, """
        from pytcp.link import LinkError
        from pytcp.link.tun import TunLink
        def err(**kw):
            try:
                TunLink.open(**kw).close()
            except LinkError as e:
                return str(e)
            return None
        result["taken"] = err(ifname="lo")
        result["bad_addr"] = err(ifname="pytcpt1", host_addr="10.77.0.300/24")
        result["v6"] = err(ifname="pytcpt1", host_addr="fd00::1/64")
        result["bad_name"] = err(ifname="x" * 20)
        result["bad_mtu"] = err(ifname="pytcpt1", mtu=10)
        a = TunLink.open("pytcpt1")
        result["dup"] = err(ifname="pytcpt1")
        a.close()
    """)
    assert "already taken" in r["taken"]
    assert "invalid address" in r["bad_addr"]
    assert "only IPv4" in r["v6"]
    assert "invalid interface name" in r["bad_name"]
    assert "invalid MTU" in r["bad_mtu"]
    assert "already taken" in r["dup"]


def test_not_root_message(netns: str) -> None:
    """Opening /dev/net/tun without privileges gives the 'not root' message."""
    if subprocess.run(["id", "nobody"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no 'nobody' user")
    r = run_in(netns, """
        import os
        # Everything imported before dropping privileges: the interpreter and its packages
        # may live where nobody cannot read (pyenv under /root).
        import pyroute2
        from pyroute2 import IPRoute
        from pytcp.link import LinkError
        from pytcp.link.tun import TunLink
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        try:
            TunLink.open("pytcpt2")
            result["err"] = None
        except LinkError as e:
            result["err"] = str(e)
    """)
    assert r["err"] is not None and "not root" in r["err"]


def test_kernel_ping_answered_by_stack(netns: str) -> None:
    r = run_in(netns, """
        import select, subprocess, time
        from pytcp.link.tun import TunLink
        from pytcp.stack import Stack
        link = TunLink.open("pytcpt3", host_addr="10.77.0.1/24")
        try:
            stack = Stack("10.77.0.2", now=time.monotonic())
            ping = subprocess.Popen(["ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "100",
                                     "10.77.0.2"], stdout=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 10.0
            while ping.poll() is None and time.monotonic() < deadline:
                select.select([link.fileno()], [], [], 0.1)
                now = time.monotonic()
                for pkt in link.read_batch():
                    stack.receive_packet(now, pkt)
                for pkt in stack.pending_packets():
                    link.write(pkt)
            if ping.poll() is None:
                ping.kill()
            result["ping_rc"] = ping.wait(timeout=5)
            result["ping_out"] = ping.stdout.read()
            result["echo"] = stack.stats["icmp_echo"]
            result["tx"] = link.stats["tx_packets"]
        finally:
            link.close()
    """)
    assert r["ping_rc"] == 0, r["ping_out"]
    assert "3 received" in r["ping_out"]
    assert r["echo"] >= 3 and r["tx"] >= 3


def test_open_and_close_inside_running_asyncio_loop(netns: str) -> None:
    """pyroute2 runs its own event loop; TunLink must work when called from a coroutine."""
    r = run_in(netns, """
        import asyncio
        from pyroute2 import IPRoute
        from pytcp.link.tun import TunLink
        async def main():
            link = TunLink.open("pytcpt4", host_addr="10.78.0.1/24")
            result["index"] = link.index
            link.close()
        asyncio.run(main())
        with IPRoute() as ipr:
            result["after"] = ipr.link_lookup(ifname="pytcpt4")
    """)
    assert isinstance(r["index"], int) and r["after"] == []


def test_kernel_tcp_client_echoed_by_stack(netns: str) -> None:
    """A kernel TCP socket talks to a pytcp listener through the TUN: handshake, 200 KB each
    way, orderly close; the kernel accepts every checksum we compute."""
    r = run_in(netns, """
        import hashlib, random, select, socket, threading, time
        from pytcp.link.tun import TunLink
        from pytcp.stack import Stack
        link = TunLink.open("pytcpt5", host_addr="10.77.0.1/24")
        data = random.Random(5).randbytes(200_000)
        got = {}
        def client():
            s = socket.create_connection(("10.77.0.2", 7), timeout=10)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            buf = bytearray()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            got["echo"] = bytes(buf)
            s.close()
        try:
            stack = Stack("10.77.0.2", now=time.monotonic())
            lst = stack.listen(7)
            t = threading.Thread(target=client, daemon=True)
            t.start()
            conn = None
            pending = b""
            deadline = time.monotonic() + 20.0
            while t.is_alive() and time.monotonic() < deadline:
                nd = stack.next_deadline()
                wait = 0.05 if nd is None else max(0.0, min(0.05, nd - time.monotonic()))
                select.select([link.fileno()], [], [], wait)
                now = time.monotonic()
                for pkt in link.read_batch(256):
                    stack.receive_packet(now, pkt)
                stack.handle_timers(now)
                if conn is None:
                    conn = lst.accept()
                if conn is not None and conn.open:
                    pending += conn.receive(now)
                    if pending:
                        pending = pending[conn.send(now, pending):]
                    if conn.conn.at_eof and not pending and str(conn.state) == "CLOSE-WAIT":
                        conn.close(now)
                for pkt in stack.pending_packets():
                    link.write(pkt)
                stack.pending_events()
            t.join(timeout=1.0)
            result["ok"] = got.get("echo") == data
            result["len"] = len(got.get("echo", b""))
            result["drops"] = {k.value: v for k, v in stack.drops.items()}
        finally:
            link.close()
    """, timeout=60)
    assert r["ok"], r


@pytest.mark.parametrize("offload", [False, True])
def test_kernel_tcp_echo_with_and_without_offloads(netns: str, offload: bool) -> None:
    """4 MB each way between a kernel socket and the stack. With offloads the kernel hands
    over super-packets (checksum completed by the link) and takes our GSO packets (cut by the
    kernel at the engine's segment size)."""
    r = run_in(netns, f"""
        import random, select, socket, threading, time
        from pytcp.link.tun import TunLink
        from pytcp.stack import Stack, StackConfig
        from pytcp.tcp.config import TcpConfig
        offload = {offload}
        link = TunLink.open("pytcpt6", host_addr="10.77.0.1/24", offload=offload)
        data = random.Random(5).randbytes(4_000_000)
        got = {{}}
        def client():
            s = socket.create_connection(("10.77.0.2", 7), timeout=20)
            def rx():
                buf = bytearray()
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    buf += chunk
                got["echo"] = bytes(buf)
            r = threading.Thread(target=rx)
            r.start()
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            r.join(30)
            s.close()
        try:
            stack = Stack("10.77.0.2", now=time.monotonic(), config=StackConfig(gso=offload),
                          tcp_config=TcpConfig(max_segment_payload=65000 if offload else 0))
            lst = stack.listen(7)
            t = threading.Thread(target=client, daemon=True)
            t.start()
            conn = None
            pending = bytearray()
            deadline = time.monotonic() + 30.0
            maxlen = 0
            while t.is_alive() and time.monotonic() < deadline:
                nd = stack.next_deadline()
                wait = 0.05 if nd is None else max(0.0, min(0.05, nd - time.monotonic()))
                select.select([link.fileno()], [], [], wait)
                now = time.monotonic()
                for pkt in link.read_batch(256):
                    maxlen = max(maxlen, len(pkt))
                    stack.receive_packet(now, pkt)
                stack.handle_timers(now)
                if conn is None:
                    conn = lst.accept()
                if conn is not None and conn.open:
                    pending += conn.receive(now)
                    if pending:
                        del pending[:conn.send(now, bytes(pending[:1 << 20]))]
                    if conn.conn.at_eof and not pending and str(conn.state) == "CLOSE-WAIT":
                        conn.close(now)
                for pkt in stack.pending_packets():
                    link.write(pkt)
                stack.pending_events()
            t.join(timeout=1.0)
            result["ok"] = got.get("echo") == data
            result["len"] = len(got.get("echo", b""))
            result["maxlen"] = maxlen
            result["link"] = dict(link.stats)
            result["bad"] = stack.drops.get(__import__("pytcp.drops").drops.DropReason.BAD_CHECKSUM, 0)
        finally:
            link.close()
    """, timeout=90)
    assert r["ok"], r
    assert r["bad"] == 0
    if offload:
        assert r["maxlen"] > 1500 and r["link"]["rx_gso"] > 0 and r["link"]["tx_gso"] > 0
    else:
        assert r["maxlen"] <= 1500 and "tx_gso" not in r["link"]


def test_txqueuelen_is_set_and_kernel_stats_read(netns: str) -> None:
    r = run_in(netns, """
        from pytcp.link.tun import TunLink
        link = TunLink.open("pytcpt0", host_addr="10.77.0.1/24", txqueuelen=2964)
        result["stats"] = link.kernel_stats()
        link._sysfs_stats = lambda index: None  # as when /sys is another namespace's
        result["netlink"] = link.kernel_stats()
        link.close()
        result["closed"] = link.kernel_stats()
    """)
    assert r["stats"]["txqueuelen"] == 2964
    assert r["stats"]["tx_dropped"] == 0 and "tx_packets" in r["stats"]
    # (counters may move in between: the kernel's own IPv6 chatter on a new link)
    assert r["netlink"].keys() == r["stats"].keys() and r["netlink"]["txqueuelen"] == 2964
    assert r["closed"] == {}


def test_txqueuelen_for_holds_four_windows() -> None:
    from pytcp.link.tun import txqueuelen_for

    assert txqueuelen_for(1 << 20, 1500) == 4 * 725 + 64  # 1 MiB in 1448-byte segments
    assert txqueuelen_for(64 * 1024, 1500) == 1000  # never below 1000
    assert txqueuelen_for(1 << 20, 9000) == 1000


def test_offload_auto_uses_offloads_and_falls_back_when_the_kernel_refuses(netns: str) -> None:
    """``offload=None`` (what ``pytcp up``/``get`` ask for by default): offloads when the
    kernel allows them; a TUNSETOFFLOAD refusal leaves a plain TUN and says why."""
    r = run_in(netns, """
        import errno, fcntl
        from pytcp.link import tun
        from pytcp.link.tun import TunLink
        link = TunLink.open("pytcpt8", host_addr="10.77.0.1/24", offload=None)
        result["auto"] = [link.vnet_hdr, link.offload_error]
        link.close()
        real_ioctl = fcntl.ioctl
        def refusing(fd, req, *a):
            if req == tun.TUNSETOFFLOAD:
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_ioctl(fd, req, *a)
        fcntl.ioctl = refusing
        link = TunLink.open("pytcpt8", host_addr="10.77.0.1/24", offload=None)
        result["refused"] = [link.vnet_hdr, link.offload_error]
        flags = open("/sys/class/net/pytcpt8/tun_flags").read().strip()
        result["flags"] = int(flags, 16)
        link.close()
    """)
    assert r["auto"] == [True, None]
    assert r["refused"][0] is False and "offloads not available" in r["refused"][1]
    assert not r["flags"] & 0x4000  # reopened without IFF_VNET_HDR
