"""OpenAI-compatible API (`/v1`): the official SDKs work with `base_url=http://host/v1`.

Chat Completions (tools, structured outputs, streaming exactly as OpenAI streams),
Completions, Models and Embeddings. The Responses API has its own router.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.sse import EventSourceResponse

from ..core.errors import APIError
from ..llm.base import Completion, CompletionChunk, EmbeddingRequest, GenerationRequest, Usage
from ..llm.service import CachePolicy
from ..schemas.errors import MODEL_RESPONSES, OPENAI_RESPONSES
from ..schemas.generate import check_prompt_length
from ..schemas.openai import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceLogprobs,
    ChunkChoice,
    ChunkDelta,
    CompletionRequest,
    CompletionUsage,
    EmbeddingItem,
    EmbeddingList,
    EmbeddingRequestIn,
    EmbeddingUsage,
    FunctionCallDeltaOut,
    LegacyLogprobs,
    Model,
    ModelList,
    SamplingParams,
    TextChoice,
    TextCompletion,
    ToolCallDeltaOut,
)
from .deps import GenerationServiceDep, ModelCall, ModelCallDep, PrincipalDep
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

router = APIRouter(prefix="/v1", tags=["openai-compatible"], responses=OPENAI_RESPONSES)
DEFAULT_MAX_TOKENS = 1024


def event(chunk: ChatCompletionChunk | TextCompletion) -> bytes:
    return sse(chunk.model_dump_json())


@dataclass
class ChatStream:
    """`chat.completion.chunk` events: role first, deltas (text, tool calls), the finish
    reason of each choice, then the usage chunk when asked for, then `[DONE]`."""

    id: str
    created: int
    model: str
    choices: int
    include_usage: bool
    _finished: set[int] = field(default_factory=set)

    def _event(self, choices: list[ChunkChoice], usage: Usage | None = None) -> bytes:
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
        return [
            self._event([ChunkChoice(index=index, delta=ChunkDelta(role="assistant", content=""))])
            for index in range(self.choices)
        ]

    def chunk(self, chunk: CompletionChunk) -> list[bytes]:
        if chunk.model:
            self.model = chunk.model  # the upstream's own name for the model it ran
        events = []
        if chunk.has_output or chunk.logprobs:
            delta = ChunkDelta(
                content=chunk.text or None,
                refusal=chunk.refusal,
                tool_calls=[
                    ToolCallDeltaOut(
                        index=call.index,
                        id=call.id,
                        type="function" if call.id else None,
                        function=FunctionCallDeltaOut(name=call.name, arguments=call.arguments),
                    )
                    for call in chunk.tool_calls
                ]
                or None,
            )
            logprobs = ChoiceLogprobs.of(chunk.logprobs)
            events.append(
                self._event([ChunkChoice(index=chunk.index, delta=delta, logprobs=logprobs)])
            )
        if chunk.finish_reason is not None:
            self._finished.add(chunk.index)
            choice = ChunkChoice(
                index=chunk.index, delta=ChunkDelta(), finish_reason=chunk.finish_reason
            )
            events.append(self._event([choice]))
        return events

    def end(self, usage: Usage | None) -> list[bytes]:
        # A choice the upstream never finished (it ended the stream early) ends here.
        events = [
            self._event([ChunkChoice(index=index, delta=ChunkDelta(), finish_reason="stop")])
            for index in range(self.choices)
            if index not in self._finished
        ]
        if self.include_usage and usage is not None:
            events.append(self._event([], usage))
        return [*events, DONE]

    def error(self, body: dict[str, Any]) -> bytes:
        return sse(body)


@dataclass
class TextStream(ChatStream):
    """`text_completion` events, as `/v1/completions` streams them."""

    echo: str | None = None

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
        if not self.echo:
            return []
        echo = self.echo
        return [
            self._text([TextChoice(index=i, text=echo, finish_reason=None)])
            for i in range(self.choices)
        ]

    def chunk(self, chunk: CompletionChunk) -> list[bytes]:
        if chunk.model:
            self.model = chunk.model
        events = []
        if chunk.text or chunk.logprobs:
            logprobs = LegacyLogprobs.of(chunk.logprobs)
            choice = TextChoice(
                index=chunk.index, text=chunk.text, finish_reason=None, logprobs=logprobs
            )
            events.append(self._text([choice]))
        if chunk.finish_reason is not None:
            self._finished.add(chunk.index)
            events.append(
                self._text(
                    [TextChoice(index=chunk.index, text="", finish_reason=chunk.finish_reason)]
                )
            )
        return events

    def end(self, usage: Usage | None) -> list[bytes]:
        events = [
            self._text([TextChoice(index=index, text="", finish_reason="stop")])
            for index in range(self.choices)
            if index not in self._finished
        ]
        if self.include_usage and usage is not None:
            events.append(self._text([], usage))
        return [*events, DONE]


async def run(
    request: Request,
    response: Response,
    call: ModelCall,
    generation: GenerationRequest,
    body: SamplingParams,
    fmt: ChatStream,
) -> Completion | EventSourceResponse:
    """A stream (as `fmt` spells it) or a whole completion, as the request asks."""
    limit = call.limit
    await limit.admit(generation)
    if body.stream:
        chunks = limit.metered(call.service.stream(generation, call.context))
        first = await open_stream(request, chunks)
        events = stream_events(first, chunks, fmt)
        return limit.with_headers(
            sse_response(events, ping_interval_s=call.settings.sse_ping_interval_s)
        )
    policy = CachePolicy.for_request(generation, opt_in=body.cache, no_cache=wants_fresh(request))
    completion, cached = await cancel_on_disconnect(
        request, call.service.complete(generation, call.context, policy)
    )
    limit.used(completion.usage, cached=cached)
    response.headers["X-Cache"] = "HIT" if cached else "MISS"
    return completion


@router.get("/models", summary="List the models this service serves")
async def list_models(service: GenerationServiceDep, _: PrincipalDep) -> ModelList:
    """The chat and embedding models this service serves (their aliases are accepted too)."""
    return ModelList(
        data=[
            Model(id=route.name, created=route.created, owned_by=route.owned_by)
            for route in service.models.routes
        ]
    )


@router.get(
    "/models/{model_id:path}",
    summary="One model (by its name or an alias)",
)
async def get_model(model_id: str, service: GenerationServiceDep, _: PrincipalDep) -> Model:
    """One model, by its name or an alias; an unknown one is 404 `model_not_found`."""
    route = service.models.find(model_id)
    if route is None:
        raise APIError(
            404,
            f"The model '{model_id}' does not exist.",
            code="model_not_found",
            param="model",
        )
    return Model(id=route.name, created=route.created, owned_by=route.owned_by)


@router.post(
    "/chat/completions",
    summary="Create a chat completion (streamed when `stream` is true)",
    description="Tools (`tools`, `tool_choice`, `parallel_tool_calls`), structured outputs "
    "(`response_format`), `n`, `stop`, `seed`, `logprobs`, penalties, `logit_bias`, "
    "`reasoning_effort`, `metadata`, text and image content, `developer` and `tool` "
    "messages: passed to the model server. A parameter the model cannot honour is a 400 "
    "with `code: unsupported_parameter` naming it.",
    response_model=ChatCompletion,
    responses=SSE_RESPONSES | MODEL_RESPONSES,
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    response: Response,
    call: ModelCallDep,
) -> ChatCompletion | EventSourceResponse:
    generation = body.to_generation(default_max_tokens=DEFAULT_MAX_TOKENS)
    text = "".join(message.text for message in generation.messages)
    check_prompt_length(text, call.settings.max_prompt_chars, param="messages")
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    fmt = ChatStream(completion_id, created, body.model, body.n, body.include_usage)
    result = await run(request, response, call, generation, body, fmt)
    if not isinstance(result, Completion):
        return result
    return ChatCompletion.of(result, id=completion_id, created=created)


@router.post(
    "/completions",
    summary="Create a text completion (legacy API; streamed when `stream` is true)",
    response_model=TextCompletion,
    responses=SSE_RESPONSES | MODEL_RESPONSES,
)
async def completions(
    body: CompletionRequest,
    request: Request,
    response: Response,
    call: ModelCallDep,
) -> TextCompletion | EventSourceResponse:
    """OpenAI's legacy Completions API: a prompt, continued (`echo`, `n`, `stop`,
    `logprobs` as the model allows). Streamed as `text_completion` events when `stream` is true.
    """
    check_prompt_length(body.prompt_text, call.settings.max_prompt_chars)
    generation = body.to_generation()
    completion_id, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    echo = body.prompt_text if body.echo else None
    fmt = TextStream(completion_id, created, body.model, body.n, body.include_usage, echo=echo)
    result = await run(request, response, call, generation, body, fmt)
    if not isinstance(result, Completion):
        return result
    return TextCompletion.of(result, id=completion_id, created=created, echo=echo)


def base64_floats(vector: tuple[float, ...]) -> str:
    """OpenAI's `encoding_format: base64`: little-endian float32, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@router.post(
    "/embeddings", summary="Create embeddings for one or more inputs", responses=MODEL_RESPONSES
)
async def embeddings(
    body: EmbeddingRequestIn, request: Request, call: ModelCallDep
) -> EmbeddingList:
    """Vectors for one or many texts (or token-id lists), as floats or, with
    `encoding_format: base64`, little-endian float32 in base64; `dimensions` shortens them.
    """
    inputs = body.inputs()
    texts = [item for item in inputs if isinstance(item, str)]
    for text in texts:
        check_prompt_length(text, call.settings.max_prompt_chars, param="input")
    token_ids = sum(len(item) for item in inputs if not isinstance(item, str))
    await call.limit.admit_inputs(texts, token_ids)
    asked = EmbeddingRequest(inputs, body.model, body.dimensions, body.user)
    result = await cancel_on_disconnect(request, call.service.embed(asked, call.context))
    call.limit.used_tokens(result.prompt_tokens)
    encode = base64_floats if body.encoding_format == "base64" else list
    return EmbeddingList(
        data=[
            EmbeddingItem(index=index, embedding=encode(vector))
            for index, vector in enumerate(result.vectors)
        ],
        model=result.model,
        usage=EmbeddingUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
    )
