"""The caller of a request or WebSocket, whatever the authentication."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

# Browsers cannot set headers on a WebSocket; they can offer subprotocols.
BEARER_SUBPROTOCOL = "bearer."


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the unit that history, jobs and rate limits are kept per.

    `id` is stable and never secret, so it is safe to log and store.
    """

    id: str
    authenticated: bool
    name: str | None = None
    scopes: frozenset[str] = frozenset()


def anonymous(connection: HTTPConnection) -> Principal:
    """A caller without credentials, known by its address (per-IP limits key on it)."""
    host = connection.client.host if connection.client else "unknown"
    return Principal(id=f"ip:{host}", authenticated=False)


def bearer_subprotocol(connection: HTTPConnection) -> str | None:
    """The `bearer.<credential>` subprotocol a WebSocket client offered, if any."""
    for offered in connection.scope.get("subprotocols", ()):
        if offered.startswith(BEARER_SUBPROTOCOL) and len(offered) > len(BEARER_SUBPROTOCOL):
            return str(offered)
    return None
