"""The subset of OpenAI's API that chat clients use, shaped exactly as OpenAI shapes it.

Unknown request fields (seed, presence_penalty, ...) are accepted and ignored, as
OpenAI-compatible servers do, so SDKs that send them keep working.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

from ..llm.base import ChatMessage, GenerationRequest
from .generate import UsageInfo

FinishReason = Literal["stop", "length"]


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(examples=["fake-model"])
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=1, description="Only one choice per request is supported.")
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    cache: bool | None = Field(
        default=None,
        description="Use the response cache even at temperature > 0 (true) or never (false).",
    )

    @field_validator("stop")
    @classmethod
    def at_most_four_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def generation(
        self, messages: tuple[ChatMessage, ...], *, max_tokens: int, model: str
    ) -> GenerationRequest:
        return GenerationRequest(
            messages=messages,
            max_tokens=max_tokens,
            temperature=self.temperature,
            model=model,
            top_p=self.top_p,
            stop=self.stop_sequences(),
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(CompletionParams):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "fake-model",
                    "messages": [
                        {"role": "system", "content": "You are concise."},
                        {"role": "user", "content": "What is FastAPI?"},
                    ],
                    "temperature": 0,
                }
            ]
        },
    )

    messages: Annotated[list[ChatMessageIn], Field(min_length=1)]
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)

    def to_generation(self, model: str, *, default_max_tokens: int) -> GenerationRequest:
        messages = tuple(ChatMessage(m.role, m.text()) for m in self.messages)
        limit = self.max_completion_tokens or self.max_tokens or default_max_tokens
        return self.generation(messages, max_tokens=limit, model=model)


class CompletionRequest(CompletionParams):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"model": "fake-model", "prompt": "Once upon a time"}]},
    )

    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]
    max_tokens: int = Field(default=16, ge=1, le=8192)

    def to_generation(self, model: str) -> GenerationRequest:
        prompt = self.prompt if isinstance(self.prompt, str) else self.prompt[0]
        return self.generation(
            (ChatMessage("user", prompt),), max_tokens=self.max_tokens, model=model
        )


# Same fields as the native API reports.
CompletionUsage = UsageInfo


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: CompletionUsage
    system_fingerprint: str | None = None


class TextChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: FinishReason | None
    logprobs: None = None


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer
    def without_nulls(self) -> dict[str, str]:
        """OpenAI leaves absent fields out of a delta (`{}` in the last chunk)."""
        return {
            key: value
            for key, value in (("role", self.role), ("content", self.content))
            if value is not None
        }


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
