"""The dashboard (StatusSite) and the ``pytcp ss`` control socket over pytcp itself: two
stacks joined in memory, an echo transfer with seeded loss, then the pages and the socket."""

from __future__ import annotations

import asyncio
import functools
import json
import random
import re
from pathlib import Path
from typing import Any

from apps_helpers import read_response, run

from tests.streamtools import exchange

from pytcp.api.aio import open_connection, start_server
from pytcp.api.pair import ADDR_A, ADDR_B, memory_pair
from pytcp.apps.echo import serve_echo
from pytcp.apps.http_server import serve_http
from pytcp.apps.ss import ControlServer, format_table, query, ss_snapshot
from pytcp.apps.status import StatusSite, describe_counter
from pytcp.drops import DROP_DESCRIPTIONS
from pytcp.stack_history import SAMPLES


async def _get(a: Any, path: str) -> tuple[int, bytes]:
    reader, writer = await open_connection(ADDR_B, 80, runtime=a)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
    status, _, body = await read_response(reader)
    writer.close()
    return status, body


def _points(svg: str) -> list[int]:
    """Number of points of each polyline of an SVG."""
    return [len(p.split()) for p in re.findall(r'<polyline[^>]* points="([^"]*)"', svg)]


def test_dashboard_pages_graph_a_lossy_transfer_and_tell_the_browser_apart() -> None:
    payload = random.Random(11).randbytes(400_000)
    clock = [100.0]

    async def body() -> None:
        async with memory_pair(seed=2, impair_a_in="loss=0.03") as (a, b):
            site = StatusSite(b, dashboard_ports=[80], clock=lambda: clock[0],
                              info={"interface": "mem0", "host_addr": "10.0.0.1/24",
                                    "profile": "linux", "cc": "cubic",
                                    "services": {"http": 80, "echo": 7}})
            await start_server(functools.partial(serve_http, root=None, status_provider=site),
                               80, runtime=b)
            await start_server(serve_echo, 7, runtime=b)
            reader, writer = await open_connection(ADDR_B, 7, runtime=a)
            assert await exchange(reader, writer, payload, 50_000) == payload
            echo_port = writer.get_extra_info("sockname")[1]
            echo_id = f"7-{ADDR_A}-{echo_port}"
            clock[0] += 3725.0  # 1 h 2 min 5 s later
            status, page = await _get(a, "/")
            assert status == 200
            html = page.decode()
            for text in ("<th class=\"l\">uptime</th><td>1h 2m 5s</td>",
                         "<th class=\"l\">kernel side</th><td>10.0.0.1/24</td>",
                         "<th class=\"l\">pytcp&#x27;s address</th><td>10.0.0.2</td>",
                         "<th class=\"l\">profile</th><td>linux</td>",
                         "<th class=\"l\">congestion control</th><td>cubic</td>",
                         "<th class=\"l\">version</th><td>0.1.0</td>"):
                assert text in html, text
            own, dash = html.split("<h2>dashboard clients")
            assert f'href="/conn/{echo_id}"' in own  # pytcp's own (echo) connection...
            assert f'href="/conn/{echo_id}"' not in dash
            assert re.search(r'href="/conn/80-10\.0\.0\.1-\d+"', dash)  # ...the browser's apart
            # Every counter shown is explained (a tooltip and a legend sentence).
            for name in re.findall(r'<td class="l"><abbr title="[^"]*">([a-z0-9_]+)</abbr>', html):
                assert describe_counter(name) != "(no description yet)" or \
                    name in DROP_DESCRIPTIONS, name
            snap = site()
            assert snap["uptime"] == 3725.0 and snap["dashboard_port"] == 80
            # The connection page: time-sequence graph with retransmissions marked, cwnd,
            # srtt and rto, as inline SVG (nothing fetched).
            status, page = await _get(a, f"/conn/{echo_id}")
            assert status == 200
            html = page.decode()
            assert "<script" not in html and "src=" not in html and "@import" not in html
            svgs = re.findall(r"<svg.*?</svg>", html, re.S)
            assert len(svgs) == 4  # sent, received, cwnd, srtt/rto
            assert all(n > 10 for n in _points(svgs[0])), _points(svgs[0])
            assert svgs[0].count('class="mark"') > 0  # retransmissions (3% loss)
            assert all(n > 5 for n in _points(svgs[3]))
            status, data = await _get(a, f"/conn/{echo_id}.json")
            detail = json.loads(data)
            samples = detail["samples"]
            assert 10 < len(samples) <= SAMPLES
            assert samples[-1]["una"] >= len(payload)  # relative to our ISN (+1 for the SYN)
            assert any("retransmi" in m["reason"] or "probe" in m["reason"]
                       for m in detail["marks"])
            assert (await _get(a, "/conn/7-10.0.0.9-1"))[0] == 404
            assert (await _get(a, "/conn"))[0] == 404
            writer.close()

    run(body())


def test_the_control_socket_serves_the_ss_table(tmp_path: Path) -> None:
    async def body() -> None:
        async with memory_pair(seed=3) as (a, b):
            b.stack.enable_history()
            await start_server(serve_echo, 7, runtime=b)
            reader, writer = await open_connection(ADDR_B, 7, runtime=a)
            data = random.Random(1).randbytes(100_000)
            writer.write(data)  # (the connection stays open: no half-close)
            assert await reader.readexactly(len(data)) == data
            path = tmp_path / "run" / "mem0.sock"
            server = ControlServer(path, functools.partial(ss_snapshot, b, ifname="mem0",
                                                           addr=ADDR_B))
            await server.start()
            assert path.stat().st_mode & 0o777 == 0o600
            try:
                snap = await asyncio.get_running_loop().run_in_executor(None, query, path)
            finally:
                await server.close()
            assert not path.exists()
            port = writer.get_extra_info("sockname")[1]
            (conn,) = snap["connections"]
            assert (conn["state"], conn["local"], conn["peer"]) == (
                "ESTABLISHED", f"{ADDR_B}:7", f"{ADDR_A}:{port}")
            assert conn["bytes_acked"] == conn["bytes_received"] == len(data)
            assert conn["cc"] == "cubic" and conn["mss"] > 0 and conn["cwnd"] >= 1
            assert snap["listening"] == [7]
            text = format_table([snap])
            first, second, third = text.splitlines()
            assert first.split() == ["State", "Recv-Q", "Send-Q", "Local", "Address:Port",
                                     "Peer", "Address:Port"]
            assert second.split() == ["ESTAB", "0", "0", f"{ADDR_B}:7", f"{ADDR_A}:{port}"]
            assert third.startswith("\t cubic rto:") and f"bytes_acked:{len(data)}" in third
            writer.close()

    run(body())
