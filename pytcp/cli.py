"""The ``pytcp`` command line: ``pytcp up | get | script | --version``.

Owns argument parsing and validation (one-line errors, exit status 2, nothing left behind),
bringing a stack up on a TUN interface (link, stack, impairment, pcap, runtime), the services
of ``pytcp up``, the download of ``pytcp get``, and the clean shutdown on SIGINT/SIGTERM.

- ``pytcp up``: services on the stack's address; prints one ``ready IFNAME ADDR svc=port...``
  line on stdout once every service listens. SIGINT/SIGTERM: FIN every connection, RST what is
  still open after 2 s, complete the capture, remove the interface, exit 0.
- ``pytcp get URL [-o FILE]``: fetches URL from a server on the kernel side of the TUN; exit 0,
  or exit 2 with one line on stderr (refused, timeout, HTTP error status, bad argument). A
  summary line (bytes, seconds, Mbit/s) goes to stderr on success; ``-o FILE`` appears only
  when the download is complete (written to a temporary file, then renamed).
- ``pytcp script [OPTIONS] FILE...``: everything after ``script`` goes to
  ``pytcp.script.runner.main`` (its options: ``-v``, ``--pcap PATH``, ``-h``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import ipaddress
import json
import logging
import os
import random
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import pytcp

log = logging.getLogger("pytcp.cli")

EXIT_OK = 0
EXIT_ERROR = 2  # usage errors, environment errors, and failed downloads
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

IFNAMSIZ = 16
GET_STREAM_LIMIT = 1 << 20  # pytcp get: the StreamReader's limit (it buffers up to twice)
SHUTDOWN_GRACE = 2.0  # seconds of FIN before RST on shutdown
DEFAULT_HTTP_PORT = 80
CAP_NET_ADMIN = 12  # linux/capability.h
TUN_PATH = "/dev/net/tun"

Service = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class UsageError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``pytcp up: error: ...`` (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


# --- argument types ------------------------------------------------------------------------

def _port(text: str) -> int:
    try:
        port = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected 1..65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected 1..65535")
    return port


def _mtu(text: str) -> int:
    try:
        mtu = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid MTU {text!r}: expected 68..65535") from None
    if not 68 <= mtu <= 65535:
        raise argparse.ArgumentTypeError(f"invalid MTU {text!r}: IPv4 needs 68..65535")
    return mtu


def _seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer") from None


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: expected seconds") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: expected seconds > 0")
    return value


GET_REPEAT_MAX = 100  # pytcp get --repeat: at most this many fetches in one run


def _repeat(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid repeat count {text!r}: expected an "
                                         "integer") from None
    if not 1 <= value <= GET_REPEAT_MAX:
        raise argparse.ArgumentTypeError(f"invalid repeat count {text!r}: expected "
                                         f"1..{GET_REPEAT_MAX}")
    return value


def _txqueuelen(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid txqueuelen {text!r}: expected an integer")
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"invalid txqueuelen {value}: 1..1000000")
    return value


MAX_WORKERS = 64  # pytcp.link.tun.MAX_QUEUES


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --workers {text!r}: expected a number "
                                         f"1..{MAX_WORKERS}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"invalid --workers {text!r}: expected 1..{MAX_WORKERS}")
    return value


def _ifname(text: str) -> str:
    if (not text or len(text.encode()) >= IFNAMSIZ or "/" in text or ":" in text
            or text in (".", "..") or any(c.isspace() for c in text)):
        raise argparse.ArgumentTypeError(
            f"invalid interface name {text!r}: 1-15 characters, no '/', ':' or spaces")
    return text


# --- the parser ------------------------------------------------------------------------------

def _add_link_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("link")
    g.add_argument("--ifname", type=_ifname, default="pytcp0", metavar="NAME",
                   help="TUN interface to create (default: pytcp0)")
    g.add_argument("--host-addr", default="10.77.0.1/24", metavar="ADDR/LEN",
                   help="the kernel side's address on the TUN (default: 10.77.0.1/24)")
    g.add_argument("--addr", default="10.77.0.2",
                   help="pytcp's own address, in the host-addr subnet (default: 10.77.0.2)")
    g.add_argument("--host-addr6", default="fd00:77::1/64", metavar="ADDR6/LEN",
                   help="the kernel side's IPv6 address on the TUN (default: fd00:77::1/64)")
    g.add_argument("--addr6", default="fd00:77::2",
                   help="pytcp's own IPv6 address, in the host-addr6 prefix "
                        "(default: fd00:77::2)")
    g.add_argument("--no-ipv6", action="store_true",
                   help="IPv4 only: no IPv6 address on either side (IPv6 packets ignored)")
    g.add_argument("--mtu", type=_mtu, default=1500, help="interface MTU (default: 1500)")
    g.add_argument("--pcap", metavar="FILE", help="capture every packet to FILE (pcapng)")
    g.add_argument("--impair", metavar="SPEC",
                   help="impair both directions: loss=P,reorder=P,dup=P,corrupt=P,ce=P,"
                        "delay=MS,jitter=MS (ce: mark ECN-capable packets Congestion "
                        "Experienced instead of dropping them, RFC 3168)")
    g.add_argument("--seed", type=_seed, metavar="N",
                   help="seed the ISN secret, port choice and impairment (reproducible runs)")
    g.add_argument("--offload", action=argparse.BooleanOptionalAction, default=True,
                   help="TUN checksum/TSO offloads, on by default when the kernel allows them "
                        "(-v says when it does not): the kernel and pytcp exchange TCP "
                        "super-segments of up to 64 KB; --no-offload: MSS-sized packets end "
                        "to end")
    g.add_argument("--pcap-segments", action="store_true",
                   help="with offloads, capture each super-segment as the MSS-sized packets "
                        "it becomes on the wire (default: as it crosses the TUN)")
    g.add_argument("--txqueuelen", type=_txqueuelen, metavar="N",
                   help="length of the kernel's packet queue towards pytcp (default: room "
                        "for four full receive windows, at least 1000)")
    g.add_argument("--profile", choices=("linux", "rfc"), default="linux",
                   help="TCP defaults: Linux-like (default) or the RFCs' numbers")
    g.add_argument("--cc", choices=("cubic", "newreno"), default=None,
                   help="congestion control (default: the profile's, cubic)")
    g.add_argument("--fastopen", action="store_true",
                   help="TCP Fast Open (RFC 7413): up: accept data in SYNs with a valid "
                        "cookie; get: ask for a cookie, and send the request in the SYN "
                        "once one is cached in this run (see --repeat)")
    g.add_argument("--ecn", action="store_true",
                   help="ask for ECN (RFC 3168) on our connections (default: only accept it)")
    g.add_argument("--time-wait", type=_timeout, default=None, metavar="SECONDS",
                   help="TIME-WAIT length, 2*MSL (default: the profile's, 60 s for linux)")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="log to stderr (-v: pytcp at debug, e.g. requests and TCP state "
                        "transitions; -vv: libraries too)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pytcp",
                     description="A packet-level userspace TCP/IP stack (IPv4 and IPv6) on a Linux TUN device.")
    parser.add_argument("--version", action="store_true",
                        help="print the version and whether the C helpers are loaded")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser("up", help="bring the stack up and serve HTTP/echo/discard",
                        description="Bring pytcp up on a TUN interface and run services on "
                                    "its address. With no service flag: HTTP on port 80 "
                                    "serving the status page and the patterns lab (/lab/).")
    _add_link_flags(up)
    s = up.add_argument_group("services")
    s.add_argument("--http", type=_port, metavar="PORT", help="HTTP/1.1 server on PORT")
    s.add_argument("--root", metavar="DIR",
                   help="serve files under DIR (default: the status page, and the patterns "
                        "lab at /lab/)")
    s.add_argument("--echo", type=_port, metavar="PORT", help="echo service (RFC 862)")
    s.add_argument("--discard", type=_port, metavar="PORT", help="discard service (RFC 863)")
    s.add_argument("--udp-echo", type=_port, metavar="PORT",
                   help="echo service over UDP (RFC 862), on both families")
    s.add_argument("--idle-timeout", type=_timeout, metavar="SECONDS",
                   help="close a connection after this long without a byte from the peer "
                        "(default: HTTP 30, echo/discard 300)")
    s.add_argument("--request-timeout", type=_timeout, metavar="SECONDS",
                   help="an HTTP request must be complete this long after its first byte, "
                        "else 408 (default 60)")
    up.add_argument("--workers", type=_workers, default=1, metavar="N",
                    help="N processes, one per queue of a multi-queue TUN (IFF_MULTI_QUEUE): "
                         "the kernel spreads connections over them by flow hash; each has "
                         "its own stack and status page (default 1)")
    s.add_argument("--send-timeout", type=_timeout, metavar="SECONDS",
                   help="reset a connection whose queued response data the peer takes none "
                        "of for this long (HTTP, echo; default: the idle timeout)")

    get = sub.add_parser("get", help="download a URL from the kernel side through pytcp",
                         description="Bring pytcp up on a TUN interface and download URL "
                                     "(http://IPv4[:port]/path) through it.")
    get.add_argument("url", metavar="URL")
    get.add_argument("-o", "--output", metavar="FILE",
                     help="write the body to FILE (default or '-': stdout)")
    get.add_argument("--timeout", type=_timeout, default=30.0, metavar="SECONDS",
                     help="seconds to wait for the connection and for each read (default 30)")
    get.add_argument("--repeat", type=_repeat, default=1, metavar="N",
                     help=f"fetch URL N times (1..{GET_REPEAT_MAX}), one connection after "
                          "the other, writing each body in turn; with --fastopen the "
                          "second and later requests go in the SYN with the cookie the "
                          "first connection got")
    _add_link_flags(get)

    ss = sub.add_parser("ss", help="the connection table of a running pytcp up (like ss -tni)",
                        description="Show the connections of running pytcp up processes, read "
                                    "over their local control sockets (/run/pytcp/*.sock).")
    ss.add_argument("--ifname", type=_ifname, metavar="NAME",
                    help="only the pytcp up on this interface (default: every one running)")
    ss.add_argument("--json", action="store_true", help="JSON: a list, one object per process")

    # Listed for --help only: main() hands everything after "script" to the runner, which
    # owns its options (-v, --pcap PATH, -h).
    sub.add_parser("script", help="run packetdrill-syntax scripts in virtual time "
                                  "(pytcp script -h)")
    return parser


# --- validation ------------------------------------------------------------------------------

@dataclass
class LinkOptions:
    ifname: str
    host: ipaddress.IPv4Interface
    addr: ipaddress.IPv4Address
    mtu: int
    pcap: Path | None
    impair: Any | None  # pytcp.link.impair.ImpairSpec
    seed: int | None
    offload: bool = False  # asked for; after open_link: whether the TUN has them
    pcap_segments: bool = False
    txqueuelen: int | None = None  # None: txqueuelen_for(the receive window, MTU)
    profile: str = "linux"
    cc: str | None = None
    fastopen: bool = False
    ecn: bool = False
    time_wait: float | None = None  # --time-wait: TcpConfig.time_wait
    services: dict[str, int] = field(default_factory=dict)
    root: Path | None = None
    timeouts: dict[str, float] = field(default_factory=dict)  # idle/request/send, if given
    workers: int = 1  # pytcp up --workers: processes, one per TUN queue
    udp_echo: int | None = None  # pytcp up --udp-echo PORT
    host6: ipaddress.IPv6Interface | None = None  # None: --no-ipv6
    addr6: ipaddress.IPv6Address | None = None


def _check_ipv6_args(args: argparse.Namespace, mtu: int) -> tuple[
        ipaddress.IPv6Interface | None, ipaddress.IPv6Address | None]:
    """--host-addr6/--addr6 (None, None with --no-ipv6); UsageError with one line."""
    if getattr(args, "no_ipv6", False):
        return None, None
    if mtu < 1280:
        # RFC 8200 5: IPv6 needs links of at least 1280 bytes; a smaller MTU means IPv4 only.
        log.warning("--mtu %d is below IPv6's minimum of 1280: IPv6 off", mtu)
        return None, None
    try:
        host6 = ipaddress.IPv6Interface(args.host_addr6)
    except ValueError:
        raise UsageError(f"invalid --host-addr6 {args.host_addr6!r}: expected IPv6 like "
                         "fd00:77::1/64") from None
    if "/" not in args.host_addr6 or host6.network.prefixlen > 126:
        raise UsageError(f"invalid --host-addr6 {args.host_addr6!r}: needs a prefix length "
                         "of at most 126, e.g. fd00:77::1/64")
    if (host6.ip.is_multicast or host6.ip.is_unspecified or host6.ip.is_loopback
            or host6.ip.is_link_local or host6.ip.ipv4_mapped is not None):
        raise UsageError(f"invalid --host-addr6 {args.host_addr6!r}: not a global or "
                         "unique-local unicast address")
    try:
        addr6 = ipaddress.IPv6Address(args.addr6)
    except ValueError:
        raise UsageError(f"invalid --addr6 {args.addr6!r}: expected an IPv6 address like "
                         "fd00:77::2") from None
    if addr6 not in host6.network:
        raise UsageError(f"invalid --addr6 {addr6}: not in the --host-addr6 prefix "
                         f"{host6.network}")
    if addr6 == host6.ip or addr6 == host6.network.network_address:
        raise UsageError(f"invalid --addr6 {addr6}: the kernel side's or the subnet-router "
                         "anycast address")
    return host6, addr6


def check_link_args(args: argparse.Namespace) -> LinkOptions:
    """Validate the link flags; raise UsageError with one line."""
    try:
        host = ipaddress.ip_interface(args.host_addr)
    except ValueError:
        raise UsageError(f"invalid --host-addr {args.host_addr!r}: expected IPv4 like "
                         "10.77.0.1/24") from None
    if not isinstance(host, ipaddress.IPv4Interface):
        raise UsageError(f"invalid --host-addr {args.host_addr!r}: only IPv4 is supported")
    if "/" not in args.host_addr or host.network.prefixlen > 30:
        raise UsageError(f"invalid --host-addr {args.host_addr!r}: needs a prefix length of "
                         "at most 30, e.g. 10.77.0.1/24")
    net = host.network
    if host.ip in (net.network_address, net.broadcast_address) or host.ip.is_multicast \
            or host.ip.is_unspecified or host.ip.is_loopback:
        raise UsageError(f"invalid --host-addr {args.host_addr!r}: not a unicast host address")
    try:
        addr = ipaddress.IPv4Address(args.addr)
    except ValueError:
        raise UsageError(f"invalid --addr {args.addr!r}: expected an IPv4 address like "
                         "10.77.0.2") from None
    if addr not in net:
        raise UsageError(f"invalid --addr {addr}: not in the --host-addr subnet {net}")
    if addr in (net.network_address, net.broadcast_address):
        raise UsageError(f"invalid --addr {addr}: the network or broadcast address of {net}")
    if addr == host.ip:
        raise UsageError(f"invalid --addr {addr}: the same as the kernel side's address")
    impair = None
    if args.impair is not None:
        from pytcp.link.impair import ImpairSpec

        try:
            impair = ImpairSpec.parse(args.impair)
        except ValueError as exc:
            raise UsageError(f"invalid --impair {args.impair!r}: {exc}") from None
    pcap = None
    if args.pcap is not None:
        pcap = Path(args.pcap)
        if pcap.is_dir():
            raise UsageError(f"invalid --pcap {args.pcap!r}: is a directory")
        if not pcap.absolute().parent.is_dir():
            raise UsageError(f"invalid --pcap {args.pcap!r}: no such directory "
                             f"{str(pcap.absolute().parent)!r}")
    host6, addr6 = _check_ipv6_args(args, args.mtu)
    return LinkOptions(args.ifname, host, addr, args.mtu, pcap, impair, args.seed,
                       host6=host6, addr6=addr6,
                       offload=args.offload, profile=args.profile, cc=args.cc,
                       txqueuelen=args.txqueuelen, pcap_segments=args.pcap_segments,
                       fastopen=bool(getattr(args, "fastopen", False)),
                       ecn=bool(getattr(args, "ecn", False)),
                       time_wait=args.time_wait)


def check_up_args(args: argparse.Namespace) -> LinkOptions:
    opts = check_link_args(args)
    services = {name: getattr(args, name) for name in ("http", "echo", "discard")
                if getattr(args, name) is not None}
    udp_echo = getattr(args, "udp_echo", None)
    if not services and udp_echo is None:
        services = {"http": DEFAULT_HTTP_PORT}
    seen: dict[int, str] = {}
    for name, port in services.items():
        if port in seen:
            raise UsageError(f"port {port} given to both --{seen[port]} and --{name}")
        seen[port] = name
    if args.root is not None:
        if "http" not in services:  # with no service flag at all, HTTP on 80 serves --root
            raise UsageError("--root needs --http PORT")
        root = Path(args.root)
        if not root.is_dir():
            raise UsageError(f"invalid --root {args.root!r}: no such directory")
        if not os.access(root, os.R_OK | os.X_OK):
            raise UsageError(f"invalid --root {args.root!r}: not readable")
        opts.root = root.resolve()
    opts.services = services
    opts.udp_echo = udp_echo
    opts.workers = getattr(args, "workers", 1)
    if opts.workers > 1 and opts.pcap is not None:
        raise UsageError("--pcap records one process's packets: use it with --workers 1")
    opts.timeouts = {name: value for name in ("idle", "request", "send")
                     if (value := getattr(args, f"{name}_timeout", None)) is not None}
    return opts


def have_net_admin() -> bool:
    """Whether this process holds CAP_NET_ADMIN (needed to create a TUN interface)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


def check_environment(ifname: str) -> None:
    """Root, /dev/net/tun, a free interface name; raise UsageError with one line."""
    if not have_net_admin():
        raise UsageError("creating a TUN interface needs root (CAP_NET_ADMIN): run as root")
    if not os.path.exists(TUN_PATH):
        raise UsageError(f"no {TUN_PATH}: load the tun module (modprobe tun) or give the "
                         "container --device /dev/net/tun")
    try:
        socket.if_nametoindex(ifname)
    except OSError:
        return
    from pytcp.link.tun import taken_message

    raise UsageError(taken_message(ifname))


# --- bringing the stack up -------------------------------------------------------------------

# pytcp up --fastopen: Fast Open connections a listener lets wait in their handshake
# (RFC 7413 5.1 bound; Linux's TCP_FASTOPEN queue length).
FASTOPEN_QUEUE = 256


def tcp_config(opts: LinkOptions) -> Any:
    """The engine's TcpConfig: the profile, the congestion control, GSO with offloads."""
    from pytcp.tcp.config import TcpConfig

    cfg = TcpConfig.rfc() if opts.profile == "rfc" else TcpConfig.linux()
    changes: dict[str, Any] = {}
    if opts.cc is not None:
        changes["congestion"] = opts.cc
    if opts.time_wait is not None:
        changes["time_wait"] = opts.time_wait
    if opts.offload:
        changes["max_segment_payload"] = 65000  # super-segments; the kernel cuts them (TSO)
    if opts.ecn:
        changes["ecn"] = 1  # RFC 3168: ECN-setup SYNs (Linux tcp_ecn=1)
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _secret(seed: int | None) -> bytes:
    """The ISN secret (RFC 6528): random, or derived from --seed for reproducible runs."""
    if seed is None:
        return os.urandom(16)
    return hashlib.sha256(b"pytcp-isn-secret:" + str(seed).encode()).digest()[:16]


def open_link(opts: LinkOptions) -> Any:
    """Create and configure the TUN interface; raise UsageError (nothing left behind).

    Called outside the event loop: pyroute2's synchronous IPRoute runs its own asyncio loop
    and refuses to start inside a running one.
    """
    from pytcp.link import LinkError
    from pytcp.link.tun import TunLink, txqueuelen_for

    # Issue 7: the kernel's queue towards pytcp must hold what our advertised window lets
    # the kernel send at once, or a bulk transfer loses packets on a lossless link.
    qlen = opts.txqueuelen
    if qlen is None:
        qlen = txqueuelen_for(tcp_config(opts).recv_buffer, opts.mtu)
    try:
        link = TunLink.open(opts.ifname, host_addr=str(opts.host), mtu=opts.mtu,
                            offload=None if opts.offload else False, txqueuelen=qlen,
                            queues=opts.workers,
                            host_addr6=None if opts.host6 is None else str(opts.host6))
    except LinkError as exc:
        raise UsageError(str(exc)) from None
    if not opts.offload:
        log.info("offloads off (--no-offload): MSS-sized packets end to end")
    elif link.vnet_hdr:
        log.info("TUN offloads on: TSO4 and checksum (super-segments up to 64 KB%s)",
                 "; cut to MSS-sized packets before the impairment" if opts.impair else "")
    else:
        log.info("TUN offloads unavailable (%s): MSS-sized packets", link.offload_error)
    opts.offload = bool(link.vnet_hdr)
    return link


@contextlib.asynccontextmanager
async def stack_up(opts: LinkOptions, link: Any) -> AsyncIterator[Any]:
    """Stack, impairment, pcap and runtime on ``link``, started; yields the ``Runtime``.

    On exit: every connection gets FIN, RST after SHUTDOWN_GRACE seconds, and the capture is
    completed. The caller closes the link (outside the loop, see open_link). Setup failures
    raise UsageError and leave no capture file behind.
    """
    from pytcp.link.impair import Impairment
    from pytcp.pcap import PcapWriter
    from pytcp.runtime import Runtime
    from pytcp.stack import Stack, StackConfig

    loop = asyncio.get_running_loop()
    pcap = None
    runtime = None
    created_pcap = False
    ok = False
    try:
        if opts.pcap is not None:
            existed = opts.pcap.exists()
            try:
                pcap = PcapWriter(
                    opts.pcap, ifname=opts.ifname, ipv4=f"{opts.addr}/{opts.host.network.prefixlen}",
                    description=(f"pytcp {pytcp.__version__} at {opts.addr}"
                                 f"{'' if opts.addr6 is None else ' and ' + str(opts.addr6)}"
                                 f" (kernel side {opts.host}"
                                 f"{'' if opts.host6 is None else ' and ' + str(opts.host6)}"
                                 f"; profile {opts.profile}, "
                                 f"cc {tcp_config(opts).congestion})"))
            except OSError as exc:
                raise UsageError(f"cannot write --pcap {str(opts.pcap)!r}: "
                                 f"{exc.strerror or exc}") from None
            created_pcap = not existed
        rng = random.Random(opts.seed)
        stack = Stack(int(opts.addr), now=loop.time(),
                      config=StackConfig(mtu=opts.mtu, prefixlen=opts.host.network.prefixlen,
                                         # with --impair the stack cuts its super-segments
                                         # itself: the impairment acts per packet
                                         gso=opts.offload and opts.impair is None),
                      tcp_config=tcp_config(opts), secret=_secret(opts.seed), rng=rng,
                      addr6=None if opts.addr6 is None else int(opts.addr6))
        impair_in = impair_out = None
        if opts.impair is not None:
            base = opts.seed if opts.seed is not None else random.SystemRandom().getrandbits(64)
            impair_in = Impairment(opts.impair, random.Random(f"{base}:in"))
            impair_out = Impairment(opts.impair, random.Random(f"{base}:out"))
        runtime = Runtime(stack, link, loop=loop, pcap=pcap, impair_in=impair_in,
                          impair_out=impair_out, pcap_segments=opts.pcap_segments)
        runtime.start()
        ok = True
        yield runtime
    finally:
        try:
            if runtime is not None:
                await runtime.close(graceful_timeout=SHUTDOWN_GRACE)
        finally:
            if pcap is not None:
                with contextlib.suppress(OSError):
                    pcap.close()
                if not ok and created_pcap:
                    with contextlib.suppress(OSError):
                        opts.pcap.unlink()  # type: ignore[union-attr]


# --- pytcp up --------------------------------------------------------------------------------

def _tun_stats(link: Any) -> dict[str, int]:
    """The kernel's counters of the TUN (``tx_dropped``: packets for pytcp that found its
    queue full) and its txqueuelen; empty for links without them."""
    stats = getattr(link, "kernel_stats", None)
    return dict(stats()) if stats is not None else {}


def _services(opts: LinkOptions, runtime: Any, worker: int | None = None) -> dict[str, Service]:
    from pytcp.apps.discard import serve_discard
    from pytcp.apps.echo import serve_echo
    from pytcp.apps.http_server import serve_http
    from pytcp.apps.lab import Lab
    from pytcp.apps.status import StatusSite

    lab = Lab() if opts.root is None else None  # the patterns lab at /lab/ (issue 13)
    status = None if runtime is None or opts.root is not None else StatusSite(
        runtime, dashboard_ports=[opts.services["http"]] if "http" in opts.services else [],
        dynamic=lambda: {"tun": _tun_stats(runtime.link),
                         **({"lab": _lab_counters(lab)} if lab is not None else {})},
        info=dict(interface=opts.ifname, services=opts.services, profile=opts.profile,
                  cc=runtime.stack.tcp_config.congestion, host_addr=str(opts.host),
                  pcap=str(opts.pcap) if opts.pcap else "off",
                  impair=str(opts.impair) if opts.impair else "off",
                  **({} if worker is None else {"worker": worker, "workers": opts.workers})))

    from pytcp.apps import discard, echo, http_server

    t = opts.timeouts
    send = t.get("send")
    table: dict[str, Service] = {
        "http": functools.partial(serve_http, root=opts.root,
                                  status_provider=None if opts.root else status,
                                  idle_timeout=t.get("idle", http_server.IDLE_TIMEOUT),
                                  request_timeout=t.get("request", http_server.REQUEST_TIMEOUT),
                                  send_timeout=send, lab=lab),
        "echo": functools.partial(serve_echo, idle_timeout=t.get("idle", echo.IDLE_TIMEOUT),
                                  send_timeout=send),
        "discard": functools.partial(serve_discard,
                                     idle_timeout=t.get("idle", discard.IDLE_TIMEOUT)),
    }
    return {name: table[name] for name in opts.services}


def _lab_counters(lab: Any) -> dict[str, int]:
    """The lab's counters for the status page (flat: a counter table)."""
    st = lab.status()
    out = {k: int(v) for k, v in st["counters"].items()}
    out.update({f"dropped: {k}": int(v) for k, v in st["drops"].items()})
    out.update(streams_open=st["streams"], long_polls_waiting=st["long_polls"],
               jobs=st["jobs"], topics=st["topics"])
    return out


def _tracked(service: Service, tasks: set[asyncio.Task[Any]]) -> Service:
    """Run ``service`` as a task we can cancel at shutdown, logging what it raises."""
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await service(reader, writer)
        except asyncio.CancelledError:
            pass  # shutdown; swallowed so asyncio's stream callback does not log it
        except Exception:
            log.exception("service failed")
        finally:
            tasks.discard(task)
    return run


def _addr6_note(opts: LinkOptions) -> str:
    """`` addr6=ADDR`` for the ready line (nothing with --no-ipv6)."""
    return "" if opts.addr6 is None else f" addr6={opts.addr6}"


async def run_up(opts: LinkOptions, link: Any, *,
                 ready: Callable[[str], None] | None = None, worker: int | None = None) -> int:
    """Serve until SIGINT/SIGTERM. ``ready`` receives the ``ready ...`` line (default: print
    it); ``worker``: this process's queue number under ``--workers``."""
    from pytcp.api import aio

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: set[asyncio.Task[Any]] = set()
    control = None
    try:
        async with stack_up(opts, link) as runtime:
            control = await _start_control(opts, runtime, worker)
            servers: list[Any] = []
            for name, service in _services(opts, runtime, worker).items():
                port = opts.services[name]
                try:
                    servers.append(await aio.start_server(
                        _tracked(service, tasks), port, runtime=runtime,
                        fastopen=FASTOPEN_QUEUE if opts.fastopen else 0))
                except Exception as exc:  # noqa: BLE001
                    raise UsageError(f"cannot listen on port {port} for {name}: {exc}") from None
            if opts.udp_echo is not None:
                from pytcp.api.dgram import create_datagram_endpoint
                from pytcp.apps.udp_echo import UdpEcho

                try:
                    udp_transport, _ = await create_datagram_endpoint(
                        UdpEcho, ("", opts.udp_echo), runtime=runtime)
                except OSError as exc:
                    raise UsageError(f"cannot bind UDP port {opts.udp_echo} for udp-echo: "
                                     f"{exc}") from None
                servers.append(udp_transport)
            svc = " ".join([f"{n}={p}" for n, p in opts.services.items()]
                           + ([] if opts.udp_echo is None else [f"udp-echo={opts.udp_echo}"]))
            line = f"ready {opts.ifname} {opts.addr} {svc}{_addr6_note(opts)}"
            if ready is not None:
                ready(line)
            else:
                print(line, flush=True)
            log.info("ready: %s %s (kernel side %s) %s; profile %s, congestion control %s",
                     opts.ifname, opts.addr, opts.host, svc, opts.profile,
                     runtime.stack.tcp_config.congestion)
            await stop.wait()
            log.info("shutting down")
            for server in servers:
                server.close()
            # Leaving the block: FIN to every connection, RST after SHUTDOWN_GRACE.
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks), timeout=1.0)
    finally:
        if control is not None:
            await control.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return EXIT_OK


async def _start_control(opts: LinkOptions, runtime: Any, worker: int | None) -> Any:
    """The control socket ``pytcp ss`` reads (pytcp.apps.ss); a failure is only a warning:
    pytcp up serves without it."""
    from pytcp.apps.ss import ControlServer, control_path, ss_snapshot

    path = control_path(opts.ifname, worker)
    server = ControlServer(path, functools.partial(ss_snapshot, runtime, ifname=opts.ifname,
                                                   addr=str(opts.addr), worker=worker))
    try:
        await server.start()
    except OSError as exc:
        log.warning("no control socket for pytcp ss (%s): %s", path, exc)
        return None
    return server


def run_ss(ifname: str | None, as_json: bool) -> int:
    """``pytcp ss``: query every running pytcp up (or the one on ``ifname``)."""
    from pytcp.apps.ss import CONTROL_DIR, find_sockets, format_table, query

    paths = find_sockets(ifname)
    if not paths:
        where = f"on {ifname} " if ifname else ""
        raise UsageError(f"no pytcp up running {where}(no control socket in {CONTROL_DIR})")
    snapshots = []
    for path in paths:
        try:
            snapshots.append(query(path))
        except PermissionError:
            raise UsageError(f"cannot read {path}: permission denied (run as root)") from None
        except (OSError, ValueError) as exc:
            if len(paths) == 1:
                raise UsageError(f"no answer from {path}: {exc} (is pytcp up still "
                                 "running?)") from None
            log.warning("no answer from %s: %s", path, exc)
    if as_json:
        print(json.dumps(snapshots, indent=2, sort_keys=True))
    else:
        sys.stdout.write(format_table(snapshots))
    return EXIT_OK


def run_workers(opts: LinkOptions, link: Any) -> int:
    """``pytcp up --workers N``: fork one process per TUN queue, each a whole pytcp (stack,
    runtime, services) on its queue; the kernel spreads flows over the queues by flow hash
    and keeps a flow on the queue that last wrote it. This process prints one ``ready`` line
    when every worker listens, forwards SIGINT/SIGTERM to them and exits with the worst
    status. The interface goes away when the last worker closes its queue."""
    n = opts.workers
    r, w = os.pipe()
    pids: list[int] = []
    sys.stdout.flush()
    sys.stderr.flush()
    for i in range(n):
        pid = os.fork()
        if pid == 0:  # the worker
            code = EXIT_ERROR
            try:
                os.close(r)
                mine = link.keep_only(i)

                def ready(_line: str) -> None:
                    os.write(w, b"r")
                    os.close(w)

                try:
                    code = asyncio.run(run_up(opts, mine, ready=ready, worker=i))
                finally:
                    mine.close()
            except UsageError as exc:
                print(f"pytcp up: error: worker {i}: {exc}", file=sys.stderr)
            except KeyboardInterrupt:
                code = EXIT_INTERRUPTED
            except BaseException:  # reported; the parent sees the exit status
                log.exception("worker %d failed", i)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    os.close(w)
    link.detach()  # the workers hold the queues now

    def forward(sig: int, _frame: object) -> None:
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        got = 0
        while got < n:  # each worker writes one byte when it listens, then closes its end
            chunk = os.read(r, n)
            if not chunk:
                break  # every worker has written or exited
            got += len(chunk)
        os.close(r)
        if got == n:
            svc = " ".join([f"{name}={p}" for name, p in opts.services.items()]
                           + ([] if opts.udp_echo is None else [f"udp-echo={opts.udp_echo}"]))
            print(f"ready {opts.ifname} {opts.addr} {svc} workers={n}{_addr6_note(opts)}",
                  flush=True)
        else:
            forward(signal.SIGTERM, None)  # one failed to start: stop the others
        worst = EXIT_OK
        for p in pids:
            _, status = os.waitpid(p, 0)
            code = os.waitstatus_to_exitcode(status)
            if code != EXIT_OK and worst == EXIT_OK:
                worst = code if code > 0 else EXIT_ERROR
        return worst if got == n else (worst or EXIT_ERROR)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --- pytcp get -------------------------------------------------------------------------------

def check_get_args(args: argparse.Namespace) -> tuple[LinkOptions, Any]:
    from pytcp.apps.http_client import FetchError, parse_url

    opts = check_link_args(args)
    try:
        url = parse_url(args.url)
    except FetchError as exc:
        raise UsageError(str(exc)) from None
    try:
        host = ipaddress.ip_address(url.host)
    except ValueError:
        raise UsageError(f"invalid URL {args.url!r}: the host must be an IPv4 address or an "
                         "IPv6 one in brackets (pytcp has no DNS resolver)") from None
    if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is None \
            and opts.addr6 is None:
        raise UsageError(f"invalid URL {args.url!r}: an IPv6 host with --no-ipv6")
    if args.output not in (None, "-"):
        out = Path(args.output)
        if out.is_dir():
            raise UsageError(f"invalid -o {args.output!r}: is a directory")
        if not out.absolute().parent.is_dir():
            raise UsageError(f"invalid -o {args.output!r}: no such directory")
    return opts, url


def _fastopen_note(n: int, handle: Any, cached: bool) -> str:
    """One line saying what TCP Fast Open (RFC 7413) did on connection ``n``; ``cached``:
    the client's cache now holds a cookie for the server."""
    sent = handle.conn.syn_data_sent
    if sent:
        how = ("acknowledged by the SYN-ACK" if handle.conn.syn_data_acked
               else "not acknowledged by the SYN-ACK: sent again after it")
        return f"fast open: connection {n}: {sent} request bytes in the SYN, {how}"
    got = "the server gave one" if cached else "the server gave none"
    return f"fast open: connection {n}: no data in the SYN (no usable cookie); {got}"


async def run_get(opts: LinkOptions, link: Any, url: str, output: str | None,
                  timeout: float, repeat: int = 1) -> int:
    from pytcp.api import aio
    from pytcp.apps.http_client import FetchError, ProgressBar, fetch

    # SIGTERM cancels the download like Ctrl-C does, so the cleanup below still runs.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with stack_up(opts, link) as runtime:
        log.info("%s %s (kernel side %s); profile %s, congestion control %s", opts.ifname,
                 opts.addr, opts.host, opts.profile, runtime.stack.tcp_config.congestion)
        handles: list[Any] = []  # each connection's TcpHandle (for the Fast Open note)

        # A 1 MiB stream buffer (asyncio's default 64 KiB pauses reading every 128 KiB,
        # which stalls the engine's delivery between reads on a bulk download).

        async def open_connection(host: str, port: int, **kw: Any) -> Any:
            reader, writer = await aio.open_connection(
                host, port, runtime=runtime, limit=GET_STREAM_LIMIT, fastopen=opts.fastopen,
                **kw)
            handles.append(writer.get_extra_info("pytcp_handle"))
            return reader, writer

        tmp: Path | None = None
        out: BinaryIO
        if output in (None, "-"):
            out = sys.stdout.buffer
        else:
            target = Path(output)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                        dir=target.absolute().parent)
            tmp = Path(name)
            out = os.fdopen(fd, "wb")
        failure: str | None = None
        result = None
        note: str | None = None
        bar = ProgressBar(sys.stderr)
        try:
            for i in range(1, repeat + 1):
                bar = ProgressBar(sys.stderr)
                result = None
                result = await fetch(url, out, open_connection=open_connection,
                                     progress=bar, timeout=timeout,
                                     request_in_syn=opts.fastopen)
                if opts.fastopen and handles:
                    h = handles[-1]
                    entry = runtime.stack.fastopen_cache.get(h.key.remote_addr)
                    note = _fastopen_note(i, h, bool(entry is not None and entry.cookie))
                if i < repeat:
                    bar.finish(result.received)
                    if note:
                        print(note, file=sys.stderr, flush=True)
        except FetchError as exc:
            failure = str(exc)
        finally:  # also when cancelled (Ctrl-C): never leave a partial -o FILE behind
            try:
                out.flush()
                if tmp is not None:
                    out.close()
            except OSError as exc:
                failure = failure or f"cannot write the output: {exc.strerror or exc}"
                if tmp is None:  # stdout is gone (closed pipe): let the exit flush be quiet
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            if tmp is not None and (failure is not None or result is None):
                tmp.unlink(missing_ok=True)
        if failure is not None or result is None:
            bar.finish()
            raise UsageError(failure or "download failed")
        if tmp is not None:
            # mkstemp made it 0600; the file gets the mode any new file would (umask).
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, output)  # type: ignore[arg-type]
        bar.finish(result.received)
        if note:
            print(note, file=sys.stderr, flush=True)
    return EXIT_OK


def _umask() -> int:
    """The process umask (read by setting and restoring it; called on the main thread)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- main ------------------------------------------------------------------------------------

def _setup_logging(verbose: int) -> None:
    """-v: pytcp's own loggers at debug; -vv: every library's too (pyroute2, asyncio)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose >= 2 else logging.WARNING,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose:
        logging.getLogger("pytcp").setLevel(logging.DEBUG)


def _version() -> str:
    try:
        from pytcp.native import HAVE_NATIVE
    except ImportError:
        HAVE_NATIVE = False
    return f"pytcp {pytcp.__version__}\nnative: {'yes' if HAVE_NATIVE else 'no'}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pytcp`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["script"]:
        from pytcp.script.runner import main as run_scripts

        return run_scripts(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2, one line printed)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    if args.version:
        print(_version())
        return EXIT_OK
    if args.command is None:
        print("pytcp: error: choose a command: up, get, ss or script (pytcp --help)",
              file=sys.stderr)
        return EXIT_ERROR
    prog = f"pytcp {args.command}"
    if args.command == "ss":
        try:
            return run_ss(args.ifname, args.json)
        except UsageError as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
    try:
        if args.command == "up":
            opts = check_up_args(args)
        else:
            opts, _ = check_get_args(args)
        check_environment(opts.ifname)
        _setup_logging(args.verbose)
        link = open_link(opts)
        try:
            if args.command == "up":
                if opts.workers > 1:
                    return run_workers(opts, link)
                return asyncio.run(run_up(opts, link))
            return asyncio.run(run_get(opts, link, args.url, args.output, args.timeout,
                                       args.repeat))
        finally:
            tun = _tun_stats(link) if log.isEnabledFor(logging.INFO) else {}
            if tun:
                log.info("%s: kernel tx_packets=%d tx_dropped=%d txqueuelen=%d", opts.ifname,
                         tun.get("tx_packets", 0), tun.get("tx_dropped", 0),
                         tun.get("txqueuelen", 0))
            link.close()  # removes the interface
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except asyncio.CancelledError:  # SIGTERM during pytcp get
        return EXIT_TERMINATED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
