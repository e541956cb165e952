"""Serve only the host names in TRUSTED_HOSTS, so a forged Host header cannot steer
redirects and links; other hosts get a 400 with the usual error body.

The health probes are exempt: the kubelet calls them with the pod's IP as Host, which
no host list can know in advance, and they answer nothing built from the host.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.errors import error_response
from ..core.logging import get_logger

EXEMPT_PREFIXES = ("/health",)
logger = get_logger("trusted_hosts")


def host_of(header: str) -> str:
    """`Example.com:8000` -> `example.com`; `[::1]:8000` -> `[::1]`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.partition("]")[0] + "]"
    return header.partition(":")[0]


class TrustedHostMiddleware:
    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.exact = {host for host in allowed_hosts if not host.startswith("*")}
        # `*.example.com` admits sub.example.com (and deeper), not example.com itself.
        self.suffixes = tuple(host[1:] for host in allowed_hosts if host.startswith("*."))
        self.allow_any = "*" in allowed_hosts

    def allowed(self, host: str) -> bool:
        return host in self.exact or (bool(self.suffixes) and host.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        host = host_of(Headers(scope=scope).get("host", ""))
        if self.allowed(host) or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        logger.warning("untrusted host refused", host=host[:255])
        if scope["type"] == "websocket":
            # Closing before accepting refuses the handshake (the client sees HTTP 403).
            await send({"type": "websocket.close", "code": 1008, "reason": "untrusted host"})
            return
        response = error_response(
            400, "The Host header names a host this service does not serve.", code="invalid_host"
        )
        await response(scope, receive, send)
