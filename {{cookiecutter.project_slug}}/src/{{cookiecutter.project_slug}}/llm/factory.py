"""Build the configured provider (called once, in the lifespan)."""

from __future__ import annotations

from ..settings import Settings
from .base import Provider
from .fake import FakeProvider
from .openai_compat import OpenAICompatibleProvider
from .resilience import CircuitBreaker, ResilientProvider


def build_provider(settings: Settings) -> Provider:
    """The raw provider for LLM_PROVIDER, wrapped in bulkhead, breaker and retries."""
    raw: Provider
    if settings.llm_provider == "openai":
        raw = OpenAICompatibleProvider(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value(),
            model=settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            max_connections=settings.llm_max_concurrency,
        )
    else:
        raw = FakeProvider(
            model=settings.llm_model,
            token_latency_s=settings.fake_llm_token_latency_ms / 1000,
            failure_rate=settings.fake_llm_failure_rate,
            fail_after_tokens=settings.fake_llm_fail_after_tokens,
        )
    return ResilientProvider(
        raw,
        max_retries=settings.llm_max_retries,
        max_concurrency=settings.llm_max_concurrency,
        breaker=CircuitBreaker(
            failure_threshold=settings.llm_breaker_failures,
            reset_timeout_s=settings.llm_breaker_reset_s,
        ),
    )
