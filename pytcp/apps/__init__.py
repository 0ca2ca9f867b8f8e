"""pytcp.apps: the services and the client that ``pytcp up`` and ``pytcp get`` run.

Every service is a coroutine ``serve_x(reader, writer)`` written against asyncio's own
``StreamReader``/``StreamWriter``, so it runs unchanged over the kernel's TCP (tests) and over
pytcp (``pytcp.api.aio``):

- ``http_server.serve_http``: HTTP/1.1 (h11) files under a root, or the status page;
- ``echo.serve_echo``: RFC 862; ``discard.serve_discard``: RFC 863;
- ``http_client.fetch``: the HTTP/1.1 GET behind ``pytcp get``;
- ``status``: a snapshot of a stack's connections, counters and drops, as HTML or JSON;
- ``streams``: closing a writer politely and within a bounded time.
"""
