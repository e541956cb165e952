"""The engine and its sessions, made once per process in the lifespan.

`DATABASE_URL` takes the usual forms (`postgresql://user:pass@host/db`,
`sqlite:///path`); the async driver is added when the URL names none. PostgreSQL
connections get connect and statement timeouts and are checked before use, so
a restarted server costs no request. An SQLite file is created on first start
(with its folder), migrated at startup, and used in WAL mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Dialect, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InvalidatePoolError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from ..core.logging import get_logger
from ..settings import Settings
from .errors import describe, is_unavailable

logger = get_logger(__name__)

ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}
# Below the readiness probe's own limit, so the answer names the database.
READINESS_TIMEOUT_S = 1.5
MIGRATE_FIRST = "the database has no tables: run `python -m {{ cookiecutter.project_slug }} migrate`"


def async_url(raw: str | URL) -> URL:
    """The URL with an async driver: `postgresql://` -> `postgresql+asyncpg://`, and so on."""
    url = make_url(raw)
    url = url.set(drivername=ASYNC_DRIVERS.get(url.drivername, url.drivername))
    if url.get_backend_name() == "postgresql" and "sslmode" in url.query:
        # libpq's `sslmode=require` is spelled `ssl=require` by asyncpg.
        url = url.difference_update_query(["sslmode"]).update_query_dict(
            {"ssl": url.query["sslmode"]}
        )
    return url


def sqlite_path(url: URL) -> Path | None:
    """The file of an SQLite URL (None for other databases and in-memory ones)."""
    if url.get_backend_name() != "sqlite" or url.database in {None, "", ":memory:"}:
        return None
    return Path(url.database).resolve()


def create_sqlite_folder(url: URL) -> None:
    """SQLite creates a missing file, but not its folder."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def watch_sqlite_file(engine: AsyncEngine, path: Path, *, busy_timeout_s: float) -> None:
    """Set the pragmas of each new connection and drop connections to a replaced file.

    An open SQLite connection keeps reading the file it opened even after that file
    is moved, deleted or restored from a backup: checking the file on every checkout
    turns that into a fresh connection (or a clean error while the file is gone).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def configure(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL, much faster
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        record.info["file"] = file_identity(path)

    @event.listens_for(engine.sync_engine, "checkout")
    def check_file(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        if file_identity(path) != record.info.get("file"):
            raise InvalidatePoolError(f"{path} was moved or replaced")


def report_connect_errors(engine: AsyncEngine) -> None:
    """Make a failed connection a SQLAlchemy `OperationalError`, like every other failure.

    Some drivers raise plain `OSError`s when they cannot connect (asyncpg on a refused
    connection, timeouts): callers then catch one family of errors, not two.
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect(dialect: Dialect, record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except (OSError, TimeoutError) as exc:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise dialect.loaded_dbapi.OperationalError(message) from exc


def build_engine(url: URL, settings: Settings) -> AsyncEngine:
    """The engine for `url`, its connection errors and SQLite file handled as above."""
    engine = engine_with_limits(url, settings)
    report_connect_errors(engine)
    path = sqlite_path(url)
    if path is not None:
        watch_sqlite_file(engine, path, busy_timeout_s=settings.db_statement_timeout_s)
    return engine


def engine_with_limits(url: URL, settings: Settings) -> AsyncEngine:
    """The engine with its pool, timeouts and checks for the kind of database."""
    pool: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_s,
    }
    if url.get_backend_name() == "postgresql":
        return create_async_engine(
            url,
            **pool,
            pool_pre_ping=True,  # a connection the server dropped is replaced, not used
            pool_recycle=1800,
            connect_args={
                "timeout": settings.db_pool_timeout_s,  # connecting
                "command_timeout": settings.db_statement_timeout_s + 5,  # the client's bound
                "server_settings": {
                    "statement_timeout": str(int(settings.db_statement_timeout_s * 1000)),
                    "application_name": "{{ cookiecutter.project_slug }}",
                },
            },
        )
    if url.get_backend_name() == "sqlite" and sqlite_path(url) is not None:
        return create_async_engine(url, **pool)
    return create_async_engine(url)


class SchemaMissingError(RuntimeError):
    """The database answers but has no tables: the migrations have not run."""


async def require_schema(engine: AsyncEngine) -> None:
    """Fail fast when the migrations have not run; a database that is down may come back."""
    try:
        async with engine.connect() as connection:
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except SQLAlchemyError as exc:
        if is_unavailable(exc):
            logger.warning("database unreachable at startup", error=describe(exc))
            return
        version = None
    if version is None:
        raise SchemaMissingError(MIGRATE_FIRST)


class Database:
    """The engine and a session factory; `session()` is one unit of work."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session committed when the block succeeds and rolled back when it raises."""
        async with self.sessions.begin() as session:
            yield session

    async def readiness(self) -> str | None:
        """None when the database answers and holds the schema, else a short reason."""
        try:
            async with asyncio.timeout(READINESS_TIMEOUT_S), self.engine.connect() as connection:
                version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        except TimeoutError:
            return f"no answer within {READINESS_TIMEOUT_S:g} s"
        except (SQLAlchemyError, OSError) as exc:
            return describe(exc)
        if version is None:
            return MIGRATE_FIRST
        return None


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The database for this process; an SQLite file is created and migrated here."""
    url = async_url(settings.database_url)
    create_sqlite_folder(url)
    engine = build_engine(url, settings)
    try:
        if sqlite_path(url) is not None:
            from .migrate import upgrade_if_behind  # Alembic loads only where it is needed

            await upgrade_if_behind(engine, url)
        else:
            await require_schema(engine)
        yield Database(engine)
    finally:
        await engine.dispose()
