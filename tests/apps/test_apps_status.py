"""The status snapshot from a stack's public introspection, and its HTML/JSON renderings."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pytcp.apps.status import format_endpoints, render_html, render_json, stack_status
from pytcp.drops import DropReason
from pytcp.stack import FourTuple
from pytcp.tcp.state import State


@dataclass
class Info:
    state: State
    bytes_in: int = 10
    bytes_out: int = 20
    retransmits: int = 1
    srtt: float | None = 0.0125
    rto: float = 0.2
    cwnd: int = 14600
    ssthresh: int = 1 << 30
    snd_wnd: int = 65535
    rcv_wnd: int = 1 << 20


class Conn:
    def __init__(self, info: Info) -> None:
        self._info = info

    def info(self) -> Info:
        return self._info


class Handle:
    def __init__(self, key: Any, info: Info) -> None:
        self.key = key
        self.conn = Conn(info)


class FakeStack:
    addr = (10 << 24) | (77 << 16) | 2

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter(rx_packets=5, tx_packets=4)
        self.drops: Counter[DropReason] = Counter({DropReason.BAD_CHECKSUM: 2})
        self.handles = [
            Handle(FourTuple(self.addr, 80, (10 << 24) | (77 << 16) | 1, 40001),
                   Info(State.ESTABLISHED)),
            Handle((self.addr, 80, "10.77.0.1", 40000), Info(State.SYN_RECEIVED, srtt=None)),
        ]

    def connections(self) -> list[Handle]:
        return self.handles


def test_snapshot_of_connections_counters_and_drops() -> None:
    snap = stack_status(FakeStack(), interface="pytcp0")
    assert snap["addr"] == "10.77.0.2" and snap["interface"] == "pytcp0"
    assert snap["counters"] == {"rx_packets": 5, "tx_packets": 4}
    assert snap["drops"] == {"bad_checksum": 2}
    first, second = snap["connections"]  # sorted by (local, remote)
    assert (first["remote"], first["state"], first["srtt_ms"]) == ("10.77.0.1:40000",
                                                                   "SYN-RECEIVED", None)
    assert second == {"id": "80-10.77.0.1-40001",
                      "local": "10.77.0.2:80", "remote": "10.77.0.1:40001",
                      "state": "ESTABLISHED", "bytes_in": 10, "bytes_out": 20,
                      "retransmits": 1, "srtt_ms": 12.5, "rto_ms": 200.0, "cwnd": 14600,
                      "ssthresh": 1 << 30, "snd_wnd": 65535, "rcv_wnd": 1 << 20}
    assert json.loads(render_json(snap)) == snap


def test_html_escapes_and_shows_every_section() -> None:
    snap = stack_status(FakeStack(), note={"<script>": "&"})
    page = render_html(snap).decode()
    assert ('<a href="/conn/80-10.77.0.1-40001">10.77.0.1:40001</a></td>'
            '<td class="l">ESTABLISHED</td>') in page
    assert "<td>12.5 ms</td>" in page and "<td>-</td>" in page  # srtt, and srtt unknown
    assert "<td>∞</td>" in page  # ssthresh not set yet (1 << 30 and above)
    assert "<td>14.3 KiB</td>" in page and "<td>1.00 MiB</td>" in page  # cwnd, rcv wnd
    assert "<h2>drops</h2>" in page and "bad_checksum" in page
    assert "bad TCP or ICMP checksum" in page  # every drop reason explained
    assert "&lt;script&gt;" in page and "<script>" not in page and "&amp;" in page


def test_format_endpoints_accepts_named_or_plain_tuples() -> None:
    assert format_endpoints(FourTuple(1, 2, 3, 4)) == ("0.0.0.1:2", "0.0.0.3:4")
    assert format_endpoints(("10.0.0.1", 7, "10.0.0.2", 9)) == ("10.0.0.1:7", "10.0.0.2:9")
