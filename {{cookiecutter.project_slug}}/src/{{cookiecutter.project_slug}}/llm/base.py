"""What every model provider speaks: plain data in, plain data out, no HTTP routing.

These types are shared by every layer: the wire-format adapters in `api/` and
`schemas/` map OpenAI's Chat Completions, Responses and the native API onto them,
and providers map them onto their upstream. They are frozen dataclasses that pydantic
can validate and serialise (the cache and the job store keep them as JSON).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
ImageDetail = Literal["auto", "low", "high"]
ReasoningEffort = Literal["minimal", "low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    url: str  # https://... or a data: URL
    detail: ImageDetail | None = None
    type: Literal["image"] = "image"


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for; `arguments` is JSON text, as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str | tuple[ContentPart, ...] = ""
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()  # assistant messages
    tool_call_id: str | None = None  # tool messages: the call they answer
    refusal: str | None = None  # assistant messages that declined

    @property
    def text(self) -> str:
        """The message's text (its text parts joined; images left out)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def has_images(self) -> bool:
        return not isinstance(self.content, str) and any(
            isinstance(part, ImagePart) for part in self.content
        )


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A function the model may call, its parameters described by a JSON Schema."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class NamedToolChoice:
    """Force a call of this one function."""

    name: str


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Plain text, any JSON object, or JSON that matches `json_schema`."""

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    json_schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One call to a model. Fields left at their defaults are not sent upstream."""

    messages: tuple[ChatMessage, ...]
    model: str
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    n: int = 1
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    tools: tuple[ToolDefinition, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    # Parameters of OpenAI's API this service does not model, passed through to an
    # OpenAI-compatible upstream as they came (providers that cannot honour them refuse).
    extra: dict[str, Any] = field(default_factory=dict)

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

    @property
    def prompt(self) -> str:
        """The text of the last message: what a log line or a record shows of the request."""
        return self.messages[-1].text if self.messages else ""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # of the prompt, served from the upstream's prompt cache
    reasoning_tokens: int = 0  # of the completion, spent on hidden reasoning

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None
    top_logprobs: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Choice:
    """One of the `n` answers: text, or function calls, or a refusal."""

    index: int
    text: str
    finish_reason: FinishReason
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    choices: tuple[Choice, ...]
    usage: Usage
    model: str
    system_fingerprint: str | None = None

    @property
    def text(self) -> str:
        return self.choices[0].text if self.choices else ""

    @property
    def finish_reason(self) -> FinishReason:
        return self.choices[0].finish_reason if self.choices else "stop"

    @classmethod
    def of_text(
        cls, text: str, *, finish_reason: FinishReason, usage: Usage, model: str
    ) -> Completion:
        return cls((Choice(0, text, finish_reason),), usage, model)


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed function call: id and name first, argument text after."""

    index: int  # of the call within its choice
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class CompletionChunk:
    """One streamed piece of one choice; the last chunk of the stream carries usage.

    A choice's last chunk has its finish reason. With `n` > 1 the choices interleave,
    told apart by `index`.
    """

    text: str = ""
    index: int = 0
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    refusal: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    model: str | None = None  # the upstream's name for the model, when it says
    system_fingerprint: str | None = None

    @property
    def has_output(self) -> bool:
        return bool(self.text or self.tool_calls or self.refusal)


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    inputs: tuple[str, ...] | tuple[tuple[int, ...], ...]  # texts, or token ids
    model: str
    dimensions: int | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: tuple[tuple[float, ...], ...]  # one per input, in order
    prompt_tokens: int
    model: str


class Provider(Protocol):
    """A source of completions. Implementations must be safe to share across requests."""

    name: str

    def check(self, request: GenerationRequest) -> None:
        """Raise UnsupportedParameterError for a parameter the provider cannot honour."""
        ...

    async def complete(self, request: GenerationRequest) -> Completion: ...

    def stream(self, request: GenerationRequest) -> AsyncGenerator[CompletionChunk, None]:
        """Chunks as they are generated; the last one carries finish reason and usage."""
        ...

    async def embed(self, request: EmbeddingRequest) -> Embeddings: ...

    async def readiness(self) -> str | None:
        """None when requests can be served, otherwise a short reason."""
        ...

    async def aclose(self) -> None: ...
