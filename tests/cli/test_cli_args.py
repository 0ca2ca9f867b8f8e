"""``pytcp`` command line: --version, and every bad argument or environment is ONE line on
stderr with exit status 2, before anything is created. These run ``main()`` in-process with
the link opener replaced by a tripwire, so a validation gap cannot create an interface."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytcp import __version__, cli, native

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_link(monkeypatch: pytest.MonkeyPatch) -> None:
    def tripwire(opts: object) -> None:
        raise AssertionError("validation let a bad command line through to the link")
    monkeypatch.setattr(cli, "open_link", tripwire)


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (argv, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, (argv, err)
    assert lines[0].startswith("pytcp"), lines[0]
    assert ": error: " in lines[0]
    return lines[0]


def test_version_prints_the_version_and_the_native_flag(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert cli.main(["--version"]) == 0
    out, err = capsys.readouterr()
    assert out == f"pytcp {__version__}\nnative: {'yes' if native.HAVE_NATIVE else 'no'}\n"
    assert err == ""


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["up", "--help"]) == 0
    out, _ = capsys.readouterr()
    for flag in ("--ifname", "--host-addr", "--addr", "--mtu", "--http", "--root", "--echo",
                 "--discard", "--pcap", "--impair", "--seed", "--offload", "--no-offload",
                 "--pcap-segments", "--profile", "--cc", "--idle-timeout", "--request-timeout",
                 "--send-timeout", "--txqueuelen", "--workers", "-v"):
        assert flag in out


@pytest.mark.parametrize(("argv", "says"), [
    ([], "choose a command"),
    (["bogus"], "invalid choice"),
    (["up", "--bogus"], "unrecognized arguments: --bogus"),
    (["up", "--http", "0"], "invalid port '0'"),
    (["up", "--http", "65536"], "invalid port '65536'"),
    (["up", "--echo", "seven"], "invalid port 'seven'"),
    (["up", "--mtu", "67"], "invalid MTU"),
    (["up", "--mtu", "1e3"], "invalid MTU"),
    (["up", "--txqueuelen", "0"], "invalid txqueuelen 0"),
    (["get", "http://10.77.0.1/", "--txqueuelen", "many"], "invalid txqueuelen 'many'"),
    (["up", "--seed", "abc"], "invalid seed"),
    (["up", "--ifname", "x" * 16], "invalid interface name"),
    (["up", "--ifname", "a/b"], "invalid interface name"),
    (["up", "--addr", "10.77.0.300"], "invalid --addr '10.77.0.300'"),
    (["up", "--addr", "10.1.0.2"], "not in the --host-addr subnet 10.77.0.0/24"),
    (["up", "--addr", "10.77.0.1"], "the same as the kernel side's address"),
    (["up", "--addr", "10.77.0.255"], "network or broadcast"),
    (["up", "--host-addr", "10.77.0.1"], "needs a prefix length"),
    (["up", "--host-addr", "fe80::1/64"], "only IPv4"),
    (["up", "--host-addr", "nonsense"], "invalid --host-addr"),
    (["up", "--impair", "loss=2"], "invalid --impair 'loss=2'"),
    (["up", "--impair", "wobble=1"], "unknown key"),
    (["up", "--http", "80", "--root", "/nonexistent-e2"], "no such directory"),
    (["up", "--echo", "7", "--root", "/tmp"], "--root needs --http PORT"),
    (["up", "--echo", "7", "--discard", "7"], "port 7 given to both --echo and --discard"),
    (["up", "--pcap", "/nonexistent-e2/x.pcapng"], "no such directory"),
    (["up", "--profile", "bsd"], "invalid choice: 'bsd'"),
    (["up", "--cc", "bbr"], "invalid choice: 'bbr'"),
    (["up", "--idle-timeout", "0"], "invalid timeout '0'"),
    (["up", "--send-timeout", "soon"], "invalid timeout 'soon'"),
    (["up", "--request-timeout", "-1"], "invalid timeout '-1'"),
    (["up", "--workers", "0"], "invalid --workers '0': expected 1..64"),
    (["up", "--workers", "two"], "invalid --workers 'two'"),
    (["up", "--workers", "2", "--pcap", "/tmp/x.pcapng"], "use it with --workers 1"),
    (["get"], "the following arguments are required: URL"),
    (["get", "https://10.77.0.1/"], "unsupported URL scheme"),
    (["get", "http://example.com/"], "no DNS resolver"),
    (["get", "http://10.77.0.1:99999/"], "invalid URL"),
    (["get", "http://10.77.0.1/", "--timeout", "0"], "invalid timeout"),
    (["get", "http://10.77.0.1/", "--repeat", "0"], "invalid repeat count '0': expected 1..100"),
    (["get", "http://10.77.0.1/", "--repeat", "101"], "invalid repeat count '101'"),
    (["get", "http://10.77.0.1/", "--repeat", "x"], "invalid repeat count 'x'"),
    (["get", "http://10.77.0.1/", "-o", "/nonexistent-e2/out"], "no such directory"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                               argv: list[str], says: str) -> None:
    assert says in one_error_line(capsys, argv)


def test_not_root_is_exit_2(capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "have_net_admin", lambda: False)
    assert "needs root" in one_error_line(capsys, ["up"])
    assert "needs root" in one_error_line(capsys, ["get", "http://10.77.0.1/"])


def test_missing_tun_device_is_exit_2(capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "have_net_admin", lambda: True)
    monkeypatch.setattr(cli, "TUN_PATH", "/nonexistent-e2/tun")
    assert "no /nonexistent-e2/tun" in one_error_line(capsys, ["up"])


def test_an_existing_interface_name_is_exit_2(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "have_net_admin", lambda: True)
    monkeypatch.setattr(cli, "TUN_PATH", "/")
    line = one_error_line(capsys, ["up", "--ifname", "lo"])
    assert "interface name 'lo' already taken by an interface that is not pytcp's" in line
    assert "ip link del" not in line  # never advice to delete someone else's interface


def _unprivileged_python() -> str | None:
    """An interpreter the nobody user may execute (pyenv under /root usually is not)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if not candidate or not os.path.exists(candidate):
            continue
        res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              candidate, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                             capture_output=True, text=True, timeout=30, check=False)
        if res.returncode == 0 and res.stdout.strip() == "True":
            return candidate
    return None


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to drop to nobody")
def test_up_as_nobody_exits_2_with_one_line() -> None:
    python = _unprivileged_python()
    if python is None:
        pytest.skip("no Python >= 3.11 that nobody can execute")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          python, "-m", "pytcp", "up", "--ifname", "e2nobody0"],
                         capture_output=True, text=True, timeout=30, cwd="/", env=env,
                         check=False)
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        "pytcp up: error: creating a TUN interface needs root (CAP_NET_ADMIN): run as root"]
    assert not Path("/sys/class/net/e2nobody0").exists()


def test_tcp_config_follows_profile_cc_and_offload() -> None:
    parser = cli.build_parser()
    # Offloads are on by default (super-segments); --no-offload gives MSS-sized segments.
    opts = cli.check_up_args(parser.parse_args(["up"]))
    cfg = cli.tcp_config(opts)
    assert (cfg.min_rto, cfg.congestion, cfg.max_segment_payload) == (0.2, "cubic", 65000)
    assert opts.offload and not opts.pcap_segments
    opts = cli.check_up_args(parser.parse_args(["up", "--no-offload"]))
    assert not opts.offload and cli.tcp_config(opts).max_segment_payload == 0
    opts = cli.check_up_args(parser.parse_args(["up", "--profile", "rfc", "--cc", "newreno",
                                                "--offload", "--pcap-segments"]))
    cfg = cli.tcp_config(opts)
    assert (cfg.min_rto, cfg.congestion, cfg.max_segment_payload) == (1.0, "newreno", 65000)
    assert opts.offload and opts.pcap_segments
    assert opts.services == {"http": 80} and opts.root is None


PASSING_SCRIPT = """\
// A passive open: SYN in, SYN-ACK out (RFC 9293 3.5), then the handshake's ACK.
0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <mss 1460>
"""

FAILING_SCRIPT = PASSING_SCRIPT.replace("> S. 0:0(0) ack 1", "> R 0:0(0) ack 1")


def test_script_runs_the_packetdrill_runner_and_returns_its_status(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = tmp_path / "good.pkt"
    good.write_text(PASSING_SCRIPT)
    bad = tmp_path / "bad.pkt"
    bad.write_text(FAILING_SCRIPT)
    assert cli.main(["script", str(good)]) == 0
    out, _ = capsys.readouterr()
    assert f"PASS {good}" in out
    assert cli.main(["script", str(good), str(bad)]) != 0
    out, _ = capsys.readouterr()
    assert f"FAIL {bad}" in out
    # Options after "script" belong to the runner (pytcp/script/runner.py), not to argparse.
    assert cli.main(["script", "-v", str(good)]) == 0
    out, _ = capsys.readouterr()
    assert f"PASS {good}" in out
    assert cli.main(["script"]) == 2  # no file: the runner's usage error
    _, err = capsys.readouterr()
    assert "usage: pytcp script" in err


def test_a_missing_script_file_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    missing = tmp_path / "nope.pkt"
    assert cli.main(["script", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"pytcp script: error: no such file or directory: {missing}"]


def test_service_timeouts_reach_the_services() -> None:
    """--idle-timeout/--request-timeout/--send-timeout are passed to the services; without
    them each service keeps its documented default."""
    from pytcp.apps import discard, echo, http_server

    args = cli.build_parser().parse_args(["up", "--http", "80", "--echo", "7", "--discard",
                                          "9", "--idle-timeout", "4", "--send-timeout", "2.5",
                                          "--request-timeout", "7"])
    services = cli._services(cli.check_up_args(args), runtime=None)
    assert services["http"].keywords["idle_timeout"] == 4.0  # type: ignore[attr-defined]
    assert services["http"].keywords["send_timeout"] == 2.5  # type: ignore[attr-defined]
    assert services["http"].keywords["request_timeout"] == 7.0  # type: ignore[attr-defined]
    assert services["echo"].keywords == {"idle_timeout": 4.0,  # type: ignore[attr-defined]
                                         "send_timeout": 2.5}
    assert services["discard"].keywords == {"idle_timeout": 4.0}  # type: ignore[attr-defined]
    args = cli.build_parser().parse_args(["up", "--http", "80", "--echo", "7", "--discard", "9"])
    services = cli._services(cli.check_up_args(args), runtime=None)
    assert services["http"].keywords["idle_timeout"] == http_server.IDLE_TIMEOUT == 30.0  # type: ignore[attr-defined]
    assert services["http"].keywords["send_timeout"] is None  # type: ignore[attr-defined]
    assert services["echo"].keywords["idle_timeout"] == echo.IDLE_TIMEOUT == 300.0  # type: ignore[attr-defined]
    assert services["discard"].keywords["idle_timeout"] == discard.IDLE_TIMEOUT == 300.0  # type: ignore[attr-defined]
