"""Errors the TCP engine raises: only for local misuse of its API, never for network input."""

from __future__ import annotations


class TcpUsageError(Exception):
    """The local application called the engine in a way its state does not allow
    (e.g. ``send()`` after ``shutdown()``, ``open_active()`` twice)."""
