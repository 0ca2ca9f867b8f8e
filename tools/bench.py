#!/usr/bin/env python3
"""One benchmark: pytcp against the kernel (nginx, 1 worker), side by side in one run.

Owns the figures behind docs/performance.md "Against the kernel" (not a test; a smoke test
runs it with tiny sizes). In one run it builds two throw-away network namespaces joined by a
veth pair::

    client ns: 10.88.0.2/24 on veth, forwarding on      server ns: 10.88.0.1/24, forwarding on
      curl, wrk                                  --veth--   nginx (1 worker) on 10.88.0.1:8080
      pytcp get (TUN pbget0, pytcp 10.77.1.2)               pytcp up --http 80 (TUN, 10.77.0.2)

Both servers serve the same directory (a 1 KB file and a bulk file). Workloads, each measured
against nginx/the kernel and against pytcp, alternating, ``--runs`` times (medians):

- bulk download: curl (client ns) fetches the bulk file from nginx, and from ``pytcp up``
  (pytcp sends);
- bulk upload: the kernel's curl fetches it from nginx, and ``pytcp get`` does (pytcp
  receives; its TUN is in the client namespace, so the path is again veth + forwarding + TUN);
- keep-alive requests/s with 1 and with 50 connections (wrk, 1 thread, the 1 KB file);
- new connections/s with 50 connections (wrk with ``Connection: close``);
- server CPU time per request (utime + stime of the server's processes over the wrk run,
  divided by the requests wrk completed).

It prints a markdown table with the medians, every run's figure, the ratio pytcp / kernel and
the issue's target for it. Run as root:

    python3 tools/bench.py [--runs 3] [--size-mb 100] [--duration 5] [--pytcp-flags "..."]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.netns import REPO_ROOT, Netns, PytcpUp, environment_problem, pytcp_argv, pytcp_env

SERVER_VETH, CLIENT_VETH = "10.88.0.1", "10.88.0.2"
STACK_ADDR = "10.77.0.2"               # pytcp up, behind the server namespace's TUN
GET_HOST, GET_ADDR = "10.77.1.1", "10.77.1.2"  # pytcp get's TUN, in the client namespace
NGINX_PORT = 8080
SMALL = "1k"
BULK = "blob"

# The targets, as ratios pytcp / kernel (issue 8).
TARGETS = {
    "download": 0.5, "upload": 0.5, "keepalive1": 0.25, "keepalive50": 0.08, "newconn50": 0.15,
}

NGINX_CONF = """\
user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 65;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen {addr}:{port} backlog=4096;
        root {root};
    }}
}}
"""


@dataclass
class Row:
    key: str
    name: str
    unit: str
    kernel: list[float] = field(default_factory=list)
    pytcp: list[float] = field(default_factory=list)
    kernel_cpu: list[float] = field(default_factory=list)  # µs per request (wrk rows)
    pytcp_cpu: list[float] = field(default_factory=list)


# -- a kernel sendfile server (``bench.py --serve-kernel DIR PORT``; tools/bench_txqueue.py and
#    tests/e2e/test_e2e_txqueue.py use it inside their namespace) -----------------------------
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
    """A tiny threaded HTTP/1.1 server answering every GET with sendfile(2); prints
    ``listening`` once it listens."""
    base = Path(root).resolve()
    listener = socket.create_server(("0.0.0.0", port), backlog=128, reuse_port=False)
    print("listening", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(conn, base), daemon=True).start()


# -- measuring ------------------------------------------------------------------------------
def _proc_cpu(pid: int) -> float:
    """utime + stime (seconds) of ``pid`` and its children, recursively (0 if gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except (OSError, ValueError, IndexError):
        return total
    return total + sum(_proc_cpu(c) for c in children)


def curl_mbit(ns: Netns, url: str, size: int, timeout: float) -> float:
    """curl ``url`` in ``ns`` to /dev/null; Mbit/s over the whole transfer (size checked)."""
    res = ns.run(["curl", "--silent", "--show-error", "--max-time", str(int(timeout)),
                  "-o", "/dev/null", "-w", "%{size_download} %{time_total} %{http_code}", url],
                 timeout=timeout + 10)
    if res.returncode:
        raise RuntimeError(f"curl {url}: {res.stderr.decode().strip()}")
    got, seconds, code = res.stdout.decode().split()
    if code != "200" or int(got) != size:
        raise RuntimeError(f"curl {url}: HTTP {code}, {got} of {size} bytes")
    return size * 8 / float(seconds) / 1e6


_SUMMARY = re.compile(r"(\d+) bytes in ([\d.]+) s \(([\d.]+) Mbit/s\)")


def pytcp_get_mbit(ns: Netns, url: str, size: int, timeout: float, flags: list[str]) -> float:
    """``pytcp get URL -o -`` in ``ns`` (its own TUN there); Mbit/s from its summary line."""
    res = ns.run(pytcp_argv("get", url, "-o", "-", "--ifname", "pbget0",
                            "--host-addr", f"{GET_HOST}/24", "--addr", GET_ADDR,
                            "--timeout", str(int(timeout)), *flags),
                 timeout=timeout + 30, env=pytcp_env(), cwd=str(REPO_ROOT),
                 stdout=subprocess.DEVNULL)
    err = res.stderr.decode(errors="replace")
    m = _SUMMARY.search(err)
    if res.returncode or m is None or int(m.group(1)) != size:
        raise RuntimeError(f"pytcp get {url} (exit {res.returncode}): {err.strip()[-500:]}")
    return float(m.group(3))


_WRK_REQS = re.compile(r"(\d+) requests in ([\d.]+)(m?s)")
_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")


def wrk(ns: Netns, url: str, conns: int, duration: float, close: bool,
        server_pids: list[int]) -> tuple[float, float]:
    """wrk (1 thread) in ``ns``: (requests/s, server CPU µs per request)."""
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    cpu0 = sum(_proc_cpu(p) for p in server_pids)
    res = ns.run([*argv, url], timeout=duration + 30)
    cpu = sum(_proc_cpu(p) for p in server_pids) - cpu0
    out = res.stdout.decode()
    rate, done = _WRK_RATE.search(out), _WRK_REQS.search(out)
    if res.returncode or rate is None or done is None:
        raise RuntimeError(f"wrk {url}: {out.strip()} {res.stderr.decode().strip()}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise RuntimeError(f"wrk {url}: {bad.group(0)}")
    requests = int(done.group(1))
    return float(rate.group(1)), (cpu / requests * 1e6 if requests else float("nan"))


# -- the run --------------------------------------------------------------------------------
def _veth_pair(server: Netns, client: Netns, mtu: int) -> None:
    subprocess.run(["ip", "link", "add", "pbench0", "netns", server.name, "mtu", str(mtu),
                    "type", "veth", "peer", "name", "pbench1", "netns", client.name, "mtu",
                    str(mtu)], check=True, timeout=10)
    server.ip("addr", "add", f"{SERVER_VETH}/24", "dev", "pbench0")
    server.ip("link", "set", "pbench0", "up")
    client.ip("addr", "add", f"{CLIENT_VETH}/24", "dev", "pbench1")
    client.ip("link", "set", "pbench1", "up")
    client.ip("route", "add", "10.77.0.0/24", "via", SERVER_VETH)   # to pytcp up
    server.ip("route", "add", "10.77.1.0/24", "via", CLIENT_VETH)   # back to pytcp get
    server.sysctl("net.ipv4.ip_forward", "1")
    client.sysctl("net.ipv4.ip_forward", "1")


def _start_nginx(server: Netns, tmp: Path, root: Path) -> list[int]:
    prefix = tmp / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, addr=SERVER_VETH, port=NGINX_PORT,
                                      root=root))
    proc = server.popen(["nginx", "-c", str(conf), "-p", str(prefix)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        out = server.run(["ss", "-Hltn", f"sport = :{NGINX_PORT}"], timeout=10).stdout
        if out.strip():
            return [proc.pid]
        time.sleep(0.05)
    raise RuntimeError("nginx did not start listening within 10 s")


def run(args: argparse.Namespace) -> list[Row]:
    size = int(args.size_mb * 1024 * 1024)
    flags = shlex.split(args.pytcp_flags)
    rows = [
        Row("download", "bulk download (curl from the server)", "Mbit/s"),
        Row("upload", "bulk upload (pytcp get / curl from nginx)", "Mbit/s"),
        Row("keepalive1", "keep-alive, 1 connection", "req/s"),
        Row("keepalive50", "keep-alive, 50 connections", "req/s"),
        Row("newconn50", "new connections (Connection: close), 50", "req/s"),
    ]
    by = {r.key: r for r in rows}
    with tempfile.TemporaryDirectory(prefix="pytcp-bench-") as tmpname:
        tmp = Path(tmpname)
        os.chmod(tmp, 0o755)
        root = tmp / "www"
        root.mkdir()
        (root / SMALL).write_bytes(os.urandom(1024))
        with open(root / BULK, "wb") as f:
            left = size
            while left:
                n = min(left, 1 << 20)
                f.write(os.urandom(n))
                left -= n
        server = Netns("pytcp-bench-srv")
        client = Netns("pytcp-bench-cli")
        up: PytcpUp | None = None
        try:
            _veth_pair(server, client, args.mtu)
            nginx_pids = _start_nginx(server, tmp, root)
            up = PytcpUp(server, ["--http", "80", "--root", str(root), "--mtu", str(args.mtu),
                                  *flags], tmp)
            args.ready = up.wait_ready(30)
            pytcp_pids = [up.proc.pid]
            k_url, p_url = f"http://{SERVER_VETH}:{NGINX_PORT}", f"http://{STACK_ADDR}"
            for _ in range(args.runs):
                by["download"].kernel.append(
                    curl_mbit(client, f"{k_url}/{BULK}", size, args.timeout))
                by["download"].pytcp.append(
                    curl_mbit(client, f"{p_url}/{BULK}", size, args.timeout))
                by["upload"].kernel.append(
                    curl_mbit(client, f"{k_url}/{BULK}", size, args.timeout))
                by["upload"].pytcp.append(
                    pytcp_get_mbit(client, f"{k_url}/{BULK}", size, args.timeout, flags))
                for key, conns, close in (("keepalive1", 1, False), ("keepalive50", 50, False),
                                          ("newconn50", 50, True)):
                    row = by[key]
                    rate, cpu = wrk(client, f"{k_url}/{SMALL}", conns, args.duration, close,
                                    nginx_pids)
                    row.kernel.append(rate)
                    row.kernel_cpu.append(cpu)
                    rate, cpu = wrk(client, f"{p_url}/{SMALL}", conns, args.duration, close,
                                    pytcp_pids)
                    row.pytcp.append(rate)
                    row.pytcp_cpu.append(cpu)
            if up.proc.poll() is not None:
                raise RuntimeError(f"pytcp up died: {up.stderr()[-2000:]}")
            rc = up.stop()
            up = None
            if rc != 0:
                raise RuntimeError(f"pytcp up did not exit 0 ({rc})")
        finally:
            if up is not None:
                up.stop()
            client.close()
            server.close()
    return rows


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def report(rows: list[Row], args: argparse.Namespace) -> str:
    out = [(f"runs: {args.runs} (medians); bulk file {args.size_mb:g} MiB, MTU {args.mtu}; "
            f"wrk -t1 for {args.duration:g} s on a 1 KB file"),
           f"pytcp flags: {args.pytcp_flags or '(defaults: offloads on)'}; {args.ready}",
           f"pytcp checksums: {native_state()}", "",
           ("| workload | nginx / kernel | pytcp | ratio | target | reached | "
            "CPU µs/req nginx | CPU µs/req pytcp | runs kernel | runs pytcp |"),
           "|---|---:|---:|---:|---:|---|---:|---:|---|---|"]
    for r in rows:
        k, p = statistics.median(r.kernel), statistics.median(r.pytcp)
        ratio = p / k if k else float("nan")
        target = TARGETS[r.key]
        kc = statistics.median(r.kernel_cpu) if r.kernel_cpu else float("nan")
        pc = statistics.median(r.pytcp_cpu) if r.pytcp_cpu else float("nan")
        out.append(f"| {r.name} | {_fmt(k)} {r.unit} | {_fmt(p)} {r.unit} | {ratio:.3f} | "
                   f"{target:g} | {'yes' if ratio >= target else 'no'} | {_fmt(kc)} | "
                   f"{_fmt(pc)} | {', '.join(_fmt(v) for v in r.kernel)} | "
                   f"{', '.join(_fmt(v) for v in r.pytcp)} |")
    return "\n".join(out)


def native_state() -> str:
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
    parser.add_argument("--runs", type=int, default=3, help="repetitions (medians), default 3")
    parser.add_argument("--size-mb", type=float, default=100,
                        help="bulk file size in MiB (default 100)")
    parser.add_argument("--duration", type=float, default=5,
                        help="seconds per wrk measurement (default 5)")
    parser.add_argument("--mtu", type=int, default=1500, help="MTU of the TUNs and the veth")
    parser.add_argument("--pytcp-flags", default="",
                        help="extra flags for pytcp up and pytcp get, e.g. '--no-offload'")
    parser.add_argument("--timeout", type=float, default=300.0, help="per transfer, seconds")
    parser.add_argument("--serve-kernel", nargs=2, metavar=("DIR", "PORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_kernel:
        serve_kernel(args.serve_kernel[0], int(args.serve_kernel[1]))
        return 0
    problem = environment_problem()
    for tool in ("nginx", "wrk", "curl"):
        if problem is None and shutil.which(tool) is None:
            problem = f"`{tool}` is not installed (make install-test installs it)"
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    if args.runs < 1 or args.size_mb <= 0 or args.duration <= 0:
        print("bench: --runs, --size-mb and --duration must be positive", file=sys.stderr)
        return 2
    rows = run(args)
    print(report(rows, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
