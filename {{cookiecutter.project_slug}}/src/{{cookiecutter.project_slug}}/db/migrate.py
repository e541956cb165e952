"""Schema migrations with Alembic: `python -m {{ cookiecutter.project_slug }} migrate`.

The scripts live in `migrations/` beside `alembic.ini` at the project root (in the
image: /app, the working directory). PostgreSQL is migrated by that command (compose
runs it before the app); an SQLite file is also brought up to date at startup.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..core.logging import get_logger
from ..settings import Settings
from .engine import async_url, create_sqlite_folder, sqlite_path
from .errors import is_unavailable
from .provision import DatabaseSetupError, ensure_database, explain

logger = get_logger(__name__)


@cache
def alembic_ini() -> Path:
    """alembic.ini in the working directory, else in the source checkout this runs from."""
    for folder in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (folder / "alembic.ini").is_file():
            return folder / "alembic.ini"
    raise FileNotFoundError("alembic.ini not found: run this from the project folder")


def alembic_config(url: str | URL) -> Config:
    """Alembic's configuration, aimed at `url` (env.py reads it instead of DATABASE_URL)."""
    config = Config(alembic_ini())
    config.attributes["database_url"] = async_url(url)
    config.attributes["configure_logging"] = False  # the service has configured it
    return config


@cache
def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(Config(alembic_ini())).get_heads())


@contextmanager
def sqlite_migration_lock(path: Path | None) -> Iterator[None]:
    """One migration at a time per SQLite folder (several workers start together)."""
    if path is None:
        yield  # PostgreSQL: env.py takes an advisory lock instead
        return
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # releases the lock


def upgrade_database(url: str | URL, revision: str = "head") -> None:
    url = async_url(url)
    create_sqlite_folder(url)
    with sqlite_migration_lock(sqlite_path(url)):
        command.upgrade(alembic_config(url), revision)
    logger.info("database migrated", revision=revision, database=url.database)


def upgrade(settings: Settings, *, revision: str = "head") -> None:
    """Apply the migrations up to `revision` to DATABASE_URL, creating a missing database.

    Raises DatabaseSetupError (one sentence) when the database cannot be reached.
    """
    url = async_url(settings.database_url)
    asyncio.run(ensure_database(url, timeout_s=settings.db_pool_timeout_s))
    try:
        upgrade_database(url, revision)
    except (SQLAlchemyError, OSError) as exc:
        if not is_unavailable(exc):
            raise  # a failing migration: its traceback is what its author needs
        raise DatabaseSetupError(explain(url, exc)) from exc


async def upgrade_if_behind(engine: AsyncEngine, url: URL) -> None:
    """Migrate to the latest revision unless the database is there (the usual, quick case)."""
    heads = await asyncio.to_thread(head_revisions)
    async with engine.connect() as connection:
        current = await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_heads()
        )
    if set(current) != heads:
        await asyncio.to_thread(upgrade_database, url)
