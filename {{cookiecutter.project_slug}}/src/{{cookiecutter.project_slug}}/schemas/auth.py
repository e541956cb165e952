from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TokenResponse(BaseModel):
    """An OAuth2 access token (RFC 6749, section 5.1)."""

    access_token: str = Field(examples=["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"])
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the token's kind, not a secret
    expires_in: int = Field(description="Seconds until the token expires.", examples=[1800])
    scope: str = Field(default="", description="The granted scopes, space-separated.")
