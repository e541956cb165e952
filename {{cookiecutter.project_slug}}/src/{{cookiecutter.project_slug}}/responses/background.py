"""Background responses (`background: true`): runs owned by the application, not a request.

Each run is a task of this process, cancelled at shutdown (its work records that it
failed). A cancel that another process received reaches the run through the store: a
shared store is polled every `poll_interval_s`, and a run whose record was cancelled
or deleted is cancelled here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..core.logging import get_logger
from .store import ResponseStore

if TYPE_CHECKING:
    from ..services import Services

logger = get_logger(__name__)


class BackgroundFullError(Exception):
    """RESPONSES_MAX_BACKGROUND runs are already running in this process."""


@asynccontextmanager
async def open_background_responses(services: Services) -> AsyncIterator[BackgroundResponses]:
    runs = BackgroundResponses(
        services.response_store, max_running=services.settings.responses_max_background
    )
    try:
        yield runs
    finally:
        await runs.aclose()


class BackgroundResponses:
    def __init__(
        self, store: ResponseStore, *, max_running: int, poll_interval_s: float = 1.0
    ) -> None:
        self.store = store
        self.max_running = max_running
        self.poll_interval_s = poll_interval_s
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._poller: asyncio.Task[None] | None = None

    @property
    def full(self) -> bool:
        return len(self._runs) >= self.max_running

    def start(self, response_id: str, work: Coroutine[Any, Any, None]) -> None:
        if self.full:
            work.close()
            raise BackgroundFullError(f"{self.max_running} background responses are running.")
        task = asyncio.create_task(work, name=f"response-{response_id}")
        self._runs[response_id] = task
        task.add_done_callback(lambda _: self._runs.pop(response_id, None))
        if self.store.shared and self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="response-cancel-poller")

    def cancel(self, response_id: str) -> bool:
        """Cancel the run if it runs in this process (its record says why it stopped)."""
        task = self._runs.get(response_id)
        if task is None:
            return False
        task.cancel()
        return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            for response_id in list(self._runs):
                try:
                    record = await self.store.get(response_id)
                except Exception as exc:  # the store is down: look again next round
                    logger.warning("background response poll failed", error=str(exc))
                    break
                if record is None or record.status == "cancelled":
                    self.cancel(response_id)

    async def aclose(self) -> None:
        tasks = list(self._runs.values())
        if self._poller is not None:
            tasks.append(self._poller)
        for task in tasks:
            task.cancel()
        # Each run records, while it is being cancelled, that it did not finish.
        await asyncio.gather(*tasks, return_exceptions=True)
