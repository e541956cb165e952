"""API keys: `Authorization: Bearer <key>` (what OpenAI clients send), `X-API-Key: <key>`,
or on a WebSocket the `bearer.<key>` subprotocol.

Keys are known by their SHA-256 digest: the presented key is hashed once and compared
with `hmac.compare_digest`, so neither its length nor its first differing byte shows in
the time an answer takes. Without any key the service refuses every call, unless
ALLOW_ANONYMOUS=true (never in production).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

from pydantic import SecretStr
from starlette.requests import HTTPConnection

from ..core.logging import get_logger
from .credentials import presented_bearer, refusal
from .principal import Principal, anonymous

if TYPE_CHECKING:
    from ..services import Services

logger = get_logger(__name__)

KEY_HEADER = "X-API-Key"
# How OpenAPI describes the two ways, so that /docs offers both in its Authorize dialog.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "APIKeyBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key as a bearer token: `Authorization: Bearer <key>`.",
    },
    "APIKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": KEY_HEADER,
        "description": f"An API key in the `{KEY_HEADER}` header.",
    },
}


def key_digest(key: str) -> str:
    """The SHA-256 hex digest a key is stored and looked up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key: str) -> str:
    """A stable, non-secret name for a key, safe to log and store."""
    return id_of_digest(key_digest(key))


def id_of_digest(digest: str) -> str:
    return "key_" + digest[:16]


class KeyRevokedError(Exception):
    """The key was one of ours, and has been revoked."""


class KeyTable(Protocol):
    """Keys kept beside API_KEYS (the database's `api_keys` table)."""

    async def principal(self, digest: str) -> Principal | None:
        """The key's principal; None for an unknown key, KeyRevokedError for a revoked one."""
        ...


class APIKeys:
    """The keys a caller may present: API_KEYS, and a key table when there is one."""

    def __init__(
        self,
        configured: Iterable[SecretStr],
        *,
        allow_anonymous: bool = False,
        table: KeyTable | None = None,
    ) -> None:
        self.digests = tuple(key_digest(key.get_secret_value()) for key in configured)
        self.allow_anonymous = allow_anonymous
        self.table = table

    async def principal(self, key: str) -> Principal | None:
        """The principal a presented key belongs to, or None when it is no key of ours."""
        digest = key_digest(key).encode()
        # Compared with every configured key, so the time taken does not say which matched.
        matched = [hmac.compare_digest(digest, known.encode()) for known in self.digests]
        if any(matched):
            return Principal(id=key_id(key), authenticated=True)
        if self.table is not None:
            return await self.table.principal(digest.decode())
        return None


def attach_api_keys(services: Services, table: KeyTable | None = None) -> None:
    """Give the services the keys of API_KEYS (and `table`); say when none can get in."""
    settings = services.settings
    services.api_keys = APIKeys(
        settings.api_keys, allow_anonymous=settings.allow_anonymous, table=table
    )
    if settings.allow_anonymous:
        logger.warning("ALLOW_ANONYMOUS=true: callers without a key are served as anonymous")
    elif not settings.api_keys and table is None:
        logger.warning("API_KEYS is empty: every call that needs a key will be refused")


async def authenticate(connection: HTTPConnection) -> Principal:
    """The caller, from its API key; 401 (a refused handshake on a WebSocket) otherwise."""
    keys = cast("Services", connection.state.services).api_keys
    key = presented_bearer(connection) or connection.headers.get(KEY_HEADER, "").strip() or None
    if key is None:
        if keys.allow_anonymous:
            return anonymous(connection)
        raise refusal(
            connection,
            "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
            code="missing_api_key",
        )
    try:
        principal = await keys.principal(key)
    except KeyRevokedError:
        raise refusal(
            connection,
            "This API key has been revoked.",
            code="revoked_api_key",
            challenge='Bearer error="invalid_token"',
        ) from None
    if principal is None:
        raise refusal(
            connection,
            "Invalid API key.",
            code="invalid_api_key",
            challenge='Bearer error="invalid_token"',
        )
    return principal
