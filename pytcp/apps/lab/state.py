"""The lab's state: jobs, topics and their subscribers, and the connections that served it.

Nothing here touches a socket: the HTTP glue (``pytcp.apps.lab.http``) calls these methods.
Every collection has a bound, a counter and a behaviour at the bound:

- jobs: at most ``max_jobs``; a new job evicts the oldest finished one, and when every job is
  still running the request is refused (503, ``jobs_refused``);
- topics: at most ``max_topics`` names with subscribers or messages in flight (503 past it);
- a subscriber's queue holds ``queue_limit`` messages; a publish that finds it full drops
  the subscriber (its stream ends with an ``event: dropped`` saying why), counted in
  ``drops["slow subscriber"]``: the publisher is never blocked and nothing grows without limit;
- streams (SSE and WebSocket) and long polls held open at once: ``max_streams`` and
  ``max_long_polls`` (503 past them, ``streams_refused`` / ``long_polls_refused``);
- the connections remembered for the figures: the last ``max_conns`` (oldest forgotten).
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_JOBS = 256
MAX_JOB_SECONDS = 60.0
MAX_TOPICS = 64
MAX_SUBSCRIBERS = 64        # per topic
QUEUE_LIMIT = 64            # messages waiting for one subscriber
MAX_MESSAGE = 4096          # bytes of one published message
MAX_STREAMS = 64            # SSE + WebSocket connections streaming at once
MAX_LONG_POLLS = 64
MAX_CONNS = 256             # connections remembered for the figures
MAX_TAG = 64


@dataclass
class Job:
    """A job that is done ``seconds`` after it was created (short and long polling)."""

    id: int
    seconds: float
    created: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    handle: asyncio.TimerHandle | None = None

    def state(self) -> str:
        return "done" if self.done.is_set() else "pending"


class Subscriber:
    """One subscription: a bounded queue of messages and why it was dropped, if it was."""

    def __init__(self, topic: str, limit: int) -> None:
        self.topic = topic
        self.limit = limit
        self.queue: collections.deque[str] = collections.deque()
        self.wake = asyncio.Event()
        self.dropped: str | None = None
        self.delivered = 0

    def take(self) -> list[str]:
        out = list(self.queue)
        self.queue.clear()
        self.wake.clear()
        self.delivered += len(out)
        return out


@dataclass
class ConnRecord:
    """A connection that served the lab: its 4-tuple and pytcp's counters (kept after it
    closed: ``counters`` is the stack's small ``ConnCounters``, not the connection)."""

    id: str
    local: str
    remote: str
    counters: Any
    handle: Any  # weakref to the TcpHandle, or None
    tags: set[str] = field(default_factory=set)
    requests: int = 0


def _addr(a: Any) -> str:
    return str(ipaddress.ip_address(a)) if isinstance(a, int) else str(a)


class Lab:
    """The patterns lab: jobs, topics, stream bounds and the connection figures."""

    def __init__(self, *, clock: Callable[[], float] | None = None,
                 event_interval: float = 1.0, max_jobs: int = MAX_JOBS,
                 max_topics: int = MAX_TOPICS, max_subscribers: int = MAX_SUBSCRIBERS,
                 queue_limit: int = QUEUE_LIMIT, max_streams: int = MAX_STREAMS,
                 max_long_polls: int = MAX_LONG_POLLS, max_conns: int = MAX_CONNS) -> None:
        self.clock = clock
        self.event_interval = event_interval
        self.max_jobs = max_jobs
        self.max_topics = max_topics
        self.max_subscribers = max_subscribers
        self.queue_limit = queue_limit
        self.max_streams = max_streams
        self.max_long_polls = max_long_polls
        self.max_conns = max_conns
        self.jobs: collections.OrderedDict[int, Job] = collections.OrderedDict()
        self._next_job = 1
        self.topics: dict[str, set[Subscriber]] = {}
        self.conns: collections.OrderedDict[str, ConnRecord] = collections.OrderedDict()
        self.streams = 0
        self.long_polls = 0
        self.stats: collections.Counter[str] = collections.Counter()
        self.drops: collections.Counter[str] = collections.Counter()

    def now(self) -> float:
        if self.clock is not None:
            return self.clock()
        return asyncio.get_running_loop().time()

    # --- jobs ------------------------------------------------------------------------------

    def create_job(self, seconds: float) -> Job | None:
        """A new job done in ``seconds``; None when the table is full of running jobs."""
        if len(self.jobs) >= self.max_jobs:
            victim = next((j for j in self.jobs.values() if j.done.is_set()), None)
            if victim is None:
                self.stats["jobs_refused"] += 1
                return None
            del self.jobs[victim.id]
            self.stats["jobs_evicted"] += 1
        job = Job(self._next_job, seconds, self.now())
        self._next_job += 1
        self.jobs[job.id] = job
        self.stats["jobs_created"] += 1
        if seconds <= 0:
            job.done.set()
        else:
            job.handle = asyncio.get_running_loop().call_later(seconds, job.done.set)
        return job

    def job_view(self, job: Job) -> dict[str, Any]:
        return {"id": job.id, "state": job.state(), "seconds": job.seconds,
                "age": round(self.now() - job.created, 3)}

    # --- topics ----------------------------------------------------------------------------

    def subscribe(self, topic: str) -> Subscriber | None:
        """A new subscriber of ``topic``; None past ``max_topics`` / ``max_subscribers``."""
        subs = self.topics.get(topic)
        if subs is None:
            if len(self.topics) >= self.max_topics:
                self.stats["subscribers_refused"] += 1
                return None
            subs = self.topics[topic] = set()
        if len(subs) >= self.max_subscribers:
            self.stats["subscribers_refused"] += 1
            return None
        sub = Subscriber(topic, self.queue_limit)
        subs.add(sub)
        self.stats["subscribed"] += 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.topics.get(sub.topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.topics[sub.topic]

    def publish(self, topic: str, message: str) -> int:
        """Queue ``message`` for every subscriber of ``topic``; returns how many got it. A
        subscriber whose queue is full is dropped (counted), never waited for."""
        self.stats["published"] += 1
        subs = self.topics.get(topic)
        if not subs:
            return 0
        n = 0
        for sub in list(subs):
            if len(sub.queue) >= sub.limit:
                sub.dropped = (f"slow subscriber: {len(sub.queue)} messages waiting "
                               f"(limit {sub.limit})")
                self.drops["slow subscriber"] += 1
                self.unsubscribe(sub)
                sub.wake.set()
                continue
            sub.queue.append(message)
            sub.wake.set()
            n += 1
        self.stats["queued"] += n
        return n

    # --- bounded streams and long polls ------------------------------------------------------

    def open_stream(self) -> bool:
        if self.streams >= self.max_streams:
            self.stats["streams_refused"] += 1
            return False
        self.streams += 1
        return True

    def close_stream(self) -> None:
        self.streams -= 1

    def open_long_poll(self) -> bool:
        if self.long_polls >= self.max_long_polls:
            self.stats["long_polls_refused"] += 1
            return False
        self.long_polls += 1
        return True

    def close_long_poll(self) -> None:
        self.long_polls -= 1

    # --- the connections and their figures ---------------------------------------------------

    def record(self, handle: Any, tag: str | None = None) -> ConnRecord | None:
        """Remember the connection ``handle`` (a pytcp TcpHandle) served a lab request."""
        counters = getattr(handle, "counters", None)
        key = getattr(handle, "key", None)
        if counters is None or key is None:
            return None  # not a pytcp connection (e.g. a kernel socket in a test)
        local = f"{_addr(key.local_addr)}:{key.local_port}"
        remote = f"{_addr(key.remote_addr)}:{key.remote_port}"
        cid = f"{key.local_port}-{_addr(key.remote_addr)}-{key.remote_port}"
        rec = self.conns.get(cid)
        if rec is None or rec.counters is not counters:
            rec = ConnRecord(cid, local, remote, counters, weakref.ref(handle))
            self.conns[cid] = rec
            while len(self.conns) > self.max_conns:
                self.conns.popitem(last=False)
        else:
            self.conns.move_to_end(cid)
        rec.requests += 1
        if tag:
            rec.tags.add(tag[:MAX_TAG])
            if len(rec.tags) > 16:
                rec.tags.pop()
        return rec

    def figures(self, rec: ConnRecord) -> dict[str, Any]:
        """The counters of one connection, as the page shows them."""
        c = rec.counters
        h = rec.handle() if rec.handle is not None else None
        now = self.now()
        state = c.end_state if c.ended is not None else (
            str(h.conn.state) if h is not None else "CLOSED")
        end = c.ended if c.ended is not None else now
        retrans = 0
        if h is not None:
            retrans = int(getattr(h.conn, "retransmits", 0))
        return {"id": rec.id, "local": rec.local, "remote": rec.remote,
                "client_port": int(rec.remote.rsplit(":", 1)[1]), "state": state,
                "open": c.ended is None, "lifetime": round(max(0.0, end - c.opened), 3),
                "age": round(max(0.0, now - c.opened), 3),
                "segs_in": c.segs_in, "segs_out": c.segs_out,
                "wire_in": c.wire_in, "wire_out": c.wire_out,
                "data_in": c.data_in, "data_out": c.data_out,
                "retransmits": retrans, "requests": rec.requests, "tags": sorted(rec.tags)}

    def find(self, ids: Iterable[str] = (), ports: Iterable[int] = (),
             tags: Iterable[str] = ()) -> list[dict[str, Any]]:
        want_ids, want_ports, want_tags = set(ids), set(ports), set(tags)
        out = []
        for rec in self.conns.values():
            port = int(rec.remote.rsplit(":", 1)[1])
            if rec.id in want_ids or port in want_ports or rec.tags & want_tags:
                out.append(self.figures(rec))
        return out

    def status(self) -> dict[str, Any]:
        """For /lab/api/stats and the status page."""
        return {"jobs": len(self.jobs), "topics": len(self.topics),
                "subscribers": sum(len(s) for s in self.topics.values()),
                "streams": self.streams, "long_polls": self.long_polls,
                "conns_remembered": len(self.conns), "counters": dict(self.stats),
                "drops": dict(self.drops),
                "bounds": {"jobs": self.max_jobs, "topics": self.max_topics,
                           "subscribers_per_topic": self.max_subscribers,
                           "queue": self.queue_limit, "streams": self.max_streams,
                           "long_polls": self.max_long_polls, "message": MAX_MESSAGE,
                           "conns": self.max_conns}}


def wall_time() -> float:
    return time.time()
