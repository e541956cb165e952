"""The HTTP series, in one pure ASGI pass around the app.

The names and labels are prometheus-fastapi-instrumentator's (dashboards and alert rules
written for it work unchanged): requests by route template, method and status; the time
to the response headers (for streams: to their start); body sizes from Content-Length;
and the requests in progress, which the in-flight autoscaler reads.

The route template is read after the app has handled the request: the API route FastAPI
selected is in the scope by then, so nothing is matched twice. A request no API route
took (refused while draining or for its size before routing; the docs pages) is matched
here, against every route, by the instrumentator's own lookup, its answer remembered per
path. A path no route serves is not counted: each would make a series of its own.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram, Summary
from prometheus_fastapi_instrumentator.routing import get_route_name
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNCOUNTED_PATHS = ("/metrics", "/health")  # scrapes and probes, not traffic
HTTP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
FINE_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75),
    *(1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10, 30, 60),
)

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by method, status code and route template.",
    ["method", "status", "handler"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to the response headers (streams: to their start), by method and route template.",
    ["method", "handler"],
    buckets=HTTP_BUCKETS,
)
HTTP_DURATION_FINE = Histogram(
    "http_request_duration_highr_seconds",
    "Time to the response headers, every route together, in finer buckets.",
    buckets=FINE_BUCKETS,
)
HTTP_REQUEST_SIZE = Summary(
    "http_request_size_bytes", "Request bodies by route template (Content-Length).", ["handler"]
)
HTTP_RESPONSE_SIZE = Summary(
    "http_response_size_bytes",
    "Response bodies by route template (Content-Length; 0 for streams).",
    ["handler"],
)
HTTP_IN_PROGRESS = Gauge(
    "http_requests_inprogress",
    "HTTP requests being served, health probes and scrapes aside.",
    multiprocess_mode="livesum",
)


def content_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return 0


class HTTPMetricsMiddleware:
    REMEMBERED = 1024  # paths answered before routing; the oldest is forgotten first

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._unrouted: dict[tuple[str, str, str], str | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNCOUNTED_PATHS):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500  # what an exception that escapes the app becomes
        headers_at: float | None = None
        sent_size = 0

        async def send_counted(message: Message) -> None:
            nonlocal status, headers_at, sent_size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers_at = time.perf_counter()
                sent_size = content_length(message.get("headers", []))
            await send(message)

        HTTP_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_counted)
        finally:
            HTTP_IN_PROGRESS.dec()
            handler = self.route_template(scope, root_path)
            if handler is not None:
                duration = (headers_at or time.perf_counter()) - start
                method = scope["method"]
                HTTP_REQUESTS.labels(method, str(status), handler).inc()
                HTTP_DURATION.labels(method, handler).observe(duration)
                HTTP_DURATION_FINE.observe(duration)
                HTTP_REQUEST_SIZE.labels(handler).observe(content_length(scope["headers"]))
                HTTP_RESPONSE_SIZE.labels(handler).observe(sent_size)

    def route_template(self, scope: Scope, root_path: str) -> str | None:
        """The template of the route that served the request, None if no route does."""
        template = getattr(scope.get("route"), "path", None)
        if isinstance(template, str):
            # A mount the request went through added its path to root_path.
            mounted: str = scope.get("root_path", "")[len(root_path) :]
            return mounted + template
        key = (scope["method"], scope["path"], root_path)
        if key not in self._unrouted:
            if len(self._unrouted) >= self.REMEMBERED:
                del self._unrouted[next(iter(self._unrouted))]
            unrouted = {**scope, "root_path": root_path}
            self._unrouted[key] = get_route_name(
                HTTPConnection(unrouted), should_include_root_path=False
            )
        return self._unrouted[key]
