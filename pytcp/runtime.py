"""The runtime: the one asyncio event loop glue between a link, the sans-I/O stack, pcap and
impairment.

Owns the I/O schedule and nothing of TCP. It is the only part that reads clocks: ``now`` for the
stack comes from ``clock`` (default ``loop.time``), pcap timestamps from ``time.time_ns()``.

- Reading: ``loop.add_reader(link.fileno())``; on readable, ``link.read_batch(64)`` until empty
  or a budget; each packet goes to pcap (direction "in", the link's view), then through
  ``impair_in`` (when set), then to ``stack.receive_packet(now, packet)``. Each read batch gets
  its own ``now``, and the stack builds the batch's output at ``clock()`` after processing
  it (``Stack.receive_batch(clock=)``): a slow batch on a busy host must not arm timers that
  are already due when its segments leave.
- With a capture, the stack annotates (``Stack.annotate``): an inbound packet's block is
  written after the stack handled its batch, with a comment naming what the impairment did
  to it and, when the stack dropped it, ``dropped: <reason>`` (a packet the impairment delayed
  past its batch keeps only the impairment's note). Outbound packets carry their reason
  (``note``: a retransmission, a probe, a RST...); a packet ``impair_out`` lost is still
  written, saying it was never sent.
- After a batch, a timer, or app-side calls: ONE flush (``stack.pending_packets()`` ->
  ``impair_out`` -> pcap "out" -> ``link.write``), then the stack's events are dispatched to the
  api objects attached as ``TcpHandle.user_data`` (or registered for a listener with
  :meth:`Runtime.register_listener`), then the single ``loop.call_at`` timer is re-armed for
  the earliest of the stack's and the impairments' deadlines.
- App-side calls coalesce: the api calls :meth:`Runtime.kick`, which schedules one
  ``loop.call_soon`` service per tick.

Offloads (a TUN with TSO): packets may be TCP super-packets (inbound
``pytcp.wire.offload.RxPacket`` with ``gso_size``; outbound ``pytcp.stack.GsoPacket``) with
partial checksums. An impairment stage gets them cut in software first (``segment_tcp``), so
loss and reordering act per MSS-sized packet as on a wire; pcap records what crosses the link
(super-packets, as tcpdump shows on a TSO interface) with the checksums filled in, or the
per-MSS pieces with ``pcap_segments=True``.

An api object receives events through ``handle_event(event, now)``; at ``close()`` its
optional ``runtime_closing(now)`` is called instead of the handle's ``close``. Exceptions
raised there are reported to the loop's exception handler and never stop the loop.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any, Protocol

from pytcp.tcp.errors import TcpUsageError
from pytcp.wire.offload import fill_checksums, segment_tcp

__all__ = ["Runtime", "EventTarget", "LinkLike"]


class EventTarget(Protocol):
    """What the runtime dispatches events to (api transports and servers)."""

    def handle_event(self, event: object, now: float) -> None: ...


class LinkLike(Protocol):
    def fileno(self) -> int: ...

    def read_batch(self, max_packets: int = 64) -> list[bytes]: ...

    def write(self, packet: bytes | bytearray) -> None: ...

    def close(self) -> None: ...


def _describe_drop(reason: Any) -> str:
    from pytcp.drops import describe

    return describe(reason)


def _submit(impair: Any, now: float, pkt: Any) -> str | None:
    """``impair.submit`` for a packet from a link with offloads: a super-packet is cut into
    MSS-sized packets in software first (loss and reordering act per packet, as on a wire),
    and a partial checksum is completed (what the impairment releases is verified by the
    stack). Returns the impairment's notes."""
    gso = getattr(pkt, "gso_size", 0)
    if gso:
        notes = [n for piece in segment_tcp(pkt, gso) if (n := impair.submit(now, piece))]
        return "; ".join(notes) if notes else None
    if getattr(pkt, "csum_partial", False):
        return impair.submit(now, fill_checksums(pkt))  # type: ignore[no-any-return]
    return impair.submit(now, pkt)  # type: ignore[no-any-return]


def _min_deadline(*deadlines: float | None) -> float | None:
    best: float | None = None
    for d in deadlines:
        if d is not None and (best is None or d < best):
            best = d
    return best


class Runtime:
    """Join ``stack`` and ``link`` on ``loop``; see the module docstring."""

    READ_BATCH = 64

    def __init__(
        self,
        stack: Any,
        link: LinkLike,
        *,
        loop: asyncio.AbstractEventLoop,
        pcap: Any | None = None,
        impair_in: Any | None = None,
        impair_out: Any | None = None,
        clock: Callable[[], float] | None = None,
        read_budget: int = 256,
        pcap_segments: bool = False,
    ) -> None:
        self.stack = stack
        self.link = link
        self.loop = loop
        self.pcap = pcap
        self.impair_in = impair_in
        self.impair_out = impair_out
        self.clock: Callable[[], float] = clock if clock is not None else loop.time
        self.read_budget = read_budget
        self.pcap_segments = pcap_segments  # capture super-packets cut to MSS-sized pieces
        # Counters for the status page (the stack keeps its own stats and drops).
        self.packets_in = 0
        self.packets_out = 0
        self.tx_errors = 0  # link.write raised OSError (e.g. ENOBUFS): the packet is lost
        self.callback_errors = 0  # an api/app callback raised during dispatch
        self.counters: collections.Counter[str] = collections.Counter()
        self._listener_targets: dict[int, tuple[object, EventTarget]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        self._last_fired: float | None = None
        self._tick_scheduled = False
        self._started = False
        self._closed = False
        self._bypass = False  # shutting down: packets no longer go through the impairment
        self._fileno = -1
        if pcap is not None and hasattr(stack, "annotate"):
            stack.annotate = True

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start reading the link and serving timers. Call from the loop's thread."""
        if self._started:
            raise RuntimeError("Runtime already started")
        if self._closed:
            raise RuntimeError("Runtime is closed")
        self._started = True
        self._fileno = self.link.fileno()
        self.loop.add_reader(self._fileno, self._on_readable)
        self._service(self.clock())

    @property
    def running(self) -> bool:
        return self._started and not self._closed

    async def close(self, graceful_timeout: float = 2.0, reset_linger: float = 0.2) -> None:
        """Close every connection: FIN (close) all of them, wait until they are gone (or in
        TIME-WAIT) or ``graceful_timeout`` seconds passed, then RST what is left. Closes the
        listeners, removes the reader and the timer. The caller closes the link and pcap.

        After the grace the impairment stages are bypassed (what ``impair_out`` holds is
        written out at once) and, when connections were reset, the link is still read for
        ``reset_linger`` seconds so a peer's challenge ACK gets its exact RST.
        """
        if self._closed:
            return
        now = self.clock()
        listeners = [entry[0] for entry in self._listener_targets.values()]
        self._listener_targets.clear()
        listeners_of = getattr(self.stack, "listeners", None)
        if listeners_of is not None:
            listeners.extend(listeners_of())
        for listener in listeners:
            self._call_quietly(listener.close)  # type: ignore[attr-defined]
        for handle in list(self.stack.connections()):
            # An api object may still hold data the engine has not taken: let it close
            # itself (FIN after that data); otherwise close the connection directly.
            hook = getattr(handle.user_data, "runtime_closing", None)
            if hook is not None:
                self._call_quietly(hook, now)
            else:
                self._call_quietly(handle.close, now)
        self._service(now)
        if self._started:
            deadline = self.loop.time() + graceful_timeout
            while self._open_connections() and self.loop.time() < deadline:
                await asyncio.sleep(min(0.01, max(0.0, deadline - self.loop.time())))
        now = self.clock()
        # The end. Impairment no longer applies: what impair_out still holds (a delay, a
        # held-back reordered packet) goes out now, and from here on packets bypass both
        # stages (no delay, no loss), so every peer sees our FIN or RST before the link goes.
        self._bypass = True
        if self.impair_out is not None:
            self._write_out(self.impair_out.flush())
        aborted = self._open_connections()
        for handle in aborted:
            self._call_quietly(handle.abort, now)
        self._service(now)
        if aborted and self._started and reset_linger > 0:
            # A RST carries SND.NXT; a peer that missed some of our data (RCV.NXT below it)
            # answers it with a challenge ACK (RFC 5961 3.2). The connection is gone, so the
            # stack answers that ACK with a RST whose sequence number is its SEG.ACK (RFC
            # 9293 3.10.7.1): exactly RCV.NXT, which the peer accepts. Keep reading briefly.
            deadline = self.loop.time() + reset_linger
            while self.loop.time() < deadline:
                await asyncio.sleep(min(0.01, max(0.0, deadline - self.loop.time())))
        self._closed = True
        if self._started:
            self.loop.remove_reader(self._fileno)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_deadline = None
        if self.pcap is not None:
            self.pcap.flush()

    def _open_connections(self) -> list[Any]:
        out = []
        for handle in self.stack.connections():
            state = str(handle.conn.state)
            if state not in ("CLOSED", "TIME-WAIT"):
                out.append(handle)
        return out

    @staticmethod
    def _call_quietly(fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except TcpUsageError:  # nothing left to close
            pass

    # -- api side ----------------------------------------------------------------------------

    def now(self) -> float:
        """The stack's current time (``clock()``)."""
        return self.clock()

    def kick(self) -> None:
        """Schedule one flush/dispatch/re-arm for this loop tick (app-side calls end here)."""
        if not self._tick_scheduled and not self._closed:
            self._tick_scheduled = True
            self.loop.call_soon(self._on_tick)

    def register_listener(self, listener: object, target: EventTarget) -> None:
        """Route a listener's events (``AcceptReady``) to ``target``."""
        self._listener_targets[id(listener)] = (listener, target)

    def unregister_listener(self, listener: object) -> None:
        self._listener_targets.pop(id(listener), None)

    def stats(self) -> dict[str, int]:
        """Counters for the status page."""
        out = {
            "packets_in": self.packets_in,
            "packets_out": self.packets_out,
            "tx_errors": self.tx_errors,
            "callback_errors": self.callback_errors,
        }
        out.update(self.counters)
        drops = getattr(self.stack, "drops", None)
        if drops is not None:
            out["drops"] = int(sum(drops.values()))  # by reason: runtime.stack.drops
        if self.pcap is not None:
            out["pcap_packets"] = int(getattr(self.pcap, "packets_written", 0))
        for name, stage in (("impair_in", self.impair_in), ("impair_out", self.impair_out)):
            stage_stats = getattr(stage, "stats", None) if stage is not None else None
            if stage_stats:
                for key, value in stage_stats.items():
                    out[f"{name}_{key}"] = int(value)
        return out

    # -- loop callbacks ----------------------------------------------------------------------

    def _on_readable(self) -> None:
        clock = self.clock
        now = clock()
        stack = self.stack
        pcap = self.pcap
        impair = self.impair_in
        budget = self.read_budget
        n = 0
        while n < budget:
            try:
                batch = self.link.read_batch(self.READ_BATCH)
            except OSError:
                self.counters["rx_errors"] += 1
                break
            got = len(batch)
            if not got:
                break
            n += got
            if n > got:
                now = clock()  # each batch at its own time (a batch can take a while)
            if pcap is not None:
                self._receive_captured(now, batch)
            else:
                if impair is not None and not self._bypass:
                    for pkt in batch:
                        _submit(impair, now, pkt)
                    batch = impair.release(now)
                try:  # zero-cost in 3.11 unless it raises
                    # The batch's output is built at the clock's time after its processing:
                    # timers start when the segments leave (see Stack.receive_batch).
                    stack.receive_batch(now, batch, clock)
                except Exception as exc:  # noqa: BLE001 - the stack must not raise; go on
                    self._report_stack_error(exc, "receive_batch")
            if got < self.READ_BATCH:
                break  # a short batch: the link is drained; skip the EAGAIN read
        self.packets_in += n
        self._service(clock())

    def _receive_captured(self, now: float, batch: list[bytes]) -> None:
        """``_on_readable``'s path with a capture: the batch through impairment and the
        stack, then each packet's block with what happened to it (see the module)."""
        stack = self.stack
        pcap = self.pcap
        assert pcap is not None
        impair = self.impair_in if not self._bypass else None
        wall = time.time_ns()
        notes: list[list[str]] = [[] for _ in batch]
        released: list[Any] = batch
        if impair is not None:
            for i, pkt in enumerate(batch):
                note = _submit(impair, now, pkt)
                if note:
                    notes[i].append(note)
            released = impair.release(now)
        reasons: list[Any] | None = getattr(stack, "rx_drop_reasons", None)
        if reasons is not None:
            reasons.clear()
        try:
            stack.receive_batch(now, released, self.clock)
        except Exception as exc:  # noqa: BLE001 - the stack must not raise; go on
            self._report_stack_error(exc, "receive_batch")
        if reasons and len(reasons) == len(released):
            where = {id(pkt): i for i, pkt in enumerate(batch)}
            for pkt, reason in zip(released, reasons):
                if reason is None:
                    continue
                at = where.get(id(getattr(pkt, "origin", pkt)))
                if at is not None:
                    notes[at].append(f"dropped: {_describe_drop(reason)}")
        if reasons is not None:
            reasons.clear()
        for pkt, pkt_notes in zip(batch, notes):
            self._capture(wall, pkt, "in", "; ".join(pkt_notes) if pkt_notes else None)

    def _capture(self, wall: int, pkt: Any, direction: str, comment: str | None) -> None:
        """One packet to pcap: a super-packet or a partial checksum (offloads) with the
        checksums filled in, cut to MSS-sized pieces when ``pcap_segments``."""
        write = self.pcap.write  # type: ignore[union-attr]
        gso = getattr(pkt, "gso_size", 0)
        if gso and self.pcap_segments:
            for piece in segment_tcp(pkt, gso):
                write(wall, piece, direction, comment)
        elif gso or getattr(pkt, "csum_partial", False):
            write(wall, fill_checksums(pkt), direction, comment)
        else:
            write(wall, pkt, direction, comment)

    def _on_timer(self) -> None:
        self._timer = None
        fired_for = self._timer_deadline
        self._timer_deadline = None
        now = self.clock()
        # loop.call_at may fire up to the clock resolution early: never look earlier than
        # the deadline we were armed for, so an expired timer is seen as expired.
        if fired_for is not None and self.clock == self.loop.time and now < fired_for:
            now = fired_for
        try:
            if self.impair_in is not None and not self._bypass:
                for pkt in self.impair_in.release(now):
                    self.stack.receive_packet(now, pkt)
                reasons = getattr(self.stack, "rx_drop_reasons", None)
                if reasons:
                    reasons.clear()  # (delayed packets: their blocks were written already)
            self.stack.handle_timers(now)
        except Exception as exc:  # noqa: BLE001 - the stack must not raise; never stop
            self._report_stack_error(exc, "handle_timers")
        self._last_fired = now
        self._service(now)

    def _report_stack_error(self, exc: Exception, where: str) -> None:
        """A bug in the stack (it must not raise for network input): count it, report it to
        the loop's exception handler, and keep serving."""
        self.counters["stack_errors"] += 1
        self.loop.call_exception_handler(
            {"message": f"pytcp: stack.{where} raised", "exception": exc})

    def _on_tick(self) -> None:
        self._tick_scheduled = False
        if not self._closed:
            self._service(self.clock())

    # -- the one service path ----------------------------------------------------------------

    def _service(self, now: float) -> None:
        """Flush output, dispatch events, and re-arm the timer. Events may cause output
        (a read opens the window), so loop a few rounds until both are quiet."""
        for _ in range(8):
            self.flush(now)
            if not self._dispatch(now):
                break
        self.flush(now)
        if self.pcap is not None:
            self.pcap.flush()  # once per batch/tick: inbound-only batches are written too
        self._rearm()

    def flush(self, now: float | None = None) -> None:
        """Move the stack's pending packets through impair_out (not at the end of ``close``)
        and pcap to the link."""
        if now is None:
            now = self.clock()
        packets = self.stack.pending_packets()
        impair = self.impair_out
        pcap = self.pcap
        if impair is not None and not self._bypass:
            if pcap is None:
                for pkt in packets:
                    _submit(impair, now, pkt)
            else:
                wall = time.time_ns()
                for whole in packets:
                    prior = getattr(whole, "note", None)
                    gso = getattr(whole, "gso_size", 0)
                    # A super-packet is cut in software first: the impairment acts per packet.
                    for pkt in segment_tcp(whole, gso) if gso else (whole,):
                        note = impair.submit(now, pkt)
                        if note is not None and note.endswith(": lost"):
                            # Never on the wire, but the capture says it was sent and lost.
                            pcap.write(wall, pkt, "out",
                                       f"{prior}; {note} (never sent)" if prior
                                       else f"{note} (never sent)")
            packets = impair.release(now)
        self._write_out(packets)

    def _write_out(self, packets: list[Any]) -> None:
        """pcap ("out") and the link, counting what the link refuses."""
        if not packets:
            return
        if self.pcap is not None:
            wall = time.time_ns()
            for pkt in packets:
                self._capture(wall, pkt, "out", getattr(pkt, "note", None))
        write_batch = getattr(self.link, "write_batch", None)
        if write_batch is not None:
            # One loop in the link; it counts what it dropped (its stats), never raises.
            self.packets_out += write_batch(packets)
            return
        write = self.link.write
        for pkt in packets:
            try:
                write(pkt)
            except OSError:
                # The link refused it (buffer full, ENOBUFS): lost like on a real wire; TCP
                # retransmits.
                self.tx_errors += 1
                continue
            self.packets_out += 1

    def _dispatch(self, now: float) -> bool:
        events = self.stack.pending_events()
        if not events:
            return False
        for owner, event in events:
            target = getattr(owner, "user_data", None)
            if target is None:
                entry = self._listener_targets.get(id(owner))
                if entry is None or entry[0] is not owner:
                    self.counters["events_unclaimed"] += 1
                    continue
                target = entry[1]
            handler = getattr(target, "handle_event", None)
            if handler is None:
                self.counters["events_unclaimed"] += 1
                continue
            try:
                handler(event, now)
            except Exception as exc:  # noqa: BLE001 - an app bug must not stop the stack
                self.callback_errors += 1
                self.loop.call_exception_handler(
                    {"message": f"pytcp: exception while handling {event!r}", "exception": exc}
                )
        return True

    def _rearm(self) -> None:
        if self._closed:
            return
        bypass = self._bypass
        deadline = _min_deadline(
            self.stack.next_deadline(),
            self.impair_in.next_deadline() if self.impair_in is not None and not bypass
            else None,
            self.impair_out.next_deadline() if self.impair_out is not None and not bypass
            else None,
        )
        if deadline == self._timer_deadline and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is None:
            return
        if self.clock == self.loop.time:
            when = deadline
        else:
            when = self.loop.time() + (deadline - self.clock())
        if self._last_fired is not None and deadline <= self._last_fired:
            # A deadline at or before the time just served would spin the loop: a timer that
            # did not advance. Look again in a millisecond and count it.
            self.counters["timer_stalls"] += 1
            when = max(when, self.loop.time() + 0.001)
        self._timer = self.loop.call_at(when, self._on_timer)
