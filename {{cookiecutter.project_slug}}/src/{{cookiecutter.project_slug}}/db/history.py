"""Reading the generation log: one principal's rows, newest first, a page at a time.

Pages are cut by keyset (the last row's time and id), not by offset: a page costs
the same however deep it is, and rows written meanwhile do not shift the next page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from .models import GenerationLog


class InvalidCursorError(ValueError):
    """The cursor was not made by `next_cursor` (or was altered)."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: its last row's `created_at` and `id`."""

    created_at: datetime
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            created_at, row_id = json.loads(raw)
            position = cls(datetime.fromisoformat(created_at), int(row_id))
            if not 0 <= position.id < 2**63:
                raise ValueError("row id out of range")
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError, OverflowError) as exc:
            raise InvalidCursorError(cursor) from exc
        if position.created_at.tzinfo is None:
            raise InvalidCursorError(cursor)
        return position


async def generation_page(
    session: AsyncSession, principal: str, *, limit: int, cursor: str | None = None
) -> tuple[Sequence[GenerationLog], str | None]:
    """Up to `limit` rows after `cursor`, and the cursor of the next page (None at the end)."""
    query = (
        select(GenerationLog)
        .where(GenerationLog.principal == principal)
        .order_by(GenerationLog.created_at.desc(), GenerationLog.id.desc())
        .limit(limit + 1)  # one more tells whether there is a next page
    )
    if cursor is not None:
        after = Position.decode(cursor)
        query = query.where(
            tuple_(GenerationLog.created_at, GenerationLog.id) < (after.created_at, after.id)
        )
    rows = (await session.scalars(query)).all()
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], Position(last.created_at, last.id).encode()
