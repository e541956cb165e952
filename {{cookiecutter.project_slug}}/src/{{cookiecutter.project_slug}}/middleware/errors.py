"""Last line of defence: an unexpected exception becomes a logged 500 with the error body.

It sits inside the request-id and access-log middleware, so the 500 still carries
`X-Request-ID` and the log line that holds the traceback carries the request id.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import error_response
from ..core.logging import get_logger

logger = get_logger("errors")


class UnhandledErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            logger.exception("unhandled error", path=scope["path"])
            if started:
                # Headers are gone: the server can only abort the connection.
                raise
            response = error_response(
                500, "The server failed to handle this request.", code="internal_error"
            )
            await response(scope, receive, send)
