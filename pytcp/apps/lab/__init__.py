"""The backend-communication patterns lab (issue 13): one page at ``/lab/`` with a card per
pattern — request/response, short polling, long polling, server-sent events, pub/sub over
SSE, pub/sub over WebSocket — that runs it live from the browser and shows, next to each
message, the TCP connections it used and what pytcp counted on them (segments, bytes,
lifetime).

``state`` holds the jobs, topics, bounds and connection records (no I/O); ``http`` the routes
on the h11 session of ``pytcp.apps.http_server`` (``serve_http(..., lab=Lab())``), including
SSE streaming and the hand-over of an upgraded connection to wsproto; ``static/index.html``
the page (HTML, CSS and JavaScript in one file, nothing fetched from elsewhere).
"""

from pytcp.apps.lab.state import Lab

__all__ = ["Lab"]
