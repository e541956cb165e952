"""The `api_keys` table: keys made with `create-api-key`, looked up by digest.

A key is found by its SHA-256 digest (a unique index) and works until it is revoked
(`revoke-api-key NAME`). `last_used_at` is written at most once a minute per key and
process, off the request path, so busy keys cost no write per request.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import re
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..core.logging import get_logger
from ..db.api_keys import APIKeyRecord
from ..db.engine import Database
from ..db.errors import database_error, describe
from . import api_keys
from .api_keys import KeyRevokedError, id_of_digest, key_digest
from .commands import CommandError, run_with_database
from .principal import Principal

if TYPE_CHECKING:
    from ..services import Services

logger = get_logger(__name__)

LAST_USED_EVERY_S = 60.0
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")


class DatabaseKeyTable:
    """The keys of the `api_keys` table, for `APIKeys`."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._marked: dict[int, float] = {}  # row id -> when this process last wrote last_used_at
        self._writes: set[asyncio.Task[None]] = set()

    async def principal(self, digest: str) -> Principal | None:
        columns = (APIKeyRecord.id, APIKeyRecord.name, APIKeyRecord.digest, APIKeyRecord.revoked_at)
        try:
            async with self.database.session() as session:
                statement = select(*columns).where(APIKeyRecord.digest == digest)
                row = (await session.execute(statement)).first()
        except SQLAlchemyError as exc:
            raise database_error(exc) from exc
        if row is None or not hmac.compare_digest(row.digest, digest):
            return None
        if row.revoked_at is not None:
            raise KeyRevokedError(row.name)
        self._mark_used(row.id)
        return Principal(id=id_of_digest(digest), authenticated=True, name=row.name)

    def _mark_used(self, row_id: int) -> None:
        now = time.monotonic()
        if now - self._marked.get(row_id, -LAST_USED_EVERY_S) < LAST_USED_EVERY_S:
            return
        self._marked[row_id] = now
        task = asyncio.create_task(self._write_last_used(row_id))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_last_used(self, row_id: int) -> None:
        try:
            async with self.database.session() as session:
                await session.execute(
                    update(APIKeyRecord)
                    .where(APIKeyRecord.id == row_id)
                    .values(last_used_at=datetime.now(UTC))
                )
        except SQLAlchemyError as exc:
            self._marked.pop(row_id, None)  # try again on the next use
            logger.warning("could not record the use of an API key", error=describe(exc))

    async def aclose(self) -> None:
        """Wait for the last_used_at writes still running (before the database closes)."""
        await asyncio.gather(*self._writes, return_exceptions=True)


def attach_api_keys(services: Services) -> None:
    """Give the services the keys of API_KEYS and of the `api_keys` table."""
    table = DatabaseKeyTable(services.database)
    services.stack.push_async_callback(table.aclose)
    api_keys.attach_api_keys(services, table)


# --- command line ----------------------------------------------------------------------


def checked_name(name: str) -> str:
    if not KEY_NAME.fullmatch(name):
        raise CommandError(
            f"{name!r} is not a key name: use up to 100 letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    return name


async def create_key(database: Database, name: str) -> str:
    """A new key named `name`, stored by digest; the key itself is returned only here."""
    key = f"sk-{secrets.token_urlsafe(32)}"
    exists = CommandError(f"an API key named {name!r} already exists: choose another name")
    try:
        async with database.session() as session:
            if await session.scalar(select(APIKeyRecord.id).where(APIKeyRecord.name == name)):
                raise exists
            session.add(
                APIKeyRecord(name=name, digest=key_digest(key), created_at=datetime.now(UTC))
            )
    except IntegrityError:
        raise exists from None  # created meanwhile by another process
    return key


async def revoke_key(database: Database, name: str) -> datetime | None:
    """Revoke the key named `name`; returns when it was revoked before, if it was."""
    async with database.session() as session:
        row = (
            await session.execute(
                select(APIKeyRecord.id, APIKeyRecord.revoked_at).where(APIKeyRecord.name == name)
            )
        ).first()
        if row is None:
            raise CommandError(f"no API key is named {name!r} (list-api-keys shows them)")
        if row.revoked_at is not None:
            revoked: datetime = row.revoked_at
            return revoked
        await session.execute(
            update(APIKeyRecord)
            .where(APIKeyRecord.id == row.id)
            .values(revoked_at=datetime.now(UTC))
        )
    return None


async def list_keys(database: Database) -> list[APIKeyRecord]:
    async with database.session() as session:
        return list(await session.scalars(select(APIKeyRecord).order_by(APIKeyRecord.id)))


def moment(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value is not None else "-"


def create_key_command(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        key = await create_key(database, checked_name(args.name))
        print(key)
        print(
            f"Created API key {args.name!r} ({id_of_digest(key_digest(key))}). "
            "This is the only time it is shown: store it now.",
            file=sys.stderr,
        )
        return 0

    return run_with_database(work)


def list_keys_command(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        rows = await list_keys(database)
        if not rows:
            print("No API keys in the database (keys in API_KEYS are not listed).")
            return 0
        table = [("NAME", "ID", "CREATED", "LAST USED", "REVOKED")]
        table += [
            (
                row.name,
                id_of_digest(row.digest),
                moment(row.created_at),
                moment(row.last_used_at),
                moment(row.revoked_at),
            )
            for row in rows
        ]
        widths = [max(len(line[column]) for line in table) for column in range(5)]
        for line in table:
            cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
            print("  ".join(cells).rstrip())
        return 0

    return run_with_database(work)


def revoke_key_command(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        before = await revoke_key(database, args.name)
        if before is not None:
            print(f"API key {args.name!r} was already revoked at {moment(before)}.")
        else:
            print(f"Revoked API key {args.name!r}: it is refused from now on.")
        return 0

    return run_with_database(work)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`create-api-key NAME`, `list-api-keys`, `revoke-api-key NAME`."""
    create = commands.add_parser("create-api-key", help="make a key and print it once")
    create.add_argument("name", help="who or what the key is for (unique)")
    create.set_defaults(handler=create_key_command)
    listing = commands.add_parser("list-api-keys", help="the keys of the database (never the keys)")
    listing.set_defaults(handler=list_keys_command)
    revoke = commands.add_parser("revoke-api-key", help="refuse a key from now on")
    revoke.add_argument("name", help="the key's name (see list-api-keys)")
    revoke.set_defaults(handler=revoke_key_command)
