"""The generation log writer: rows are written in batches, off the request path.

`record()` only appends to a buffer bounded by size; one background task writes the
buffer every half second (sooner once a batch is full) in a single INSERT. While the
database is unreachable the rows wait, retried with backoff, and once the buffer
is full new rows are dropped and counted: an outage never fails or slows a request.
What is buffered at shutdown is written before the database closes. Without
STORE_PROMPTS the text is dropped as the row is recorded, so it never sits in memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from sqlalchemy import insert

from ..core.logging import get_logger
from ..llm.service import GenerationRecord
from .engine import Database
from .errors import describe, is_unavailable
from .models import GenerationLog

logger = get_logger(__name__)

# What the buffer may hold while the database is out of reach, and what a row costs in it
# beside its text (a fair estimate of the record's other fields and the object overhead).
MAX_BUFFERED_BYTES = 32 * 1024 * 1024
ROW_OVERHEAD_BYTES = 512


class SQLGenerationRecorder:
    def __init__(
        self,
        database: Database,
        *,
        store_prompts: bool,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        max_buffered_bytes: int = MAX_BUFFERED_BYTES,
        max_backoff_s: float = 5.0,
        close_timeout_s: float = 10.0,
    ) -> None:
        self.database = database
        self.store_prompts = store_prompts
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_buffered_bytes = max_buffered_bytes
        self.max_backoff_s = max_backoff_s
        self.close_timeout_s = close_timeout_s
        self._buffer: deque[GenerationRecord] = deque()
        self._buffered_bytes = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._failing = False
        self._dropped = 0
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    @asynccontextmanager
    async def running(
        cls, database: Database, *, store_prompts: bool
    ) -> AsyncIterator[SQLGenerationRecorder]:
        """A recorder whose writer runs for the duration of the block, then drains."""
        recorder = cls(database, store_prompts=store_prompts)
        recorder.start()
        try:
            yield recorder
        finally:
            await recorder.aclose()

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_until_closed(), name="generation-log")

    def record(self, record: GenerationRecord) -> None:
        if not self.store_prompts:
            record = dataclasses.replace(record, prompt="", completion="")
        size = row_bytes(record)
        if self._buffered_bytes + size > self.max_buffered_bytes:
            if self._dropped == 0:
                logger.warning(
                    "generation log buffer full: dropping rows",
                    rows=len(self._buffer),
                    max_bytes=self.max_buffered_bytes,
                )
            self._dropped += 1
            return
        self._buffer.append(record)
        self._buffered_bytes += size
        if len(self._buffer) >= self.batch_size and not self._failing:
            self._wake.set()

    @property
    def buffered_bytes(self) -> int:
        """The estimated size of the rows waiting to be written."""
        return self._buffered_bytes

    async def aclose(self) -> None:
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), self.close_timeout_s)
            except TimeoutError:
                self._writer.cancel()
                with suppress(asyncio.CancelledError):
                    await self._writer
        if self._buffer or self._dropped:
            logger.warning("generation log rows lost", count=len(self._buffer) + self._dropped)

    async def _write_until_closed(self) -> None:
        backoff = self.flush_interval_s
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)
            self._wake.clear()
            closing = self._closing
            self._failing = not await self.flush()
            if closing:
                return
            failing_backoff = min(backoff * 2, self.max_backoff_s)
            backoff = failing_backoff if self._failing else self.flush_interval_s

    async def flush(self) -> bool:
        """Write everything buffered; False when the database is out of reach (rows kept)."""
        while self._buffer:
            batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
            self._buffered_bytes -= sum(map(row_bytes, batch))
            try:
                # Core executemany on a plain connection: no ORM unit of work per row.
                async with self.database.engine.begin() as connection:
                    await connection.execute(insert(GenerationLog), [self._row(r) for r in batch])
            except Exception as exc:  # the writer must outlive any one batch
                if not is_unavailable(exc):
                    logger.error("generation log rows rejected", count=len(batch), exc_info=exc)
                    continue
                self._buffer.extendleft(reversed(batch))  # written on a later try
                self._buffered_bytes += sum(map(row_bytes, batch))
                if not self._failing:
                    logger.warning("generation log waits for the database", error=describe(exc))
                return False
        if self._failing or self._dropped:
            logger.info("generation log writes again", dropped=self._dropped)
            self._dropped = 0
        return True

    def _row(self, record: GenerationRecord) -> dict[str, Any]:
        return {
            "principal": record.principal[:255],
            "request_id": record.request_id[:128] if record.request_id else None,
            "model": record.model[:255],
            "status": record.status,
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "latency_ms": record.latency_ms,
            "cached": record.cached,
            "streamed": record.streamed,
            "error_code": record.error_code[:64] if record.error_code else None,
            "prompt": record.prompt if self.store_prompts else None,
            "completion": record.completion if self.store_prompts else None,
            "created_at": record.created_at,
        }


def row_bytes(record: GenerationRecord) -> int:
    """About what a buffered record occupies: its text plus a fixed overhead."""
    return ROW_OVERHEAD_BYTES + len(record.prompt.encode()) + len(record.completion.encode())
