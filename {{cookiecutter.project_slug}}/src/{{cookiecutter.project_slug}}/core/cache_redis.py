"""Response cache in Redis: shared by every worker process and replica.

A cache is an optimisation, so it never makes a request wait on Redis for long: each
call is bounded by `OPERATION_TIMEOUT_S`, and after a failure the cache stays out of
the way (reads miss, writes are skipped) for `BYPASS_S` before it tries Redis again.
The failure itself is raised, for the caller to log and treat as a miss.
"""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

OPERATION_TIMEOUT_S = 0.5
BYPASS_S = 1.0


class RedisResponseCache:
    def __init__(self, redis: Redis, *, prefix: str, ttl_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_ms = int(ttl_s * 1000)
        self._bypass_until = 0.0

    async def get(self, key: str) -> bytes | None:
        if self._bypassed():
            return None
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S):
                value: bytes | None = await self.redis.get(self.prefix + key)
        except Exception:
            self._bypass_until = time.monotonic() + BYPASS_S
            raise
        return value

    async def set(self, key: str, value: bytes) -> None:
        if self.ttl_ms <= 0 or self._bypassed():
            return
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S):
                await self.redis.set(self.prefix + key, value, px=self.ttl_ms)
        except Exception:
            self._bypass_until = time.monotonic() + BYPASS_S
            raise

    async def aclose(self) -> None:
        return None  # the client belongs to the services, which close it

    def _bypassed(self) -> bool:
        return time.monotonic() < self._bypass_until
