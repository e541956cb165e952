"""The `users` table (auth=jwt): who may get access tokens, with argon2 password hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, Identifier


class UserRecord(Base):
    """A user made by `create-user`. The password is kept only as its argon2 hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(String(1000))  # space-separated, as in a token
    created_at: Mapped[datetime]
