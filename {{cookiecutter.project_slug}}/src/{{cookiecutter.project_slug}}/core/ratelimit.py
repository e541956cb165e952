"""Rate limiting: token buckets, one interface, an in-memory backend, the outage policy.

A limit is a bucket of `per_minute` units that refills continuously at `per_minute`
per 60 s, as OpenAI's limits do (at 60 RPM a request is back after 1 s). A check takes
from several buckets at once, all or none, so a request's count and its token
reservation are admitted together; an adjustment later gives back what a reservation
did not use, or takes what it overran. Written here rather than taken from `limits` or
`slowapi`: neither can adjust a reservation after the fact.

`MemoryRateLimiter` serves one process; `RedisRateLimiter` (core/ratelimit_redis.py)
runs the same arithmetic in a Lua script, shared by every process and replica (the
checks of concurrent requests batched into one call), and follows `OutagePolicy`
while Redis is unreachable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .logging import get_logger

logger = get_logger(__name__)

WINDOW_MS = 60_000  # a bucket refills completely in this long
OUTAGE_BYPASS_S = 1.0  # after a failure the store is not asked again for this long


@dataclass(frozen=True, slots=True)
class Limit:
    """Take `cost` units (negative: give them back) from the bucket `key` of `per_minute`."""

    key: str
    per_minute: int
    cost: int


@dataclass(frozen=True, slots=True)
class Level:
    """A bucket after a check: its size, the whole units left, the time until it is full."""

    limit: int
    remaining: int
    reset_s: float


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    # One per limit checked, in order: after the take when allowed, before it when not.
    # Empty when the store could not be asked and the policy admitted the request.
    levels: tuple[Level, ...] = ()
    retry_after_s: float = 0.0  # when refused: until every bucket holds its cost again


class RateLimiter(Protocol):
    async def acquire(self, limits: Sequence[Limit]) -> Decision:
        """Take every limit's cost if every bucket holds it, otherwise take nothing."""
        ...

    async def adjust(self, limit: Limit) -> None:
        """Take `limit.cost` unchecked (a bucket may go below zero); give back up to full."""
        ...


class LimiterUnavailableError(Exception):
    """The shared limiter cannot be asked and the policy says refuse (fail closed)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("the rate limiter is unavailable")
        self.retry_after_s = retry_after_s


def refilled(level: float, per_minute: int, elapsed_ms: float) -> float:
    return min(float(per_minute), level + elapsed_ms * per_minute / WINDOW_MS)


def full_in_ms(level: float, per_minute: int) -> float:
    return max(0.0, (per_minute - level) * WINDOW_MS / per_minute)


def decide(limits: Sequence[Limit], levels: Sequence[float], *, allowed: bool) -> Decision:
    """The decision a backend reports, from each bucket's (fractional) level."""
    wait_ms = 0.0
    if not allowed:
        for limit, level in zip(limits, levels, strict=True):
            if level < limit.cost:
                wait_ms = max(wait_ms, (limit.cost - level) * WINDOW_MS / limit.per_minute)
    return Decision(
        allowed=allowed,
        levels=tuple(
            Level(
                limit=limit.per_minute,
                remaining=max(0, math.floor(level)),
                reset_s=full_in_ms(level, limit.per_minute) / 1000,
            )
            for limit, level in zip(limits, levels, strict=True)
        ),
        retry_after_s=wait_ms / 1000,
    )


class MemoryRateLimiter:
    """Buckets in this process: each worker process and replica keeps its own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # seconds
        # key -> (level, when it was set, when it is full again), in ms; missing: full.
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._next_sweep_ms = 0.0

    async def acquire(self, limits: Sequence[Limit]) -> Decision:
        return self._take(limits, check=True)

    async def adjust(self, limit: Limit) -> None:
        self._take([limit], check=False)

    def _take(self, limits: Sequence[Limit], *, check: bool) -> Decision:
        now = self.clock() * 1000
        self._sweep(now)
        levels = [self._level(limit, now) for limit in limits]
        allowed = not check or all(
            level >= limit.cost for limit, level in zip(limits, levels, strict=True)
        )
        if allowed:
            for index, limit in enumerate(limits):
                level = min(float(limit.per_minute), levels[index] - limit.cost)
                levels[index] = level
                if level >= limit.per_minute:
                    self._buckets.pop(limit.key, None)
                else:
                    full_at = now + full_in_ms(level, limit.per_minute)
                    self._buckets[limit.key] = (level, now, full_at)
        return decide(limits, levels, allowed=allowed)

    def _level(self, limit: Limit, now: float) -> float:
        state = self._buckets.get(limit.key)
        if state is None:
            return float(limit.per_minute)
        level, at, _ = state
        return refilled(level, limit.per_minute, now - at)

    def _sweep(self, now: float) -> None:
        """Once a window, forget the buckets that are full again: memory stays bounded."""
        if now < self._next_sweep_ms:
            return
        self._next_sweep_ms = now + WINDOW_MS
        for key in [key for key, (_, _, full_at) in self._buckets.items() if full_at <= now]:
            del self._buckets[key]


class OutagePolicy:
    """What a shared limiter does while its store is unreachable, logged once per outage.

    Fail open (the default) admits every request; fail closed refuses them with
    `LimiterUnavailableError`. After a failure the store is left alone for
    OUTAGE_BYPASS_S, so an outage costs requests no time at all.
    """

    def __init__(self, *, fail_open: bool, store: str) -> None:
        self.fail_open = fail_open
        self.store = store
        self._down_since: float | None = None
        self._bypass_until = 0.0

    def bypassed(self) -> bool:
        return time.monotonic() < self._bypass_until

    def failed(self, exc: BaseException) -> None:
        """Note a failed call (a warning at the first of an outage)."""
        now = time.monotonic()
        self._bypass_until = now + OUTAGE_BYPASS_S
        if self._down_since is None:
            self._down_since = now
            logger.warning(
                "rate limiter unavailable",
                store=self.store,
                error=f"{type(exc).__name__}: {exc}",
                fail_open=self.fail_open,
            )

    def unavailable(self) -> Decision:
        """The decision while the store cannot be asked: admit, or raise."""
        if self.fail_open:
            return Decision(allowed=True)
        raise LimiterUnavailableError(retry_after_s=OUTAGE_BYPASS_S)

    def succeeded(self) -> None:
        if self._down_since is not None:
            outage_s = round(time.monotonic() - self._down_since, 3)
            self._down_since = None
            logger.info("rate limiter recovered", store=self.store, outage_s=outage_s)
