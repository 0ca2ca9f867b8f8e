"""The dashboard and ``pytcp ss`` against a real ``pytcp up`` in a namespace: ``pytcp ss``
(text and JSON) reads the control socket whatever ``--http`` serves; the dashboard opened in a
real browser (Debian's chromium driven by Playwright, nothing downloaded at run time) draws the
connection's graphs, fetching nothing but pytcp's own pages."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.e2e.browser import browser_problem, run_browser
from tests.e2e.conftest import HOST_ADDR, STACK_ADDR, StartPytcp
from tools.netns import Netns, pytcp_argv, pytcp_env


def _echo_open(netns: Netns, data: bytes) -> object:
    """A kernel socket with an echo round trip done, left open."""
    s = netns.socket()
    s.settimeout(10)
    s.connect((STACK_ADDR, 7))
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        assert chunk
        got += chunk
    assert got == data
    return s


def test_ss_lists_the_connections_whatever_http_serves(netns: Netns, start_pytcp: StartPytcp,
                                                      tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("hello")
    start_pytcp(netns, "--ifname", "e2ss0", "--http", "8080", "--root", str(tmp_path),
                "--echo", "7")
    sock = _echo_open(netns, os.urandom(50_000))
    port = sock.getsockname()[1]  # type: ignore[attr-defined]
    res = netns.run(pytcp_argv("ss"), timeout=30, env=pytcp_env())
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["State", "Recv-Q", "Send-Q"]
    row = [ln for ln in lines if f"{HOST_ADDR}:{port}" in ln]
    assert row and row[0].split() == ["ESTAB", "0", "0", f"{STACK_ADDR}:7", f"{HOST_ADDR}:{port}"]
    detail = lines[lines.index(row[0]) + 1]
    assert detail.startswith("\t cubic rto:") and "bytes_acked:50000" in detail
    res = netns.run(pytcp_argv("ss", "--json", "--ifname", "e2ss0"), timeout=30,
                    env=pytcp_env())
    assert res.returncode == 0, res.stderr
    (snap,) = json.loads(res.stdout)
    assert snap["interface"] == "e2ss0" and snap["listening"] == [7, 8080]
    (conn,) = [c for c in snap["connections"] if c["peer"] == f"{HOST_ADDR}:{port}"]
    assert (conn["state"], conn["bytes_received"], conn["bytes_acked"]) == (
        "ESTABLISHED", 50_000, 50_000)
    res = netns.run(pytcp_argv("ss", "--ifname", "nosuch0"), timeout=30, env=pytcp_env())
    assert res.returncode == 2
    assert len(res.stderr.decode().splitlines()) == 1
    assert "no pytcp up running on nosuch0" in res.stderr.decode()
    sock.close()  # type: ignore[attr-defined]


BROWSER = """
    url, shot = args
    page.goto(url, wait_until="load", timeout=20000)
    page.screenshot(path=shot, full_page=True)
    out["title"] = page.title()
    out["svgs"] = page.evaluate('''() => [...document.querySelectorAll("svg")].map(s => {
        const r = s.getBoundingClientRect();
        return {w: r.width, h: r.height,
                points: [...s.querySelectorAll("polyline")].map(
                    p => p.points.numberOfItems),
                marks: s.querySelectorAll("line.mark").length};
    })''')
"""


@pytest.mark.skipif(browser_problem() is not None, reason=str(browser_problem()))
def test_the_dashboard_in_a_real_browser_draws_the_graphs(netns: Netns,
                                                          start_pytcp: StartPytcp,
                                                          tmp_path: Path) -> None:
    start_pytcp(netns, "--http", "8080", "--echo", "7", "--impair", "loss=0.02", "--seed", "5")
    sock = _echo_open(netns, os.urandom(1_000_000))
    port = sock.getsockname()[1]  # type: ignore[attr-defined]
    conn_id = f"7-{HOST_ADDR}-{port}"
    shot = tmp_path / "dashboard-connection.png"
    t0 = time.monotonic()
    out = run_browser(netns, BROWSER, [f"http://{STACK_ADDR}:8080/conn/{conn_id}", str(shot)],
                      tmp_path)
    print(f"browser run {time.monotonic() - t0:.1f} s; screenshot {shot}")
    assert out["title"].startswith("pytcp: 10.77.0.2:7")
    # Nothing but the page itself was fetched (no script, font or image from anywhere).
    assert out["requests"] == [f"http://{STACK_ADDR}:8080/conn/{conn_id}"]
    svgs = out["svgs"]
    assert len(svgs) == 4  # sent, received, cwnd, srtt/rto
    for svg in svgs:
        assert svg["w"] > 300 and svg["h"] > 100
        assert svg["points"] and all(n > 5 for n in svg["points"]), svg
    assert svgs[0]["marks"] > 0  # retransmissions under 2 % loss
    assert shot.stat().st_size > 20_000  # a real picture, not a blank page
    sock.close()  # type: ignore[attr-defined]
