"""The one place routes go through to reach a model: caching and request coalescing.

A request is cacheable when its temperature is 0 (the output is meant to be
reproducible) or the caller opts in; `refresh` skips the read (the caller sent
`Cache-Control: no-cache`) but still stores the fresh answer. Identical cacheable
requests that arrive while one is in flight share that one upstream call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Literal, Protocol

from pydantic import TypeAdapter

from ..core.cache import ResponseCache
from ..core.context import RequestContext
from ..core.logging import get_logger
from .base import Completion, CompletionChunk, GenerationRequest, Provider, Usage

logger = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CachePolicy:
    use: bool = False
    refresh: bool = False

    @classmethod
    def for_request(
        cls, request: GenerationRequest, *, opt_in: bool | None, no_cache: bool
    ) -> CachePolicy:
        use = opt_in if opt_in is not None else request.temperature == 0
        return cls(use=use, refresh=no_cache)


def fingerprint(request: GenerationRequest) -> str:
    """A key that is equal for requests that must produce the same answer."""
    normalised = {
        "model": request.model,
        "messages": [[m.role, m.content.strip()] for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": round(request.temperature, 4),
        "top_p": request.top_p,
        "stop": sorted(request.stop),
    }
    digest = hashlib.sha256(json.dumps(normalised, sort_keys=True).encode()).hexdigest()
    return f"completion:{digest}"


# Cached completions are stored as JSON (pydantic reads and writes the dataclasses).
COMPLETION = TypeAdapter(Completion)


class _Flight:
    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[Completion]) -> None:
        self.task = task
        self.waiters = 0


@dataclass(frozen=True, slots=True)
class GenerationRecord:
    """One request to a model, as the generation log keeps it."""

    principal: str
    request_id: str | None
    model: str
    status: Literal["ok", "error", "cancelled"]
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    cached: bool
    streamed: bool
    error_code: str | None
    prompt: str
    completion: str
    created_at: datetime


class GenerationRecorder(Protocol):
    def record(self, record: GenerationRecord) -> None:
        """Take a record without blocking the request (writers batch in the background)."""
        ...


class GenerationService:
    def __init__(
        self,
        provider: Provider,
        cache: ResponseCache,
        recorder: GenerationRecorder | None = None,
    ) -> None:
        self.provider = provider
        self.cache = cache
        self.recorder = recorder
        self._in_flight: dict[str, _Flight] = {}

    async def complete(
        self,
        request: GenerationRequest,
        context: RequestContext,
        policy: CachePolicy = CachePolicy(),
    ) -> tuple[Completion, bool]:
        """The completion, and whether it came from the cache."""
        started = time.perf_counter()
        try:
            completion, cached = await self._complete(request, policy)
        except BaseException as exc:
            self._record(request, context, started, error=exc)
            raise
        self._record(request, context, started, completion=completion, cached=cached)
        return completion, cached

    async def _complete(
        self, request: GenerationRequest, policy: CachePolicy
    ) -> tuple[Completion, bool]:
        if not policy.use:
            return await self.provider.complete(request), False
        key = fingerprint(request)
        if not policy.refresh:
            cached = await self._read(key)
            if cached is not None:
                return cached, True
        return await self._coalesced(key, request), False

    def stream(
        self, request: GenerationRequest, context: RequestContext
    ) -> AsyncGenerator[CompletionChunk, None]:
        if self.recorder is None:
            return self.provider.stream(request)
        return self._recorded_stream(request, context)

    async def _recorded_stream(
        self, request: GenerationRequest, context: RequestContext
    ) -> AsyncGenerator[CompletionChunk, None]:
        started = time.perf_counter()
        pieces: list[str] = []
        usage: Usage | None = None
        chunks = self.provider.stream(request)
        try:
            async for chunk in chunks:
                pieces.append(chunk.text)
                usage = chunk.usage or usage
                yield chunk
        except BaseException as exc:
            self._record(request, context, started, error=exc, text="".join(pieces), streamed=True)
            raise
        finally:
            await chunks.aclose()
        completion = Completion(
            text="".join(pieces),
            finish_reason="stop",
            usage=usage or Usage(0, 0),
            model=request.model,
        )
        self._record(request, context, started, completion=completion, streamed=True)

    def _record(
        self,
        request: GenerationRequest,
        context: RequestContext,
        started: float,
        *,
        completion: Completion | None = None,
        error: BaseException | None = None,
        cached: bool = False,
        streamed: bool = False,
        text: str = "",
    ) -> None:
        if self.recorder is None:
            return
        usage = completion.usage if completion else Usage(0, 0)
        status: Literal["ok", "error", "cancelled"] = "ok"
        if error is not None:
            status = "error" if isinstance(error, Exception) else "cancelled"
        self.recorder.record(
            GenerationRecord(
                principal=context.principal,
                request_id=context.request_id,
                model=completion.model if completion else request.model,
                status=status,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
                cached=cached,
                streamed=streamed,
                error_code=getattr(error, "code", None) if error else None,
                prompt=request.messages[-1].content,
                completion=completion.text if completion else text,
                created_at=datetime.now(UTC),
            )
        )

    async def _read(self, key: str) -> Completion | None:
        try:
            raw = await self.cache.get(key)
        except Exception as exc:  # a cache outage degrades to misses, never to errors
            logger.warning("cache read failed", error=str(exc))
            return None
        return COMPLETION.validate_json(raw) if raw is not None else None

    async def _fetch_and_store(self, key: str, request: GenerationRequest) -> Completion:
        completion = await self.provider.complete(request)
        try:
            await self.cache.set(key, COMPLETION.dump_json(completion))
        except Exception as exc:
            logger.warning("cache write failed", error=str(exc))
        return completion

    async def _coalesced(self, key: str, request: GenerationRequest) -> Completion:
        flight = self._in_flight.get(key)
        if flight is None:
            flight = _Flight(asyncio.create_task(self._fetch_and_store(key, request)))
            self._in_flight[key] = flight
            flight.task.add_done_callback(partial(self._forget, key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()  # everyone who wanted this answer has gone

    def _forget(self, key: str, flight: _Flight, _: object) -> None:
        if self._in_flight.get(key) is flight:
            del self._in_flight[key]
