"""What every request passes through on its way in and out, in one pure ASGI pass.

In order: the request id (accepted or made, bound to the log context, echoed); the
access log line; refusing new work while the process drains, and counting what is in
flight; the body limit; the security headers; and last, an unexpected exception turned
into a logged 500. Work a route defers with `after_response` (settling rate limits)
runs once the response has been sent, a stream's last byte included.

Each concern is a small function in its own module; sharing one pass means one wrapper
around `send` and one look at the headers per request, where a middleware per concern
would wrap each message once for each of them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.lifecycle import Lifecycle
from ..core.logging import get_logger
from .access_log import log_request
from .body_limit import BodyTooLargeError, counted, too_large
from .draining import EXEMPT_PREFIXES, shutting_down
from .errors import internal_error
from .request_id import REQUEST_ID_HEADER, accept_request_id
from .security_headers import security_headers

RawHeaders = list[tuple[bytes, bytes]]
Deferred = Callable[[], Awaitable[None]]
REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
AFTER_RESPONSE = "after_response"
logger = get_logger(__name__)


def after_response(scope: Scope, work: Deferred) -> None:
    """Run `work` once this request's response has been sent (or has failed)."""
    scope["state"][AFTER_RESPONSE].append(work)


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, *, lifecycle: Lifecycle, max_body_bytes: int, hsts: bool
    ) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.max_body_bytes = max_body_bytes
        self.defaults = [
            (name.lower().encode(), value.encode())
            for name, value in security_headers(hsts=hsts).items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        incoming = ""  # the client's request id
        declared: int | None = None  # its Content-Length
        for name, value in scope["headers"]:  # ASGI header names are lower case
            if name == REQUEST_ID:
                incoming = value.decode("latin-1")
            elif name == b"content-length" and value.isdigit():
                declared = int(value)
        request_id = accept_request_id(incoming)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state[AFTER_RESPONSE] = []
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            if scope["type"] == "http":
                await self.http(scope, receive, send, request_id, declared)
            else:
                await self.app(scope, receive, send)

    async def http(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, declared: int | None
    ) -> None:
        start = time.perf_counter()
        status = 0
        echoed = (REQUEST_ID, request_id.encode())

        async def send_edge(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = self.finish_headers(message.get("headers", ()), echoed)
            await send(message)

        try:
            refusal = self.refusal(scope, declared)
            if refusal is not None:
                await refusal(scope, receive, send_edge)
                return
            if declared is None:  # chunked: counted as it arrives
                receive = counted(receive, self.max_body_bytes)
            self.lifecycle.work_started()
            try:
                await self.app(scope, receive, send_edge)
            except BodyTooLargeError:
                if status:  # read outside a route, after its answer began
                    raise
                await too_large(self.max_body_bytes)(scope, receive, send_edge)
            except Exception:
                response = internal_error(scope)
                if status:  # headers are gone: the server can only abort the connection
                    raise
                await response(scope, receive, send_edge)
            finally:
                await run_deferred(scope["state"][AFTER_RESPONSE])
                self.lifecycle.work_finished()
        finally:
            log_request(scope, status or 500, time.perf_counter() - start)

    def refusal(self, scope: Scope, declared: int | None) -> Response | None:
        if self.lifecycle.refusing and not scope["path"].startswith(EXEMPT_PREFIXES):
            return shutting_down()
        if declared is not None and declared > self.max_body_bytes:
            return too_large(self.max_body_bytes)
        return None

    def finish_headers(self, headers: RawHeaders, echoed: tuple[bytes, bytes]) -> RawHeaders:
        """The response's headers, with the request id and any security header it lacks."""
        raw = [(name, value) for name, value in headers if name.lower() != REQUEST_ID]
        present = {name.lower() for name, _ in raw}
        raw.extend(header for header in self.defaults if header[0] not in present)
        raw.append(echoed)
        return raw


async def run_deferred(works: list[Deferred]) -> None:
    for work in works:
        try:
            await work()
        except Exception:  # the response is sent: nothing left to tell the client
            logger.exception("work after the response failed")
