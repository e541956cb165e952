"""Command-line commands that work on the database: one-line errors, exit status 1."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ..core.logging import configure_logging
from ..db.engine import Database, SchemaMissingError, open_database
from ..db.errors import describe
from ..settings import get_settings


class CommandError(Exception):
    """A command cannot do what was asked; the message says why, in one line."""


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def run_with_database(work: Callable[[Database], Awaitable[int]]) -> int:
    """Run `work` against DATABASE_URL; what goes wrong is one line on stderr and status 1."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        setting = "_".join(str(part) for part in first["loc"]).upper()
        return fail(f"{setting}: {message}" if setting else message)
    configure_logging("WARNING", settings.log_format)  # stdout is the command's answer

    async def run() -> int:
        async with open_database(settings) as database:
            return await work(database)

    try:
        return asyncio.run(run())
    except CommandError as exc:
        return fail(str(exc))
    except SchemaMissingError as exc:
        return fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:
        return fail(f"the database is unavailable: {describe(exc)}")
