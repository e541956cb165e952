"""A process pool for CPU-bound work, owned by the lifespan.

The event loop must never run long computations: they would stall every request the
process is serving. Work over `threshold` bytes of input goes to the pool; small
inputs run inline, where a round trip to another process would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class CPUPool:
    def __init__(self, *, workers: int, threshold: int = 32_768) -> None:
        # "spawn": forking a process that runs an event loop and threads is unsafe.
        self._executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )
        self.threshold = threshold

    async def run(self, func: Callable[[str], T], text: str) -> T:
        if len(text) < self.threshold:
            return func(text)
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, text)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
