"""`POST /api/v1/auth/token`: the OAuth2 password flow (a form body), as /docs' Authorize uses."""

from __future__ import annotations

import hashlib
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from starlette.requests import HTTPConnection

from ..auth.jwt import SecretUnsetError, issue_token, signing_key
from ..auth.passwords import user_with_password
from ..core.errors import APIError
from ..core.ratelimit import Limit
from ..db.deps import SessionDep
from ..schemas.auth import TokenResponse
from ..schemas.errors import ERROR_RESPONSES
from ..services import Services
from ..settings import Settings
from .deps import SettingsDep
from .limits import acquire, duration, retry_after

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


async def admit_login(connection: HTTPConnection, username: str) -> None:
    """Count a sign-in attempt for the client's address and for `username`: 429 beyond
    RATE_LIMIT_LOGIN_PER_MINUTE of either, so a guesser cannot spread guesses over
    accounts from one address, nor over addresses against one account."""
    settings = cast(Settings, connection.app.state.settings)
    per_minute = settings.rate_limit_login_per_minute
    if not per_minute:
        return
    address = connection.client.host if connection.client else "unknown"
    # Hashed: attempted usernames (often a password typed in the wrong box) are not kept.
    user = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    limits = [
        Limit(f"login:ip:{address}", per_minute, 1),
        Limit(f"login:user:{user}", per_minute, 1),
    ]
    limiter = cast(Services, connection.state.services).rate_limiter
    decision = await acquire(limiter, limits)
    if not decision.allowed:
        raise APIError(
            429,
            f"Too many sign-in attempts. Please try again in {duration(decision.retry_after_s)}.",
            code="rate_limit_exceeded",
            headers={"Retry-After": retry_after(decision.retry_after_s)},
        )


@router.post(
    "/token",
    summary="Exchange a username and password for an access token",
    responses={
        400: ERROR_RESPONSES[422] | {"description": "A scope the user does not hold"},
        401: ERROR_RESPONSES[401] | {"description": "Incorrect username or password"},
        422: ERROR_RESPONSES[422],
        429: ERROR_RESPONSES[401]
        | {"description": "Too many attempts from this address or for this user"},
        503: ERROR_RESPONSES[500] | {"description": "No database, or no JWT_SECRET"},
    },
)
async def issue_access_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenResponse:
    """OAuth2's password flow (a form body, as /docs' Authorize sends it): a bearer access
    token for a user made by `create-user`, with the scopes asked for (all the user holds
    by default). Sign-in attempts are limited per address and per username.
    """
    try:
        signing_key(settings)  # checked first: an answer must not depend on the password
    except SecretUnsetError as exc:
        raise APIError(503, exc.message, code="jwt_secret_unset") from None
    await admit_login(request, form.username)  # password guessing is limited before argon2
    user = await user_with_password(session, form.username, form.password)
    if user is None:
        raise APIError(
            401,
            "Incorrect username or password.",
            code="invalid_credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
    held = frozenset(user.scopes.split())
    asked = frozenset(form.scopes)
    if not asked <= held:
        missing = " ".join(sorted(asked - held))
        raise APIError(
            400, f"Scopes not granted to this user: {missing}.", code="invalid_scope", param="scope"
        )
    granted = asked or held
    token, lifetime = issue_token(
        settings, subject=str(user.id), name=user.username, scopes=granted
    )
    return TokenResponse(access_token=token, expires_in=lifetime, scope=" ".join(sorted(granted)))
