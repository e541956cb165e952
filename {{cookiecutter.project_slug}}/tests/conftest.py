from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from .servers import serve
from .upstream import Upstream

API_KEY = "sk-test-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: nothing read from `.env`, a known API key."""
    values: dict[str, Any] = {"environment": "test", "api_keys": API_KEY, "log_format": "json"}
    values.update(overrides)
    return Settings(_env_file=None, **values)


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
