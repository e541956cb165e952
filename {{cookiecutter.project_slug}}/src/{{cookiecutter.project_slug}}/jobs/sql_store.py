"""Job records in the database: durable, so queued and interrupted jobs resume after a restart.

Finished jobs are deleted `retention_s` after they finish (checked at most once a minute,
when a job is added).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Insert, delete, select, update
from sqlalchemy.dialects import {{ "postgresql" if cookiecutter.database == "postgresql" else "sqlite" }}
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from ..core.logging import get_logger
from ..db.engine import Database
from ..db.errors import describe, is_unavailable
from ..db.models import JobRecord
from .base import Job, JobStatus, QueueFullError

logger = get_logger(__name__)

UNFINISHED: tuple[JobStatus, ...] = ("queued", "running")


def moment(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None


def epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def job_row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "owner": job.owner,
        "status": job.status,
        "request": job.request,
        "result": job.result,
        "error": job.error,
        "attempts": job.attempts,
        "created_at": moment(job.created_at),
        "started_at": moment(job.started_at),
        "finished_at": moment(job.finished_at),
    }


def job_of(record: JobRecord) -> Job:
    return Job(
        id=record.id,
        owner=record.owner,
        request=record.request,
        status=cast(JobStatus, record.status),
        result=record.result,
        error=record.error,
        attempts=record.attempts,
        created_at=record.created_at.timestamp(),
        started_at=epoch(record.started_at),
        finished_at=epoch(record.finished_at),
    )


class SQLJobStore:
    durable = True

    def __init__(
        self,
        database: Database,
        *,
        retention_s: float | None = None,
        max_retry_delay_s: float = 10.0,
        purge_interval_s: float = 60.0,
    ) -> None:
        self.database = database
        self.retention_s = retention_s
        self.max_retry_delay_s = max_retry_delay_s
        self.purge_interval_s = purge_interval_s
        self._purged_at = 0.0

    async def add(self, job: Job) -> None:
        try:
            async with self.database.session() as session:
                session.add(JobRecord(**job_row(job)))
                await self._purge_expired(session)
        except SQLAlchemyError as exc:
            if not is_unavailable(exc):
                raise
            raise QueueFullError("The job store is unavailable; try again shortly.") from exc

    async def get(self, job_id: str) -> Job | None:
        async with self.database.session() as session:
            record = await session.get(JobRecord, job_id)
        return job_of(record) if record is not None else None

    async def save(self, job: Job) -> None:
        """Insert or update the record; while the database is out of reach, keep trying.

        A job's progress must not be lost: the worker waits here until the database
        is back (or the worker is cancelled at shutdown, and the job resumes later).
        """
        delay = 0.5
        while True:
            try:
                async with self.database.session() as session:
                    await session.execute(self._upsert(job))
            except SQLAlchemyError as exc:
                if not is_unavailable(exc):
                    raise
                logger.warning("job not saved yet", job_id=job.id, error=describe(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay_s)
            else:
                return

    async def claim(self, job: Job) -> bool:
        """One conditional UPDATE: of several processes holding the same job, one wins."""
        started = datetime.now(UTC)
        async with self.database.session() as session:
            result = await session.execute(
                update(JobRecord)
                .where(
                    JobRecord.id == job.id,
                    JobRecord.attempts == job.attempts,
                    JobRecord.status.in_(UNFINISHED),
                )
                .values(status="running", attempts=job.attempts + 1, started_at=started)
            )
        if cast(CursorResult[Any], result).rowcount != 1:
            return False
        job.status, job.started_at, job.attempts = "running", started.timestamp(), job.attempts + 1
        return True

    async def unfinished(self) -> list[Job]:
        query = (
            select(JobRecord)
            .where(JobRecord.status.in_(UNFINISHED))
            .order_by(JobRecord.created_at, JobRecord.id)
        )
        async with self.database.session() as session:
            records = (await session.scalars(query)).all()
        return [job_of(record) for record in records]

    async def _purge_expired(self, session: AsyncSession) -> None:
        if self.retention_s is None or time.monotonic() - self._purged_at < self.purge_interval_s:
            return
        self._purged_at = time.monotonic()
        horizon = datetime.now(UTC) - timedelta(seconds=self.retention_s)
        await session.execute(
            delete(JobRecord).where(
                JobRecord.status.not_in(UNFINISHED), JobRecord.finished_at < horizon
            )
        )

    def _upsert(self, job: Job) -> Insert:
        values = job_row(job)
        changes = {key: value for key, value in values.items() if key != "id"}
        return (
            {{ "postgresql" if cookiecutter.database == "postgresql" else "sqlite" }}.insert(JobRecord)
            .values(values)
            .on_conflict_do_update(index_elements=[JobRecord.id], set_=changes)
        )
