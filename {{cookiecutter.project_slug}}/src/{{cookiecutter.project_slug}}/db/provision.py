"""Before migrating: the database of DATABASE_URL exists and answers.

A PostgreSQL server without that database gets it (CREATE DATABASE, over a connection
to the server's `postgres` database) when the user may create databases. Any other
reason the database cannot be reached becomes one sentence that says what to do.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ..core.logging import get_logger
from .errors import describe, is_unavailable

logger = get_logger(__name__)

# PostgreSQL's SQLSTATE codes for the failures said here.
INVALID_CATALOG_NAME = "3D000"  # the database does not exist
INSUFFICIENT_PRIVILEGE = "42501"
DUPLICATE_DATABASE = "42P04"
AUTHENTICATION_FAILURES = {"28000", "28P01"}  # no such role, or a wrong password
CONNECT_ERRORS = (SQLAlchemyError, OSError, TimeoutError)


class DatabaseSetupError(RuntimeError):
    """The database cannot be migrated, and what to do about it, in one sentence."""


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE the server answered with, wherever in the chain of causes it is."""
    error: BaseException | None = exc
    while error is not None:
        code = getattr(error, "sqlstate", None)
        if isinstance(code, str):
            return code
        error = getattr(error, "orig", None) or error.__cause__
    return None


def server_of(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def explain(url: URL, exc: BaseException) -> str:
    """What went wrong reaching `url`, and what to do, in one sentence."""
    server, user = server_of(url), url.username or "(none)"
    code = sqlstate(exc)
    if code in AUTHENTICATION_FAILURES:
        return (
            f"PostgreSQL at {server} refused user {user} ({describe(exc)}): put a user and "
            "password it accepts in DATABASE_URL (.env)."
        )
    if code is None and is_unavailable(exc):
        return (
            f"PostgreSQL at {server} does not answer ({describe(exc)}): start it, or point "
            "DATABASE_URL (.env) at a server that runs."
        )
    return f"The database {url.database} at {server} cannot be migrated: {describe(exc)}."


async def execute(url: URL, statement: str, *, timeout_s: float) -> None:
    engine = create_async_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",  # CREATE DATABASE cannot run in a transaction
        connect_args={"timeout": timeout_s},
    )
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def ensure_database(url: URL, *, timeout_s: float) -> bool:
    """Create the PostgreSQL database of `url` if it is missing; whether it was created.

    Raises DatabaseSetupError when the server cannot be reached or the database is
    missing and cannot be created.
    """
    if url.get_backend_name() != "postgresql" or not url.database:
        return False
    try:
        await execute(url, "SELECT 1", timeout_s=timeout_s)
    except CONNECT_ERRORS as exc:
        if sqlstate(exc) != INVALID_CATALOG_NAME:
            raise DatabaseSetupError(explain(url, exc)) from exc
    else:
        return False
    name = url.database
    quoted = '"' + name.replace('"', '""') + '"'
    try:
        await execute(
            url.set(database="postgres"), f"CREATE DATABASE {quoted}", timeout_s=timeout_s
        )
    except CONNECT_ERRORS as exc:
        code = sqlstate(exc)
        if code == DUPLICATE_DATABASE:
            return False  # another process created it meanwhile
        if code == INSUFFICIENT_PRIVILEGE:
            raise DatabaseSetupError(
                f"The database {name} does not exist at {server_of(url)} and user "
                f"{url.username} may not create it: create it as a user who may "
                f"(createdb -h {url.host or 'localhost'} -p {url.port or 5432} {name}), "
                "or point DATABASE_URL (.env) at an existing database."
            ) from exc
        raise DatabaseSetupError(explain(url, exc)) from exc
    logger.info("database created", database=name, server=server_of(url))
    return True
