"""Job records in this process's memory, forgotten after `retention_s`."""

from __future__ import annotations

import time
from collections import OrderedDict

from .base import Job


class MemoryJobStore:
    durable = False

    def __init__(self, *, retention_s: float) -> None:
        self.retention_s = retention_s
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    async def add(self, job: Job) -> None:
        self._forget_expired()
        self._jobs[job.id] = job

    async def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def save(self, job: Job) -> None:
        self._jobs[job.id] = job

    async def claim(self, job: Job) -> bool:
        job.status, job.started_at, job.attempts = "running", time.time(), job.attempts + 1
        return True  # one process, one queue: nobody else can hold it

    async def unfinished(self) -> list[Job]:
        return [job for job in self._jobs.values() if not job.finished]

    def _forget_expired(self) -> None:
        horizon = time.time() - self.retention_s
        for job_id, job in list(self._jobs.items()):
            if job.created_at > horizon:
                break  # ordered by creation: the rest are newer
            if job.finished and (job.finished_at or 0) < horizon:
                del self._jobs[job_id]
