"""Alembic environment: async engine, URL from the service's settings (DATABASE_URL).

`python -m {{ cookiecutter.project_slug }} migrate` passes its URL in `config.attributes`;
the `alembic` command reads DATABASE_URL from the environment or `.env`.
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from {{ cookiecutter.project_slug }}.db.engine import async_url, create_sqlite_folder
from {{ cookiecutter.project_slug }}.db.models import Base
from {{ cookiecutter.project_slug }}.settings import Settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> URL:
    url = config.attributes.get("database_url")
    return async_url(url if url is not None else Settings().database_url)


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them: autogenerate writes batch operations.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several replicas may migrate at once: one runs, the others wait and see head.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('alembic'))"))
        context.run_migrations()


async def run_migrations_online() -> None:
    url = database_url()
    create_sqlite_folder(url)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
