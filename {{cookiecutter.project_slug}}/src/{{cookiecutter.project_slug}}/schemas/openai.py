"""OpenAI's Chat Completions, Completions, Models and Embeddings APIs, shaped as OpenAI
shapes them, and mapped onto the provider-neutral types of `llm/`.

Requests are validated as strictly as OpenAI validates them (`"max_tokens": "5"` is a
400). Parameters of OpenAI's API that are not modelled here are kept (`extra`) and
passed through to an OpenAI-compatible upstream; a model that cannot honour one
answers 400 `unsupported_parameter` naming it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from ..llm.base import (
    ChatMessage,
    Choice,
    Completion,
    ContentPart,
    FinishReason,
    GenerationRequest,
    ImagePart,
    NamedToolChoice,
    ResponseFormat,
    TextPart,
    TokenLogprob,
    ToolCall,
    ToolChoice,
    ToolDefinition,
)
from ..llm.errors import UnsupportedParameterError
from .generate import UsageInfo

STRICT = ConfigDict(strict=True, extra="forbid")
MAX_TOKENS = 131_072


# -- requests -------------------------------------------------------------------------
class TextContent(BaseModel):
    model_config = STRICT

    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    model_config = STRICT

    url: str = Field(min_length=1, max_length=20_000_000)
    detail: Literal["auto", "low", "high"] | None = None


class ImageContent(BaseModel):
    model_config = STRICT

    type: Literal["image_url"]
    image_url: ImageURL


class RefusalContent(BaseModel):
    model_config = STRICT

    type: Literal["refusal"]
    refusal: str


class OtherContent(BaseModel):
    """A content part this service does not take (audio, files): refused by name."""

    model_config = ConfigDict(strict=True, extra="allow")

    type: str


ContentIn = Annotated[
    TextContent | ImageContent | RefusalContent | OtherContent,
    Field(union_mode="left_to_right"),
]


class FunctionCallIn(BaseModel):
    model_config = STRICT

    name: str
    arguments: str


class ToolCallIn(BaseModel):
    model_config = STRICT

    id: str
    type: Literal["function"] = "function"
    function: FunctionCallIn


class MessageIn(BaseModel):
    # Clients add fields of their own to messages (LangChain, agent SDKs): ignored.
    model_config = ConfigDict(strict=True, extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentIn] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    def to_message(self, where: str) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise UnsupportedParameterError(
                f"{where}.tool_call_id", "A tool message needs the tool_call_id it answers."
            )
        return ChatMessage(
            role=self.role,
            content=self._content(where),
            name=self.name,
            tool_calls=tuple(
                ToolCall(call.id, call.function.name, call.function.arguments)
                for call in self.tool_calls or []
            ),
            tool_call_id=self.tool_call_id,
            refusal=self.refusal,
        )

    def _content(self, where: str) -> str | tuple[ContentPart, ...]:
        if not isinstance(self.content, list):
            return self.content or ""
        parts: list[ContentPart] = []
        for number, part in enumerate(self.content):
            if isinstance(part, TextContent):
                parts.append(TextPart(part.text))
            elif isinstance(part, ImageContent):
                parts.append(ImagePart(part.image_url.url, part.image_url.detail))
            elif isinstance(part, RefusalContent):
                continue  # an assistant's earlier refusal: nothing to send back
            else:
                raise UnsupportedParameterError(
                    f"{where}.content[{number}].type",
                    f"Content of type '{part.type}' is not supported.",
                )
        return tuple(parts)


class FunctionDefinitionIn(BaseModel):
    model_config = STRICT

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(BaseModel):
    model_config = STRICT

    type: Literal["function"]
    function: FunctionDefinitionIn


class NamedFunction(BaseModel):
    model_config = STRICT

    name: str


class NamedToolChoiceIn(BaseModel):
    model_config = STRICT

    type: Literal["function"]
    function: NamedFunction


class JSONSchemaIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatIn(BaseModel):
    model_config = STRICT

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaIn | None = None

    def to_format(self) -> ResponseFormat:
        if self.type != "json_schema":
            return ResponseFormat(self.type)
        if self.json_schema is None:
            raise UnsupportedParameterError(
                "response_format.json_schema", "response_format json_schema needs `json_schema`."
            )
        spec = self.json_schema
        return ResponseFormat(
            "json_schema", spec.name, spec.json_schema, spec.strict, spec.description
        )


class StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    include_usage: bool = False


def tool_choice_of(value: str | NamedToolChoiceIn | None) -> ToolChoice | None:
    if isinstance(value, NamedToolChoiceIn):
        return NamedToolChoice(value.function.name)
    if value in {"auto", "none", "required"}:
        return value  # type: ignore[return-value]
    return None


class SamplingParams(BaseModel):
    """What Chat Completions and Completions share."""

    # Unknown fields are kept: OpenAI's API grows, and the upstream may know them.
    model_config = ConfigDict(strict=True, extra="allow")

    model: str = Field(min_length=1, examples=["fake-model"])
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=16)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = None
    user: str | None = Field(default=None, max_length=256)
    cache: bool | None = Field(
        default=None,
        description="This service's own: use the response cache even at temperature > 0 "
        "(true) or never (false). By default only temperature 0 is cached.",
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

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def sampling(self) -> dict[str, Any]:
        """The GenerationRequest fields both APIs set the same way."""
        return {
            "model": self.model,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": self.stop_sequences(),
            "n": self.n,
            "seed": self.seed,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
            "logit_bias": {key: float(value) for key, value in self.logit_bias.items()}
            if self.logit_bias
            else None,
            "user": self.user,
            "extra": dict(self.model_extra or {}),
        }


class ChatCompletionRequest(SamplingParams):
    model_config = ConfigDict(
        strict=True,
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": "fake-model",
                    "messages": [
                        {"role": "system", "content": "You are concise."},
                        {"role": "user", "content": "What is FastAPI?"},
                    ],
                    "temperature": 0,
                },
                {
                    "model": "fake-model",
                    "messages": [{"role": "user", "content": "Call get_weather for Paris."}],
                    "tools": [
                        {
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "parameters": {
                                    "type": "object",
                                    "properties": {"city": {"type": "string"}},
                                    "required": ["city"],
                                },
                            },
                        }
                    ],
                },
            ]
        },
    )

    messages: Annotated[list[MessageIn], Field(min_length=1)]
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[ToolIn] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoiceIn | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatIn | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = Field(
        default=None, max_length=16
    )

    def to_generation(self, *, default_max_tokens: int) -> GenerationRequest:
        return GenerationRequest(
            messages=tuple(
                message.to_message(f"messages[{number}]")
                for number, message in enumerate(self.messages)
            ),
            max_tokens=self.max_completion_tokens or self.max_tokens or default_max_tokens,
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs,
            tools=tuple(
                ToolDefinition(
                    tool.function.name,
                    tool.function.description,
                    tool.function.parameters,
                    tool.function.strict,
                )
                for tool in self.tools or []
            ),
            tool_choice=tool_choice_of(self.tool_choice),
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=self.response_format.to_format() if self.response_format else None,
            reasoning_effort=self.reasoning_effort,
            metadata=self.metadata,
            **self.sampling(),
        )


class CompletionRequest(SamplingParams):
    model_config = ConfigDict(
        strict=True,
        extra="allow",
        json_schema_extra={"examples": [{"model": "fake-model", "prompt": "Once upon a time"}]},
    )

    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]
    max_tokens: int = Field(default=16, ge=1, le=MAX_TOKENS)
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=5)

    def to_generation(self) -> GenerationRequest:
        prompt = self.prompt if isinstance(self.prompt, str) else self.prompt[0]
        return GenerationRequest(
            messages=(ChatMessage("user", prompt),),
            max_tokens=self.max_tokens,
            logprobs=self.logprobs is not None,
            top_logprobs=self.logprobs or None,
            **self.sampling(),
        )

    @property
    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


# -- responses ------------------------------------------------------------------------
# The native API reports usage in the same shape.
CompletionUsage = UsageInfo


class FunctionCallOut(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut

    @classmethod
    def of(cls, call: ToolCall) -> ToolCallOut:
        return cls(id=call.id, function=FunctionCallOut(name=call.name, arguments=call.arguments))


class TopLogprobOut(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobOut(TopLogprobOut):
    top_logprobs: list[TopLogprobOut] = Field(default_factory=list)

    @classmethod
    def of(cls, item: TokenLogprob) -> TokenLogprobOut:
        return cls(
            token=item.token,
            logprob=item.logprob,
            bytes=list(item.bytes) if item.bytes is not None else None,
            top_logprobs=[
                TopLogprobOut(
                    token=top.token,
                    logprob=top.logprob,
                    bytes=list(top.bytes) if top.bytes is not None else None,
                )
                for top in item.top_logprobs
            ],
        )


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut] | None = None
    refusal: list[TokenLogprobOut] | None = None

    @classmethod
    def of(cls, items: tuple[TokenLogprob, ...] | None) -> ChoiceLogprobs | None:
        return cls(content=[TokenLogprobOut.of(item) for item in items]) if items else None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCallOut] | None = None

    @model_serializer(mode="wrap")
    def without_absent_tool_calls(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("tool_calls") is None:
            data.pop("tool_calls", None)
        return data


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: ChoiceLogprobs | None = None

    @classmethod
    def of(cls, choice: Choice) -> ChatChoice:
        return cls(
            index=choice.index,
            message=AssistantMessage(
                content=choice.text if choice.text or not choice.tool_calls else None,
                refusal=choice.refusal,
                tool_calls=[ToolCallOut.of(call) for call in choice.tool_calls] or None,
            ),
            finish_reason=choice.finish_reason,
            logprobs=ChoiceLogprobs.of(choice.logprobs),
        )


class ChatCompletion(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "chatcmpl-3f2b6c1d9a8e4f7b",
                    "object": "chat.completion",
                    "created": 1764590400,
                    "model": "fake-model",
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": "FastAPI is a web framework.",
                            },
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
                    "system_fingerprint": None,
                }
            ]
        }
    )

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: CompletionUsage
    system_fingerprint: str | None = None

    @classmethod
    def of(cls, completion: Completion, *, id: str, created: int) -> ChatCompletion:
        return cls(
            id=id,
            created=created,
            model=completion.model,
            choices=[ChatChoice.of(choice) for choice in completion.choices],
            usage=CompletionUsage.of(completion.usage),
            system_fingerprint=completion.system_fingerprint,
        )


class LegacyLogprobs(BaseModel):
    """The Completions API's own shape of log probabilities."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]

    @classmethod
    def of(cls, items: tuple[TokenLogprob, ...] | None, start: int = 0) -> LegacyLogprobs | None:
        if not items:
            return None
        offsets, at = [], start
        for item in items:
            offsets.append(at)
            at += len(item.token)
        return cls(
            tokens=[item.token for item in items],
            token_logprobs=[item.logprob for item in items],
            top_logprobs=[{top.token: top.logprob for top in item.top_logprobs} for item in items],
            text_offset=offsets,
        )


class TextChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: FinishReason | None
    logprobs: LegacyLogprobs | None = None


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None

    @classmethod
    def of(
        cls, completion: Completion, *, id: str, created: int, echo: str | None
    ) -> TextCompletion:
        prefix = echo or ""
        return cls(
            id=id,
            created=created,
            model=completion.model,
            choices=[
                TextChoice(
                    index=choice.index,
                    text=prefix + choice.text,
                    finish_reason=choice.finish_reason,
                    logprobs=LegacyLogprobs.of(choice.logprobs, len(prefix)),
                )
                for choice in completion.choices
            ],
            usage=CompletionUsage.of(completion.usage),
            system_fingerprint=completion.system_fingerprint,
        )


class WithoutNulls(BaseModel):
    """OpenAI leaves absent fields out of stream deltas (`{}` in a choice's last chunk)."""

    @model_serializer(mode="wrap")
    def without_nulls(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class FunctionCallDeltaOut(WithoutNulls):
    name: str | None = None
    arguments: str | None = None


class ToolCallDeltaOut(WithoutNulls):
    """A streamed tool call: index, id, type and name first; argument fragments after."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDeltaOut


class ChunkDelta(WithoutNulls):
    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDeltaOut] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: FinishReason | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class Model(BaseModel):
    id: str = Field(examples=["fake-model"])
    object: Literal["model"] = "model"
    created: int
    owned_by: str = Field(examples=["system"])


class ModelList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "list",
                    "data": [
                        {"id": "fake-model", "object": "model", "created": 0, "owned_by": "system"}
                    ],
                }
            ]
        }
    )

    object: Literal["list"] = "list"
    data: list[Model]


# -- embeddings -----------------------------------------------------------------------
EmbeddingInput = (
    Annotated[str, Field(min_length=1)]
    | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=2048)]
    | Annotated[list[int], Field(min_length=1)]
    | Annotated[
        list[Annotated[list[int], Field(min_length=1)]], Field(min_length=1, max_length=2048)
    ]
)


class EmbeddingRequestIn(BaseModel):
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "examples": [{"model": "fake-embedding", "input": ["first text", "second text"]}]
        },
    )

    model: str = Field(min_length=1)
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=8192)
    user: str | None = Field(default=None, max_length=256)

    def inputs(self) -> tuple[str, ...] | tuple[tuple[int, ...], ...]:
        """Texts, or token-id sequences: one or many, as the request gave them."""
        value = self.input
        if isinstance(value, str):
            return (value,)
        texts = [item for item in value if isinstance(item, str)]
        if len(texts) == len(value):
            return tuple(texts)
        numbers = [item for item in value if isinstance(item, int)]
        if len(numbers) == len(value):
            return (tuple(numbers),)
        return tuple(tuple(item) for item in value if isinstance(item, list))


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # base64 of little-endian float32 with encoding_format


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "list",
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.12, -0.08, 0.31]}],
                    "model": "fake-embedding",
                    "usage": {"prompt_tokens": 2, "total_tokens": 2},
                }
            ]
        }
    )

    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage
