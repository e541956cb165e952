from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from ..jobs.base import JOB_RESULT, Job, JobStatus
from .errors import ErrorDetail
from .generate import GenerateResponse


def timestamp(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def job_result(stored: dict[str, Any]) -> GenerateResponse:
    result = JOB_RESULT.validate_python(stored)
    return GenerateResponse.of(result.completion, cached=result.cached, id=result.id)


class JobResponse(BaseModel):
    id: str = Field(examples=["job-7c9e6679f2a84f3d9b1f0b6f3c1f5e2a"])
    status: JobStatus = Field(examples=["succeeded"])
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: GenerateResponse | None = None
    error: ErrorDetail | None = None

    @classmethod
    def of(cls, job: Job) -> JobResponse:
        return cls(
            id=job.id,
            status=job.status,
            created_at=datetime.fromtimestamp(job.created_at, UTC),
            started_at=timestamp(job.started_at),
            finished_at=timestamp(job.finished_at),
            result=job_result(job.result) if job.result else None,
            error=ErrorDetail.model_validate(job.error) if job.error else None,
        )
