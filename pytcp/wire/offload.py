"""TCP segmentation offload in software, and what a link says about an offloaded packet.

Stateless helpers shared by the link (TUN with virtio-net headers), the stack and the runtime:

- :class:`RxPacket` (a ``bytes``): an IPv4 datagram from a link whose TCP checksum the kernel
  vouched for (virtio-net ``NEEDS_CSUM``: built by the kernel itself, the field holds only the
  pseudo-header sum, ``csum_partial`` is True; ``DATA_VALID``: the kernel verified it). The
  stack does not verify (nor compute) the TCP checksum of such a packet. ``gso_size`` is
  non-zero for a TCP super-packet (the payload size the kernel would cut it into).
- :func:`segment_tcp`: cut an IPv4/TCP super-packet into packets of at most ``gso_size``
  payload bytes, as Linux's ``tcp_gso_segment`` does (sequence numbers advance; CWR on the
  first piece; PSH and FIN on the last; the urgent pointer per piece; IP ident + i), every
  checksum filled in. Used before an impairment stage (so loss acts per packet) and for
  per-MSS captures.
- :func:`fill_checksums`: a copy of a packet with its IPv4 and TCP checksums computed (a
  partial-checksum packet, as a capture should show it).

Nothing here raises for a malformed packet: it is returned unchanged (whole).
"""

from __future__ import annotations

import struct

from pytcp import native

__all__ = ["RxPacket", "fill_checksums", "segment_tcp"]

_PROTO_TCP = 6
_FIN, _PSH, _URG, _CWR = 0x01, 0x08, 0x20, 0x80
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_LEN_ID = struct.Struct("!HH")


class RxPacket(bytes):
    """A received datagram whose TCP checksum the link's kernel vouched for (see module)."""

    gso_size = 0          # non-zero: a TCP super-packet the kernel would cut at this size
    csum_partial = False  # True: the TCP checksum field holds only the pseudo-header sum


def _tcp_offsets(packet: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """(IPv4 header length, TCP header length) of a whole IPv4/TCP packet, else None."""
    n = len(packet)
    if n < 40 or packet[0] >> 4 != 4 or packet[9] != _PROTO_TCP:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if ihl < 20 or n < ihl + 20 or packet[6] & 0x3F or packet[7]:  # MF or offset: fragment
        return None
    thl = (packet[ihl + 12] >> 4) * 4
    if thl < 20 or n < ihl + thl:
        return None
    return ihl, thl


def _finish(pkt: bytearray, ihl: int) -> None:
    """Fill the IPv4 header checksum and the TCP checksum of ``pkt`` (fields rewritten)."""
    pkt[10:12] = b"\0\0"
    _U16.pack_into(pkt, 10, native.checksum(memoryview(pkt)[:ihl]))
    src, dst = struct.unpack_from("!II", pkt, 12)
    pkt[ihl + 16:ihl + 18] = b"\0\0"
    tcp_len = len(pkt) - ihl
    _U16.pack_into(pkt, ihl + 16, native.checksum(
        memoryview(pkt)[ihl:], native.pseudo_header_sum(src, dst, _PROTO_TCP, tcp_len)))


def fill_checksums(packet: bytes | bytearray | memoryview) -> bytes | bytearray:
    """A copy of an IPv4/TCP ``packet`` with both checksums computed; other packets as they
    are."""
    offs = _tcp_offsets(packet)
    if offs is None:
        return packet if not isinstance(packet, memoryview) else bytes(packet)
    pkt = bytearray(packet)
    _finish(pkt, offs[0])
    return pkt


def segment_tcp(packet: bytes | bytearray | memoryview,
                gso_size: int) -> list[bytes | bytearray]:
    """Cut an IPv4/TCP super-packet into packets with at most ``gso_size`` payload bytes
    each, checksums filled. A packet that needs no cut, or is not IPv4/TCP, comes back
    alone (a memoryview as bytes)."""
    offs = _tcp_offsets(packet)
    whole: bytes | bytearray = packet if not isinstance(packet, memoryview) else bytes(packet)
    if offs is None or gso_size <= 0:
        return [whole]
    ihl, thl = offs
    hlen = ihl + thl
    total = min(len(packet), int.from_bytes(packet[2:4], "big") or len(packet))
    n = total - hlen
    if n <= gso_size:
        return [whole]
    mv = memoryview(packet)
    head = bytes(mv[:hlen])
    seq0 = _U32.unpack_from(head, ihl + 4)[0]
    ident0 = _U16.unpack_from(head, 4)[0]
    flags = head[ihl + 13]
    urg_ptr = _U16.unpack_from(head, ihl + 18)[0]
    out: list[bytes | bytearray] = []
    off = 0
    i = 0
    while off < n:
        end = min(off + gso_size, n)
        pkt = bytearray(head)
        pkt += mv[hlen + off:hlen + end]
        _LEN_ID.pack_into(pkt, 2, hlen + end - off, (ident0 + i) & 0xFFFF)
        _U32.pack_into(pkt, ihl + 4, (seq0 + off) & 0xFFFFFFFF)
        f = flags if end == n else flags & ~(_PSH | _FIN)
        if off:
            f &= ~_CWR  # Linux tcp_gso_segment: CWR on the first piece only
        urg = 0
        if flags & _URG:
            left = urg_ptr - off  # the pointer, relative to this piece (RFC 9293 3.8.5)
            if left > 0:
                urg = min(left, 0xFFFF)
            else:
                f &= ~_URG
        pkt[ihl + 13] = f
        _U16.pack_into(pkt, ihl + 18, urg)
        _finish(pkt, ihl)
        out.append(pkt)
        off = end
        i += 1
    return out
