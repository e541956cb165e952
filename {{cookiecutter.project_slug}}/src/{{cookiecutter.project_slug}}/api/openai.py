"""OpenAI-compatible API (`/v1`): the official SDKs work with `base_url=http://host/v1`."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.sse import EventSourceResponse

from ..core.context import RequestContext
from ..core.errors import APIError
from ..llm.base import Completion, FinishReason, GenerationRequest, Usage
from ..llm.service import CachePolicy, GenerationService
from ..schemas.errors import ERROR_RESPONSES
from ..schemas.openai import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    ChunkDelta,
    CompletionParams,
    CompletionRequest,
    CompletionUsage,
    Model,
    ModelList,
    TextChoice,
    TextCompletion,
)
from ..settings import Settings
from .deps import (
    GenerationServiceDep,
    PrincipalDep,
    ProviderDep,
    RequestContextDep,
    SettingsDep,
)
from .limits import RateLimit, RateLimitDep
from .streaming import (
    DONE,
    SSE_RESPONSES,
    cancel_on_disconnect,
    open_stream,
    sse,
    sse_response,
    stream_events,
    wants_fresh,
)

router = APIRouter(prefix="/v1", tags=["openai-compatible"], responses=ERROR_RESPONSES)
DEFAULT_MAX_TOKENS = 1024


def event(chunk: ChatCompletionChunk | TextCompletion) -> bytes:
    return sse(chunk.model_dump_json())


@dataclass
class ChatStream:
    """`chat.completion.chunk` events: role first, finish reason last, then usage, [DONE]."""

    id: str
    created: int
    model: str
    include_usage: bool

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None) -> bytes:
        return event(
            ChatCompletionChunk(
                id=self.id,
                created=self.created,
                model=self.model,
                choices=choices,
                usage=CompletionUsage.of(usage) if usage else None,
            )
        )

    def start(self) -> list[bytes]:
        return [self._chunk([ChunkChoice(delta=ChunkDelta(role="assistant", content=""))])]

    def delta(self, text: str) -> bytes:
        return self._chunk([ChunkChoice(delta=ChunkDelta(content=text))])

    def finish(self, reason: FinishReason, usage: Usage | None) -> list[bytes]:
        events = [self._chunk([ChunkChoice(delta=ChunkDelta(), finish_reason=reason)])]
        if self.include_usage and usage is not None:
            events.append(self._chunk([], usage))
        return [*events, DONE]

    def error(self, body: dict[str, Any]) -> bytes:
        return sse(body)


@dataclass
class TextStream(ChatStream):
    """`text_completion` events, as `/v1/completions` streams them."""

    def _text(self, choices: list[TextChoice], usage: Usage | None = None) -> bytes:
        return event(
            TextCompletion(
                id=self.id,
                created=self.created,
                model=self.model,
                choices=choices,
                usage=CompletionUsage.of(usage) if usage else None,
            )
        )

    def start(self) -> list[bytes]:
        return []

    def delta(self, text: str) -> bytes:
        return self._text([TextChoice(text=text, finish_reason=None)])

    def finish(self, reason: FinishReason, usage: Usage | None) -> list[bytes]:
        events = [self._text([TextChoice(text="", finish_reason=reason)])]
        if self.include_usage and usage is not None:
            events.append(self._text([], usage))
        return [*events, DONE]


async def checked_model(provider: ProviderDep, model: str) -> str:
    available = await provider.list_models()
    if model not in available:
        raise APIError(
            404,
            f"The model '{model}' does not exist; available: {', '.join(available)}.",
            code="model_not_found",
            param="model",
        )
    return model


async def run(
    request: Request,
    response: Response,
    service: GenerationService,
    settings: Settings,
    context: RequestContext,
    limit: RateLimit,
    generation: GenerationRequest,
    body: CompletionParams,
    fmt: ChatStream,
) -> Completion | EventSourceResponse:
    """A stream (as `fmt` spells it) or a whole completion, as the request asks."""
    await limit.admit(generation)
    if body.stream:
        chunks = limit.metered(service.stream(generation, context))
        first = await open_stream(request, chunks)
        events = stream_events(first, chunks, fmt)
        return limit.with_headers(
            sse_response(events, ping_interval_s=settings.sse_ping_interval_s)
        )
    policy = CachePolicy.for_request(generation, opt_in=body.cache, no_cache=wants_fresh(request))
    completion, cached = await cancel_on_disconnect(
        request, service.complete(generation, context, policy)
    )
    limit.used(completion.usage, cached=cached)
    response.headers["X-Cache"] = "HIT" if cached else "MISS"
    return completion


@router.get("/models", summary="List the models this service serves")
async def list_models(provider: ProviderDep, settings: SettingsDep, _: PrincipalDep) -> ModelList:
    owner = "system" if settings.llm_provider == "fake" else settings.llm_provider
    models = await provider.list_models()
    return ModelList(data=[Model(id=name, created=0, owned_by=owner) for name in models])


@router.post(
    "/chat/completions",
    summary="Create a chat completion (streamed when `stream` is true)",
    response_model=ChatCompletion,
    responses=SSE_RESPONSES,
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    response: Response,
    service: GenerationServiceDep,
    provider: ProviderDep,
    settings: SettingsDep,
    context: RequestContextDep,
    limit: RateLimitDep,
) -> ChatCompletion | EventSourceResponse:
    model = await checked_model(provider, body.model)
    generation = body.to_generation(model, default_max_tokens=DEFAULT_MAX_TOKENS)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    fmt = ChatStream(completion_id, created, model, body.include_usage)
    result = await run(request, response, service, settings, context, limit, generation, body, fmt)
    if not isinstance(result, Completion):
        return result
    completion = result
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=completion.model,
        choices=[
            ChatChoice(
                message=AssistantMessage(content=completion.text),
                finish_reason=completion.finish_reason,
            )
        ],
        usage=CompletionUsage.of(completion.usage),
    )


@router.post(
    "/completions",
    summary="Create a text completion (legacy API; streamed when `stream` is true)",
    response_model=TextCompletion,
    responses=SSE_RESPONSES,
)
async def completions(
    body: CompletionRequest,
    request: Request,
    response: Response,
    service: GenerationServiceDep,
    provider: ProviderDep,
    settings: SettingsDep,
    context: RequestContextDep,
    limit: RateLimitDep,
) -> TextCompletion | EventSourceResponse:
    model = await checked_model(provider, body.model)
    generation = body.to_generation(model)
    completion_id, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    fmt = TextStream(completion_id, created, model, body.include_usage)
    result = await run(request, response, service, settings, context, limit, generation, body, fmt)
    if not isinstance(result, Completion):
        return result
    completion = result
    return TextCompletion(
        id=completion_id,
        created=created,
        model=completion.model,
        choices=[TextChoice(text=completion.text, finish_reason=completion.finish_reason)],
        usage=CompletionUsage.of(completion.usage),
    )
