"""The `api_keys` table: keys made by `create-api-key`, stored as SHA-256 digests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, Identifier


class APIKeyRecord(Base):
    """One client key. The key itself is never stored: only its digest, to look it up by."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
