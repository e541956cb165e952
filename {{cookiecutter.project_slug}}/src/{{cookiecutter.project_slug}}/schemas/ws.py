"""Messages of the `/ws/chat` WebSocket: JSON objects told apart by `type`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from .generate import PROMPT_DESCRIPTION, STRICT, UsageInfo


class PromptMessage(BaseModel):
    """Client -> server: generate a reply; the conversation so far is its context."""

    model_config = STRICT

    type: Literal["prompt"]
    prompt: str = Field(min_length=1, description=PROMPT_DESCRIPTION)
    max_tokens: int = Field(default=200, ge=1, le=8192)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    model: str | None = Field(default=None, min_length=1)


class CancelMessage(BaseModel):
    """Client -> server: stop the reply being generated."""

    type: Literal["cancel"]


class PingMessage(BaseModel):
    """Client -> server: answered with `pong` (an application-level keep-alive)."""

    type: Literal["ping"]


ClientMessage = Annotated[PromptMessage | CancelMessage | PingMessage, Field(discriminator="type")]
CLIENT_MESSAGE: TypeAdapter[PromptMessage | CancelMessage | PingMessage] = TypeAdapter(
    ClientMessage
)


class DeltaMessage(BaseModel):
    type: Literal["delta"] = "delta"
    text: str


class UsageMessage(BaseModel):
    type: Literal["usage"] = "usage"
    usage: UsageInfo


class DoneMessage(BaseModel):
    type: Literal["done"] = "done"
    id: str
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "cancelled"]


class PongMessage(BaseModel):
    type: Literal["pong"] = "pong"


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    error: dict[str, Any]
