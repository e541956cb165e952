"""Settings of JWT authentication (auth=jwt): access tokens for the users of the database."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from .common import CommaList, SettingsPart

# HMAC keys at least as long as the hash's output (RFC 7518, section 3.2).
MIN_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


class JWTSettings(SettingsPart):
    # Signs and checks the access tokens: a long random value, the same on every replica.
    # Empty (allowed outside production), the service issues and accepts no token.
    jwt_secret: SecretStr = SecretStr("")
    jwt_expire_minutes: int = Field(default=30, ge=1, le=24 * 60)
    jwt_issuer: str = "{{ cookiecutter.project_slug }}"
    jwt_audience: str = "{{ cookiecutter.project_slug }}"
    # The service signs and checks its own tokens, so a shared-secret HMAC is enough.
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    # Scopes `create-user` gives a user when it is given none.
    jwt_default_scopes: CommaList = ()
    # Sign-in attempts a minute at the token endpoint, per client address and per
    # username (password guessing); 0: unlimited.
    rate_limit_login_per_minute: int = Field(default=10, ge=0)

    @model_validator(mode="after")
    def refuse_weak_secret(self) -> Self:
        secret = self.jwt_secret.get_secret_value()
        shortest = MIN_SECRET_BYTES[self.jwt_algorithm]
        if not secret and self.environment == "production":
            raise ValueError(
                f"ENVIRONMENT=production needs JWT_SECRET set to a random value of {shortest}+ "
                "characters (`make install` wrote one to .env)"
            )
        # Everywhere: a short HMAC key makes tokens forgeable (`change-me` is short too).
        if secret and len(secret.encode()) < shortest:
            raise ValueError(
                f"JWT_SECRET is shorter than {shortest} characters, too short for "
                f"{self.jwt_algorithm}: use a random value (`make install` wrote one to .env)"
            )
        return self
