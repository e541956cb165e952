"""In-process job queue: a bounded asyncio queue and a few worker tasks.

The queue itself lives in this process. With a durable job store, jobs that no
live process runs (queued when a process stopped, or running for longer than any
run can last) are adopted at start and by a periodic sweep; the store's claim makes
sure that of several processes only one runs a job. With the memory store, jobs
left at shutdown are marked failed. A full queue refuses new jobs with 503 and
Retry-After instead of dropping them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

from ..core.logging import get_logger
from ..core.observe import Observer
from ..settings import Settings
from .base import Job, JobStore, QueueFullError
from .runner import JobRunner

if TYPE_CHECKING:
    from ..services import Services

logger = get_logger(__name__)
STORE_RETRY_S = 5.0


def stale_after_s(settings: Settings) -> float:
    """Longer than any job can run: every try waits at most LLM_TIMEOUT_S, plus backoff."""
    return (settings.llm_max_retries + 1) * (settings.llm_timeout_s + 10) + 30


@asynccontextmanager
async def open_job_queue(services: Services) -> AsyncIterator[InProcessJobQueue]:
    """The queue and its workers, in this process, for as long as the block runs."""
    settings, store = services.settings, services.job_store
    queue = InProcessJobQueue(
        store,
        JobRunner(store, services.generation),
        max_queued=settings.job_queue_size,
        workers=settings.job_workers,
        stale_after_s=stale_after_s(settings),
        observer=services.observer,
    )
    await queue.start()
    try:
        yield queue
    finally:
        await queue.aclose()


class InProcessJobQueue:
    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        *,
        max_queued: int,
        workers: int,
        stale_after_s: float,
        shutdown_grace_s: float = 20.0,
        observer: Observer | None = None,
    ) -> None:
        self.store = store
        self.observer = observer or Observer()
        self.runner = runner
        self.workers = workers
        self.stale_after_s = stale_after_s
        self.shutdown_grace_s = shutdown_grace_s
        self._held: set[str] = set()  # ids queued or running here
        self.max_queued = max_queued
        # Unbounded underneath: the bound is enforced on submission, so jobs resumed
        # from a durable store always fit.
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._adding = 0  # submissions being stored, already counted against the bound
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = True

    async def start(self) -> None:
        """Start the workers; with a durable store, the sweeper adopts its orphaned jobs.

        The first sweep runs at once and, while the store is unreachable (the database
        is down at startup), again every few seconds: a start never waits for it.
        """
        if self.store.durable:
            self._tasks.append(asyncio.create_task(self._sweep(), name="job-sweeper"))
        self._tasks += [
            asyncio.create_task(self._work(), name=f"job-worker-{n}") for n in range(self.workers)
        ]

    async def _adopt_orphans(self, *, queued_before: float) -> None:
        """Queue stored jobs this process does not hold and no live process can be running."""
        stale = time.time() - self.stale_after_s
        adopted = 0
        for job in await self.store.unfinished():
            if job.id in self._held:
                continue
            if (job.status == "queued" and job.created_at < queued_before) or (
                job.status == "running" and (job.started_at or 0) < stale
            ):
                self._held.add(job.id)
                self._queue.put_nowait(job)
                adopted += 1
        self.observer.job_queue_depth(self._queue.qsize())
        if adopted:
            logger.info("jobs adopted", count=adopted)

    async def _sweep(self) -> None:
        started = time.time()
        first = True  # the jobs queued before this process started are orphans at once
        while True:
            queued_before = started if first else time.time() - self.stale_after_s
            try:
                await self._adopt_orphans(queued_before=queued_before)
            except Exception as exc:  # e.g. the database is down: try again soon
                logger.warning("job sweep failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(STORE_RETRY_S)
                continue
            first = False
            await asyncio.sleep(self.stale_after_s / 2)

    async def submit(self, owner: str, request: dict[str, Any]) -> Job:
        if not self._accepting:
            raise QueueFullError("The service is shutting down; submit the job again shortly.")
        if self._queue.qsize() + self._adding >= self.max_queued:
            raise QueueFullError(
                f"The job queue is full ({self.max_queued} jobs); try again shortly."
            )
        job = Job(owner=owner, request=request)
        self._adding += 1
        try:
            await self.store.add(job)  # recorded before it can run
        finally:
            self._adding -= 1
        self._held.add(job.id)
        self._queue.put_nowait(job)
        self.observer.job_queue_depth(self._queue.qsize())
        return job

    async def get(self, job_id: str) -> Job | None:
        return await self.store.get(job_id)

    async def depth(self) -> int:
        return self._queue.qsize()

    async def readiness(self) -> str | None:
        return None  # the queue is in this process: nothing that can be unreachable

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self.observer.job_queue_depth(self._queue.qsize())
            try:
                await self.runner.run(job)
            except Exception:  # the worker outlives any one job; a durable store keeps it
                logger.exception("job run failed", job_id=job.id)
            finally:
                self._held.discard(job.id)
                self._queue.task_done()

    async def aclose(self) -> None:
        self._accepting = False
        with suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), self.shutdown_grace_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if self.store.durable:
                continue  # still queued in the store: resumed at the next start
            job.status, job.error = "failed", {"message": "The service stopped before the job ran."}
            await self.store.save(job)
            logger.warning("job not run before shutdown", job_id=job.id)
