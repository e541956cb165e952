"""In-process job queue: a bounded asyncio queue and a few worker tasks.

Jobs live in this process's memory: a restart forgets them (the Redis-backed queue of
the Redis module survives restarts). A full queue refuses new jobs with 503 and
Retry-After instead of dropping them; on shutdown the workers finish what is queued,
within a grace period, and mark anything left as failed.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from ..core.logging import get_logger
from .base import Job, QueueFullError

logger = get_logger(__name__)

# Runs one job's request and returns its result; raises to fail the job.
JobHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
ErrorDescriber = Callable[[Exception], dict[str, Any]]


class InProcessJobQueue:
    def __init__(
        self,
        handler: JobHandler,
        describe_error: ErrorDescriber,
        *,
        max_queued: int,
        workers: int,
        retention_s: float,
        shutdown_grace_s: float = 20.0,
    ) -> None:
        self.handler = handler
        self.describe_error = describe_error
        self.retention_s = retention_s
        self.shutdown_grace_s = shutdown_grace_s
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=max_queued)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._accepting = True
        self._workers = [
            asyncio.create_task(self._work(), name=f"job-worker-{n}") for n in range(workers)
        ]

    async def submit(self, owner: str, request: dict[str, Any]) -> Job:
        if not self._accepting:
            raise QueueFullError("The service is shutting down; submit the job again shortly.")
        self._forget_expired()
        job = Job(owner=owner, request=request)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFullError(
                f"The job queue is full ({self._queue.maxsize} jobs); try again shortly."
            ) from None
        self._jobs[job.id] = job
        return job

    async def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def readiness(self) -> str | None:
        return None  # in memory: nothing that can be unreachable

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._run(job)
            finally:
                self._queue.task_done()

    async def _run(self, job: Job) -> None:
        job.status, job.started_at = "running", time.time()
        try:
            job.result = await self.handler(job.request)
            job.status = "succeeded"
        except asyncio.CancelledError:
            job.status, job.error = "failed", {"message": "The service stopped during the job."}
            raise
        except Exception as exc:
            job.status, job.error = "failed", self.describe_error(exc)
            logger.warning("job failed", job_id=job.id, error=str(exc))
        finally:
            job.finished_at = time.time()

    def _forget_expired(self) -> None:
        horizon = time.time() - self.retention_s
        for job_id, job in list(self._jobs.items()):
            if job.created_at > horizon:
                break  # ordered by creation: the rest are newer
            if job.finished and (job.finished_at or 0) < horizon:
                del self._jobs[job_id]

    async def aclose(self) -> None:
        self._accepting = False
        with suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), self.shutdown_grace_s)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            job.status, job.error = "failed", {"message": "The service stopped before the job ran."}
            logger.warning("job not run before shutdown", job_id=job.id)
