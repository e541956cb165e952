"""`generations`: the caller's generation log, as GET /api/v1/generations pages it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from sqlalchemy.exc import SQLAlchemyError

from ..core.errors import APIError
from ..db.errors import database_error
from ..db.history import InvalidCursorError, generation_page
from ..db.models import GenerationLog
from ..schemas.history import Generation
from .context import ServiceInfo

MAX_LIMIT = 100


@strawberry.type(description="One model request from the generation log.")
class GenerationRecord:
    id: int
    request_id: str | None
    model: str
    status: str = strawberry.field(description="`ok`, `error` or `cancelled`.")
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    cached: bool
    streamed: bool
    error_code: str | None
    prompt: str | None = strawberry.field(
        description="Kept only when the service runs with STORE_PROMPTS=true."
    )
    completion: str | None = strawberry.field(
        description="Kept only when the service runs with STORE_PROMPTS=true."
    )
    created_at: datetime

    @classmethod
    def of(cls, row: GenerationLog) -> GenerationRecord:
        return cls(**Generation.model_validate(row).model_dump())  # the REST API's fields


@strawberry.type(description="A page of the caller's generation log, newest first.")
class GenerationPage:
    data: list[GenerationRecord]
    next_cursor: str | None = strawberry.field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


async def list_generations(
    info: ServiceInfo,
    limit: Annotated[int, strawberry.argument(description="Rows per page, 1 to 100.")] = 20,
    cursor: Annotated[
        str | None,
        strawberry.argument(description="`nextCursor` of the previous page; omit for the first."),
    ] = None,
) -> GenerationPage:
    principal = await info.context.principal()
    if not 1 <= limit <= MAX_LIMIT:
        raise APIError(
            422, f"limit: from 1 to {MAX_LIMIT} rows a page.", code="invalid_value", param="limit"
        )
    try:
        async with info.context.services.database.session() as session:
            rows, next_cursor = await generation_page(
                session, principal.id, limit=limit, cursor=cursor
            )
    except InvalidCursorError as exc:
        raise APIError(
            422, "cursor: not a cursor this API returned.", code="invalid_value", param="cursor"
        ) from exc
    except SQLAlchemyError as exc:
        raise database_error(exc) from exc
    return GenerationPage(data=[GenerationRecord.of(row) for row in rows], next_cursor=next_cursor)


@strawberry.type
class HistoryQuery:
    generations: GenerationPage = strawberry.field(
        resolver=list_generations,
        description="Your generation log, newest first (keyset-paginated).",
    )
