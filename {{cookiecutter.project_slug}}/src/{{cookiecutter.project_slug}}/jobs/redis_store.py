"""Job records in Redis: durable, shared by the API processes and the workers.

A record is one JSON value under `<prefix><job id>`; jobs not yet finished are also
indexed by creation time, so `unfinished()` needs no scan. Finished records expire
`retention_s` after they finish; unfinished ones wait for a worker however long.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from .base import Job

if TYPE_CHECKING:
    from ..services import Services


class RedisJobStore:
    durable = True

    def __init__(self, redis: Redis, *, prefix: str, retention_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention_ms = int(retention_s * 1000)
        self._unfinished = f"{prefix}unfinished"

    @classmethod
    def for_services(cls, services: Services) -> RedisJobStore:
        settings = services.settings
        return cls(
            services.redis,
            prefix=f"{settings.redis_key_prefix}jobs:",
            retention_s=settings.job_retention_s,
        )

    async def add(self, job: Job) -> None:
        await self.save(job)

    async def get(self, job_id: str) -> Job | None:
        raw = await self.redis.get(self._key(job_id))
        return decode(raw) if raw is not None else None

    async def save(self, job: Job) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            if job.finished:
                pipe.set(self._key(job.id), encode(job), px=self.retention_ms)
                pipe.zrem(self._unfinished, job.id)
            else:
                pipe.set(self._key(job.id), encode(job))
                pipe.zadd(self._unfinished, {job.id: job.created_at})
            await pipe.execute()

    async def claim(self, job: Job) -> bool:
        # The queue's lease already gives each delivery to one worker (see redis_queue.py).
        job.status, job.started_at, job.attempts = "running", time.time(), job.attempts + 1
        await self.save(job)
        return True

    async def unfinished(self) -> list[Job]:
        ids = [raw.decode() for raw in await self.redis.zrange(self._unfinished, 0, -1)]
        if not ids:
            return []
        records = await self.redis.mget([self._key(job_id) for job_id in ids])
        jobs = [decode(raw) for raw in records if raw is not None]
        gone = [job_id for job_id, raw in zip(ids, records, strict=True) if raw is None]
        if gone:
            await self.redis.zrem(self._unfinished, *gone)
        return [job for job in jobs if not job.finished]

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}{job_id}"


def encode(job: Job) -> bytes:
    return json.dumps(dataclasses.asdict(job)).encode()


def decode(raw: bytes) -> Job:
    return Job(**json.loads(raw))
