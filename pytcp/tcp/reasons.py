"""Why a segment left: the engine's vocabulary for segments that are not new data or a plain
ACK (retransmissions, probes, special ACKs, RSTs).

The engine sets :attr:`pytcp.tcp.segment.Segment.reason` where it decides to send such a
segment (one attribute, no cost for ordinary segments); the stack carries it to the packet
(``pytcp.stack.NotedPacket.note``) and a capture writes it as the pcapng packet comment
(Wireshark's ``frame.comment``). Every part that sends for a new reason (e.g. RACK-TLP) adds
a member here, so the vocabulary stays in one place. The value is the comment text.
"""

from __future__ import annotations

import enum


class TxReason(enum.Enum):
    # --- retransmissions (RFC 6298, RFC 5681, RFC 6582, RFC 6675, RFC 8985) ---
    RTO = "retransmission after RTO"
    FAST_RETRANSMIT = "fast retransmit (duplicate ACKs)"
    PARTIAL_ACK = "retransmission after a partial ACK (NewReno)"
    SACK_RETRANSMIT = "SACK-based retransmission (RFC 6675)"
    PMTU_RETRANSMIT = "retransmission in smaller segments (path MTU)"
    WINDOW_SHRANK = "retransmission after the peer's window shrank to zero"
    TLP = "tail loss probe (RFC 8985)"
    RACK = "RACK-detected loss retransmission (RFC 8985)"
    SYN_RETRANSMIT = "SYN retransmission"
    SYNACK_RETRANSMIT = "SYN-ACK retransmission"
    SYN_DATA_RETRANSMIT = "SYN data the SYN-ACK did not acknowledge (RFC 7413)"
    SYN_COOKIE = "SYN-ACK with a SYN cookie (SYN queue full, RFC 4987)"
    # --- probes (RFC 9293 3.8.6.1, 3.8.4) ---
    ZERO_WINDOW_PROBE = "zero-window probe"
    WINDOW_PROBE = "window probe with data (persist timer)"
    KEEPALIVE = "keep-alive probe"
    # --- ACKs that say something ---
    CHALLENGE_ACK = "challenge ACK (RFC 5961)"
    DUP_ACK = "duplicate ACK (out-of-order data)"
    OUT_OF_WINDOW_ACK = "duplicate ACK (out-of-window segment)"
    PAWS_ACK = "duplicate ACK (PAWS: old timestamp)"
    DSACK = "D-SACK (duplicate data received, RFC 2883)"
    WINDOW_UPDATE = "window update"
    # --- RSTs and their cause ---
    RST_ABORT = "RST: the application aborted"
    RST_UNREAD_DATA = "RST: closed with unread data"
    RST_DATA_AFTER_CLOSE = "RST: data arrived after close"
    RST_NO_CONNECTION = "RST: no connection for this segment (RFC 9293 3.10.7.1)"
    RST_BAD_ACK = "RST: unacceptable ACK"
    RST_KEEPALIVE_TIMEOUT = "RST: keep-alive probes unanswered"
    RST_ORPHAN_TIMEOUT = "RST: orphan zero-window timeout"
    RST_PROBE_TIMEOUT = "RST: zero-window probes unanswered"

    def __str__(self) -> str:
        return self.value
