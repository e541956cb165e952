"""The tests' credentials (auth=jwt): tokens signed with the tests' JWT_SECRET.

Tokens are checked without a database read, so a test's callers need no user rows.
"""

from __future__ import annotations

import uuid
from typing import Any

from {{ cookiecutter.project_slug }}.auth.jwt import issue_token
from {{ cookiecutter.project_slug }}.settings import Settings

from .callers import Caller

JWT_SECRET = "test-jwt-secret-" + "0123456789abcdef" * 3
# Every test's settings, and the environment of the processes the tests start.
# (Sign-ins are limited per address, and every TestClient is one address: not in tests.)
AUTH_SETTINGS: dict[str, Any] = {"jwt_secret": JWT_SECRET, "rate_limit_login_per_minute": 0}
AUTH_ENV = {"JWT_SECRET": JWT_SECRET}


def token_for(subject: str, scopes: tuple[str, ...] = (), **overrides: Any) -> str:
    """An access token for `subject`, as the service issues them (`overrides`: settings)."""
    values: dict[str, Any] = {"environment": "test", **AUTH_SETTINGS, **overrides}
    settings = Settings(_env_file=None, **values)
    token, _ = issue_token(settings, subject=subject, name=f"user-{subject}", scopes=scopes)
    return token


API_KEY = token_for("test")  # what clients send as their bearer credential
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def callers(count: int) -> tuple[dict[str, Any], list[Caller]]:
    """Settings that admit `count` new callers (none needed), and those callers."""
    subjects = [uuid.uuid4().hex[:12] for _ in range(count)]
    return {}, [
        Caller({"Authorization": f"Bearer {token_for(subject)}"}, f"user:{subject}")
        for subject in subjects
    ]
