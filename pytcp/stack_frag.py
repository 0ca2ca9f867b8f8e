"""Moved to :mod:`pytcp.ip.fragments` (kept so older imports keep working)."""

from pytcp.ip.fragments import FragKey, FragmentReassembler, fragment_datagram

__all__ = ["FragKey", "FragmentReassembler", "fragment_datagram"]
