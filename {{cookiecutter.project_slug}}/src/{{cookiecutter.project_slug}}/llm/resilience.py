"""Resilience composed around any provider: bulkhead, circuit breaker, retries.

- Bulkhead: at most `max_concurrency` upstream calls in flight; a caller waits up to
  `queue_timeout_s` for a slot, then gets OverloadedError (503 + Retry-After).
- Circuit breaker: after `failure_threshold` consecutive upstream failures the circuit
  opens and calls fail fast for `reset_timeout_s`; then one trial call (half-open)
  decides whether it closes again. Readiness reports it.
- Retries (tenacity): jittered exponential backoff that honours `Retry-After`, only for
  retryable failures, and for streams only before the first token reaches the caller.

Every request passes through here, so the path of a healthy call stays cheap: no
timer unless the bulkhead is full, no retry controller unless a call has failed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..core.logging import get_logger
from .base import Completion, CompletionChunk, GenerationRequest, Provider
from .errors import (
    CircuitOpenError,
    OverloadedError,
    ProviderError,
    UpstreamBadResponseError,
    UpstreamRejectedError,
)

logger = get_logger(__name__)
T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, *, failure_threshold: int = 5, reset_timeout_s: float = 30.0) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.failures = 0
        self._opened_at = 0.0
        self._state: BreakerState = "closed"
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._remaining() <= 0:
            return "half_open"
        return self._state

    def _remaining(self) -> float:
        return self._opened_at + self.reset_timeout_s - time.monotonic()

    def before_call(self) -> None:
        """Raise CircuitOpenError unless a call may go upstream now."""
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and not self._trial_running:
            self._trial_running = True  # this call is the trial
            return
        raise CircuitOpenError(
            "The model server is failing; requests are paused while it recovers.",
            retry_after=max(1.0, round(self._remaining(), 1)),
        )

    def record_success(self) -> None:
        if self._state != "closed":
            logger.info("circuit closed")
        self._state, self.failures, self._trial_running = "closed", 0, False

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Admit one call (or raise CircuitOpenError) and count it if the upstream fails."""
        self.before_call()
        with self.watch():
            yield

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Count a failure of work already admitted (e.g. the rest of a stream)."""
        try:
            yield
        except BaseException as exc:
            if counts_against_upstream(exc):
                self.record_failure()
            else:
                self._trial_running = False  # cancelled or refused: let another call try
            raise

    def record_failure(self) -> None:
        self.failures += 1
        if self._trial_running or self.failures >= self.failure_threshold:
            if self._state != "open" or self._trial_running:
                logger.warning("circuit opened", failures=self.failures)
            self._state, self._opened_at, self._trial_running = "open", time.monotonic(), False


def counts_against_upstream(exc: BaseException) -> bool:
    """Failures of the upstream itself, not of the request or of our own limits."""
    return isinstance(exc, ProviderError) and not isinstance(
        exc, UpstreamRejectedError | CircuitOpenError | OverloadedError
    )


class ResilientProvider:
    """A Provider that wraps another one with bulkhead, breaker and retries."""

    def __init__(
        self,
        provider: Provider,
        *,
        max_retries: int,
        max_concurrency: int,
        breaker: CircuitBreaker | None = None,
        queue_timeout_s: float = 10.0,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 8.0,
        max_retry_after_s: float = 20.0,
    ) -> None:
        self.provider = provider
        self.name = provider.name
        self.breaker = breaker or CircuitBreaker()
        self.max_retries = max_retries
        self.max_concurrency = max_concurrency
        self.queue_timeout_s = queue_timeout_s
        self.max_retry_after_s = max_retry_after_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._slots = asyncio.Semaphore(max_concurrency)
        self.in_flight = 0

    # -- bulkhead -------------------------------------------------------------------
    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self.in_flight >= self.max_concurrency:  # only a full bulkhead pays for a timer
            try:
                async with asyncio.timeout(self.queue_timeout_s):
                    await self._slots.acquire()
            except TimeoutError:
                raise OverloadedError(
                    f"All {self.max_concurrency} model slots stayed busy for "
                    f"{self.queue_timeout_s:g} s; try again shortly.",
                    retry_after=1.0,
                ) from None
        else:
            await self._slots.acquire()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._slots.release()

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
        logger.warning(
            "retrying upstream call",
            attempt=attempt,
            error=type(exc).__name__,
            wait_s=round(wait_s, 3),
        )

    async def _retried(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call` under the breaker, retried on retryable failures.

        The first try runs bare: most calls succeed, and a retry controller per call
        would cost every request. tenacity takes over after a retryable failure.
        """
        try:
            with self.breaker.guard():
                return await call()
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
            with attempt, self.breaker.guard():
                return await call()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    # -- Provider -------------------------------------------------------------------
    async def complete(self, request: GenerationRequest) -> Completion:
        async with self._slot():
            completion = await self._retried(partial(self.provider.complete, request))
            self.breaker.record_success()
            return completion

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[CompletionChunk, None]:
        async with self._slot():
            chunks, first = await self._open_stream(request)
            # From here on the caller has tokens: no retry can take them back.
            try:
                yield first
                with self.breaker.watch():
                    async for chunk in chunks:
                        yield chunk
            finally:
                await chunks.aclose()

    async def _open_stream(
        self, request: GenerationRequest
    ) -> tuple[AsyncGenerator[CompletionChunk, None], CompletionChunk]:
        """Start a stream and wait for its first chunk, retrying until one arrives."""

        async def first_chunk() -> tuple[AsyncGenerator[CompletionChunk, None], CompletionChunk]:
            chunks = self.provider.stream(request)
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                empty = UpstreamBadResponseError("The model server sent an empty stream.")
                raise empty from None
            except BaseException:
                await chunks.aclose()
                raise
            return chunks, first

        opened = await self._retried(first_chunk)
        self.breaker.record_success()  # a first token shows the upstream is serving
        return opened

    async def list_models(self) -> list[str]:
        return await self.provider.list_models()

    async def readiness(self) -> str | None:
        if self.breaker.state == "open":
            return "circuit open: the model server is failing"
        return await self.provider.readiness()

    async def aclose(self) -> None:
        await self.provider.aclose()
