"""Resilience composed around one upstream's provider: bulkhead, circuit breaker, retries.

- Bulkhead: at most `max_concurrency` calls in flight to the upstream; a caller waits
  up to `queue_timeout_s` for a slot, then gets OverloadedError (503 + Retry-After).
  A slot is held while a call runs, never while a retry waits for its turn.
- Circuit breaker: over a rolling window, once at least `min_calls` calls ended and
  `failure_rate` of them failed, the circuit opens and calls fail fast for
  `reset_timeout_s`; then one trial call (half-open) decides. Each call counts once,
  however often it was retried, so one caller's retries cannot open it alone; requests
  the upstream refused as invalid, and its rate limiting, are not failures.
- Back-pressure: an upstream 429 pauses the upstream for its `Retry-After`; calls in
  that pause wait for it (when short) or are answered 429 at once (when long).
- Retries (tenacity): jittered exponential backoff that honours `Retry-After`, only for
  retryable failures, and for streams only before the first token reaches the caller.

Every request passes through here, so the path of a healthy call stays cheap: no
timer unless the bulkhead is full, no retry controller unless a call has failed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..core.logging import get_logger
from ..core.observe import Observer
from .base import (
    Completion,
    CompletionChunk,
    EmbeddingRequest,
    Embeddings,
    GenerationRequest,
    Provider,
)
from .errors import (
    CircuitOpenError,
    OverloadedError,
    ProviderError,
    UpstreamBadResponseError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)

logger = get_logger(__name__)
T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open"]


def counts_against_upstream(exc: BaseException) -> bool:
    """Failures of the upstream itself: not the request's, not our limits', not a 429."""
    return isinstance(exc, ProviderError) and not isinstance(
        exc,
        UpstreamRejectedError | UpstreamRateLimitedError | CircuitOpenError | OverloadedError,
    )


class CircuitBreaker:
    def __init__(
        self,
        *,
        window_s: float = 30.0,
        min_calls: int = 10,
        failure_rate: float = 0.5,
        reset_timeout_s: float = 30.0,
    ) -> None:
        self.window_s = window_s
        self.min_calls = min_calls
        self.failure_rate = failure_rate
        self.reset_timeout_s = reset_timeout_s
        self._outcomes: deque[tuple[float, bool]] = deque()  # (when, failed)
        self._failures = 0
        self._opened_at = 0.0
        self._state: BreakerState = "closed"
        self._trial_running = False
        self.changed: Callable[[BreakerState], None] = lambda state: None  # told of each move

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._remaining() <= 0:
            return "half_open"
        return self._state

    def _remaining(self) -> float:
        return self._opened_at + self.reset_timeout_s - time.monotonic()

    def before_call(self) -> bool:
        """Raise CircuitOpenError unless a call may go upstream now; True for a trial call."""
        state = self.state
        if state == "closed":
            return False
        if state == "half_open" and not self._trial_running:
            self._trial_running = True
            self.changed("half_open")
            return True
        raise CircuitOpenError(
            "The model server is failing; requests are paused while it recovers.",
            retry_after=max(1.0, round(self._remaining(), 1)),
        )

    def record(self, exc: BaseException | None, *, trial: bool = False) -> None:
        """The outcome of one call (None: it succeeded)."""
        if exc is not None and not counts_against_upstream(exc):
            if trial:
                self._trial_running = False  # cancelled or refused: let another call try
            return
        failed = exc is not None
        if trial or self._state != "closed":
            self._trial_running = False
            if failed:
                self._open()
            else:
                logger.info("circuit closed")
                self._state = "closed"
                self._outcomes.clear()
                self._failures = 0
                self.changed("closed")
            return
        now = time.monotonic()
        self._outcomes.append((now, failed))
        self._failures += failed
        while self._outcomes and self._outcomes[0][0] < now - self.window_s:
            self._failures -= self._outcomes.popleft()[1]
        calls = len(self._outcomes)
        if calls >= self.min_calls and self._failures >= self.failure_rate * calls:
            self._open()

    def _open(self) -> None:
        logger.warning("circuit opened", failures=self._failures, calls=len(self._outcomes))
        self._state, self._opened_at = "open", time.monotonic()
        self.changed("open")


class ResilientProvider:
    """A Provider that wraps another one, for one upstream, with bulkhead, breaker and retries."""

    def __init__(
        self,
        provider: Provider,
        *,
        upstream: str,
        max_retries: int,
        max_concurrency: int,
        breaker: CircuitBreaker | None = None,
        queue_timeout_s: float = 10.0,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 8.0,
        max_retry_after_s: float = 20.0,
        observer: Observer | None = None,
    ) -> None:
        self.provider = provider
        self.observer = observer or Observer()
        self.name = provider.name
        self.upstream = upstream  # a label for logs and metrics, never a secret
        self.breaker = breaker or CircuitBreaker()
        self.max_retries = max_retries
        self.max_concurrency = max_concurrency
        self.queue_timeout_s = queue_timeout_s
        self.max_retry_after_s = max_retry_after_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._slots = asyncio.Semaphore(max_concurrency)
        self.in_flight = 0
        self.waiting = 0
        self.retries = 0
        self._paused_until = 0.0
        self.breaker.changed = lambda state: self.observer.breaker_state(upstream, state)
        self.observer.breaker_state(upstream, self.breaker.state)
        self._report_slots()

    # -- bulkhead -------------------------------------------------------------------
    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self.in_flight >= self.max_concurrency:  # only a full bulkhead pays for a timer
            self.waiting += 1
            self._report_slots()
            try:
                async with asyncio.timeout(self.queue_timeout_s):
                    await self._slots.acquire()
            except TimeoutError:
                raise OverloadedError(
                    f"All {self.max_concurrency} model slots stayed busy for "
                    f"{self.queue_timeout_s:g} s; try again shortly.",
                    retry_after=1.0,
                ) from None
            finally:
                self.waiting -= 1
                self._report_slots()
        else:
            await self._slots.acquire()
        self.in_flight += 1
        self._report_slots()
        try:
            yield
        finally:
            self.in_flight -= 1
            self._slots.release()
            self._report_slots()

    def _report_slots(self) -> None:
        self.observer.upstream_slots(self.upstream, in_flight=self.in_flight, waiting=self.waiting)

    # -- back-pressure ----------------------------------------------------------------
    async def _respect_pause(self) -> None:
        """Wait out the upstream's last 429 pause, or refuse at once if it is long."""
        remaining = self._paused_until - time.monotonic()
        if remaining <= 0:
            return
        if remaining > self.max_retry_after_s:
            raise UpstreamRateLimitedError(
                "The model server is rate limiting requests.", retry_after=remaining
            )
        await asyncio.sleep(remaining)

    def _note_pause(self, exc: BaseException) -> None:
        if isinstance(exc, UpstreamRateLimitedError) and exc.retry_after:
            self._paused_until = max(self._paused_until, time.monotonic() + exc.retry_after)

    # -- retries --------------------------------------------------------------------
    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, ProviderError) or not exc.retryable:
            return False
        # An upstream that asks for a long pause is better reported than waited on.
        return exc.retry_after is None or exc.retry_after <= self.max_retry_after_s

    def _delay(self, exc: BaseException | None, retry: int) -> float:
        """Retry-After when the upstream gave one, else exponential backoff, fully jittered."""
        if isinstance(exc, ProviderError) and exc.retry_after is not None:
            return exc.retry_after
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2**retry)
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not crypto

    def _wait(self, state: RetryCallState) -> float:
        # tenacity's attempt 1 is our second try (see _retried).
        exc = state.outcome.exception() if state.outcome else None
        return self._delay(exc, state.attempt_number + 1)

    def _log_retry(self, exc: BaseException | None, attempt: int, wait_s: float) -> None:
        self.retries += 1
        self.observer.upstream_retry(self.upstream, getattr(exc, "code", type(exc).__name__))
        logger.warning(
            "retrying upstream call",
            upstream=self.upstream,
            attempt=attempt,
            error=type(exc).__name__,
            wait_s=round(wait_s, 3),
        )

    async def _attempt(self, call: Callable[[], Awaitable[T]]) -> T:
        await self._respect_pause()
        try:
            return await call()
        except ProviderError as exc:
            self._note_pause(exc)
            self.observer.upstream_error(self.upstream, exc.code)
            raise

    async def _retried(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call` retried on retryable failures; the breaker sees the call's outcome once.

        The first try runs bare: most calls succeed, and a retry controller per call
        would cost every request. tenacity takes over after a retryable failure.
        """
        trial = self.breaker.before_call()
        try:
            result = await self._retry_loop(call)
        except BaseException as exc:
            self.breaker.record(exc, trial=trial)
            raise
        self.breaker.record(None, trial=trial)
        return result

    async def _retry_loop(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self._attempt(call)
        except ProviderError as exc:
            if self.max_retries == 0 or not self._should_retry(exc):
                raise
            wait_s = self._delay(exc, 1)
            self._log_retry(exc, 1, wait_s)
            await asyncio.sleep(wait_s)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries),
            wait=self._wait,
            retry=retry_if_exception(self._should_retry),
            before_sleep=lambda state: self._log_retry(
                state.outcome.exception() if state.outcome else None,
                state.attempt_number + 1,
                state.upcoming_sleep,
            ),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(call)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    # -- Provider -------------------------------------------------------------------
    def check(self, request: GenerationRequest) -> None:
        self.provider.check(request)

    async def complete(self, request: GenerationRequest) -> Completion:
        async def call() -> Completion:
            async with self._slot():
                return await self.provider.complete(request)

        return await self._retried(call)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        async def call() -> Embeddings:
            async with self._slot():
                return await self.provider.embed(request)

        return await self._retried(call)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[CompletionChunk, None]:
        stack, chunks, first = await self._retried(lambda: self._open_stream(request))
        # From here on the caller has tokens: no retry can take them back. The slot
        # taken for the stream (in `stack`) is held until it ends.
        async with stack:
            try:
                yield first
                async for chunk in chunks:
                    yield chunk
            except ProviderError as exc:
                self.breaker.record(exc)  # cut mid-way: the upstream failed after all
                raise
            finally:
                await chunks.aclose()

    async def _open_stream(
        self, request: GenerationRequest
    ) -> tuple[AsyncExitStack, AsyncGenerator[CompletionChunk, None], CompletionChunk]:
        """Take a slot, start a stream and wait for its first chunk (one attempt)."""
        stack = AsyncExitStack()
        await stack.enter_async_context(self._slot())
        chunks = self.provider.stream(request)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            await stack.aclose()
            raise UpstreamBadResponseError("The model server sent an empty stream.") from None
        except BaseException:
            await chunks.aclose()
            await stack.aclose()
            raise
        return stack, chunks, first

    async def readiness(self) -> str | None:
        if self.breaker.state == "open":
            return "circuit open: the model server is failing"
        return await self.provider.readiness()

    async def aclose(self) -> None:
        await self.provider.aclose()
