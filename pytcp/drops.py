"""Drop reasons: why a packet from the network was discarded.

Every layer (wire parsers, the stack's demultiplexer, the TCP engine) counts a dropped packet
under one of these reasons instead of raising past the event loop, in the spirit of Linux's
``enum skb_drop_reason``. Add members at the end of the group that owns them.
"""

from __future__ import annotations

import collections
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
    # --- wire: IPv6 / UDP ---
    BAD_IPV6_EXT = "bad_ipv6_ext"                # extension header chain malformed or too long
    ROUTING_HEADER = "routing_header"            # Routing header with segments left (RFC 5095)
    BAD_UDP = "bad_udp"                          # UDP length wrong, or zero checksum over IPv6
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
    IPV6_IGNORED = "ipv6_ignored"                # a well-formed IPv6 packet while IPv6 is off
    SYN_QUEUE_FULL = "syn_queue_full"            # SYN queue full and SYN cookies off
    SYNCOOKIE_INVALID = "syncookie_invalid"      # an ACK to a listener with a bad/old cookie
    MD5_NOT_FOUND = "md5_not_found"              # RFC 2385: a key applies, no MD5 option
    MD5_UNEXPECTED = "md5_unexpected"            # RFC 2385: an MD5 option, no key for the peer
    MD5_FAILURE = "md5_failure"                  # RFC 2385: the MD5 digest does not match
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
    RCV_MEMORY = "rcv_memory"                    # stack-wide receive memory cap (tcp_mem)


class DropCounter(collections.Counter["DropReason"]):
    """A ``Counter`` of drop reasons that also appends each counted reason to ``journal``
    when one is attached (a capture wants to know which packet was dropped and why; the
    stack attaches one list to all its counters while annotating)."""

    journal: list[DropReason] | None = None

    def __setitem__(self, key: DropReason, value: int) -> None:
        journal = self.journal
        if journal is not None:
            journal.append(key)
        super().__setitem__(key, value)


# What a drop reason means, in a sentence: the capture's "dropped: ..." comment and the
# status page's legend.
DROP_DESCRIPTIONS: dict[str, str] = {
    "truncated": "shorter than the header it claims",
    "bad_ip_version": "IP version field is neither 4 nor a well-formed IPv6 packet",
    "bad_ihl": "bad IPv4 header length (IHL < 5 or past the packet)",
    "bad_total_length": "IPv4 total length smaller than the header or past the packet",
    "bad_ip_checksum": "bad IPv4 header checksum",
    "bad_checksum": "bad TCP or ICMP checksum",
    "bad_data_offset": "TCP data offset < 5 or past the segment",
    "bad_option": "malformed TCP option (length 0/1 or past the header)",
    "bad_icmp": "ICMP message too short or malformed",
    "bad_ipv6_ext": "IPv6 extension headers malformed, too many or too long (RFC 8200 4)",
    "routing_header": "IPv6 Routing header with segments left: refused (RFC 8200 4.4, RFC 5095)",
    "bad_udp": "UDP length field wrong, or a zero UDP checksum over IPv6 (RFC 8200 8.1)",
    "not_for_us": "destination address is not pytcp's",
    "unsupported_protocol": "not TCP, UDP or ICMP (answered by ICMP protocol unreachable / ICMPv6 parameter problem)",
    "bad_source": "source is broadcast, multicast, zero or our own address (RFC 1122)",
    "broadcast_dest": "TCP to a broadcast or multicast address (RFC 9293 MUST-57)",
    "no_socket": "no connection or listener for it (RST sent when due, RFC 9293 3.10.7.1)",
    "listen_overflow": "SYN to a listener whose accept backlog is full (the peer retries)",
    "fragment_timeout": "IPv4 fragments never completed a datagram in time",
    "fragment_overlap": "IPv4 fragment overlapping another with different data",
    "fragment_limit": "IPv4 reassembly memory or fragment-count bound reached",
    "icmp_ignored": "ICMP message that is not an echo request or does not match a connection",
    "fragment_invalid": "bad IPv4 fragment length/offset or conflicting ends",
    "stack_error": "a bug in pytcp while handling the packet (logged once)",
    "ipv6_ignored": "an IPv6 packet while IPv6 is off (--no-ipv6)",
    "syn_queue_full": "SYN dropped: the SYN queue is full and SYN cookies are off",
    "syncookie_invalid": "ACK to a listener carrying a bad or expired SYN cookie",
    "md5_not_found": "no TCP MD5 signature on a segment from a peer with a key (RFC 2385 2.0)",
    "md5_unexpected": "TCP MD5 signature from a peer without a key (Linux TCPMD5Unexpected)",
    "md5_failure": "TCP MD5 signature does not match (RFC 2385 2.0)",
    "out_of_window": "sequence number outside the receive window (RFC 9293 3.10.7.4)",
    "paws": "timestamp older than the last one seen (RFC 7323 PAWS)",
    "bad_ack": "acknowledges something not sent yet",
    "ack_too_old": "ACK too old: possible blind injection (RFC 5961 5.2)",
    "rst_invalid": "RST outside the window, ignored (RFC 5961 3.2)",
    "rst_challenged": "RST in the window but not exact: answered by a challenge ACK (RFC 5961)",
    "syn_challenged": "SYN on a synchronized connection: challenge ACK (RFC 5961 4.2)",
    "no_ack_flag": "segment without ACK on a synchronized connection",
    "unexpected_segment": "nothing to do with it in this state",
    "recv_queue_full": "out-of-order queue memory bound reached",
    "rcv_memory": "stack-wide receive memory cap reached (out-of-order data pruned first)",
}


def describe(reason: DropReason | str) -> str:
    """A sentence for a drop reason (its name when nobody wrote one)."""
    key = reason.value if isinstance(reason, DropReason) else str(reason)
    return DROP_DESCRIPTIONS.get(key, key.replace("_", " "))


class MalformedPacket(ValueError):
    """A packet from the network that cannot be parsed; carries the drop reason.

    This is the one exception type the wire parsers raise for bad input.
    """

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
