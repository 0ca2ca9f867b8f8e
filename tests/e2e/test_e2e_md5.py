"""TCP MD5 signatures (RFC 2385) end to end with the Linux kernel as the peer, whose
TCP_MD5SIG is the independent implementation: inside a throw-away namespace, one process runs
pytcp on a TUN and kernel sockets beside it. pytcp connects to a kernel listener with a key for
it and the kernel connects to a pytcp listener with one; the bytes go both ways and match
(sha256). A pytcp client with another key never gets a SYN-ACK from the kernel (it drops the
SYN: TCPMD5Failure), and an unsigned kernel SYN to the keyed pytcp listener is counted
MD5_NOT_FOUND."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tools.netns import REPO_ROOT, Netns, pytcp_env

PROGRAM = r"""
import hashlib, json, socket, sys, threading
from pytcp.api.sock import BackgroundRuntime
from pytcp.drops import DropReason
from pytcp.tcp.md5 import TCP_MD5SIG, build_tcp_md5sig

KEY = b"e2e-md5-key"
DATA = bytes(range(256)) * 800  # 200 KiB
out = {}

def recv_all(s):
    got = bytearray()
    while True:
        d = s.recv(65536)
        if not d:
            return bytes(got)
        got += d

# The kernel listener: signs with KEY for pytcp's address (needs ip_nonlocal_bind: the TUN
# and its address come with the runtime).
ks = socket.socket()
ks.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ks.bind(("10.77.0.1", 8000))
ks.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, build_tcp_md5sig("10.77.0.2", KEY))
ks.listen(4)
ks.settimeout(20)

def kernel_server():
    c, _ = ks.accept()
    c.settimeout(20)
    data = recv_all(c)
    out["kernel_got"] = hashlib.sha256(data).hexdigest()
    c.sendall(data[::-1])
    c.close()

with BackgroundRuntime.on_tun("10.77.0.2", ifname="pytcp0", host_addr="10.77.0.1/24",
                              pcap_path=sys.argv[1]) as rt:
    t = threading.Thread(target=kernel_server)
    t.start()
    s = rt.socket()
    s.settimeout(20)
    s.set_md5_key("10.77.0.1", KEY)
    s.connect(("10.77.0.1", 8000))
    s.sendall(DATA)
    s.shutdown(socket.SHUT_WR)
    back = recv_all(s)
    s.close()
    t.join(30)
    out["pytcp_got_back"] = back == DATA[::-1]
    # The other way: the kernel connects to a keyed pytcp listener.
    srv = rt.socket()
    srv.settimeout(20)
    srv.listen(8080)
    srv.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, build_tcp_md5sig("10.77.0.1", KEY))
    kc = socket.socket()
    kc.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, build_tcp_md5sig("10.77.0.2", KEY))
    kc.settimeout(20)
    kc.connect(("10.77.0.2", 8080))
    conn, _ = srv.accept()
    kc.sendall(DATA)
    kc.shutdown(socket.SHUT_WR)
    out["pytcp_server_got"] = recv_all(conn) == DATA
    conn.sendall(b"signed reply")
    conn.close()
    out["kernel_client_got"] = recv_all(kc).decode()
    kc.close()
    # An unsigned kernel SYN to the keyed listener: dropped and counted, no connection.
    plain = socket.socket()
    plain.settimeout(1.5)
    try:
        plain.connect(("10.77.0.2", 8080))
        out["unsigned_connected"] = True
    except OSError:
        out["unsigned_connected"] = False
    out["md5_not_found"] = rt.stack.drops[DropReason.MD5_NOT_FOUND]
    # pytcp with another key: the kernel drops its SYNs (no SYN-ACK), connect times out.
    bad = rt.socket()
    bad.settimeout(1.5)
    bad.set_md5_key("10.77.0.1", b"another key")
    try:
        bad.connect(("10.77.0.1", 8000))
        out["bad_key_connected"] = True
    except OSError:
        out["bad_key_connected"] = False
    srv.close()
ks.close()
print(json.dumps(out), flush=True)
"""


def test_md5_signed_connections_with_the_kernel_both_ways(netns: Netns, tmp_path: Path) -> None:
    import hashlib

    from scapy.layers.inet import IP, TCP, calc_tcp_md5_hash
    from scapy.utils import PcapNgReader

    netns.sysctl("net.ipv4.ip_nonlocal_bind", "1")
    pcap = tmp_path / "md5.pcapng"
    res = netns.run([sys.executable, "-c", PROGRAM, str(pcap)], timeout=120, env=pytcp_env(),
                    cwd=str(REPO_ROOT))
    err = res.stderr.decode(errors="replace")
    assert res.returncode == 0, err[-3000:]
    out = json.loads(res.stdout.decode().strip().splitlines()[-1])
    data = bytes(range(256)) * 800
    assert out["kernel_got"] == hashlib.sha256(data).hexdigest()
    assert out["pytcp_got_back"] is True and out["pytcp_server_got"] is True
    assert out["kernel_client_got"] == "signed reply"
    assert out["unsigned_connected"] is False and out["md5_not_found"] >= 1
    assert out["bad_key_connected"] is False
    # The capture: every segment of the keyed connections carries a digest that verifies
    # with the key (scapy's computation); those of the wrong-key and unsigned attempts do not.
    ok = bad = unsigned = 0
    with PcapNgReader(str(pcap)) as reader:
        for pkt in reader:
            ip = IP(bytes(pkt))
            if not ip.haslayer(TCP):
                continue
            opts = dict(ip[TCP].options)
            if "MD5" not in opts:
                unsigned += 1
            elif opts["MD5"] == calc_tcp_md5_hash(ip[TCP], b"e2e-md5-key"):
                ok += 1
            else:
                bad += 1
    assert ok > 100  # 200 KiB each way, signed by pytcp and by the kernel
    assert bad >= 1  # the wrong-key SYNs
    assert unsigned >= 1  # the unsigned kernel SYN
