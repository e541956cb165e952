"""Reading a presented credential and refusing a missing or bad one (HTTP and WebSocket)."""

from __future__ import annotations

from fastapi import status
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection

from ..core.errors import APIError
from .principal import BEARER_SUBPROTOCOL, bearer_subprotocol


def presented_bearer(connection: HTTPConnection) -> str | None:
    """The bearer credential: `Authorization: Bearer <it>`, else the WebSocket subprotocol."""
    scheme, _, credential = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip()
    offered = bearer_subprotocol(connection)
    return offered[len(BEARER_SUBPROTOCOL) :] if offered else None


def refusal(
    connection: HTTPConnection,
    message: str,
    *,
    code: str,
    challenge: str = "Bearer",
    status_code: int = 401,
) -> APIError | WebSocketException:
    """401 on HTTP; on a WebSocket, a close before the handshake (the client sees HTTP 403)."""
    if connection.scope["type"] == "websocket":
        return WebSocketException(status.WS_1008_POLICY_VIOLATION, message)
    return APIError(status_code, message, code=code, headers={"WWW-Authenticate": challenge})
