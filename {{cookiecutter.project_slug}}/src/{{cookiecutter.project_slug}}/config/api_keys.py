"""Settings of API-key authentication (auth=api_key)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BeforeValidator, SecretStr, model_validator
from pydantic_settings import NoDecode

from .common import SettingsPart, split_commas

MIN_KEY_LENGTH = 16
EXAMPLE_VALUE = "change-me"


class APIKeySettings(SettingsPart):
{%- if cookiecutter.database != "none" %}
    # Comma-separated client keys, beside those of the api_keys table (`create-api-key`).
{%- else %}
    # Comma-separated client keys.
{%- endif %}
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(split_commas)] = ()
    # Serve callers that present no key, as anonymous (known by their address).
    allow_anonymous: bool = False

    @model_validator(mode="after")
    def refuse_unsafe_production_keys(self) -> Self:
        if self.environment != "production":
            return self
        if self.allow_anonymous:
            raise ValueError(
                "ENVIRONMENT=production refuses ALLOW_ANONYMOUS=true: every caller needs a key"
            )
        keys = [key.get_secret_value() for key in self.api_keys]
{%- if cookiecutter.database != "none" %}
        if any(len(key) < MIN_KEY_LENGTH or key == EXAMPLE_VALUE for key in keys):
            raise ValueError(
                f"ENVIRONMENT=production needs every API_KEYS entry to be a random key of "
                f"{MIN_KEY_LENGTH}+ characters (or API_KEYS empty, with keys from create-api-key)"
            )
{%- else %}
        if not keys or any(len(key) < MIN_KEY_LENGTH or key == EXAMPLE_VALUE for key in keys):
            raise ValueError(
                f"ENVIRONMENT=production needs API_KEYS set to random keys of {MIN_KEY_LENGTH}+ "
                "characters (`make install` wrote one to .env)"
            )
{%- endif %}
        return self
