"""The patterns lab (issue 13) against the kernel: ``pytcp up`` with no flags serves the status
page and the lab on port 80; curl drives echo, jobs (short and long polling), the event
stream and pub/sub over SSE; a wsproto client on a kernel socket in the namespace speaks
WebSocket; a real browser (Debian's chromium through Playwright) runs every card of
``/lab/`` and each shows its messages and the figures of the connections it used."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from tests.e2e.browser import browser_problem, run_browser
from tests.e2e.conftest import STACK_ADDR, StartPytcp, curl
from tools.netns import Netns

BASE = f"http://{STACK_ADDR}"


def test_curl_echo_jobs_and_streams(netns: Netns, start_pytcp: StartPytcp) -> None:
    up = start_pytcp(netns)  # no flags: HTTP on 80, status page at / and the lab at /lab/
    assert "http=80" in up.wait_ready(1)
    res = curl(netns, "-w", "\n%{http_code} %{local_port}", f"{BASE}/lab/api/echo?msg=hi%20there")
    body, code_port = res.stdout.decode().rsplit("\n", 1)
    code, port = code_port.split()
    got = json.loads(body)
    assert code == "200" and got["msg"] == "hi there"
    assert got["conn"]["client_port"] == int(port) and got["conn"]["segs_in"] >= 3
    # Short polling, then long polling of the same job.
    res = curl(netns, "-X", "POST", "-w", "\n%{http_code}", f"{BASE}/lab/api/jobs?seconds=1")
    body, code = res.stdout.decode().rsplit("\n", 1)
    job = json.loads(body)
    assert code == "202" and job["state"] == "pending"
    res = curl(netns, f"{BASE}/lab/api/jobs/{job['id']}")
    assert json.loads(res.stdout)["state"] == "pending"
    t0 = time.monotonic()
    res = curl(netns, f"{BASE}/lab/api/jobs/{job['id']}?wait=10")
    assert json.loads(res.stdout)["state"] == "done" and time.monotonic() - t0 < 5
    # The event stream never ends: curl stops it after 3 s with at least 3 events (1/s).
    res = curl(netns, "-N", f"{BASE}/lab/api/events", timeout=3)
    assert res.returncode == 28  # curl's "operation timed out": the stream was still open
    ticks = [json.loads(line[6:]) for line in res.stdout.decode().splitlines()
             if line.startswith("data: {\"n\"")]
    assert [t["n"] for t in ticks[:3]] == [1, 2, 3]
    # Pub/sub over SSE: a subscriber (curl -N) gets what another curl publishes.
    sub = netns.popen(["curl", "-sN", "--max-time", "3", f"{BASE}/lab/api/topics/e2e"],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stats = json.loads(curl(netns, f"{BASE}/lab/api/stats").stdout)
        if stats["subscribers"] == 1:
            break
        time.sleep(0.1)
    res = curl(netns, "--data-binary", "hello subscribers", f"{BASE}/lab/api/topics/e2e")
    assert json.loads(res.stdout)["subscribers"] == 1
    out, _ = sub.communicate(timeout=15)
    assert "\ndata: hello subscribers\n" in out.decode()
    # The status page counts the lab.
    status = json.loads(curl(netns, f"{BASE}/status.json").stdout)
    assert status["lab"]["published"] == 1 and status["lab"]["echo"] == 1
    assert b'<a href="/lab/">' in curl(netns, f"{BASE}/").stdout


def _ws_events(sock: object, ws: WSConnection, n: int) -> list[object]:
    out: list[object] = []
    while len(out) < n:
        data = sock.recv(65536)  # type: ignore[attr-defined]
        ws.receive_data(data or None)
        out += [ev.data if isinstance(ev, TextMessage) else ev for ev in ws.events()]
        if not data:
            break
    return out


def test_websocket_pubsub_from_a_kernel_socket(netns: Netns, start_pytcp: StartPytcp) -> None:
    start_pytcp(netns, "--http", "8080")
    socks = []
    for _ in range(2):
        s = netns.socket()
        s.settimeout(10)
        s.connect((STACK_ADDR, 8080))
        ws = WSConnection(ConnectionType.CLIENT)
        s.sendall(ws.send(Request(host=STACK_ADDR, target="/lab/ws/topics/room")))
        (accept,) = _ws_events(s, ws, 1)
        assert isinstance(accept, AcceptConnection)
        socks.append((s, ws))
    (s1, ws1), (s2, ws2) = socks
    time.sleep(0.2)  # both subscribed
    s1.sendall(ws1.send(TextMessage(data="x" * 3000)))  # several segments' worth of frame
    assert _ws_events(s2, ws2, 1) == ["x" * 3000]
    assert _ws_events(s1, ws1, 1) == ["x" * 3000]
    s2.sendall(ws2.send(TextMessage(data="reply")))
    assert _ws_events(s1, ws1, 1) == ["reply"]
    s1.sendall(ws1.send(CloseConnection(code=1000)))
    rest = _ws_events(s1, ws1, 99)  # up to the server's FIN after its close frame
    # The server's close frame, then its FIN (wsproto reports the end of the stream as 1006).
    assert [e.code for e in rest if isinstance(e, CloseConnection)] == [1000, 1006], rest
    for s, _ in socks:
        s.close()


BROWSER = """
    url, shot = args
    out["errors"] = []
    page.on("pageerror", lambda e: out["errors"].append(str(e)))
    page.goto(url, wait_until="load", timeout=20000)
    for card in ("reqres", "short", "long", "sse", "pubsse", "ws"):  # one after the other
        page.click("#run-" + card)
        page.wait_for_function(
            '(id) => ["done", "error"].includes(document.getElementById("card-" + id)'
            '.dataset.state)', arg=card, timeout=20000)
    page.wait_for_timeout(1200)  # one more refresh of the figures
    out["cards"] = page.evaluate('''() => [...document.querySelectorAll(".card")].map(c => ({
        id: c.id, state: c.dataset.state, cost: c.querySelector(".cost").textContent,
        msgs: [...c.querySelectorAll(".msg")].map(
            m => [m.querySelector(".m").textContent, m.querySelector(".c").textContent]),
        rows: [...c.querySelectorAll("tr.conn")].map(
            r => [...r.children].map(td => td.textContent))}))''')
    page.screenshot(path=shot, full_page=True)
"""

BRIEF = re.compile(r"^:(\d+) · (\d+)/(\d+) seg · ")
DELTA = re.compile(r" \+(\d+)/\+(\d+) seg \+")


@pytest.mark.skipif(browser_problem() is not None, reason=str(browser_problem()))
def test_the_lab_in_a_real_browser_runs_every_card(netns: Netns, start_pytcp: StartPytcp,
                                                   tmp_path: Path) -> None:
    start_pytcp(netns)
    shot = tmp_path / "lab.png"
    t0 = time.monotonic()
    out = run_browser(netns, BROWSER, [f"{BASE}/lab/", str(shot)], tmp_path)
    print(f"browser run {time.monotonic() - t0:.1f} s; screenshot {shot}")
    assert out["errors"] == []
    # Nothing but pytcp was asked for (no CDN, no font): the page and its API calls.
    assert out["requests"] and all(u.startswith(f"{BASE}/lab/") for u in out["requests"])
    cards = {c["id"]: c for c in out["cards"]}
    assert set(cards) == {f"card-{n}" for n in ("reqres", "short", "long", "sse", "pubsse",
                                                 "ws")}
    want = {"reqres": "echo: hello 5", "short": " done", "long": " done after",
            "sse": "event 3", "pubsse": "news 3", "ws": "received: frame 3"}
    for name, text in want.items():
        card = cards[f"card-{name}"]
        assert card["state"] == "done", card
        assert any(text in m for m, _ in card["msgs"]), (name, card["msgs"])
        # Next to each message: the connection (its port) and pytcp's segment counts.
        briefs = [BRIEF.match(c) for _, c in card["msgs"]]
        assert briefs and all(briefs), (name, card["msgs"])
        assert all(int(b.group(2)) > 0 and int(b.group(3)) > 0 for b in briefs if b)
        assert card["rows"], name  # the connections table
        for row in card["rows"]:
            assert int(row[2]) > 0 and int(row[3]) > 0, (name, row)  # segments both ways
        assert "messages over" in card["cost"] and "segments" in card["cost"], card["cost"]
    # Request/response, run alone, used one keep-alive connection; each echo after the
    # first cost what the red delta says: segments both ways.
    (row,) = cards["card-reqres"]["rows"]
    deltas = [DELTA.search(c) for _, c in cards["card-reqres"]["msgs"][1:]]
    assert all(deltas) and all(int(d.group(1)) > 0 and int(d.group(2)) > 0 for d in deltas
                               if d), cards["card-reqres"]["msgs"]
    # Short polling used more requests than long polling for the same 2 s job.
    n_short = sum("poll:" in m for m, _ in cards["card-short"]["msgs"])
    n_long = sum("long poll:" in m for m, _ in cards["card-long"]["msgs"])
    assert n_short >= 3 and n_long == 1
    assert shot.stat().st_size > 20_000
