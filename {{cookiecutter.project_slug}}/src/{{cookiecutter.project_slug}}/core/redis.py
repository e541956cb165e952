"""The Redis client: one connection pool per process, opened with the services.

Every call is bounded: connecting and reading time out after `REDIS_TIMEOUT_S`, a
call that loses its connection is retried twice after a short pause, and pooled
connections that sat idle are checked before reuse, so the process reconnects on
its own after Redis restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from ..settings import Settings
from .cache_redis import RedisResponseCache
from .ratelimit_redis import RedisRateLimiter

if TYPE_CHECKING:
    from ..services import Services

PING_TIMEOUT_S = 1.0
IDLE_CHECK_S = 30  # PING a pooled connection before reuse when it idled this long


@asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[Redis]:
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,  # the longest wait for a free connection
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_keepalive=True,
        health_check_interval=IDLE_CHECK_S,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
    )
    redis = Redis.from_pool(pool)  # closing the client closes the pool
    try:
        yield redis
    finally:
        await redis.aclose()


async def redis_readiness(redis: Redis) -> str | None:
    """None when Redis answers PING quickly, else why not."""
    try:
        async with asyncio.timeout(PING_TIMEOUT_S):
            # redis-py types its commands for the sync and the async client at once.
            await cast("Awaitable[bool]", redis.ping())
    except TimeoutError:
        return f"no answer within {PING_TIMEOUT_S:g} s"
    except (RedisError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def attach_redis(services: Services) -> None:
    """The client for the services (closed with them), its readiness, cache and limits."""
    settings = services.settings
    redis = await services.stack.enter_async_context(open_redis(settings))
    services.redis = redis
    services.lifecycle.add_check("redis", partial(redis_readiness, redis))
    services.cache = RedisResponseCache(
        redis, prefix=f"{settings.redis_key_prefix}cache:", ttl_s=settings.cache_ttl_s
    )
    services.rate_limiter = RedisRateLimiter(
        redis,
        prefix=f"{settings.redis_key_prefix}ratelimit:",
        fail_open=settings.rate_limit_fail_open,
    )
