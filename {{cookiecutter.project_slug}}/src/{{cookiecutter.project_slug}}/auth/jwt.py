"""JWT access tokens (auth=jwt).

`POST /api/v1/auth/token` issues them to the users of the database (OAuth2 password
flow); clients send them back as `Authorization: Bearer <token>`, or on a WebSocket as
the `bearer.<token>` subprotocol. A token is checked without a database read: its
signature, `exp`, `iss` and `aud`; its `scope` claim becomes the principal's scopes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import jwt
from starlette.requests import HTTPConnection

from ..settings import Settings
from .credentials import presented_bearer, refusal
from .principal import Principal

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a password
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
# Replicas' clocks differ a little: a token is neither expired nor early by less than this.
CLOCK_LEEWAY = timedelta(seconds=10)

# How OpenAPI describes it: /docs' Authorize dialog logs in through TOKEN_URL.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "OAuth2Password": {
        "type": "oauth2",
        "flows": {"password": {"scopes": {}, "tokenUrl": TOKEN_URL}},
        "description": f"A user's access token from `POST {TOKEN_URL}`.",
    }
}

# What went wrong with a token, as the caller is told (message, code); most specific first.
TOKEN_PROBLEMS: tuple[tuple[type[jwt.InvalidTokenError], str, str], ...] = (
    (
        jwt.ExpiredSignatureError,
        f"The token has expired: get a new one from POST {TOKEN_URL}.",
        "token_expired",
    ),
    (jwt.InvalidAudienceError, "The token is meant for another audience.", "invalid_audience"),
    (jwt.InvalidIssuerError, "The token was issued by someone else.", "invalid_issuer"),
    (jwt.InvalidSignatureError, "The token's signature does not verify.", "invalid_signature"),
    (jwt.InvalidAlgorithmError, "The token is signed with another algorithm.", "invalid_algorithm"),
    (jwt.DecodeError, "The token is malformed: it is not a signed JWT.", "malformed_token"),
)


class SecretUnsetError(Exception):
    """JWT_SECRET is empty (development only): no token can be issued or checked."""

    message = "JWT_SECRET is not set: the service can neither issue nor accept tokens."


def signing_key(settings: Settings) -> str:
    secret = settings.jwt_secret.get_secret_value()
    if not secret:
        raise SecretUnsetError(SecretUnsetError.message)
    return secret


def issue_token(
    settings: Settings, *, subject: str, name: str, scopes: Iterable[str]
) -> tuple[str, int]:
    """A signed access token for `subject`, and its lifetime in seconds."""
    now = datetime.now(UTC)
    lifetime = timedelta(minutes=settings.jwt_expire_minutes)
    claims: dict[str, Any] = {
        "sub": subject,
        "name": name,
        "scope": " ".join(sorted(scopes)),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, signing_key(settings), settings.jwt_algorithm)
    return token, int(lifetime.total_seconds())


def token_problem(exc: jwt.InvalidTokenError) -> tuple[str, str]:
    """The message and code for a token that did not verify."""
    for kind, message, code in TOKEN_PROBLEMS:
        if isinstance(exc, kind):
            return message, code
    return f"The token is invalid: {exc}.", "invalid_token"


def claims_of(settings: Settings, token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key(settings),
        algorithms=[settings.jwt_algorithm],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway=CLOCK_LEEWAY,
        options={"require": REQUIRED_CLAIMS},
    )
    return claims


async def authenticate(connection: HTTPConnection) -> Principal:
    """The caller, from its access token; 401 (a refused handshake on a WebSocket) otherwise."""
    token = presented_bearer(connection)
    if token is None:
        raise refusal(
            connection,
            f"Missing access token: send 'Authorization: Bearer <token>' (POST {TOKEN_URL}).",
            code="missing_token",
        )
    try:
        claims = claims_of(cast(Settings, connection.app.state.settings), token)
    except SecretUnsetError as exc:
        raise refusal(connection, exc.message, code="jwt_secret_unset", status_code=503) from None
    except jwt.InvalidTokenError as exc:
        message, code = token_problem(exc)
        raise refusal(
            connection, message, code=code, challenge='Bearer error="invalid_token"'
        ) from None
    return Principal(
        id=f"user:{claims['sub']}",
        authenticated=True,
        name=str(claims.get("name") or claims["sub"]),
        scopes=frozenset(str(claims.get("scope", "")).split()),
    )
