"""pytcp.wire: stateless parsing and building of IPv4, IPv6, TCP (with options), UDP, ICMP and
ICMPv6 packets.

- :mod:`pytcp.wire.ipv4`: ``parse_ipv4``, ``build_ipv4_header``, address helpers.
- :mod:`pytcp.wire.tcp`: flags, ``TcpOptions``, ``parse_tcp``, ``encode_options``,
  ``build_tcp``, ``build_ipv4_tcp``.
- :mod:`pytcp.wire.icmp`: ``parse_icmp``, echo request/reply, destination unreachable.
- :mod:`pytcp.wire.ipv6`: ``parse_ipv6`` (extension-header chain walk with limits),
  ``build_ipv6``, ``build_fragment_header``, the RFC 8200 8.1 pseudo-header sum.
- :mod:`pytcp.wire.icmpv6`: ``parse_icmpv6``, echo request/reply, errors (RFC 4443).
- :mod:`pytcp.wire.udp`: ``parse_udp``, ``build_udp`` over either family (RFC 768).

Parsers return views into the input buffer (no payload copies) and raise only
:class:`pytcp.drops.MalformedPacket` for bad input.
"""
