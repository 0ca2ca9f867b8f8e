"""pytcp's application APIs over a :class:`pytcp.runtime.Runtime`.

- :mod:`pytcp.api.aio`: asyncio streams (``start_server``, ``open_connection``) over
  :class:`~pytcp.api.aio.PytcpTransport`.
- :mod:`pytcp.api.dgram`: UDP: ``create_datagram_endpoint`` (asyncio) and the blocking
  :class:`~pytcp.api.dgram.DatagramSocket`.
- :mod:`pytcp.api.sock`: blocking sockets (:class:`~pytcp.api.sock.Socket`) over a runtime on a
  background thread (:class:`~pytcp.api.sock.BackgroundRuntime`).
"""

from pytcp.api.aio import PytcpTransport, Server, create_connection, open_connection, start_server
from pytcp.api.dgram import DatagramSocket, DatagramTransport, create_datagram_endpoint
from pytcp.api.sock import BackgroundRuntime, Socket

__all__ = [
    "PytcpTransport",
    "Server",
    "create_connection",
    "open_connection",
    "start_server",
    "BackgroundRuntime",
    "DatagramSocket",
    "DatagramTransport",
    "create_datagram_endpoint",
    "Socket",
]
