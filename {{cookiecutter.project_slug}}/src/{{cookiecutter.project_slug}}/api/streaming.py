"""Helpers for long-running responses: Server-Sent Events and client disconnects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from contextlib import suppress
from typing import Any, Protocol, TypeVar

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, ServerSentEvent, format_sse_event

from ..core.errors import APIError, error_body
from ..core.logging import get_logger
from ..llm.base import CompletionChunk, FinishReason, Usage
from ..llm.errors import ProviderError

T = TypeVar("T")
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Streamed as Server-Sent Events"}
}
logger = get_logger(__name__)


def encode_event(event: ServerSentEvent) -> bytes:
    data = event.raw_data
    if data is None and event.data is not None:
        data = json.dumps(jsonable_encoder(event.data), separators=(",", ":"))
    return format_sse_event(data_str=data, event=event.event, id=event.id, comment=event.comment)


async def with_heartbeat(
    events: AsyncIterator[ServerSentEvent], interval_s: float
) -> AsyncIterator[bytes]:
    """Encode events, sending a keep-alive comment whenever the source is idle.

    Proxies and load balancers close connections that stay silent, and a model can
    think for a long time before its first token.
    """
    pending: asyncio.Future[ServerSentEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=interval_s)
            if not done:
                yield KEEPALIVE_COMMENT
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield encode_event(event)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        if hasattr(events, "aclose"):
            await events.aclose()


def sse_response(
    events: AsyncIterator[ServerSentEvent], *, ping_interval_s: float
) -> EventSourceResponse:
    response = EventSourceResponse(with_heartbeat(events, ping_interval_s))
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


async def wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


class ClientDisconnectedError(APIError):
    def __init__(self) -> None:
        # 499 (nginx's "client closed request"): logged, never seen by the client.
        super().__init__(499, "The client closed the connection.", code="client_closed_request")


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client goes away first (the upstream call too)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
    if task not in done:
        raise ClientDisconnectedError
    return task.result()


async def open_stream(
    request: Request, chunks: AsyncGenerator[CompletionChunk, None]
) -> CompletionChunk:
    """Wait for the first chunk, so failures before it are plain HTTP errors."""
    try:
        return await cancel_on_disconnect(request, anext(chunks))
    except BaseException:
        await chunks.aclose()
        raise


class StreamFormat(Protocol):
    """How one API spells a stream: the events for its start, each text delta, the end."""

    def start(self) -> list[ServerSentEvent]: ...

    def delta(self, text: str) -> ServerSentEvent: ...

    def finish(self, reason: FinishReason, usage: Usage | None) -> list[ServerSentEvent]: ...

    def error(self, body: dict[str, Any]) -> ServerSentEvent: ...


async def stream_events(
    first: CompletionChunk, chunks: AsyncIterator[CompletionChunk], fmt: StreamFormat
) -> AsyncIterator[ServerSentEvent]:
    """Events for a stream whose first chunk has arrived.

    A failure after that point can no longer change the status code: it becomes an
    error event, and the stream ends.
    """
    for event in fmt.start():
        yield event
    last = first
    try:
        if first.text:
            yield fmt.delta(first.text)
        async for chunk in chunks:
            last = chunk
            if chunk.text:
                yield fmt.delta(chunk.text)
    except ProviderError as exc:
        status = APIError.from_provider(exc).status_code
        logger.warning("stream failed after first token", error=exc.message)
        yield fmt.error(error_body(status, exc.message, code=exc.code))
        return
    for event in fmt.finish(last.finish_reason or "stop", last.usage):
        yield event
