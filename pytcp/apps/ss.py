"""``pytcp ss``: the connection table of a running ``pytcp up``, like ``ss -tni``.

A running ``pytcp up`` listens on a local control socket (a Unix stream socket,
``/run/pytcp/<ifname>.sock``, ``<ifname>.<worker>.sock`` for each ``--workers`` process;
mode 0600, the directory 0755). Interface names belong to a network namespace, so a process in
another namespace than PID 1's uses ``/run/pytcp/netns-<inode>/`` instead (``pytcp ss`` run in
the same namespace finds it). A client connects and reads one JSON document (the snapshot of
:func:`ss_snapshot`) until EOF; nothing is sent to the server. So it works whatever ``--http``
serves (files or the dashboard) and needs no TCP at all. The socket is removed when
``pytcp up`` exits; a stale one (a killed process) is replaced at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytcp.apps.status import UNSET_SSTHRESH, format_endpoints

CONTROL_ROOT = Path(os.environ.get("PYTCP_RUN_DIR", "/run/pytcp"))


def _control_dir() -> Path:
    """CONTROL_ROOT, or a subdirectory named after this process's network namespace when it
    is not PID 1's (interface names are per namespace)."""
    try:
        mine = os.stat("/proc/self/ns/net").st_ino
        init = os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return CONTROL_ROOT
    return CONTROL_ROOT if mine == init else CONTROL_ROOT / f"netns-{mine}"


CONTROL_DIR = _control_dir()
MAX_REPLY = 64 * 1024 * 1024  # a client reads at most this much (65536 connections fit)


def control_path(ifname: str, worker: int | None = None, run_dir: Path | None = None) -> Path:
    base = run_dir if run_dir is not None else CONTROL_DIR
    return base / (f"{ifname}.sock" if worker is None else f"{ifname}.{worker}.sock")


def _rate(history: Any, now: float) -> float | None:
    """Delivery rate (bits/s): acknowledged bytes over the last second of the history."""
    if history is None or not history.samples:
        return None
    samples = history.samples
    last = samples[-1]
    first = samples[0]
    for s in reversed(samples):
        first = s
        if last.t - s.t >= 1.0:
            break
    dt = last.t - first.t
    if dt <= 0:
        return None
    return float((last.bytes_out - first.bytes_out) * 8 / dt)


def connection_entry(handle: Any, now: float) -> dict[str, Any]:
    """One connection as ``ss -tni`` would show it (sizes in bytes, times in ms)."""
    conn = handle.conn
    local, peer = format_endpoints(handle.key)
    rtt = conn._rtt
    cc = conn._cc
    mss = max(1, conn.snd_mss)
    in_flight = (conn.snd_max - conn.snd_una) & 0xFFFFFFFF
    return {
        "state": str(conn.state),
        "recv_q": conn.bytes_readable,
        "send_q": conn.unsent_bytes,
        "local": local,
        "peer": peer,
        "cc": cc.name,
        "rto_ms": round(rtt.rto * 1000, 3),
        "rtt_ms": None if rtt.srtt is None else round(rtt.srtt * 1000, 3),
        "rttvar_ms": None if rtt.rttvar is None else round(rtt.rttvar * 1000, 3),
        "mss": conn.snd_mss,
        "advmss": conn.our_mss,
        "cwnd": cc.cwnd // mss,
        "cwnd_bytes": cc.cwnd,
        "ssthresh": None if cc.ssthresh >= UNSET_SSTHRESH else cc.ssthresh // mss,
        "bytes_acked": conn.bytes_out,
        "bytes_received": conn.bytes_in,
        "unacked": in_flight,
        "retrans": conn._retries,
        "retrans_total": conn.retransmits,
        "snd_wnd": conn.snd_wnd,
        "rcv_wnd": max(0, (conn.rcv_adv - conn.rcv_nxt) & 0xFFFFFFFF)
        if conn.state.synchronized else 0,
        "delivery_rate_bps": _rate(getattr(handle, "history", None), now),
    }


def ss_snapshot(runtime: Any, *, ifname: str, addr: str, worker: int | None = None) -> dict[str, Any]:
    stack = runtime.stack
    now = runtime.now()
    conns = [connection_entry(h, now) for h in stack.connections()]
    conns.sort(key=lambda c: (c["local"], c["peer"]))
    listening = sorted(getattr(lst, "port", 0) for lst in stack.listeners())
    from pytcp.apps.status import udp_rows

    return {"interface": ifname, "addr": addr, "worker": worker,
            "cc": stack.tcp_config.congestion, "listening": listening, "connections": conns,
            "udp": udp_rows(stack)}


class ControlServer:
    """The control socket of one ``pytcp up`` process (see the module docstring)."""

    def __init__(self, path: Path, snapshot: Any) -> None:
        self.path = path
        self.snapshot = snapshot
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(self.path)
            if not stat.S_ISSOCK(st.st_mode):
                raise OSError(f"{self.path} exists and is not a socket")
            if _alive(self.path):
                raise OSError(f"{self.path} is in use by another pytcp up")
            self.path.unlink()  # stale: its process is gone
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(json.dumps(self.snapshot(), sort_keys=True).encode() + b"\n")
            await asyncio.wait_for(writer.drain(), 5.0)
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def query(path: Path, timeout: float = 5.0) -> dict[str, Any]:
    """Read one snapshot from a control socket; OSError/ValueError on failure."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        chunks = []
        total = 0
        while total < MAX_REPLY:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    data = json.loads(b"".join(chunks))
    if not isinstance(data, dict):
        raise ValueError("not a pytcp control reply")
    return data


def find_sockets(ifname: str | None, run_dir: Path | None = None) -> list[Path]:
    base = run_dir if run_dir is not None else CONTROL_DIR
    if not base.is_dir():
        return []
    out = []
    for p in sorted(base.glob("*.sock")):
        name = p.name[:-5]
        if ifname is None or name == ifname or name.rsplit(".", 1)[0] == ifname:
            out.append(p)
    return out


def _rate_text(bps: float | None) -> str:
    if bps is None:
        return ""
    for unit, div in (("Gbps", 1e9), ("Mbps", 1e6), ("Kbps", 1e3)):
        if bps >= div:
            return f" delivery_rate {bps / div:.1f}{unit}"
    return f" delivery_rate {bps:.0f}bps"


_STATES = {"ESTABLISHED": "ESTAB", "SYN-SENT": "SYN-SENT", "SYN-RECEIVED": "SYN-RECV",
           "FIN-WAIT-1": "FIN-WAIT-1", "FIN-WAIT-2": "FIN-WAIT-2", "TIME-WAIT": "TIME-WAIT",
           "CLOSE-WAIT": "CLOSE-WAIT", "LAST-ACK": "LAST-ACK", "CLOSING": "CLOSING",
           "CLOSED": "UNCONN", "LISTEN": "LISTEN"}


def format_table(snapshots: Sequence[dict[str, Any]]) -> str:
    """``ss -tni``-style text: a header, then per connection a line and an indented line of
    TCP internals."""
    lines = [f"{'State':<11}{'Recv-Q':>7} {'Send-Q':>7}  {'Local Address:Port':<22} "
             f"{'Peer Address:Port':<22}"]
    for snap in snapshots:
        if len(snapshots) > 1:
            who = snap.get("interface", "?")
            if snap.get("worker") is not None:
                who += f" worker {snap['worker']}"
            lines.append(f"# {who} ({snap.get('addr', '?')})")
        for c in snap.get("connections", []):
            lines.append(f"{_STATES.get(c['state'], c['state']):<11}{c['recv_q']:>7} "
                         f"{c['send_q']:>7}  {c['local']:<22} {c['peer']:<22}")
            parts = [c["cc"], f"rto:{c['rto_ms']:g}"]
            if c.get("rtt_ms") is not None:
                parts.append(f"rtt:{c['rtt_ms']:g}/{c.get('rttvar_ms') or 0:g}")
            parts += [f"mss:{c['mss']}", f"advmss:{c['advmss']}", f"cwnd:{c['cwnd']}"]
            if c.get("ssthresh") is not None:
                parts.append(f"ssthresh:{c['ssthresh']}")
            parts += [f"bytes_acked:{c['bytes_acked']}", f"bytes_received:{c['bytes_received']}",
                      f"unacked:{c['unacked']}", f"retrans:{c['retrans']}/{c['retrans_total']}",
                      f"snd_wnd:{c['snd_wnd']}", f"rcv_wnd:{c['rcv_wnd']}"]
            lines.append("\t " + " ".join(parts) + _rate_text(c.get("delivery_rate_bps")))
        for u in snap.get("udp", []):
            # ss -uni: UNCONN (or ESTAB when connected), bytes queued for the application.
            state = "UNCONN" if u["remote"] == "*" else "ESTAB"
            lines.append(f"{state:<11}{u['queued_bytes']:>7} {0:>7}  {u['local']:<22} "
                         f"{u['remote'] if u['remote'] != '*' else '*:*':<22}")
            lines.append(f"\t udp datagrams_in:{u['rx_datagrams']} "
                         f"datagrams_out:{u['tx_datagrams']} drops:{u['drops']}")
    return "\n".join(lines) + "\n"
