"""Database failures as the client sees them: 503 while the database is unreachable.

The application registers `handle_database_error` for every SQLAlchemy error that a
route lets through, so an outage is a clean 503 with the usual error body and
`Retry-After`, never a traceback.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from ..core.errors import APIError, error_response
from ..core.logging import get_logger

logger = get_logger(__name__)

RETRY_AFTER_S = 5


def is_unavailable(exc: BaseException) -> bool:
    """Whether the error means the database is out of reach (worth retrying later)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        DisconnectionError
        | OperationalError
        | InterfaceError
        | PoolTimeoutError
        | OSError
        | TimeoutError,
    )


def describe(exc: BaseException) -> str:
    """A one-line reason without the SQL or the link SQLAlchemy appends."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = " ".join(str(cause).split()) or type(cause).__name__
    return message[:200]


def database_error(exc: BaseException) -> APIError:
    if is_unavailable(exc):
        logger.warning("database unavailable", error=describe(exc))
        return APIError(
            503,
            "The database is unavailable; try again shortly.",
            code="database_unavailable",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    logger.error("database error", exc_info=exc)
    return APIError(500, "The database could not complete the request.", code="database_error")


async def handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    error = database_error(exc)
    return error_response(error.status_code, error.message, code=error.code, headers=error.headers)


def install_database_error_handler(app: FastAPI) -> None:
    app.add_exception_handler(SQLAlchemyError, handle_database_error)
