"""The users who may get tokens (auth=jwt): argon2 password hashes (pwdlib), checked off
the event loop and in the same time whether or not the user exists.

`python -m {{ cookiecutter.project_slug }} create-user NAME` adds a user.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import secrets
import sys
from datetime import UTC, datetime
from functools import cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.engine import Database
from ..db.users import UserRecord
from ..settings import get_settings
from .commands import CommandError, fail, run_with_database

PASSWORDS = PasswordHash((Argon2Hasher(),))
MIN_PASSWORD_LENGTH = 8
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,149}")
SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 scope-token characters


@cache
def dummy_hash() -> str:
    """What an unknown user's password is checked against, so that costs as much as a known one."""
    return PASSWORDS.hash(secrets.token_urlsafe(16))


async def user_with_password(
    session: AsyncSession, username: str, password: str
) -> UserRecord | None:
    """The user, if `password` is theirs. One argon2 check either way, in a thread."""
    user = await session.scalar(select(UserRecord).where(UserRecord.username == username))
    stored = user.password_hash if user is not None else await asyncio.to_thread(dummy_hash)
    matches = await asyncio.to_thread(PASSWORDS.verify, password, stored)
    return user if matches and user is not None else None


async def create_user(
    database: Database, username: str, password: str, scopes: tuple[str, ...]
) -> UserRecord:
    password_hash = await asyncio.to_thread(PASSWORDS.hash, password)
    user = UserRecord(
        username=username,
        password_hash=password_hash,
        scopes=" ".join(sorted(set(scopes))),
        created_at=datetime.now(UTC),
    )
    exists = CommandError(f"a user named {username!r} already exists: choose another name")
    try:
        async with database.session() as session:
            if await session.scalar(select(UserRecord.id).where(UserRecord.username == username)):
                raise exists
            session.add(user)
    except IntegrityError:
        raise exists from None  # created meanwhile by another process
    return user


# --- command line ----------------------------------------------------------------------


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Repeat the password: ") != password:
                raise CommandError("the two passwords differ: nothing was changed")
        except EOFError:
            message = "no password given: type it at the prompt or use --password-stdin"
            raise CommandError(message) from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CommandError(f"the password is shorter than {MIN_PASSWORD_LENGTH} characters")
    return password


def checked_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    invalid = [scope for scope in scopes if not SCOPE.fullmatch(scope)]
    if invalid:
        raise CommandError(f"{invalid[0]!r} is not a scope: use printable characters, no spaces")
    return scopes


def create_user_command(args: argparse.Namespace) -> int:
    try:
        if not USERNAME.fullmatch(args.username):
            raise CommandError(
                f"{args.username!r} is not a username: use up to 150 letters, digits and "
                ". _ @ + -, starting with a letter or digit"
            )
        asked = None
        if args.scopes is not None:
            asked = checked_scopes(tuple(s.strip() for s in args.scopes.split(",") if s.strip()))
        password = read_password(args.password_stdin)
    except CommandError as exc:
        return fail(str(exc))

    async def work(database: Database) -> int:
        scopes = asked if asked is not None else checked_scopes(get_settings().jwt_default_scopes)
        user = await create_user(database, args.username, password, scopes)
        print(f"Created user {user.username!r} (id {user.id}, scopes: {user.scopes or 'none'}).")
        return 0

    return run_with_database(work)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`create-user USERNAME [--password-stdin] [--scopes a,b]`."""
    create = commands.add_parser("create-user", help="add a user who can get access tokens")
    create.add_argument("username")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.add_argument(
        "--scopes", help="comma-separated scopes (default: JWT_DEFAULT_SCOPES)", default=None
    )
    create.set_defaults(handler=create_user_command)
