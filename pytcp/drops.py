"""Drop reasons: why a packet from the network was discarded.

Every layer (wire parsers, the stack's demultiplexer, the TCP engine) counts a dropped packet
under one of these reasons instead of raising past the event loop, in the spirit of Linux's
``enum skb_drop_reason``. Add members at the end of the group that owns them.
"""

from __future__ import annotations

import enum


class DropReason(enum.Enum):
    # --- wire: IPv4 ---
    TRUNCATED = "truncated"                      # shorter than the header it claims
    BAD_IP_VERSION = "bad_ip_version"            # version field is not 4
    BAD_IHL = "bad_ihl"                          # IHL < 5 or past the buffer
    BAD_TOTAL_LENGTH = "bad_total_length"        # total length < IHL*4 or > buffer
    BAD_IP_CHECKSUM = "bad_ip_checksum"
    # --- wire: TCP / ICMP ---
    BAD_CHECKSUM = "bad_checksum"                # TCP or ICMP checksum mismatch
    BAD_DATA_OFFSET = "bad_data_offset"          # TCP data offset < 5 or past the segment
    BAD_OPTION = "bad_option"                    # option length 0/1 or past the header
    BAD_ICMP = "bad_icmp"                        # ICMP message too short or malformed
    # --- stack ---
    NOT_FOR_US = "not_for_us"                    # destination address is not ours
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    BAD_SOURCE = "bad_source"                    # broadcast/multicast/zero source (MUST-63)
    BROADCAST_DEST = "broadcast_dest"            # SYN to broadcast/multicast (MUST-57)
    NO_SOCKET = "no_socket"                      # no connection or listener (RST sent if due)
    LISTEN_OVERFLOW = "listen_overflow"          # accept backlog full
    FRAGMENT_TIMEOUT = "fragment_timeout"
    FRAGMENT_OVERLAP = "fragment_overlap"
    FRAGMENT_LIMIT = "fragment_limit"
    ICMP_IGNORED = "icmp_ignored"
    FRAGMENT_INVALID = "fragment_invalid"        # bad fragment length/offset, conflicting ends
    STACK_ERROR = "stack_error"                  # a bug while handling the packet (logged once)
    IPV6_IGNORED = "ipv6_ignored"                # a well-formed IPv6 packet (pytcp is IPv4 only)
    SYN_QUEUE_FULL = "syn_queue_full"            # SYN queue full and SYN cookies off
    SYNCOOKIE_INVALID = "syncookie_invalid"      # an ACK to a listener with a bad/old cookie
    # --- tcp engine (RFC 9293 3.10.7) ---
    OUT_OF_WINDOW = "out_of_window"              # fails the acceptability test
    PAWS = "paws"                                # RFC 7323 5.3 timestamp too old
    BAD_ACK = "bad_ack"                          # unacceptable ACK
    ACK_TOO_OLD = "ack_too_old"                  # RFC 5961 5.2 blind data injection check
    RST_INVALID = "rst_invalid"                  # RST not in window
    RST_CHALLENGED = "rst_challenged"            # in window but not exact: challenge ACK
    SYN_CHALLENGED = "syn_challenged"            # SYN in a synchronized state
    NO_ACK_FLAG = "no_ack_flag"                  # segment without ACK in a synchronized state
    UNEXPECTED_SEGMENT = "unexpected_segment"    # nothing to do with it in this state
    RECV_QUEUE_FULL = "recv_queue_full"          # out-of-order queue memory bound reached


class MalformedPacket(ValueError):
    """A packet from the network that cannot be parsed; carries the drop reason.

    This is the one exception type the wire parsers raise for bad input.
    """

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
