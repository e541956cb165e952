"""Configuration: the only module that reads the environment (and `.env`).

The fields every deployment has are here; each optional module keeps its own in
`config/`, and `Settings` is the sum of them.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
{% if cookiecutter.auth == "api_key" %}
from .config.api_keys import APIKeySettings
{%- endif %}
from .config.common import CommaList, HostPatterns, ProxyAddresses, SettingsPart
{%- if cookiecutter.database != "none" %}
from .config.database import DatabaseSettings
{%- endif %}
{%- if cookiecutter.use_graphql %}
from .config.graphql import GraphQLSettings
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
from .config.jwt import JWTSettings
{%- endif %}
{%- if cookiecutter.use_prometheus and cookiecutter.use_redis %}
from .config.metrics import MetricsSettings
{%- endif %}
from .config.models import ModelConfig
from .config.ratelimit import RateLimitSettings
{%- if cookiecutter.use_redis %}
from .config.redis import RedisSettings
{%- endif %}
from .config.responses import ResponsesSettings
{%- if cookiecutter.use_websocket %}
from .config.websocket import WebSocketSettings
{%- endif %}

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(
{%- if cookiecutter.auth == "api_key" %}
    APIKeySettings,
{%- elif cookiecutter.auth == "jwt" %}
    JWTSettings,
{%- endif %}
{%- if cookiecutter.database != "none" %}
    DatabaseSettings,
{%- endif %}
    RateLimitSettings,
{%- if cookiecutter.use_redis %}
    RedisSettings,
{%- endif %}
{%- if cookiecutter.use_prometheus and cookiecutter.use_redis %}
    MetricsSettings,
{%- endif %}
{%- if cookiecutter.use_websocket %}
    WebSocketSettings,
{%- endif %}
{%- if cookiecutter.use_graphql %}
    GraphQLSettings,
{%- endif %}
    ResponsesSettings,
    SettingsPart,
    BaseSettings,
):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: LogLevel = "INFO"
    log_format: Literal["json", "console"] = "json"
    # On SIGTERM: readiness 503 but still serving for DRAIN_DELAY_S, then in-flight work
    # gets DRAIN_TIMEOUT_S to finish (see core/lifecycle.py).
    drain_delay_s: float = Field(default=5.0, ge=0)
    drain_timeout_s: float = Field(default=30.0, gt=0)

    llm_provider: Literal["fake", "openai"] = "fake"
    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str = "fake-model"
    # The embedding model: empty means "fake-embedding" with the fake provider, none otherwise.
    llm_embedding_model: str = ""
    # Several models (JSON list of ModelConfig), or a TOML file with [[models]] tables.
    llm_models: tuple[ModelConfig, ...] = ()
    llm_models_file: Path | None = None
    llm_timeout_s: float = Field(default=30.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_max_concurrency: int = Field(default=64, ge=1)
    # The circuit opens when, over the window, at least MIN_CALLS calls ended and
    # FAILURE_RATE of them failed; it stays open RESET_S, then lets one call try.
    llm_breaker_window_s: float = Field(default=30.0, gt=0)
    llm_breaker_min_calls: int = Field(default=10, ge=1)
    llm_breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    llm_breaker_reset_s: float = Field(default=30.0, gt=0)
    fake_llm_token_latency_ms: float = Field(default=0.0, ge=0)
    fake_llm_failure_rate: float = Field(default=0.0, ge=0, le=1)
    fake_llm_fail_after_tokens: int | None = Field(default=None, ge=0)

    cache_ttl_s: float = Field(default=300.0, ge=0)
    # Cached answers are each caller's own (principal), or shared by every caller (global).
    cache_scope: Literal["principal", "global"] = "principal"
    cache_max_entries: int = Field(default=10_000, ge=1)
    batch_max_items: int = Field(default=32, ge=1)
    batch_concurrency: int = Field(default=8, ge=1)
    job_queue_size: int = Field(default=1000, ge=1)
    job_workers: int = Field(default=4, ge=1)
    job_retention_s: float = Field(default=3600.0, gt=0)
    cpu_workers: int = Field(default=2, ge=1)
    sse_ping_interval_s: float = Field(default=15.0, gt=0)

    cors_origins: CommaList = ()
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    force_https: bool = False
    # Host headers served (`api.example.com`, `*.example.com`); empty serves any host.
    trusted_hosts: HostPatterns = ()
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses, networks, `*`).
    forwarded_allow_ips: ProxyAddresses = ("127.0.0.1", "::1")
    max_prompt_chars: int = Field(default=100_000, ge=1)
    # Readiness results are reused this long, so frequent probes cost one check.
    readiness_cache_s: float = Field(default=1.0, ge=0)

    @field_validator("log_level", mode="before")
    @classmethod
    def upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def read_models_file(self) -> Settings:
        if self.llm_models_file is None:
            return self
        if self.llm_models:
            raise ValueError("set LLM_MODELS or LLM_MODELS_FILE, not both")
        try:
            data = tomllib.loads(self.llm_models_file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"LLM_MODELS_FILE {self.llm_models_file}: {exc}") from exc
        models = tuple(ModelConfig.model_validate(entry) for entry in data.get("models", []))
        object.__setattr__(self, "llm_models", models)  # frozen: set once, while validating
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
