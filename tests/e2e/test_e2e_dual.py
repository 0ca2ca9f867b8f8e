"""The kernel talks to pytcp over IPv6 and UDP across the TUN (IPv6 is on by default):
ping -6 (with fragments both ways), a byte-identical 10 MB curl download over IPv6, UDP echo
of sizes 0 to 20,000 over both families, a closed UDP port seen as ECONNREFUSED by a connected
kernel socket, ``pytcp get http://[fd00:77::1]:PORT/``, and a capture holding both families.

One namespace and one ``pytcp up --http 80 --udp-echo 7 --pcap`` serve the module.
"""

from __future__ import annotations

import errno
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    READY_TIMEOUT,
    STACK_ADDR,
    Data,
    curl,
    file_sha256,
    sha256,
    stop_and_report,
)
from tools.netns import REPO_ROOT, Netns, PytcpUp, pytcp_argv, pytcp_env

STACK6 = "fd00:77::2"
HOST6 = "fd00:77::1"
UDP_SIZES = [0, 1, 100, 1232, 1452, 1453, 1472, 1473, 4000, 9000, 15000, 20000]


@dataclass
class Dual:
    ns: Netns
    up: PytcpUp
    data: Data
    pcap: Path


@pytest.fixture(scope="module")
def dual(e2e_data: Data, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dual]:
    ns = Netns()
    up: PytcpUp | None = None
    work = tmp_path_factory.mktemp("dual")
    pcap = work / "dual.pcapng"
    try:
        up = PytcpUp(ns, ["--http", "80", "--root", str(e2e_data.root), "--udp-echo", "7",
                          "--pcap", str(pcap)], work)
        line = up.wait_ready(READY_TIMEOUT)
        assert line.endswith(f"http=80 udp-echo=7 addr6={STACK6}"), line
        yield Dual(ns, up, e2e_data, pcap)
    finally:
        if up is not None:
            stop_and_report(up, "(module)")
        ns.close()


def test_ping6_right_after_ready_and_fragmented(dual: Dual) -> None:
    # The kernel's address has no duplicate address detection pending: usable at once.
    res = dual.ns.run(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", STACK6], timeout=20)
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()
    assert "2 received" in res.stdout.decode()
    # 6,000 bytes: fragments both ways (pytcp reassembles the request, fragments its reply).
    res = dual.ns.run(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "6000", STACK6],
                      timeout=20)
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()
    assert "2 received" in res.stdout.decode() and "wrong data" not in res.stdout.decode()


def test_curl_over_ipv6_10_mb_byte_identical(dual: Dual, tmp_path: Path) -> None:
    out = tmp_path / "big"
    res = curl(dual.ns, "-g", "-o", str(out), "-w", "%{http_code} %{size_download}",
               f"http://[{STACK6}]/big", timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode() == f"200 {len(dual.data.big)}"
    assert file_sha256(out) == sha256(dual.data.big)


@pytest.mark.parametrize("family,addr", [(socket.AF_INET, STACK_ADDR),
                                         (socket.AF_INET6, STACK6)], ids=["ipv4", "ipv6"])
def test_udp_echo_sizes_0_to_20000(dual: Dual, family: int, addr: str) -> None:
    rng = random.Random(family)
    with dual.ns.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.connect((addr, 7))
        for size in UDP_SIZES:
            data = rng.randbytes(size)
            s.send(data)
            assert s.recv(65536) == data, size


@pytest.mark.parametrize("family,addr", [(socket.AF_INET, STACK_ADDR),
                                         (socket.AF_INET6, STACK6)], ids=["ipv4", "ipv6"])
def test_closed_udp_port_is_econnrefused(dual: Dual, family: int, addr: str) -> None:
    with dual.ns.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.connect((addr, 9))
        s.send(b"anyone?")
        with pytest.raises(ConnectionRefusedError) as e:
            s.recv(100)
        assert e.value.errno == errno.ECONNREFUSED


def test_capture_holds_both_families(dual: Dual) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapNgReader

    dual.ns.run(["ping", "-6", "-c", "1", "-W", "2", STACK6], timeout=10)
    dual.ns.run(["ping", "-c", "1", "-W", "2", STACK_ADDR], timeout=10)
    deadline = time.monotonic() + 5
    seen: set[str] = set()
    while time.monotonic() < deadline and seen != {"ipv4", "ipv6"}:
        seen.clear()
        with PcapNgReader(str(dual.pcap)) as reader:
            try:
                for pkt in reader:
                    raw = bytes(pkt)
                    if raw and raw[0] >> 4 == 6 and IPv6(raw).src == STACK6:
                        seen.add("ipv6")
                    elif raw and raw[0] >> 4 == 4 and IP(raw).src == STACK_ADDR:
                        seen.add("ipv4")
            except EOFError:
                pass
        time.sleep(0.2)
    assert seen == {"ipv4", "ipv6"}


def test_pytcp_get_over_ipv6_from_kernel_server(netns: Netns, e2e_data: Data,
                                                tmp_path: Path) -> None:
    # The server binds to :: before the TUN (and its fd00:77::1) exists.
    netns.popen([sys.executable, "-m", "http.server", "--bind", "::", "8000",
                 "--directory", str(e2e_data.root)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if netns.run(["ss", "-Hltn", "sport = :8000"], timeout=10).stdout.strip():
            break
        time.sleep(0.1)
    out = tmp_path / "out"
    res = netns.run(pytcp_argv("get", f"http://[{HOST6}]:8000/s/05.bin", "-o", str(out)),
                    timeout=60, env=pytcp_env(), cwd=str(REPO_ROOT))
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-3000:]
    assert out.read_bytes() == e2e_data.small["/s/05.bin"]
