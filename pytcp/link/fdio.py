"""Non-blocking packet I/O on a file descriptor, counted: the part every link shares.

A read drains the descriptor until EAGAIN or a packet limit; a write that would block drops
the packet (``tx_dropped``) instead of stalling the event loop. Failures are counted in the
link's ``stats`` (``rx_errors``/``tx_errors``), never raised into the loop.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any


def read_packets(fd: int, size: int, max_packets: int, stats: Counter[str]) -> list[bytes]:
    """Up to ``max_packets`` packets of at most ``size`` bytes; ``[]`` when none is waiting.
    A zero-length read (the peer end closed) ends the batch."""
    out: list[bytes] = []
    read = os.read
    try:
        while len(out) < max_packets:
            data = read(fd, size)
            if not data:
                break
            out.append(data)
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:  # EIO etc. while a device is being torn down: report as empty
        stats["rx_errors"] += 1
    stats["rx_packets"] += len(out)
    return out


def write_packets(fd: int, packets: list[Any], stats: Counter[str],
                  write: Callable[[int, Any], Any] = os.write) -> int:
    """``write(fd, packet)`` for each packet in one loop (the batched form of
    ``write_counted``: the counters are updated once). A packet that would block is dropped
    (``tx_dropped``), one the kernel refuses is counted in ``tx_errors``; the rest go on.
    Returns the number written."""
    sent = dropped = errors = 0
    for pkt in packets:
        try:
            write(fd, pkt)
        except (BlockingIOError, InterruptedError):
            dropped += 1
            continue
        except OSError:
            errors += 1
            continue
        sent += 1
    stats["tx_packets"] += sent
    if dropped:
        stats["tx_dropped"] += dropped
    if errors:
        stats["tx_errors"] += errors
    return sent


def write_counted(stats: Counter[str], write: Callable[..., Any], *args: Any) -> None:
    """``write(*args)`` for one packet; count it as sent, dropped (would block) or failed."""
    try:
        write(*args)
    except (BlockingIOError, InterruptedError):
        stats["tx_dropped"] += 1
        return
    except OSError:
        stats["tx_errors"] += 1
        return
    stats["tx_packets"] += 1
