"""The migrate command on a server without the database, or without a server.

It creates a missing database when the user may, and otherwise says in one line what
to do: exit status 1, no traceback.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from .commands import command, one_line_error
from .db_postgresql import administer, server_url
from .servers import free_port


def migrate(database_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return command("migrate", tmp_path=tmp_path, DATABASE_URL=database_url)


@pytest.fixture
def missing_database() -> Iterator[str]:
    """A database name the server does not have yet; dropped afterwards if it was made."""
    name = f"test_missing_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(administer("SELECT 1"))
    except (OSError, SQLAlchemyError) as exc:
        message = f"PostgreSQL at {server_url().render_as_string()} does not answer ({exc})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield name
    asyncio.run(administer(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_migrate_creates_a_missing_database_and_its_tables(
    missing_database: str, tmp_path: Path
) -> None:
    url = server_url().set(database=missing_database)
    result = migrate(url.render_as_string(hide_password=False), tmp_path)
    assert result.returncode == 0, result
    assert "database created" in result.stdout + result.stderr
    # The tables are there: migrating again finds nothing to do and creates nothing.
    again = migrate(url.render_as_string(hide_password=False), tmp_path)
    assert again.returncode == 0, again
    assert "database created" not in again.stdout + again.stderr
    asyncio.run(administer("SELECT version_num FROM alembic_version", url))


def test_a_user_who_may_not_create_databases_is_told_what_to_do(
    missing_database: str, tmp_path: Path
) -> None:
    role, password = f"test_role_{uuid.uuid4().hex[:12]}", secrets.token_hex(16)
    asyncio.run(administer(f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD '{password}'"))
    try:
        url = server_url().set(username=role, password=password, database=missing_database)
        line = one_line_error(migrate(url.render_as_string(hide_password=False), tmp_path))
    finally:
        asyncio.run(administer(f"DROP ROLE {role}"))
    assert f"The database {missing_database} does not exist" in line, line
    assert f"user {role} may not create it" in line, line
    assert "createdb" in line, line
    assert password not in line


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there once it is chosen
    url = f"postgresql://postgres:secret-password@127.0.0.1:{port}/anything"
    line = one_line_error(migrate(url, tmp_path))
    assert f"PostgreSQL at 127.0.0.1:{port} does not answer" in line, line
    assert "DATABASE_URL" in line, line
    assert "secret-password" not in line
