"""pytcp.wire: stateless parsing and building of IPv4, TCP (with options) and ICMP packets.

- :mod:`pytcp.wire.ipv4`: ``parse_ipv4``, ``build_ipv4_header``, address helpers.
- :mod:`pytcp.wire.tcp`: flags, ``TcpOptions``, ``parse_tcp``, ``encode_options``,
  ``build_tcp``, ``build_ipv4_tcp``.
- :mod:`pytcp.wire.icmp`: ``parse_icmp``, echo request/reply, destination unreachable.

Parsers return views into the input buffer (no payload copies) and raise only
:class:`pytcp.drops.MalformedPacket` for bad input.
"""
