"""Linux TUN device link: raw IPv4 datagrams between the kernel and pytcp.

This module owns :class:`TunLink`: it opens ``/dev/net/tun`` with ``IFF_TUN | IFF_NO_PI``,
makes the descriptor non-blocking, and configures the interface (address, MTU, up) through
pyroute2's netlink ``IPRoute`` (never by running ``ip``). Closing the link removes the
interface. The kernel side of the interface gets ``host_addr``; the stack uses another
address of the same subnet (e.g. host 10.77.0.1/24, stack 10.77.0.2).

With ``offload=True`` the device is opened with ``IFF_VNET_HDR`` and ``TUNSETOFFLOAD``
(``TUN_F_CSUM | TUN_F_TSO4``): every packet then carries a 10-byte ``struct virtio_net_hdr``
(linux/virtio_net.h), which this module adds and strips, so the :class:`pytcp.link.Link`
interface stays "one IPv4 datagram per read/write". ``offload=None`` tries that and falls back
to a plain TUN when the kernel refuses (``offload_error`` says why).

- In: the kernel may hand over TCP super-packets up to 64 KB. A packet flagged
  ``VIRTIO_NET_HDR_F_NEEDS_CSUM`` (the kernel built it; the field holds the pseudo-header sum)
  or ``VIRTIO_NET_HDR_F_DATA_VALID`` (the kernel verified it) is returned as a
  :class:`pytcp.wire.offload.RxPacket`: the stack trusts its TCP checksum instead of
  recomputing it (``gso_size`` and ``csum_partial`` tell a capture or a software
  segmentation what it is). Other packets (e.g. injected through a packet socket) are plain
  ``bytes`` and verified.
- Out: a TCP packet longer than the MTU (a stack with ``StackConfig(gso=True)``) is written
  as a GSO packet: ``gso_type TCPV4``, ``gso_size`` from the packet's ``gso_size`` attribute
  (``pytcp.stack.GsoPacket``, whose TCP checksum field already holds the pseudo-header sum) or
  else MTU minus headers (the field is rewritten to the pseudo-header sum), ``NEEDS_CSUM``;
  the kernel cuts it into segments and finishes the checksums.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import ipaddress
import os
import struct
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, Self, TypeVar

from pytcp import native
from pytcp.link import LinkError
from pytcp.link.fdio import read_packets, write_counted, write_packets
from pytcp.wire.offload import RxPacket

T = TypeVar("T")

# linux/if_tun.h
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFF_MULTI_QUEUE = 0x0100
MAX_QUEUES = 64  # a sane bound for --workers (the kernel allows up to 256 queues)
IFNAMSIZ = 16
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02

# linux/virtio_net.h: struct virtio_net_hdr, native byte order on a legacy TUN device.
VNET_HDR = struct.Struct("=BBHHHH")  # flags gso_type hdr_len gso_size csum_start csum_offset
VNET_HDR_LEN = VNET_HDR.size  # 10
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_F_DATA_VALID = 2
_TRUSTED = VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID
VIRTIO_NET_HDR_GSO_NONE = 0
VIRTIO_NET_HDR_GSO_TCPV4 = 1
_PLAIN_HDR = bytes(VNET_HDR_LEN)
_U16 = struct.Struct("!H")

# A read never truncates a packet, even if someone raises the MTU behind our back.
_READ_SIZE = 65536


IFA_F_NODAD = 0x02  # linux/if_addr.h: no duplicate address detection for this address


def _no_dad(ifname: str) -> None:
    """accept_dad = 0 and disable_ipv6 = 0 on the interface (best effort; IFA_F_NODAD is
    what matters)."""
    for key, value in (("disable_ipv6", "0"), ("accept_dad", "0")):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{ifname}/{key}", "w") as f:
                f.write(value)
        except OSError:
            pass


def _parse_host_addr(host_addr: str) -> ipaddress.IPv4Interface:
    try:
        iface = ipaddress.ip_interface(host_addr)
    except ValueError:
        raise LinkError(f"invalid address {host_addr!r}: expected IPv4 like 10.77.0.1/24") from None
    if not isinstance(iface, ipaddress.IPv4Interface):
        raise LinkError(f"invalid address {host_addr!r}: only IPv4 is supported")
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address) and \
            iface.network.prefixlen < 31:
        raise LinkError(f"invalid address {host_addr!r}: network or broadcast address")
    if iface.ip.is_multicast or iface.ip.is_unspecified:
        raise LinkError(f"invalid address {host_addr!r}: not a unicast address")
    return iface


def taken_message(ifname: str) -> str:
    """The one-line error for an interface name that exists. It never advises deleting it:
    it may be ``lo``, a real NIC or another running pytcp's interface."""
    if os.path.exists(f"/sys/class/net/{ifname}/tun_flags"):
        whose = "a TUN interface (another pytcp up?)"
    else:
        whose = "an interface that is not pytcp's"
    return f"interface name {ifname!r} already taken by {whose}: pick another with --ifname"


def _name_taken(ipr: Any, ifname: str) -> str | None:
    return taken_message(ifname) if ipr.link_lookup(ifname=ifname) else None


def _free_subnet(used: list[ipaddress.IPv4Network],
                 near: ipaddress.IPv4Network) -> ipaddress.IPv4Network | None:
    """A subnet of ``near``'s size next to it that overlaps none of ``used`` (for advice)."""
    step = near.num_addresses
    base = int(near.network_address)
    for i in range(1, 256):
        cand_addr = base + i * step
        if cand_addr + step > 0xFFFFFFFF:
            break
        cand = ipaddress.IPv4Network((cand_addr, near.prefixlen))
        if not any(cand.overlaps(u) for u in used):
            return cand
    return None


def _subnet_taken(ipr: Any, host: ipaddress.IPv4Interface) -> str | None:
    """The one-line error when another interface already has an address in ``host``'s subnet:
    both would route it and traffic would go to the first (e.g. a second ``pytcp up`` with
    the default addresses)."""
    net = host.network
    used: list[ipaddress.IPv4Network] = []
    clash: tuple[str, str] | None = None
    for a in ipr.get_addr(family=2):
        addr = a.get_attr("IFA_ADDRESS")
        if addr is None:
            continue
        other = ipaddress.IPv4Interface(f"{addr}/{a['prefixlen']}")
        used.append(other.network)
        if clash is None and other.network.overlaps(net):
            idx = a["index"]
            try:
                name = ipr.get_links(idx)[0].get_attr("IFLA_IFNAME")
            except Exception:  # noqa: BLE001
                name = f"#{idx}"
            clash = (str(name), str(other))
    if clash is None:
        return None
    hint = ""
    free = _free_subnet(used, net)
    if free is not None:
        hosts = free.hosts()
        first, second = next(hosts), next(hosts)
        hint = f": use another subnet, e.g. --host-addr {first}/{free.prefixlen} --addr {second}"
    return f"subnet {net} is already used by {clash[0]} ({clash[1]}){hint}"


def _have_net_admin() -> bool:
    """Whether this process holds CAP_NET_ADMIN (bit 12 of CapEff)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> 12 & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


_STATS_KEYS = frozenset(("rx_packets", "tx_packets", "rx_dropped", "tx_dropped", "rx_errors",
                         "tx_errors"))
KERNEL_TXQUEUELEN = 500  # the kernel's default for a TUN device (too short for our window)


def txqueuelen_for(window: int, mtu: int, flows: int = 4) -> int:
    """The TUN queue length (packets) that holds ``flows`` whole receive windows of
    ``window`` bytes in MTU-sized segments (with timestamps: MTU - 52 bytes of payload), plus
    room for ACKs: the kernel may send a full window while pytcp is busy, and whatever does not
    fit the queue is dropped (``tx_dropped``) before pytcp could read it. At least 1000."""
    per_packet = max(1, mtu - 52)
    return max(1000, flows * -(-window // per_packet) + 64)


def _netlink(fn: Callable[[], T]) -> T:
    """Run ``fn`` (pyroute2 work) here, or in a short-lived thread when this thread runs an
    asyncio loop: pyroute2 0.9's ``IPRoute`` runs its own loop and fails inside a running one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=work, name="pytcp-netlink", daemon=True)
    t.start()
    t.join(30.0)
    if t.is_alive():
        raise LinkError("netlink configuration did not finish within 30 s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


class TunLink:
    """A configured TUN interface. Use :meth:`open`; ``close()`` removes the interface."""

    def __init__(self, fd: int, ifname: str, host: ipaddress.IPv4Interface, mtu: int,
                 index: int | None, vnet_hdr: bool = False,
                 txqueuelen: int | None = None) -> None:
        self._fd: int | None = fd
        self.ifname = ifname
        self.host = host
        self.host6: ipaddress.IPv6Interface | None = None  # the kernel side's IPv6 address
        self.mtu = mtu
        self.txqueuelen = txqueuelen  # None: the kernel's default
        self.index = index
        self.vnet_hdr = vnet_hdr  # IFF_VNET_HDR with checksum + TSO4 offloads
        self.offload_error: str | None = None  # offload=None fell back: the kernel's reason
        # tx_dropped: the kernel queue was full (EAGAIN); tx_errors: the kernel refused it.
        self.stats: Counter[str] = Counter()
        # open(..., queues=N): the other N-1 queues of a multi-queue device (IFF_MULTI_QUEUE),
        # each a TunLink of its own that never removes the interface.
        self.queues: list[TunLink] = []
        self._owner = True  # close() removes the interface (not a worker's queue)

    # ----- setup -----

    @classmethod
    def open(cls, ifname: str = "pytcp0", host_addr: str = "10.77.0.1/24",
             mtu: int = 1500, *, offload: bool | None = False,
             txqueuelen: int | None = None, queues: int = 1,
             host_addr6: str | None = None) -> TunLink:
        """Create the TUN interface ``ifname``, give the kernel side ``host_addr``, set
        ``mtu`` and bring it up. Raise :class:`LinkError` with a clear message on failure.
        ``offload=True``: virtio-net header with checksum and TSO4 offloads (see module);
        ``None``: the same when the kernel allows it, else a plain TUN (``.vnet_hdr`` False,
        ``.offload_error`` the reason).
        ``txqueuelen``: the length of the kernel's queue of packets for pytcp (the TUN's
        transmit queue; default: the kernel's, 500); see :func:`txqueuelen_for`.
        ``queues > 1``: a multi-queue device (IFF_MULTI_QUEUE); the kernel spreads flows over
        the queues by their hash (and keeps a flow on the queue that last wrote it); the
        returned link is queue 0 and ``.queues`` holds the others.
        ``host_addr6`` (e.g. ``fd00:77::1/64``): the kernel side's IPv6 address, added with
        IFA_F_NODAD (and ``accept_dad`` 0) so it is usable at once: no duplicate address
        detection is left pending when this returns."""
        if txqueuelen is not None and not 1 <= txqueuelen <= 1_000_000:
            raise LinkError(f"invalid txqueuelen {txqueuelen}: 1..1000000")
        if not 1 <= queues <= MAX_QUEUES:
            raise LinkError(f"invalid queue count {queues}: 1..{MAX_QUEUES}")
        if not ifname or len(ifname.encode()) >= IFNAMSIZ or "/" in ifname or \
                any(c.isspace() for c in ifname):
            raise LinkError(f"invalid interface name {ifname!r}: 1-15 characters, no '/' or spaces")
        if not 68 <= mtu <= 65535:
            raise LinkError(f"invalid MTU {mtu}: IPv4 needs 68..65535")
        host = _parse_host_addr(host_addr)
        host6: ipaddress.IPv6Interface | None = None
        if host_addr6 is not None:
            try:
                host6 = ipaddress.IPv6Interface(host_addr6)
            except ValueError:
                raise LinkError(f"invalid IPv6 address {host_addr6!r}: expected like "
                                f"fd00:77::1/64") from None
        fd = cls._open_dev()
        try:
            try:
                from pyroute2 import IPRoute  # type: ignore[import-untyped]
            except ImportError as e:  # pragma: no cover - dependency missing
                raise LinkError(f"pyroute2 is required to configure a TUN device: {e}") \
                    from None

            def lookup() -> tuple[str | None, str | None]:
                with IPRoute() as ipr:
                    return _name_taken(ipr, ifname), _subnet_taken(ipr, host)

            taken, overlap = _netlink(lookup)
            if taken is not None:
                raise LinkError(taken)
            if overlap is not None:
                raise LinkError(overlap)
            fallback: str | None = None
            if offload is None:
                try:
                    cls._set_iff(fd, ifname, True, queues > 1)
                    offload = True
                except LinkError as e:
                    if "offloads not available" not in str(e):
                        raise
                    # TUNSETIFF took the name with IFF_VNET_HDR: start again without it.
                    os.close(fd)
                    fd = cls._open_dev()
                    cls._set_iff(fd, ifname, False, queues > 1)
                    offload, fallback = False, str(e)
            else:
                cls._set_iff(fd, ifname, offload, queues > 1)
        except BaseException:
            os.close(fd)
            raise
        link = cls(fd, ifname, host, mtu, None, offload, txqueuelen)
        try:
            for _ in range(queues - 1):
                qfd = cls._open_dev()
                try:
                    cls._set_iff(qfd, ifname, offload, True)
                except BaseException:
                    os.close(qfd)
                    raise
                q = cls(qfd, ifname, host, mtu, None, offload)
                q._owner = False
                link.queues.append(q)
        except BaseException:
            link.close()
            raise
        link.offload_error = fallback
        link.host6 = host6

        def configure() -> None:
            with IPRoute() as ipr:
                found = ipr.link_lookup(ifname=ifname)
                if not found:
                    raise LinkError(f"TUN interface {ifname!r} vanished right after creation")
                link.index = idx = found[0]
                for q in link.queues:
                    q.index = idx
                ipr.link("set", index=idx, mtu=mtu)
                if txqueuelen is not None:
                    ipr.link("set", index=idx, txqlen=txqueuelen)
                ipr.addr("add", index=idx, address=str(host.ip),
                         prefixlen=host.network.prefixlen)
                if host6 is not None:
                    _no_dad(ifname)
                    try:
                        ipr.addr("add", index=idx, address=str(host6.ip),
                                 prefixlen=host6.network.prefixlen, flags=IFA_F_NODAD)
                    except Exception as e:  # noqa: BLE001 - one clear line for the user
                        raise LinkError(f"adding {host6} to {ifname!r} failed ({e}); is IPv6 "
                                        f"disabled (net.ipv6.conf.all.disable_ipv6)? "
                                        f"--no-ipv6 turns it off") from None
                ipr.link("set", index=idx, state="up")

        try:
            _netlink(configure)
        except BaseException as e:
            link.close()
            if isinstance(e, LinkError) or not isinstance(e, Exception):
                raise
            raise LinkError(f"configuring {ifname!r} failed: {e}") from e
        return link

    @staticmethod
    def _open_dev() -> int:
        if not _have_net_admin():
            # Before anything else (netlink, pyroute2's lazy imports): the one message that
            # matters, whatever the device's mode and wherever Python is installed.
            raise LinkError("creating a TUN device needs root (CAP_NET_ADMIN): not root")
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise LinkError("no /dev/net/tun: load the tun module (modprobe tun) or run "
                            "the container with --device /dev/net/tun") from None
        except PermissionError:
            raise LinkError("cannot open /dev/net/tun: not root (run as root or with "
                            "CAP_NET_ADMIN)") from None
        return fd

    @staticmethod
    def _set_iff(fd: int, ifname: str, offload: bool = False, multi_queue: bool = False) -> None:
        """TUNSETIFF: attach ``fd`` to a new TUN interface ``ifname`` (or, ``multi_queue``,
        to one more queue of it), then non-blocking."""
        flags = (IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offload else 0)
                 | (IFF_MULTI_QUEUE if multi_queue else 0))
        ifr = struct.pack("16sH22x", ifname.encode(), flags)
        try:
            fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as e:
            if e.errno == errno.EPERM:
                raise LinkError("creating a TUN device needs root (CAP_NET_ADMIN): not root") \
                    from None
            if e.errno in (errno.EBUSY, errno.EEXIST, errno.EINVAL):
                raise LinkError(f"interface name {ifname!r} already taken") from None
            raise LinkError(f"TUNSETIFF {ifname!r} failed: {e.strerror}") from None
        if offload:
            try:
                fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
                fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4)
            except OSError as e:
                raise LinkError(f"TUN offloads not available on {ifname!r}: {e.strerror}") \
                    from None
        os.set_blocking(fd, False)

    # ----- Link protocol -----

    def fileno(self) -> int:
        if self._fd is None:
            raise LinkError(f"TUN link {self.ifname!r} is closed")
        return self._fd

    def read_batch(self, max_packets: int = 64) -> list[bytes]:
        """Read until the device is empty (EAGAIN) or ``max_packets`` were read."""
        fd = self._fd
        if fd is None:
            return []
        if self.vnet_hdr:
            return self._read_batch_vnet(fd, max_packets)
        return read_packets(fd, _READ_SIZE, max_packets, self.stats)

    def _read_batch_vnet(self, fd: int, max_packets: int) -> list[bytes]:
        out: list[bytes] = []
        read = os.read
        stats = self.stats
        unpack = VNET_HDR.unpack_from
        try:
            while len(out) < max_packets:
                data = read(fd, _READ_SIZE + VNET_HDR_LEN)
                if len(data) <= VNET_HDR_LEN:
                    if not data:
                        break
                    stats["rx_errors"] += 1
                    continue
                flags, gso_type, _, gso_size, _, _ = unpack(data)
                if flags & _TRUSTED:
                    # The kernel built this packet (NEEDS_CSUM: the TCP checksum field holds
                    # the pseudo-header sum) or verified it (DATA_VALID): trust, not recompute.
                    pkt = RxPacket(memoryview(data)[VNET_HDR_LEN:])
                    if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
                        pkt.csum_partial = True
                    if gso_type != VIRTIO_NET_HDR_GSO_NONE:
                        pkt.gso_size = gso_size
                        stats["rx_gso"] += 1
                    out.append(pkt)
                else:
                    if gso_type != VIRTIO_NET_HDR_GSO_NONE:
                        stats["rx_gso"] += 1
                    out.append(data[VNET_HDR_LEN:])
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            stats["rx_errors"] += 1
        stats["rx_packets"] += len(out)
        return out

    def _vnet_header(self, packet: bytes | bytearray | memoryview) -> list[Any]:
        """The iovec for one packet on an IFF_VNET_HDR device."""
        n = len(packet)
        if n <= self.mtu or n < 40 or packet[9] != 6 or packet[0] >> 4 != 4:
            return [_PLAIN_HDR, packet]
        # A TCP super-packet: let the kernel cut it (TSO) and finish the checksums.
        ihl = (packet[0] & 0x0F) * 4
        thl = (packet[ihl + 12] >> 4) * 4
        hlen = ihl + thl
        self.stats["tx_gso"] += 1
        gso = getattr(packet, "gso_size", 0)
        if gso:  # pytcp.stack.GsoPacket: its checksum field holds the pseudo-header sum
            return [VNET_HDR.pack(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, hlen,
                                  gso, ihl, 16), packet]
        src, dst = struct.unpack_from("!II", packet, 12)
        head = bytearray(memoryview(packet)[:hlen])
        _U16.pack_into(head, ihl + 16, native.pseudo_header_sum(src, dst, 6, n - ihl))
        vh = VNET_HDR.pack(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, hlen,
                           self.mtu - hlen, ihl, 16)
        return [vh, head, memoryview(packet)[hlen:]]

    def write(self, packet: bytes | bytearray | memoryview) -> None:
        """Hand one IPv4 datagram to the kernel; drop (and count) rather than block."""
        fd = self._fd
        if fd is None:
            self.stats["tx_errors"] += 1
            return
        if self.vnet_hdr:
            write_counted(self.stats, os.writev, fd, self._vnet_header(packet))
        else:
            write_counted(self.stats, os.write, fd, packet)

    def write_batch(self, packets: list[Any]) -> int:
        """``write`` for each packet in one loop; returns how many the kernel took."""
        fd = self._fd
        if fd is None:
            self.stats["tx_errors"] += len(packets)
            return 0
        if self.vnet_hdr:
            vnet = self._vnet_header
            return write_packets(fd, [vnet(p) for p in packets], self.stats, os.writev)
        return write_packets(fd, packets, self.stats)

    def kernel_stats(self) -> dict[str, int]:
        """The kernel's counters of the interface (netlink IFLA_STATS64) and its txqueuelen:
        ``tx_packets``/``tx_dropped`` are packets towards pytcp and those the queue had no
        room for; ``rx_*`` are pytcp's packets. Empty when unavailable (closed)."""
        if self.index is None or self._fd is None:
            return {}
        index = self.index
        fast = self._sysfs_stats(index)
        if fast is not None:
            return fast

        def query() -> dict[str, int]:
            from pyroute2 import IPRoute

            with IPRoute() as ipr:
                msg = ipr.get_links(index)[0]
                stats = msg.get_attr("IFLA_STATS64") or {}
                out = {k: int(v) for k, v in dict(stats).items() if k in _STATS_KEYS}
                out["txqueuelen"] = int(msg.get_attr("IFLA_TXQLEN") or 0)
                return out

        try:
            return _netlink(query)
        except Exception:  # noqa: BLE001 - statistics only; never fail the caller
            return {}

    def _sysfs_stats(self, index: int) -> dict[str, int] | None:
        """The same counters from /sys/class/net (a few file reads, no netlink thread: the
        status page calls this inside the event loop), or None when that sysfs is not this
        namespace's (the interface index there differs)."""
        base = f"/sys/class/net/{self.ifname}/"
        try:
            with open(base + "ifindex") as f:
                if int(f.read()) != index:
                    return None
            out: dict[str, int] = {}
            for key in sorted(_STATS_KEYS):
                with open(base + "statistics/" + key) as f:
                    out[key] = int(f.read())
            with open(base + "tx_queue_len") as f:
                out["txqueuelen"] = int(f.read())
        except (OSError, ValueError):
            return None
        return out

    def close(self) -> None:
        """Close the descriptor, which destroys the (non-persistent) interface; if it is
        still there, delete it through netlink. Safe to call twice."""
        for q in self.queues:
            q.close()
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.close(fd)
        except OSError:
            pass
        if self.index is None or not self._owner:
            return
        index = self.index

        def remove() -> None:
            from pyroute2 import IPRoute

            with IPRoute() as ipr:
                found = ipr.link_lookup(ifname=self.ifname)
                if found and found[0] == index:
                    ipr.link("del", index=index)

        try:
            _netlink(remove)
        except Exception:  # noqa: BLE001 - best effort; the device is normally gone already
            pass

    def detach(self) -> None:
        """Close this process's descriptors (all queues) without removing the interface: a
        parent that handed the queues to worker processes. The kernel removes the interface
        when the last descriptor of it, in any process, is closed."""
        for q in [self, *self.queues]:
            fd, q._fd = q._fd, None
            q._owner = False
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def keep_only(self, queue: int) -> TunLink:
        """In a worker process: close every queue but ``queue`` (0 = this link) and return
        that queue's link, which removes nothing on ``close()`` but its descriptor."""
        links = [self, *self.queues]
        keep = links[queue]
        for i, q in enumerate(links):
            if i != queue:
                fd, q._fd = q._fd, None
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        keep.queues = []
        keep._owner = False
        return keep

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TunLink({self.ifname!r}, host={self.host}, mtu={self.mtu})"
