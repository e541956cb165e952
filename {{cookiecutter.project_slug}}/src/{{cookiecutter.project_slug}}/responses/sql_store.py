"""Stored responses in the database: shared by every process, kept across restarts.

Rows older than `ttl_s` read as absent and are deleted (checked at most once a minute,
when a response is added).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, update

from ..db.engine import Database
from ..db.models import ResponseRecord
from .store import UNFINISHED, StoredResponse


def record_of(row: ResponseRecord) -> StoredResponse:
    return StoredResponse(
        id=row.id,
        owner=row.owner,
        response=row.response,
        input_items=row.input_items,
        previous_response_id=row.previous_response_id,
        background=row.background,
        created_at=row.created_at.timestamp(),
    )


class SQLResponseStore:
    shared = True

    def __init__(self, database: Database, *, ttl_s: float, purge_interval_s: float = 60.0) -> None:
        self.database = database
        self.ttl_s = ttl_s
        self.purge_interval_s = purge_interval_s
        self._purged_at = 0.0

    async def add(self, record: StoredResponse) -> None:
        async with self.database.session() as session:
            session.add(
                ResponseRecord(
                    id=record.id,
                    owner=record.owner,
                    status=record.status,
                    response=record.response,
                    input_items=record.input_items,
                    previous_response_id=record.previous_response_id,
                    background=record.background,
                    created_at=datetime.fromtimestamp(record.created_at, UTC),
                )
            )
            if time.monotonic() - self._purged_at >= self.purge_interval_s:
                self._purged_at = time.monotonic()
                await session.execute(
                    delete(ResponseRecord).where(ResponseRecord.created_at < self._horizon())
                )

    async def get(self, response_id: str) -> StoredResponse | None:
        async with self.database.session() as session:
            row = await session.get(ResponseRecord, response_id)
        if row is None or row.created_at < self._horizon():
            return None
        return record_of(row)

    async def delete(self, response_id: str) -> bool:
        async with self.database.session() as session:
            result = await session.execute(
                delete(ResponseRecord).where(ResponseRecord.id == response_id)
            )
        return cast(CursorResult[Any], result).rowcount == 1

    async def replace_unfinished(self, record: StoredResponse) -> bool:
        """One conditional UPDATE, so a cancel and the end of a run cannot both win."""
        async with self.database.session() as session:
            result = await session.execute(
                update(ResponseRecord)
                .where(ResponseRecord.id == record.id, ResponseRecord.status.in_(UNFINISHED))
                .values(status=record.status, response=record.response)
            )
        return cast(CursorResult[Any], result).rowcount == 1

    def _horizon(self) -> datetime:
        return datetime.now(UTC) - timedelta(seconds=self.ttl_s)
