"""OpenAI's Responses API (`/v1/responses`), served by translating each response into a
chat call, so it works in front of every model this service serves.

Created responses are stored (unless `store: false`) for `GET`, `DELETE` and
`previous_response_id`; each is its caller's own, and another caller's id is a 404.
Streams are OpenAI's typed events, each with its `sequence_number`. Background
responses (`background: true`) run in tasks of this process and are polled with `GET`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Request, Response
from fastapi.sse import EventSourceResponse
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from ..core.context import RequestContext
from ..core.errors import APIError
from ..core.logging import get_logger
from ..llm.base import CompletionChunk, FinishReason, GenerationRequest, ToolCallDelta, Usage
from ..llm.errors import ProviderError, UpstreamRateLimitedError
from ..llm.service import CachePolicy, GenerationService
from ..responses.background import BackgroundFullError, BackgroundResponses
from ..responses.store import ResponseStore, StoredResponse
from ..schemas.errors import MODEL_RESPONSES, OPENAI_RESPONSES
from ..schemas.generate import check_prompt_length
from ..schemas.responses import (
    ITEMS,
    DeletedResponse,
    ItemIn,
    LogprobOut,
    MessageOut,
    OutputTextOut,
    RefusalOut,
    ResponseCreateRequest,
    ResponseFunctionCallOut,
    ResponseObject,
    ResponseUsage,
    incomplete_details,
    new_id,
)
from .deps import ModelCallDep, RequestContextDep, ServicesDep, SettingsDep
from .openai import DEFAULT_MAX_TOKENS
from .streaming import (
    SSE_RESPONSES,
    cancel_on_disconnect,
    open_stream,
    sse,
    sse_response,
    wants_fresh,
)

router = APIRouter(prefix="/v1", tags=["openai-compatible"], responses=OPENAI_RESPONSES)
logger = get_logger(__name__)
# More responses than this in one previous_response_id chain are refused.
MAX_CHAIN = 1000
# An unfinished background response older than its timeout plus this has lost its process.
STALE_GRACE_S = 60.0


async def get_background(connection: HTTPConnection) -> BackgroundResponses:
    return cast(BackgroundResponses, connection.state.responses)


BackgroundDep = Annotated[BackgroundResponses, Depends(get_background)]


def not_found(response_id: str, param: str = "response_id") -> APIError:
    return APIError(
        404,
        f"Response with id '{response_id}' not found.",
        code="response_not_found",
        param=param,
    )


async def owned(store: ResponseStore, response_id: str, context: RequestContext) -> StoredResponse:
    """The caller's stored response; another caller's does not exist for them."""
    record = await store.get(response_id)
    if record is None or record.owner != context.principal:
        raise not_found(response_id)
    return record


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


async def history_of(
    store: ResponseStore, previous_id: str | None, context: RequestContext, *, budget: int
) -> list[ItemIn]:
    """The items of the chain `previous_id` ends: each response's input, then its output."""
    chain: list[StoredResponse] = []
    next_id = previous_id
    while next_id is not None:
        record = await store.get(next_id)
        if record is None or record.owner != context.principal:
            raise not_found(next_id, "previous_response_id")
        if record.unfinished:
            raise APIError(
                400,
                f"Response '{next_id}' is not finished yet (status {record.status}).",
                code="previous_response_not_finished",
                param="previous_response_id",
            )
        chain.append(record)
        budget -= json_size(record.input_items) + json_size(record.response.get("output", []))
        if budget < 0 or len(chain) > MAX_CHAIN:
            raise APIError(
                400,
                "The conversation is too long to continue (RESPONSES_MAX_CONTEXT_BYTES): "
                "start a new one without previous_response_id.",
                code="context_too_long",
                param="previous_response_id",
            )
        next_id = record.previous_response_id
    items: list[Any] = []
    for record in reversed(chain):
        items += [*record.input_items, *record.response.get("output", [])]
    try:
        return ITEMS.validate_python(items)
    except ValidationError as exc:  # e.g. a function call a failed stream left unnamed
        raise APIError(
            400,
            f"Response '{previous_id}' cannot be continued: its conversation is incomplete.",
            code="invalid_previous_response",
            param="previous_response_id",
        ) from exc


@dataclass
class ResponseEvents:
    """A response streamed as OpenAI streams it: `response.created` and `.in_progress`,
    then per output item `output_item.added`, its content parts and deltas, the `.done`
    events, and `response.completed` (or `.incomplete`, `.failed`) with the whole response.
    """

    response: ResponseObject  # as created, without output
    sequence: int = 0
    items: list[MessageOut | ResponseFunctionCallOut] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    usage: Usage | None = None
    model: str | None = None
    _message: MessageOut | None = None
    _call: ResponseFunctionCallOut | None = None
    _calls: dict[int, ResponseFunctionCallOut] = field(default_factory=dict)

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse(data, event=kind)

    def _add(self, item: MessageOut | ResponseFunctionCallOut) -> bytes:
        self.items.append(item)
        return self._event(
            "response.output_item.added",
            output_index=len(self.items) - 1,
            item=item.model_dump(mode="json"),
        )

    def _done(self, item: MessageOut | ResponseFunctionCallOut) -> bytes:
        return self._event(
            "response.output_item.done",
            output_index=self.items.index(item),
            item=item.model_dump(mode="json"),
        )

    def start(self) -> list[bytes]:
        snapshot = self.response.to_json()
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def chunk(self, chunk: CompletionChunk) -> list[bytes]:
        self.model = chunk.model or self.model  # the upstream's own name for the model it ran
        self.usage = chunk.usage or self.usage
        events: list[bytes] = []
        if chunk.index != 0:
            return events  # one answer per response
        if chunk.text or chunk.logprobs:
            events += self._text(chunk)
        if chunk.refusal:
            events += self._refusal(chunk.refusal)
        for delta in chunk.tool_calls:
            events += self._call_delta(delta)
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        return events

    def _part(self, kind: str) -> list[bytes]:
        """Events that open a message and a part of `kind` in it, unless they are open."""
        events: list[bytes] = []
        if self._message is None:
            events += self._close_call()
            self._message = MessageOut(id=new_id("msg"), status="in_progress", content=[])
            events.append(self._add(self._message))
        message = self._message
        if not message.content or message.content[-1].type != kind:
            events += self._close_part()
            part = OutputTextOut(text="") if kind == "output_text" else RefusalOut(refusal="")
            message.content.append(part)
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=message.id,
                    output_index=self.items.index(message),
                    content_index=len(message.content) - 1,
                    part=part.model_dump(mode="json"),
                )
            )
        return events

    def _where(self) -> dict[str, Any]:
        message = cast(MessageOut, self._message)
        return {
            "item_id": message.id,
            "output_index": self.items.index(message),
            "content_index": len(message.content) - 1,
        }

    def _text(self, chunk: CompletionChunk) -> list[bytes]:
        events = self._part("output_text")
        part = cast(OutputTextOut, cast(MessageOut, self._message).content[-1])
        logprobs = [LogprobOut.of(item) for item in chunk.logprobs or ()]
        part.text += chunk.text
        part.logprobs += logprobs
        events.append(
            self._event(
                "response.output_text.delta",
                **self._where(),
                delta=chunk.text,
                logprobs=[item.model_dump(mode="json") for item in logprobs],
            )
        )
        return events

    def _refusal(self, text: str) -> list[bytes]:
        events = self._part("refusal")
        cast(RefusalOut, cast(MessageOut, self._message).content[-1]).refusal += text
        events.append(self._event("response.refusal.delta", **self._where(), delta=text))
        return events

    def _call_delta(self, delta: ToolCallDelta) -> list[bytes]:
        events: list[bytes] = []
        call = self._calls.get(delta.index)
        if call is None:
            events += self._close_message()
            events += self._close_call()
            call = ResponseFunctionCallOut(
                id=new_id("fc"),
                call_id=delta.id or new_id("call"),
                name=delta.name or "",
                arguments="",
                status="in_progress",
            )
            self._calls[delta.index] = self._call = call
            events.append(self._add(call))
        if delta.arguments:
            call.arguments += delta.arguments
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=call.id,
                    output_index=self.items.index(call),
                    delta=delta.arguments,
                )
            )
        return events

    def _close_part(self) -> list[bytes]:
        if self._message is None or not self._message.content:
            return []
        part = self._message.content[-1]
        if isinstance(part, OutputTextOut):
            logprobs = [item.model_dump(mode="json") for item in part.logprobs]
            done = self._event(
                "response.output_text.done", **self._where(), text=part.text, logprobs=logprobs
            )
        else:
            done = self._event("response.refusal.done", **self._where(), refusal=part.refusal)
        part_done = self._event(
            "response.content_part.done", **self._where(), part=part.model_dump(mode="json")
        )
        return [done, part_done]

    def _close_message(self) -> list[bytes]:
        if self._message is None:
            return []
        events = self._close_part()
        self._message.status = (
            "incomplete" if incomplete_details(self.finish_reason) else "completed"
        )
        events.append(self._done(self._message))
        self._message = None
        return events

    def _close_call(self) -> list[bytes]:
        call = self._call
        if call is None:
            return []
        call.status = "completed"
        self._call = None
        return [
            self._event(
                "response.function_call_arguments.done",
                item_id=call.id,
                output_index=self.items.index(call),
                name=call.name,
                arguments=call.arguments,
            ),
            self._done(call),
        ]

    def close_items(self) -> list[bytes]:
        """The `.done` events of the items still open, once the model has finished."""
        return [*self._close_message(), *self._close_call()]

    def finished(self) -> ResponseObject:
        incomplete = incomplete_details(self.finish_reason)
        return self.response.model_copy(
            update={
                "status": "incomplete" if incomplete else "completed",
                "completed_at": None if incomplete else int(time.time()),
                "incomplete_details": incomplete,
                "model": self.model or self.response.model,
                "output": list(self.items),
                "usage": ResponseUsage.of(self.usage) if self.usage else None,
            }
        )

    def failed(self, message: str, *, rate_limited: bool = False) -> ResponseObject:
        for item in self.items:
            if item.status == "in_progress":
                item.status = "incomplete"
        partial = self.response.model_copy(update={"output": list(self.items)})
        return partial.failed(message, rate_limited=rate_limited)

    def terminal(self, response: ResponseObject) -> bytes:
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}
        return self._event(
            kind.get(response.status, "response.failed"), response=response.to_json()
        )


async def stream_response(
    first: CompletionChunk,
    chunks: AsyncGenerator[CompletionChunk, None],
    events: ResponseEvents,
    save: Callable[[ResponseObject], Awaitable[None]] | None,
) -> AsyncGenerator[bytes, None]:
    """The events of a stream whose first chunk has arrived; the response is stored
    before its last event, so the caller can continue from it as soon as it ends.

    A failure from here on can no longer change the status code: it is a
    `response.failed` event, and the stream ends.
    """
    try:
        for event in [*events.start(), *events.chunk(first)]:
            yield event
        async for chunk in chunks:
            for event in events.chunk(chunk):
                yield event
        for event in events.close_items():
            yield event
        final = events.finished()
    except ProviderError as exc:
        logger.warning("response stream failed after first token", error=exc.message)
        final = events.failed(exc.message, rate_limited=isinstance(exc, UpstreamRateLimitedError))
    except Exception:  # a bug must still end the stream the documented way
        logger.exception("response stream crashed after first token")
        final = events.failed("The stream failed unexpectedly.")
    finally:
        await chunks.aclose()
    if save is not None:
        try:
            await save(final)
        except Exception:
            logger.exception("streamed response not stored")
            final = final.failed("The response was generated but could not be stored.")
    yield events.terminal(final)


async def run_in_background(
    record: StoredResponse,
    started: ResponseObject,
    generation: GenerationRequest,
    context: RequestContext,
    service: GenerationService,
    store: ResponseStore,
    *,
    timeout_s: float,
) -> None:
    """Take a queued background response to its end, unless it is cancelled first."""
    try:
        if not await store.replace_unfinished(record.with_response(started.to_json())):
            return  # cancelled or deleted before it started
        policy = CachePolicy.for_request(generation, opt_in=None, no_cache=False)
        async with asyncio.timeout(timeout_s):
            completion, _ = await service.complete(generation, context, policy)
        final = started.completed(completion, at=int(time.time()))
    except asyncio.CancelledError:
        # Either cancelled (its record says so already, and stays) or the service stops.
        stopped = started.failed("The service stopped before the response finished.")
        await asyncio.shield(finish(store, record.with_response(stopped.to_json())))
        raise
    except TimeoutError:
        final = started.failed(f"The response did not finish within {timeout_s:g} s.")
    except ProviderError as exc:
        final = started.failed(exc.message, rate_limited=isinstance(exc, UpstreamRateLimitedError))
    except Exception:
        logger.exception("background response crashed", response_id=record.id)
        final = started.failed("The response failed unexpectedly.")
    await finish(store, record.with_response(final.to_json()))


async def finish(store: ResponseStore, record: StoredResponse) -> None:
    try:
        await store.replace_unfinished(record)
    except Exception:
        logger.exception("background response not stored", response_id=record.id)


@router.post(
    "/responses",
    summary="Create a response (streamed when `stream` is true)",
    description="String or item input, `instructions`, function tools with `function_call` "
    "and `function_call_output` items, `previous_response_id`, `text.format` for "
    "structured output, `store`, `background`. Served by the chat model behind `model`; "
    "a parameter it cannot honour is a 400 with `code: unsupported_parameter` naming it.",
    response_model=ResponseObject,
    responses=SSE_RESPONSES | MODEL_RESPONSES,
)
async def create_response(
    body: ResponseCreateRequest,
    request: Request,
    response: Response,
    call: ModelCallDep,
    background: BackgroundDep,
) -> ResponseObject | EventSourceResponse:
    settings, context, limit, service = call.settings, call.context, call.limit, call.service
    store = call.services.response_store
    body.check()
    items = ITEMS.dump_python(body.input_items(), mode="json", exclude_none=True)
    budget = settings.responses_max_context_bytes - json_size(items)
    if budget < 0:
        raise APIError(
            400,
            "The input is larger than RESPONSES_MAX_CONTEXT_BYTES.",
            code="context_too_long",
            param="input",
        )
    history = await history_of(store, body.previous_response_id, context, budget=budget)
    generation = body.to_generation(history, default_max_tokens=DEFAULT_MAX_TOKENS)
    text = "".join(message.text for message in generation.messages)
    check_prompt_length(text, settings.max_prompt_chars, param="input")
    await limit.admit(generation)
    started = ResponseObject.of_request(
        body, id=new_id("resp"), created_at=int(time.time()), status="in_progress"
    )
    record = StoredResponse(
        started.id,
        context.principal,
        started.to_json(),
        items,
        previous_response_id=body.previous_response_id,
        background=bool(body.background),
    )

    if body.background:
        service.route(generation)  # unknown models and parameters are refused now, not later
        queued = started.model_copy(update={"status": "queued"})
        record = record.with_response(queued.to_json())
        await store.add(record)
        work = run_in_background(
            record,
            started,
            generation,
            context,
            service,
            store,
            timeout_s=settings.responses_background_timeout_s,
        )
        try:
            background.start(started.id, work)
            limit.keep_reservation()  # charged in full: the run goes on after this request
        except BackgroundFullError as exc:
            await store.delete(started.id)
            raise APIError(
                503,
                f"{exc} Try again shortly.",
                code="background_full",
                headers={"Retry-After": "5"},
            ) from exc
        return queued

    async def save(result: ResponseObject) -> None:
        await store.add(record.with_response(result.to_json()))

    if body.stream:
        chunks = limit.metered(service.stream(generation, context))
        first = await open_stream(request, chunks)
        events = stream_response(
            first, chunks, ResponseEvents(started), save if body.stored else None
        )
        return limit.with_headers(
            sse_response(events, ping_interval_s=settings.sse_ping_interval_s)
        )
    policy = CachePolicy.for_request(generation, opt_in=None, no_cache=wants_fresh(request))
    completion, cached = await cancel_on_disconnect(
        request, service.complete(generation, context, policy)
    )
    limit.used(completion.usage, cached=cached)
    response.headers["X-Cache"] = "HIT" if cached else "MISS"
    result = started.completed(completion, at=int(time.time()))
    if body.stored:
        await save(result)
    return result


@router.get(
    "/responses/{response_id}",
    summary="A stored response (a background one: its status, and its output once done)",
    response_model=ResponseObject,
)
async def get_response(
    response_id: str,
    services: ServicesDep,
    settings: SettingsDep,
    context: RequestContextDep,
    stream: bool = False,
) -> ResponseObject:
    """A stored response (the caller's own), with its output; a background one shows
    its progress.
    """
    if stream:
        raise APIError(
            400,
            "Streaming a stored response again is not supported.",
            code="unsupported_parameter",
            param="stream",
        )
    record = await owned(services.response_store, response_id, context)
    result = ResponseObject.model_validate(record.response)
    limit = settings.responses_background_timeout_s + STALE_GRACE_S
    if record.unfinished and time.time() - record.created_at > limit:
        return result.failed("The process running this response stopped before it finished.")
    return result


@router.delete("/responses/{response_id}", summary="Delete a stored response")
async def delete_response(
    response_id: str,
    services: ServicesDep,
    context: RequestContextDep,
    background: BackgroundDep,
) -> DeletedResponse:
    """Forget a stored response (the caller's own); it can no longer be continued."""
    store = services.response_store
    await owned(store, response_id, context)
    await store.delete(response_id)
    background.cancel(response_id)  # elsewhere, the process running it sees it gone
    return DeletedResponse(id=response_id)


@router.post(
    "/responses/{response_id}/cancel",
    summary="Cancel a background response (a finished one is returned as it is)",
    response_model=ResponseObject,
)
async def cancel_response(
    response_id: str,
    services: ServicesDep,
    context: RequestContextDep,
    background: BackgroundDep,
) -> ResponseObject:
    """Stop a background response that is still queued or running; others are 400."""
    store = services.response_store
    record = await owned(store, response_id, context)
    if not record.background:
        raise APIError(
            400,
            "Only responses created with background: true can be cancelled.",
            code="invalid_request",
            param="response_id",
        )
    if record.unfinished:
        cancelled = ResponseObject.model_validate(record.response).model_copy(
            update={"status": "cancelled"}
        )
        if await store.replace_unfinished(record.with_response(cancelled.to_json())):
            background.cancel(response_id)  # elsewhere, the process running it polls the store
            return cancelled
        record = await owned(store, response_id, context)  # it finished meanwhile
    return ResponseObject.model_validate(record.response)
