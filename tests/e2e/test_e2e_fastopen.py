"""TCP Fast Open (RFC 7413) end to end with the kernel as the server: ``pytcp get --fastopen
--repeat 3`` against a kernel listener with ``TCP_FASTOPEN`` (``net.ipv4.tcp_fastopen=3`` in
the test's namespace only). The first connection asks for a cookie; the second and third send
their HTTP request in the SYN with it, and the kernel accepts it (``TCPI_OPT_SYN_DATA``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import HOST_ADDR, STACK_ADDR
from tools.netns import REPO_ROOT, Netns, pytcp_argv, pytcp_env

BODY = bytes(range(256)) * 40  # 10 KB

# A kernel HTTP server for N connections: TCP_FASTOPEN on the listener; for each connection
# it records the request bytes and whether they came in the SYN (tcp_info.tcpi_options,
# byte 5, TCPI_OPT_SYN_DATA = 32), then answers with BODY.
SERVER = r"""
import json, socket, sys
host, port, count, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
body = bytes(range(256)) * 40
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((host, port))
ls.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
ls.listen(16)
ls.settimeout(60)
print("listening", flush=True)
seen = []
for _ in range(count):
    c, _ = ls.accept()
    c.settimeout(30)
    info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    req = b""
    while b"\r\n\r\n" not in req:
        data = c.recv(4096)
        if not data:
            break
        req += data
    seen.append({"syn_data": bool(info[5] & 32), "request": req.hex()})
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
              % len(body) + body)
    c.close()
with open(log, "w") as f:
    json.dump(seen, f)
"""


def _syns(pcap: Path) -> list[tuple[bytes, list[tuple[int, bytes]]]]:
    """Our SYNs in the capture: (payload, [(option kind, value)])."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapNgReader

    out = []
    with PcapNgReader(str(pcap)) as reader:
        for pkt in reader:
            ip = IP(bytes(pkt))
            if ip.src != STACK_ADDR or not ip.haslayer(TCP):
                continue
            tcp = ip[TCP]
            if tcp.flags & 0x02 and not tcp.flags & 0x10:  # SYN without ACK
                raw = bytes(tcp)
                opts, i, end = [], 20, tcp.dataofs * 4
                while i < end and raw[i] != 0:  # (RFC 9293 3.2: kind, length, value)
                    if raw[i] == 1:
                        i += 1
                        continue
                    opts.append((raw[i], raw[i + 2:i + raw[i + 1]]))
                    i += max(raw[i + 1], 2)
                out.append((bytes(tcp.payload), opts))
    return out


def test_pytcp_get_fastopen_sends_the_second_request_in_the_syn(
        netns: Netns, tmp_path: Path) -> None:
    netns.sysctl("net.ipv4.ip_nonlocal_bind", "1")
    netns.sysctl("net.ipv4.tcp_fastopen", "3")  # client and server (this namespace only)
    log = tmp_path / "server.json"
    server = netns.popen([sys.executable, "-c", SERVER, HOST_ADDR, "8000", "3", str(log)],
                         stdout=subprocess.PIPE)
    assert server.stdout is not None
    assert server.stdout.readline().strip() == b"listening"
    out = tmp_path / "out"
    pcap = tmp_path / "get.pcapng"
    res = netns.run(pytcp_argv("get", f"http://{HOST_ADDR}:8000/x", "-o", str(out),
                               "--fastopen", "--repeat", "3", "--pcap", str(pcap)),
                    timeout=120, env=pytcp_env(), cwd=str(REPO_ROOT))
    err = res.stderr.decode(errors="replace")
    assert res.returncode == 0, err[-3000:]
    assert out.read_bytes() == BODY * 3
    deadline = time.monotonic() + 10
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    seen = json.loads(log.read_text())
    requests = [bytes.fromhex(s["request"]) for s in seen]
    assert len(requests) == 3 and requests[0].startswith(b"GET /x HTTP/1.1\r\n")
    assert requests[1] == requests[2] == requests[0]
    # The kernel: the first request came after the handshake, the others in the SYN.
    assert [s["syn_data"] for s in seen] == [False, True, True]
    # The wire: SYN 1 asks for a cookie (an empty option, kind 34) and carries nothing;
    # SYNs 2 and 3 carry the kernel's cookie and exactly the request bytes.
    syns = _syns(pcap)
    assert len(syns) == 3
    assert syns[0][0] == b"" and (34, b"") in syns[0][1]
    for payload, opts in syns[1:]:
        assert payload == requests[0]
        cookies = [v for k, v in opts if k == 34]
        assert len(cookies) == 1 and 4 <= len(cookies[0]) <= 16
    n = len(requests[0])
    assert [line for line in err.splitlines() if line.startswith("fast open:")] == [
        "fast open: connection 1: no data in the SYN (no usable cookie); the server gave one",
        f"fast open: connection 2: {n} request bytes in the SYN, acknowledged by the SYN-ACK",
        f"fast open: connection 3: {n} request bytes in the SYN, acknowledged by the SYN-ACK",
    ]
