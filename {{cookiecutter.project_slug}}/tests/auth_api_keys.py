"""The tests' credentials (auth=api_key): keys in API_KEYS."""

from __future__ import annotations

import uuid
from typing import Any

from {{ cookiecutter.project_slug }}.auth.api_keys import key_id

from .callers import Caller

API_KEY = "sk-test-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# Every test's settings, and the environment of the processes the tests start.
AUTH_SETTINGS: dict[str, Any] = {"api_keys": API_KEY}
AUTH_ENV = {"API_KEYS": API_KEY}


def callers(count: int) -> tuple[dict[str, Any], list[Caller]]:
    """Settings that admit `count` new callers (and API_KEY), and those callers."""
    keys = [f"sk-test-{uuid.uuid4().hex}" for _ in range(count)]
    settings = {"api_keys": ",".join([API_KEY, *keys])}
    return settings, [Caller({"Authorization": f"Bearer {key}"}, key_id(key)) for key in keys]
