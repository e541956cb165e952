"""What a job is, where its record lives (a store), and how it travels (a queue)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import TypeAdapter

from ..llm.base import Completion, GenerationRequest

JobStatus = Literal["queued", "running", "succeeded", "failed"]


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What a job asks for: stored as JSON in `Job.request`."""

    generation: GenerationRequest
    cache: bool | None = None  # the caller's cache opt-in or opt-out, as on the sync API
    request_id: str | None = None  # of the submission, for the logs of the run

    def to_dict(self) -> dict[str, Any]:
        return JOB_REQUEST.dump_python(self, mode="json")  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a succeeded job produced: stored as JSON in `Job.result`."""

    id: str
    completion: Completion
    cached: bool

    def to_dict(self) -> dict[str, Any]:
        return JOB_RESULT.dump_python(self, mode="json")  # type: ignore[no-any-return]


JOB_REQUEST = TypeAdapter(JobRequest)
JOB_RESULT = TypeAdapter(JobResult)


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

    async def depth(self) -> int:
        """Jobs queued and not yet taken by a worker."""
        ...

    async def readiness(self) -> str | None: ...
