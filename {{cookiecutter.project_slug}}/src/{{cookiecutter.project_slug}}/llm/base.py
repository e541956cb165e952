"""What every model provider speaks: plain data in, plain data out, no HTTP routing."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant", "tool", "developer"]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float
    model: str
    top_p: float | None = None
    stop: tuple[str, ...] = ()

    @classmethod
    def from_prompt(
        cls, prompt: str, *, max_tokens: int, temperature: float, model: str
    ) -> GenerationRequest:
        return cls(
            messages=(ChatMessage("user", prompt),),
            max_tokens=max_tokens,
            temperature=temperature,
            model=model,
        )


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: FinishReason
    usage: Usage
    model: str


@dataclass(frozen=True, slots=True)
class CompletionChunk:
    """One streamed piece: text, and on the last chunk the finish reason and usage."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = field(default=None)


class Provider(Protocol):
    """A source of completions. Implementations must be safe to share across requests."""

    name: str

    async def complete(self, request: GenerationRequest) -> Completion: ...

    def stream(self, request: GenerationRequest) -> AsyncGenerator[CompletionChunk, None]:
        """Chunks as they are generated; the last one carries finish reason and usage."""
        ...

    async def list_models(self) -> list[str]: ...

    async def readiness(self) -> str | None:
        """None when requests can be served, otherwise a short reason."""
        ...

    async def aclose(self) -> None: ...
