"""TCP header and options (RFC 9293 3.1, RFC 7323, RFC 2018): parse from and build into buffers.

(Foundation stub: flags and the options value type are fixed here as the shared contract;
parsing and building are filled in by the wire work.)
"""

from __future__ import annotations

from dataclasses import dataclass

# Flag bits of the 13th/14th header octets (RFC 9293 3.1, RFC 3168).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

# Option kinds (RFC 9293 3.2, RFC 7323, RFC 2018).
OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_SACK = 5
OPT_TIMESTAMP = 8


@dataclass(frozen=True, slots=True)
class TcpOptions:
    """The options of one segment, as values. ``None``/empty means absent."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    sack_blocks: tuple[tuple[int, int], ...] = ()
    timestamp: tuple[int, int] | None = None  # (TSval, TSecr)


NO_OPTIONS = TcpOptions()
