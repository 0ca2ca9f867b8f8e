"""Congestion control algorithms and the factory that picks one by name.

``make_congestion(name, mss, initial_window=None)``: ``name`` is ``"newreno"`` or ``"cubic"``
(``ValueError`` otherwise); ``initial_window`` is the initial cwnd in *segments* (None: RFC
6928's min(10*MSS, max(2*MSS, 14600)) bytes); ``hystart=True`` enables RFC 9406 HyStart++
in the initial slow start (off by default).
"""

from __future__ import annotations

from pytcp.tcp.congestion.base import CongestionControl
from pytcp.tcp.congestion.cubic import Cubic
from pytcp.tcp.congestion.linux_cubic import LinuxCubic
from pytcp.tcp.congestion.newreno import NewReno

ALGORITHMS = ("newreno", "cubic")

__all__ = ["ALGORITHMS", "CongestionControl", "Cubic", "LinuxCubic", "NewReno",
           "make_congestion"]


def make_congestion(
    name: str, mss: int, initial_window: int | None = None, *, hystart: bool = False,
    hystart_kind: str = "rfc9406", cubic_kind: str = "rfc9438", tick: float = 0.004,
) -> CongestionControl:
    """A fresh congestion controller for one connection; ``hystart=True`` adds RFC 9406
    HyStart++ to the initial slow start (``hystart_kind="linux"``: Linux CUBIC's HyStart
    delay detection instead). ``cubic_kind="linux"``: CUBIC with Linux's arithmetic
    (``linux_cubic.LinuxCubic``, jiffies of ``tick`` seconds) instead of RFC 9438's."""
    key = name.lower()
    if key == "newreno" or key == "reno":
        return NewReno(mss, initial_window, hystart=hystart, hystart_kind=hystart_kind)
    if key == "cubic":
        if cubic_kind == "linux":
            return LinuxCubic(mss, initial_window, hystart=hystart, hystart_kind=hystart_kind,
                              tick=tick)
        if cubic_kind != "rfc9438":
            raise ValueError(f"unknown cubic kind {cubic_kind!r}")
        return Cubic(mss, initial_window, hystart=hystart, hystart_kind=hystart_kind)
    raise ValueError(f"unknown congestion control {name!r} (known: {', '.join(ALGORITHMS)})")
