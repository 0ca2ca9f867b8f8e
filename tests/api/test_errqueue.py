"""The socket error queue (pytcp.api.errqueue): MSG_ZEROCOPY ranges and TX timestamps."""

from __future__ import annotations

import errno
import struct

from pytcp.api import errqueue as eq


def _notifier(limit: int = 131072) -> eq.TxNotifier:
    n = eq.TxNotifier(eq.ErrorQueue(limit))
    n.zerocopy = True
    return n


def _ranges(n: eq.TxNotifier) -> list[tuple[int, int]]:
    out = []
    while (e := n.queue.pop()) is not None:
        assert e.ee.ee_origin == eq.SO_EE_ORIGIN_ZEROCOPY
        assert e.ee.ee_code == eq.SO_EE_CODE_ZEROCOPY_COPIED
        out.append((e.ee.ee_info, e.ee.ee_data))
    return out


def test_completion_waits_for_every_byte_and_merges_with_the_queue_tail() -> None:
    n = _notifier()
    n.on_send(0, 100, zerocopy=True, tail_unsent=False)
    n.on_send(100, 100, zerocopy=True, tail_unsent=False)
    assert not n.on_progress(0.1, 200, 99)  # one byte of ID 0 unacknowledged
    assert not n.queue
    assert n.on_progress(0.2, 200, 150)
    assert n.on_progress(0.3, 200, 200)  # ID 1 extends the queued [0, 0]
    assert _ranges(n) == [(0, 1)]
    assert n.queue.stats["merged"] == 1


def test_send_while_the_tail_is_unsent_extends_the_range() -> None:
    n = _notifier()
    n.on_send(0, 10, zerocopy=True, tail_unsent=False)
    n.on_send(10, 10, zerocopy=True, tail_unsent=True)   # msg_zerocopy_realloc
    n.on_send(20, 10, zerocopy=True, tail_unsent=False)  # the tail was sent: a new range
    n.on_progress(0.0, 30, 20)
    assert _ranges(n) == [(0, 1)]
    n.queue.pop()
    n.on_progress(0.0, 30, 30)
    assert _ranges(n) == [(2, 2)]
    assert n.zckey == 3


def test_range_byte_limit_starts_a_new_range() -> None:
    n = _notifier()
    n.on_send(0, eq.ZEROCOPY_RANGE_BYTES, zerocopy=True, tail_unsent=False)
    n.on_send(eq.ZEROCOPY_RANGE_BYTES, 1, zerocopy=True, tail_unsent=True)
    n.on_progress(0.0, eq.ZEROCOPY_RANGE_BYTES, eq.ZEROCOPY_RANGE_BYTES)
    assert _ranges(n) == [(0, 0)]


def test_outstanding_bound_is_enobufs_and_counted() -> None:
    n = _notifier()
    for i in range(eq.ZEROCOPY_MAX_OUTSTANDING):
        assert n.zerocopy_admit()
        n.on_send(i, 1, zerocopy=True, tail_unsent=False)
    assert not n.zerocopy_admit()
    assert n.stats["zerocopy_enobufs"] == 1
    n.on_progress(0.0, eq.ZEROCOPY_MAX_OUTSTANDING, eq.ZEROCOPY_MAX_OUTSTANDING)
    # all completed and merged into one queued notification: room again
    assert n.zerocopy_admit()
    assert _ranges(n) == [(0, eq.ZEROCOPY_MAX_OUTSTANDING - 1)]


def test_timestamp_queue_bound_drops_and_counts() -> None:
    n = eq.TxNotifier(eq.ErrorQueue(3 * eq.ENTRY_COST + 10))
    assert n.set_timestamping(eq.SOF_TIMESTAMPING_TX_SCHED | eq.SOF_TIMESTAMPING_TX_SOFTWARE
                              | eq.SOF_TIMESTAMPING_OPT_TSONLY | eq.SOF_TIMESTAMPING_OPT_ID,
                              acked=0, written=0, can_key=True) == 0
    for i in range(3):
        n.on_send(i * 10, 10, zerocopy=False, tail_unsent=False)
    n.on_progress(1.0, 30, 0)  # 6 stamps, room for 3 (used + cost must stay < limit)
    assert len(n.queue) == 3
    assert n.queue.stats["dropped"] == 3
    e = n.queue.pop()
    assert e is not None and (e.ee.ee_info, e.ee.ee_data) == (eq.SCM_TSTAMP_SCHED, 9)


def test_opt_id_and_bad_flags() -> None:
    n = eq.TxNotifier(eq.ErrorQueue(1 << 20))
    assert n.set_timestamping(eq.SOF_TIMESTAMPING_OPT_ID, acked=0, written=0,
                              can_key=False) == errno.EINVAL
    assert n.set_timestamping(1 << 19, acked=0, written=0, can_key=True) == errno.EINVAL
    assert n.set_timestamping(eq.SOF_TIMESTAMPING_OPT_ID_TCP, acked=0, written=0,
                              can_key=True) == errno.EINVAL
    flags = eq.SOF_TIMESTAMPING_TX_ACK | eq.SOF_TIMESTAMPING_OPT_ID | (
        eq.SOF_TIMESTAMPING_OPT_ID_TCP) | eq.SOF_TIMESTAMPING_SOFTWARE
    assert n.set_timestamping(flags, acked=5, written=8, can_key=True) == 0
    assert n.tskey_base == 8  # OPT_ID_TCP: counted from the next byte written
    n.on_send(8, 4, zerocopy=False, tail_unsent=False, data=b"abcd", mss=2)
    n.on_progress(2.5, 12, 12)
    e = n.queue.pop()
    assert e is not None
    assert (e.ee.ee_errno, e.ee.ee_info, e.ee.ee_data) == (errno.ENOMSG, eq.SCM_TSTAMP_ACK, 3)
    assert e.payload == b"cd"  # the send's last MSS
    (lvl, typ, ts), (lvl2, typ2, raw) = e.cmsgs()
    assert (lvl, typ) == (eq.SOL_SOCKET, eq.SCM_TIMESTAMPING)
    assert struct.unpack("=qq", ts[:16]) == (2, 500_000_000) and len(ts) == 48
    assert (lvl2, typ2) == (eq.SOL_IP, eq.IP_RECVERR) and len(raw) == 32
    assert struct.unpack("=IBBBBII", raw[:16]) == (errno.ENOMSG, eq.SO_EE_ORIGIN_TIMESTAMPING,
                                                    0, 0, 0, eq.SCM_TSTAMP_ACK, 3)
    assert e.cmsgs(v6=True)[1][:2] == (eq.SOL_IPV6, eq.IPV6_RECVERR)


def test_closed_socket_reports_nothing_and_purge_completes() -> None:
    n = _notifier()
    n.on_send(0, 10, zerocopy=True, tail_unsent=False)
    assert n.on_purge(0.0)
    assert _ranges(n) == [(0, 0)]
    n.on_send(10, 10, zerocopy=True, tail_unsent=False)
    n.close()
    assert not n.on_progress(0.0, 20, 20)
    assert not n.queue
