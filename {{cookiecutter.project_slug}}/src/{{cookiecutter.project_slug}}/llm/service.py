"""The one place routes go through to reach a model: routing, caching, coalescing, the log.

A request names a public model; the registry gives the upstream that serves it and
the upstream's name for it, and refuses parameters that upstream cannot honour.

A request is cacheable when its temperature is 0 (the output is meant to be
reproducible) or the caller opts in; `refresh` skips the read (the caller sent
`Cache-Control: no-cache`) but still stores the fresh answer. Identical cacheable
requests that arrive while one is in flight share that one upstream call. Cache and
coalescing are kept per caller (CACHE_SCOPE=principal) unless the deployment shares
them (`global`): otherwise `X-Cache: HIT` would tell one tenant what another asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Literal, Protocol

from pydantic import TypeAdapter

from ..core.cache import ResponseCache
from ..core.context import RequestContext
from ..core.logging import get_logger
from ..core.observe import ModelCall, Observer, Operation
from .base import (
    ChatMessage,
    Completion,
    CompletionChunk,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    GenerationRequest,
    Usage,
)
from .models import ModelRegistry
from .resilience import ResilientProvider

logger = get_logger(__name__)
CacheScope = Literal["principal", "global"]


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


# Requests and cached completions as JSON (pydantic reads and writes the dataclasses).
REQUEST = TypeAdapter(GenerationRequest)
COMPLETION = TypeAdapter(Completion)


def normalised(message: ChatMessage) -> ChatMessage:
    return (
        replace(message, content=message.content.strip())
        if isinstance(message.content, str)
        else message
    )


def fingerprint(request: GenerationRequest, scope: str) -> str:
    """A key that is equal for requests that must produce the same answer, per scope."""
    same = replace(request, messages=tuple(normalised(m) for m in request.messages))
    digest = hashlib.sha256(scope.encode() + b"\0" + REQUEST.dump_json(same)).hexdigest()
    return f"completion:{digest}"


def model_call(
    operation: Operation, request: GenerationRequest, upstream: str, *, streamed: bool = False
) -> ModelCall:
    return ModelCall(
        operation,
        request.model,
        upstream,
        streamed=streamed,
        max_tokens=request.max_tokens,
        temperature=request.temperature,
    )


def error_code(exc: BaseException) -> str:
    """What a failed call reports: the error's code, `cancelled`, or its class name."""
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):  # the caller went away
        return "cancelled"
    return str(getattr(exc, "code", None) or type(exc).__name__)


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
        models: ModelRegistry,
        cache: ResponseCache,
        recorder: GenerationRecorder | None = None,
        *,
        cache_scope: CacheScope = "principal",
        observer: Observer | None = None,
    ) -> None:
        self.models = models
        self.cache = cache
        self.recorder = recorder
        self.cache_scope = cache_scope
        self.observer = observer or Observer()
        self._in_flight: dict[str, _Flight] = {}

    def route(self, request: GenerationRequest) -> tuple[ResilientProvider, GenerationRequest]:
        """The upstream for the request's model, and the request as it must see it.

        Raises UnknownModelError, or UnsupportedParameterError for what it cannot honour.
        """
        route = self.models.resolve(request.model, "chat")
        return route.provider, route.chat_request(request)

    async def complete(
        self,
        request: GenerationRequest,
        context: RequestContext,
        policy: CachePolicy = CachePolicy(),
    ) -> tuple[Completion, bool]:
        """The completion, and whether it came from the cache."""
        provider, upstream_request = self.route(request)
        started = time.perf_counter()
        call = model_call("chat", request, provider.upstream)
        with self.observer.model_call(call):
            try:
                completion, cached = await self._complete(
                    provider, upstream_request, context, policy
                )
            except BaseException as exc:
                call.error = error_code(exc)
                self._record(request, context, started, error=exc)
                raise
            call.usage, call.response_model, call.cached = (
                completion.usage,
                completion.model,
                cached,
            )
            call.finish_reasons = tuple(choice.finish_reason for choice in completion.choices)
        self._record(request, context, started, completion=completion, cached=cached)
        return completion, cached

    async def _complete(
        self,
        provider: ResilientProvider,
        request: GenerationRequest,
        context: RequestContext,
        policy: CachePolicy,
    ) -> tuple[Completion, bool]:
        if not policy.use:
            return await provider.complete(request), False
        scope = context.principal if self.cache_scope == "principal" else ""
        key = fingerprint(request, scope)
        if not policy.refresh:
            cached = await self._read(key)
            self.observer.cache_lookup(hit=cached is not None)
            if cached is not None:
                return cached, True
        return await self._coalesced(key, provider, request), False

    def stream(
        self, request: GenerationRequest, context: RequestContext
    ) -> AsyncGenerator[CompletionChunk, None]:
        """The chunks of a streamed answer (routing errors are raised here, before any)."""
        provider, upstream_request = self.route(request)
        if self.recorder is None and type(self.observer) is Observer:
            return provider.stream(upstream_request)  # nothing to note: no layer in between
        return self._watched_stream(provider, upstream_request, request, context)

    async def _watched_stream(
        self,
        provider: ResilientProvider,
        upstream_request: GenerationRequest,
        request: GenerationRequest,
        context: RequestContext,
    ) -> AsyncGenerator[CompletionChunk, None]:
        """The stream, noted for the log and the observers however it ends."""
        started = time.perf_counter()
        call = model_call("chat", request, provider.upstream, streamed=True)
        pieces: list[str] = []
        usage: Usage | None = None
        reasons: dict[int, FinishReason] = {}
        opened = False
        chunks = provider.stream(upstream_request)
        with self.observer.model_call(call):
            try:
                async for chunk in chunks:
                    if not opened:
                        opened = True
                        self.observer.stream_opened(call)
                    if call.first_token_at is None and chunk.has_output:
                        call.first_token_at = time.perf_counter()
                    if chunk.index == 0:
                        pieces.append(chunk.text)
                    if chunk.finish_reason is not None:
                        reasons[chunk.index] = chunk.finish_reason
                    call.response_model = chunk.model or call.response_model
                    usage = chunk.usage or usage
                    yield chunk
            except BaseException as exc:
                call.error, call.usage = error_code(exc), usage
                text = "".join(pieces)
                self._record(request, context, started, error=exc, text=text, streamed=True)
                raise
            finally:
                await chunks.aclose()
            call.usage = usage
            call.finish_reasons = tuple(reasons[index] for index in sorted(reasons))
        completion = Completion.of_text(
            "".join(pieces),
            finish_reason=reasons.get(0, "stop"),
            usage=usage or Usage(0, 0),
            model=call.response_model or request.model,
        )
        self._record(request, context, started, completion=completion, streamed=True)

    async def embed(self, request: EmbeddingRequest, context: RequestContext) -> Embeddings:
        route = self.models.resolve(request.model, "embedding")
        call = ModelCall("embeddings", request.model, route.provider.upstream)
        with self.observer.model_call(call):
            try:
                result = await route.provider.embed(route.embedding_request(request))
            except BaseException as exc:
                call.error = error_code(exc)
                raise
            call.usage, call.response_model = Usage(result.prompt_tokens, 0), result.model
        return result

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
                prompt=request.prompt,
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

    async def _fetch_and_store(
        self, key: str, provider: ResilientProvider, request: GenerationRequest
    ) -> Completion:
        completion = await provider.complete(request)
        try:
            await self.cache.set(key, COMPLETION.dump_json(completion))
        except Exception as exc:
            logger.warning("cache write failed", error=str(exc))
        return completion

    async def _coalesced(
        self, key: str, provider: ResilientProvider, request: GenerationRequest
    ) -> Completion:
        flight = self._in_flight.get(key)
        if flight is None:
            task = asyncio.create_task(self._fetch_and_store(key, provider, request))
            flight = _Flight(task)
            self._in_flight[key] = flight
            task.add_done_callback(partial(self._forget, key, flight))
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
