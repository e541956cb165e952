"""Rate limits of the routes that reach the model: admission, OpenAI's headers, settlement.

Each caller (`RequestContext.principal`: its API key or user, else its address) gets
`RATE_LIMIT_RPM` requests and `RATE_LIMIT_TPM` tokens a minute. A request reserves
its prompt estimate plus `max_tokens` when it is admitted, so a burst of long
generations cannot overrun the budget, and is settled when it ends to what it used:
the model's usage, or for a stream cut short the prompt estimate plus the tokens
delivered; a cached answer, or one that failed before any output, uses none.
Responses carry OpenAI's `x-ratelimit-*` headers; a refusal is 429 with `Retry-After`,
which the official SDKs wait for before they retry.

A route gets its `RateLimit` from `ModelCallDep` (`api/calls.py`), calls
`await limit.admit(generation)` before the model and `limit.used(usage)` after it (a
stream: `limit.metered(chunks)`); the dependency settles when the response has been sent.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Sequence
from typing import Protocol, TypeVar

from fastapi import Response

from ..core.errors import APIError
from ..core.observe import Observer
from ..core.ratelimit import Decision, Limit, LimiterUnavailableError, RateLimiter
from ..llm.base import CompletionChunk, GenerationRequest
from ..llm.tokens import count_tokens, request_tokens
from ..settings import Settings

ResponseT = TypeVar("ResponseT", bound=Response)
# What responses of limited routes carry (CORS exposes them to browser clients too).
LIMIT_HEADERS = tuple(
    f"x-ratelimit-{kind}-{name}"
    for name in ("requests", "tokens")
    for kind in ("limit", "remaining", "reset")
)


class TokenCounts(Protocol):
    """The model's usage report (`llm.base.Usage`, or the schemas' `UsageInfo`)."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...


def duration(seconds: float) -> str:
    """A wait as OpenAI's headers spell it: `12ms`, `1s`, `17.28s`, `6m0s`, `1h0m5s`."""
    ms = math.ceil(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms" if ms > 0 else "0s"
    minutes, ms = divmod(ms, 60_000)
    hours, minutes = divmod(minutes, 60)
    text = f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    return f"{hours}h{text}" if hours else text


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))  # whole seconds, never 0: the wait is real


def limit_headers(dimensions: Sequence[str], decision: Decision) -> dict[str, str]:
    """`x-ratelimit-{limit,remaining,reset}-{requests,tokens}`; none if the store was down."""
    headers = {}
    for name, level in zip(dimensions, decision.levels, strict=False):
        headers[f"x-ratelimit-limit-{name}"] = str(level.limit)
        headers[f"x-ratelimit-remaining-{name}"] = str(level.remaining)
        headers[f"x-ratelimit-reset-{name}"] = duration(level.reset_s)
    return headers


async def acquire(limiter: RateLimiter, limits: Sequence[Limit]) -> Decision:
    try:
        return await limiter.acquire(limits)
    except LimiterUnavailableError as exc:
        raise APIError(
            503,
            "Rate limits cannot be checked right now; retry shortly.",
            code="rate_limiter_unavailable",
            headers={"Retry-After": retry_after(exc.retry_after_s)},
        ) from exc


def refusal(dimensions: Sequence[str], limits: Sequence[Limit], decision: Decision) -> str:
    for name, limit, level in zip(dimensions, limits, decision.levels, strict=True):
        if level.remaining < limit.cost:
            return (
                f"Rate limit reached for {name} per minute: limit {limit.per_minute}, "
                f"remaining {level.remaining}, requested {limit.cost}. "
                f"Please try again in {duration(decision.retry_after_s)}."
            )
    return f"Rate limit reached. Please try again in {duration(decision.retry_after_s)}."


class RateLimit:
    """The limits of one request (or WebSocket prompt): admitted once, settled at its end."""

    def __init__(
        self,
        limiter: RateLimiter,
        settings: Settings,
        caller: str,
        response: Response | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.limiter = limiter
        self.observer = observer or Observer()
        self.rpm = settings.rate_limit_rpm
        self.tpm = settings.rate_limit_tpm
        self.caller = caller
        self.response = response  # gets the headers when admitted (not a returned Response)
        self.headers: dict[str, str] = {}
        self._reserved: int | None = None  # tokens to settle, once admitted
        self._prompt = 0
        self._used = 0
        self._streamed: list[str] = []
        self._stream_usage: TokenCounts | None = None

    async def admit(self, *generations: GenerationRequest) -> None:
        """Count a request per generation (one without any) and reserve their tokens.

        Raises 429 when a limit would be exceeded, 400 when the request alone is larger
        than a whole minute's budget (no wait would help), 503 when the shared limiter
        is unreachable and RATE_LIMIT_FAIL_OPEN is off.
        """
        prompt = sum(request_tokens(g) for g in generations)
        tokens = prompt + sum(g.max_tokens * g.n for g in generations)
        await self._admit(max(1, len(generations)), prompt, tokens)

    async def admit_inputs(self, texts: Sequence[str], token_ids: int = 0) -> None:
        """Admit an embeddings request: one request, its input tokens (no output)."""
        prompt = sum(map(count_tokens, texts)) + token_ids
        await self._admit(1, prompt, prompt)

    async def _admit(self, requests: int, prompt: int, tokens: int) -> None:
        dimensions: list[str] = []
        limits: list[Limit] = []
        if self.rpm:
            dimensions.append("requests")
            limits.append(Limit(f"{self.caller}:requests", self.rpm, requests))
        if self.tpm:
            dimensions.append("tokens")
            limits.append(Limit(f"{self.caller}:tokens", self.tpm, tokens))
        for name, limit in zip(dimensions, limits, strict=True):
            if limit.cost > limit.per_minute:
                needs = (
                    f"up to {limit.cost} tokens (prompt estimate plus max_tokens)"
                    if name == "tokens"
                    else f"{limit.cost} requests (one per item)"
                )
                raise APIError(
                    400,
                    f"This request needs {needs}, more than the {limit.per_minute} "
                    "a minute allowed.",
                    code="request_too_large",
                    param="max_tokens" if name == "tokens" else "requests",
                )
        if not limits:
            return
        decision = await acquire(self.limiter, limits)
        self.headers = limit_headers(dimensions, decision)
        if not decision.allowed:
            for name, limit, level in zip(dimensions, limits, decision.levels, strict=True):
                if level.remaining < limit.cost:
                    self.observer.rate_limited(name)
            raise APIError(
                429,
                refusal(dimensions, limits, decision),
                code="rate_limit_exceeded",
                headers={**self.headers, "Retry-After": retry_after(decision.retry_after_s)},
            )
        if self.tpm:
            self._reserved, self._prompt = tokens, prompt
        if self.response is not None:
            self.response.headers.update(self.headers)

    def used(self, usage: TokenCounts, *, cached: bool = False) -> None:
        """Record what an answer used (a cached one used no model tokens)."""
        if not cached:
            self._used += usage.prompt_tokens + usage.completion_tokens

    def used_tokens(self, tokens: int) -> None:
        self._used += tokens

    async def metered(
        self, chunks: AsyncGenerator[CompletionChunk, None]
    ) -> AsyncGenerator[CompletionChunk, None]:
        """The chunks of a stream, recording what it delivered, however far it gets."""
        try:
            async for chunk in chunks:
                self._streamed.append(chunk.text)
                if chunk.usage is not None:
                    self._stream_usage = chunk.usage
                yield chunk
        finally:
            await chunks.aclose()

    def with_headers(self, response: ResponseT) -> ResponseT:
        """A Response the route returns itself (a stream) gets the headers this way."""
        response.headers.update(self.headers)
        return response

    def keep_reservation(self) -> None:
        """Charge the whole reservation: the work goes on elsewhere (a background job)."""
        self._reserved = None

    async def settle(self) -> None:
        """Give back what the reservation did not use, or take what it overran; once."""
        reserved, self._reserved = self._reserved, None
        if reserved is None:
            return
        used = self._used
        if self._stream_usage is not None:
            used += self._stream_usage.prompt_tokens + self._stream_usage.completion_tokens
        elif any(self._streamed):
            used += self._prompt + count_tokens("".join(self._streamed))
        if used != reserved:
            await self.limiter.adjust(Limit(f"{self.caller}:tokens", self.tpm, used - reserved))
