"""The caller's own generation log, newest first, a page at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..core.errors import APIError
from ..db.deps import SessionDep
from ..db.history import InvalidCursorError, generation_page
from ..schemas.errors import ERROR_RESPONSES, error_responses
from ..schemas.history import GenerationPage
from .deps import PrincipalDep

router = APIRouter(prefix="/api/v1/generations", tags=["history"], responses=ERROR_RESPONSES)


@router.get(
    "",
    summary="Your generation log, newest first (keyset-paginated)",
    responses=error_responses({503: "The database is unavailable"}),
)
async def list_generations(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Rows per page.")] = 20,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page; omit for the first.")
    ] = None,
) -> GenerationPage:
    """The caller's own generation log, newest first: model, status, tokens, latency,
    cached, streamed (prompt and completion text only with STORE_PROMPTS=true). Pass
    `next_cursor` back as `cursor` for the next page.
    """
    try:
        rows, next_cursor = await generation_page(session, principal.id, limit=limit, cursor=cursor)
    except InvalidCursorError as exc:
        raise APIError(
            422, "cursor: not a cursor this API returned.", code="invalid_value", param="cursor"
        ) from exc
    return GenerationPage.of(rows, next_cursor)
