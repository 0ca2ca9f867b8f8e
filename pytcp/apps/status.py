"""The status page: a JSON-able snapshot of a stack, rendered as HTML or JSON.

``stack_status(stack)`` reads only the stack's public introspection (``connections()``,
``TcpHandle.key``, ``TcpHandle.conn.info()``, ``stats``, ``drops``); the HTTP server calls a
``StatusProvider`` (any zero-argument callable returning such a snapshot) for ``/`` and
``/status.json``.
"""

from __future__ import annotations

import enum
import html
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytcp

StatusProvider = Callable[[], dict[str, Any]]

# Columns of the connection table: (snapshot key, heading).
CONNECTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("local", "local"),
    ("remote", "remote"),
    ("state", "state"),
    ("bytes_in", "bytes in"),
    ("bytes_out", "bytes out"),
    ("retransmits", "retrans"),
    ("srtt_ms", "srtt ms"),
    ("rto_ms", "rto ms"),
    ("cwnd", "cwnd"),
    ("ssthresh", "ssthresh"),
    ("snd_wnd", "snd wnd"),
    ("rcv_wnd", "rcv wnd"),
)

_INFO_FIELDS = ("bytes_in", "bytes_out", "retransmits", "cwnd", "ssthresh", "snd_wnd", "rcv_wnd")


def _addr(value: Any) -> str:
    if isinstance(value, int):
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


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _plain(value: Any) -> Any:
    """A JSON-able form: enums by their value or name, numbers unchanged."""
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value.value, (str, int)) else value.name
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


def connection_row(handle: Any) -> dict[str, Any]:
    """One connection of the snapshot, from a ``TcpHandle``."""
    local, remote = format_endpoints(handle.key)
    info = handle.conn.info()
    row: dict[str, Any] = {"local": local, "remote": remote, "state": str(info.state)}
    for name in _INFO_FIELDS:
        row[name] = _plain(getattr(info, name, None))
    row["srtt_ms"] = _ms(getattr(info, "srtt", None))
    row["rto_ms"] = _ms(getattr(info, "rto", None))
    return row


def _counter(counter: Mapping[Any, int]) -> dict[str, int]:
    return {str(_plain(k)): int(v) for k, v in sorted(counter.items(), key=lambda kv: str(_plain(kv[0])))}


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
        "counters": _counter(getattr(stack, "stats", {})),
        "drops": _counter(getattr(stack, "drops", {})),
    }
    snapshot.update(extra)
    return snapshot


def render_json(status: Mapping[str, Any]) -> bytes:
    """``/status.json``: the snapshot, indented, UTF-8, with a final newline."""
    return (json.dumps(status, indent=2, sort_keys=True, default=str) + "\n").encode()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _table(headings: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headings) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>")
    out.append("</table>")
    return out


def render_html(status: Mapping[str, Any], refresh_seconds: int = 2) -> bytes:
    """``/``: a self-refreshing HTML page with the connection table, counters and drops."""
    title = f"pytcp {status.get('pytcp', '')} at {status.get('addr', '')}"
    parts = [
        "<!DOCTYPE html>",
        "<html><head><meta charset=\"utf-8\">",
        f"<meta http-equiv=\"refresh\" content=\"{int(refresh_seconds)}\">",
        f"<title>{html.escape(title)}</title>",
        ("<style>body{font-family:monospace}table{border-collapse:collapse}"
         "td,th{border:1px solid #999;padding:2px 6px;text-align:right}</style>"),
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    conns = list(status.get("connections", []))
    parts.append(f"<h2>connections ({len(conns)})</h2>")
    parts += _table(
        (h for _, h in CONNECTION_COLUMNS),
        ([c.get(k) for k, _ in CONNECTION_COLUMNS] for c in conns),
    )
    # Every other mapping of the snapshot (counters, drops, runtime, services...) as a table.
    for section, items in status.items():
        if section == "connections" or not isinstance(items, Mapping):
            continue
        parts.append(f"<h2>{html.escape(str(section))}</h2>")
        parts += _table(("name", "value"), sorted((str(k), v) for k, v in items.items()))
    parts.append("<p><a href=\"/status.json\">status.json</a></p>")
    parts.append("</body></html>")
    return ("\n".join(parts) + "\n").encode()
