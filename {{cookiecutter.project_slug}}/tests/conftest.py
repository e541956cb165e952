from __future__ import annotations

{% if cookiecutter.use_redis -%}
import asyncio
import os
import threading
import uuid
{% endif -%}
from collections.abc import Iterator
{%- if cookiecutter.use_redis %}
from contextlib import contextmanager
{%- else %}
from contextlib import AbstractContextManager, nullcontext
{%- endif %}
from typing import Any

import pytest
{%- if cookiecutter.use_redis %}
import redis
{%- endif %}
from fastapi.testclient import TestClient

{% if cookiecutter.database != "none" -%}
from {{ cookiecutter.project_slug }}.db.migrate import upgrade_database
{% endif -%}
{% if cookiecutter.use_redis -%}
from {{ cookiecutter.project_slug }}.jobs.worker import serve_jobs
{% endif -%}
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

{% if cookiecutter.auth == "api_key" -%}
from .auth_api_keys import API_KEY as API_KEY
from .auth_api_keys import AUTH as AUTH
from .auth_api_keys import AUTH_ENV as AUTH_ENV
from .auth_api_keys import AUTH_SETTINGS
from .auth_api_keys import callers as callers
{% elif cookiecutter.auth == "jwt" -%}
from .auth_jwt import API_KEY as API_KEY
from .auth_jwt import AUTH as AUTH
from .auth_jwt import AUTH_ENV as AUTH_ENV
from .auth_jwt import AUTH_SETTINGS
from .auth_jwt import callers as callers
{% else -%}
from .auth_none import API_KEY as API_KEY
from .auth_none import AUTH as AUTH
from .auth_none import AUTH_ENV as AUTH_ENV
from .auth_none import AUTH_SETTINGS
from .auth_none import callers as callers
{% endif -%}
{% if cookiecutter.database == "postgresql" -%}
from .db_postgresql import delete_rows, throwaway_database
{% elif cookiecutter.database == "sqlite" -%}
from .db_sqlite import delete_rows, throwaway_database
{% endif -%}
from .servers import serve
from .upstream import Upstream
{%- if cookiecutter.use_redis %}

# Keys of this test run start with it, and each app's with one of its own below it.
REDIS_RUN_PREFIX = f"test-{uuid.uuid4().hex[:12]}:"
{%- endif %}


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: nothing read from `.env`, known credentials."""
    values: dict[str, Any] = {
        "environment": "test",
        "log_format": "json",
        **AUTH_SETTINGS,
        # Every request passes through the limits; only the rate-limit tests reach them.
        "rate_limit_rpm": 100_000,
        "rate_limit_tpm": 100_000_000,
    }
{%- if cookiecutter.use_redis %}
    values["redis_key_prefix"] = f"{REDIS_RUN_PREFIX}{uuid.uuid4().hex[:8]}:"
{%- endif %}
    values.update(overrides)
    return Settings(_env_file=None, **values)
{%- if cookiecutter.database != "none" %}


@pytest.fixture(scope="session", autouse=True)
def database_for_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway database, migrated, dropped after: DATABASE_URL for the whole run."""
    with (
        throwaway_database(tmp_path_factory.mktemp("database")) as url,
        pytest.MonkeyPatch.context() as patch,
    ):
        upgrade_database(url)
        patch.setenv("DATABASE_URL", url)  # for Settings, and for servers the tests start
        yield url


@pytest.fixture(autouse=True)
def no_rows_carried_over(database_for_the_run: str) -> Iterator[None]:
    """The next test's app would resume this test's unfinished jobs, and see its history."""
    yield
    delete_rows(database_for_the_run)
{%- endif %}
{%- if cookiecutter.use_redis %}


@pytest.fixture(scope="session", autouse=True)
def redis_for_the_run() -> Iterator[redis.Redis]:
    """Redis at REDIS_URL, required (skipped without it, failed in CI); cleaned after."""
    url = make_settings().redis_url
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        message = f"Redis at {url} does not answer ({exc}); start it or set REDIS_URL"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield client
    for key in client.scan_iter(match=f"*{REDIS_RUN_PREFIX}*", count=1000):
        client.delete(key)
    client.close()


@contextmanager
def job_worker(settings: Settings) -> Iterator[None]:
    """A worker like `python -m {{ cookiecutter.project_slug }} worker` beside the app under test."""
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve_jobs(settings, stop),))
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()
{%- else %}


def job_worker(settings: Settings) -> AbstractContextManager[None]:
    """Jobs run inside the app: there is no worker to start."""
    return nullcontext()
{%- endif %}


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client for an app whose lifespan has run (startup before, shutdown after)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[tuple[Upstream, str]]:
    """One scriptable OpenAI-compatible upstream for the whole session."""
    upstream = Upstream()
    with serve(upstream.app(), lifespan="off") as url:
        yield upstream, url


@pytest.fixture
def upstream(upstream_server: tuple[Upstream, str]) -> Iterator[Upstream]:
    upstream_server[0].reset()
    yield upstream_server[0]
    upstream_server[0].reset()


def upstream_settings(upstream_url: str, **overrides: Any) -> Settings:
    """Settings that proxy to the test upstream, with short timeouts and few retries."""
    values: dict[str, Any] = {
        "llm_provider": "openai",
        "llm_base_url": f"{upstream_url}/v1",
        "llm_api_key": "sk-upstream",
        "llm_model": "upstream-model",
        "llm_timeout_s": 2,
        "llm_max_retries": 2,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
def upstream_url(upstream_server: tuple[Upstream, str]) -> str:
    return upstream_server[1]


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) per event; comments (keep-alives) become ("comment", text)."""
    events: list[tuple[str | None, str]] = []
    for block in text.split("\n\n"):
        name: str | None = None
        data: list[str] = []
        for line in block.splitlines():
            if line.startswith(":"):
                events.append(("comment", line[1:].strip()))
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, "\n".join(data)))
    return events
