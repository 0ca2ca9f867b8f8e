"""pytcp: a packet-level userspace TCP/IP stack (IPv4 and IPv6) in Python on a Linux TUN device."""

__version__ = "0.1.0"
