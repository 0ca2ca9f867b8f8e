"""Packets the kernel would never send, from the crafted raw peer (10.77.0.9) to ``pytcp up``:
a SYN and an ACK to a closed port, a bad TCP checksum, an in-window RST that is not exact
(RFC 5961 challenge ACK), and out-of-order data (a duplicate ACK carrying a SACK block).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP

from tests.e2e.conftest import StartPytcp
from tests.e2e.rawpeer import ACK, FIN, RST, SYN, RawPeer
from tools.netns import Netns

DISCARD = 9
CLOSED = 81


@pytest.fixture
def peer(netns: Netns, start_pytcp: StartPytcp) -> Iterator[RawPeer]:
    start_pytcp(netns, "--discard", str(DISCARD))
    p = RawPeer(netns)
    try:
        yield p
    finally:
        p.close()


def flags_of(seg: TCP) -> int:
    return int(seg.flags)


def sack_blocks(seg: TCP) -> list[tuple[int, int]]:
    blocks: list[tuple[int, int]] = []
    for name, value in seg.options:
        if name == "SAck":
            blocks += [(value[i], value[i + 1]) for i in range(0, len(value), 2)]
    return blocks


def test_syn_to_closed_port_gets_rst_ack_acking_the_syn(peer: RawPeer) -> None:
    # RFC 9293 3.10.7.1: no ACK in the segment -> <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    peer.send_tcp(41000, CLOSED, 1000, flags="S", options=[("MSS", 1460)])
    seg = peer.expect_tcp(CLOSED, 41000)
    assert seg is not None, "no reply to a SYN to a closed port"
    assert flags_of(seg) & (RST | ACK | SYN) == RST | ACK
    assert (seg.seq, seg.ack) == (0, 1001)
    assert bytes(seg.payload) == b""


def test_ack_to_closed_port_gets_rst_with_seq_of_its_ack(peer: RawPeer) -> None:
    # RFC 9293 3.10.7.1: an ACK -> <SEQ=SEG.ACK><CTL=RST>.
    peer.send_tcp(41001, CLOSED, 5000, ack=777777, flags="A", payload=b"hello")
    seg = peer.expect_tcp(CLOSED, 41001)
    assert seg is not None, "no reply to an ACK to a closed port"
    assert flags_of(seg) & (RST | ACK) == RST
    assert seg.seq == 777777


def test_bad_tcp_checksum_is_dropped_and_the_stack_survives(peer: RawPeer) -> None:
    good = TCP(bytes(IP(src=peer.addr, dst=peer.stack_addr) /
                     TCP(sport=41002, dport=DISCARD, seq=9000, flags="S"))[20:])
    bad_sum = good.chksum ^ 0x00FF  # not the one's-complement twin of the right sum
    peer.send_tcp(41002, DISCARD, 9000, flags="S", chksum=bad_sum)
    replies = peer.quiet_for(1.0, lambda p: TCP in p and p[TCP].dport == 41002)
    assert replies == [], "the stack answered a segment with a bad checksum"
    # Still alive: the same SYN with the right checksum is answered.
    peer.send_tcp(41002, DISCARD, 9000, flags="S")
    seg = peer.expect_tcp(DISCARD, 41002)
    assert seg is not None and flags_of(seg) & (SYN | ACK | RST) == SYN | ACK
    assert seg.ack == 9001
    peer.send_tcp(41002, DISCARD, 9001, flags="R")


def test_in_window_inexact_rst_gets_challenge_ack_and_connection_survives(
        peer: RawPeer) -> None:
    isn = 2_000_000
    synack = peer.handshake(41003, DISCARD, isn)
    our_nxt, their_nxt = isn + 1, (synack.seq + 1) % 2**32
    # RFC 5961 3.2: RST in the window but not at RCV.NXT -> challenge ACK, no reset.
    peer.send_tcp(41003, DISCARD, our_nxt + 10, flags="R")
    seg = peer.expect_tcp(DISCARD, 41003)
    assert seg is not None, "no challenge ACK for an in-window, inexact RST"
    assert flags_of(seg) & (RST | ACK | SYN | FIN) == ACK
    assert (seg.seq, seg.ack) == (their_nxt, our_nxt)
    # The connection is still synchronized: data is acknowledged.
    peer.send_tcp(41003, DISCARD, our_nxt, their_nxt, flags="PA", payload=b"abc")
    seg = peer.expect_tcp(DISCARD, 41003, want=lambda t: t.ack == our_nxt + 3)
    assert seg is not None and flags_of(seg) & RST == 0, "connection did not survive"
    # An exact RST closes it: no answer to the RST, and later data draws a reset. (Let any
    # delayed ACK or window update for "abc" go out first, so it is not taken as an answer.)
    peer.quiet_for(0.3, lambda p: False)
    peer.send_tcp(41003, DISCARD, our_nxt + 3, flags="R")
    assert peer.quiet_for(0.5, lambda p: TCP in p and p[TCP].dport == 41003) == []
    peer.send_tcp(41003, DISCARD, our_nxt + 3, their_nxt, flags="PA", payload=b"x")
    seg = peer.expect_tcp(DISCARD, 41003)
    assert seg is not None and flags_of(seg) & RST, "connection was not reset by exact RST"


def test_out_of_order_data_gets_duplicate_ack_with_sack_block(peer: RawPeer) -> None:
    isn = 3_000_000
    synack = peer.handshake(41004, DISCARD, isn, sack=True)
    assert any(name == "SAckOK" for name, _ in synack.options), "stack did not offer SACK"
    our_nxt, their_nxt = isn + 1, (synack.seq + 1) % 2**32
    # Bytes 100..199 arrive first; 0..99 are missing.
    sent_at = time.monotonic()
    peer.send_tcp(41004, DISCARD, our_nxt + 100, their_nxt, flags="PA", payload=b"b" * 100)
    seg = peer.expect_tcp(DISCARD, 41004, timeout=2.0)
    elapsed = time.monotonic() - sent_at
    assert seg is not None, "no ACK for out-of-order data"
    assert flags_of(seg) & (RST | SYN | FIN) == 0
    assert seg.ack == our_nxt, "the duplicate ACK must still ask for the missing bytes"
    assert sack_blocks(seg) == [(our_nxt + 100, our_nxt + 200)]
    # RFC 9293 3.10.7.4 / RFC 5681 4.2: out-of-order data is acknowledged at once, not delayed.
    assert elapsed < 0.2, f"duplicate ACK took {elapsed:.3f} s"
    # Filling the hole acknowledges everything.
    peer.send_tcp(41004, DISCARD, our_nxt, their_nxt, flags="PA", payload=b"a" * 100)
    seg = peer.expect_tcp(DISCARD, 41004, want=lambda t: t.ack == our_nxt + 200)
    assert seg is not None, "filling the hole was not acknowledged up to 200"
    assert sack_blocks(seg) == []
    peer.send_tcp(41004, DISCARD, our_nxt + 200, flags="R")
