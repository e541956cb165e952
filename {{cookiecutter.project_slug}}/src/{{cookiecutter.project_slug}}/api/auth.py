"""`POST /api/v1/auth/token`: the OAuth2 password flow (a form body), as /docs' Authorize uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from ..auth.jwt import SecretUnsetError, issue_token, signing_key
from ..auth.passwords import user_with_password
from ..core.errors import APIError
from ..db.deps import SessionDep
from ..schemas.auth import TokenResponse
from ..schemas.errors import ERROR_RESPONSES
from .deps import SettingsDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/token",
    summary="Exchange a username and password for an access token",
    responses={
        400: ERROR_RESPONSES[422] | {"description": "A scope the user does not hold"},
        401: ERROR_RESPONSES[401] | {"description": "Incorrect username or password"},
        422: ERROR_RESPONSES[422],
        503: ERROR_RESPONSES[500] | {"description": "No database, or no JWT_SECRET"},
    },
)
async def issue_access_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> TokenResponse:
    try:
        signing_key(settings)  # checked first: an answer must not depend on the password
    except SecretUnsetError as exc:
        raise APIError(503, exc.message, code="jwt_secret_unset") from None
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
