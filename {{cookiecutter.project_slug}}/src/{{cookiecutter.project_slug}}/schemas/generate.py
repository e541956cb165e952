from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import APIError
from ..llm.base import Completion, FinishReason, GenerationRequest, Usage
from .errors import ErrorDetail

# Strict types, as OpenAI's API has them: `"max_tokens": "5"` or `"cache": 0` is refused,
# not coerced (a JSON integer still passes for a float, so `"temperature": 1` is fine).
STRICT = ConfigDict(extra="forbid", strict=True)
PROMPT_DESCRIPTION = "The text to continue; at most MAX_PROMPT_CHARS characters (100000)."


def check_prompt_length(prompt: str, max_chars: int, *, param: str = "prompt") -> None:
    """Refuse a prompt over the configured limit (MAX_PROMPT_CHARS) with a 422 naming it."""
    if len(prompt) > max_chars:
        raise APIError(
            422,
            f"{param}: at most {max_chars} characters are allowed; this one has {len(prompt)}.",
            code="prompt_too_long",
            param=param,
        )


class GenerateRequest(BaseModel):
    model_config = STRICT | ConfigDict(
        json_schema_extra={
            "examples": [
                {"prompt": "Explain retrieval-augmented generation in one paragraph."},
                {"prompt": "Write a haiku about latency.", "max_tokens": 64, "temperature": 0},
            ]
        },
    )

    prompt: str = Field(min_length=1, description=PROMPT_DESCRIPTION)
    max_tokens: int = Field(default=200, ge=1, le=8192, description="Upper bound on output tokens.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature.")
    cache: bool | None = Field(
        default=None,
        description="Cache the answer: by default only at temperature 0; true opts in, false out.",
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        description="A model of `GET /v1/models` (by default the service's LLM_MODEL).",
    )

    def to_generation(self, default_model: str) -> GenerationRequest:
        return GenerationRequest.from_prompt(
            self.prompt,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            model=self.model or default_model,
        )


class PromptTokensDetails(BaseModel):
    cached_tokens: int = Field(default=0, description="Served from the model's prompt cache.")


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = Field(default=0, description="Spent on hidden reasoning.")


class UsageInfo(BaseModel):
    prompt_tokens: int = Field(examples=[12])
    completion_tokens: int = Field(examples=[42])
    total_tokens: int = Field(examples=[54])
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = Field(
        default_factory=CompletionTokensDetails
    )

    @classmethod
    def of(cls, usage: Usage) -> UsageInfo:
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cached_tokens),
            completion_tokens_details=CompletionTokensDetails(
                reasoning_tokens=usage.reasoning_tokens
            ),
        )


class GenerateResponse(BaseModel):
    id: str = Field(examples=["gen-3f2b6c1d9a8e4f7b"])
    text: str = Field(examples=["Retrieval-augmented generation combines a search step with..."])
    tokens_used: int = Field(description="Completion tokens produced.", examples=[42])
    model: str = Field(examples=["gpt-4o-mini"])
    finish_reason: FinishReason = Field(examples=["stop"])
    usage: UsageInfo
    cached: bool = Field(default=False, description="Served from the response cache.")

    @classmethod
    def of(cls, completion: Completion, *, cached: bool, id: str | None = None) -> GenerateResponse:
        return cls(
            id=id or f"gen-{uuid.uuid4().hex}",
            text=completion.text,
            tokens_used=completion.usage.completion_tokens,
            model=completion.model,
            finish_reason=completion.finish_reason,
            usage=UsageInfo.of(completion.usage),
            cached=cached,
        )


class StreamDone(BaseModel):
    """The last event of a native stream (`event: done`)."""

    id: str
    model: str
    finish_reason: FinishReason
    tokens_used: int
    usage: UsageInfo | None


class BatchRequest(BaseModel):
    model_config = STRICT | ConfigDict(
        json_schema_extra={
            "examples": [
                {"requests": [{"prompt": "Summarise A"}, {"prompt": "Name B", "max_tokens": 9}]}
            ]
        },
    )

    requests: list[GenerateRequest] = Field(min_length=1, description="Up to BATCH_MAX_ITEMS.")


class BatchItem(BaseModel):
    index: int
    result: GenerateResponse | None = None
    error: ErrorDetail | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem]
    succeeded: int
    failed: int


class TokenizeRequest(BaseModel):
    model_config = STRICT

    text: str = Field(max_length=10_000_000, examples=["How many tokens is this?"])


class TokenizeResponse(BaseModel):
    tokens: int = Field(examples=[6])
    characters: int = Field(examples=[24])
