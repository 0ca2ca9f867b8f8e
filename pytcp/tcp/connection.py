"""One TCP connection: the RFC 9293 state machine, sans I/O.

This module owns every change of connection state. Segments come in through
``handle_segment(now, seg)``, time through ``handle_timers(now)``, application calls through
``send``/``receive``/``shutdown``/``close``/``abort``; segments go out through
``pending_output()`` and notifications through ``pending_events()``. The engine never reads a
clock and never does I/O. Output is built lazily: handlers only record what is due (an ACK,
data the window now allows), and ``pending_output()`` / ``next_deadline()`` build the segments,
so a batch of arriving segments is answered with one ACK (RFC 9293 MUST-58/59).

Segment building and the decision of what to send now live in ``output.py``, the sender's
reaction to ACKs (RTT, recovery) in ``recovery.py`` (mixins of ``Connection``). The
components it drives live in their own modules: ``rtt`` (RFC 6298), ``sendbuf``,
``reassembly`` (out-of-order queue, SACK blocks), ``sackboard`` (RFC 6675 scoreboard),
``congestion`` (RFC 5681/6582/9438). Loss recovery: fast retransmit on three duplicate ACKs
(RFC 5681), NewReno partial ACKs without SACK (RFC 6582), NextSeg()/SetPipe() with SACK (RFC
6675), limited transmit (RFC 3042), RTO go-back that skips SACKed data, Eifel detection of
spurious retransmissions with timestamps (RFC 3522) and an undo of the reduction (RFC 4015).

Choices where the RFCs leave room (documented for docs/conformance.md):
- RST in TIME-WAIT is ignored (RFC 1337 TIME-WAIT assassination fix).
- Zero-window probes and keep-alive probes are Linux-style: an ACK with SEQ = SND.UNA - 1 and no
  data, which any receiver answers with an ACK carrying its window. A zero window may last
  indefinitely while the peer answers the probes (MUST-37), but unanswered probes count
  toward R2 as Linux counts them (tcp_probe_timer): every acceptable ACK resets the count,
  and ``retries2`` probes in a row without one end the connection (RST,
  ``ConnectionTimedOut``), so a silent peer behind a zero window is not kept forever.
- Orphans (``close()`` called, or ``set_orphan()``: nobody waits for the connection any
  more, Linux SOCK_DEAD) use ``config.orphan_retries`` (8) instead of ``retries2`` for
  retransmissions and unanswered probes, and give up even on a peer that answers the probes
  once the probe backoff reached its cap (Linux tcp_orphan_retries, "alive" rule).
- Urgent data: the urgent pointer is received and kept (RCV.UP); ``urgent_pending`` tells how
  many urgent octets lie ahead of the read position and an ``UrgentData`` event reports each
  advance (MUST-30..33). The data itself stays in the normal stream (no out-of-band byte,
  RFC 6093). ``send(..., urgent=True)`` sends urgent data: URG and the pointer to the first
  octet after it, until it is acknowledged.
- ``close()`` with unread data sends RST (RFC 2525 / Linux); data arriving after ``close()``
  is answered with RST; an orphaned FIN-WAIT-2 ends after ``config.fin_wait2_timeout``.
- The retry limits (R2) count retransmissions (``retries2``, ``syn_retries``,
  ``synack_retries``), not time; ``set_retries()`` changes them per connection (MUST-21).
- Timestamps give an RTT sample per ACK of new data (RFC 7323 4), except when that ACK covers
  retransmitted data but echoes an older TSval, and after a retransmitted SYN (Karn).
- A pure ACK sent while an RTO go-back has pulled SND.NXT back carries SND.MAX (as BSD does).
- Linux-like details: Linux's delayed-ACK model (``tcp/delack.py``: quick ACKs at the first
  data, pingpong mode for request/response exchanges and after the peer's FIN, the ATO
  estimate; ``_ack_snd_check`` is the one decision), Nagle with Minshall's refinement, 65535
  in the SYN's window field, no ACK after the third segment of the handshake.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass

from pytcp.drops import DropCounter, DropReason
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.congestion import CongestionControl, Cubic, make_congestion
from pytcp.tcp.delack import DelayedAck
from pytcp.tcp.ecn import Ecn
from pytcp.tcp.errors import TcpUsageError
from pytcp.tcp.events import (
    Closed,
    Connected,
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimedOut,
    DataAvailable,
    EndOfStream,
    Event,
    SendSpaceAvailable,
    TxProgress,
    UrgentData,
)
from pytcp.tcp.fastopen import (
    COOKIE_MAX,
    COOKIE_MIN,
    SYN_DATA_OPTION_RESERVE,
    ClientRequest,
    ServerDecision,
)
from pytcp.tcp.memory import RecvMemory
from pytcp.tcp.output import CHRONO_BUSY, GSO_MAX_SIZE
from pytcp.tcp.output import OUTPUT_STATES as _OUTPUT_STATES
from pytcp.tcp.prr import Prr
from pytcp.tcp.rack import Rack
from pytcp.tcp.reasons import TxReason
from pytcp.tcp.rcvwnd import RecvWindow
from pytcp.tcp.reassembly import ReassemblyQueue
from pytcp.tcp.recovery import ConnectionRecovery
from pytcp.tcp.rtt import RttEstimator
from pytcp.tcp.sackboard import Scoreboard
from pytcp.tcp.segment import Segment
from pytcp.tcp.sendbuf import SendBuffer
from pytcp.tcp.seq import MASK, seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub
from pytcp.tcp.state import RECEIVE_STATES, State
from pytcp.tcp.timewait import TimeWait
from pytcp.wire.tcp import (
    ACK,
    CWR,
    ECE,
    FIN,
    MD5SIG_SPACE,
    NO_OPTIONS,
    PSH,
    RST,
    SYN,
    URG,
    TcpOptions,
)

Buffer = bytes | bytearray | memoryview

_log = logging.getLogger("pytcp.tcp.connection")

# RFC 9293 3.7.1 / MUST-15: the send MSS when the peer sent no MSS option.
DEFAULT_SEND_MSS = 536
# RFC 7323 5.5: TS.Recent older than 24 days is invalid for PAWS.
PAWS_IDLE = 24 * 24 * 3600.0
# Option bytes in a data segment: nop nop TS (RFC 7323 appendix A layout).
TS_OPTION_LEN = 12


@dataclass(frozen=True, slots=True)
class ConnInfo:
    """A snapshot for introspection (status page, tests)."""

    state: State
    bytes_in: int
    bytes_out: int
    retransmits: int
    srtt: float | None
    rto: float
    cwnd: int
    ssthresh: int
    snd_wnd: int
    rcv_wnd: int
    rcvbuf: int = 0        # the receive buffer now (autotuned up to TcpConfig.recv_buffer)
    rcv_ssthresh: int = 0  # the window growth bound (Linux tcpi_rcv_ssthresh)
    rcv_space: int = 0     # bytes read in the last receiver RTT (Linux tcpi_rcv_space)


MAX_EOR_MARKS = 4096  # pending MSG_EOR record boundaries kept per connection


class Connection(ConnectionRecovery):
    """A TCP connection (RFC 9293). See the module docstring for the sans-I/O contract."""

    # Slots save ~2.4 KB a connection (an instance dict of ~110 keys). Every attribute of
    # Connection and its mixins (output.py, recovery.py) must be listed here, class-level
    # defaults included (they move to __init__); output.py and recovery.py list the ones they
    # assign. tests/tcp/test_connection_slots.py checks.
    __slots__ = ("_app_closed", "_chal_count", "_chal_window", "_dack", "_data_event", "_ecn",
                 "_events",
                 "_eor_marks", "_fin_queued", "_fin_received", "_fo_client", "_fo_resend",
                 "_fo_server",
                 "_goback_reason",
                 "_ka_last", "_ka_probes", "_last_rx", "_mem", "_mem_ooo", "_mem_used", "_more",
                 "_nagle_push", "_pushed_seq", "_tail_unpushed",
                 "_now", "_ooo_fin", "_oow_ack_at", "_orphan", "_out", "_passive",
                 "_persist_backoff", "_probe_start", "_probes_out", "_prr", "_rack", "_rack_on",
                 "_rcv_mss", "_rcvq", "_reasm", "_rtt", "_rw", "_rx_tsecr", "_sb", "_syn_data", "_syn_lost",
                 "_synack_flags", "_ts_recent_age", "_tw_at", "_tx_track", "_urg_valid", "bytes_in", "config",
                 "cork", "created", "debug_name", "default_mss", "drops", "fo_child", "fo_result",
                 "irs", "iss", "keepalive", "keepalive_count", "keepalive_idle",
                 "keepalive_interval", "max_snd_wnd", "md5", "nodelay", "our_mss", "peer_mss", "rcv_nxt",
                 "rcv_up", "rcv_wscale", "retries2", "sack_ok", "snd_mss", "snd_wl1", "snd_wl2",
                 "snd_wnd", "snd_wscale", "soft_error", "state", "syn_data_acked", "syn_retries",
                 "transitions", "ts_offset", "ts_ok", "ts_recent", "user_timeout", "ws_ok",
                 "__weakref__")

    def __init__(self, config: TcpConfig, *, iss: int, now: float, mss: int | None = None) -> None:
        self.config = config
        # The send MSS assumed when the peer's SYN has no MSS option (MUST-15): 536 over IPv4;
        # the owner sets 1220 for a connection over IPv6 (RFC 8200 5: 1280 - 60).
        self.default_mss = DEFAULT_SEND_MSS
        # (the mixins' attributes that have defaults)
        self._burst_key: tuple[float, int, int, int] | None = None
        self._rtx_ts = 0
        self._rtx_end: int | None = None
        self._burst_val: tuple[int, TcpOptions] = (0, NO_OPTIONS)
        self._ack_reason: TxReason | None = None
        self._goback_reason = TxReason.RTO
        self._in_loss = False
        # Linux tcp_cwnd_validate's record of how the window was used (output.py).
        self._is_cwnd_limited = False
        self._max_packets_out = 0
        self.iss = iss & MASK
        self._cwnd_usage_seq = self.iss
        self.created = now
        self._now = now
        self.our_mss = mss if mss is not None else config.mss  # announced (RFC 9293 3.7.1)
        self.state = State.CLOSED
        self.transitions: list[tuple[float, State, State, str]] = []
        self.drops: collections.Counter[DropReason] = DropCounter()
        self._out: list[Segment] = []
        self._events: list[Event] = []
        self._data_event = False  # a DataAvailable is waiting in _events
        self._tx_track: tuple[int, int] | None = None  # last TxProgress reported (track_tx)
        self._passive = False
        self.debug_name = f"conn-{id(self):x}"  # the owner may set e.g. the 4-tuple
        self.nodelay = config.nodelay
        # TCP_CORK / MSG_MORE (Linux): hold a partial tail segment until uncorked, filled,
        # or CORK_CEILING after it was first held.
        self.cork = False
        self._more = False               # the last send() said more data follows (MSG_MORE)
        # Linux TCP_NAGLE_PUSH: setting TCP_NODELAY (or uncorking with it on) pushes what is
        # pending once, past cork/MSG_MORE/Nagle, until new data is written (skb_entail).
        self._nagle_push = False
        # The tail was written with MSG_MORE: no PSH is marked on it (Linux tcp_push marks
        # PSH only for a send without MSG_MORE; the probe timer's send marks it).
        self._tail_unpushed = False
        self._cork_at: float | None = None  # the ceiling of the current hold
        self._cork_expired = False       # the ceiling passed: the held tail may go
        # --- send sequence space (RFC 9293 3.3.1) ---
        self.snd_una = self.iss
        self.snd_nxt = self.iss
        self.snd_max = self.iss          # highest sequence number sent + 1
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = self.iss
        self.max_snd_wnd = 0
        self.peer_mss = DEFAULT_SEND_MSS
        self.snd_mss = DEFAULT_SEND_MSS  # effective send MSS (MUST-16)
        # The ring holds storage only while it holds data (sendbuf.py). What send() accepts
        # follows Linux's accounting: SO_SNDBUF (``sndbuf``) against the queue's skb truesize
        # (``SendBuffer.queued``); it starts at send_buffer_min (tcp_wmem[1]) and grows with
        # cwnd (_sndbuf_expand) up to send_buffer (tcp_wmem[2]).
        self.sndbuf = max(1, min(config.send_buffer, config.send_buffer_min))
        self._sndbuf_locked = False      # SO_SNDBUF was set: no autotuning (set_sndbuf)
        self.notsent_lowat: int | None = None  # TCP_NOTSENT_LOWAT (None: no limit)
        self._sendbuf = SendBuffer(self.sndbuf)
        self._midwrite = False           # send() pushes a full skb (tcp_push_one)
        # TCP_INFO chronographs (chrono()): the running one, since when, and the totals.
        self._chrono_type = 0
        self._chrono_at = now
        self._chrono_stat = [0.0, 0.0, 0.0]
        self._space_check = False        # a segment arrived: check for room after output
        self._buf_seq = seq_add(self.iss, 1)  # sequence number of the send buffer's byte 0
        self._fin_queued = False         # the application shut down its sending side
        self._fin_seq: int | None = None  # our FIN's sequence number once it was sent
        self._nospace = False            # a send() was short (SOCK_NOSPACE): wake it later
        self._pushed_seq = self._buf_seq  # end of the data at the last push (forced_push)
        self._snd_sml = self.iss         # end of the last small segment sent (Minshall)
        self._snd_up: int | None = None  # SND.UP while urgent data is unacknowledged
        # --- receive sequence space ---
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0                 # right edge of the window we advertised
        self.rcv_up = 0                  # urgent pointer (first non-urgent octet)
        self._urg_valid = False
        self._rcvq = bytearray()         # in-order data the application has not read
        self._reasm = ReassemblyQueue(config.reassembly_limit)
        self._rw = RecvWindow(config)    # the window we offer: growth, autotuning (rcvwnd.py)
        self._rx_tsecr = 0               # TSecr of the segment being processed (0: none)
        self._syn_wnd = 0                # the window our SYN / SYN-ACK offered
        # The stack-wide receive memory account (memory.py), when the owner gives one; what
        # this connection has charged to it (all, and out of order).
        self._mem: RecvMemory | None = None
        self._mem_used = 0
        self._mem_ooo = 0
        self._ooo_fin: int | None = None  # sequence number of a FIN that arrived out of order
        self._fin_received = False
        self._app_closed = False         # close() was called: no more reading
        self._rcv_mss = min(self.our_mss, DEFAULT_SEND_MSS)  # estimate of the peer's seg size
        self._rcv_unacked = 0            # bytes received since our last ACK
        self._dack = DelayedAck(config)  # when to ACK received data (tcp/delack.py)
        self._ack_now = False
        self._dsack: tuple[int, int] | None = None
        self.last_ack_sent = 0
        # --- options (RFC 7323, RFC 2018) ---
        self.ws_ok = False
        self.snd_wscale = 0              # the peer's shift, applied to its window field
        self.rcv_wscale = config.wscale if config.window_scaling else 0
        self.ts_ok = False
        self.sack_ok = False
        # RFC 2385: every segment carries an MD5 signature (the owner holds the key, fills
        # the digest and checks the peer's; set before the SYN). Here: its 20 bytes of
        # option space (MUST-16: they come out of the MSS) and Linux's option choices.
        self.md5 = False
        self.ts_recent = 0
        self._ts_recent_age = now
        # TSval = int(now * ts_hz) + ts_offset (mod 2**32); a per-connection offset keeps the
        # clock private (RFC 7323 7.1). Derived from the (secret-keyed) ISS; settable.
        self.ts_offset = (self.iss * 2654435761) & MASK
        # --- retransmission / congestion ---
        self._rtt = RttEstimator(config.initial_rto, config.min_rto, config.max_rto,
                                 min_on_variance=config.rto_min_on_variance)
        self._cc: CongestionControl = make_congestion(
            config.congestion, self.snd_mss, config.initial_window, hystart=config.hystart,
            hystart_kind=config.hystart_kind, cubic_kind=config.cubic_kind,
            tick=config.timer_tick)
        self._cc.abc_limit = config.slow_start_abc_limit
        if isinstance(self._cc, Cubic):
            self._cc.ssthresh_from_cwnd = config.cubic_ssthresh_from_cwnd
        self._rtt_seq: int | None = None  # Karn: the segment being timed (without TS)
        self._rtt_time = 0.0
        self._retries = 0                # consecutive RTO expirations
        self._eor_marks: collections.deque[int] = collections.deque()  # MSG_EOR boundaries
        # RFC 9293 3.8.3 USER TIMEOUT / RFC 5482 (Linux TCP_USER_TIMEOUT): 0 = off; else
        # data (or zero-window probes) unacknowledged this long end the connection.
        self.user_timeout = 0.0
        self._ut_start: float | None = None  # when the oldest unacked data was first sent
        self._probe_start: float | None = None  # the first unanswered zero-window probe
        self.retries2 = config.retries2  # R2 (MUST-20/21), per connection
        self.syn_retries = config.syn_retries
        self._rto_repeated = False
        self._dupacks = 0
        self._in_recovery = False
        self._recover = self.iss          # RFC 6582 "recover" / RFC 6675 RecoveryPoint
        self._sb = Scoreboard()           # RFC 6675 scoreboard (when SACK is on)
        self._high_rxt = self.iss         # RFC 6675 HighRxt (exclusive end)
        self._rexmit_out = 0              # bytes retransmitted in this recovery (no SACK)
        # Eifel (RFC 3522/4015): (cwnd, ssthresh, TSval of the first retransmission,
        # retransmit count then, was it an RTO) until the first ACK that advances SND.UNA.
        self._undo: tuple[int, int, int, int, bool] | None = None
        self.spurious_retransmits = 0
        # RACK-TLP (RFC 8985), on once SACK is negotiated and config.rack is set.
        self._rack = Rack(tick=config.timer_tick)
        self._rack_on = False
        self._reo_at: float | None = None   # RACK reordering timer (RFC 8985 6.3)
        self._tlp_at: float | None = None   # tail loss probe timer (RFC 8985 7.2)
        self._tlp_high: int | None = None   # TLPRxtOut: SND.NXT when a probe was sent
        self._tlp_rtx = False               # the outstanding probe was a retransmission
        self.tlp_probes = 0
        self.tlp_recoveries = 0
        # PRR (RFC 6937 / RFC 9937) during fast recovery.
        self._prr = Prr()
        # ECN (RFC 3168).
        self._ecn = Ecn(config.ecn)
        self._synack_flags = 0           # ECE on our SYN-ACK when the SYN asked for ECN
        self._cwr_state = False          # reducing cwnd after an ECE (Linux TCP_CA_CWR)
        self.delivered = 0               # segments the peer acknowledged (Linux tcpi_delivered)
        # TCP Fast Open (RFC 7413).
        self._fo_client: ClientRequest | None = None   # our first SYN's cookie/request
        self._fo_server: ServerDecision | None = None  # the stack's decision for the SYN
        self._syn_data = 0               # data bytes in our first SYN
        self._fo_resend = 0              # of them, the bytes the SYN-ACK did not acknowledge
        self._syn_tsval: int | None = None  # TSval of our first SYN (Linux retrans_stamp)
        self.fo_child = False            # a passive connection that accepted SYN data
        self.syn_data_acked = False      # Linux TCPI_OPT_SYN_DATA
        # After the SYN-ACK of a Fast Open attempt: (mss, cookie or None, exp, SYN-data
        # lost, try_exp) for the stack's cookie cache (Linux tcp_fastopen_cache_set).
        self.fo_result: tuple[int, bytes | None, bool, bool, int] | None = None
        self._syn_lost = False
        self._last_send = now
        # --- timers (absolute deadlines, None = not armed) ---
        self._rto_at: float | None = None
        self._delack_at: float | None = None
        self._persist_at: float | None = None
        self._persist_backoff = 0
        self._probes_out = 0             # unanswered zero-window probes (Linux icsk_probes_out)
        self._orphan = False             # set_orphan(): the application no longer waits
        self._tw_at: float | None = None  # TIME-WAIT end, or the orphan FIN-WAIT-2 timeout
        # --- keep-alive (RFC 9293 3.8.4) ---
        self.keepalive = config.keepalive
        self.keepalive_idle = config.keepalive_idle
        self.keepalive_interval = config.keepalive_interval
        self.keepalive_count = config.keepalive_count
        self._last_rx = now
        self._ka_probes = 0
        self._ka_last = now
        # --- challenge ACK rate limit (RFC 5961 7) ---
        self._chal_window = -1.0
        self._chal_count = 0
        self._oow_ack_at = -1.0
        # --- statistics ---
        self.bytes_in = 0
        self.bytes_out = 0
        self.retransmits = 0
        self.soft_error: tuple[int, int] | None = None

    @property
    def ecn_ok(self) -> bool:
        """ECN was negotiated (RFC 3168 6.1.1)."""
        return self._ecn.ok

    @property
    def ecn_seen(self) -> bool:
        """An ECT or CE marked packet arrived (Linux TCPI_OPT_ECN_SEEN)."""
        return self._ecn.seen

    def __repr__(self) -> str:
        return (f"<Connection {self.debug_name} {self.state} snd_una={self.snd_una} "
                f"snd_nxt={self.snd_nxt} snd_wnd={self.snd_wnd} rcv_nxt={self.rcv_nxt}>")

    # ------------------------------------------------------------------ state and events
    def _set_state(self, now: float, new: State, why: str) -> None:
        """The one place the state changes; it records (now, old, new, why)."""
        old = self.state
        if old is new:
            return
        self.state = new
        self.transitions.append((now, old, new, why))
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("%s %s -> %s (%s)", self.debug_name, old, new, why)
        if new is State.ESTABLISHED:
            # Linux tcp_init_buffer_space: the receive window's growth starts here.
            self._rw.established(now, self.our_mss, self.bytes_in - len(self._rcvq),
                                 max(0, seq_sub(self.rcv_adv, self.rcv_nxt)))
        if new is State.CLOSED or new is State.TIME_WAIT:
            self._tlp_at = self._reo_at = None
            self._rack.clear()
        if new is State.CLOSED:
            self._rto_at = self._delack_at = self._persist_at = self._tw_at = None
            self._ack_now = False
            self._events.append(Closed())
        elif new is State.TIME_WAIT:
            self._rto_at = self._persist_at = self._delack_at = None
            self._tw_at = now + self.config.time_wait  # RFC 9293 3.10.7.4, MUST-13
        if new is State.TIME_WAIT or new is State.CLOSED:
            # Everything we sent was acknowledged (or never will be): free the ring, so a
            # busy server's many TIME-WAIT connections stay small.
            self._sendbuf.clear()
            self._reasm.clear()
            if self._mem is not None:
                self._mem_sync()
        elif new is State.ESTABLISHED:
            self._sndbuf_expand()  # Linux tcp_init_buffer_space
            self._events.append(Connected())

    def _reset_close(self, now: float, why: str, event: Event | None) -> None:
        """Enter CLOSED after an error, flushing queues (RFC 9293 3.10.7.4 second)."""
        if event is not None:
            self._events.append(event)
        self._sendbuf.clear()
        self._reasm.clear()
        self._set_state(now, State.CLOSED, why)
        if self._mem is not None:
            self._mem_sync()

    # ------------------------------------------------------------------ receive memory
    def use_memory(self, mem: RecvMemory) -> None:
        """Charge the bytes this connection holds for the application (unread in order, and
        out of order) to ``mem``, the owner's stack-wide account (``pytcp.tcp.memory``)."""
        self._mem = mem
        self._mem_sync()

    def release_memory(self) -> None:
        """The owner forgets this connection: uncharge everything and leave the account."""
        mem = self._mem
        if mem is not None:
            mem.update(self, -self._mem_used, -self._mem_ooo, 0)
            self._mem = None
            self._mem_used = self._mem_ooo = 0

    @property
    def ooo_bytes(self) -> int:
        """Out-of-order bytes held (the reassembly queue)."""
        return self._reasm.bytes_queued

    def prune_ooo(self, nbytes: int) -> int:
        """Memory pressure: drop out-of-order data from the highest sequence number down until
        ``nbytes`` are freed (Linux tcp_prune_ofo_queue); return the bytes freed. Never
        acknowledged, so the peer retransmits it (RFC 2018 8: SACKed data may be reneged)."""
        freed = self._reasm.prune(nbytes)
        if freed:
            if self._mem is not None:
                self._mem_sync()
        return freed

    def _mem_sync(self) -> None:
        """Report this connection's bytes to the stack-wide account."""
        mem = self._mem
        assert mem is not None
        ooo = self._reasm.bytes_queued
        used = len(self._rcvq) + ooo
        if used != self._mem_used or ooo != self._mem_ooo:
            mem.update(self, used - self._mem_used, ooo - self._mem_ooo, ooo)
            self._mem_used = used
            self._mem_ooo = ooo

    # ------------------------------------------------------------------ application side
    def open_active(self, now: float, fastopen: ClientRequest | None = None,
                    data: Buffer = b"", syn_only: bool = True) -> int:
        """Active OPEN (RFC 9293 3.10.1): send SYN, enter SYN-SENT. With ``fastopen`` (RFC
        7413) the SYN carries its cookie (or a cookie request, ``b""``) and, with a cookie,
        up to ``fastopen.space`` bytes of ``data``; returns how many bytes of ``data`` were
        queued: those in the SYN (``syn_only``), or all that fit the send buffer (the rest
        goes once the handshake is done)."""
        if self.state is not State.CLOSED or self.transitions:
            raise TcpUsageError(f"open_active in {self.state}")
        self._now = now
        self._passive = False
        taken = 0
        if fastopen is not None:
            self._fo_client = fastopen
            # Linux tcp_send_syn_data: the SYN's data room is the MSS (clamped by what we
            # announce, TCP_MAXSEG) less the whole option space.
            n = min(len(data), fastopen.space, self.our_mss - SYN_DATA_OPTION_RESERVE)
            if fastopen.cookie == b"":
                n = 0  # a cookie request carries no data (RFC 7413 4.1.3)
            want = n if syn_only else len(data)
            if want > 0:
                taken = self._write_skbs(now, memoryview(data)[:want], False)
                self._syn_data = min(n, taken)
                if self._syn_data:
                    # Linux keeps the SYN's data as its own skb (with PSH): later data never
                    # joins it, not even in a retransmission (a record boundary, as MSG_EOR).
                    self._eor_marks.append(seq_add(self.iss, 1 + self._syn_data))
        self._set_state(now, State.SYN_SENT, "active OPEN")
        self._send_syn(now)
        return taken

    @property
    def syn_data_sent(self) -> int:
        """Data bytes our first SYN carried (RFC 7413 client; 0 without Fast Open data)."""
        return self._syn_data

    def fastopen_server(self, decision: ServerDecision | None) -> None:
        """The stack's Fast Open decision for the SYN it is about to hand to this passive
        connection (RFC 7413 4.2.2): accept the SYN's data, and/or the cookie for the SYN-ACK."""
        self._fo_server = decision

    def open_passive(self) -> None:
        """Passive OPEN (RFC 9293 3.10.1): enter LISTEN; the stack feeds the SYN next."""
        if self.state is not State.CLOSED or self.transitions:
            raise TcpUsageError(f"open_passive in {self.state}")
        self._passive = True
        self._set_state(self._now, State.LISTEN, "passive OPEN")

    def open_from_cookie(self, now: float, syn: Segment) -> None:
        """SYN-RECEIVED rebuilt from a valid SYN cookie (RFC 4987 3.6), before the ACK that
        returned it is fed with ``handle_segment``. ``syn`` is the peer's SYN as the cookie
        remembers it (its ISN, the MSS from the table, window scale and SACK-permitted from
        the echoed timestamp, the ACK's TSval as TS.Recent). The SYN-ACK was already sent by
        the stack from no state: it is not sent again and, without timestamps, gives no RTT
        sample (its send time is unknown; with timestamps TSecr gives one)."""
        self.open_passive()
        self._now = now
        self._on_listen(now, syn)
        self._out.clear()
        self._rtt_seq = None

    def send(self, now: float, data: Buffer, push: bool = True, urgent: bool = False,
             more: bool = False, eor: bool = False) -> int:
        """SEND (RFC 9293 3.10.2): queue as much of ``data`` as fits; return the count.
        ``push`` is accepted for the interface; every write's last segment carries PSH.
        ``more`` (Linux MSG_MORE): more data follows, so a partial last segment is held as
        under :meth:`set_cork` until a send without ``more``, the next arriving segment (then
        the socket's Nagle/cork rule applies), or the cork ceiling; no PSH is marked on it.
        ``urgent``: the accepted bytes are urgent data (RFC 9293 3.8.5): SND.UP is set after
        them and segments before it carry URG with the pointer to the first non-urgent octet
        (MUST-62), until it is acknowledged. ``eor`` (Linux MSG_EOR): no segment carries
        these bytes together with bytes sent later (record boundary after the accepted bytes;
        at most ``MAX_EOR_MARKS`` pending, the oldest forgotten past that)."""
        self._now = now
        if self.state not in (State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED,
                              State.CLOSE_WAIT) or self._fin_queued:
            raise TcpUsageError(f"connection closing (send in {self.state})")
        buf = self._sendbuf
        self._more = bool(more)
        if data and self.state.synchronized:
            self._idle_restart_check(now)  # (Linux tcp_skb_entail)
        n = self._write_skbs(now, data, mss_only=urgent)
        if eor and n:
            marks = self._eor_marks
            marks.append(seq_add(self._buf_seq, len(buf)))
            if len(marks) > MAX_EOR_MARKS:
                marks.popleft()
        if n < len(data):
            self._nospace = True  # Linux SOCK_NOSPACE: wake the writer when there is room
        if n and (not more or n < len(data)):
            # Linux tcp_push (at the write's end without MSG_MORE; and when the write waits
            # for room, whatever MSG_MORE says): tcp_mark_push on the tail skb.
            buf.mark_push()
            self._pushed_seq = seq_add(self._buf_seq, len(buf))
        if not more:
            self._pushed_seq = seq_add(self._buf_seq, len(buf))  # tcp_push: tcp_mark_push
        if urgent and n:
            self._snd_up = seq_add(self._buf_seq, len(buf))
        self._more = bool(more)
        if n:
            self._nagle_push = False  # (Linux skb_entail clears TCP_NAGLE_PUSH)
            self._tail_unpushed = bool(more)
        elif not more:
            self._tail_unpushed = False
        if not more and not self.cork:
            self._cork_at = None
            self._cork_expired = False
        return n

    def _size_goal(self, mss_only: bool) -> int:
        """Linux tcp_xmit_size_goal: the payload a write puts in one skb, whole segments of
        the largest GSO packet, at most half the largest window the peer offered
        (tcp_bound_to_half_wnd); one MSS for urgent data (MSG_OOB)."""
        mss = max(1, self.snd_mss)
        if mss_only:
            return mss
        goal = GSO_MAX_SIZE
        w = self.max_snd_wnd
        cut = w >> 1 if w > DEFAULT_SEND_MSS else w
        if cut and goal > cut:
            goal = max(cut, 48)
        return max(mss, goal - goal % mss)

    def _write_skbs(self, now: float, data: Buffer, mss_only: bool) -> int:
        """Linux tcp_sendmsg_locked's copy loop: fill the tail skb (one not sent yet, and not
        closed by MSG_EOR) up to the size goal; a new skb only while ``_memory_free(0)``
        (SO_SNDBUF, TCP_NOTSENT_LOWAT); a filled skb at the head of the unsent data, or more
        than half the peer's largest window written since the last push (forced_push), is
        sent at once when more of the write follows (tcp_push_one), so that the bytes it
        frees count for the rest of this write. The bytes held stay under ``sndbuf`` plus
        one skb plus what this write sent (at most a congestion window). Returns the bytes
        accepted."""
        buf = self._sendbuf
        total = len(data)
        mv = data if isinstance(data, memoryview) else memoryview(data)
        goal = self._size_goal(mss_only)
        done = 0
        while done < total:
            start, tlen = buf.tail_skb()
            unsent_at = seq_sub(self.snd_max, self._buf_seq)
            closed = bool(self._eor_marks) and self._eor_marks[-1] == seq_add(
                self._buf_seq, len(buf))
            if tlen and start >= unsent_at and tlen < goal and not closed:
                room = goal - tlen
                new = False
            else:
                if not self._memory_free(0):
                    break
                room = goal
                new = True
                start = len(buf)
                tlen = 0
                if start <= unsent_at:
                    self._chrono_start(now, CHRONO_BUSY)  # (the first unsent skb)
            k = min(room, total - done)
            buf.append(mv[done:done + k], new, done == 0)
            done += k
            if (tlen + k >= goal and done < total and not mss_only
                    and self.state in _OUTPUT_STATES):
                # (not for MSG_OOB, as in Linux: its pointer is set after the copy)
                end = seq_add(self._buf_seq, len(buf))
                forced = seq_gt(end, seq_add(self._pushed_seq, self.max_snd_wnd >> 1))
                if forced:
                    self._pushed_seq = end
                    buf.mark_push()  # (Linux tcp_mark_push: the filled skb carries PSH)
                if forced or start == seq_sub(self.snd_max, self._buf_seq):
                    # (a forced push marks PSH on the filled skb, tcp_mark_push; a push of
                    # the head skb does not: the write's last segment carries it)
                    self._midwrite = not forced
                    try:
                        self._flush(now)
                    finally:
                        self._midwrite = False
        return done

    def set_sndbuf(self, size: int) -> None:
        """SO_SNDBUF as Linux stores it (the caller doubles what the application gave):
        the limit from now on, without autotuning (SOCK_SNDBUF_LOCK)."""
        self.sndbuf = max(1, size)
        self._sndbuf_locked = True
        self._sendbuf.limit = max(self._sendbuf.limit, self.sndbuf)

    def set_rcvbuf(self, size: int) -> None:
        """SO_RCVBUF (in window bytes): the receive buffer from now on, without autotuning
        (Linux SOCK_RCVBUF_LOCK). The window already advertised is kept (never shrunk)."""
        self.config = self.config.replace(recv_buffer=max(1, size))
        self._rw.set_buffer(size)

    def set_notsent_lowat(self, lowat: int | None) -> None:
        """TCP_NOTSENT_LOWAT: ``send()`` starts no new skb while this many bytes are unsent,
        and the socket reports writeable when fewer than half of it are (None: no limit).
        Linux wakes a waiting writer at once if that makes room (sk_write_space)."""
        self.notsent_lowat = lowat
        if self._nospace and self.writeable and not self._fin_queued and self.state in (
                State.ESTABLISHED, State.CLOSE_WAIT):
            self._nospace = False
            self._events.append(SendSpaceAvailable())

    def poll_writeable(self) -> bool:
        """``writeable`` as Linux tcp_poll reports it: asking marks the socket as waiting
        for room (SOCK_NOSPACE), so a later ACK that makes room wakes it."""
        w = self.writeable
        if not w:
            self._nospace = True
        return w

    def receive(self, now: float, max_bytes: int = -1) -> bytes:
        """RECEIVE (RFC 9293 3.10.3): up to ``max_bytes`` in-order bytes (all when < 0);
        ``b""`` when nothing is buffered. Reading opens the window (a window update is sent
        when it grew enough, RFC 9293 3.8.6.2.2)."""
        self._now = now
        q = self._rcvq
        if not q:
            return b""
        if max_bytes < 0 or max_bytes >= len(q):
            data = bytes(q)
            q.clear()
        else:
            data = bytes(q[:max_bytes])
            del q[:max_bytes]
        if self._mem is not None:
            self._mem_sync()
        rw = self._rw
        if rw.active and rw.rtt and now - rw.space_time >= rw.rtt:
            # Linux tcp_rcv_space_adjust (dynamic right-sizing; once per receiver RTT), then
            # tcp_cleanup_rbuf.
            copied = self.bytes_in - len(q)
            rw.space_adjust(now, copied - rw.space_seq, len(q), copied, self.our_mss)
        if self._dack.ack_on_read(len(data), not q and not self._reasm, self._rcv_unacked,
                                  self._rcv_mss):
            self._ack_now = True  # Linux tcp_cleanup_rbuf: the reader drained pushed data
        elif self.state in RECEIVE_STATES:
            # Linux tcp_cleanup_rbuf: announce the opened window when it at least doubles.
            cur = max(0, seq_sub(self.rcv_adv, self.rcv_nxt))
            new = min(self._window_to_advertise(), 0xFFFF << self.rcv_wscale)
            if new > cur and new >= 2 * cur and new - cur >= self._sws_threshold():
                self._want_ack(TxReason.WINDOW_UPDATE)
        return data

    @property
    def readable(self) -> bool:
        """True when ``receive()`` would return data, or the stream ended."""
        return bool(self._rcvq) or self.at_eof

    @property
    def at_eof(self) -> bool:
        """The peer's FIN arrived and every byte before it was read."""
        return self._fin_received and not self._rcvq

    @property
    def bytes_readable(self) -> int:
        return len(self._rcvq)

    @property
    def send_space(self) -> int:
        """Bytes ``send()`` would accept now (0 when sending is over)."""
        if self.state not in (State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED,
                              State.CLOSE_WAIT) or self._fin_queued:
            return 0
        buf = self._sendbuf
        if not self._memory_free(0):
            start, tlen = buf.tail_skb()
            goal = self._size_goal(False)
            if tlen and start >= seq_sub(self.snd_max, self._buf_seq) and tlen < goal:
                return goal - tlen  # (room left in the unsent tail skb)
            return 0
        return max(1, self.sndbuf - buf.queued)

    @property
    def unsent_bytes(self) -> int:
        """Bytes queued but not yet acknowledged (send buffer occupancy)."""
        return len(self._sendbuf)

    @property
    def urgent_pending(self) -> int:
        """Urgent octets ahead of the read position (RFC 9293 3.8.5, MUST-33)."""
        if not self._urg_valid:
            return 0
        read_pos = seq_sub(self.rcv_nxt, len(self._rcvq))
        return max(0, seq_sub(self.rcv_up, read_pos))

    def shutdown(self, now: float) -> None:
        """CLOSE of the sending side (RFC 9293 3.10.4): FIN after all queued data."""
        self._now = now
        st = self.state
        if st in (State.LISTEN, State.SYN_SENT):
            self._reset_close(now, "CLOSE", None)
        elif st in (State.SYN_RECEIVED, State.ESTABLISHED):
            self._fin_queued = True
            self._set_state(now, State.FIN_WAIT_1, "CLOSE")
        elif st is State.CLOSE_WAIT:
            self._fin_queued = True
            self._set_state(now, State.LAST_ACK, "CLOSE")
        # CLOSED and the closing states: nothing more to do (idempotent).

    def close(self, now: float) -> None:
        """The application is done with the connection. With unread data: RST (RFC 2525,
        Linux); otherwise a FIN as ``shutdown`` and no more reading."""
        self._now = now
        if self.state is State.CLOSED:
            return
        if self._rcvq:  # unread in-order data (Linux tcp_close; RFC 2525 2.17)
            self._abort(now, TxReason.RST_UNREAD_DATA)
            return
        self._app_closed = True
        self.shutdown(now)
        if self.state is State.FIN_WAIT_2:
            self._tw_at = now + self.config.fin_wait2_timeout

    def abort(self, now: float) -> None:
        """ABORT (RFC 9293 3.10.5): RST in the synchronized states, then CLOSED."""
        self._abort(now, TxReason.RST_ABORT)

    def _abort(self, now: float, reason: TxReason) -> None:
        self._now = now
        if self.state in (State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1,
                          State.FIN_WAIT_2, State.CLOSE_WAIT):
            self._emit(Segment(self.snd_max, self.rcv_nxt, RST | ACK, self._wnd_field(),
                               options=self._options(now, 0), reason=reason))
        self._rcvq.clear()
        self._reset_close(now, "ABORT", None)

    def set_nodelay(self, flag: bool) -> None:
        """Turn Nagle's algorithm off (True) or on (MUST-17). Turning it off (even when it
        already was) pushes what is pending once, as Linux does (``TCP_NAGLE_PUSH`` in
        ``__tcp_sock_set_nodelay``): a partial segment held by TCP_CORK or MSG_MORE leaves at
        the next output (the cork itself stays for later writes)."""
        self.nodelay = bool(flag)
        if flag:
            self._nagle_push = True

    def set_quickack(self, now: float, flag: bool) -> None:
        """Linux TCP_QUICKACK (``__tcp_sock_set_quickack``): False turns the connection
        interactive (pingpong mode: ACKs of received data wait for a reply, up to ATO); True
        leaves that mode and, in ESTABLISHED or CLOSE-WAIT, sends a pending ACK now when the
        receive queue is empty (tcp_cleanup_rbuf). Not permanent, as in Linux: the next
        request/response exchange enters pingpong mode again (tcp/delack.py)."""
        self._now = now
        d = self._dack
        if not flag:
            d.enter_pingpong()
            return
        d.pingpong = 0
        if self.state in (State.ESTABLISHED, State.CLOSE_WAIT) and d.scheduled:
            d.pushed = True
            if d.ack_on_read(1, not self._rcvq and not self._reasm, self._rcv_unacked,
                             self._rcv_mss):
                self._ack_now = True

    @property
    def quickack(self) -> bool:
        """Linux getsockopt TCP_QUICKACK: 1 unless in pingpong (interactive) mode."""
        return not self._dack.in_pingpong

    def set_cork(self, flag: bool) -> None:
        """TCP_CORK (Linux tcp(7)): while corked, a partial (less than one MSS) last segment
        is not sent, so several writes leave as full segments; it goes out when uncorked,
        when more data fills it, at shutdown (FIN), or CORK_CEILING (200 ms) after it was
        first held. Uncorking applies the usual rules (Nagle unless ``nodelay``)."""
        self.cork = bool(flag)
        if not flag and self.nodelay:
            self._nagle_push = True  # Linux __tcp_sock_set_cork: uncorked with NODELAY: push
        if not flag and not self._more:
            self._cork_at = None
            self._cork_expired = False

    def set_user_timeout(self, seconds: float) -> None:
        """RFC 9293 3.8.3 USER TIMEOUT (RFC 5482; Linux TCP_USER_TIMEOUT): abort with
        ``ConnectionTimedOut`` once data has stayed unacknowledged, or zero-window probes
        unanswered, for ``seconds`` (0 turns it off and R2 alone applies)."""
        if seconds < 0:
            raise TcpUsageError("user timeout must be >= 0")
        self.user_timeout = float(seconds)

    def set_retries(self, retries2: int | None = None, syn_retries: int | None = None) -> None:
        """The application sets R2 for this connection (RFC 9293 3.8.3, MUST-21): how many
        retransmissions of data/FIN (``retries2``) or of the SYN (``syn_retries``) before the
        connection is aborted with ``ConnectionTimedOut``."""
        if retries2 is not None:
            if retries2 < 0:
                raise TcpUsageError("retries2 must be >= 0")
            self.retries2 = retries2
        if syn_retries is not None:
            if syn_retries < 0:
                raise TcpUsageError("syn_retries must be >= 0")
            self.syn_retries = syn_retries

    def set_orphan(self) -> None:
        """The application will not wait for this connection any more, though data may still
        be queued for it (above the engine too: an api layer whose stream was closed with a
        backlog). From now on the orphan limits apply (``config.orphan_retries``), as for a
        connection after ``close()`` (Linux: the socket is closed, SOCK_DEAD)."""
        self._orphan = True

    @property
    def orphaned(self) -> bool:
        """``close()`` or ``set_orphan()`` was called."""
        return self._orphan or self._app_closed

    def _retry_limit(self) -> int:
        """R2 for data, FIN and zero-window probes: ``retries2``, or for an orphan at most
        ``config.orphan_retries`` (Linux tcp_orphan_retries)."""
        if self._orphan or self._app_closed:
            return min(self.retries2, self.config.orphan_retries)
        return self.retries2

    def set_keepalive(self, flag: bool, idle: float | None = None,
                      interval: float | None = None, count: int | None = None) -> None:
        """Keep-alive per connection (RFC 9293 3.8.4, MUST-24/27)."""
        self.keepalive = bool(flag)
        if idle is not None:
            self.keepalive_idle = idle
        if interval is not None:
            self.keepalive_interval = interval
        if count is not None:
            self.keepalive_count = count
        self._ka_probes = 0

    # ------------------------------------------------------------------ draining
    def pending_output(self, now: float | None = None) -> list[Segment]:
        """Segments to send, in order (building whatever ACK/data is due first). ``now``: the
        time they are built, when later than the last call (a batch of input took a while to
        process): their timestamps and the probe/retransmission timers they arm start when
        they really leave, not when the batch began (else a loaded host's tail loss probe
        fires as the segment goes out; RFC 8985 7.2 arms PTO at transmission)."""
        if now is not None and now > self._now:
            self._now = now
        self._flush(self._now)
        out = self._out
        if out:
            self._out = []
        return out

    def pending_events(self) -> list[Event]:
        if self._tx_track is not None:
            prog = self.tx_progress()
            if prog != self._tx_track:
                self._tx_track = prog
                self._events.insert(0, TxProgress(*prog))  # (before a Closed it led to)
        ev = self._events
        if ev:
            self._events = []
            self._data_event = False
        return ev

    def track_tx(self, flag: bool = True) -> None:
        """Report ``TxProgress`` events (with the other events) whenever the send side moved:
        the owner's socket error queue (MSG_ZEROCOPY, SO_TIMESTAMPING) needs them. Off by
        default: nothing is computed for connections that do not ask."""
        self._tx_track = (-1, -1) if flag else None

    def tx_progress(self) -> tuple[int, int]:
        """(sent, acked): stream offsets (data octets from the first, no wrap) of the first
        octet never sent yet and of the first not acknowledged yet (SND.MAX and SND.UNA as
        offsets; the SYN and FIN are not data)."""
        acked = self.bytes_out
        in_buf = seq_sub(self.snd_max, self._buf_seq)
        return acked + min(max(in_buf, 0), len(self._sendbuf)), acked

    def info(self) -> ConnInfo:
        return ConnInfo(
            state=self.state, bytes_in=self.bytes_in, bytes_out=self.bytes_out,
            retransmits=self.retransmits, srtt=self._rtt.srtt, rto=self._rtt.rto,
            cwnd=self._cc.cwnd, ssthresh=self._cc.ssthresh, snd_wnd=self.snd_wnd,
            rcv_wnd=max(0, seq_sub(self.rcv_adv, self.rcv_nxt)),
            rcvbuf=self._rw.rcvbuf, rcv_ssthresh=min(self._rw.rcv_ssthresh, 0xFFFFFFFF),
            rcv_space=self._rw.space,
        )

    # ------------------------------------------------------------------ timers
    def next_deadline(self, flush: bool = True) -> float | None:
        """The earliest time ``handle_timers`` has work, or None. ``flush=False``: the caller
        has just drained ``pending_output()`` and changed nothing since (the stack's service
        path), so what is due is already built."""
        if flush:
            self._flush(self._now)
        best: float | None = None
        for t in (self._rto_at, self._delack_at, self._persist_at, self._tw_at,
                  self._keepalive_at(), self._cork_at, self._tlp_at, self._reo_at):
            if t is not None and (best is None or t < best):
                best = t
        return best

    def _keepalive_at(self) -> float | None:
        if not self.keepalive or self.state not in (State.ESTABLISHED, State.CLOSE_WAIT):
            return None
        if self._ka_probes == 0:
            return self._last_rx + self.keepalive_idle
        return self._ka_last + self.keepalive_interval

    def handle_timers(self, now: float) -> None:
        """Run every timer whose deadline passed."""
        self._now = now
        if self._tw_at is not None and now >= self._tw_at:
            self._tw_at = None
            if self.state is State.TIME_WAIT:
                self._set_state(now, State.CLOSED, "2MSL timeout")
            elif self.state is State.FIN_WAIT_2:
                self._set_state(now, State.CLOSED, "FIN-WAIT-2 timeout")
        if self._reo_at is not None and now >= self._reo_at:
            self._reo_at = None
            self._on_reo_timeout(now)
        if self._tlp_at is not None and now >= self._tlp_at:
            self._tlp_at = None
            self._on_tlp(now)
        if self._rto_at is not None and now >= self._rto_at:
            self._rto_at = None
            self._on_rto(now)
        if self._persist_at is not None and now >= self._persist_at:
            self._persist_at = None
            self._on_persist(now)
        if self._delack_at is not None and now >= self._delack_at:
            self._delack_at = None
            if self._dack.on_timer(self._rtt.rto):  # (Linux tcp_delack_timer_handler)
                self._ack_now = True
        if self._cork_at is not None and now >= self._cork_at:
            self._cork_at = None
            self._cork_expired = True  # the held partial segment goes out below,
            self._tail_unpushed = False  # with PSH (Linux: the probe timer's tcp_write_wakeup)
        ka = self._keepalive_at()
        if ka is not None and now >= ka:
            self._on_keepalive(now)
        self._flush(now)

    def _on_rto(self, now: float) -> None:
        """RFC 6298 5.4-5.7 and RFC 9293 3.8.3: retransmit the earliest unacked segment."""
        st = self.state
        if self.snd_una == self.snd_max and st not in (State.SYN_SENT, State.SYN_RECEIVED):
            return
        if st is State.SYN_SENT:
            limit = self.syn_retries
        elif st is State.SYN_RECEIVED:
            limit = self.config.synack_retries
        else:
            limit = self._retry_limit()
        if self._retries >= limit:
            # RFC 9293 3.8.3 R2 / MUST-20: give up.
            self._reset_close(now, "retransmission timeout", ConnectionTimedOut())
            return
        if (self.user_timeout and self._ut_start is not None
                and st not in (State.SYN_SENT, State.SYN_RECEIVED)
                and now - self._ut_start >= self.user_timeout - 1e-9):
            # RFC 9293 3.8.3 / RFC 5482: the user timeout passed without progress.
            self._reset_close(now, "user timeout", ConnectionTimedOut())
            return
        self._retries += 1
        self._rtt.backoff()
        self._rtt_seq = None  # Karn
        if st is State.SYN_SENT:
            self._syn_lost = True
            self._send_syn(now, TxReason.SYN_RETRANSMIT)
            return
        if st is State.SYN_RECEIVED or (self.snd_una == self.iss and self._passive):
            # (also a passive open closed before the handshake ended: FIN-WAIT-1 with the
            # SYN-ACK unacknowledged)
            self._syn_lost = True
            self._send_synack(now, TxReason.SYNACK_RETRANSMIT)
            return
        flight = seq_sub(self.snd_max, self.snd_una)
        if self.ts_ok and not self._rto_repeated and self._undo is None:
            self._undo = (self._cc.cwnd, self._cc.ssthresh, self._ts_val(now),
                          self.retransmits, True)
        self._cc.on_rto(now, flight, repeated=self._rto_repeated)
        self._rto_repeated = True
        self._in_recovery = False
        self._prr.stop()
        self._dupacks = 0
        # RFC 8985 6.3 / 7: the timeout ends any probe or reordering wait; everything not
        # SACKed is lost.
        self._tlp_at = self._reo_at = None
        self._tlp_high = None
        if self._rack_on:
            self._rack.mark_all_lost()
        # The scoreboard is kept: the go-back skips SACKed data (RFC 6675 5.1). A second
        # timeout in a row may mean the receiver reneged (RFC 2018 8): then forget it.
        if self._retries > 1:
            self._sb.clear()
        self._recover = self.snd_max  # RFC 6582 4: no fast retransmit for this window
        self._in_loss = True
        self._cwr_state = False
        self.snd_nxt = self.snd_una   # go back: resend from the first unacked octet
        self._goback_reason = TxReason.RTO
        self._retransmit_at(now, self.snd_una, reason=TxReason.RTO)
        self._arm_rto(now)

    def _on_persist(self, now: float) -> None:
        """RFC 9293 3.8.6.1: probe a zero (or too small) window, with exponential backoff.
        The window may stay zero indefinitely while the peer answers (MUST-37); unanswered
        probes count toward R2 as in Linux's tcp_probe_timer (see the module docstring)."""
        if self.state not in _OUTPUT_STATES or not self._has_unsent():
            self._persist_backoff = 0
            self._probes_out = 0
            return
        if self.snd_una != self.snd_nxt:
            self._probes_out = 0
            self._probe_start = None
            return  # data in flight: the RTO covers it
        room = seq_sub(seq_add(self.snd_una, self.snd_wnd), self.snd_nxt)
        orphan = self._orphan or self._app_closed
        limit = self._retry_limit()
        why: str | None = None
        if self._probes_out == 0:
            self._probe_start = now
        if (self.user_timeout and self._probe_start is not None and self._probes_out
                and now - self._probe_start >= self.user_timeout - 1e-9):
            # Linux tcp_probe_timer: with TCP_USER_TIMEOUT, unanswered probes end the
            # connection once the user timeout passed since the first one.
            why = "zero-window probes: user timeout"
        elif self._probes_out >= limit:
            # RFC 9293 3.8.3 R2 / MUST-20 applied to probes nobody answers (Linux: probes_out
            # >= tcp_retries2, or tcp_orphan_retries for an orphan).
            why = "orphan zero-window timeout" if orphan else "zero-window probe timeout"
        elif orphan and room <= 0 and self._persist_backoff >= limit and not self._alive():
            # An orphan whose peer answers but never opens its window: nobody waits for the
            # data, so it may not hold the connection forever (Linux tcp_probe_timer: orphan,
            # backoff at its cap and icsk_backoff >= tcp_orphan_retries).
            why = "orphan zero-window timeout"
        if why is not None:
            self._emit(Segment(self.snd_max, self.rcv_nxt, RST | ACK, self._wnd_field(),
                               options=self._options(now, 0),
                               reason=TxReason.RST_ORPHAN_TIMEOUT if orphan
                               else TxReason.RST_PROBE_TIMEOUT))
            self._reset_close(now, why, None if orphan else ConnectionTimedOut())
            return
        if room > 0:
            self._send_data(now, force=True, reason=TxReason.WINDOW_PROBE)
        else:
            # Linux-style probe: an old sequence number draws an ACK with the window.
            self._emit(Segment(seq_sub(self.snd_una, 1) & MASK, self.rcv_nxt, ACK,
                               self._wnd_field(), options=self._options(now, 0),
                               reason=TxReason.ZERO_WINDOW_PROBE))
        self._probes_out += 1
        self._persist_backoff += 1
        self._arm_persist(now)

    def _alive(self) -> bool:
        """Linux's "alive" test for orphans: the probe interval has not reached its cap."""
        base = max(self._rtt.rto, self.config.persist_min)
        return base * (1 << min(self._persist_backoff, 30)) < self.config.persist_max

    def _on_keepalive(self, now: float) -> None:
        """RFC 9293 3.8.4: probe an idle connection; MUST-29: several lost probes tolerated."""
        if self.snd_una != self.snd_max or self._has_unsent():
            self._last_rx = now  # not idle: data is outstanding (Linux does the same)
            self._ka_probes = 0
            return
        if self._ka_probes >= self.keepalive_count:
            self._emit(Segment(self.snd_max, self.rcv_nxt, RST | ACK, self._wnd_field(),
                               options=self._options(now, 0),
                               reason=TxReason.RST_KEEPALIVE_TIMEOUT))
            self._reset_close(now, "keep-alive timeout", ConnectionTimedOut())
            return
        self._ka_probes += 1
        self._ka_last = now
        self._emit(Segment(seq_sub(self.snd_una, 1) & MASK, self.rcv_nxt, ACK,
                           self._wnd_field(), options=self._options(now, 0),
                           reason=TxReason.KEEPALIVE))

    # ------------------------------------------------------------------ ICMP
    def handle_icmp_error(self, now: float, type: int, code: int,
                          mtu: int | None = None) -> None:
        """RFC 9293 3.9.2.2 / RFC 1122 4.2.3.9: soft errors never abort (MUST-56); source
        quench is ignored (MUST-55); in SYN-SENT a port/protocol unreachable (or an
        administratively prohibited) refuses the connection, as Linux does. "Fragmentation
        needed" (3/4) with the next-hop ``mtu`` lowers the send MSS and resends what is in
        flight at once (RFC 1191 path MTU discovery; MTUs below 552 are raised to it, as
        Linux's min_pmtu)."""
        self._now = now
        if type == 4:
            return  # source quench (MUST-55)
        if type == 3 and code == 4 and mtu:
            self._path_mtu(now, max(mtu, 552))
        if type == 3 and code in (2, 3, 9, 10, 13) and self.state is State.SYN_SENT:
            self._reset_close(now, f"ICMP unreachable {code}", ConnectionRefused())
            return
        self.soft_error = (type, code)

    def _path_mtu(self, now: float, mtu: int) -> None:
        if self.state is State.SYN_SENT:
            self._path_mtu_syn_sent(now, mtu)
            return
        mss = mtu - 40 - self._option_space()
        if mss >= self.snd_mss:
            return
        self.snd_mss = mss
        self._cc.set_mss(mss)
        if self.state in _OUTPUT_STATES and self.snd_una != self.snd_max:
            # RFC 1191 6.5: the too-big segment was dropped: send again, in smaller pieces
            # (no congestion response: this was not congestion).
            self.snd_nxt = self.snd_una
            self._goback_reason = TxReason.PMTU_RETRANSMIT
            self._rtt_seq = None

    def _path_mtu_syn_sent(self, now: float, mtu: int) -> None:
        """RFC 1191 in SYN-SENT, as Linux (tcp_v4_mtu_reduced, tcp_simple_retransmit): the
        MSS we announce follows the path (tcp_advertise_mss), which also bounds the send MSS
        once the SYN-ACK comes; a SYN that carried data (RFC 7413) was too big and is sent
        again at once, plain (no data, no Fast Open option: the data goes once the SYN-ACK
        came), as a retransmission (no RTT sample, Karn); a plain SYN fitted: nothing to
        resend."""
        mss = mtu - 40
        if mss >= self.our_mss:
            return
        self.our_mss = max(mss, 64)
        if self._syn_data:
            self._syn_lost = True  # (Linux: total_retrans; the SYN timer restarts)
            self._rtt_seq = None
            self._send_syn(now, TxReason.PMTU_RETRANSMIT)

    # ------------------------------------------------------------------ segment arrival
    def accepts_new_syn(self, seg: Segment) -> bool:
        """For the stack: may this SYN, arriving for a connection in TIME-WAIT, start a new
        incarnation of the 4-tuple (RFC 6191: timestamps newer, or without timestamps a
        sequence number above RCV.NXT, as Linux does)? If so the stack should forget this
        connection and treat the SYN as if for a listener."""
        if self.state is not State.TIME_WAIT or not seg.flags & SYN or seg.flags & (ACK | RST):
            return False
        ts = seg.options.timestamp
        if self.ts_ok and ts is not None:
            return seq_gt(ts[0], self.ts_recent)
        return seq_gt(seg.seq, self.rcv_nxt)

    def to_time_wait(self, now: float) -> TimeWait:
        """For the owner, in TIME-WAIT: a compact record that answers the peer for the rest of
        2*MSL as this connection would (``pytcp.tcp.timewait``); the owner may then forget
        this connection (Linux's timewait sockets)."""
        if self.state is not State.TIME_WAIT:
            raise TcpUsageError(f"to_time_wait in {self.state}")
        self._flush(now)  # (an ACK still due goes out first, through pending_output)
        wnd = self._wnd_field()
        return TimeWait(
            self.config, snd_nxt=self.snd_max, rcv_nxt=self.rcv_nxt,
            rcv_wnd=max(0, seq_sub(self.rcv_adv, self.rcv_nxt)), wnd=wnd,
            max_snd_wnd=self.max_snd_wnd,
            deadline=self._tw_at if self._tw_at is not None else now + self.config.time_wait,
            ts_ok=self.ts_ok, ts_recent=self.ts_recent, ts_recent_age=self._ts_recent_age,
            ts_offset=self.ts_offset, sack_ok=self.sack_ok, oow_ack_at=self._oow_ack_at)

    def handle_segment(self, now: float, seg: Segment) -> None:
        """SEGMENT ARRIVES (RFC 9293 3.10.7)."""
        self._now = now
        ts = seg.options.timestamp
        self._rx_tsecr = ts[1] if ts is not None else 0
        if self._nospace:
            self._space_check = True  # (Linux tcp_data_snd_check after the segment)
        st = self.state
        if self._more and st.synchronized:
            # MSG_MORE holds the tail only for the send that said it (Linux tcp_push with
            # TCP_NAGLE_CORK); the output after a segment arrives (tcp_data_snd_check) follows
            # the socket's own Nagle/cork setting.
            self._more = False
            if not self.cork:
                self._cork_at = None
                self._cork_expired = False
        if st is State.CLOSED:
            self.drops[DropReason.UNEXPECTED_SEGMENT] += 1  # 3.10.7.1 is the stack's
        elif st is State.LISTEN:
            self._on_listen(now, seg)
        elif st is State.SYN_SENT:
            self._on_syn_sent(now, seg)
        elif st is not State.ESTABLISHED or not self._fast_path(now, seg):
            self._on_other(now, seg)

    def _fast_path(self, now: float, seg: Segment) -> bool:
        """Header prediction (Van Jacobson's, as in BSD and Linux's tcp_rcv_established): in
        ESTABLISHED, the next in-order data that acknowledges nothing new and leaves the window
        as it was, or a pure ACK of new data (with a non-zero window), with no SACK/recovery
        state and an acceptable timestamp, is processed here with the same results as the full
        RFC 9293 3.10.7.4 path. False: take the full path."""
        if seg.flags & (SYN | FIN | RST | URG | ACK) != ACK or seg.seq != self.rcv_nxt:
            return False
        if self._ecn.ok and (seg.ecn or seg.flags & (ECE | CWR)):
            return False  # RFC 3168 marks and flags: the full path
        ts = seg.options.timestamp
        if self.ts_ok and (ts is None or seq_lt(ts[0], self.ts_recent)):
            return False
        if (seg.options.sack_blocks or self._in_recovery or self._dupacks or self._sb
                or self._app_closed or self._tlp_high is not None or self._cwr_state):
            return False
        payload = seg.payload
        n = len(payload)
        new_wnd = seg.wnd << self.snd_wscale
        if new_wnd != self.snd_wnd and (n or new_wnd == 0 or self._persist_at is not None):
            return False
        ack = seg.ack
        acked = 0
        if n:
            if (ack != self.snd_una or self._reasm or self._ooo_fin is not None
                    or n > seq_sub(self.rcv_adv, self.rcv_nxt)):
                return False
        else:
            acked = seq_sub(ack, self.snd_una)
            if acked <= 0 or seq_gt(ack, self.snd_max) or self._fin_seq is not None:
                return False
        self._last_rx = now
        self._ka_probes = 0
        self._probes_out = 0
        if ts is not None and self.ts_ok and self.last_ack_sent == seg.seq:
            self.ts_recent = ts[0]  # RFC 7323 4.3
            self._ts_recent_age = now
        if seq_lt(self.snd_wl1, seg.seq) or (self.snd_wl1 == seg.seq
                                              and seq_le(self.snd_wl2, ack)):
            self.snd_wl1 = seg.seq
            self.snd_wl2 = ack
            if new_wnd != self.snd_wnd:  # (pure ACK: a window update, 3.10.7.4 fifth)
                if self._has_unsent():
                    self._idle_restart_check(now)  # (Linux tcp_ack_update_window)
                self.snd_wnd = new_wnd
                self.max_snd_wnd = max(self.max_snd_wnd, new_wnd)
        if n:
            self._receive_text(now, seg.seq, payload, seg.gso_size, bool(seg.flags & PSH))
            self._ack_snd_check(now)
        else:
            self._ack_advance(now, seg, ack, acked)
        return True

    def gro_limit(self, seq: int) -> int | None:
        """For the stack's receive coalescing (GRO): in-order data starting at ``seq`` from
        consecutive segments with identical headers (ACK, window, options) may be handed over
        as one segment ending at or before the returned sequence number (the right edge of
        the window we advertised), because the header-prediction path would process them
        one by one with the same result. ``None``: not now (not ESTABLISHED, ``seq`` is not
        RCV.NXT, out-of-order data is queued, or data would draw a RST after ``close()``)."""
        if (self.state is not State.ESTABLISHED or seq != self.rcv_nxt or self._reasm
                or self._ooo_fin is not None or self._app_closed):
            return None
        return self.rcv_adv

    def _on_listen(self, now: float, seg: Segment) -> None:
        """RFC 9293 3.10.7.2."""
        flags = seg.flags
        if flags & RST:
            self.drops[DropReason.UNEXPECTED_SEGMENT] += 1
            return
        if flags & ACK:
            self._emit(Segment(seg.ack, 0, RST, 0, reason=TxReason.RST_BAD_ACK))
            self.drops[DropReason.BAD_ACK] += 1
            return
        if not flags & SYN:
            self.drops[DropReason.UNEXPECTED_SEGMENT] += 1
            return
        self.irs = seg.seq
        self.rcv_nxt = seq_add(seg.seq, 1)
        self._negotiate(now, seg)
        self.snd_wnd = seg.wnd  # RFC 7323 2.2: the window in a SYN is never scaled
        self.max_snd_wnd = self.snd_wnd
        self.snd_wl1 = seg.seq
        self._synack_flags = self._ecn.on_syn(flags)  # RFC 3168 6.1.1
        srv = self._fo_server
        if srv is not None and srv.accept_data:
            # RFC 7413 4.2.2: a valid cookie: the SYN's data is accepted at once and the
            # connection may be used (read, written) before the handshake completes.
            self.fo_child = True
            if seg.payload:
                room = min(len(seg.payload), self._rw.rcvbuf)
                self._rcvq += seg.payload[:room]
                self.rcv_nxt = seq_add(self.rcv_nxt, room)
                self.bytes_in += room
                self.syn_data_acked = True
                self._data_event = True
                self._events.append(DataAvailable())
        self._set_state(now, State.SYN_RECEIVED, "SYN")
        self._send_synack(now)

    def _on_syn_sent(self, now: float, seg: Segment) -> None:
        """RFC 9293 3.10.7.3."""
        flags = seg.flags
        ack_ok = False
        if flags & ACK:
            # first: SEG.ACK =< ISS or SEG.ACK > SND.NXT is unacceptable
            if seq_le(seg.ack, self.iss) or seq_gt(seg.ack, self.snd_max):
                if not flags & RST:
                    self._emit(Segment(seg.ack, 0, RST, 0, reason=TxReason.RST_BAD_ACK))
                self.drops[DropReason.BAD_ACK] += 1
                return
            ack_ok = True
            tsecr = seg.options.timestamp[1] if seg.options.timestamp is not None else 0
            if (tsecr and self._syn_tsval is not None and self.config.timestamps
                    and not flags & RST
                    and seq_sub(tsecr, self._syn_tsval) & MASK
                    > seq_sub(self._ts_val(now), self._syn_tsval) & MASK):
                # RFC 7323 PAWS in SYN-SENT, as Linux (tcp_rcv_synsent_state_process,
                # PAWSActiveRejected): a SYN-ACK must echo a TSval we sent since our first SYN;
                # another is from an old incarnation or forged: answer with a reset (its
                # SEG.ACK as SEQ, as for a bad ACK), stay in SYN-SENT for the right one.
                self._emit(Segment(seg.ack, 0, RST, 0, reason=TxReason.RST_BAD_ACK))
                self.drops[DropReason.PAWS] += 1
                return
        if flags & RST:
            # second: RFC 5961 3.2: only an RST that acknowledges our SYN counts.
            if ack_ok:
                self._reset_close(now, "RST", ConnectionRefused())
            else:
                self.drops[DropReason.RST_INVALID] += 1
            return
        if not flags & SYN:
            self.drops[DropReason.UNEXPECTED_SEGMENT] += 1
            return
        # fourth: SYN
        self.irs = seg.seq
        self.rcv_nxt = seq_add(seg.seq, 1)
        self._last_rx = now
        self._negotiate(now, seg)
        if ack_ok:
            self.snd_una = seg.ack
            if seq_lt(self.snd_nxt, self.snd_una):
                self.snd_nxt = self.snd_una
            self._ecn.on_synack(flags)  # RFC 3168 6.1.1
            if self._fo_client is not None:
                self._fastopen_synack(now, seg)
            self._on_syn_acked(now, seg)
            self.snd_wnd = seg.wnd  # unscaled in a SYN (RFC 7323 2.2)
            self.max_snd_wnd = self.snd_wnd
            self.snd_wl1 = seg.seq
            self.snd_wl2 = seg.ack
            self.rcv_adv = seq_add(self.rcv_nxt, self._syn_wnd)  # what our SYN offered
            self._set_state(now, State.ESTABLISHED, "SYN-ACK")
            self._dack.on_connected(now)
            syn_end = seq_add(self.iss, 1 + self._syn_data)
            if (self.config.adaptive_delack and not self._fo_resend
                    and seq_gt(seq_add(self._buf_seq, len(self._sendbuf)), syn_end)
                    and not seg.payload and not flags & (FIN | URG)):
                # Linux tcp_rcv_synsent_state_process with sk_write_pending: a writer waits
                # with data beyond the SYN's, so "save one ACK": it rides on that data (or
                # goes after TCP_DELACK_MAX); the reply to the SYN-ACK starts a pingpong
                # exchange (tcp_enter_quickack_mode sets ATO).
                self._dack.delay_synack_ack(now, self._rcv_wnd(), self._rcv_mss)
                self._delack_at = self._dack.timer_at
            else:
                self._ack_now = True
            if self._fo_resend:
                # RFC 7413 4.2.1: the server did not take the SYN's data (Linux
                # tcp_rcv_fastopen_synack marks it lost and retransmits it right away, as
                # one segment with PSH and the ACK of the SYN-ACK); new data follows it.
                n, self._fo_resend = self._fo_resend, 0
                self._retransmit_at(now, self.snd_una, n, TxReason.SYN_DATA_RETRANSMIT)
            if seg.payload or flags & (FIN | URG):
                # RFC 9293 3.10.7.3: continue at the sixth step with the rest (the text
                # trimmed to the window, and then any FIN beyond it dropped).
                payload = seg.payload
                room = seq_sub(self.rcv_adv, self.rcv_nxt)
                if len(payload) > room:
                    payload = payload[:room]
                    flags &= ~FIN
                self._after_ack(now, seq_add(seg.seq, 1), flags, payload,
                                seq_add(seg.seq, seg.urg))
        else:
            # Simultaneous open (MUST-10): SYN-RECEIVED, resend our SYN with an ACK.
            self.snd_wnd = seg.wnd
            self.max_snd_wnd = self.snd_wnd
            self.snd_wl1 = seg.seq
            self._set_state(now, State.SYN_RECEIVED, "SYN (simultaneous open)")
            self._send_synack(now)

    def _fastopen_synack(self, now: float, seg: Segment) -> None:
        """RFC 7413 4.2.1 (Linux tcp_rcv_fastopen_synack): release the SYN data the SYN-ACK
        acknowledges; what it does not is sent again right away (the server fell back to a
        normal handshake); note the cookie and the server's MSS for the cache."""
        fo = self._fo_client
        assert fo is not None
        acked = seq_sub(seg.ack, self._buf_seq)
        if acked > 0:
            self._sendbuf.consume(acked)
            self._buf_seq = seg.ack
            self.bytes_out += acked
        self.syn_data_acked = self._syn_data > 0 and acked >= self._syn_data
        lost = self._syn_data > 0 and acked < self._syn_data
        if lost:
            # Resent at once, on its own (_on_syn_sent, once established).
            self._fo_resend = seq_sub(seq_add(self.iss, 1 + self._syn_data), seg.ack)
        cookie = seg.options.fastopen
        if cookie and (len(cookie) % 2 or not COOKIE_MIN <= len(cookie) <= COOKIE_MAX):
            # RFC 7413 4.1.1: a cookie is 4 to 16 bytes; Linux (tcp_parse_fastopen_option)
            # also wants an even length. Any other one is no cookie: not cached.
            cookie = None
        try_exp = 0
        syn_drop = False
        if fo.cookie is None:
            # Our SYN had no Fast Open option (data without a cookie, TFO_CLIENT_NO_COOKIE):
            # a cookie in the SYN-ACK was not asked for and is ignored, not cached (Linux
            # tcp_rcv_fastopen_synack without syn_fastopen); the MSS still is.
            cookie = None
        elif self._syn_lost:
            # The SYN timed out and the SYN-ACK has no cookie nor acknowledges the data: the
            # SYN-data (or its SYN-ACK) was probably dropped (RFC 7413 4.1.3 and 6).
            syn_drop = cookie is None and lost
        elif cookie is None and not self._syn_data:
            try_exp = 2 if fo.exp else 1  # no answer to the request: try the other format
        self.fo_result = (seg.options.mss or 0, cookie if cookie else None,
                          seg.options.fastopen_exp, syn_drop, try_exp)

    def _option_space(self) -> int:
        """Option bytes every non-SYN segment carries (RFC 9293 MUST-16, RFC 6691): the
        timestamps (12) and an MD5 signature (20, Linux TCPOLEN_MD5SIG_ALIGNED)."""
        return (TS_OPTION_LEN if self.ts_ok else 0) + (MD5SIG_SPACE if self.md5 else 0)

    def _negotiate(self, now: float, seg: Segment) -> None:
        """Options of the peer's SYN (RFC 9293 3.7.1, RFC 7323, RFC 2018)."""
        cfg = self.config
        opts = seg.options
        self.peer_mss = opts.mss if opts.mss else self.default_mss  # MUST-15
        if self.state is State.SYN_SENT:
            # We offered what the config allows; each is on only if the peer answered it.
            self.ws_ok = cfg.window_scaling and opts.wscale is not None
            # (An MD5 SYN offers no timestamps: RFC 7323 3.2, none in the SYN-ACK then.)
            self.ts_ok = cfg.timestamps and opts.timestamp is not None and not self.md5
            self.sack_ok = cfg.sack and opts.sack_permitted
        else:
            self.ws_ok = cfg.window_scaling and opts.wscale is not None
            self.ts_ok = cfg.timestamps and opts.timestamp is not None
            self.sack_ok = cfg.sack and opts.sack_permitted
            if self.md5 and self.sack_ok:
                # Linux tcp_synack_options: MD5 + TS leave no room for SACK blocks, so an
                # MD5 connection that has SACK goes without timestamps.
                self.ts_ok = False
        if self.ws_ok:
            self.snd_wscale = min(opts.wscale or 0, 14)  # RFC 7323 2.3: at most 14
        else:
            self.snd_wscale = 0
            self.rcv_wscale = 0
        if self.ts_ok and opts.timestamp is not None:
            self.ts_recent = opts.timestamp[0]
            self._ts_recent_age = now
        # MUST-16: Eff.snd.MSS = min(SendMSS, our MMS) - option bytes.
        mss = min(self.peer_mss, self.our_mss) - self._option_space()
        self.snd_mss = max(mss, 64)
        self._rcv_mss = min(self.our_mss - self._option_space(), DEFAULT_SEND_MSS)
        self._cc.set_mss(self.snd_mss)
        # RFC 8985 2: RACK needs SACK.
        self._rack_on = cfg.rack and self.sack_ok

    def _on_syn_acked(self, now: float, seg: Segment, sample_rtt: bool = True) -> None:
        """Our SYN was acknowledged: RTT sample (unless ``sample_rtt`` is False: the data
        the same ACK acknowledges gives it), timer off (RFC 6298)."""
        self.delivered += 1  # (Linux tcpi_delivered: SYN-data counts once with its SYN)
        self._ut_start = None  # (the user timeout counts data, from its first send)
        if self._syn_lost:
            # RFC 6298 5.7 and Karn: no sample after a retransmitted SYN (even with
            # timestamps: the peer may echo the first SYN's TSval and inflate the RTT).
            self._rtt_seq = None
            self._rtt.reinit_after_syn_loss()
        elif sample_rtt:
            sample = self._rtt_sample(now, seg.options, seg.ack)
            if sample is not None:
                self._rtt.sample(sample)
        self._rtt.reset_backoff()
        self._retries = 0
        self._rto_at = None

    def _on_other(self, now: float, seg: Segment) -> None:
        """RFC 9293 3.10.7.4: SYN-RECEIVED and the synchronized states, in the RFC's order."""
        flags = seg.flags
        seq = seg.seq
        payload = seg.payload
        opts = seg.options
        st = self.state
        if flags & SYN and st is State.SYN_RECEIVED and seq == self.irs:
            if not flags & ACK:
                if not flags & RST:
                    # the peer retransmitted its SYN
                    self._send_synack(now, TxReason.SYNACK_RETRANSMIT)
                return
            # Simultaneous open: the peer's SYN-ACK. Its SYN is old (SEG.SEQ < RCV.NXT, so
            # it draws an ACK); process its ACK field. The ACK reports the duplicate SYN with
            # a D-SACK block (RFC 2883; Linux tcp_data_queue: tcp_dsack_set over the
            # segment's sequence space, here the SYN's octet, and quick ACKs for a while).
            self._dsack = (seq, seq_add(seq, 1))
            self._dack.enter_quickack(self.config.quickack, self._rcv_wnd(), self._rcv_mss)
            seq = seq_add(seq, 1)
            flags &= ~SYN
            self._ack_now = True
        # RFC 7323 5.3 PAWS, before the sequence number check.
        ts = opts.timestamp if self.ts_ok else None
        if ts is not None and not flags & RST:
            if seq_lt(ts[0], self.ts_recent) and now - self._ts_recent_age <= PAWS_IDLE:
                self.drops[DropReason.PAWS] += 1
                self._want_ack(TxReason.PAWS_ACK)
                return
        # first: check the sequence number (3.10.7.4 table)
        seg_len = len(payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        rcv_wnd = max(0, seq_sub(self.rcv_adv, self.rcv_nxt))
        rcv_nxt = self.rcv_nxt
        if seg_len == 0:
            ok = (seq == rcv_nxt) if rcv_wnd == 0 else seq_between_wnd(seq, rcv_nxt, rcv_wnd)
        elif rcv_wnd == 0:
            ok = False
        else:
            last = seq_add(seq, seg_len - 1)
            ok = seq_between_wnd(seq, rcv_nxt, rcv_wnd) or seq_between_wnd(last, rcv_nxt, rcv_wnd)
        if not ok:
            if rcv_wnd == 0 and seq == rcv_nxt:
                # MUST-66: at zero window still process ACK, URG and RST; drop the text.
                self.drops[DropReason.OUT_OF_WINDOW] += 1
                payload = b""
                flags &= ~FIN
                self._want_ack(TxReason.OUT_OF_WINDOW_ACK)
            else:
                if flags & RST:
                    self.drops[DropReason.RST_INVALID] += 1
                    return
                if seg_len and seq_lt(seq, rcv_nxt):
                    if payload:
                        # An old duplicate: report it with D-SACK (RFC 2883 4.1). Our ACK
                        # was probably lost: ACK at once again for a while (Linux
                        # tcp_send_dupack: tcp_enter_quickack_mode).
                        end = seq_add(seq, len(payload))
                        self._dsack = (seq, end if seq_le(end, rcv_nxt) else rcv_nxt)
                        self._dack.enter_quickack(self.config.quickack, self._rcv_wnd(),
                                                  self._rcv_mss)
                    if st is State.TIME_WAIT and flags & FIN:
                        # The peer's FIN again: ACK it and restart 2MSL (3.10.7.4 eighth).
                        self._tw_at = now + self.config.time_wait
                self.drops[DropReason.OUT_OF_WINDOW] += 1
                if seg_len or now - self._oow_ack_at >= 0.5:
                    # A duplicate ACK; for bare ACKs at most one per 500 ms, which keeps two
                    # confused ends out of an ACK storm (Linux tcp_oow_rate_limited).
                    self._oow_ack_at = now
                    self._want_ack(TxReason.OUT_OF_WINDOW_ACK)
                return
        self._last_rx = now
        self._ka_probes = 0
        if self._ecn.ok:
            if self._ecn.on_segment(seg.ecn, flags, bool(payload)):
                self._ack_now = True  # RFC 3168 6.1.3: CE: echo it at once (Linux quick ACK)
                if payload:
                    # Linux __tcp_ecn_check_ce: tcp_enter_quickack_mode(sk, 2).
                    self._dack.enter_quickack(2, self._rcv_wnd(), self._rcv_mss)
            elif flags & CWR and payload and self.config.adaptive_delack:
                # Linux tcp_ecn_accept_cwr: the sender just cut its window (maybe to one
                # segment): ACK its data at once (ICSK_ACK_NOW).
                self._ack_now = True
        # RFC 7323 4.3: remember the peer's timestamp for echo, decided on arrival but done
        # only once the segment passed the ACK check below: a segment dropped for an
        # unacceptable ACK must not move TS.Recent (RFC 7323 5.3 R3 updates it only for
        # segments that are processed; RFC 5961 5.2 drops them), or the peer's next valid
        # segments would fail PAWS against a value it never meant (Linux: tcp_replace_ts_recent
        # after tcp_ack).
        ts_update = (ts[0] if ts is not None and seq_le(seq, self.last_ack_sent)
                     and seq_ge(ts[0], self.ts_recent) else None)
        # second: RST (RFC 5961 3.2: only an exact match resets)
        if flags & RST:
            if seq != rcv_nxt:
                self.drops[DropReason.RST_CHALLENGED] += 1
                self._challenge_ack(now)
                return
            if st is State.SYN_RECEIVED:
                if self._passive and self.fo_child:
                    # RFC 7413 4.2.2: a Fast Open connection was already handed to the
                    # application: it learns of the reset as an established one would.
                    self._reset_close(now, "RST (Fast Open SYN-RECEIVED)", ConnectionReset())
                elif self._passive:
                    # MUST-11: back to LISTEN; the stack's per-SYN connection just ends.
                    self._reset_close(now, "RST (passive SYN-RECEIVED)", None)
                else:
                    self._reset_close(now, "RST", ConnectionRefused())
            elif st is State.TIME_WAIT:
                self.drops[DropReason.RST_INVALID] += 1  # RFC 1337: ignore
            elif st in (State.CLOSING, State.LAST_ACK):
                self._reset_close(now, "RST", None)
            else:
                # "All segment queues should be flushed": the rfc profile drops the unread
                # bytes too; Linux (tcp_reset) keeps them, read() returns them before the error.
                if self.config.rst_flushes_unread:
                    self._rcvq.clear()
                self._reset_close(now, "RST", ConnectionReset())
            return
        # Trim the text to the window (3.10.7.4, "trimmed to the window").
        if seq_lt(seq, rcv_nxt) and payload:
            cut = seq_sub(rcv_nxt, seq)
            if cut >= len(payload):
                self._dsack = (seq, seq_add(seq, len(payload)))
                payload = b""
            else:
                self._dsack = (seq, rcv_nxt)
                payload = payload[cut:]
            seq = rcv_nxt
            self._ack_now = True
        if payload:
            room = seq_sub(seq_add(rcv_nxt, rcv_wnd), seq)
            if len(payload) > room:
                payload = payload[:max(0, room)]
                flags &= ~FIN  # the FIN lies beyond the window
        # fourth: SYN. SYN-RECEIVED from a passive OPEN: back to LISTEN (MUST-11), which for
        # the stack's per-SYN connection means it ends quietly. Otherwise (synchronized
        # states, or an active open) -> challenge ACK (RFC 5961 4.2).
        if flags & SYN and st is State.SYN_RECEIVED and self._passive:
            self._reset_close(now, "SYN (passive SYN-RECEIVED)", None)
            return
        if flags & SYN:
            self.drops[DropReason.SYN_CHALLENGED] += 1
            self._challenge_ack(now)
            return
        # fifth: ACK
        if not flags & ACK:
            self.drops[DropReason.NO_ACK_FLAG] += 1
            return
        if st is State.SYN_RECEIVED and self.fo_child:
            if seq_lt(self.snd_una, seg.ack) and seq_le(seg.ack, self.snd_max):
                # RFC 9293 3.10.7.4 (SYN-RECEIVED): enter ESTABLISHED "and continue
                # processing": a Fast Open server may have sent data already (RFC 7413
                # 4.2.2), so the rest of the ACK (data acknowledged, SACK blocks, loss
                # detection) is processed as in ESTABLISHED, as Linux's tcp_ack does for its
                # child whose SND.UNA starts past the SYN-ACK.
                syn_end = seq_add(self.iss, 1)
                self.snd_una = syn_end
                if seq_lt(self.snd_nxt, syn_end):
                    self.snd_nxt = syn_end
                # One RTT sample per ACK: when it acknowledges data too, that gives it (Linux
                # tcp_ack; tcp_synack_rtt_meas only when no sample exists yet).
                self._on_syn_acked(now, seg, sample_rtt=not seq_gt(seg.ack, syn_end))
                self.snd_wnd = seg.wnd << self.snd_wscale
                self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
                self.snd_wl1 = seq
                self.snd_wl2 = syn_end
                self._set_state(now, State.ESTABLISHED, "ACK")
                if self._fin_queued:
                    self._set_state(now, State.FIN_WAIT_1, "CLOSE")
                if not self._process_ack(now, seg, seq, len(payload), flags):
                    return
            else:
                self._emit(Segment(seg.ack, 0, RST, 0, reason=TxReason.RST_BAD_ACK))
                self.drops[DropReason.BAD_ACK] += 1
                return
        elif st is State.SYN_RECEIVED:
            if seq_lt(self.snd_una, seg.ack) and seq_le(seg.ack, self.snd_max):
                data_end = seq_add(self._buf_seq, len(self._sendbuf))
                upto = seg.ack if seq_le(seg.ack, data_end) else data_end
                n = seq_sub(upto, self._buf_seq)
                if n > 0:
                    self._sendbuf.consume(n)
                    self._buf_seq = upto
                    self.bytes_out += n
                self.snd_una = seg.ack
                if seq_lt(self.snd_nxt, self.snd_una):
                    self.snd_nxt = self.snd_una
                self._on_syn_acked(now, seg)
                self.snd_wnd = seg.wnd << self.snd_wscale
                self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
                self.snd_wl1 = seq
                self.snd_wl2 = seg.ack
                if self._fin_queued:
                    self._set_state(now, State.ESTABLISHED, "ACK")
                    self._set_state(now, State.FIN_WAIT_1, "CLOSE")
                else:
                    self._set_state(now, State.ESTABLISHED, "ACK")
            else:
                self._emit(Segment(seg.ack, 0, RST, 0, reason=TxReason.RST_BAD_ACK))
                self.drops[DropReason.BAD_ACK] += 1
                return
        elif not self._process_ack(now, seg, seq, len(payload), flags):
            return
        if ts_update is not None:
            self.ts_recent = ts_update  # RFC 7323 4.3 (see above)
            self._ts_recent_age = now
        if self.state is State.CLOSED:
            return
        self._after_ack(now, seq, flags, payload, seq_add(seg.seq, seg.urg), seg.gso_size,
                        seg.ack)

    def _after_ack(self, now: float, seq: int, flags: int, payload: Buffer, up: int,
                   seg_size: int = 0, seg_ack: int | None = None) -> None:
        """Steps six to eight of RFC 9293 3.10.7.4: URG, segment text, FIN. ``seg_ack``:
        the segment's SEG.ACK (None: SND.MAX)."""
        st = self.state
        # sixth: URG (RFC 9293 3.8.5, MUST-30..32)
        if flags & URG and st in RECEIVE_STATES:
            if not self._urg_valid or seq_gt(up, self.rcv_up):
                self.rcv_up = up
                self._urg_valid = True
                self._events.append(UrgentData(self.urgent_pending))
        # seventh: segment text
        if payload:
            if st not in RECEIVE_STATES:
                self.drops[DropReason.UNEXPECTED_SEGMENT] += 1  # after the peer's FIN
                payload = b""
            elif self._app_closed:
                # Nobody will read it: RST (RFC 1122 4.2.2.13, RFC 2525 2.17). As Linux
                # (tcp_rcv_state_process: tcp_reset, then tcp_v4_send_reset for the segment)
                # the connection is gone first and the RST answers as a closed port does,
                # RFC 9293 3.10.7.1: <SEQ=SEG.ACK><CTL=RST> (the segment has ACK: step five
                # passed). SEG.ACK is the peer's RCV.NXT, so an RFC 5961 peer accepts it where
                # SND.NXT (past our unacknowledged FIN) would only draw a challenge ACK.
                self._emit(Segment(self.snd_max if seg_ack is None else seg_ack, 0, RST, 0,
                                   reason=TxReason.RST_DATA_AFTER_CLOSE))
                self._reset_close(now, "data after close", None)
                return
            else:
                self._receive_text(now, seq, payload, seg_size,
                                   bool(flags & (PSH | FIN | URG)))
        # eighth: FIN
        if flags & FIN:
            fin_seq = seq_add(seq, len(payload))
            if fin_seq == self.rcv_nxt:
                self._on_fin(now)
            elif seq_gt(fin_seq, self.rcv_nxt) and st in RECEIVE_STATES:
                self._ooo_fin = fin_seq
                self._ack_now = True
        self._ack_snd_check(now)

    def _receive_text(self, now: float, seq: int, payload: Buffer, seg_size: int = 0,
                      psh_like: bool = True) -> None:
        """RFC 9293 3.10.7.4 seventh: in-order data to the receive queue, the rest to the
        reassembly queue; immediate ACKs for out-of-order data and filled holes (RFC 5681 4.2).
        ``seg_size``: the size of the segments a coalesced (GRO) segment was made of;
        ``psh_like``: the segment had PSH, FIN or URG (Linux TCP_REMNANT)."""
        n = len(payload)
        m = seg_size or n
        if m > self._rcv_mss:
            self._rcv_mss = min(m, self.our_mss)  # Linux tcp_measure_rcv_mss (GRO: gso_size)
        mem = self._mem
        if seq == self.rcv_nxt:
            if mem is not None and self._rcvq and not mem.make_room(n):
                # The stack-wide cap (tcp_mem), out-of-order data already pruned: drop it; the
                # peer retransmits. (With nothing unread it is always taken: progress.)
                self.drops[DropReason.RCV_MEMORY] += 1
                self._ack_now = True
                return
            self._rcvq += payload
            self.rcv_nxt = seq_add(self.rcv_nxt, n)
            self.bytes_in += n
            self._rcv_unacked += n
            # Linux tcp_event_data_recv: the receiver's RTT and the window's growth. (The
            # cheap tests are inline: this runs for every in-order segment.)
            rw = self._rw
            if rw.active:
                tsecr = self._rx_tsecr
                if tsecr and tsecr != rw.last_tsecr and self.ts_ok:
                    rw.measure_ts(tsecr, self._ts_val(now), self.config.ts_hz, m,
                                  self._rcv_mss)
                if rw.rtt_time is None or (self.rcv_nxt - rw.rtt_seq) & MASK < 0x80000000:
                    rw.measure(now, 0, self.rcv_nxt, self._rcv_wnd())  # (a window arrived)
                # tcp_grow_window per segment (of at least 128 bytes); a coalesced (GRO)
                # segment as the segments it was made of, one after the other.
                free_after = rw.rcvbuf - len(self._rcvq)
                if (rw.rcv_ssthresh < rw.window_clamp
                        and rw.rcv_ssthresh < free_after + n - (m if m < n else n)):
                    left = n
                    while left > 0:
                        piece = min(m, left)
                        left -= piece
                        if piece >= 128:
                            rw.grow(piece, free_after + left, self.our_mss)
            # Linux tcp_event_data_recv: ATO, quick ACKs, pushed segments (tcp/delack.py).
            # A coalesced (GRO) segment counts as the segments it was made of, arriving
            # together, so that the result is the same as without coalescing.
            self._rcv_mss = self._dack.on_data_run(now, m, n, psh_like, self._rcv_mss,
                                                   self._rcv_wnd(), self._rtt.rto)
            if self._reasm:
                more = self._reasm.pop(self.rcv_nxt)
                if more:
                    self._rcvq += more
                    self.rcv_nxt = seq_add(self.rcv_nxt, len(more))
                    self.bytes_in += len(more)
                self._ack_now = True  # a hole filled (RFC 5681 4.2)
            if mem is not None:
                self._mem_sync()
            if not self._data_event:  # one per drain of pending_events()
                self._data_event = True
                self._events.append(DataAvailable())
            if self._ooo_fin is not None and self._ooo_fin == self.rcv_nxt:
                self._ooo_fin = None
                self._on_fin(now)
                self._ack_now = True  # the hole before the FIN filled (RFC 5681 4.2)
            # (the ACK is decided once the whole segment is processed: _ack_snd_check)
        else:
            end = seq_add(seq, n)
            dup = self._reasm.duplicate_of(seq, end)
            if dup is not None:
                self._dsack = dup
            if mem is not None and not mem.make_room(n):
                self.drops[DropReason.RCV_MEMORY] += 1  # (after pruning out-of-order data)
            elif not self._reasm.insert(seq, payload):
                self.drops[DropReason.RECV_QUEUE_FULL] += 1
            else:
                if mem is not None:
                    self._mem_sync()
                if self.sack_ok and n >= 128:
                    # Linux tcp_data_queue_ofo: SACK flows grow the window for out-of-order
                    # data too (without SACK it stays, to force duplicate ACKs).
                    self._rw.grow(n, self._rw.rcvbuf - len(self._rcvq), self.our_mss)
            # Out of order: a duplicate ACK at once, one per segment, even inside a batch
            # (RFC 5681 4.2: the sender counts them for fast retransmit).
            self._send_ack(now, TxReason.DUP_ACK)

    def _on_fin(self, now: float) -> None:
        """RFC 9293 3.10.7.4 eighth: the peer's FIN, in order."""
        self.rcv_nxt = seq_add(self.rcv_nxt, 1)
        self._rcv_unacked += 1  # (the FIN counts as Linux's rcv_nxt - rcv_wup counts it)
        self._fin_received = True
        self._events.append(EndOfStream())
        st = self.state
        if st is State.ESTABLISHED:
            # Linux tcp_fin: the ACK is scheduled and the connection turns interactive
            # (pingpong), so it may ride on our reply or FIN; _ack_snd_check decides (with no
            # data received yet ATO is 0: at once).
            self._dack.scheduled = True
            self._dack.enter_pingpong()
            if not self.config.adaptive_delack:
                self._ack_now = True  # (fixed-timer model: the FIN is ACKed at once)
            self._set_state(now, State.CLOSE_WAIT, "FIN")
        elif st is State.FIN_WAIT_1:
            self._ack_now = True
            if self._fin_acked():
                self._set_state(now, State.TIME_WAIT, "FIN")
            else:
                self._set_state(now, State.CLOSING, "FIN")
        elif st is State.FIN_WAIT_2:
            self._ack_now = True
            self._set_state(now, State.TIME_WAIT, "FIN")
        else:
            self._ack_now = True

    def _rcv_wnd(self) -> int:
        """The receive window now offered (for Linux tcp_incr_quickack's quick-ACK count)."""
        return max(0, seq_sub(self.rcv_adv, self.rcv_nxt))

    def _ack_snd_check(self, now: float) -> None:
        """The one decision of when received data (or a FIN) is acknowledged, after a segment
        was processed (Linux tcp_ack_snd_check; the rules are in tcp/delack.py): now, or at
        the delayed-ACK deadline (MUST-40: < 0.5 s; RFC 5681 4.2: every second full-sized
        segment at once). An ACK already due (``_ack_now``) needs no decision."""
        if self._ack_now or not self._dack.scheduled:
            return
        if self._dack.ack_now(now, self._rcv_unacked, self._rcv_mss,
                              self.config.delayed_ack_segments, self._rtt.srtt or 0.0):
            self._ack_now = True
        else:
            self._delack_at = self._dack.timer_at

    def _fin_acked(self) -> bool:
        return self._fin_seq is not None and seq_gt(self.snd_una, self._fin_seq)

    def _process_ack(self, now: float, seg: Segment, seq: int, data_len: int,
                     flags: int) -> bool:
        """RFC 9293 3.10.7.4 fifth, ESTABLISHED and later. False: segment dropped."""
        ack = seg.ack
        if seq_gt(ack, self.snd_max):
            # Acknowledges something not yet sent: ACK and drop.
            self.drops[DropReason.BAD_ACK] += 1
            self._ack_now = True
            return False
        # RFC 5961 5.2: ACK older than SND.UNA - MAX.SND.WND is blind injection.
        if seq_lt(ack, seq_sub(self.snd_una, max(self.max_snd_wnd, 1)) & MASK):
            self.drops[DropReason.ACK_TOO_OLD] += 1
            self._challenge_ack(now)
            return False
        self._probes_out = 0  # the peer is alive (Linux tcp_ack: icsk_probes_out = 0)
        self._probe_start = None
        new_wnd = seg.wnd << self.snd_wscale
        acked = seq_sub(ack, self.snd_una)
        sacked_before = self._sb.sacked_bytes
        if acked > 0:
            self._ack_advance(now, seg, ack, acked)
        if self._cwr_state and not self._in_recovery:
            if seq_ge(ack, self._ecn.cwr_end or ack):
                # The window that saw the mark is acknowledged: the reduction is complete.
                self._cwr_state = False
                self._prr.stop()
                self._cc.on_recovery_exit(now)
            elif acked > 0 and self._prr.active:
                cwnd = self._prr.on_ack(acked, self._pipe(), False)
                if cwnd is not None:
                    self._cc.cwnd = cwnd
        if (flags & ECE and self._ecn.ok and not self._in_recovery and not self._cwr_state
                and self._ecn.on_ece(ack, self.snd_max)):
            # RFC 3168 6.1.2: congestion experienced: ssthresh as for a loss, at most once per
            # window of data; cwnd comes down to it with PRR over the next round trip (Linux's
            # CWR state, RFC 9937); CWR goes out on the next new data.
            prior = self._cc.cwnd
            flight = seq_sub(self.snd_max, self.snd_una)
            self._cc.on_congestion(now, min(flight, prior) if flight > 0 else prior)
            self._cwr_state = True
            self._prr.start(self._cc.ssthresh, prior, self.snd_mss)
            cwnd = self._prr.on_ack(max(acked, self.snd_mss), self._pipe(), False)
            self._cc.cwnd = cwnd if cwnd is not None else self._cc.ssthresh
        if self.sack_ok:
            # RFC 6675 2: an ACK that SACKs new data counts as a duplicate ACK (without RACK);
            # RACK (RFC 8985) and PRR (RFC 9937) look at what it delivered.
            blocks = seg.options.sack_blocks
            if self.config.sack_whole_segments and blocks:
                blocks = self._sack_whole_segments(blocks)
            newly = self._sb.update(blocks, self.snd_una, self.snd_max)
            self._sack_ack(now, seg, max(acked, 0), newly, sacked_before)
        elif (acked == 0 and data_len == 0 and not flags & (SYN | FIN)
              and new_wnd == self.snd_wnd and self.snd_max != self.snd_una):
            self._on_dupack(now)
        # Window update (3.10.7.4 fifth: when SND.UNA =< SEG.ACK =< SND.NXT, and
        # SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)).
        if seq_le(self.snd_una, ack) and (
                seq_lt(self.snd_wl1, seq) or (self.snd_wl1 == seq and seq_le(self.snd_wl2, ack))):
            opened = new_wnd > self.snd_wnd
            if new_wnd != self.snd_wnd and self._has_unsent():
                self._idle_restart_check(now)  # (Linux tcp_ack_update_window)
            self.snd_wnd = new_wnd
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            self.max_snd_wnd = max(self.max_snd_wnd, new_wnd)
            if opened and self._persist_at is not None:
                self._persist_at = None
                self._persist_backoff = 0
            if new_wnd == 0 and self.snd_nxt != self.snd_una:
                # MUST-34: the window shrank to zero under data in flight: pull back and
                # probe instead of timing out (as BSD does). Not a loss: recovery ends.
                self.snd_nxt = self.snd_una
                self._goback_reason = TxReason.WINDOW_SHRANK
                self._rto_at = None
                if self._in_recovery:
                    self._in_recovery = False
                    self._dupacks = 0
                    self._cc.on_recovery_exit(now)
                    self._prr.stop()
        st = self.state
        if self._fin_acked():
            if st is State.FIN_WAIT_1:
                self._set_state(now, State.FIN_WAIT_2, "ACK of FIN")
                if self._app_closed:
                    self._tw_at = now + self.config.fin_wait2_timeout
            elif st is State.CLOSING:
                self._set_state(now, State.TIME_WAIT, "ACK of FIN")
            elif st is State.LAST_ACK:
                self._set_state(now, State.CLOSED, "ACK of FIN")
                return False
        return True

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 3.2/4.2/5.2: an ACK that tells the real peer where we are, rate limited
        (RFC 5961 7)."""
        if now - self._chal_window >= 1.0:
            self._chal_window = now
            self._chal_count = 0
        if self._chal_count >= self.config.challenge_ack_limit:
            return
        self._chal_count += 1
        self._ack_now = True
        self._ack_reason = TxReason.CHALLENGE_ACK


def seq_between_wnd(x: int, lo: int, wnd: int) -> bool:
    """RCV.NXT =< x < RCV.NXT + RCV.WND on the sequence circle."""
    return ((x - lo) & MASK) < wnd
