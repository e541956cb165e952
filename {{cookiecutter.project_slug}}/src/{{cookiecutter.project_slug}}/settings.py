"""Configuration: the only module that reads the environment (and `.env`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Environment = Literal["development", "test", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    environment: Environment = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: LogLevel = "INFO"
    log_format: Literal["json", "console"] = "json"

    llm_provider: Literal["fake", "openai"] = "fake"
    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str = "fake-model"
    llm_timeout_s: float = Field(default=30.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_max_concurrency: int = Field(default=64, ge=1)
    llm_breaker_failures: int = Field(default=5, ge=1)
    llm_breaker_reset_s: float = Field(default=30.0, gt=0)
    fake_llm_token_latency_ms: float = Field(default=0.0, ge=0)
    fake_llm_failure_rate: float = Field(default=0.0, ge=0, le=1)
    fake_llm_fail_after_tokens: int | None = Field(default=None, ge=0)

    cache_ttl_s: float = Field(default=300.0, ge=0)
    cache_max_entries: int = Field(default=10_000, ge=1)
    batch_max_items: int = Field(default=32, ge=1)
    batch_concurrency: int = Field(default=8, ge=1)
    job_queue_size: int = Field(default=1000, ge=1)
    job_workers: int = Field(default=4, ge=1)
    job_retention_s: float = Field(default=3600.0, gt=0)
    cpu_workers: int = Field(default=2, ge=1)
    sse_ping_interval_s: float = Field(default=15.0, gt=0)
{%- if cookiecutter.use_websocket %}
    ws_idle_timeout_s: float = Field(default=300.0, gt=0)
{%- endif %}
{%- if cookiecutter.database == "sqlite" %}

    # `sqlite:///path` or `postgresql://user:pass@host/db`; the async driver is added.
    database_url: str = "sqlite:///./data/{{ cookiecutter.project_slug }}.db"
{%- elif cookiecutter.database == "postgresql" %}

    # `postgresql://user:pass@host/db`; the async driver (asyncpg) is added.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/{{ cookiecutter.project_slug }}"
{%- endif %}
{%- if cookiecutter.database != "none" %}
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    db_statement_timeout_s: float = Field(default=15.0, gt=0)
    # Keep prompt and completion text in the generation log (off: only counts and timings).
    store_prompts: bool = False
{%- endif %}
{%- if cookiecutter.use_redis %}

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "{{ cookiecutter.project_slug }}:"
    redis_timeout_s: float = Field(default=2.0, gt=0)
    redis_max_connections: int = Field(default=50, ge=1)
    # Jobs in the worker process: a running job reports every JOB_HEARTBEAT_S / 3 s; one
    # silent for JOB_HEARTBEAT_S (its worker died) runs again, up to JOB_MAX_ATTEMPTS runs.
    job_timeout_s: int = Field(default=300, ge=1)
    job_heartbeat_s: int = Field(default=15, ge=1)
    job_max_attempts: int = Field(default=3, ge=1)
    job_shutdown_grace_s: int = Field(default=20, ge=0)
{%- endif %}

    # Comma-separated bearer keys; empty disables authentication outside production.
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    force_https: bool = False

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        keys = [key.get_secret_value() for key in self.api_keys]
        if not keys or any(len(key) < 16 or key == "change-me" for key in keys):
            raise ValueError(
                "ENVIRONMENT=production needs API_KEYS set to random keys of 16+ characters "
                "(the post-generation hook wrote one to .env)"
            )
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

{%- if not cookiecutter.use_redis %}

    @property
    def job_stale_after_s(self) -> float:
        """Longer than any job can run: every try waits at most LLM_TIMEOUT_S, plus backoff."""
        return (self.llm_max_retries + 1) * (self.llm_timeout_s + 10) + 30
{%- endif %}


@lru_cache
def get_settings() -> Settings:
    return Settings()
