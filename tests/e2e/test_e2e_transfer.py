"""Bulk transfers in the other direction and under impairment: ``pytcp get`` downloads 10 MB
from a kernel-side ``python3 -m http.server``, and a curl download from ``pytcp up`` with loss,
reordering and duplication (pytcp's own seeded impairment stage) stays byte-identical.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST_ADDR, STACK_ADDR, Data, StartPytcp, curl, file_sha256, sha256
from tools.netns import REPO_ROOT, Netns, pytcp_argv, pytcp_env


def _wait_listening(ns: Netns, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = ns.run(["ss", "-Hltn", f"sport = :{port}"], timeout=10).stdout
        if out.strip():
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


@pytest.mark.parametrize("extra", [
    ("--no-offload",), (), ("--impair", "loss=0.05,reorder=0.05,dup=0.01", "--seed", "1"),
], ids=["plain", "offload", "impaired"])
def test_pytcp_get_downloads_10_mb_from_kernel_http_server(
        netns: Netns, e2e_data: Data, tmp_path: Path, extra: tuple[str, ...]) -> None:
    # The host address appears only when pytcp brings the TUN up, so the server binds to it
    # ahead of time (ip_nonlocal_bind, in this namespace only).
    netns.sysctl("net.ipv4.ip_nonlocal_bind", "1")
    netns.popen([sys.executable, "-m", "http.server", "--bind", HOST_ADDR, "8000",
                 "--directory", str(e2e_data.root)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_listening(netns, 8000)
    out = tmp_path / "out"
    res = netns.run(pytcp_argv("get", f"http://{HOST_ADDR}:8000/big", "-o", str(out), *extra),
                    timeout=120, env=pytcp_env(), cwd=str(REPO_ROOT))
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-3000:]
    assert out.stat().st_size == len(e2e_data.big)
    assert file_sha256(out) == sha256(e2e_data.big)


def test_pytcp_get_error_is_one_line_on_stderr_and_exit_2(netns: Netns, tmp_path: Path) -> None:
    # Nothing listens on port 8001 of the kernel side: connection refused.
    res = netns.run(pytcp_argv("get", f"http://{HOST_ADDR}:8001/x", "-o",
                               str(tmp_path / "x")),
                    timeout=60, env=pytcp_env(), cwd=str(REPO_ROOT))
    assert res.returncode == 2, res.stderr.decode(errors="replace")[-3000:]
    assert len(res.stderr.decode().strip().splitlines()) == 1, res.stderr.decode()


def test_download_under_loss_reorder_and_duplication_stays_identical(
        netns: Netns, start_pytcp: StartPytcp, e2e_data: Data, tmp_path: Path) -> None:
    start_pytcp(netns, "--http", "80", "--root", str(e2e_data.root),
                "--impair", "loss=0.05,reorder=0.05,dup=0.01", "--seed", "1")
    out = tmp_path / "big"
    began = time.monotonic()
    res = curl(netns, "-o", str(out), "-w", "%{http_code} %{size_download}",
               f"http://{STACK_ADDR}/big", timeout=120)
    took = time.monotonic() - began
    assert res.returncode == 0, f"after {took:.1f} s: {res.stderr.decode()}"
    assert res.stdout.decode() == f"200 {len(e2e_data.big)}"
    assert file_sha256(out) == sha256(e2e_data.big)
    print(f"10 MB under 5% loss, 5% reorder, 1% dup in {took:.1f} s")


@pytest.mark.parametrize("extra", [("--no-offload",), ()], ids=["plain", "offload"])
def test_download_on_the_pure_python_checksum_fallback(
        netns: Netns, start_pytcp: StartPytcp, e2e_data: Data, tmp_path: Path,
        extra: tuple[str, ...]) -> None:
    # PYTCP_NO_NATIVE=1: every checksum (64 KB super-segments with --offload) in Python.
    up = start_pytcp(netns, "--http", "80", "--root", str(e2e_data.root), *extra,
                     env={"PYTCP_NO_NATIVE": "1"})
    version = netns.run(pytcp_argv("--version"), timeout=30, cwd=str(REPO_ROOT),
                        env=pytcp_env({"PYTCP_NO_NATIVE": "1"})).stdout.decode()
    assert "native: no" in version, version
    out = tmp_path / "big"
    res = curl(netns, "-o", str(out), f"http://{STACK_ADDR}/big", timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    assert file_sha256(out) == sha256(e2e_data.big)
    assert up.proc.poll() is None


@pytest.mark.parametrize("mtu", ["576", "9000"])
def test_other_mtus_download_and_fragmented_ping(
        netns: Netns, start_pytcp: StartPytcp, e2e_data: Data, tmp_path: Path,
        mtu: str) -> None:
    start_pytcp(netns, "--http", "80", "--root", str(e2e_data.root), "--mtu", mtu)
    out = tmp_path / "big"
    res = curl(netns, "-o", str(out), f"http://{STACK_ADDR}/big", timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    assert file_sha256(out) == sha256(e2e_data.big)
    # 12,000 bytes of ICMP: fragments both ways at either MTU (pytcp reassembles the request
    # and fragments its reply).
    res = netns.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "12000", STACK_ADDR],
                    timeout=20)
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()
    assert "2 received" in res.stdout.decode()
    assert "wrong data" not in res.stdout.decode(), res.stdout.decode()  # ping checks the echo
