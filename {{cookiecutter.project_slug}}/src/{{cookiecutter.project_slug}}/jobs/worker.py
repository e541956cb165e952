"""The worker process: runs the jobs the API queued in Redis.

Started with `python -m {{ cookiecutter.project_slug }} worker`.

A job runs through the same services and `JobRunner` as in-process jobs. Delivery is
at least once and the store decides what is left to do: a job whose worker died (its
heartbeat stopped) runs again on another worker, up to JOB_MAX_ATTEMPTS runs, then is
marked failed; a job the store already shows finished is not run again. Each worker
also compares the store's unfinished jobs with the queue every JOB_HEARTBEAT_S and
queues again those the queue lost.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import saq
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError, RedisError
from saq.queue.redis import RedisQueue
from saq.types import Context

from ..core.errors import error_detail
from ..core.lifecycle import Lifecycle
from ..core.logging import get_logger
{%- if cookiecutter.use_prometheus %}
from ..core.metrics import serve_worker_metrics
{%- endif %}
from ..services import open_services
from ..settings import Settings
from .base import Job, JobStore
from .redis_queue import RUN_JOB, queue_entry, saq_queue
from .runner import JobRunner

logger = get_logger(__name__)


def run_worker(settings: Settings) -> None:
    """Run jobs until SIGTERM or SIGINT."""
{%- if cookiecutter.use_prometheus %}
    serve_worker_metrics(settings)  # GET /metrics on WORKER_METRICS_PORT
{%- endif %}
    asyncio.run(_until_signalled(settings))


async def _until_signalled(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve_jobs(settings, stop)


async def serve_jobs(settings: Settings, stop: asyncio.Event) -> None:
    """Run jobs until `stop` is set, then give running ones JOB_SHUTDOWN_GRACE_S to finish."""
    async with open_services(settings, Lifecycle()) as services:
        queue = saq_queue(services.redis, settings)
        runner = JobRunner(services.job_store, services.generation)
        worker = saq.Worker(
            queue,
            [(RUN_JOB, JobHandler(services.redis, services.job_store, runner, settings).run)],
            concurrency=settings.job_workers,
            # saq's defaults, but sweeps (they find the jobs of dead workers) are more frequent.
            timers={
                "schedule": 1,
                "worker_info": 10,
                "sweep": settings.job_heartbeat_s,
                "abort": 1,
            },
            # Shorter than the socket timeout, which would otherwise cut the blocking read.
            dequeue_timeout=min(1.0, settings.redis_timeout_s / 2),
        )
        worker.SIGNALS = []  # `stop` decides, so the worker also runs off the main thread
        recovering = asyncio.create_task(requeue_lost(services.job_store, queue, settings, stop))
        running = asyncio.create_task(worker.start())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({running, stopping, recovering}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            recovering.cancel()
            await asyncio.wait({recovering})
        await drain(worker, settings.job_shutdown_grace_s)
        await running  # raises what stopped the worker, if it was not `stop`
        if not recovering.cancelled():
            recovering.result()  # raises what stopped the look for lost jobs
    logger.info("worker stopped")


async def requeue_lost(
    store: JobStore, queue: RedisQueue, settings: Settings, stop: asyncio.Event
) -> None:
    """Every JOB_HEARTBEAT_S until `stop`, queue again the unfinished jobs the queue lost.

    Redis may have lost its data; or saq's sweep took a job it found starting from the
    queue's lists, to abort it and queue it again, and its worker died in between: the
    job is then in no list, where no sweep looks, and saq refuses to queue it again
    until the abort's key expires (5 s), so a check at startup alone can miss it.
    """
    while True:
        await requeue_unfinished(store, queue, settings)
        if await set_within(stop, settings.job_heartbeat_s):
            return


async def requeue_unfinished(store: JobStore, queue: RedisQueue, settings: Settings) -> None:
    """Queue again the unfinished jobs the queue no longer holds.

    saq holds a job from its enqueue to its finish, retries included, and refuses to
    queue one it holds (entries are keyed by job id), so jobs queued, running or due
    for a retry are left alone. A job queued again while a run still goes on (saq gave
    its entry up early) waits for that run's lease, then finds it finished. Jobs
    younger than JOB_HEARTBEAT_S are left to their submission, which may withdraw them.
    """
    submitted_before = time.time() - settings.job_heartbeat_s
    try:
        older = [job for job in await store.unfinished() if job.created_at < submitted_before]
        held = await held_by(queue, [job.id for job in older])
        requeued = [
            job.id
            for job, in_queue in zip(older, held, strict=True)
            if not in_queue and await queue.enqueue(queue_entry(job, settings)) is not None
        ]
    except Exception as exc:  # the worker goes on; the next look may succeed
        logger.warning("unfinished jobs not checked", error=f"{type(exc).__name__}: {exc}")
        return
    if requeued:
        logger.info("unfinished jobs queued again", count=len(requeued))


async def held_by(queue: RedisQueue, job_ids: list[str]) -> list[bool]:
    """Whether saq holds each job (its set of incomplete jobs), in one round trip. Only
    a shortcut: the enqueue checks again, atomically."""
    incomplete = queue.namespace("incomplete")
    async with queue.redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.zscore(incomplete, queue.job_id(job_id))
        scores = await pipe.execute()
    return [score is not None for score in scores]


async def drain(worker: saq.Worker[Context], grace_s: float) -> None:
    """Take no new jobs, let running ones finish for up to `grace_s`, then stop: saq
    queues the jobs it has to cancel again."""
    worker.event.set()
    running = [context["task"] for context in worker.job_task_contexts.values()]
    if running:
        await asyncio.wait(running, timeout=grace_s)
    await worker.stop()


class JobHandler:
    """`run` is what saq calls for each delivery of a job.

    saq can deliver a job again while a worker still runs it (its sweep may take a job
    just being started for a stuck one), so a run holds a lease on the job in Redis: a
    second delivery waits for the lease, then finds the job finished. The lease expires
    JOB_HEARTBEAT_S after its worker last renewed it, when that worker died.
    """

    def __init__(
        self, redis: Redis, store: JobStore, runner: JobRunner, settings: Settings
    ) -> None:
        self.redis = redis
        self.store = store
        self.runner = runner
        self.leases = f"{settings.redis_key_prefix}jobs:running:"
        self.max_attempts = settings.job_max_attempts
        self.timeout_s = settings.job_timeout_s
        self.heartbeat_s = settings.job_heartbeat_s

    async def run(self, ctx: Context, *, job_id: str) -> None:
        lease = self.redis.lock(
            f"{self.leases}{job_id}", timeout=self.heartbeat_s, sleep=self.heartbeat_s / 3
        )
        lost = asyncio.Event()
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - saq runs each job in a task
        try:
            async with kept_alive(ctx["job"], lease, interval_s=self.heartbeat_s / 3, lost=lost):
                await lease.acquire()
                await self._run(job_id, lost)
        except asyncio.CancelledError:
            if not lost.is_set():
                raise
            task.uncancel()  # stopped because the lease went to another run: not a failure
            logger.warning("job run stopped: its lease was lost", job_id=job_id)

    async def _run(self, job_id: str, lost: asyncio.Event) -> None:
        job = await self.store.get(job_id)
        if job is None or job.finished:
            return  # expired, or delivered again after it finished
        if job.attempts >= self.max_attempts:
            message = f"The job's worker stopped during each of its {job.attempts} runs."
            await self._fail(job, error_detail(500, message, code="job_interrupted"))
            return
        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                await self.runner.run(job, lost=lost)
        except TimeoutError:
            if not deadline.expired():
                raise
            message = f"The job took longer than {self.timeout_s} s."
            await self._fail(job, error_detail(504, message, code="job_timeout"))

    async def _fail(self, job: Job, error: dict[str, Any]) -> None:
        job.status, job.error, job.finished_at = "failed", error, time.time()
        await self.store.save(job)
        logger.warning("job failed", job_id=job.id, error=error["message"])


@asynccontextmanager
async def kept_alive(
    entry: saq.Job, lease: Lock, *, interval_s: float, lost: asyncio.Event
) -> AsyncIterator[None]:
    """Renew the job's queue entry, and its lease once held, until the block ends; then
    give the lease up. When the renewals stop, the worker died: the job runs elsewhere.

    A lease that expired anyway (this process stalled) may already be another run's:
    then `lost` is set and the block is cancelled, so the job never runs twice at once.
    """
    done = asyncio.Event()
    holder = asyncio.current_task()

    async def renew() -> None:
        while not await set_within(done, interval_s):
            try:
                await entry.update()
                await lease.reacquire()
            except LockNotOwnedError:
                lost.set()
                if holder is not None:
                    holder.cancel()
                return
            except LockError:
                continue  # not held yet: this delivery waits for another run to end
            except Exception as exc:  # a missed renewal is survivable; the job goes on
                logger.warning("job heartbeat failed", error=f"{type(exc).__name__}: {exc}")

    renewals = asyncio.create_task(renew())
    try:
        yield
    finally:
        done.set()
        await renewals
        with suppress(RedisError):  # not held, or Redis is away: it expires by itself
            await lease.release()


async def set_within(event: asyncio.Event, seconds: float) -> bool:
    with suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
