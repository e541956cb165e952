"""Settings of the database module (SQLAlchemy engine, generation log)."""

from __future__ import annotations

from pydantic import Field

from .common import SettingsPart


class DatabaseSettings(SettingsPart):
{%- if cookiecutter.database == "sqlite" %}
    # `sqlite:///path` or `postgresql://user:pass@host/db`; the async driver is added.
    database_url: str = "sqlite:///./data/{{ cookiecutter.project_slug }}.db"
{%- else %}
    # `postgresql://user:pass@host/db`; the async driver (asyncpg) is added.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/{{ cookiecutter.project_slug }}"
{%- endif %}
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    db_statement_timeout_s: float = Field(default=15.0, gt=0)
    # Keep prompt and completion text in the generation log (off: only counts and timings).
    store_prompts: bool = False
