"""pytcp: a packet-level userspace TCP/IPv4 stack in Python on a Linux TUN device."""

__version__ = "0.1.0"
