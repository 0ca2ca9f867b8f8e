"""Fixtures for pytcp's end-to-end tests: the Linux kernel is the peer.

Owns: skipping when namespaces/TUN cannot be used (not root, no /dev/net/tun), the test data
(a 10 MB file and 50 small files, seeded), a fresh network namespace per test or module
(removed with its processes even when the test fails), and ``pytcp up`` processes started in
it that must print ``ready `` within a bound.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.netns import Netns, PytcpUp, environment_problem

BIG_SIZE = 10 * 1024 * 1024  # the issue says 10 MB
SMALL_COUNT = 50
STACK_ADDR = "10.77.0.2"
HOST_ADDR = "10.77.0.1"
READY_TIMEOUT = 20.0

_PROBLEM = environment_problem()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test in a network namespace (root)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            if _PROBLEM:
                item.add_marker(pytest.mark.skip(reason=_PROBLEM))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Data:
    """The files the HTTP tests serve: ``root/big`` and ``root/s/NN.bin``."""

    root: Path
    big: bytes
    small: dict[str, bytes]  # URL path -> content


@pytest.fixture(scope="session")
def e2e_data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    root = tmp_path_factory.mktemp("www")
    rng = random.Random(4242)
    big = rng.randbytes(BIG_SIZE)
    (root / "big").write_bytes(big)
    (root / "s").mkdir()
    small: dict[str, bytes] = {}
    for i in range(SMALL_COUNT):
        # Sizes from 0 to ~40 KB: empty, below one MSS, several segments.
        body = rng.randbytes([0, 1, 1000, 1460, 1461, 3000][i] if i < 6 else rng.randrange(40000))
        (root / "s" / f"{i:02d}.bin").write_bytes(body)
        small[f"/s/{i:02d}.bin"] = body
    return Data(root=root, big=big, small=small)


@pytest.fixture
def netns() -> Iterator[Netns]:
    ns = Netns()
    try:
        yield ns
    finally:
        ns.close()


StartPytcp = Callable[..., PytcpUp]


def stop_and_report(up: PytcpUp, label: str) -> None:
    """Stop ``pytcp up`` and print its stderr (if any) under ``label``, for a failing test."""
    up.stop()
    err = up.stderr()
    if err.strip():
        print(f"--- stderr of pytcp up {label}:\n{err}")


@pytest.fixture
def start_pytcp(tmp_path: Path) -> Iterator[StartPytcp]:
    """``start_pytcp(ns, *args, env=None)``: ``pytcp up ARGS`` in ``ns`` (extra environment
    ``env``), ready; stopped at teardown."""
    started: list[PytcpUp] = []

    def start(ns: Netns, *args: str, timeout: float = READY_TIMEOUT,
              env: dict[str, str] | None = None) -> PytcpUp:
        up = PytcpUp(ns, args, tmp_path, env=env)
        started.append(up)
        up.wait_ready(timeout)
        return up

    yield start
    for up in started:
        stop_and_report(up, " ".join(up.args))


@dataclass
class Served:
    """One namespace with ``pytcp up --http 80 --echo 7 --discard 9`` for a whole module."""

    ns: Netns
    up: PytcpUp
    data: Data


@pytest.fixture(scope="module", params=[("--no-offload",), ()], ids=["plain", "offload"])
def served(request: pytest.FixtureRequest, e2e_data: Data,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Plain (``--no-offload``: one MSS-sized packet per segment) and the default (TUN
    TSO/checksum offloads: 64 KB super-segments both ways) are both served to every test
    that uses this."""
    ns = Netns()
    up: PytcpUp | None = None
    try:
        up = PytcpUp(ns, ["--http", "80", "--root", str(e2e_data.root), "--echo", "7",
                          "--discard", "9", *request.param], tmp_path_factory.mktemp("served"))
        up.wait_ready(READY_TIMEOUT)
        yield Served(ns, up, e2e_data)
    finally:
        if up is not None:
            stop_and_report(up, "(module)")
        ns.close()


def curl(ns: Netns, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    """curl in the namespace with its own bound (--max-time) under the process bound."""
    return ns.run(["curl", "--silent", "--show-error", "--max-time", str(int(timeout)),
                   *args], timeout=timeout + 10)
