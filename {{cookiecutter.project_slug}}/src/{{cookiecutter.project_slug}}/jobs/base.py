"""What a job is, where its record lives (a store), and how it travels (a queue)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

JobStatus = Literal["queued", "running", "succeeded", "failed"]


@dataclass(slots=True)
class Job:
    owner: str
    request: dict[str, Any]
    id: str = field(default_factory=lambda: f"job-{uuid.uuid4().hex}")
    status: JobStatus = "queued"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in {"succeeded", "failed"}


class QueueFullError(Exception):
    """The job cannot be accepted now (queue full, backend down): retry later."""

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class JobStore(Protocol):
    """Job records. `durable` stores outlive the process, so unfinished jobs resume."""

    durable: bool

    async def add(self, job: Job) -> None: ...

    async def get(self, job_id: str) -> Job | None: ...

    async def save(self, job: Job) -> None: ...

    async def claim(self, job: Job) -> bool:
        """Mark `job` running for this caller, unless another process took it since
        `job` was read (its `attempts` changed): then False, and the caller skips it."""
        ...

    async def unfinished(self) -> list[Job]:
        """Jobs queued or running, oldest first."""
        ...


class JobQueue(Protocol):
    async def submit(self, owner: str, request: dict[str, Any]) -> Job:
        """Accept a job or raise QueueFullError; an accepted job is never dropped."""
        ...

    async def get(self, job_id: str) -> Job | None: ...

    async def readiness(self) -> str | None: ...

    async def aclose(self) -> None: ...
