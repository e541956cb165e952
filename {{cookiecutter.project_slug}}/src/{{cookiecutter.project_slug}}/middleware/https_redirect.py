"""Redirect plain-HTTP requests to HTTPS (FORCE_HTTPS), sparing the health probes.

Behind a proxy, run uvicorn with proxy headers (FORWARDED_ALLOW_IPS) so the scheme
the client used is the one seen here.
"""

from __future__ import annotations

from starlette.datastructures import URL
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

EXEMPT_PREFIXES = ("/health",)


class HTTPSRedirectMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        insecure = scope["type"] == "http" and scope["scheme"] == "http"
        if not insecure or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        url = URL(scope=scope)
        netloc = url.hostname if url.port in {80, None} else url.netloc
        secure_url = url.replace(scheme="https", netloc=netloc or "")
        await RedirectResponse(str(secure_url), status_code=308)(scope, receive, send)
