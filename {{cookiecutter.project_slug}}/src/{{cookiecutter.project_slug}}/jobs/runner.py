"""Running one job, the same way wherever it runs (in-process worker or worker process)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import structlog

from ..core.context import RequestContext
from ..core.errors import APIError, error_detail
from ..core.logging import get_logger
from ..llm.errors import ProviderError
from ..llm.service import CachePolicy, GenerationService
from .base import JOB_REQUEST, Job, JobResult, JobStore

logger = get_logger(__name__)


def job_error(exc: Exception) -> dict[str, Any]:
    """How a failed job reports its error: like the HTTP error it would have been."""
    if isinstance(exc, ProviderError):
        error = APIError.from_provider(exc)
        return error_detail(error.status_code, error.message, code=error.code)
    logger.error("job crashed", exc_info=exc)
    return error_detail(500, "The job failed unexpectedly.", code="internal_error")


class JobRunner:
    def __init__(self, store: JobStore, generation: GenerationService) -> None:
        self.store = store
        self.generation = generation

    async def run(self, job: Job, *, lost: asyncio.Event | None = None) -> None:
        """Take a job from queued (or interrupted) to succeeded or failed, saving each step.

        `lost` is set when the job is no longer this run's (a worker lost its lease):
        then a cancelled run saves nothing, since another run owns the record.
        """
        if not await self.store.claim(job):
            logger.info("job taken by another process", job_id=job.id)
            return
        asked = JOB_REQUEST.validate_python(job.request)
        context = RequestContext(principal=job.owner, request_id=asked.request_id)
        with (
            structlog.contextvars.bound_contextvars(job_id=job.id, principal=job.owner),
            self.generation.observer.job_run(job.id, asked.request_id),
        ):
            try:
                policy = CachePolicy.for_request(
                    asked.generation, opt_in=asked.cache, no_cache=False
                )
                completion, cached = await self.generation.complete(
                    asked.generation, context, policy
                )
            except asyncio.CancelledError:
                if lost is not None and lost.is_set():
                    raise
                # Stopped mid-way (shutdown). A durable store gets the job back as queued,
                # so the next process to start, or a live one, runs it again.
                if self.store.durable:
                    job.status, job.started_at = "queued", None
                else:
                    job.status = "failed"
                    job.error = {"message": "The service stopped during the job."}
                    job.finished_at = time.time()
                await asyncio.shield(self.store.save(job))
                self.generation.observer.job_finished("interrupted")
                raise
            except Exception as exc:
                job.status, job.error = "failed", job_error(exc)
                logger.warning("job failed", error=job.error.get("message"))
            else:
                result = JobResult(
                    id=f"gen-{uuid.uuid4().hex}", completion=completion, cached=cached
                )
                job.status, job.result = "succeeded", result.to_dict()
            job.finished_at = time.time()
            await self.store.save(job)
            self.generation.observer.job_finished(job.status)
