"""Bad input, generated: schemathesis fuzzes the served default and all-on renders.

Each render (its fresh venv from tests/installs.py, shared with the install tests) is
started with its own command on a free loopback port with a real API key; schemathesis
then sends examples, boundary cases and fuzzed requests (valid and invalid) to every
operation of its OpenAPI document, with bounded example counts and a fixed seed. No
response may be a 5xx, and each must match the documented status codes, content
types, headers and schemas.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import installed
from tests.installs import Installed
from tests.support import describe, run, tool
from tests.test_install_runtime import free_port

pytestmark = pytest.mark.install

SLUG = "ai_service"
API_KEY = "sk-schemathesis-0123456789abcdef"
JWT_SECRET = "schemathesis-" + "0123456789abcdef" * 3
# A token as the render itself issues them (auth=jwt), printed by its own interpreter.
MINT_SCRIPT = """
import sys
from ai_service.auth.jwt import issue_token
from ai_service.settings import Settings
settings = Settings(_env_file=None, environment="test", jwt_secret=sys.argv[1])
print(issue_token(settings, subject="1", name="schemathesis", scopes=frozenset())[0])
"""
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# Bounded: a few dozen cases per operation keep a run to seconds on 2 cores.
MAX_EXAMPLES = 25
SEED = 20261201


# Run with the render's own interpreter, which has the database and Redis clients.
ADMINISTER_POSTGRES = """
import asyncio, sys, asyncpg
async def main(url, statement):
    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""
FORGET_REDIS_KEYS = """
import sys, redis
client = redis.Redis.from_url(sys.argv[1], socket_timeout=5)
for key in client.scan_iter(match=sys.argv[2] + "*", count=1000):
    client.delete(key)
"""


def render_python(install: Installed, script: str, *args: str) -> None:
    result = install.run(install.bin / "python", "-c", script, *args, timeout=120)
    assert result.returncode == 0, describe(result)


def service_url(install: Installed, name: str) -> str:
    """DATABASE_URL or REDIS_URL of the machine (CI exports them): needed, not optional."""
    url = install.env.get(name, "")
    if not url:
        message = f"{name} is not set: the all-on render needs the machine's service"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@contextmanager
def own_database(install: Installed) -> Iterator[str]:
    """A new database on the machine's PostgreSQL, migrated by the render; then dropped."""
    server = service_url(install, "DATABASE_URL").rsplit("/", 1)[0]
    name = f"schemathesis_{uuid.uuid4().hex[:12]}"
    render_python(install, ADMINISTER_POSTGRES, f"{server}/postgres", f'CREATE DATABASE "{name}"')
    try:
        url = f"{server}/{name}"
        migrated = run(
            [install.bin / "python", "-m", SLUG, "migrate"],
            cwd=install.project,
            env={**install.env, "DATABASE_URL": url},
            timeout=120,
        )
        assert migrated.returncode == 0, describe(migrated)
        yield url
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        render_python(install, ADMINISTER_POSTGRES, f"{server}/postgres", drop)


@contextmanager
def own_redis_keys(install: Installed) -> Iterator[str]:
    """A Redis key prefix of this run on the machine's Redis; its keys deleted after."""
    url = service_url(install, "REDIS_URL")
    prefix = f"schemathesis-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        render_python(install, FORGET_REDIS_KEYS, url, prefix)


@contextmanager
def services_for(name: str, install: Installed) -> Iterator[dict[str, str]]:
    """What a render's server needs beyond its defaults: all-on, a database and Redis."""
    if name != "all-on":
        yield {}
        return
    with own_database(install) as database_url, own_redis_keys(install) as prefix:
        yield {"DATABASE_URL": database_url, "REDIS_KEY_PREFIX": prefix}


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def credentials(install: Installed) -> tuple[dict[str, str], str]:
    """The variables that admit a caller of the render's auth mode, and its bearer value."""
    auth = install.project / "src" / SLUG / "auth"
    if (auth / "jwt.py").exists():
        printed = run(
            [install.bin / "python", "-c", MINT_SCRIPT, JWT_SECRET],
            cwd=install.project,
            env=install.env,
        )
        assert printed.returncode == 0, describe(printed)
        return {"JWT_SECRET": JWT_SECRET}, printed.stdout.strip()
    if (auth / "api_keys.py").exists():
        return {"API_KEYS": API_KEY}, API_KEY
    return {}, "none-needed"  # auth=none


@contextmanager
def served(install: Installed, log: Path, **env: str) -> Iterator[str]:
    """`python -m ai_service` on a free loopback port, as its README starts it."""
    port = free_port()
    environment = {
        **install.env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "DRAIN_DELAY_S": "0",
        **env,
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(install.bin / "python"), "-m", SLUG],
            cwd=install.project,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not answers(f"{base}/health/live"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the render did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def schemathesis(base: str, folder: Path, bearer: str) -> subprocess.CompletedProcess[str]:
    return run(
        [
            tool("st"),
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {bearer}",
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--no-color",
        ],
        cwd=folder,  # anything it writes stays in the test's folder
        timeout=300,
    )


@pytest.fixture(scope="module", params=["default", "all-on"])
def render(request: pytest.FixtureRequest, shared_tmp: Path) -> tuple[str, Installed]:
    return request.param, installed(shared_tmp, request.param)


def test_schemathesis_finds_nothing_in_the_served_api(
    render: tuple[str, Installed], tmp_path: Path
) -> None:
    name, install = render
    admitted, bearer = credentials(install)
    with (
        services_for(name, install) as env,
        served(install, tmp_path / "server.log", **admitted, **env) as base,
    ):
        result = schemathesis(base, tmp_path, bearer)
    assert result.returncode == 0, describe(result)
    assert "Tested:" in result.stdout, describe(result)
