"""Native generation API (`/api/v1`): one answer, a stream, a batch, a token count."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.sse import EventSourceResponse

from ..core.context import RequestContext
from ..core.errors import APIError, as_api_error, error_detail
from ..llm.base import CompletionChunk, FinishReason, Usage
from ..llm.service import CachePolicy, GenerationService
from ..llm.tokens import count_tokens
from ..schemas.errors import (
    ERROR_RESPONSES,
    JSON_BODY_RESPONSES,
    LIMITED_RESPONSES,
    MODEL_RESPONSES,
    ErrorDetail,
)
from ..schemas.generate import (
    BatchItem,
    BatchRequest,
    BatchResponse,
    GenerateRequest,
    GenerateResponse,
    StreamDone,
    TokenizeRequest,
    TokenizeResponse,
    UsageInfo,
    check_prompt_length,
)
from .deps import CPUPoolDep, ModelCallDep
from .streaming import (
    SSE_RESPONSES,
    cancel_on_disconnect,
    open_stream,
    sse,
    sse_response,
    stream_events,
    wants_fresh,
)

router = APIRouter(
    prefix="/api/v1", tags=["generation"], responses=ERROR_RESPONSES | JSON_BODY_RESPONSES
)


async def answer(
    service: GenerationService,
    body: GenerateRequest,
    model: str,
    context: RequestContext,
    *,
    no_cache: bool = False,
) -> GenerateResponse:
    """The native API's answer to one prompt."""
    generation = body.to_generation(model)
    policy = CachePolicy.for_request(generation, opt_in=body.cache, no_cache=no_cache)
    completion, cached = await service.complete(generation, context, policy)
    return GenerateResponse.of(completion, cached=cached)


@router.post("/generate", summary="Generate text from a prompt", responses=MODEL_RESPONSES)
async def generate(
    body: GenerateRequest, request: Request, response: Response, call: ModelCallDep
) -> GenerateResponse:
    """One answer to a prompt. Cached (`X-Cache: HIT`) at temperature 0 or with
    `"cache": true`; `Cache-Control: no-cache` asks for a fresh one. Counted by the caller's
    rate limits; `model` picks one of `GET /v1/models`.
    """
    settings = call.settings
    check_prompt_length(body.prompt, settings.max_prompt_chars)
    await call.limit.admit(body.to_generation(settings.llm_model))
    work = answer(
        call.service, body, settings.llm_model, call.context, no_cache=wants_fresh(request)
    )
    result = await cancel_on_disconnect(request, work)
    call.limit.used(result.usage, cached=result.cached)
    response.headers["X-Cache"] = "HIT" if result.cached else "MISS"
    return result


@dataclass
class NativeStream:
    """`event: delta` per piece of text, then `event: done` with usage (or `event: error`)."""

    id: str
    model: str
    reason: FinishReason = "stop"

    def start(self) -> list[bytes]:
        return []

    def chunk(self, chunk: CompletionChunk) -> list[bytes]:
        self.model = chunk.model or self.model
        self.reason = chunk.finish_reason or self.reason
        return [sse({"text": chunk.text}, event="delta")] if chunk.text else []

    def end(self, usage: Usage | None) -> list[bytes]:
        done = StreamDone(
            id=self.id,
            model=self.model,
            finish_reason=self.reason,
            tokens_used=usage.completion_tokens if usage else 0,
            usage=UsageInfo.of(usage) if usage else None,
        )
        return [sse(done.model_dump_json(), event="done")]

    def error(self, body: dict[str, Any]) -> bytes:
        return sse(body, event="error")


@router.post(
    "/generate/stream",
    summary="Generate text as Server-Sent Events",
    responses=SSE_RESPONSES | MODEL_RESPONSES,
)
async def generate_stream(
    body: GenerateRequest, request: Request, call: ModelCallDep
) -> EventSourceResponse:
    """The same answer as Server-Sent Events: `event: delta` with each piece of text,
    then `event: done` with the finish reason and usage. A failure before the first piece is
    a plain HTTP error; after it, an `event: error` ends the stream.
    """
    settings, limit = call.settings, call.limit
    check_prompt_length(body.prompt, settings.max_prompt_chars)
    generation = body.to_generation(settings.llm_model)
    await limit.admit(generation)
    chunks = limit.metered(call.service.stream(generation, call.context))
    first = await open_stream(request, chunks)
    events = stream_events(first, chunks, NativeStream(f"gen-{uuid.uuid4().hex}", generation.model))
    return limit.with_headers(sse_response(events, ping_interval_s=settings.sse_ping_interval_s))


@router.post(
    "/generate/batch", summary="Generate for many prompts in one call", responses=LIMITED_RESPONSES
)
async def generate_batch(body: BatchRequest, request: Request, call: ModelCallDep) -> BatchResponse:
    """Many prompts in one call, run with bounded concurrency (BATCH_CONCURRENCY, at
    most BATCH_MAX_ITEMS). Each item gets its result or its own error; one failing item does
    not fail the others.
    """
    settings, limit = call.settings, call.limit
    if len(body.requests) > settings.batch_max_items:
        raise APIError(
            422,
            f"requests: at most {settings.batch_max_items} items per batch.",
            code="too_many_items",
            param="requests",
        )
    for index, item in enumerate(body.requests):
        check_prompt_length(
            item.prompt, settings.max_prompt_chars, param=f"requests[{index}].prompt"
        )
    await limit.admit(*(item.to_generation(settings.llm_model) for item in body.requests))
    slots = asyncio.Semaphore(settings.batch_concurrency)

    async def run(index: int, item: GenerateRequest) -> BatchItem:
        async with slots:
            try:
                result = await answer(call.service, item, settings.llm_model, call.context)
            except Exception as exc:
                error = as_api_error(exc)
                if error is None:
                    raise  # a bug: the task group cancels the other items
                detail = error_detail(
                    error.status_code, error.message, code=error.code, param=error.param
                )
                return BatchItem(index=index, error=ErrorDetail(**detail))
            limit.used(result.usage, cached=result.cached)
            return BatchItem(index=index, result=result)

    async def run_all() -> list[BatchItem]:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run(i, item)) for i, item in enumerate(body.requests)]
        return [task.result() for task in tasks]

    try:
        items = await cancel_on_disconnect(request, run_all())
    except ExceptionGroup as group:
        raise group.exceptions[0] from None  # the 500 handler logs it
    failed = sum(item.error is not None for item in items)
    return BatchResponse(results=list(items), succeeded=len(items) - failed, failed=failed)


@router.post("/tokenize", summary="Count the tokens of a text", responses=LIMITED_RESPONSES)
async def tokenize(body: TokenizeRequest, cpu: CPUPoolDep, call: ModelCallDep) -> TokenizeResponse:
    """The token count of a text, as the rate limits estimate it (large texts are
    counted off the event loop, in the process pool).
    """
    await call.limit.admit()  # a request, no model tokens: the count is CPU work of its own
    tokens = await cpu.run(count_tokens, body.text)
    return TokenizeResponse(tokens=tokens, characters=len(body.text))
