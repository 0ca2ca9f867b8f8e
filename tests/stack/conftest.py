"""Helpers for the stack tests: addresses, scapy packet building, a Stack factory."""

from __future__ import annotations

import random

import pytest

from pytcp.stack import Stack, StackConfig

US = "10.0.0.2"
PEER = "10.0.0.1"


def to_bytes(pkt: object) -> bytes:
    return bytes(pkt)  # type: ignore[call-overload]


@pytest.fixture
def stack() -> Stack:
    return Stack(US, now=0.0, config=StackConfig(), secret=b"k" * 16, rng=random.Random(1))
