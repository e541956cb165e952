"""Helpers for long-running responses: Server-Sent Events and client disconnects.

These run for every token and every request, so they avoid per-event work: events
are encoded once to bytes, a stream costs one producer task (not one per event), and
a request one watcher task.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Awaitable
from contextlib import suppress
from typing import Any, Protocol, TypeVar

import anyio
from fastapi import Request
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event

from ..core.errors import APIError, error_body
from ..core.logging import get_logger
from ..llm.base import CompletionChunk, Usage
from ..llm.errors import ProviderError

T = TypeVar("T")
# The longest a stream's source may take to clean up once the stream has ended early.
SOURCE_CLOSE_TIMEOUT_S = 10.0
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Streamed as Server-Sent Events"}
}
DONE = format_sse_event(data_str="[DONE]")
logger = get_logger(__name__)


def sse(data: Any, *, event: str | None = None) -> bytes:
    """One Server-Sent Event: `data` as compact JSON (a str is sent as it is)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return format_sse_event(data_str=text, event=event)


async def with_heartbeat(
    events: AsyncGenerator[bytes, None], interval_s: float
) -> AsyncGenerator[bytes, None]:
    """Pass events on, sending a keep-alive comment whenever the source is quiet.

    Proxies and load balancers close connections that stay silent, and a model can
    think for a long time between tokens. A producer task fills a small queue, so no
    wait ever cancels the source itself, and one timer per stream (re-armed only when
    it fires, not for every event) queues the comment once nothing else has been
    queued for `interval_s`. Events already waiting in the queue are sent together.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)
    last_queued = loop.time()

    async def produce() -> None:
        nonlocal last_queued
        try:
            async for event in events:
                last_queued = loop.time()
                await queue.put(event)
        except asyncio.CancelledError:
            raise  # the consumer is gone: nobody waits for the end mark
        except BaseException:
            await queue.put(None)
            raise
        finally:
            await events.aclose()
        await queue.put(None)  # the end

    timer: asyncio.TimerHandle

    def beat() -> None:
        nonlocal last_queued, timer
        quiet_s = loop.time() - last_queued
        if quiet_s >= interval_s:
            if queue.empty():  # otherwise events wait: the connection is not silent
                queue.put_nowait(KEEPALIVE_COMMENT)
            last_queued, quiet_s = loop.time(), 0.0
        timer = loop.call_later(interval_s - quiet_s, beat)

    producer = asyncio.create_task(produce())
    timer = loop.call_later(interval_s, beat)
    try:
        while True:
            ready: list[bytes] = []
            event = await queue.get()
            while event is not None:  # what has arrived together goes out in one write
                ready.append(event)
                if queue.empty():
                    break
                event = queue.get_nowait()
            if ready:
                yield b"".join(ready)
            if event is None:
                break
        await producer  # re-raises what the source raised
    finally:
        timer.cancel()
        if not producer.done():
            producer.cancel()
            # Awaited, so the source's own cleanup (upstream close, slot release, the
            # log row) has run, and its errors are seen, before the response ends.
            # Shielded: when the client goes away, Starlette cancels the response's task
            # group, again at every await, and awaiting the producer would pass each of
            # those cancellations on to it, cutting its cleanup short at its first await.
            with (
                anyio.move_on_after(SOURCE_CLOSE_TIMEOUT_S, shield=True),
                suppress(asyncio.CancelledError),
            ):
                await producer


def sse_response(
    events: AsyncGenerator[bytes, None], *, ping_interval_s: float
) -> EventSourceResponse:
    response = EventSourceResponse(with_heartbeat(events, ping_interval_s))
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


def wants_fresh(request: Request) -> bool:
    """`Cache-Control: no-cache`: the caller wants a new answer, not a cached one."""
    return "no-cache" in request.headers.get("cache-control", "").lower()


class ClientDisconnectedError(APIError):
    def __init__(self) -> None:
        # 499 (nginx's "client closed request"): logged, never seen by the client.
        super().__init__(499, "The client closed the connection.", code="client_closed_request")


# Most answers are done before this: they never pay for a watcher task.
DISCONNECT_WATCH_DELAY_S = 0.05


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it (and so its upstream call) if the client goes away.

    A watcher task listens for the client's disconnect, started only once the work
    has run for DISCONNECT_WATCH_DELAY_S.
    """
    task = asyncio.current_task()
    assert task is not None  # noqa: S101 - always inside a request task
    state = {"running": True, "disconnected": False}
    watchers: list[asyncio.Task[None]] = []

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        if state["running"]:
            state["disconnected"] = True
            task.cancel()

    def start_watching() -> None:
        if state["running"]:
            watchers.append(asyncio.create_task(watch()))

    timer = asyncio.get_running_loop().call_later(DISCONNECT_WATCH_DELAY_S, start_watching)
    try:
        return await work
    except asyncio.CancelledError:
        if not state["disconnected"]:
            raise
        task.uncancel()
        raise ClientDisconnectedError from None
    finally:
        state["running"] = False
        timer.cancel()
        for watcher in watchers:
            watcher.cancel()


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
    """How one API spells a stream: its opening events, the events of each chunk, its end."""

    def start(self) -> list[bytes]: ...

    def chunk(self, chunk: CompletionChunk) -> list[bytes]: ...

    def end(self, usage: Usage | None) -> list[bytes]: ...

    def error(self, body: dict[str, Any]) -> bytes: ...


async def stream_events(
    first: CompletionChunk, chunks: AsyncGenerator[CompletionChunk, None], fmt: StreamFormat
) -> AsyncGenerator[bytes, None]:
    """Events for a stream whose first chunk has arrived.

    A failure after that point can no longer change the status code: it becomes an
    error event, and the stream ends.
    """
    usage: Usage | None = None
    try:
        for event in fmt.start():
            yield event
        for event in fmt.chunk(first):
            yield event
        usage = first.usage
        async for chunk in chunks:
            usage = chunk.usage or usage
            for event in fmt.chunk(chunk):
                yield event
    except ProviderError as exc:
        error = APIError.from_provider(exc)
        logger.warning("stream failed after first token", error=exc.message)
        yield fmt.error(error_body(error.status_code, error.message, code=error.code))
        return
    except Exception:  # a bug must still end the stream the documented way
        logger.exception("stream crashed after first token")
        yield fmt.error(error_body(500, "The stream failed unexpectedly.", code="internal_error"))
        return
    finally:
        await chunks.aclose()
    for event in fmt.end(usage):
        yield event
