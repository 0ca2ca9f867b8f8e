"""The status dashboard: a JSON-able snapshot of a stack, rendered as HTML pages or JSON.

``stack_status(stack)`` reads only the stack's public introspection (``connections()``,
``TcpHandle.key``, ``TcpHandle.conn.info()``, ``stats``, ``drops``); the HTTP server calls a
``StatusProvider`` (any zero-argument callable returning such a snapshot) for ``/`` and
``/status.json``. :class:`StatusSite` is the provider ``pytcp up`` uses: it adds uptime,
version, profile, congestion control, interface and both addresses, tells the dashboard's own
HTTP clients (the browser) apart from pytcp's other connections, and serves a page per
connection (``/conn/<id>``, JSON at ``/conn/<id>.json``) with a time-sequence graph and
cwnd/SRTT/RTO over time drawn as inline SVG from the connection's bounded history
(``pytcp.stack_history``). Nothing is fetched from anywhere: no script, no font, no image.
"""

from __future__ import annotations

import enum
import html
import ipaddress
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pytcp
from pytcp.drops import DROP_DESCRIPTIONS

StatusProvider = Callable[[], dict[str, Any]]

# Columns of the connection table: (snapshot key, heading).
CONNECTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("local", "local"),
    ("remote", "remote"),
    ("state", "state"),
    ("bytes_in", "bytes in"),
    ("bytes_out", "bytes out"),
    ("retransmits", "retrans"),
    ("srtt_ms", "srtt"),
    ("rto_ms", "rto"),
    ("cwnd", "cwnd"),
    ("ssthresh", "ssthresh"),
    ("snd_wnd", "snd wnd"),
    ("rcv_wnd", "rcv wnd"),
)

COLUMN_HELP: dict[str, str] = {
    "local": "pytcp's address and port",
    "remote": "the peer's address and port",
    "state": "RFC 9293 connection state",
    "bytes_in": "payload bytes received in order",
    "bytes_out": "payload bytes sent and acknowledged",
    "retransmits": "segments sent again (RTO, fast retransmit, SACK/RACK, probes of old data)",
    "srtt_ms": "smoothed round-trip time (RFC 6298)",
    "rto_ms": "retransmission timeout (RFC 6298)",
    "cwnd": "congestion window: bytes the sender may have in flight",
    "ssthresh": "slow-start threshold (∞: not set yet, still in the first slow start)",
    "snd_wnd": "the peer's receive window (what pytcp may send beyond the ACK)",
    "rcv_wnd": "pytcp's advertised receive window",
}

# A sentence for every counter of the stack, the runtime, the link and the impairment stage.
COUNTER_DESCRIPTIONS: dict[str, str] = {
    # stack
    "rx_packets": "IP packets the stack received",
    "rx_bytes": "bytes of the packets the stack received",
    "tx_packets": "IP packets the stack sent",
    "tx_bytes": "bytes of the packets the stack sent",
    "active_opens": "connections pytcp opened (connect)",
    "passive_opens": "connections accepted from a SYN to a listener",
    "closed": "connections that reached CLOSED and were forgotten",
    "rst_sent": "RSTs sent for segments that belong to no connection (RFC 9293 3.10.7.1)",
    "time_wait_reused": "TIME-WAIT connections replaced by a new SYN (RFC 6191)",
    "time_wait_entered": "connections that reached TIME-WAIT (kept as compact entries)",
    "time_wait_expired": "TIME-WAIT entries that ended after 2*MSL",
    "time_wait_overflow": "connections closed without TIME-WAIT: max_time_wait entries held",
    # memory section (Stack.memory(), docs/robustness.md)
    "connections": "live connections (TIME-WAIT entries not counted)",
    "time_wait": "4-tuples held in TIME-WAIT (compact entries)",
    "rmem_used": "received bytes held stack-wide: unread in order plus out of order",
    "rmem_ooo": "of which out of order (reassembly queues)",
    "rmem_limit": "stack-wide cap on received bytes held (recv_memory_limit, like tcp_mem)",
    "rmem_prunes": "times out-of-order data was pruned to stay under the cap",
    "rmem_pruned_bytes": "out-of-order bytes pruned under memory pressure",
    "icmp_echo": "ICMP echo requests answered (ping)",
    "icmp_errors": "ICMP errors passed to the connection they quote",
    "icmp_unreachable_sent": "ICMP protocol unreachable sent for non-TCP/ICMP datagrams",
    "icmp_time_exceeded_sent": "ICMP time exceeded sent for fragments never completed",
    "reassembled": "IPv4 datagrams rebuilt from fragments",
    "fragments": "IPv4 fragments received",
    "gso_cut": "super-segments cut into MTU-sized packets by the stack",
    "gro_segments": "coalesced receive groups handed to the engine as one segment (GRO)",
    "gro_merged": "segments merged into those groups",
    "syncookies_sent": "SYN-ACKs carrying a SYN cookie (SYN queue full)",
    "syncookies_validated": "ACKs whose SYN cookie was valid (a connection was made)",
    "syncookies_rejected": "ACKs with a bad or expired SYN cookie",
    "history_untracked": "connections without a dashboard history (bound reached)",
    # IPv6 and UDP (issue 12)
    "icmp6_echo": "ICMPv6 echo requests answered (ping -6)",
    "icmp6_errors_sent": "ICMPv6 errors sent (port unreachable, parameter problem, ...)",
    "icmp6_errors_rate_limited": "ICMPv6 errors not sent: the rate limit had no token",
    "icmp6_errors_received": "ICMPv6 errors quoting one of our packets",
    "ipv6_nd_mld_ignored": "the kernel's neighbour discovery and MLD messages, ignored",
    "ipv6_no_next_header": "IPv6 packets with No Next Header (59): nothing to deliver",
    "reassembled6": "IPv6 packets rebuilt from fragments",
    "fragmented6": "IPv6 packets pytcp sent as fragments (larger than the path MTU)",
    "atomic_fragments": "IPv6 atomic fragments, processed whole (RFC 6946)",
    "pmtu6_lowered": "times a Packet Too Big lowered an IPv6 path MTU (RFC 8201)",
    "udp_rx": "UDP datagrams delivered to an endpoint",
    "udp_tx": "UDP datagrams sent",
    "udp_no_port": "UDP datagrams to a closed port (port unreachable sent, rate-limited)",
    "udp_rcvbuf_errors": "UDP datagrams dropped: the endpoint's receive queue was full",
    "udp_icmp_errors": "ICMP errors reported to a connected UDP endpoint",
    # runtime
    "packets_in": "packets read from the link",
    "packets_out": "packets written to the link",
    "tx_errors": "packets the link refused (buffer full): lost, TCP retransmits",
    "rx_errors": "errors reading the link",
    "callback_errors": "exceptions raised by an application callback (logged)",
    "stack_errors": "bugs caught in the stack (logged)",
    "events_unclaimed": ("events for connections nobody owns any more, e.g. the final Closed "
                         "of a connection the application already let go; harmless"),
    "timer_stalls": "timer deadlines that did not advance (re-armed 1 ms later)",
    "drops": "received packets dropped, all reasons (see the drop table)",
    "pcap_packets": "packets written to the capture",
    "flushed": "packets flushed from the impairment stage at shutdown",
    # the patterns lab (/lab/, pytcp.apps.lab)
    "echo": "lab: request/response echoes answered",
    "jobs_created": "lab: jobs created (short and long polling)",
    "jobs_evicted": "lab: finished jobs forgotten to make room (job table bound)",
    "jobs_refused": "lab: jobs refused, the table full of running jobs (503)",
    "polls": "lab: job polls answered at once (short polling)",
    "long_polls": "lab: long polls answered (job done or wait over)",
    "long_polls_refused": "lab: long polls refused at the bound (503)",
    "long_polls_waiting": "lab: long polls waiting now",
    "events_sent": "lab: server-sent events written (the never-ending stream)",
    "published": "lab: messages published to a topic (POST or WebSocket)",
    "queued": "lab: copies of published messages queued for subscribers",
    "subscribed": "lab: subscriptions opened (SSE or WebSocket)",
    "subscribers_refused": "lab: subscriptions refused at the topic/subscriber bounds (503)",
    "dropped: slow subscriber": "lab: subscribers dropped, their queue full (64 messages)",
    "streams_open": "lab: SSE and WebSocket connections streaming now",
    "streams_refused": "lab: streams refused at the bound (503)",
    "websockets": "lab: WebSocket connections accepted",
    "ws_too_big": "lab: WebSocket messages over the size bound (closed with 1009)",
    "figures_sent": "lab: connection figures answered",
    "jobs": "lab: jobs in the table now",
    "topics": "lab: topics with subscribers now",
    # link
    "tx_dropped": "packets the kernel queue could not take (EAGAIN)",
    "rx_gso": "super-packets received from the kernel (offload)",
    "tx_gso": "super-packets handed to the kernel to cut (TSO)",
    # impairment (impair_in_* / impair_out_*)
    "submitted": "packets that entered the impairment stage",
    "lost": "packets the impairment stage dropped (loss)",
    "duplicated": "packets the impairment stage sent twice",
    "corrupted": "packets the impairment stage corrupted (one byte flipped)",
    "reordered": "packets held back to arrive after the next one",
    "delayed": "packets delayed (delay/jitter)",
    "released": "packets that left the impairment stage",
}

# The kernel's counters of the TUN interface (``tun`` section; rx/tx from the kernel's side).
TUN_DESCRIPTIONS: dict[str, str] = {
    "rx_packets": "packets the kernel took from pytcp on the TUN",
    "tx_packets": "packets the kernel handed to pytcp on the TUN",
    "rx_bytes": "bytes the kernel took from pytcp",
    "tx_bytes": "bytes the kernel handed to pytcp",
    "rx_dropped": "packets from pytcp the kernel dropped",
    "tx_dropped": "packets for pytcp the kernel dropped: pytcp's queue was full",
    "rx_errors": "bad packets from pytcp (kernel's count)",
    "tx_errors": "errors handing packets to pytcp (kernel's count)",
    "txqueuelen": "the TUN's queue length toward pytcp (packets)",
}

_INFO_FIELDS = ("bytes_in", "bytes_out", "retransmits", "cwnd", "ssthresh", "snd_wnd", "rcv_wnd")
# cwnd/ssthresh at or above this are "not set" (RFC 5681: ssthresh starts arbitrarily high).
UNSET_SSTHRESH = 1 << 30


def describe_counter(name: str) -> str:
    """A sentence for a counter (impair_in_lost -> the impairment's 'lost'...)."""
    if name in COUNTER_DESCRIPTIONS:
        return COUNTER_DESCRIPTIONS[name]
    for prefix, where in (("impair_in_", "inbound"), ("impair_out_", "outbound")):
        if name.startswith(prefix) and name[len(prefix):] in COUNTER_DESCRIPTIONS:
            return f"{where} impairment: {COUNTER_DESCRIPTIONS[name[len(prefix):]]}"
    return "(no description yet)"


# --- units -----------------------------------------------------------------------------------

def human_bytes(n: Any) -> str:
    """``512 B``, ``1.5 KiB``, ``3.20 MiB``, ``1.00 GiB`` (binary units)."""
    if not isinstance(n, (int, float)):
        return "-"
    if n >= UNSET_SSTHRESH:
        return "∞"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            v = n / size
            return f"{v:.1f} {unit}" if v >= 10 else f"{v:.2f} {unit}"
    return f"{int(n)} B"


def human_ms(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "-"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.1f} ms" if ms >= 10 else f"{ms:.2f} ms"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h {m}m"
    if h:
        return f"{h}h {m}m {s}s"
    return f"{m}m {s}s" if m else f"{s}s"


# --- the snapshot ----------------------------------------------------------------------------

def _addr(value: Any) -> str:
    """An address for ``host:port`` text (IPv6 in brackets, RFC 3986)."""
    if isinstance(value, int):
        if value > 0xFFFFFFFF:
            return f"[{ipaddress.IPv6Address(value)}]"
        return str(ipaddress.IPv4Address(value))
    return str(value)


def format_endpoints(key: Any) -> tuple[str, str]:
    """``("10.77.0.2:80", "10.77.0.1:41234")`` from a stack's ``FourTuple``.

    Accepts a named tuple with ``local_addr local_port remote_addr remote_port`` fields or a
    plain 4-tuple in that order; addresses may be ints or strings.
    """
    if hasattr(key, "local_addr"):
        la, lp, ra, rp = key.local_addr, key.local_port, key.remote_addr, key.remote_port
    else:
        la, lp, ra, rp = tuple(key)
    return f"{_addr(la)}:{lp}", f"{_addr(ra)}:{rp}"


def connection_id(key: Any) -> str:
    """The URL id of a connection: ``<local port>-<remote address>-<remote port>``."""
    local, remote = format_endpoints(key)
    remote = remote.replace("[", "").replace("]", "")
    return f"{local.rsplit(':', 1)[1]}-{remote.replace(':', '-')}"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _plain(value: Any) -> Any:
    """A JSON-able form: enums by their value or name, numbers unchanged."""
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value.value, (str, int)) else value.name
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


def _info_row(key: Any, info: Any) -> dict[str, Any]:
    local, remote = format_endpoints(key)
    row: dict[str, Any] = {"id": connection_id(key), "local": local, "remote": remote,
                           "state": str(info.state)}
    for name in _INFO_FIELDS:
        row[name] = _plain(getattr(info, name, None))
    row["srtt_ms"] = _ms(getattr(info, "srtt", None))
    row["rto_ms"] = _ms(getattr(info, "rto", None))
    return row


def connection_row(handle: Any) -> dict[str, Any]:
    """One connection of the snapshot, from a ``TcpHandle``."""
    return _info_row(handle.key, handle.conn.info())


def _counter(counter: Mapping[Any, int]) -> dict[str, int]:
    return {str(_plain(k)): int(v) for k, v in sorted(counter.items(), key=lambda kv: str(_plain(kv[0])))}


def udp_rows(stack: Any) -> list[dict[str, Any]]:
    """One row per bound UDP endpoint: local and remote (``*`` unconnected), datagrams in and
    out, queued datagrams and bytes, receive-buffer drops."""
    rows = []
    for ep in getattr(stack, "udp_endpoints", list)():
        local = "*" if ep.local_addr is None else _addr(ep.local_addr)
        remote = "*" if ep.remote is None else f"{_addr(ep.remote[0])}:{ep.remote[1]}"
        rows.append({"local": f"{local}:{ep.port}", "remote": remote,
                     "rx_datagrams": ep.rx_datagrams, "tx_datagrams": ep.tx_datagrams,
                     "queued": len(ep.queue), "queued_bytes": ep.queued_bytes,
                     "drops": ep.drops})
    rows.sort(key=lambda r: str(r["local"]))
    return rows


def stack_status(stack: Any, **extra: Any) -> dict[str, Any]:
    """A snapshot of ``stack``: its address, live connections, packet counters and drops.

    ``extra`` key/values (e.g. ``services={"http": 80}``) are added at the top level.
    """
    connections = [connection_row(h) for h in stack.connections()]
    connections.sort(key=lambda r: (r["local"], r["remote"]))
    snapshot: dict[str, Any] = {
        "pytcp": pytcp.__version__,
        "addr": _addr(getattr(stack, "addr", "")),
        "connections": connections,
        "udp": udp_rows(stack),
        "counters": _counter(getattr(stack, "stats", {})),
        "drops": _counter(getattr(stack, "drops", {})),
    }
    memory = getattr(stack, "memory", None)
    if callable(memory):  # receive memory, TIME-WAIT entries (docs/robustness.md)
        snapshot["memory"] = memory()
    snapshot.update(extra)
    return snapshot


def render_json(status: Mapping[str, Any]) -> bytes:
    """``/status.json``: the snapshot, indented, UTF-8, with a final newline."""
    return (json.dumps(status, indent=2, sort_keys=True, default=str) + "\n").encode()


# --- HTML ------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1em 2em;color:#222;background:#fdfdfd}
h1{font-size:1.4em;margin:.2em 0} h2{font-size:1.1em;margin:1.2em 0 .3em}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#eee} td.l,th.l{text-align:left}
abbr{text-decoration:underline dotted;cursor:help}
.info td{text-align:left} .muted{color:#777} .legend td{text-align:left;max-width:60em}
.zero{color:#999} .grid{display:flex;flex-wrap:wrap;gap:2em}
svg{background:#fff;border:1px solid #ccc} svg text{font:11px sans-serif;fill:#333}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return _e(value)


def _table(headings: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    out = ["<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headings) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>")
    out.append("</table>")
    return out


def _page(title: str, body: list[str], refresh_seconds: int | None) -> bytes:
    head = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">"]
    if refresh_seconds:
        head.append(f"<meta http-equiv=\"refresh\" content=\"{int(refresh_seconds)}\">")
    head += [f"<title>{_e(title)}</title>", f"<style>{_STYLE}</style>", "</head><body>"]
    return ("\n".join(head + body + ["</body></html>"]) + "\n").encode()


def _conn_cells(c: Mapping[str, Any], link: bool) -> str:
    cells = []
    for key, _ in CONNECTION_COLUMNS:
        v = c.get(key)
        if key in ("bytes_in", "bytes_out", "cwnd", "ssthresh", "snd_wnd", "rcv_wnd"):
            text = human_bytes(v)
        elif key in ("srtt_ms", "rto_ms"):
            text = human_ms(v)
        else:
            text = "-" if v is None else str(v)
        cls = " class=\"l\"" if key in ("local", "remote", "state") else ""
        if key == "remote" and link and c.get("id"):
            cells.append(f"<td{cls}><a href=\"/conn/{_e(c['id'])}\">{_e(text)}</a></td>")
        else:
            cells.append(f"<td{cls}>{_e(text)}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def _conn_table(conns: Sequence[Mapping[str, Any]], link: bool) -> list[str]:
    if not conns:
        return ["<p class=\"muted\">none</p>"]
    head = "".join(
        f"<th{' class=l' if k in ('local', 'remote', 'state') else ''}>"
        f"<abbr title=\"{_e(COLUMN_HELP.get(k, ''))}\">{_e(h)}</abbr></th>"
        for k, h in CONNECTION_COLUMNS)
    return ["<table>", f"<tr>{head}</tr>", *(_conn_cells(c, link) for c in conns), "</table>"]


def _counter_table(items: Mapping[str, Any], describe: Callable[[str], str]) -> list[str]:
    out = ["<table class=\"legend\">",
           "<tr><th class=\"l\">name</th><th>value</th><th class=\"l\">what it counts</th></tr>"]
    for name, value in sorted(items.items()):
        sentence = describe(str(name))
        cls = " class=\"zero\"" if value == 0 else ""
        shown = _cell(value)
        if str(name).endswith("_bytes") and isinstance(value, int) and value >= 1024:
            shown += f" ({_e(human_bytes(value))})"
        out.append(f"<tr{cls}><td class=\"l\"><abbr title=\"{_e(sentence)}\">{_e(name)}</abbr>"
                   f"</td><td>{shown}</td><td class=\"l\">{_e(sentence)}</td></tr>")
    out.append("</table>")
    return out


def _describe_tun(name: str) -> str:
    return TUN_DESCRIPTIONS.get(name, "(no description yet)")


def _describe_drop(name: str) -> str:
    return DROP_DESCRIPTIONS.get(name, "(no description yet)")


_INFO_ROWS = (("version", "pytcp"), ("uptime", "uptime"), ("interface", "interface"),
              ("pytcp's address", "addr"), ("kernel side", "host_addr"),
              ("profile", "profile"), ("congestion control", "cc"), ("services", "services"),
              ("capture", "pcap"), ("impairment", "impair"))


def render_html(status: Mapping[str, Any], refresh_seconds: int = 2) -> bytes:
    """``/``: the dashboard: who and where pytcp is, its connections (pytcp's own apart from
    the dashboard's HTTP clients), counters and drop reasons each explained in a sentence."""
    title = f"pytcp {status.get('pytcp', '')} at {status.get('addr', '')}"
    body = [f"<h1>{_e(title)}</h1>", "<table class=\"info\">"]
    for label, key in _INFO_ROWS:
        if key not in status:
            continue
        v = status[key]
        if key == "uptime":
            v = human_duration(float(v))
        elif isinstance(v, Mapping):
            v = " ".join(f"{k}={x}" for k, x in v.items()) or "-"
        body.append(f"<tr><th class=\"l\">{_e(label)}</th><td>{_e(v)}</td></tr>")
    body.append("</table>")
    conns = list(status.get("connections", []))
    own = [c for c in conns if c.get("role") != "dashboard"]
    dash = [c for c in conns if c.get("role") == "dashboard"]
    body.append(f"<h2>connections ({len(own)})</h2>")
    body += _conn_table(own, link=True)
    udp = list(status.get("udp", []))
    if udp:
        body.append(f"<h2>UDP endpoints ({len(udp)})</h2><table><tr><th>local</th>"
                    "<th>remote</th><th>datagrams in</th><th>datagrams out</th>"
                    "<th>queued</th><th>drops</th></tr>")
        for u in udp:
            body.append(f"<tr><td>{_e(u['local'])}</td><td>{_e(u['remote'])}</td>"
                        f"<td>{_e(u['rx_datagrams'])}</td><td>{_e(u['tx_datagrams'])}</td>"
                        f"<td>{_e(u['queued'])}</td><td>{_e(u['drops'])}</td></tr>")
        body.append("</table>")
    if "recently_closed" in status:
        closed = list(status["recently_closed"])
        body.append(f"<h2>recently closed ({len(closed)})</h2>")
        body += _conn_table(closed, link=True)
    if dash or "dashboard_port" in status:
        body.append(f"<h2>dashboard clients ({len(dash)}) <span class=\"muted\">— the HTTP "
                    "connections serving this page, e.g. your browser's</span></h2>")
        body += _conn_table(dash, link=True)
    sections: list[tuple[str, Mapping[str, Any], Callable[[str], str]]] = []
    for section, items in status.items():
        if section in ("connections", "recently_closed", "services", "udp") or \
                not isinstance(items, Mapping):
            continue
        sections.append((str(section), items,
                         _describe_drop if section == "drops" else _describe_tun
                         if section == "tun" else describe_counter))
    for section, items, describe in sections:
        body.append(f"<h2>{_e(section)}</h2>")
        body += _counter_table(items, describe)
    lab = " · <a href=\"/lab/\">the patterns lab</a>" if "lab" in status else ""
    body.append(f"<p><a href=\"/status.json\">status.json</a>{lab}</p>")
    return _page(title, body, refresh_seconds)


# --- SVG graphs ------------------------------------------------------------------------------

_W, _H = 760, 260
_ML, _MR, _MT, _MB = 70, 20, 34, 34


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = mag
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            step = m * mag
            break
    first = math.floor(lo / step) * step
    out = []
    for i in range(50):
        v = round(first + i * step, 12)
        if v > hi + 1e-9:
            break
        if v >= lo - 1e-9:
            out.append(v)
    return out


def svg_plot(title: str, series: Sequence[tuple[str, str, Sequence[tuple[float, float]], str]],
             *, y_label: str, y_fmt: Callable[[float], str],
             marks: Sequence[tuple[float, float, float]] = (), mark_color: str = "#d00",
             binary: bool = False) -> str:
    """An inline SVG line chart. ``series``: (name, color, points (x seconds, y), style:
    "line" or "step"); ``marks``: (x, y0, y1) vertical ticks (e.g. retransmissions);
    ``binary``: y ticks at round numbers of KiB/MiB (for bytes)."""
    xs = [x for _, _, pts, _ in series for x, _ in pts] + [m[0] for m in marks]
    ys = [y for _, _, pts, _ in series for _, y in pts] + [v for m in marks for v in m[1:]]
    parts = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{_W}\" height=\"{_H}\" "
             f"viewBox=\"0 0 {_W} {_H}\" role=\"img\" aria-label=\"{_e(title)}\">",
             f"<text x=\"{_ML}\" y=\"13\" font-weight=\"bold\">{_e(title)}</text>"]
    if not xs:
        parts.append(f"<text x=\"{_W // 2}\" y=\"{_H // 2}\">no samples yet</text></svg>")
        return "".join(parts)
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys)
    if x1 - x0 < 1e-6:
        x1 = x0 + 1e-3
    if y1 - y0 < 1e-9:
        y1 = y0 + 1.0
    pw, ph = _W - _ML - _MR, _H - _MT - _MB

    def px(x: float) -> float:
        return _ML + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return _MT + ph - (y - y0) / (y1 - y0) * ph

    parts.append(f"<rect x=\"{_ML}\" y=\"{_MT}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" "
                 "stroke=\"#999\"/>")
    unit = 1.0
    if binary:
        unit = float(1 << 20) if y1 >= 1 << 20 else float(1 << 10) if y1 >= 1 << 10 else 1.0
    for t in (v * unit for v in _ticks(y0 / unit, y1 / unit)):
        y = py(t)
        parts.append(f"<line x1=\"{_ML}\" x2=\"{_ML + pw}\" y1=\"{y:.1f}\" y2=\"{y:.1f}\" "
                     "stroke=\"#eee\"/>")
        parts.append(f"<text x=\"{_ML - 4}\" y=\"{y + 4:.1f}\" text-anchor=\"end\">"
                     f"{_e(y_fmt(t))}</text>")
    for t in _ticks(x0, x1):
        x = px(t)
        parts.append(f"<line x1=\"{x:.1f}\" x2=\"{x:.1f}\" y1=\"{_MT}\" y2=\"{_MT + ph}\" "
                     "stroke=\"#eee\"/>")
        parts.append(f"<text x=\"{x:.1f}\" y=\"{_MT + ph + 14}\" text-anchor=\"middle\">"
                     f"{t:.3g}</text>")
    parts.append(f"<text x=\"{_ML + pw / 2:.0f}\" y=\"{_H - 4}\" text-anchor=\"middle\">"
                 f"time (s)</text>")
    parts.append(f"<text x=\"12\" y=\"{_MT + ph / 2:.0f}\" text-anchor=\"middle\" "
                 f"transform=\"rotate(-90 12 {_MT + ph / 2:.0f})\">{_e(y_label)}</text>")
    lx = _ML + 8
    for name, color, pts, style in series:
        if not pts:
            continue
        coords: list[str] = []
        prev_y: float | None = None
        for x, y in pts:
            if style == "step" and prev_y is not None:
                coords.append(f"{px(x):.1f},{py(prev_y):.1f}")
            coords.append(f"{px(x):.1f},{py(y):.1f}")
            prev_y = y
        parts.append(f"<polyline class=\"series\" data-name=\"{_e(name)}\" fill=\"none\" "
                     f"stroke=\"{color}\" stroke-width=\"1.5\" points=\"{' '.join(coords)}\"/>")
        parts.append(f"<text x=\"{lx}\" y=\"{_MT - 5}\" fill=\"{color}\" "
                     f"style=\"fill:{color}\">{_e(name)}</text>")
        lx += 9 * len(name) + 16
    if marks:
        for x, ya, yb in marks:
            parts.append(f"<line class=\"mark\" x1=\"{px(x):.1f}\" x2=\"{px(x):.1f}\" "
                         f"y1=\"{py(ya):.1f}\" y2=\"{py(yb) - 3:.1f}\" stroke=\"{mark_color}\" "
                         "stroke-width=\"3\"/>")
        parts.append(f"<text x=\"{lx}\" y=\"{_MT - 5}\" style=\"fill:{mark_color}\">"
                     "retransmitted</text>")
    parts.append("</svg>")
    return "".join(parts)


def _rel(seq: int, base: int) -> int:
    return (seq - base) & 0xFFFFFFFF


def history_detail(key: Any, info: Any, history: Any, *, role: str = "") -> dict[str, Any]:
    """A JSON-able view of one connection's history (relative sequence numbers)."""
    row = _info_row(key, info)
    if role:
        row["role"] = role
    detail: dict[str, Any] = {"connection": row, "samples": [], "marks": []}
    if history is None:
        return detail
    iss = history.iss
    irs = history.irs if history.irs is not None else 0
    t0 = history.created
    for s in history.samples:
        detail["samples"].append({
            "t": round(s.t - t0, 6), "state": s.state, "una": _rel(s.snd_una, iss),
            "nxt": _rel(s.snd_nxt, iss), "max": _rel(s.snd_max, iss),
            "wnd_edge": _rel(s.snd_una, iss) + s.snd_wnd, "cwnd": s.cwnd,
            "ssthresh": s.ssthresh, "srtt_ms": _ms(s.srtt), "rto_ms": _ms(s.rto),
            "rcv_nxt": _rel(s.rcv_nxt, irs), "rcv_edge": _rel(s.rcv_nxt, irs) + s.rcv_wnd,
            "bytes_out": s.bytes_out, "bytes_in": s.bytes_in, "retransmits": s.retransmits})
    for m in history.marks:
        detail["marks"].append({"t": round(m.t - t0, 6), "seq": _rel(m.seq, iss),
                                "length": m.length, "reason": m.reason})
    return detail


def render_connection_html(detail: Mapping[str, Any]) -> bytes:
    """``/conn/<id>``: one connection with its time-sequence graph (tcptrace style: data sent,
    ACK and receive-window lines, retransmissions marked), the received data, and cwnd,
    ssthresh, SRTT and RTO over time."""
    c = detail["connection"]
    title = f"{c['local']} ⇄ {c['remote']} ({c['state']})"
    samples = detail.get("samples", [])
    marks = [m for m in detail.get("marks", []) if "retransmi" in m["reason"]
             or "probe" in m["reason"]]
    body = [f"<p><a href=\"/\">← dashboard</a> · <a href=\"/conn/{_e(c['id'])}.json\">json</a>"
            "</p>", f"<h1>{_e(title)}</h1>"]
    body += _conn_table([c], link=False)
    body.append(f"<p class=\"muted\">{len(samples)} samples, {len(detail.get('marks', []))} "
                "marked segments (bounded rings: the oldest fall off)</p>")
    sent = [(s["t"], float(s["max"])) for s in samples]
    nxt = [(s["t"], float(s["nxt"])) for s in samples]
    acked = [(s["t"], float(s["una"])) for s in samples]
    edge = [(s["t"], float(s["wnd_edge"])) for s in samples]
    rmarks = [(m["t"], float(m["seq"]), float(m["seq"] + max(m["length"], 1))) for m in marks]
    body.append("<div class=\"graphs\">")
    body.append("<h2>sent: time-sequence graph</h2>")
    body.append(svg_plot(
        "sequence numbers over time (relative to our ISN)",
        [("highest sent", "#1f5fbf", sent, "step"), ("next to send", "#7fa7e0", nxt, "step"),
         ("acknowledged", "#1a8f3a", acked, "step"),
         ("receive window edge", "#d08c00", edge, "step")],
        y_label="bytes", y_fmt=human_bytes, binary=True, marks=rmarks))
    got = [(s["t"], float(s["rcv_nxt"])) for s in samples]
    redge = [(s["t"], float(s["rcv_edge"])) for s in samples]
    if any(s["bytes_in"] for s in samples):
        body.append("<h2>received</h2>")
        body.append(svg_plot(
            "bytes received in order, and the window pytcp advertised",
            [("received (RCV.NXT)", "#1a8f3a", got, "step"),
             ("advertised window edge", "#d08c00", redge, "step")],
            y_label="bytes", y_fmt=human_bytes, binary=True))
    body.append("<h2>congestion window</h2>")
    cwnd = [(s["t"], float(s["cwnd"])) for s in samples]
    ssth = [(s["t"], float(s["ssthresh"])) for s in samples if s["ssthresh"] < UNSET_SSTHRESH]
    body.append(svg_plot("cwnd and ssthresh", [("cwnd", "#1f5fbf", cwnd, "step"),
                                               ("ssthresh", "#b03060", ssth, "step")],
                         y_label="bytes", y_fmt=human_bytes, binary=True))
    body.append("<h2>round-trip time and RTO</h2>")
    srtt = [(s["t"], float(s["srtt_ms"])) for s in samples if s["srtt_ms"] is not None]
    rto = [(s["t"], float(s["rto_ms"])) for s in samples if s["rto_ms"] is not None]
    body.append(svg_plot("SRTT and RTO (RFC 6298)", [("srtt", "#1a8f3a", srtt, "line"),
                                                    ("rto", "#b03060", rto, "step")],
                         y_label="ms", y_fmt=lambda v: f"{v:g}"))
    body.append("</div>")
    if detail.get("marks"):
        body.append("<h2>segments sent for a reason (latest last)</h2>")
        body += _table(("t (s)", "seq", "length", "why"),
                       ((f"{m['t']:.3f}", m["seq"], m["length"], m["reason"])
                        for m in list(detail["marks"])[-40:]))
    return _page(f"pytcp: {title}", body, refresh_seconds=2)


# --- the provider pytcp up uses ----------------------------------------------------------------

class StatusSite:
    """The dashboard of a running stack: ``site()`` is the snapshot (a StatusProvider);
    ``page(segments)`` serves ``/conn/<id>`` and ``/conn/<id>.json``.

    ``runtime``: a :class:`pytcp.runtime.Runtime` (its stack gets connection histories).
    ``info``: shown at the top (interface, host_addr, profile, cc, services, pcap, impair...).
    ``dashboard_ports``: local ports whose connections are the dashboard's HTTP clients.
    ``dynamic``: called for each snapshot, its items added (e.g. the link's counters).
    """

    def __init__(self, runtime: Any, *, info: Mapping[str, Any] | None = None,
                 dashboard_ports: Iterable[int] = (),
                 clock: Callable[[], float] = time.monotonic,
                 dynamic: Callable[[], dict[str, Any]] | None = None) -> None:
        self.runtime = runtime
        self.stack = runtime.stack
        self.info = dict(info or {})
        self.dynamic = dynamic
        self.dashboard_ports = frozenset(dashboard_ports)
        self.clock = clock
        self.started = clock()
        enable = getattr(self.stack, "enable_history", None)
        if enable is not None:
            enable()

    def _role(self, key: Any) -> str:
        return "dashboard" if key.local_port in self.dashboard_ports else "pytcp"

    def __call__(self) -> dict[str, Any]:
        snap = stack_status(self.stack, **self.info)
        roles = {connection_id(h.key): self._role(h.key) for h in self.stack.connections()}
        for row in snap["connections"]:
            row["role"] = roles.get(row["id"], "pytcp")
        snap["uptime"] = round(self.clock() - self.started, 3)
        if self.dashboard_ports:
            snap["dashboard_port"] = min(self.dashboard_ports)
        closed = getattr(self.stack, "closed_history", None)
        if closed is not None:  # (pytcp's own: the dashboard's requests are not kept here)
            snap["recently_closed"] = [
                {**_info_row(k, inf), "role": "pytcp"} for k, inf, _ in reversed(closed)
                if self._role(k) != "dashboard"]
        snap["runtime"] = self.runtime.stats()
        if self.dynamic is not None:
            snap.update(self.dynamic())
        return snap

    def find(self, conn_id: str) -> dict[str, Any] | None:
        for h in self.stack.connections():
            if connection_id(h.key) == conn_id:
                return history_detail(h.key, h.conn.info(), getattr(h, "history", None),
                                      role=self._role(h.key))
        for k, inf, hist in reversed(getattr(self.stack, "closed_history", ())):
            if connection_id(k) == conn_id:
                return history_detail(k, inf, hist, role=self._role(k))
        return None

    def page(self, segments: Sequence[str]) -> tuple[str, bytes] | None:
        """(content type, body) for a path below ``/``, or None (404)."""
        if len(segments) != 2 or segments[0] != "conn":
            return None
        name = segments[1]
        as_json = name.endswith(".json")
        detail = self.find(name[:-5] if as_json else name)
        if detail is None:
            return None
        if as_json:
            return "application/json", render_json(detail)
        return "text/html; charset=utf-8", render_connection_html(detail)
