"""The `responses` table: stored responses of the Responses API (`responses/sql_store.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base


class ResponseRecord(Base):
    """One stored response (`responses.store.StoredResponse`), kept until RESPONSES_TTL_S."""

    __tablename__ = "responses"
    __table_args__ = (
        # Expired rows, oldest first.
        Index("ix_responses_created", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    response: Mapped[dict[str, Any]]
    input_items: Mapped[list[dict[str, Any]]]
    previous_response_id: Mapped[str | None] = mapped_column(String(64))
    background: Mapped[bool]
    created_at: Mapped[datetime]
