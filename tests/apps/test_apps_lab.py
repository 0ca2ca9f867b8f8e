"""The patterns lab (issue 13) over pytcp itself, in virtual time (``run_virtual``: the loop's
clock jumps over idle waits, so 2 s jobs and 1 s event ticks take no real time): two stacks
joined in memory, the lab served by ``serve_http(..., lab=Lab())`` on one, clients on the
other — echo, jobs with short and
long polling, the never-ending event stream, pub/sub over SSE and over WebSocket (a wsproto
client), the bounds (slow subscriber dropped with a counted reason, job table, streams) and
the per-connection figures, checked against what the client's own stack counted."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from apps_helpers import read_response, run_virtual
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from pytcp.api.aio import open_connection, start_server
from pytcp.api.pair import ADDR_A, ADDR_B, memory_pair
from pytcp.apps.http_server import serve_http
from pytcp.apps.lab import Lab
from pytcp.apps.lab.http import page


async def _lab_pair(lab: Lab) -> Any:
    pair = memory_pair(seed=7)
    a, b = await pair.__aenter__()
    await start_server(functools.partial(serve_http, root=None, lab=lab), 80, runtime=b)
    return pair, a


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str,
                   target: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: b\r\nContent-Length: {len(body)}\r\n\r\n"
                 .encode() + body)
    return await read_response(reader)


async def _sse_events(reader: asyncio.StreamReader, n: int) -> list[dict[str, str]]:
    """Read ``n`` SSE events (fields of each) from a chunked event stream."""
    events: list[dict[str, str]] = []
    buf = b""
    while len(events) < n:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        assert size > 0
        buf += (await reader.readexactly(size + 2))[:-2]
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            ev: dict[str, str] = {}
            for line in block.decode().split("\n"):
                k, _, v = line.partition(": ")
                if k and not k.startswith(":"):
                    ev[k] = ev[k] + "\n" + v if k in ev else v
            if "data" in ev:
                events.append(ev)
    return events


def test_echo_and_the_figures_match_what_the_client_counted() -> None:
    async def body() -> None:
        lab = Lab()
        pair, a = await _lab_pair(lab)
        try:
            reader, writer = await open_connection(ADDR_B, 80, runtime=a)
            port = writer.get_extra_info("sockname")[1]
            for i in range(3):
                status, headers, data = await _request(reader, writer, "GET",
                                                       f"/lab/api/echo?msg=hello%20{i}")
                assert status == 200 and headers["content-type"] == "application/json"
                got = json.loads(data)
                assert got["msg"] == f"hello {i}"
                conn = got["conn"]
                assert conn["id"] == f"80-{ADDR_A}-{port}" and conn["client_port"] == port
                assert conn["state"] == "ESTABLISHED" and conn["open"]
                assert conn["requests"] == i + 1
            await asyncio.sleep(0.5)  # the client's delayed ACK has left
            r2, w2 = await open_connection(ADDR_B, 80, runtime=a)
            status, _, data = await _request(r2, w2, "GET", f"/lab/api/conns?port={port}")
            (fig,) = json.loads(data)["conns"]
            mine = writer.get_extra_info("pytcp_handle").counters
            # Lossless link: what one side sent is what the other received, to the byte.
            assert (fig["segs_in"], fig["wire_in"], fig["data_in"]) == (
                mine.segs_out, mine.wire_out, mine.data_out)
            assert (fig["segs_out"], fig["wire_out"], fig["data_out"]) == (
                mine.segs_in, mine.wire_in, mine.data_in)
            assert fig["segs_in"] >= 5  # SYN, ACK, three requests
            writer.close()
            w2.close()
        finally:
            await pair.__aexit__(None, None, None)

    run_virtual(body())


def test_jobs_short_and_long_polling() -> None:
    async def body() -> None:
        lab = Lab()
        pair, a = await _lab_pair(lab)
        try:
            reader, writer = await open_connection(ADDR_B, 80, runtime=a)
            status, headers, data = await _request(reader, writer, "POST", "/lab/api/jobs")
            job = json.loads(data)
            assert status == 202 and job["state"] == "pending" and job["seconds"] == 2.0
            assert headers["location"] == f"/lab/api/jobs/{job['id']}"
            status, _, data = await _request(reader, writer, "GET", f"/lab/api/jobs/{job['id']}")
            assert status == 200 and json.loads(data)["state"] == "pending"
            t0 = asyncio.get_running_loop().time()
            status, _, data = await _request(reader, writer, "GET",
                                             f"/lab/api/jobs/{job['id']}?wait=5")
            waited = asyncio.get_running_loop().time() - t0
            got = json.loads(data)
            # Virtual time: answered when the job finished, 2 s after it was created.
            assert got["state"] == "done" and 1.9 < waited <= 2.0 and 1.9 < got["waited"] <= 2.0
            # A long poll on a job that does not finish in time answers after ?wait.
            _, _, data = await _request(reader, writer, "POST", "/lab/api/jobs?seconds=30")
            jid = json.loads(data)["id"]
            t0 = asyncio.get_running_loop().time()
            _, _, data = await _request(reader, writer, "GET", f"/lab/api/jobs/{jid}?wait=5")
            assert json.loads(data)["state"] == "pending"
            assert 5.0 <= asyncio.get_running_loop().time() - t0 < 5.1
            for target, want in (("/lab/api/jobs/999", 404), ("/lab/api/jobs?seconds=-1", 400),
                                 ("/lab/api/jobs?seconds=abc", 400)):
                method = "POST" if "?" in target else "GET"
                assert (await _request(reader, writer, method, target))[0] == want
            writer.close()
        finally:
            await pair.__aexit__(None, None, None)

    run_virtual(body())


def test_job_table_is_bounded() -> None:
    async def body() -> None:
        lab = Lab(max_jobs=3)
        running = [lab.create_job(30) for _ in range(3)]
        assert all(running) and lab.create_job(30) is None
        assert lab.stats["jobs_refused"] == 1
        assert lab.create_job(0) is None  # full of running jobs still
        for j in running:
            assert j is not None and j.handle is not None
            j.handle.cancel()
            j.done.set()
        assert lab.create_job(0) is not None and lab.stats["jobs_evicted"] == 1
        assert len(lab.jobs) == 3

    run_virtual(body())


def test_event_stream_sends_small_events_and_names_its_connection() -> None:
    async def body() -> None:
        lab = Lab()  # an event per second: in virtual time, no real second passes
        pair, a = await _lab_pair(lab)
        try:
            reader, writer = await open_connection(ADDR_B, 80, runtime=a)
            writer.write(b"GET /lab/api/events HTTP/1.1\r\nHost: b\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"200 OK" in head and b"text/event-stream" in head
            assert b"transfer-encoding: chunked" in head.lower()
            t0 = asyncio.get_running_loop().time()
            events = await _sse_events(reader, 6)
            assert 4.0 <= asyncio.get_running_loop().time() - t0 < 4.1  # 1 at once, 4 later
            assert all(len(e["data"]) < 40 for e in events[1:])
            assert events[0]["event"] == "conn"
            ticks = [json.loads(e["data"]) for e in events[1:]]
            assert [t["n"] for t in ticks] == [1, 2, 3, 4, 5]
            assert [e["id"] for e in events[1:]] == ["1", "2", "3", "4", "5"]
            port = writer.get_extra_info("sockname")[1]
            assert json.loads(events[0]["data"])["client_port"] == port
            # One small chunk per event: the connection's figures grow by one segment each.
            r2, w2 = await open_connection(ADDR_B, 80, runtime=a)
            _, _, d1 = await _request(r2, w2, "GET", f"/lab/api/conns?port={port}")
            await _sse_events(reader, 2)
            _, _, d2 = await _request(r2, w2, "GET", f"/lab/api/conns?port={port}")
            (f1,), (f2,) = json.loads(d1)["conns"], json.loads(d2)["conns"]
            assert f2["segs_out"] - f1["segs_out"] in (2, 3)  # (the 3rd may be on its way)
            per_event = (f2["wire_out"] - f1["wire_out"]) / (f2["segs_out"] - f1["segs_out"])
            assert per_event < 52 + 60  # headers + a chunk of tens of bytes
            w2.close()
            assert lab.streams == 1
            writer.close()
            for _ in range(100):
                if lab.streams == 0:
                    break
                await asyncio.sleep(0.02)
            assert lab.streams == 0  # the client's close ended the stream
        finally:
            await pair.__aexit__(None, None, None)

    run_virtual(body())


def test_pubsub_over_sse_and_the_slow_subscriber_bound() -> None:
    async def body() -> None:
        lab = Lab(queue_limit=2)
        pair, a = await _lab_pair(lab)
        try:
            sr, sw = await open_connection(ADDR_B, 80, runtime=a)
            sw.write(b"GET /lab/api/topics/news HTTP/1.1\r\nHost: b\r\n\r\n")
            await sr.readuntil(b"\r\n\r\n")
            (hello,) = await _sse_events(sr, 1)
            assert hello["event"] == "conn"
            pr, pw = await open_connection(ADDR_B, 80, runtime=a)
            for msg in ("first", "two\nlines"):
                status, _, data = await _request(pr, pw, "POST", "/lab/api/topics/news",
                                                 msg.encode())
                assert status == 200 and json.loads(data)["subscribers"] == 1
                (ev,) = await _sse_events(sr, 1)
                assert ev == {"data": msg}
            # Three messages at once for a queue of two: the subscriber is dropped, counted.
            for i in range(3):
                lab.publish("news", f"burst {i}")
            evs = await _sse_events(sr, 3)
            assert [e["data"] for e in evs[:2]] == ["burst 0", "burst 1"]
            assert evs[2]["event"] == "dropped" and "slow subscriber" in evs[2]["data"]
            assert lab.drops["slow subscriber"] == 1 and "news" not in lab.topics
            assert await sr.readuntil(b"0\r\n\r\n")  # the stream's end (last chunk)
            status, _, data = await _request(pr, pw, "POST", "/lab/api/topics/news", b"late")
            assert json.loads(data)["subscribers"] == 0
            assert (await _request(pr, pw, "POST", "/lab/api/topics/bad%20name", b"x"))[0] == 400
            assert (await _request(pr, pw, "POST", "/lab/api/topics/t", b"x" * 5000))[0] == 413
            pw.close()
            sw.close()
        finally:
            await pair.__aexit__(None, None, None)

    run_virtual(body())


async def _ws_connect(a: Any, target: str) -> tuple[asyncio.StreamReader,
                                                     asyncio.StreamWriter, WSConnection]:
    reader, writer = await open_connection(ADDR_B, 80, runtime=a)
    ws = WSConnection(ConnectionType.CLIENT)
    writer.write(ws.send(Request(host="b", target=target)))
    while True:
        ws.receive_data(await reader.read(65536))
        evs = list(ws.events())
        if evs:
            assert isinstance(evs[0], AcceptConnection), evs
            return reader, writer, ws


async def _ws_texts(reader: asyncio.StreamReader, ws: WSConnection, n: int) -> list[Any]:
    out: list[Any] = []
    while len(out) < n:
        data = await reader.read(65536)
        ws.receive_data(data or None)
        for ev in ws.events():
            out.append(ev.data if isinstance(ev, TextMessage) else ev)
        if not data:
            break
    return out


def test_pubsub_over_websocket() -> None:
    async def body() -> None:
        lab = Lab()
        pair, a = await _lab_pair(lab)
        try:
            r1, w1, ws1 = await _ws_connect(a, "/lab/ws/topics/chat?tag=t1")
            r2, w2, ws2 = await _ws_connect(a, "/lab/ws/topics/chat")
            while len(lab.topics.get("chat", ())) < 2:
                await asyncio.sleep(0.01)
            w1.write(ws1.send(TextMessage(data="hi from 1")))
            assert await _ws_texts(r2, ws2, 1) == ["hi from 1"]
            assert await _ws_texts(r1, ws1, 1) == ["hi from 1"]  # the sender subscribes too
            # SSE publishers reach WebSocket subscribers (one topic space).
            pr, pw = await open_connection(ADDR_B, 80, runtime=a)
            status, _, data = await _request(pr, pw, "POST", "/lab/api/topics/chat", b"via post")
            assert status == 200
            assert json.loads(data)["subscribers"] == 2
            assert await _ws_texts(r2, ws2, 1) == ["via post"]
            # The tag finds the WebSocket's connection among the figures.
            _, _, data = await _request(pr, pw, "GET", "/lab/api/conns?tag=t1")
            (fig,) = json.loads(data)["conns"]
            assert fig["client_port"] == w1.get_extra_info("sockname")[1]
            assert fig["segs_in"] >= 4 and fig["state"] == "ESTABLISHED"
            # The figures channel: a query in a text frame, the JSON back in one.
            rf, wf, wsf = await _ws_connect(a, "/lab/ws/conns")
            wf.write(wsf.send(TextMessage(data="tag=t1")))
            (text,) = await _ws_texts(rf, wsf, 1)
            (fig2,) = json.loads(text)["conns"]
            assert fig2["id"] == fig["id"] and fig2["segs_in"] >= fig["segs_in"]
            wf.close()
            w1.write(ws1.send(CloseConnection(code=1000)))
            via, close = await _ws_texts(r1, ws1, 2)
            assert via == "via post"
            assert isinstance(close, CloseConnection) and close.code == 1000
            pw.close()
            w1.close()
            w2.close()
        finally:
            await pair.__aexit__(None, None, None)

    run_virtual(body())


def test_lab_page_and_bad_requests() -> None:
    async def body() -> None:
        lab = Lab()
        pair, a = await _lab_pair(lab)
        try:
            reader, writer = await open_connection(ADDR_B, 80, runtime=a)
            status, headers, page = await _request(reader, writer, "GET", "/lab/")
            assert status == 200 and headers["content-type"].startswith("text/html")
            html = page.decode()
            for card in ("reqres", "short", "long", "sse", "pubsse", "ws"):
                assert f'id:"{card}"' in html
            assert "src=" not in html and "http://" not in html and "https://" not in html
            status, headers, _ = await _request(reader, writer, "GET", "/lab")
            assert status == 301 and headers["location"] == "/lab/"
            assert (await _request(reader, writer, "GET", "/lab/nothing"))[0] == 404
            assert (await _request(reader, writer, "DELETE", "/lab/api/echo"))[0] == 405
            # A plain GET to the WebSocket URL is not an upgrade.
            rr, ww = await open_connection(ADDR_B, 80, runtime=a)
            assert (await _request(rr, ww, "GET", "/lab/ws/topics/x"))[0] == 400
            status, _, data = await _request(rr, ww, "GET", "/lab/api/stats")
            assert json.loads(data)["bounds"]["queue"] == 64
            writer.close()
            ww.close()
        finally:
            await pair.__aexit__(None, None, None)

    run_virtual(body())


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to check the script with")
def test_the_page_script_parses(tmp_path: Path) -> None:
    html = page().decode()
    script = html[html.index("<script>") + 8:html.index("</script>")]
    (tmp_path / "lab.js").write_text(script)
    res = subprocess.run(["node", "--check", str(tmp_path / "lab.js")], capture_output=True,
                         timeout=30, check=False)
    assert res.returncode == 0, res.stderr.decode()
