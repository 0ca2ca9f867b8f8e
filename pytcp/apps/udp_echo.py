"""The echo service over UDP (RFC 862: "send back any datagram received").

This module owns :class:`UdpEcho`, an asyncio datagram protocol for
:func:`pytcp.api.dgram.create_datagram_endpoint`; ``pytcp up --udp-echo PORT`` runs it on both
families. Counts what it echoed (``datagrams``, ``bytes``).
"""

from __future__ import annotations

import asyncio
from typing import Any


class UdpEcho(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.datagrams = 0
        self.bytes = 0
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.datagrams += 1
        self.bytes += len(data)
        self.transport.sendto(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.errors += 1
