"""Tables. A change here needs a migration: `alembic revision --autogenerate -m "..."`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes everywhere, including SQLite (which keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BIGINT on PostgreSQL; INTEGER on SQLite, where only that makes an auto-increment key.
Identifier = BigInteger().with_variant(Integer(), "sqlite")
Document = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    # Named constraints, so that later migrations can drop them (SQLite batch mode too).
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: Document,
        list[dict[str, Any]]: Document,
    }


class GenerationLog(Base):
    """One row per model request: who, which model, tokens, latency and outcome.

    `prompt` and `completion` hold text only when STORE_PROMPTS=true.
    """

    __tablename__ = "generation_log"
    __table_args__ = (
        # The history page: one principal's rows, newest first (a B-tree reads backwards too).
        Index("ix_generation_log_principal_created", "principal", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Identifier, primary_key=True, autoincrement=True)
    principal: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    cached: Mapped[bool]
    streamed: Mapped[bool]
    error_code: Mapped[str | None] = mapped_column(String(64))
    prompt: Mapped[str | None] = mapped_column(Text)
    completion: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class JobRecord(Base):
    """A background job (`jobs.base.Job`), kept so that jobs survive a restart."""

    __tablename__ = "jobs"
    __table_args__ = (
        # Unfinished jobs, oldest first: resumed at startup, and checked by the workers.
        Index("ix_jobs_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    request: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


# Tables of their own modules, registered on Base.metadata (import them from here).
{%- if cookiecutter.auth == "api_key" %}
from . import api_keys as api_keys  # noqa: E402
{%- elif cookiecutter.auth == "jwt" %}
from . import users as users  # noqa: E402
{%- endif %}
from .response_records import ResponseRecord as ResponseRecord  # noqa: E402
