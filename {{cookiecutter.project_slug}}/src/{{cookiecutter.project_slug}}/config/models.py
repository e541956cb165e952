"""The models the service serves: one from LLM_* settings, or several from LLM_MODELS."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ModelKind = Literal["chat", "embedding"]


class ModelConfig(BaseModel):
    """One public model name and where it is served.

    Unset fields take the LLM_* settings (LLM_PROVIDER, LLM_BASE_URL, LLM_API_KEY, ...).
    Models with the same provider, base URL and key share one upstream: one pooled
    client, one circuit breaker, one bulkhead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="What clients send as `model`.")
    kind: ModelKind = "chat"
    provider: Literal["fake", "openai"] | None = None
    upstream_model: str | None = Field(default=None, description="The upstream's name for it.")
    base_url: str | None = None
    api_key: SecretStr | None = None
    aliases: tuple[str, ...] = ()
    owned_by: str | None = None
    max_concurrency: int | None = Field(default=None, ge=1)
    # Request parameters this model cannot honour: refused with 400 unsupported_parameter.
    unsupported_parameters: tuple[str, ...] = ()
