"""Jobs queued in Redis with saq; worker processes (`jobs/worker.py`) run them.

The API records a job in the store, then queues its id; the store stays the one
place its status and result live. The job id is the queue entry's key, so a job is
queued at most once however often it is offered. While Redis is unreachable, or the
queue holds `JOB_QUEUE_SIZE` jobs no worker has taken, submissions are refused with
503 + Retry-After rather than accepted and lost.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import saq
from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq.queue.redis import RedisQueue

from ..core.errors import error_detail
from ..core.logging import get_logger
from ..core.redis import redis_readiness
from ..settings import Settings
from .base import Job, JobStore, QueueFullError

if TYPE_CHECKING:
    from ..services import Services

RUN_JOB = "run_job"
UNAVAILABLE = (RedisError, OSError, TimeoutError)
logger = get_logger(__name__)


def saq_queue(redis: Redis, settings: Settings) -> RedisQueue:
    return RedisQueue(redis, name=f"{settings.redis_key_prefix}jobs")


def queue_entry(job: Job, settings: Settings) -> saq.Job:
    """What the queue holds for a job: its id, and how often and long it may run."""
    return saq.Job(
        RUN_JOB,
        kwargs={"job_id": job.id},
        key=job.id,
        # The worker ends a job at JOB_TIMEOUT_S itself; saq's limit is the backstop.
        timeout=settings.job_timeout_s + settings.job_heartbeat_s,
        heartbeat=settings.job_heartbeat_s,
        # Above JOB_MAX_ATTEMPTS: the worker itself marks a job that kept dying failed,
        # which saq, giving up first, would leave `running` in the store.
        retries=settings.job_max_attempts + 3,
        retry_delay=1.0,
        retry_backoff=30.0,
    )


@asynccontextmanager
async def open_job_queue(services: Services) -> AsyncIterator[RedisJobQueue]:
    """The API's side of the queue; worker processes run the jobs (`jobs/worker.py`)."""
    yield RedisJobQueue(services.redis, services.job_store, services.settings)


class RedisJobQueue:
    def __init__(self, redis: Redis, store: JobStore, settings: Settings) -> None:
        self.redis = redis
        self.store = store
        self.settings = settings
        self.queue = saq_queue(redis, settings)

    async def submit(self, owner: str, request: dict[str, Any]) -> Job:
        job = Job(owner=owner, request=request)
        limit = self.settings.job_queue_size
        try:
            if await self.queue.count("queued") >= limit:
                raise QueueFullError(f"The job queue is full ({limit} jobs); try again shortly.")
            await self.store.add(job)  # recorded before any worker can see it
        except UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
        try:
            await self.queue.enqueue(queue_entry(job, self.settings))
        except UNAVAILABLE as exc:
            await self._withdraw(job)
            raise self._unavailable(exc) from exc
        return job

    async def get(self, job_id: str) -> Job | None:
        return await self.store.get(job_id)

    async def depth(self) -> int:
        return int(await self.queue.count("queued"))

    async def readiness(self) -> str | None:
        return await redis_readiness(self.redis)

    def _unavailable(self, exc: Exception) -> QueueFullError:
        logger.warning("job queue unavailable", error=f"{type(exc).__name__}: {exc}")
        return QueueFullError("The job queue is unavailable; submit the job again shortly.")

    async def _withdraw(self, job: Job) -> None:
        """The client is told the job was refused: make sure no worker runs it later."""
        job.status, job.finished_at = "failed", time.time()
        job.error = error_detail(503, "The job could not be queued.", code="queue_unavailable")
        try:
            await self.store.save(job)
        except Exception as exc:  # the store may be down with the queue
            logger.warning("refused job left unfinished", job_id=job.id, error=str(exc))
