"""Linux IP_MTU_DISCOVER (ip(7)) per connection: ``TcpHandle.set_pmtudisc``. WANT (the
default), DO and PROBE set DF (RFC 1191 path MTU discovery); DONT, INTERFACE and OMIT clear
it; INTERFACE and OMIT ignore "fragmentation needed" (Linux ip_sk_accept_pmtu). Checked on
the wire with scapy (DF flag, valid IPv4 header checksum)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP  # type: ignore[import-untyped]

from pytcp.stack import IP_PMTUDISC_DONT, IP_PMTUDISC_OMIT, IP_PMTUDISC_WANT
from pytcp.wire.icmp import build_dest_unreachable
from tests.stack.test_stack_tcp import Wire, connect_pair, pair
from tests.stack.test_stack_tos import _ip_ok


def test_dont_clears_df_and_want_sets_it_again() -> None:
    a, b = pair()
    w = Wire(a, b)
    client, _server = connect_pair(w)
    client.set_nodelay(True)
    assert client.pmtudisc == IP_PMTUDISC_WANT
    client.send(w.now, b"a")
    assert [_ip_ok(p).flags for p in a.pending_packets()] == ["DF"]
    client.set_pmtudisc(IP_PMTUDISC_DONT)
    client.send(w.now, b"b" * 3000)  # several segments, each a valid IPv4 header
    pkts = a.pending_packets()
    assert len(pkts) == 3 and all(_ip_ok(p).flags == 0 for p in pkts)
    client.set_pmtudisc(IP_PMTUDISC_WANT)
    client.send(w.now, b"c")
    assert [_ip_ok(p).flags for p in a.pending_packets()] == ["DF"]
    with pytest.raises(ValueError):
        client.set_pmtudisc(6)


def _frag_needed(seg: bytes | bytearray, mtu: int) -> bytes:
    """ICMP 3/4 from the peer's side quoting ``seg``, with the next-hop MTU (RFC 1191 4)."""
    orig = IP(bytes(seg))
    return bytes(IP(src=orig.dst, dst=orig.src, proto=1)
                 / build_dest_unreachable(4, bytes(seg), mtu))


@pytest.mark.parametrize("mode,shrinks", [(IP_PMTUDISC_DONT, True), (IP_PMTUDISC_OMIT, False)])
def test_frag_needed_lowers_the_mss_unless_interface_or_omit(mode: int, shrinks: bool) -> None:
    a, b = pair()
    w = Wire(a, b)
    client, _server = connect_pair(w)
    client.set_nodelay(True)
    client.set_pmtudisc(mode)
    before = client.conn.snd_mss
    client.send(w.now, b"z" * 1000)
    [seg] = a.pending_packets()
    a.receive_packet(w.now, _frag_needed(seg, 1000))
    assert (client.conn.snd_mss < before) is shrinks
