"""TCP engine configuration: one ``TcpConfig`` per connection, with two profiles.

``TcpConfig.linux()`` (== ``TcpConfig()``) mimics Linux's defaults so that packetdrill scripts
written against Linux pass; ``TcpConfig.rfc()`` uses the RFCs' conservative numbers.
Times are seconds, sizes are bytes unless said otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


def wscale_for(max_window: int) -> int:
    """The smallest window-scale shift (RFC 7323 2.3, at most 14) that can express max_window."""
    shift = 0
    while shift < 14 and (0xFFFF << shift) < max_window:
        shift += 1
    return shift


@dataclass(slots=True)
class TcpConfig:
    # --- segment size (RFC 9293 3.7.1, MUST-14..16, RFC 6691) ---
    mss: int = 1460                   # MSS we announce when the owner gives none (MTU 1500 - 40)
    max_segment_payload: int = 0      # >MSS: hand out GSO super-segments (0 = one MSS)
    tso_autosize: bool = False        # size super-segments as Linux's TSO packets (scripts'
    #                                   TSO device turns it on; off: as large as cwnd allows)
    min_tso_segs: int = 2             # Linux net.ipv4.tcp_min_tso_segs
    psh_each_gso: bool = True         # PSH on every multi-segment super-segment of new data,
    #                                   as Linux's TSO packets carry it (outside recovery;
    #                                   with psh_per_skb, in recovery and retransmissions too)
    psh_per_skb: bool = True          # Linux's per-skb PSH: a packet, retransmissions too,
    #                                   carries the PSH of the skb it ends (tcp_mark_push),
    #                                   and the GSO PSH in recovery too
    # --- retransmission (RFC 6298, RFC 9293 3.8.1/3.8.3) ---
    initial_rto: float = 1.0          # RFC 6298 2.1
    min_rto: float = 0.2              # Linux TCP_RTO_MIN (RFC 6298 2.4 says 1 s)
    max_rto: float = 120.0            # Linux TCP_RTO_MAX (RFC 6298 2.5: at least 60 s)
    rto_min_on_variance: bool = True  # Linux tcp_set_rto: RTO = SRTT + max(4*RTTVAR, min_rto)
    syn_retries: int = 6              # SYN retransmissions before giving up (MUST-20..23)
    synack_retries: int = 5           # SYN-ACK retransmissions (Linux tcp_synack_retries)
    retries2: int = 15                # data/FIN retransmissions before abort (R2, MUST-20/21)
    # --- congestion control (RFC 5681, RFC 6928, RFC 9438) ---
    initial_window: int = 10          # segments (RFC 6928)
    congestion: str = "cubic"         # "cubic" (RFC 9438) or "newreno" (RFC 5681/6582)
    hystart: bool = True              # slow-start exit on rising RTT (as Linux)
    hystart_kind: str = "linux"       # "linux": Linux CUBIC's HyStart delay detection;
    #                                   "rfc9406": HyStart++ (RFC 9406)
    cubic_kind: str = "linux"         # "linux": CUBIC with Linux's arithmetic (tcp_cubic.c);
    #                                   "rfc9438": the RFC's formulas (congestion/cubic.py)
    cubic_ssthresh_from_cwnd: bool = True  # RFC 9438 CUBIC's reduction from cwnd (Linux; 4.6
    #                                   allows it with cwnd validation), else from FlightSize
    slow_start_after_idle: bool = True  # RFC 5681 4.1 restart window (Linux sysctl of the name)
    slow_start_abc_limit: int = 0     # RFC 3465 L in segments per ACK; 0 = none (Linux
    #                                   tcp_slow_start; the rfc profile uses L = 2)
    # --- loss recovery (RFC 6675, RFC 8985, RFC 6937/9937) ---
    rack: bool = True                 # RACK time-based loss detection (RFC 8985; needs SACK)
    tlp: bool = True                  # tail loss probe (RFC 8985 7; with rack)
    prr: bool = True                  # Proportional Rate Reduction in fast recovery (RFC 9937)
    timer_tick: float = 0.004         # the RACK reordering timer and the TLP timeout are armed
    #                                   in these ticks + 2 ticks, as Linux in jiffies (HZ 250,
    #                                   Kconfig's default); 0: exact, + 2 ms
    # --- ECN (RFC 3168) ---
    ecn: int = 2                      # Linux tcp_ecn: 0 off, 1 ask and accept, 2 accept only
    # --- TCP Fast Open (RFC 7413) ---
    fastopen: int = 0x3               # Linux tcp_fastopen bits: 1 client, 2 server (each only
                                      # when asked: MSG_FASTOPEN / a listener's TCP_FASTOPEN)
    fastopen_key: str = ""            # Linux tcp_fastopen_key "a-b-c-d[,backup]"; "" = derived
    fastopen_key_lifetime: float = 3600.0  # derived keys rotate (RFC 7413 4.1.2); 0 = never
    # --- acknowledgments (RFC 9293 3.8.6.3, RFC 1122 4.2.3.2, MUST-40/58) ---
    delayed_ack: float = 0.04         # delayed-ACK timer (Linux ATO min 40 ms; MUST-40: < 0.5 s)
    delayed_ack_max: float = 0.2      # longest delay (Linux TCP_DELACK_MAX); both capped at
    #                                   0.499 s (MUST-40: < 0.5 s; tcp/delack.py)
    delayed_ack_segments: int = 2     # ACK at least every 2nd full-sized segment (RFC 5681 4.2)
    quickack: int = 16                # quick ACKs at the first data (Linux TCP_MAX_QUICKACKS)
    adaptive_delack: bool = True      # Linux's ATO estimate and pingpong (interactive) mode,
    #                                   tcp/delack.py; False: a fixed ``delayed_ack`` timer
    # --- sending (RFC 896, RFC 9293 3.7.4, 3.8.6.2.1) ---
    nodelay: bool = False             # False = Nagle on (MUST-17: the app can turn it off)
    # --- options (RFC 7323, RFC 2018) ---
    window_scaling: bool = True       # RFC 7323 2
    wscale: int = 7                   # our shift when scaling is on (Linux: 7 for a 6 MB rmem)
    timestamps: bool = True           # RFC 7323 3-5 (RTTM, PAWS)
    ts_hz: int = 1000                 # timestamp clock, ticks per second (RFC 7323 5.4)
    sack: bool = True                 # RFC 2018 / RFC 2883 / RFC 6675
    sack_whole_segments: bool = True  # SACK blocks applied in whole MSS units of the packets
    #                                   sent (Linux tcp_match_skb_to_sack); False: bytes
    # --- buffers ---
    recv_buffer: int = 1 << 20        # receive buffer maximum: bounds RCV.WND (RFC 9293
    #                                   3.8.6.2.2; Linux tcp_rmem[2], or SO_RCVBUF: fixed)
    recv_buffer_min: int = 65536      # its first size, autotuned up to recv_buffer as the
    #                                   application reads (Linux tcp_rmem[1] = 131072 bytes
    #                                   of memory = 64 KiB of window; tcp_rcv_space_adjust)
    rcv_window_growth: bool = True    # offer the window as Linux grows it (rcv_ssthresh from
    #                                   ~64 KiB, tcp_grow_window; tcp/rcvwnd.py); False: the
    #                                   whole buffer from the start (the rfc profile)
    send_buffer: int = 1 << 20        # send buffer maximum (RFC 9293 3.10.2 SEND queues here)
    send_buffer_min: int = 16384      # its first limit; autotuned up to send_buffer with the
    #                                   congestion window (Linux tcp_wmem[1], tcp_sndbuf_expand)
    reassembly_limit: int = 1 << 20   # bytes kept out of order (RFC 9293 3.10.7.4 seventh)
    # --- closing (RFC 9293 3.3.2, MUST-13) ---
    msl: float = 30.0                 # maximum segment lifetime (RFC 9293 3.4.2)
    time_wait: float = 60.0           # TIME-WAIT length, 2*MSL (Linux TCP_TIMEWAIT_LEN)
    fin_wait2_timeout: float = 60.0   # orphan FIN-WAIT-2 after close() (Linux tcp_fin_timeout)
    # Retransmissions and unanswered zero-window probes an orphan (closed by the application,
    # data still queued) makes before it gives up (Linux tcp_orphan_retries; its 0 means 8).
    orphan_retries: int = 8
    # --- zero-window probing (RFC 9293 3.8.6.1, MUST-35..37) ---
    persist_min: float = 0.2          # first probe after max(RTO, this) (RFC 1122 4.2.2.17)
    persist_max: float = 120.0        # cap of the exponential probe backoff (MUST-36/37)
    # --- keep-alive (RFC 9293 3.8.4, MUST-24..29) ---
    keepalive: bool = False           # MUST-25: off by default
    keepalive_idle: float = 7200.0    # MUST-28: at least 2 hours by default
    keepalive_interval: float = 75.0  # between unanswered probes (MUST-27, Linux default)
    keepalive_count: int = 9          # unanswered probes before abort (MUST-29 tolerance)
    # --- reset (RFC 9293 3.10.7.4 second) ---
    rst_flushes_unread: bool = False  # an RST drops in-order bytes not yet read ("should be
    #                                   flushed"); Linux keeps them readable before the error
    # --- security (RFC 5961) ---
    challenge_ack_limit: int = 1000   # challenge ACKs per second (RFC 5961 7)

    @classmethod
    def linux(cls) -> TcpConfig:
        """Linux-like defaults (6.x): min RTO 200 ms, IW 10, WS/TS/SACK, TIME-WAIT 60 s."""
        return cls()

    @classmethod
    def rfc(cls) -> TcpConfig:
        """The RFCs' numbers: RFC 6298 min RTO 1 s, RFC 1122 200 ms delayed ACK, MSL 2 min,
        SYN R2 >= 3 min (MUST-23: 1+2+4+8+16+32+60+60 s with 7 retries), no quickack nor
        adaptive delayed ACK (a fixed 200 ms timer),
        RFC 6675's DupThresh loss detection without RACK-TLP, the whole receive buffer
        offered from the start (no Linux window growth nor autotuning)."""
        return cls(
            min_rto=1.0,
            max_rto=60.0,
            syn_retries=7,
            synack_retries=7,
            retries2=15,
            delayed_ack=0.2,
            quickack=0,
            adaptive_delack=False,
            msl=120.0,
            time_wait=240.0,
            wscale=wscale_for(1 << 20),
            psh_each_gso=False,
            psh_per_skb=False,
            rto_min_on_variance=False,
            slow_start_abc_limit=2,
            rack=False,
            tlp=False,
            timer_tick=0.0,
            cubic_ssthresh_from_cwnd=False,
            cubic_kind="rfc9438",
            sack_whole_segments=False,
            hystart=False,
            rst_flushes_unread=True,
            recv_buffer_min=1 << 20,
            rcv_window_growth=False,
        )

    def replace(self, **changes: object) -> TcpConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
