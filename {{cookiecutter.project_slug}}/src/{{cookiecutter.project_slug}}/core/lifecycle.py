"""Process lifecycle: uptime, readiness checks, and draining on SIGTERM.

On SIGTERM readiness turns 503 at once, so load balancers stop sending new work while
uvicorn lets in-flight requests and streams finish before the lifespan closes pools.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from .logging import get_logger

# A check returns None when healthy, or a short reason when not.
ReadinessCheck = Callable[[], Awaitable[str | None]]

CHECK_TIMEOUT_S = 2.0
logger = get_logger("lifecycle")


class Lifecycle:
    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.draining = False
        self.checks: dict[str, ReadinessCheck] = {}

    @property
    def uptime_s(self) -> float:
        return round(time.monotonic() - self.started_at, 3)

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        self.checks[name] = check

    async def _run(self, check: ReadinessCheck) -> str:
        try:
            problem = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_S:g} s"
        except Exception as exc:  # a failing dependency must not fail the probe itself
            return f"{type(exc).__name__}: {exc}"
        return problem or "ok"

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        if self.draining:
            checks["shutdown"] = "draining"
        ready = not self.draining and all(result == "ok" for result in results)
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
