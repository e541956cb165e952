"""The models this service serves: public names (and aliases) -> an upstream and its model.

Each distinct upstream (provider, base URL, key) gets one provider of its own, so one
pooled client, one circuit breaker and one bulkhead: a failing upstream pauses only
the models it serves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from ..config.models import ModelConfig, ModelKind
from ..core.observe import Observer
from ..settings import Settings
from .base import EmbeddingRequest, GenerationRequest, Provider
from .errors import UnknownModelError, UnsupportedParameterError
from .fake import FAKE_EMBEDDING_MODEL, FakeProvider
from .openai_compat import OpenAICompatibleProvider
from .resilience import CircuitBreaker, ResilientProvider


@dataclass(frozen=True, slots=True)
class ModelRoute:
    name: str  # the public name
    kind: ModelKind
    upstream_model: str
    provider: ResilientProvider
    owned_by: str
    aliases: tuple[str, ...]
    unsupported_parameters: frozenset[str]
    created: int

    def chat_request(self, request: GenerationRequest) -> GenerationRequest:
        """The request as the upstream must see it: its model name, parameters checked."""
        for param in sorted(self.unsupported_parameters):
            if is_set(request, param):
                raise UnsupportedParameterError(param)
        self.provider.check(request)
        return replace(request, model=self.upstream_model)

    def embedding_request(self, request: EmbeddingRequest) -> EmbeddingRequest:
        return replace(request, model=self.upstream_model)


# Values of a parameter that ask for nothing (sending them is the same as not sending them).
NEUTRAL: dict[str, tuple[object, ...]] = {
    "n": (1,),
    "logprobs": (False,),
    "presence_penalty": (0, 0.0),
    "frequency_penalty": (0, 0.0),
}


def is_set(request: GenerationRequest, param: str) -> bool:
    """Whether the request asks for `param` (a value other than a neutral one)."""
    if param in request.extra:
        return True
    value = getattr(request, param, None)
    return value is not None and value not in NEUTRAL.get(param, ()) and value not in ((), {})


class ModelRegistry:
    def __init__(self, routes: list[ModelRoute]) -> None:
        self.routes = routes
        self._by_name = {(route.kind, name): route for route in routes for name in names(route)}

    def resolve(self, name: str, kind: ModelKind = "chat") -> ModelRoute:
        route = self._by_name.get((kind, name))
        if route is None:
            available = [r.name for r in self.routes if r.kind == kind]
            raise UnknownModelError(name, kind=kind, available=available)
        return route

    def find(self, name: str) -> ModelRoute | None:
        """A model of any kind, by public name or alias."""
        return self._by_name.get(("chat", name)) or self._by_name.get(("embedding", name))

    @property
    def providers(self) -> list[ResilientProvider]:
        return list({id(route.provider): route.provider for route in self.routes}.values())

    async def readiness(self) -> str | None:
        """None while every upstream can serve; else which cannot."""
        problems = []
        for provider in self.providers:
            problem = await provider.readiness()
            if problem:
                problems.append(f"{provider.upstream}: {problem}")
        return "; ".join(problems) or None

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()


def names(route: ModelRoute) -> tuple[str, ...]:
    return (route.name, *route.aliases)


def configured_models(settings: Settings) -> list[ModelConfig]:
    """LLM_MODELS when set; otherwise LLM_MODEL (and an embedding model, if any)."""
    if settings.llm_models:
        return list(settings.llm_models)
    models = [ModelConfig(name=settings.llm_model)]
    embedding = settings.llm_embedding_model or (
        FAKE_EMBEDDING_MODEL if settings.llm_provider == "fake" else ""
    )
    if embedding:
        models.append(ModelConfig(name=embedding, kind="embedding"))
    return models


def build_registry(settings: Settings, observer: Observer | None = None) -> ModelRegistry:
    """One resilient provider per upstream, shared by the models it serves."""
    upstreams: dict[tuple[str, str, str], ResilientProvider] = {}
    routes = []
    created = int(time.time())
    seen: set[tuple[ModelKind, str]] = set()
    for config in configured_models(settings):
        kind = config.kind
        clashes = [name for name in (config.name, *config.aliases) if (kind, name) in seen]
        if clashes:
            raise ValueError(f"LLM_MODELS names '{clashes[0]}' twice")
        seen.update((kind, name) for name in (config.name, *config.aliases))
        provider_name = config.provider or settings.llm_provider
        base_url = config.base_url or settings.llm_base_url
        api_key = (config.api_key or settings.llm_api_key).get_secret_value()
        key = (provider_name, base_url if provider_name == "openai" else "", api_key)
        if key not in upstreams:
            upstreams[key] = resilient(
                settings,
                provider_name,
                base_url,
                api_key,
                config.max_concurrency,
                len(upstreams),
                observer or Observer(),
            )
        routes.append(
            ModelRoute(
                name=config.name,
                kind=kind,
                upstream_model=config.upstream_model or config.name,
                provider=upstreams[key],
                owned_by=config.owned_by or ("system" if provider_name == "fake" else "upstream"),
                aliases=config.aliases,
                unsupported_parameters=frozenset(config.unsupported_parameters),
                created=created,
            )
        )
    return ModelRegistry(routes)


def resilient(
    settings: Settings,
    provider_name: str,
    base_url: str,
    api_key: str,
    max_concurrency: int | None,
    number: int,
    observer: Observer,
) -> ResilientProvider:
    """The raw provider for an upstream, wrapped in bulkhead, breaker and retries."""
    concurrency = max_concurrency or settings.llm_max_concurrency
    raw: Provider
    if provider_name == "openai":
        raw = OpenAICompatibleProvider(
            base_url=base_url,
            api_key=api_key,
            timeout_s=settings.llm_timeout_s,
            max_connections=concurrency,
        )
        label = urlsplit(base_url).netloc or f"upstream-{number}"
    else:
        raw = FakeProvider(
            token_latency_s=settings.fake_llm_token_latency_ms / 1000,
            failure_rate=settings.fake_llm_failure_rate,
            fail_after_tokens=settings.fake_llm_fail_after_tokens,
        )
        label = "fake"
    return ResilientProvider(
        raw,
        upstream=label,
        max_retries=settings.llm_max_retries,
        max_concurrency=concurrency,
        breaker=CircuitBreaker(
            window_s=settings.llm_breaker_window_s,
            min_calls=settings.llm_breaker_min_calls,
            failure_rate=settings.llm_breaker_failure_rate,
            reset_timeout_s=settings.llm_breaker_reset_s,
        ),
        observer=observer,
    )
