from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"prompt": "Explain retrieval-augmented generation in one paragraph."},
                {"prompt": "Write a haiku about latency.", "max_tokens": 64, "temperature": 0},
            ]
        },
    )

    prompt: str = Field(min_length=1, max_length=100_000, description="The text to continue.")
    max_tokens: int = Field(default=200, ge=1, le=8192, description="Upper bound on output tokens.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature.")


class UsageInfo(BaseModel):
    prompt_tokens: int = Field(examples=[12])
    completion_tokens: int = Field(examples=[42])
    total_tokens: int = Field(examples=[54])


class GenerateResponse(BaseModel):
    id: str = Field(examples=["gen-3f2b6c1d9a8e4f7b"])
    text: str = Field(examples=["Retrieval-augmented generation combines a search step with..."])
    tokens_used: int = Field(description="Completion tokens produced.", examples=[42])
    model: str = Field(examples=["gpt-4o-mini"])
    finish_reason: Literal["stop", "length"] = Field(examples=["stop"])
    usage: UsageInfo
    cached: bool = Field(default=False, description="Served from the response cache.")
