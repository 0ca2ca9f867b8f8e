#!/usr/bin/env python3
"""End-to-end throughput: curl downloads one large file from pytcp and from the kernel.

Owns the benchmark behind docs/performance.md "End-to-end throughput" (not a test). In one run
it builds two throw-away network namespaces joined by a veth pair:

    client ns: curl, 10.88.0.2/24 on veth  --veth--  server ns: 10.88.0.1/24, forwarding on
                                                       - kernel: threaded sendfile HTTP server
                                                       - pytcp up (TUN pytcp0, stack 10.77.0.2)

and downloads the same file (default 100 MB) from the kernel's own TCP and from ``pytcp up
--http``, both across the veth pair (``--direct``: curl runs in the server namespace and
reaches pytcp over the TUN alone). It prints both rates in Mbit/s, their ratio, and which
checksum code pytcp ran (C through cffi or the pure-Python fallback).

Run as root:  python3 tools/bench.py [--size-mb 100] [--runs 3] [--direct] [--mtu 1500]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.netns import REPO_ROOT, Netns, PytcpUp, environment_problem

SERVER_VETH, CLIENT_VETH = "10.88.0.1", "10.88.0.2"
STACK_ADDR = "10.77.0.2"
KERNEL_PORT = 8080


# -- the kernel-side server (run as `bench.py --serve-kernel DIR PORT` inside the namespace) --
def _serve_one(conn: socket.socket, root: Path) -> None:
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        path = request.split(b" ", 2)[1].decode().lstrip("/")
        target = (root / path).resolve()
        if root not in target.parents or not target.is_file():
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            return
        size = target.stat().st_size
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n"
                     "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
                     .encode())
        with open(target, "rb") as f:
            offset = 0
            while offset < size:
                sent = os.sendfile(conn.fileno(), f.fileno(), offset, size - offset)
                if sent == 0:
                    return
                offset += sent


def serve_kernel(root: str, port: int) -> None:
    """A tiny threaded HTTP/1.1 server that answers every GET with sendfile(2)."""
    base = Path(root).resolve()
    listener = socket.create_server(("0.0.0.0", port), backlog=128, reuse_port=False)
    print("listening", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(conn, base), daemon=True).start()


# -- the benchmark ------------------------------------------------------------------------
def curl_rate(ns: Netns, url: str, size: int, timeout: float) -> float:
    """Download ``url`` with curl in ``ns`` to /dev/null; returns Mbit/s (checks the size)."""
    res = ns.run(["curl", "--silent", "--show-error", "--max-time", str(int(timeout)),
                  "-o", "/dev/null", "-w", "%{size_download} %{time_total} %{http_code}", url],
                 timeout=timeout + 10)
    if res.returncode:
        raise RuntimeError(f"curl {url}: {res.stderr.decode().strip()}")
    got, seconds, code = res.stdout.decode().split()
    if code != "200" or int(got) != size:
        raise RuntimeError(f"curl {url}: HTTP {code}, {got} of {size} bytes")
    return size * 8 / float(seconds) / 1e6


def native_state() -> str:
    sys.path.insert(0, str(REPO_ROOT))
    try:
        from pytcp import native
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"pytcp.native failed to import: {exc}"
    if os.environ.get("PYTCP_NO_NATIVE", "") not in ("", "0"):
        return "pure-Python fallback (PYTCP_NO_NATIVE set)"
    return ("C extension through cffi (pytcp._native)" if native.HAVE_NATIVE
            else "pure-Python fallback (pytcp._native not built)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=100, help="file size (MiB), default 100")
    parser.add_argument("--runs", type=int, default=3, help="downloads per server (median)")
    parser.add_argument("--mtu", type=int, default=1500, help="MTU of the TUN and the veth")
    parser.add_argument("--pytcp-variants", default=",--offload", metavar="LIST",
                        help="comma-separated extra `pytcp up` flags, one pytcp row each "
                             "(default ',--offload': plain, then TUN offloads)")
    parser.add_argument("--direct", action="store_true",
                        help="curl in pytcp's namespace (TUN only, no veth hop to pytcp)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per download, seconds")
    parser.add_argument("--serve-kernel", nargs=2, metavar=("DIR", "PORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_kernel:
        serve_kernel(args.serve_kernel[0], int(args.serve_kernel[1]))
        return 0
    problem = environment_problem()
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2

    size = args.size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="pytcp-bench-") as tmp:
        root = Path(tmp) / "www"
        root.mkdir()
        with open(root / "blob", "wb") as f:
            f.writelines(os.urandom(1024 * 1024) for _ in range(args.size_mb))
        os.chmod(tmp, 0o755)

        server = Netns("pytcp-bench-srv")
        client = Netns("pytcp-bench-cli")
        up: PytcpUp | None = None
        try:
            subprocess.run(["ip", "link", "add", "pbench0", "netns", server.name, "mtu",
                            str(args.mtu), "type", "veth", "peer", "name", "pbench1", "netns",
                            client.name, "mtu", str(args.mtu)], check=True, timeout=10)
            server.ip("addr", "add", f"{SERVER_VETH}/24", "dev", "pbench0")
            server.ip("link", "set", "pbench0", "up")
            client.ip("addr", "add", f"{CLIENT_VETH}/24", "dev", "pbench1")
            client.ip("link", "set", "pbench1", "up")
            client.ip("route", "add", "10.77.0.0/24", "via", SERVER_VETH)
            server.sysctl("net.ipv4.ip_forward", "1")

            kserver = server.popen([sys.executable, __file__, "--serve-kernel", str(root),
                                    str(KERNEL_PORT)], stdout=subprocess.PIPE)
            assert kserver.stdout is not None
            kserver.stdout.readline()  # "listening"
            pytcp_client = server if args.direct else client
            kernel = [curl_rate(client, f"http://{SERVER_VETH}:{KERNEL_PORT}/blob", size,
                                args.timeout) for _ in range(args.runs)]
            rows: list[tuple[str, list[float]]] = []
            for variant in args.pytcp_variants.split(","):
                extra = variant.split()
                up = PytcpUp(server, ["--http", "80", "--root", str(root), "--mtu",
                                      str(args.mtu), *extra], Path(tmp))
                ready = up.wait_ready(30)
                rates = [curl_rate(pytcp_client, f"http://{STACK_ADDR}/blob", size,
                                   args.timeout) for _ in range(args.runs)]
                rows.append((" ".join(["pytcp up --http", *extra]), rates))
                if up.stop() != 0:
                    raise RuntimeError(f"pytcp up {variant} did not exit 0: {up.stderr()}")
                up = None
        finally:
            if up is not None:
                up.stop()
            client.close()
            server.close()

    k = statistics.median(kernel)
    path = "TUN only (--direct)" if args.direct else "veth + forwarding + TUN"
    print(f"file: {args.size_mb} MiB, MTU {args.mtu}, median of {args.runs} curl downloads")
    print(f"pytcp checksums: {native_state()}")
    print(f"pytcp: {ready}")
    print()
    print("| server | path | Mbit/s (median) | runs |")
    print("|---|---|---:|---|")
    print(f"| Linux kernel TCP (sendfile) | veth | {k:,.0f} | "
          f"{', '.join(f'{r:,.0f}' for r in kernel)} |")
    for name, rates in rows:
        print(f"| {name} | {path} | {statistics.median(rates):,.0f} | "
              f"{', '.join(f'{r:,.0f}' for r in rates)} |")
    print()
    for name, rates in rows:
        print(f"ratio {name} / kernel: {statistics.median(rates) / k:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
