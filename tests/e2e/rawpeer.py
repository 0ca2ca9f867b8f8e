"""A crafted-packet peer on the kernel side of pytcp's TUN, for packets the kernel never sends.

Owns: injecting hand-built IPv4 packets into a namespace with a raw socket (IPPROTO_RAW, so
IP_HDRINCL) from an address the kernel does not own (10.77.0.9 inside the TUN's subnet), and
reading the stack's replies with an AF_PACKET socket bound to the TUN interface. Forwarding is
off in a fresh namespace, so the kernel silently drops the replies to that address itself and
never answers them with RSTs of its own.

Packets are built and parsed with scapy: an oracle independent of ``pytcp.wire``.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable

from scapy.layers.inet import IP, TCP

from tools.netns import Netns

ETH_P_IP = 0x0800
PEER_ADDR = "10.77.0.9"
STACK_ADDR = "10.77.0.2"

# TCP flag bits as scapy reports them in int(pkt[TCP].flags).
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def _csum(data: bytes) -> int:
    """RFC 1071 checksum (inverted), written here so that it is independent of pytcp."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
             window: int = 65535, options: bytes = b"", payload: bytes = b"",
             tcp_checksum: int | None = None) -> bytes:
    """A whole IPv4/TCP packet with both checksums (``tcp_checksum`` forces the TCP one).
    Much faster than scapy, for floods of thousands of packets; ``options`` must already be
    padded to a multiple of 4 bytes."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    thl = 20 + len(options)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (thl // 4) << 4, flags, window, 0, 0) + options + payload
    if tcp_checksum is None:
        tcp_checksum = _csum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", tcp_checksum) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return ip + tcp


# A Linux-like SYN's options: MSS 1460, SACK-permitted, timestamps, window scale 7.
LINUX_SYN_OPTIONS = (struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" +
                     struct.pack("!BBII", 8, 10, 12345, 0) + b"\x01\x03\x03\x07")


class RawPeer:
    """Send crafted packets to the stack and wait for its replies (bounded waits only)."""

    def __init__(self, ns: Netns, ifname: str = "pytcp0", addr: str = PEER_ADDR,
                 stack_addr: str = STACK_ADDR) -> None:
        self.addr = addr
        self.stack_addr = stack_addr
        self.ifname = ifname
        self.tx = ns.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.rx = ns.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        self.rx.bind((ifname, ETH_P_IP))
        self.rx.setblocking(False)
        self.seen: list[IP] = []  # every packet from the stack to us, in arrival order

    def close(self) -> None:
        self.tx.close()
        self.rx.close()

    # -- sending -----------------------------------------------------------------------
    def send_raw(self, packet: bytes) -> None:
        """Through the kernel's IP layer (which fills in the IP checksum and total length)."""
        self.tx.sendto(packet, (self.stack_addr, 0))

    def send_link(self, packet: bytes) -> None:
        """Straight onto the TUN, byte for byte (malformed IP headers included)."""
        self.rx.sendto(packet, (self.ifname, ETH_P_IP))

    def send_many(self, packets: list[bytes], link: bool = False, chunk: int = 0,
                  pause: float = 0.0) -> int:
        """Send a burst (through the IP layer, or onto the TUN when ``link``); a send the
        kernel refuses (its queue is full: ENOBUFS) is skipped. With ``chunk``, sleep
        ``pause`` seconds after every ``chunk`` packets (so the TUN queue, which drops what
        does not fit, lets them all reach pytcp). Returns how many went."""
        sent = 0
        for i, pkt in enumerate(packets):
            if chunk and i and i % chunk == 0:
                time.sleep(pause)
            try:
                if link:
                    self.rx.sendto(pkt, (self.ifname, ETH_P_IP))
                else:
                    self.tx.sendto(pkt, (self.stack_addr, 0))
                sent += 1
            except OSError:
                pass
        return sent

    def send_tcp(self, sport: int, dport: int, seq: int, ack: int = 0, flags: str = "S",
                 payload: bytes = b"", window: int = 65535,
                 options: list[tuple[str, object]] | None = None,
                 chksum: int | None = None) -> bytes:
        """Build an IPv4/TCP packet from us to the stack, send it, and return its bytes.

        ``chksum`` forces the TCP checksum field (to send a bad one on purpose).
        """
        tcp = TCP(sport=sport, dport=dport, seq=seq % 2**32, ack=ack % 2**32, flags=flags,
                  window=window, options=options or [])
        if chksum is not None:
            tcp.chksum = chksum
        pkt = bytes(IP(src=self.addr, dst=self.stack_addr, ttl=64) / tcp / payload)
        self.send_raw(pkt)
        return pkt

    # -- receiving ---------------------------------------------------------------------
    def _poll(self, timeout: float) -> None:
        """Move every packet from the stack to us that arrives within ``timeout`` into seen."""
        ready, _, _ = select.select([self.rx], [], [], max(timeout, 0.0))
        while ready:
            try:
                data = self.rx.recv(70000)
            except BlockingIOError:
                return
            try:
                pkt = IP(data)
            except Exception:  # noqa: BLE001, S112 - not an IPv4 packet scapy can read: skip
                continue
            if pkt.src == self.stack_addr and pkt.dst == self.addr:
                self.seen.append(pkt)

    def expect(self, match: Callable[[IP], bool], timeout: float = 3.0,
               start: int = 0) -> IP | None:
        """First packet (from index ``start`` of ``seen``) that ``match``es, within timeout."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            while index < len(self.seen):
                if match(self.seen[index]):
                    return self.seen[index]
                index += 1
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._poll(min(left, 0.2))

    def expect_tcp(self, sport: int, dport: int, timeout: float = 3.0,
                   want: Callable[[TCP], bool] = lambda t: True) -> TCP | None:
        """A TCP segment from the stack's ``sport`` to our ``dport`` passing ``want``."""
        mark = len(self.seen)

        def match(pkt: IP) -> bool:
            return (TCP in pkt and pkt[TCP].sport == sport and pkt[TCP].dport == dport
                    and want(pkt[TCP]))

        got = self.expect(match, timeout, start=mark)
        return got[TCP] if got is not None else None

    def quiet_for(self, seconds: float, match: Callable[[IP], bool]) -> list[IP]:
        """Listen for ``seconds``; return the packets that ``match`` (expected: none)."""
        mark = len(self.seen)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._poll(min(left, 0.2))
        return [p for p in self.seen[mark:] if match(p)]

    # -- a connection by hand ----------------------------------------------------------
    def handshake(self, sport: int, dport: int, isn: int, mss: int = 1460,
                  sack: bool = True, timeout: float = 3.0) -> TCP:
        """SYN -> SYN-ACK -> ACK with the stack's listener; returns the SYN-ACK.

        No timestamps (so later crafted segments need none) and no window scaling.
        """
        options: list[tuple[str, object]] = [("MSS", mss)]
        if sack:
            options.append(("SAckOK", b""))
        mark = len(self.seen)
        self.send_tcp(sport, dport, isn, flags="S", options=options)
        synack = self.expect(
            lambda p: TCP in p and p[TCP].sport == dport and p[TCP].dport == sport,
            timeout, start=mark)
        if synack is None:
            raise AssertionError(f"no reply to SYN {sport}->{dport} within {timeout} s")
        t: TCP = synack[TCP]
        if int(t.flags) & (SYN | ACK | RST) != SYN | ACK or t.ack != (isn + 1) % 2**32:
            raise AssertionError(f"expected SYN-ACK ack={isn + 1}, got {t.summary()}")
        self.send_tcp(sport, dport, isn + 1, (t.seq + 1) % 2**32, flags="A")
        return t
