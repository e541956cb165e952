"""What the service reports about its own work: model calls, the cache, limits, jobs.

The code that does the work tells one `Observer` (`Services.observer`); the metrics
and tracing modules attach observers of their own. The base class observes nothing,
so without them a report costs a method call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Literal

from ..llm.base import Usage

Operation = Literal["chat", "embeddings"]


@dataclass(slots=True)
class ModelCall:
    """One call to a model, filled in while it runs (by the service, for the observers)."""

    operation: Operation
    model: str  # the public name the caller asked for
    upstream: str  # the label of the upstream that serves it (never a secret)
    streamed: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None  # streams: when the first output arrived
    response_model: str | None = None  # the upstream's own name for what ran
    usage: Usage | None = None
    finish_reasons: tuple[str, ...] = ()
    cached: bool = False
    error: str | None = None  # the error's code, when the call failed

    @property
    def duration_s(self) -> float:
        return time.perf_counter() - self.started


class Observer:
    """Observes nothing: subclasses override what they record."""

    @contextmanager
    def model_call(self, call: ModelCall) -> Iterator[ModelCall]:
        """Around a model call: `call` is complete (usage, error...) when the block ends."""
        yield call

    def stream_opened(self, call: ModelCall) -> None:
        """A streamed call's first chunk arrived (the request's task reads it; the rest
        may be read by another task, such as an SSE producer)."""

    def cache_lookup(self, *, hit: bool) -> None:
        return None

    def rate_limited(self, dimension: str) -> None:
        """A request refused by the caller's rate limit on `dimension` (requests, tokens)."""

    def upstream_retry(self, upstream: str, error: str) -> None:
        return None

    def upstream_error(self, upstream: str, error: str) -> None:
        """One failed attempt at an upstream (retried or not), by error code."""

    def breaker_state(self, upstream: str, state: str) -> None:
        """The upstream's circuit breaker is now `state` (closed, open, half_open)."""

    def upstream_slots(self, upstream: str, *, in_flight: int, waiting: int) -> None:
        """The upstream's bulkhead: calls holding a slot, and calls waiting for one."""

    def job_queue_depth(self, depth: int) -> None:
        """Jobs queued and not yet taken by a worker."""

    @contextmanager
    def job_run(self, job_id: str, request_id: str | None) -> Iterator[None]:
        """Around one run of a background job, in the API process or a worker."""
        yield

    def job_finished(self, outcome: str) -> None:
        """A background job ended: succeeded, failed or interrupted."""

    def websocket_session(self, *, opened: bool) -> None:
        return None


class Observers(Observer):
    """Several observers as one (metrics and tracing together)."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = list(observers)

    @contextmanager
    def model_call(self, call: ModelCall) -> Iterator[ModelCall]:
        with ExitStack() as stack:
            for observer in self.observers:
                stack.enter_context(observer.model_call(call))
            yield call

    def stream_opened(self, call: ModelCall) -> None:
        for observer in self.observers:
            observer.stream_opened(call)

    def cache_lookup(self, *, hit: bool) -> None:
        for observer in self.observers:
            observer.cache_lookup(hit=hit)

    def rate_limited(self, dimension: str) -> None:
        for observer in self.observers:
            observer.rate_limited(dimension)

    def upstream_retry(self, upstream: str, error: str) -> None:
        for observer in self.observers:
            observer.upstream_retry(upstream, error)

    def upstream_error(self, upstream: str, error: str) -> None:
        for observer in self.observers:
            observer.upstream_error(upstream, error)

    def breaker_state(self, upstream: str, state: str) -> None:
        for observer in self.observers:
            observer.breaker_state(upstream, state)

    def upstream_slots(self, upstream: str, *, in_flight: int, waiting: int) -> None:
        for observer in self.observers:
            observer.upstream_slots(upstream, in_flight=in_flight, waiting=waiting)

    def job_queue_depth(self, depth: int) -> None:
        for observer in self.observers:
            observer.job_queue_depth(depth)

    @contextmanager
    def job_run(self, job_id: str, request_id: str | None) -> Iterator[None]:
        with ExitStack() as stack:
            for observer in self.observers:
                stack.enter_context(observer.job_run(job_id, request_id))
            yield

    def job_finished(self, outcome: str) -> None:
        for observer in self.observers:
            observer.job_finished(outcome)

    def websocket_session(self, *, opened: bool) -> None:
        for observer in self.observers:
            observer.websocket_session(opened=opened)


def joined(current: Observer, added: Observer) -> Observer:
    """`current` and `added` as one observer (how an attaching module adds its own)."""
    if type(current) is Observer:
        return added
    if isinstance(current, Observers):
        return Observers([*current.observers, added])
    return Observers([current, added])
