"""Build the configured provider (called once, in the lifespan)."""

from __future__ import annotations

from ..settings import Settings
from .base import Provider
from .fake import FakeProvider


def build_provider(settings: Settings) -> Provider:
    return FakeProvider(
        model=settings.llm_model, token_latency_s=settings.fake_llm_token_latency_ms / 1000
    )
