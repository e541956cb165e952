"""Background generation: 202 + Location now, the result when it is ready."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from ..core.errors import APIError
from ..jobs.base import JobRequest, QueueFullError
from ..schemas.errors import (
    ERROR_RESPONSES,
    JSON_BODY_RESPONSES,
    LIMITED_RESPONSES,
    error_responses,
)
from ..schemas.generate import GenerateRequest, check_prompt_length
from ..schemas.jobs import JobResponse
from .deps import JobQueueDep, ModelCallDep, PrincipalDep

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


@router.post(
    "",
    summary="Queue a generation; poll the returned Location for its result",
    status_code=status.HTTP_202_ACCEPTED,
    responses=JSON_BODY_RESPONSES
    | LIMITED_RESPONSES
    | error_responses({404: "No such model", 503: "Queue full, or the rate limiter is down"}),
)
async def submit_job(
    body: GenerateRequest,
    request: Request,
    response: Response,
    jobs: JobQueueDep,
    call: ModelCallDep,
) -> JobResponse:
    """Queue a generation and answer at once: 202 with the job and `Location` to poll.
    A full or unreachable queue answers 503 with `Retry-After`; an accepted job is not lost.
    """
    settings, context, limit = call.settings, call.context, call.limit
    check_prompt_length(body.prompt, settings.max_prompt_chars)
    asked = JobRequest(body.to_generation(settings.llm_model), body.cache, context.request_id)
    call.service.route(asked.generation)  # an unknown model is refused now, not at its run
    await limit.admit(asked.generation)
    try:
        job = await jobs.submit(context.principal, asked.to_dict())
    except QueueFullError as exc:
        raise APIError(
            503,
            exc.message,
            code="queue_full",
            headers={"Retry-After": str(int(exc.retry_after))},
        ) from exc
    limit.keep_reservation()  # the job runs later: it is charged what it may use
    response.headers["Location"] = str(request.url_for("get_job", job_id=job.id).path)
    return JobResponse.of(job)


@router.get(
    "/{job_id}",
    summary="A job's status, and its result once finished",
    responses=error_responses({404: "No such job (or not yours)"}),
)
async def get_job(job_id: str, jobs: JobQueueDep, principal: PrincipalDep) -> JobResponse:
    """The job's status (`queued`, `running`, `succeeded`, `failed`) and, once finished,
    its result or error. Only its owner sees it.
    """
    job = await jobs.get(job_id)
    if job is None or job.owner != principal.id:  # others' jobs do not exist for you
        raise APIError(404, f"No job with id '{job_id}'.", code="job_not_found", param="job_id")
    return JobResponse.of(job)
