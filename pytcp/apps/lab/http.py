"""The lab's HTTP routes, on the h11 session of ``pytcp.apps.http_server``.

``respond(session, lab, request, path, query)`` answers one request below ``/lab``:

- ``GET /lab/``: the page (``static/index.html``, shipped in the package: no CDN);
- ``GET /lab/api/echo?msg=TEXT``: 200, ``{"msg": TEXT, "conn": {...}}`` (request/response);
- ``POST /lab/api/jobs?seconds=N`` (default 2, 0..60): 202, ``{"id": ID, "state": ...}``;
  ``GET /lab/api/jobs/ID``: the job's state (short polling); ``?wait=S`` (0..60) answers as
  soon as the job is done, or after S seconds with its current state (long polling);
- ``GET /lab/api/events``: ``text/event-stream``, an event (``{"n": N, "time": T}``, id N)
  every ``event_interval`` (1 s) and one at once, never ending;
- ``POST /lab/api/topics/NAME``: publishes the body (UTF-8, at most 4 KiB) as one message;
  ``GET /lab/api/topics/NAME``: subscribes, ``data: MESSAGE`` per message published after;
- ``GET /lab/ws/topics/NAME``: WebSocket (RFC 6455, wsproto): text frames in are published,
  messages published arrive as text frames;
- ``GET /lab/api/conns?id=ID&port=P&tag=T`` (each repeatable, or comma-separated): pytcp's
  counters of the connections that served lab requests (segments, wire and payload bytes
  both ways, state, lifetime), matched by connection id, client port or a tag the page put
  on its requests (``?tag=`` on any lab request; the way to find a WebSocket's connection);
- ``GET /lab/ws/conns``: the same figures over a WebSocket (a text frame with the query in,
  one with the JSON out), which the page uses: that connection is outside the browser's HTTP
  pool, so asking for the figures does not add to the connections they describe;
- ``GET /lab/api/stats``: the lab's bounds and counters.

Every JSON answer carries ``conn``: the figures of the connection it arrived on, as counted
before the answer was written — the browser knows nothing of its ports, so this is how the
page tells which connection carried which message. Each stream starts with an ``event:
conn`` (SSE). A stream ends when the client closes its side (or resets), when pytcp stops,
or for a subscriber dropped at its queue bound (an ``event: dropped`` / WebSocket close 1008
saying why first).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.resources
import json
import re
import urllib.parse
from typing import Any, Protocol

import h11
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import generate_accept_token

from pytcp.apps.lab.state import MAX_JOB_SECONDS, MAX_MESSAGE, Lab, Subscriber

TOPIC_RE = re.compile(r"^[A-Za-z0-9_.~-]{1,64}$")
KEEPALIVE = 15.0  # seconds between SSE comments on a quiet topic stream
READ_SIZE = 65536


class Session(Protocol):
    """What the lab needs of ``http_server._HttpSession``."""

    conn: h11.Connection
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    body: bytearray

    async def send_bytes(self, method: bytes, status: int, ctype: str, body: bytes,
                         extra: list[tuple[bytes, bytes]] | None = None) -> None: ...

    async def write(self, data: bytes) -> None: ...


class LabReply(Exception):
    """An error answer (status, one line)."""

    def __init__(self, status: int, detail: str = "",
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or []


@functools.lru_cache(maxsize=1)
def page() -> bytes:
    """The lab page, read once from the package."""
    return (importlib.resources.files("pytcp.apps.lab") / "static" / "index.html").read_bytes()


def _params(query: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, vs in urllib.parse.parse_qs(query, keep_blank_values=True).items():
        out[k] = [p for v in vs for p in (v.split(",") if k in ("id", "port", "tag") else [v])]
    return out


def _number(params: dict[str, list[str]], name: str, default: float | None,
            hi: float) -> float | None:
    vals = params.get(name)
    if not vals:
        return default
    try:
        v = float(vals[-1])
    except ValueError:
        raise LabReply(400, f"{name} must be a number of seconds") from None
    if not 0 <= v <= hi:  # (also NaN)
        raise LabReply(400, f"{name} must be between 0 and {hi:g}")
    return v


def _conn_figures(session: Session, lab: Lab, tag: str | None) -> dict[str, Any] | None:
    handle = session.writer.get_extra_info("pytcp_handle")
    rec = lab.record(handle, tag) if handle is not None else None
    return lab.figures(rec) if rec is not None else None


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


NO_STORE = [(b"Cache-Control", b"no-store")]


async def respond(session: Session, lab: Lab, request: h11.Request, path: str,
                  query: str) -> int:
    """Answer one request for ``/lab`` or below; returns the status sent. Raises LabReply
    for errors (the server sends them)."""
    method = request.method
    params = _params(query)
    # (?tag= on /lab/api/conns selects connections: it labels only the other requests)
    tags = [] if path.startswith("/lab/api/conns") else params.get("tag", [])
    tag = tags[0] if tags else None
    conn = _conn_figures(session, lab, tag)
    parts = [p for p in path.split("/") if p]  # ["lab", ...]
    if path == "/lab":
        raise LabReply(301, "", [(b"Location", b"/lab/")])
    if len(parts) == 1 and path.endswith("/"):
        _allow(method, (b"GET", b"HEAD"))
        await session.send_bytes(method, 200, "text/html; charset=utf-8", page(), NO_STORE)
        return 200
    if parts[1:2] == ["ws"] and len(parts) == 4 and parts[2] == "topics":
        _allow(method, (b"GET",))
        return await _websocket(session, lab, request, _topic(parts[3]))
    if parts[1:] == ["ws", "conns"]:
        _allow(method, (b"GET",))
        return await _websocket(session, lab, request, None)
    if parts[1:2] != ["api"] or len(parts) < 3:
        raise LabReply(404)
    what = parts[2]
    if what == "echo" and len(parts) == 3:
        _allow(method, (b"GET", b"HEAD"))
        msg = (params.get("msg") or [""])[-1]
        if len(msg.encode()) > MAX_MESSAGE:
            raise LabReply(413, f"msg longer than {MAX_MESSAGE} bytes")
        lab.stats["echo"] += 1
        await session.send_bytes(method, 200, "application/json",
                                 _json({"msg": msg, "time": lab.now(), "conn": conn}), NO_STORE)
        return 200
    if what == "jobs" and len(parts) == 3:
        _allow(method, (b"POST",))
        seconds = _number(params, "seconds", 2.0, MAX_JOB_SECONDS)
        assert seconds is not None
        job = lab.create_job(seconds)
        if job is None:
            raise LabReply(503, "the job table is full of running jobs", [(b"Retry-After",
                                                                           b"1")])
        await session.send_bytes(method, 202, "application/json",
                                 _json({**lab.job_view(job), "conn": conn}),
                                 [*NO_STORE, (b"Location", f"/lab/api/jobs/{job.id}".encode())])
        return 202
    if what == "jobs" and len(parts) == 4:
        _allow(method, (b"GET", b"HEAD"))
        try:
            job = lab.jobs[int(parts[3])]
        except (ValueError, KeyError):
            raise LabReply(404, "no such job (finished jobs are forgotten past the bound)") \
                from None
        wait = _number(params, "wait", None, MAX_JOB_SECONDS)
        waited = 0.0
        if wait and not job.done.is_set():
            if not lab.open_long_poll():
                raise LabReply(503, "too many long polls waiting", [(b"Retry-After", b"1")])
            t0 = lab.now()
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await job.done.wait()
            finally:
                lab.close_long_poll()
            waited = round(lab.now() - t0, 3)
            lab.stats["long_polls"] += 1
            conn = _conn_figures(session, lab, None)  # as they are now, after the wait
        else:
            lab.stats["polls"] += 1
        await session.send_bytes(method, 200, "application/json",
                                 _json({**lab.job_view(job), "waited": waited, "conn": conn}),
                                 NO_STORE)
        return 200
    if what == "events" and len(parts) == 3:
        _allow(method, (b"GET",))
        return await _event_stream(session, lab, tag)
    if what == "topics" and len(parts) == 4:
        topic = _topic(parts[3])
        _allow(method, (b"GET", b"POST"))
        if method == b"POST":
            try:
                message = bytes(session.body).decode("utf-8")
            except UnicodeDecodeError:
                raise LabReply(400, "the message must be UTF-8 text") from None
            if len(session.body) > MAX_MESSAGE:
                raise LabReply(413, f"a message is at most {MAX_MESSAGE} bytes")
            n = lab.publish(topic, message)
            await session.send_bytes(method, 200, "application/json",
                                     _json({"topic": topic, "subscribers": n, "conn": conn}),
                                     NO_STORE)
            return 200
        return await _topic_stream(session, lab, topic, tag)
    if what == "conns" and len(parts) == 3:
        _allow(method, (b"GET", b"HEAD"))
        await session.send_bytes(method, 200, "application/json",
                                 (_figures_reply(lab, query) + "\n").encode(), NO_STORE)
        return 200
    if what == "stats" and len(parts) == 3:
        _allow(method, (b"GET", b"HEAD"))
        await session.send_bytes(method, 200, "application/json", _json(lab.status()),
                                 NO_STORE)
        return 200
    raise LabReply(404)


def _figures_reply(lab: Lab, query: str) -> str:
    params = _params(query)
    ports = [int(p) for p in params.get("port", []) if p.isdigit() and len(p) <= 5]
    found = lab.find(params.get("id", []), ports, params.get("tag", []))
    lab.stats["figures_sent"] += 1
    return json.dumps({"conns": found, "now": lab.now()}, separators=(",", ":"))


def _allow(method: bytes, allowed: tuple[bytes, ...]) -> None:
    if method not in allowed:
        raise LabReply(405, f"method {method.decode('latin-1')} not allowed here",
                       [(b"Allow", b", ".join(allowed))])


def _topic(name: str) -> str:
    if not TOPIC_RE.match(name):
        raise LabReply(400, "a topic name is 1-64 of A-Z a-z 0-9 _ . ~ -")
    return name


# --- streams ---------------------------------------------------------------------------------

async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Read (and discard) until the client closes its side."""
    while await reader.read(READ_SIZE):
        pass


async def _stop(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has let go of the reader."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _start_stream(session: Session, lab: Lab, tag: str | None) -> None:
    """The event stream's response head, then its first event: the reconnect delay and the
    connection's figures (``conn``)."""
    head = session.conn.send(h11.Response(status_code=200, reason=b"OK", headers=[
        (b"Content-Type", b"text/event-stream; charset=utf-8"), (b"Cache-Control", b"no-store"),
        (b"X-Accel-Buffering", b"no")])) or b""
    await session.write(head)
    await _send_event(session, "retry: 2000\n" + _sse(
        json.dumps(_conn_figures(session, lab, tag)), event="conn"))


async def _send_event(session: Session, text: str) -> None:
    await session.write(session.conn.send(h11.Data(data=text.encode())) or b"")


def _sse(data: str, event: str | None = None, ident: str | None = None) -> str:
    lines = []
    if event:
        lines.append(f"event: {event}")
    if ident:
        lines.append(f"id: {ident}")
    lines += [f"data: {line}" for line in data.split("\n")]
    return "\n".join(lines) + "\n\n"


async def _event_stream(session: Session, lab: Lab, tag: str | None) -> int:
    if not lab.open_stream():
        raise LabReply(503, "too many streams open", [(b"Retry-After", b"2")])
    eof = asyncio.ensure_future(_until_eof(session.reader))
    try:
        await _start_stream(session, lab, tag)
        n = 0
        start = lab.now()
        while True:
            n += 1
            lab.stats["events_sent"] += 1
            # Small on purpose (what an event costs is the point): the figures are asked
            # for apart (/lab/ws/conns), the connection is named by the first event.
            await _send_event(session, _sse(json.dumps(
                {"n": n, "time": round(lab.now(), 3)}, separators=(",", ":")), ident=str(n)))
            # On a fixed schedule (start + n intervals): a slow write does not stretch it.
            done, _ = await asyncio.wait(
                {eof}, timeout=max(0.0, start + n * lab.event_interval - lab.now()))
            if done:
                return 200
    finally:
        await _stop(eof)
        lab.close_stream()


async def _topic_stream(session: Session, lab: Lab, topic: str, tag: str | None) -> int:
    if not lab.open_stream():
        raise LabReply(503, "too many streams open", [(b"Retry-After", b"2")])
    sub = lab.subscribe(topic)
    if sub is None:
        lab.close_stream()
        raise LabReply(503, "too many topics or subscribers", [(b"Retry-After", b"2")])
    eof = asyncio.ensure_future(_until_eof(session.reader))
    try:
        await _start_stream(session, lab, tag)
        while True:
            wake = asyncio.ensure_future(sub.wake.wait())
            done, _ = await asyncio.wait({eof, wake}, timeout=KEEPALIVE,
                                         return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()
            if eof in done:
                return 200
            messages = sub.take()
            if messages:
                await _send_event(session, "".join(_sse(m) for m in messages))
            if sub.dropped is not None:
                await _send_event(session, _sse(sub.dropped, event="dropped"))
                await session.write(session.conn.send(h11.EndOfMessage()) or b"")
                return 200
            if not done:
                await _send_event(session, ": keep-alive\n\n")
    finally:
        await _stop(eof)
        lab.unsubscribe(sub)
        lab.close_stream()


async def _websocket(session: Session, lab: Lab, request: h11.Request,
                     topic: str | None) -> int:
    """A WebSocket on ``topic`` (pub/sub), or with ``topic`` None the figures channel
    (``/lab/ws/conns``): each text frame is a query as for ``/lab/api/conns`` (``id=..&
    tag=..``) and is answered with one text frame of the same JSON — on a connection of its
    own, outside the browser's HTTP pool, so fetching the figures adds nothing to the
    connections they describe."""
    headers = {k.lower(): v for k, v in request.headers}
    key = headers.get(b"sec-websocket-key")
    if (b"websocket" not in headers.get(b"upgrade", b"").lower()
            or b"upgrade" not in headers.get(b"connection", b"").lower() or not key
            or headers.get(b"sec-websocket-version") != b"13"):
        raise LabReply(400, "a WebSocket handshake (RFC 6455 4.1) was expected",
                       [(b"Sec-WebSocket-Version", b"13")])
    if not lab.open_stream():
        raise LabReply(503, "too many streams open", [(b"Retry-After", b"2")])
    sub = lab.subscribe(topic) if topic is not None else Subscriber("", 0)
    if sub is None:
        lab.close_stream()
        raise LabReply(503, "too many topics or subscribers", [(b"Retry-After", b"2")])
    try:
        await session.write(session.conn.send(h11.InformationalResponse(
            status_code=101, reason=b"Switching Protocols", headers=[
                (b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
                (b"Sec-WebSocket-Accept", generate_accept_token(key))])) or b"")
        ws = WsConnection(ConnectionType.SERVER)
        trailing, _ = session.conn.trailing_data
        lab.stats["websockets"] += 1
        rx = asyncio.ensure_future(_ws_receive(session, lab, ws, topic, bytes(trailing)))
        try:
            while not rx.done():
                wake = asyncio.ensure_future(sub.wake.wait())
                await asyncio.wait({rx, wake}, return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                messages = sub.take()
                out = b"".join(ws.send(TextMessage(data=m)) for m in messages)
                if sub.dropped is not None:
                    out += ws.send(CloseConnection(code=1008, reason=sub.dropped[:120]))
                    await session.write(out)
                    break
                if out and not rx.done():
                    await session.write(out)
            if rx.done() and not rx.cancelled() and rx.exception() is not None:
                raise rx.exception()  # type: ignore[misc]
        finally:
            rx.cancel()
        return 101
    finally:
        lab.unsubscribe(sub)
        lab.close_stream()


async def _ws_receive(session: Session, lab: Lab, ws: WsConnection, topic: str | None,
                      first: bytes) -> None:
    """Client frames: text messages are published (at most MAX_MESSAGE bytes, else close
    1009), pings answered, a close answered; returns when the conversation is over."""
    pending: list[str] = []
    size = 0
    data: bytes | None = first
    while True:
        if data is None or data:
            ws.receive_data(data)
        for ev in ws.events():
            if isinstance(ev, TextMessage):
                pending.append(ev.data)
                size += len(ev.data.encode())
                if size > MAX_MESSAGE:
                    lab.stats["ws_too_big"] += 1
                    await session.write(ws.send(CloseConnection(
                        code=1009, reason=f"a message is at most {MAX_MESSAGE} bytes")))
                    return
                if ev.message_finished:
                    text = "".join(pending)
                    pending, size = [], 0
                    if topic is not None:
                        lab.publish(topic, text)
                    else:
                        await session.write(ws.send(TextMessage(data=_figures_reply(lab,
                                                                                    text))))
            elif isinstance(ev, BytesMessage):
                await session.write(ws.send(CloseConnection(code=1003,
                                                            reason="text frames only")))
                return
            elif isinstance(ev, Ping):
                await session.write(ws.send(ev.response()))
            elif isinstance(ev, CloseConnection):
                with contextlib.suppress(Exception):
                    await session.write(ws.send(ev.response()))
                return
        if data is None:
            return
        data = await session.reader.read(READ_SIZE) or None


__all__ = ["LabReply", "Session", "Subscriber", "page", "respond"]
