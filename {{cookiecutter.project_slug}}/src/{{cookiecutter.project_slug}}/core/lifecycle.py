"""Process lifecycle: uptime, readiness checks, and draining on SIGTERM.

On SIGTERM readiness turns 503 at once, so load balancers stop sending new work while
uvicorn lets in-flight requests and streams finish before the lifespan closes pools.

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
from types import FrameType
from typing import Any, Literal

from .logging import get_logger

# A check returns None when healthy, or a short reason when not.
ReadinessCheck = Callable[[], Awaitable[str | None]]
CheckStatus = Literal["ok", "unavailable", "draining"]

CHECK_TIMEOUT_S = 2.0
logger = get_logger("lifecycle")


class Lifecycle:
    def __init__(self, *, cache_s: float = 1.0) -> None:
        self.started_at = time.monotonic()
        self.draining = False
        self.checks: dict[str, ReadinessCheck] = {}
        self.cache_s = cache_s
        # The reason each check gave at its last evaluation (None: healthy): for the log.
        self.problems: dict[str, str | None] = {}
        self._evaluated_at = -float("inf")
        self._evaluation: asyncio.Task[dict[str, str | None]] | None = None

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
        """Mark the process draining on SIGTERM/SIGINT, then let the server's handler run."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals can only be handled in the main thread (e.g. not under TestClient)
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)

            def handler(sig: int, frame: FrameType | None, previous: Any = previous) -> None:
                if not self.draining:
                    self.draining = True
                    logger.info("draining", signal=signal.Signals(sig).name)
                if callable(previous):
                    previous(sig, frame)

            signal.signal(signum, handler)
