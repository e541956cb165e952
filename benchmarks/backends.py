"""The all-on render's PostgreSQL and Redis: a throwaway database, a key prefix of its own.

Both are reached through the all-on render's own drivers (asyncpg, redis-py), run in
its venv: the harness itself needs nothing beyond the standard library.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .renders import log

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"

_POSTGRES = """
import asyncio, json, sys
import asyncpg

async def main(url, action, name):
    conn = await asyncpg.connect(url)
    try:
        if action == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        elif action == "drop":
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(json.dumps({"version": await conn.fetchval("SHOW server_version")}))
    finally:
        await conn.close()

asyncio.run(main(*sys.argv[1:]))
"""

_REDIS = """
import json, sys
import redis

client = redis.Redis.from_url(sys.argv[1])
action, prefix = sys.argv[2], sys.argv[3]
out = {"version": client.info("server").get("redis_version", "?")}
if action == "clean":
    # The prefix is random: it names only this run's keys, wherever it sits in a key.
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    out["deleted"] = len(keys)
print(json.dumps(out))
"""


def _run(
    python: Path, code: str, service: str, url: str, action: str, name: str
) -> dict[str, object]:
    done = subprocess.run(  # noqa: S603 - the render's interpreter, our own snippet
        [str(python), "-c", code, url, action, name], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise SystemExit(
            f"bench: {service} at {without_password(url)} ({action}) failed; the all-on "
            f"render needs it (or leave it out: --only without all-on):\n{done.stderr[-2000:]}"
        )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with its database replaced by `name`."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def postgres_database(python: Path, admin_url: str, versions: dict[str, str]) -> Iterator[str]:
    """A database of its own for this run (its URL), dropped afterwards."""
    name = f"bench_{secrets.token_hex(4)}"
    found = _run(python, _POSTGRES, "PostgreSQL", admin_url, "create", name)
    versions["PostgreSQL"] = str(found["version"])
    log(f"PostgreSQL {found['version']}: database {name}")
    try:
        yield database_url(admin_url, name)
    finally:
        _run(python, _POSTGRES, "PostgreSQL", admin_url, "drop", name)
        log(f"dropped database {name}")


@contextmanager
def redis_prefix(python: Path, url: str, versions: dict[str, str]) -> Iterator[str]:
    """A key prefix of its own for this run, its keys deleted afterwards."""
    prefix = f"bench-{secrets.token_hex(4)}:"
    found = _run(python, _REDIS, "Redis", url, "info", prefix)
    versions["Redis"] = str(found["version"])
    log(f"Redis {found['version']}: key prefix {prefix}")
    try:
        yield prefix
    finally:
        cleaned = _run(python, _REDIS, "Redis", url, "clean", prefix)
        log(f"deleted {cleaned['deleted']} Redis keys with {prefix}")
