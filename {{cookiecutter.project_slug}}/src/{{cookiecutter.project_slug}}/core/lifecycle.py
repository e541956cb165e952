"""Process lifecycle: uptime, readiness checks, and draining on SIGTERM.

The drain, in order:
1. SIGTERM: readiness answers 503 at once, while requests are still served for
   `delay_s` (DRAIN_DELAY_S), so load balancers stop routing here without errors.
2. Then new work is refused (503, `Connection: close`) and the requests, streams and
   WebSocket replies in flight get up to `timeout_s` (DRAIN_TIMEOUT_S) to finish.
3. Then the server's own shutdown runs: it stops listening, closes idle connections,
   and the lifespan closes the pools.
A second SIGTERM, or SIGINT (Ctrl-C), skips the waits.

Callers of the probe see only `ok` / `unavailable` per check: a reason names hosts,
users or files, so it goes to the log, once each time a check changes state. The
results are kept for `cache_s`, and concurrent probes share one evaluation, so
probes cannot hammer the database or Redis.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from types import FrameType
from typing import Any, Literal

from .logging import get_logger

# A check returns None when healthy, or a short reason when not.
ReadinessCheck = Callable[[], Awaitable[str | None]]
CheckStatus = Literal["ok", "unavailable", "draining"]

CHECK_TIMEOUT_S = 2.0
logger = get_logger("lifecycle")


class Lifecycle:
    def __init__(
        self, *, delay_s: float = 0.0, timeout_s: float = 30.0, cache_s: float = 1.0
    ) -> None:
        self.started_at = time.monotonic()
        self.delay_s = delay_s
        self.timeout_s = timeout_s
        self.draining = False  # readiness is 503
        self.refusing = False  # new work is refused
        self.in_flight = 0  # requests and WebSocket replies being served
        self.checks: dict[str, ReadinessCheck] = {}
        self.cache_s = cache_s
        # The reason each check gave at its last evaluation (None: healthy): for the log.
        self.problems: dict[str, str | None] = {}
        self._evaluated_at = -float("inf")
        self._evaluation: asyncio.Task[dict[str, str | None]] | None = None
        self._idle: asyncio.Event | None = None  # set when the drain sees no work left
        self._drain_task: asyncio.Task[None] | None = None

    def work_started(self) -> None:
        self.in_flight += 1

    def work_finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    @property
    def uptime_s(self) -> float:
        return round(time.monotonic() - self.started_at, 3)

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        self.checks[name] = check

    async def _run(self, check: ReadinessCheck) -> str | None:
        try:
            return await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_S:g} s"
        except Exception as exc:  # a failing dependency must not fail the probe itself
            return f"{type(exc).__name__}: {exc}"

    async def _evaluate(self) -> dict[str, str | None]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[name]) for name in names))
        problems = dict(zip(names, results, strict=True))
        for name, problem in problems.items():
            if (problem is None) != (self.problems.get(name) is None):
                if problem is None:
                    logger.info("readiness check ok again", check=name)
                else:
                    logger.warning("readiness check failing", check=name, reason=problem)
        self.problems = problems
        self._evaluated_at = time.monotonic()
        return problems

    async def _current_problems(self) -> dict[str, str | None]:
        fresh = time.monotonic() - self._evaluated_at < self.cache_s
        if fresh and self.problems.keys() == self.checks.keys():
            return self.problems
        evaluation = self._evaluation
        if evaluation is None or evaluation.get_loop() is not asyncio.get_running_loop():
            evaluation = asyncio.create_task(self._evaluate(), name="readiness")
            self._evaluation = evaluation
            evaluation.add_done_callback(self._forget)
        # Shielded: a probe that gives up must not cancel the others' evaluation.
        return await asyncio.shield(evaluation)

    def _forget(self, evaluation: asyncio.Task[dict[str, str | None]]) -> None:
        if self._evaluation is evaluation:
            self._evaluation = None

    async def readiness(self) -> tuple[bool, dict[str, CheckStatus]]:
        problems = await self._current_problems()
        checks: dict[str, CheckStatus] = {
            name: "ok" if problem is None else "unavailable" for name, problem in problems.items()
        }
        if self.draining:
            checks["shutdown"] = "draining"
        ready = not self.draining and all(problem is None for problem in problems.values())
        return ready, checks

    def drain_on_signals(self) -> None:
        """Drain on SIGTERM (see the module docstring), then run the server's own handler."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals can only be handled in the main thread (e.g. not under TestClient)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)

            def handler(sig: int, frame: FrameType | None, previous: Any = previous) -> None:
                def exit_now() -> None:
                    if callable(previous):
                        previous(sig, frame)

                if self.draining or sig != signal.SIGTERM:
                    exit_now()  # asked twice, or by a person at a terminal: no waiting
                    return
                self.draining = True
                logger.info("draining", delay_s=self.delay_s, timeout_s=self.timeout_s)
                loop.call_soon_threadsafe(self._start_drain, exit_now)

            signal.signal(signum, handler)

    def _start_drain(self, exit_now: Callable[[], None]) -> None:
        self._drain_task = asyncio.create_task(self._drain(exit_now), name="drain")

    async def _drain(self, exit_now: Callable[[], None]) -> None:
        await asyncio.sleep(self.delay_s)
        self.refusing = True
        self._idle = asyncio.Event()
        if self.in_flight:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.timeout_s)
        if self.in_flight:
            logger.warning("drain timed out", in_flight=self.in_flight)
        else:
            logger.info("drained")
        exit_now()
