"""The database session dependency, for routes of modules that use the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from ..services import Services
from .errors import database_error


async def get_session(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """A session per request: committed after the route succeeds, rolled back if it raises.

    Database errors become a 503 (unreachable) or 500 with the usual error body.
    """
    database = cast(Services, connection.state.services).database
    try:
        async with database.session() as session:
            yield session
    except SQLAlchemyError as exc:
        raise database_error(exc) from exc


# "function" scope: the commit happens before the response is sent, so its failure is a 503.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
