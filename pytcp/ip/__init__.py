"""pytcp.ip: the host's IP layer, under which the transports (TCP, UDP) sit.

- :mod:`pytcp.ip.demux`: :class:`~pytcp.ip.demux.IpLayer` (version dispatch, the
  address-family-neutral transport interface, ICMP error rate limit, reassembly timers).
- :mod:`pytcp.ip.ipv4`: the IPv4 general receive path and datagram output.
- :mod:`pytcp.ip.icmp`: ICMP echo replies, errors handed to transports, quoted datagrams.
- :mod:`pytcp.ip.fragments`: fragment reassembly with bounds, and fragmentation.

The layer is a set of mixins of :class:`pytcp.stack.Stack` (the stack holds the state; it is
sans-I/O like the rest of the host). The receive fast path for whole TCP/IPv4 datagrams stays
in ``pytcp.stack``.
"""
