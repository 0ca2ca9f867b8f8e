"""Moved to :mod:`pytcp.ip.icmp` (kept so older imports keep working)."""

from pytcp.ip.icmp import (
    ERROR_TYPES,
    ICMP_DEST_UNREACH,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    ICMP_PARAM_PROBLEM,
    ICMP_SOURCE_QUENCH,
    ICMP_TIME_EXCEEDED,
    QuotedTcp,
    parse_quoted_tcp,
)

__all__ = ["ERROR_TYPES", "ICMP_DEST_UNREACH", "ICMP_ECHO_REPLY", "ICMP_ECHO_REQUEST",
           "ICMP_PARAM_PROBLEM", "ICMP_SOURCE_QUENCH", "ICMP_TIME_EXCEEDED", "QuotedTcp",
           "parse_quoted_tcp"]
