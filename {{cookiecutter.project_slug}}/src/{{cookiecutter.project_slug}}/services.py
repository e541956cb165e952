"""The long-lived resources a process needs, opened together and closed in reverse.

Both the API (its lifespan) and background workers open them here, so they share one
definition of what a model call goes through. The in-memory backends are the
defaults; each optional module attaches its own resources in one call, before the
generation service is built from them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
{%- if cookiecutter.use_redis %}

from redis.asyncio import Redis
{%- endif %}
{% if cookiecutter.auth == "api_key" and cookiecutter.database != "none" %}
from .auth.api_keys import APIKeys
from .auth.key_table import attach_api_keys
{%- elif cookiecutter.auth == "api_key" %}
from .auth.api_keys import APIKeys, attach_api_keys
{%- endif %}
from .core.cache import MemoryResponseCache, ResponseCache
from .core.lifecycle import Lifecycle
{%- if cookiecutter.use_prometheus %}
from .core.metrics import attach_metrics
{%- endif %}
from .core.observe import Observer
from .core.ratelimit import MemoryRateLimiter, RateLimiter
{%- if cookiecutter.use_redis %}
from .core.redis import attach_redis
{%- endif %}
{%- if cookiecutter.use_opentelemetry %}
from .core.tracing import attach_tracing
{%- endif %}
{%- if cookiecutter.database != "none" %}
from .db.engine import Database
from .db.resources import attach_database
{%- endif %}
from .jobs.base import JobStore
{%- if cookiecutter.database == "none" and cookiecutter.use_redis %}
from .jobs.redis_store import RedisJobStore
{%- elif cookiecutter.database == "none" %}
from .jobs.memory_store import MemoryJobStore
{%- endif %}
from .llm.models import ModelRegistry, build_registry
from .llm.service import GenerationRecorder, GenerationService
{%- if cookiecutter.database == "none" and cookiecutter.use_redis %}
from .responses.redis_store import RedisResponseStore
{%- endif %}
from .responses.store import MemoryResponseStore, ResponseStore
from .settings import Settings


@dataclass(slots=True)
class Services:
    settings: Settings
    lifecycle: Lifecycle
    stack: AsyncExitStack  # what is opened here is closed when the services close
    cache: ResponseCache
    rate_limiter: RateLimiter = field(default_factory=MemoryRateLimiter)
    recorder: GenerationRecorder | None = None
    observer: Observer = field(default_factory=Observer)  # metrics, tracing: see core/observe
    job_store: JobStore = field(init=False)
    response_store: ResponseStore = field(init=False)
{%- if cookiecutter.database != "none" %}
    database: Database = field(init=False)
{%- endif %}
{%- if cookiecutter.use_redis %}
    redis: Redis = field(init=False)
{%- endif %}
{%- if cookiecutter.auth == "api_key" %}
    api_keys: APIKeys = field(init=False)
{%- endif %}
    models: ModelRegistry = field(init=False)
    generation: GenerationService = field(init=False)


@asynccontextmanager
async def open_services(settings: Settings, lifecycle: Lifecycle) -> AsyncIterator[Services]:
    """Open every resource, registering a readiness check for each that can fail."""
    async with AsyncExitStack() as stack:
        cache = MemoryResponseCache(
            ttl_s=settings.cache_ttl_s, max_entries=settings.cache_max_entries
        )
        services = Services(settings, lifecycle, stack, cache)
{%- if cookiecutter.use_prometheus %}
        attach_metrics(services)  # before anything that reports is built
{%- endif %}
        services.response_store = MemoryResponseStore(
            ttl_s=settings.responses_ttl_s, max_entries=settings.responses_max_stored
        )
{%- if cookiecutter.database != "none" %}
        await attach_database(services)  # generation log, job records
{%- endif %}
{%- if cookiecutter.use_redis %}
        await attach_redis(services)  # shared cache and rate limits
{%- endif %}
{%- if cookiecutter.database == "none" and cookiecutter.use_redis %}
        services.job_store = RedisJobStore.for_services(services)
        services.response_store = RedisResponseStore.for_services(services)
{%- elif cookiecutter.database == "none" %}
        services.job_store = MemoryJobStore(retention_s=settings.job_retention_s)
{%- endif %}
{%- if cookiecutter.use_opentelemetry %}
        attach_tracing(services)  # OTEL_*: model calls, jobs{% if cookiecutter.database != "none" %}, SQL{% endif %}{% if cookiecutter.use_redis %}, Redis{% endif %}
{%- endif %}
{%- if cookiecutter.auth == "api_key" %}
        attach_api_keys(services)  # API_KEYS{% if cookiecutter.database != "none" %} and the api_keys table{% endif %}
{%- endif %}
        services.models = build_registry(settings, services.observer)
        stack.push_async_callback(services.models.aclose)
        lifecycle.add_check("models", services.models.readiness)
        stack.push_async_callback(services.cache.aclose)
        services.generation = GenerationService(
            services.models,
            services.cache,
            services.recorder,
            cache_scope=settings.cache_scope,
            observer=services.observer,
        )
        yield services
