"""API-key authentication: `Authorization: Bearer <key>` (as OpenAI clients send) or `X-API-Key`."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from pydantic import SecretStr

from .errors import APIError


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the unit that history and rate limits are kept per."""

    id: str
    authenticated: bool


ANONYMOUS = Principal(id="anonymous", authenticated=False)


def key_id(key: str) -> str:
    """A stable, non-secret name for a key, safe to log and store."""
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return x_api_key or None


def authenticate(keys: tuple[SecretStr, ...], presented: str | None) -> Principal:
    """The principal for a presented key; raises 401 unless it matches one of `keys`."""
    if not keys:
        return ANONYMOUS
    if presented is None:
        raise APIError(
            401,
            "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
            code="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    candidate = presented.encode()
    # Compare against every key so the time taken does not reveal which one matched.
    matched = [hmac.compare_digest(candidate, key.get_secret_value().encode()) for key in keys]
    if not any(matched):
        raise APIError(
            401,
            "Invalid API key.",
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return Principal(id=key_id(presented), authenticated=True)
