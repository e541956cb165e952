from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..db.models import GenerationLog


class Generation(BaseModel):
    """One model request from the generation log."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[1842])
    request_id: str | None = Field(examples=["3f2b6c1d9a8e4f7b8c0d1e2f3a4b5c6d"])
    model: str = Field(examples=["gpt-4o-mini"])
    status: Literal["ok", "error", "cancelled"] = Field(examples=["ok"])
    prompt_tokens: int = Field(examples=[12])
    completion_tokens: int = Field(examples=[42])
    latency_ms: float = Field(examples=[812.4])
    cached: bool = Field(examples=[False])
    streamed: bool = Field(examples=[True])
    error_code: str | None = Field(examples=[None])
    prompt: str | None = Field(
        description="The prompt, kept only when the service runs with STORE_PROMPTS=true.",
        examples=["Write a haiku about latency."],
    )
    completion: str | None = Field(
        description="The answer, kept only when the service runs with STORE_PROMPTS=true.",
        examples=["Packets drift like snow..."],
    )
    created_at: datetime = Field(examples=["2025-01-31T12:00:00Z"])


class GenerationPage(BaseModel):
    """A page of the caller's generation log, newest first."""

    data: list[Generation]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page.",
        examples=["WyIyMDI1LTAxLTMxVDEyOjAwOjAwKzAwOjAwIiwgMTg0Ml0"],
    )

    @classmethod
    def of(cls, rows: Sequence[GenerationLog], next_cursor: str | None) -> GenerationPage:
        return cls(data=[Generation.model_validate(row) for row in rows], next_cursor=next_cursor)
