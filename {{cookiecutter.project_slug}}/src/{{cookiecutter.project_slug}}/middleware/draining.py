"""Count requests in flight, and refuse new ones once the process is draining.

The count is what the drain waits for (`core/lifecycle.py`); health probes are always
answered, so readiness can say 503 itself.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.errors import error_response
from ..core.lifecycle import Lifecycle

EXEMPT_PREFIXES = ("/health",)
RETRY_AFTER_S = "5"


class DrainMiddleware:
    def __init__(self, app: ASGIApp, *, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lifecycle = self.lifecycle
        if lifecycle.refusing and not scope["path"].startswith(EXEMPT_PREFIXES):
            response = error_response(
                503,
                "The server is shutting down; send the request again.",
                code="shutting_down",
                headers={"Retry-After": RETRY_AFTER_S, "Connection": "close"},
            )
            await response(scope, receive, send)
            return
        lifecycle.work_started()
        try:
            await self.app(scope, receive, send)
        finally:
            lifecycle.work_finished()
