"""The tests' credentials (auth=none): there are none; a caller is its address."""

from __future__ import annotations

from typing import Any

from .callers import Caller

API_KEY = "sk-unused"  # clients that insist on a key (the OpenAI SDK) send one; it is ignored
AUTH: dict[str, str] = {}
# Every test's settings, and the environment of the processes the tests start.
AUTH_SETTINGS: dict[str, Any] = {}
AUTH_ENV: dict[str, str] = {}
TEST_CLIENT = "ip:testclient"  # the address of Starlette's TestClient


def callers(count: int) -> tuple[dict[str, Any], list[Caller]]:
    """The one caller there is: every TestClient request comes from the same address."""
    if count != 1:
        raise ValueError("without authentication all test clients are one caller")
    return {}, [Caller({}, TEST_CLIENT)]
