"""The long-lived resources a process needs, opened together and closed in reverse.

Both the API (its lifespan) and background workers build their services here, so
they share one definition of what a model call goes through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
{%- if cookiecutter.use_redis %}
from functools import partial

from redis.asyncio import Redis
{%- endif %}
{%- if cookiecutter.use_redis %}

from .core.cache import ResponseCache
from .core.cache_redis import RedisResponseCache
{%- else %}

from .core.cache import MemoryResponseCache, ResponseCache
{%- endif %}
from .core.lifecycle import Lifecycle
{%- if cookiecutter.use_redis %}
from .core.redis import open_redis, redis_readiness
{%- endif %}
{%- if cookiecutter.database != "none" %}
from .db.engine import Database, open_database
from .db.recorder import SQLGenerationRecorder
{%- endif %}
from .jobs.base import JobStore
{%- if cookiecutter.database != "none" %}
from .jobs.sql_store import SQLJobStore
{%- elif cookiecutter.use_redis %}
from .jobs.redis_store import RedisJobStore
{%- else %}
from .jobs.store import MemoryJobStore
{%- endif %}
from .llm.base import Provider
from .llm.factory import build_provider
from .llm.service import GenerationService
from .settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    provider: Provider
    generation: GenerationService
    job_store: JobStore
{%- if cookiecutter.database != "none" %}
    database: Database
{%- endif %}
{%- if cookiecutter.use_redis %}
    redis: Redis
{%- endif %}


@asynccontextmanager
async def open_services(settings: Settings, lifecycle: Lifecycle) -> AsyncIterator[Services]:
    """Open every resource, registering a readiness check for each that can fail."""
    async with AsyncExitStack() as stack:
{%- if cookiecutter.database != "none" %}
        database = await stack.enter_async_context(open_database(settings))
        lifecycle.add_check("database", database.readiness)
        recorder = await stack.enter_async_context(
            SQLGenerationRecorder.running(database, store_prompts=settings.store_prompts)
        )
{%- endif %}
{%- if cookiecutter.use_redis %}
        redis = await stack.enter_async_context(open_redis(settings))
        lifecycle.add_check("redis", partial(redis_readiness, redis))
{%- endif %}
        provider = build_provider(settings)
        stack.push_async_callback(provider.aclose)
        lifecycle.add_check("provider", provider.readiness)
{%- if cookiecutter.use_redis %}
        cache: ResponseCache = RedisResponseCache(
            redis, prefix=f"{settings.redis_key_prefix}cache:", ttl_s=settings.cache_ttl_s
        )
{%- else %}
        cache: ResponseCache = MemoryResponseCache(
            ttl_s=settings.cache_ttl_s, max_entries=settings.cache_max_entries
        )
{%- endif %}
        stack.push_async_callback(cache.aclose)
{%- if cookiecutter.database != "none" %}
        generation = GenerationService(provider, cache, recorder)
        job_store: JobStore = SQLJobStore(database, retention_s=settings.job_retention_s)
{%- elif cookiecutter.use_redis %}
        generation = GenerationService(provider, cache)
        job_store: JobStore = RedisJobStore(
            redis, prefix=f"{settings.redis_key_prefix}jobs:", retention_s=settings.job_retention_s
        )
{%- else %}
        generation = GenerationService(provider, cache)
        job_store: JobStore = MemoryJobStore(retention_s=settings.job_retention_s)
{%- endif %}
        yield Services(
            provider=provider,
            generation=generation,
            job_store=job_store,
{%- if cookiecutter.database != "none" %}
            database=database,
{%- endif %}
{%- if cookiecutter.use_redis %}
            redis=redis,
{%- endif %}
        )
