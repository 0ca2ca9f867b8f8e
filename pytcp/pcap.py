"""pcapng capture writer: what pytcp put on and took off its link, readable by Wireshark/tshark.

Owns the file format only (pcapng, draft-ietf-opsawg-pcapng): one Section Header Block, one
Interface Description Block (link type RAW = 101, the packet starts at the IPv4 header, and
``if_tsresol`` saying nanosecond or microsecond timestamps), then one Enhanced Packet Block per
packet with the ``epb_flags`` direction bits (inbound = 1, outbound = 2) and, when given, an
``opt_comment`` saying why the packet was sent or dropped (Wireshark shows it as
``frame.comment``). The interface block names the interface (``if_name``), describes it
(``if_description``, e.g. pytcp's address) and gives the kernel side's address
(``if_IPv4addr``). All integers are little-endian and the byte-order magic says so.

Blocks are buffered; :meth:`PcapWriter.flush` (the runtime flushes once per batch) hands the
whole buffer to one unbuffered ``write(2)`` (repeated only for what a short write left):
nothing waits in a user-space buffer that a crash would lose or cut at a random place. A
process killed with SIGKILL leaves every block it flushed whole, except at most the tail of
the write under way at that instant (Linux may stop a write at a page boundary); readers show
every block up to there (tshark then warns that the file was cut short).
:meth:`PcapWriter.close` leaves a complete, valid file.
"""

from __future__ import annotations

import io
import ipaddress
import os
import struct
from typing import BinaryIO, Literal

# Block types (pcapng section 4).
BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D

# Link types (tcpdump.org/linktypes.html).
LINKTYPE_RAW = 101  # raw IPv4/IPv6, version taken from the first nibble
LINKTYPE_IPV4 = 228

# Option codes.
OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_USERAPPL = 4
IF_NAME = 2
IF_DESCRIPTION = 3
IF_IPV4ADDR = 4
IF_TSRESOL = 9
EPB_FLAGS = 2

# epb_flags bits 0-1: inbound/outbound (pcapng 4.3.1).
DIR_IN = 1
DIR_OUT = 2
_DIRECTIONS = {"in": DIR_IN, "out": DIR_OUT}

Direction = Literal["in", "out"]


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * _pad4(len(value))


def _comment_option(comment: str) -> bytes:
    """opt_comment (UTF-8, pcapng 3.5); a value longer than 65535 bytes is cut."""
    raw = comment.encode("utf-8", "replace")[:0xFFFF]
    return _option(OPT_COMMENT, raw)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


class PcapWriter:
    """Write a pcapng capture of raw IPv4 packets.

    ``PcapWriter(path_or_file, *, tsresol=9, linktype=LINKTYPE_RAW, snaplen=0,
    ifname="pytcp0", description=None, ipv4=None)``: ``tsresol`` is the decimal exponent of
    the timestamp unit (9 = nanoseconds, 6 = microseconds); ``description`` goes in
    ``if_description``, ``ipv4`` (``"10.77.0.1/24"``) in ``if_IPv4addr``.
    ``write(ts, packet, direction, comment)`` takes ``ts`` as float seconds or int nanoseconds
    since the Unix epoch. A file object passed in is not closed by :meth:`close` (only
    flushed); a path opened here is (unbuffered, see the module docstring).
    """

    def __init__(
        self,
        path_or_file: str | os.PathLike[str] | BinaryIO,
        *,
        tsresol: int = 9,
        linktype: int = LINKTYPE_RAW,
        snaplen: int = 0,
        ifname: str = "pytcp0",
        description: str | None = None,
        ipv4: str | None = None,
    ) -> None:
        if tsresol not in (6, 9):
            raise ValueError("tsresol must be 6 (microseconds) or 9 (nanoseconds)")
        if linktype not in (LINKTYPE_RAW, LINKTYPE_IPV4):
            raise ValueError("linktype must be LINKTYPE_RAW (101) or LINKTYPE_IPV4 (228)")
        self._owns_file: bool
        self._f: BinaryIO
        if isinstance(path_or_file, (str, os.PathLike)):
            # Unbuffered: flush() is one write(2) of whole blocks (see the module docstring).
            self._f = open(path_or_file, "wb", buffering=0)  # noqa: SIM115 - closed in close()
            self._owns_file = True
        else:
            self._f = path_or_file
            self._owns_file = False
        self.tsresol = tsresol
        self.linktype = linktype
        self.snaplen = snaplen
        self._ns_div = 1 if tsresol == 9 else 1000
        self.packets_written = 0
        self.closed = False
        self._buf = bytearray()
        self._buf += self._section_header()
        self._buf += self._interface_description(ifname, description, ipv4)
        self.flush()

    # -- blocks ------------------------------------------------------------------------------

    @staticmethod
    def _section_header() -> bytes:
        # pcapng 4.1: magic, version 1.0, section length -1 (unknown), options.
        body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
        body += _option(SHB_USERAPPL, b"pytcp")
        body += _option(OPT_ENDOFOPT, b"")
        return _block(BT_SHB, body)

    def _interface_description(self, ifname: str, description: str | None,
                               ipv4: str | None) -> bytes:
        # pcapng 4.2: link type, reserved, snaplen (0 = no limit), options.
        body = struct.pack("<HHI", self.linktype, 0, self.snaplen)
        body += _option(IF_NAME, ifname.encode())
        if description:
            body += _option(IF_DESCRIPTION, description.encode("utf-8", "replace")[:0xFFFF])
        if ipv4:
            iface = ipaddress.IPv4Interface(ipv4)
            body += _option(IF_IPV4ADDR, iface.ip.packed + iface.netmask.packed)
        body += _option(IF_TSRESOL, bytes([self.tsresol]))
        body += _option(OPT_ENDOFOPT, b"")
        return _block(BT_IDB, body)

    # -- packets -----------------------------------------------------------------------------

    def write(
        self,
        ts: float,
        packet: bytes | bytearray | memoryview,
        direction: Direction | None = None,
        comment: str | None = None,
    ) -> None:
        """Append one Enhanced Packet Block (buffered until :meth:`flush`).

        ``ts``: float seconds or int nanoseconds since the epoch. ``direction``: "in", "out"
        or None (no epb_flags option). ``comment``: the packet's opt_comment (why it was sent
        or dropped), or None.
        """
        if self.closed:
            raise ValueError("write to a closed PcapWriter")
        if isinstance(ts, float):
            ns = round(ts * 1e9)
        else:
            ns = int(ts)
        units = ns // self._ns_div
        orig_len = len(packet)
        cap_len = orig_len if self.snaplen == 0 else min(orig_len, self.snaplen)
        buf = self._buf
        flags_opt = b""
        if direction is not None:
            try:
                flags_opt = struct.pack("<HHI", EPB_FLAGS, 4, _DIRECTIONS[direction])
            except KeyError:
                raise ValueError(f"direction must be 'in' or 'out', not {direction!r}") from None
        if comment:
            flags_opt += _comment_option(comment)
        if flags_opt:
            flags_opt += b"\x00\x00\x00\x00"  # opt_endofopt
        pad = _pad4(cap_len)
        total = 32 + cap_len + pad + len(flags_opt)
        # pcapng 4.3: interface id, timestamp high/low, captured length, original length.
        buf += struct.pack(
            "<IIIIIII", BT_EPB, total, 0, (units >> 32) & 0xFFFFFFFF, units & 0xFFFFFFFF,
            cap_len, orig_len,
        )
        buf += packet if cap_len == orig_len else memoryview(packet)[:cap_len]
        if pad:
            buf += b"\x00" * pad
        buf += flags_opt
        buf += struct.pack("<I", total)
        self.packets_written += 1

    def flush(self) -> None:
        """Write the buffered blocks to the file and flush it."""
        buf = self._buf
        if buf:
            view = memoryview(buf)
            try:
                while view:
                    n = self._f.write(view)
                    if not n:  # (a full disk, a non-blocking file): bounded, not a spin
                        raise OSError("pcap: the capture file took no bytes")
                    view = view[n:]
            finally:
                view.release()
            buf.clear()
        try:
            self._f.flush()
        except (ValueError, io.UnsupportedOperation):  # pragma: no cover - closed/unflushable
            pass

    def close(self) -> None:
        """Flush; close the file if this writer opened it. Idempotent."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        if self._owns_file:
            self._f.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
