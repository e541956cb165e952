"""OpenAI's Responses API (`/v1/responses`), shaped as OpenAI shapes it, and mapped onto
the provider-neutral types of `llm/`.

A response is translated into one chat call, so every model this service serves
answers it, an OpenAI-compatible upstream included: `instructions` become a system
message, message items chat messages, `function_call` items the tool calls of an
assistant message and `function_call_output` items tool messages. The completion comes
back as output items: a message, function calls. Parameters that change nothing here
are accepted; those the translation cannot honour are 400 `unsupported_parameter`
naming them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
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
    Usage,
)
from ..llm.errors import UnsupportedParameterError
from .openai import MAX_TOKENS, STRICT

# Items and parts that clients send back as they received them carry fields this
# service does not use (ids, statuses, annotations, phases): ignored.
ECHOED = ConfigDict(strict=True, extra="ignore")
# A kind of item, part or tool this service does not take, kept to be refused by name.
OTHER = ConfigDict(strict=True, extra="allow")
NAME = r"^[a-zA-Z0-9_-]{1,64}$"
INCLUDE_LOGPROBS = "message.output_text.logprobs"
# What `include` may ask for that changes nothing here (no reasoning items, and input
# images are kept as they were sent).
INCLUDE_NO_EFFECT = frozenset({"reasoning.encrypted_content", "message.input_image.image_url"})
# Parameters that Chat Completions spells the same way: passed to the model as they came.
PASSED_THROUGH = ("service_tier", "prompt_cache_key", "safety_identifier", "prompt_cache_retention")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def by_type(known: set[str], noun: str, missing: str | None = None) -> Discriminator:
    """Tell union members apart by `type`, tagged "<type> <noun>" ("other <noun>" for a type
    this service does not take). The space marks the tag as no field of the request."""

    def tag(value: Any) -> str:
        if isinstance(value, dict):
            kind = value.get("type", missing)
        else:
            kind = getattr(value, "type", missing)
        # `type` may be anything a client sent (an object, a list): only known strings count.
        return f"{kind if isinstance(kind, str) and kind in known else 'other'} {noun}"

    return Discriminator(tag)


def text_or_not(value: Any) -> str:
    """`str | something else`, told apart first, so that an error names the one meant."""
    return "as text" if isinstance(value, str) else "as structure"


def without_union_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """`input[0]`, not `input.as structure[0].message item`: an error's path in the request."""
    return tuple(part for part in loc if not (isinstance(part, str) and " " in part))


# -- requests -------------------------------------------------------------------------
class InputText(BaseModel):
    model_config = ECHOED

    type: Literal["input_text"]
    text: str


class InputImage(BaseModel):
    model_config = ECHOED

    type: Literal["input_image"]
    image_url: str | None = Field(default=None, min_length=1, max_length=20_000_000)
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] | None = None


class OutputText(BaseModel):
    model_config = ECHOED

    type: Literal["output_text"]
    text: str


class Refusal(BaseModel):
    model_config = ECHOED

    type: Literal["refusal"]
    refusal: str


class OtherPart(BaseModel):
    """A content part this service does not take (files, audio): refused by name."""

    model_config = OTHER

    type: str


PartIn = Annotated[
    Annotated[InputText, Tag("input_text part")]
    | Annotated[InputImage, Tag("input_image part")]
    | Annotated[OutputText, Tag("output_text part")]
    | Annotated[Refusal, Tag("refusal part")]
    | Annotated[OtherPart, Tag("other part")],
    by_type({"input_text", "input_image", "output_text", "refusal"}, "part"),
]

TextOrParts = Annotated[
    Annotated[str, Tag("as text")] | Annotated[list[PartIn], Tag("as structure")],
    Discriminator(text_or_not),
]


class MessageItem(BaseModel):
    """A message: the caller's (`user`, `system`, `developer`) or an earlier `assistant` one."""

    model_config = ECHOED

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: TextOrParts


class FunctionCallItem(BaseModel):
    """A function call the model asked for in an earlier turn."""

    model_config = ECHOED

    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str


class FunctionCallOutputItem(BaseModel):
    """What the caller's function returned for `call_id`."""

    model_config = ECHOED

    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: TextOrParts


class OtherItem(BaseModel):
    """An item this service does not take (reasoning, built-in tool calls): refused by name."""

    model_config = OTHER

    type: str


ItemIn = Annotated[
    Annotated[MessageItem, Tag("message item")]
    | Annotated[FunctionCallItem, Tag("function_call item")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output item")]
    | Annotated[OtherItem, Tag("other item")],
    by_type({"message", "function_call", "function_call_output"}, "item", missing="message"),
]
TextOrItems = Annotated[
    Annotated[str, Tag("as text")] | Annotated[list[ItemIn], Tag("as structure")],
    Discriminator(text_or_not),
]
# Input and output items as stored (JSON) and read back to continue a conversation.
ITEMS = TypeAdapter(list[ItemIn])


class FunctionTool(BaseModel):
    model_config = STRICT

    type: Literal["function"]
    name: str = Field(pattern=NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class OtherTool(BaseModel):
    """A built-in tool (web search, file search, ...): refused by name."""

    model_config = OTHER

    type: str


ToolIn = Annotated[
    Annotated[FunctionTool, Tag("function tool")] | Annotated[OtherTool, Tag("other tool")],
    by_type({"function"}, "tool"),
]


class FunctionChoice(BaseModel):
    model_config = STRICT

    type: Literal["function"]
    name: str


class OtherChoice(BaseModel):
    model_config = OTHER

    type: str


ToolChoiceIn = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("as text")]
    | Annotated[
        Annotated[
            Annotated[FunctionChoice, Tag("function choice")]
            | Annotated[OtherChoice, Tag("other choice")],
            by_type({"function"}, "choice"),
        ],
        Tag("as structure"),
    ],
    Discriminator(text_or_not),
]


class TextFormat(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(default=None, pattern=NAME)
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def schema_has_a_name(self) -> TextFormat:
        if self.type == "json_schema" and (self.name is None or self.json_schema is None):
            raise ValueError("a json_schema format needs `name` and `schema`")
        return self

    def to_format(self) -> ResponseFormat | None:
        if self.type == "text":
            return None
        if self.type == "json_object":
            return ResponseFormat("json_object")
        return ResponseFormat(
            "json_schema", self.name, self.json_schema, self.strict, self.description
        )


class TextConfig(BaseModel):
    model_config = STRICT

    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(BaseModel):
    model_config = STRICT

    effort: Literal["minimal", "low", "medium", "high"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class ResponseStreamOptions(BaseModel):
    model_config = STRICT

    include_obfuscation: bool = False  # nothing is obfuscated here: changes nothing


class ResponseCreateRequest(BaseModel):
    # Unknown fields are kept to be refused by name (or passed on: PASSED_THROUGH).
    model_config = ConfigDict(
        strict=True,
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": "fake-model",
                    "instructions": "You are concise.",
                    "input": "What is FastAPI?",
                },
                {
                    "model": "fake-model",
                    "input": [{"role": "user", "content": "Call get_weather for Paris."}],
                    "tools": [
                        {
                            "type": "function",
                            "name": "get_weather",
                            "parameters": {
                                "type": "object",
                                "properties": {"city": {"type": "string"}},
                                "required": ["city"],
                            },
                        }
                    ],
                },
            ]
        },
    )

    model: str = Field(min_length=1, examples=["fake-model"])
    input: TextOrItems | None = None
    instructions: str | None = None
    previous_response_id: str | None = Field(default=None, min_length=1)
    tools: list[ToolIn] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoiceIn | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    max_tool_calls: int | None = Field(default=None, ge=1)  # of built-in tools: there are none
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    include: list[str] | None = None
    metadata: (
        dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] | None
    ) = Field(default=None, max_length=16)
    user: str | None = Field(default=None, max_length=256)
    store: bool | None = None
    background: bool | None = None
    stream: bool | None = None
    stream_options: ResponseStreamOptions | None = None
    truncation: Literal["auto", "disabled"] | None = None

    @model_validator(mode="wrap")
    @classmethod
    def errors_name_request_fields(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            errors: list[Any] = [
                {**error, "loc": without_union_tags(error["loc"])}
                for error in exc.errors(include_url=False)
            ]
            raise ValidationError.from_exception_data(exc.title, errors) from None

    @property
    def stored(self) -> bool:
        return self.store is not False

    def input_items(self) -> list[ItemIn]:
        if self.input is None:
            return []
        if isinstance(self.input, str):
            return [MessageItem(role="user", content=self.input)]
        return list(self.input)

    def check(self) -> None:
        """Refuse, by name, what the translation to a chat call cannot honour."""
        for key, value in sorted((self.model_extra or {}).items()):
            if value is not None and key not in PASSED_THROUGH:
                raise UnsupportedParameterError(key)
        if self.truncation == "auto":
            raise UnsupportedParameterError(
                "truncation", "truncation 'auto' is not supported: the input is sent whole."
            )
        if self.reasoning and (self.reasoning.summary or self.reasoning.generate_summary):
            raise UnsupportedParameterError(
                "reasoning.summary", "Reasoning summaries are not available from this service."
            )
        for number, name in enumerate(self.include or []):
            if name != INCLUDE_LOGPROBS and name not in INCLUDE_NO_EFFECT:
                raise UnsupportedParameterError(
                    f"include[{number}]", f"include '{name}' is not supported."
                )
        for number, tool in enumerate(self.tools or []):
            if isinstance(tool, OtherTool):
                raise UnsupportedParameterError(
                    f"tools[{number}].type",
                    f"Tools of type '{tool.type}' are not supported: only 'function' tools are.",
                )
        if isinstance(self.tool_choice, OtherChoice):
            raise UnsupportedParameterError(
                "tool_choice", f"tool_choice of type '{self.tool_choice.type}' is not supported."
            )
        if self.background and self.store is False:
            raise UnsupportedParameterError(
                "store", "A background response must be stored: leave out store or set it true."
            )
        if self.background and self.stream:
            raise UnsupportedParameterError(
                "stream", "A background response is not streamed here: poll GET /v1/responses/{id}."
            )

    def to_generation(
        self, history: Sequence[ItemIn], *, default_max_tokens: int
    ) -> GenerationRequest:
        """The chat call: `history` (the previous responses' items) first, then the input."""
        self.check()
        messages = conversation([*history, *self.input_items()], history=len(history))
        if self.instructions:
            messages.insert(0, ChatMessage("system", self.instructions))
        if not messages:
            raise UnsupportedParameterError("input", "A response needs input or instructions.")
        given = self.model_extra or {}
        extra = {key: given[key] for key in PASSED_THROUGH if given.get(key) is not None}
        if self.text and self.text.verbosity:
            extra["verbosity"] = self.text.verbosity
        logprobs = INCLUDE_LOGPROBS in (self.include or [])
        return GenerationRequest(
            messages=tuple(messages),
            model=self.model,
            max_tokens=self.max_output_tokens or default_max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            logprobs=logprobs,
            top_logprobs=self.top_logprobs if logprobs else None,
            tools=tuple(
                ToolDefinition(tool.name, tool.description, tool.parameters, tool.strict)
                for tool in self.tools or []
                if isinstance(tool, FunctionTool)
            ),
            tool_choice=tool_choice_of(self.tool_choice),
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=self.text.format.to_format()
            if self.text and self.text.format
            else None,
            reasoning_effort=self.reasoning.effort if self.reasoning else None,
            user=self.user,
            metadata=self.metadata,
            extra=extra,
        )


def tool_choice_of(value: str | FunctionChoice | OtherChoice | None) -> ToolChoice | None:
    if isinstance(value, FunctionChoice):
        return NamedToolChoice(value.name)
    if value in {"auto", "none", "required"}:
        return value  # type: ignore[return-value]
    return None


def conversation(items: Sequence[ItemIn], *, history: int) -> list[ChatMessage]:
    """Chat messages for Responses items; the first `history` came from stored responses."""
    messages: list[ChatMessage] = []
    for index, item in enumerate(items):
        where = f"input[{index - history}]" if index >= history else "previous_response_id"
        if isinstance(item, MessageItem):
            messages.append(message_of(item, where))
        elif isinstance(item, FunctionCallItem):
            call = ToolCall(item.call_id, item.name, item.arguments)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                # Text then calls, or parallel calls: one assistant message in a chat.
                messages[-1] = replace(last, tool_calls=(*last.tool_calls, call))
            else:
                messages.append(ChatMessage("assistant", tool_calls=(call,)))
        elif isinstance(item, FunctionCallOutputItem):
            output = parts_of(item.output, f"{where}.output", text_only=True)
            messages.append(ChatMessage("tool", output, tool_call_id=item.call_id))
        else:
            raise UnsupportedParameterError(
                f"{where}.type", f"Input items of type '{item.type}' are not supported."
            )
    return messages


def message_of(item: MessageItem, where: str) -> ChatMessage:
    refusals = [p.refusal for p in item.content if isinstance(p, Refusal)]
    content = parts_of(item.content, f"{where}.content", text_only=False)
    texts = [part.text for part in content if isinstance(part, TextPart)]
    if item.role != "user" and not isinstance(content, str) and len(texts) == len(content):
        content = "".join(texts)  # system, developer and assistant text as one string
    return ChatMessage(item.role, content, refusal="".join(refusals) or None)


def parts_of(
    content: str | list[PartIn], where: str, *, text_only: bool
) -> str | tuple[ContentPart, ...]:
    if isinstance(content, str):
        return content
    parts: list[ContentPart] = []
    for number, part in enumerate(content):
        if isinstance(part, InputText | OutputText):
            parts.append(TextPart(part.text))
        elif isinstance(part, Refusal):
            continue  # an earlier refusal: the message keeps it apart from its content
        elif isinstance(part, InputImage) and not text_only:
            if part.image_url is None:
                raise UnsupportedParameterError(
                    f"{where}[{number}].file_id",
                    "Images by file_id are not supported: send image_url (https or data:).",
                )
            parts.append(ImagePart(part.image_url, part.detail))
        else:
            raise UnsupportedParameterError(
                f"{where}[{number}].type", f"Content of type '{part.type}' is not supported here."
            )
    return tuple(parts)


# -- responses ------------------------------------------------------------------------
ItemStatus = Literal["in_progress", "completed", "incomplete"]
ResponseStatus = Literal["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"]


class ResponseTopLogprobOut(BaseModel):
    token: str
    bytes: list[int]
    logprob: float


class LogprobOut(ResponseTopLogprobOut):
    top_logprobs: list[ResponseTopLogprobOut] = Field(default_factory=list)

    @classmethod
    def of(cls, item: TokenLogprob) -> LogprobOut:
        return cls(
            token=item.token,
            bytes=list(item.bytes) if item.bytes is not None else list(item.token.encode()),
            logprob=item.logprob,
            top_logprobs=[
                ResponseTopLogprobOut(
                    token=top.token,
                    bytes=list(top.bytes) if top.bytes is not None else list(top.token.encode()),
                    logprob=top.logprob,
                )
                for top in item.top_logprobs
            ],
        )


class OutputTextOut(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[dict[str, Any]] = Field(default_factory=list)
    logprobs: list[LogprobOut] = Field(default_factory=list)


class RefusalOut(BaseModel):
    type: Literal["refusal"] = "refusal"
    refusal: str


class MessageOut(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: ItemStatus
    content: list[Annotated[OutputTextOut | RefusalOut, Field(discriminator="type")]]


class ResponseFunctionCallOut(BaseModel):
    id: str
    type: Literal["function_call"] = "function_call"
    call_id: str
    name: str
    arguments: str
    status: ItemStatus


OutputItem = Annotated[MessageOut | ResponseFunctionCallOut, Field(discriminator="type")]


class InputTokensDetails(BaseModel):
    cached_tokens: int = Field(default=0, description="Served from the model's prompt cache.")
    cache_write_tokens: int = Field(default=0, description="Written to it (not reported by chat).")


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = Field(default=0, description="Spent on hidden reasoning.")


class ResponseUsage(BaseModel):
    input_tokens: int = Field(examples=[12])
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int = Field(examples=[42])
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int = Field(examples=[54])

    @classmethod
    def of(cls, usage: Usage) -> ResponseUsage:
        return cls(
            input_tokens=usage.prompt_tokens,
            input_tokens_details=InputTokensDetails(cached_tokens=usage.cached_tokens),
            output_tokens=usage.completion_tokens,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=usage.reasoning_tokens),
            total_tokens=usage.total_tokens,
        )


class ResponseError(BaseModel):
    code: Literal["server_error", "rate_limit_exceeded"]  # OpenAI's codes that can apply here
    message: str


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ReasoningOut(BaseModel):
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    summary: None = None


class TextConfigOut(BaseModel):
    format: dict[str, Any] = Field(default_factory=lambda: {"type": "text"})
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponseObject(BaseModel):
    """A response, as `POST /v1/responses` answers and `GET /v1/responses/{id}` reads back."""

    id: str = Field(examples=["resp_3f2b6c1d9a8e4f7b"])
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    background: bool = False
    completed_at: int | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    model: str = Field(examples=["fake-model"])
    output: list[OutputItem] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: ReasoningOut = Field(default_factory=ReasoningOut)
    store: bool = True
    temperature: float | None = None
    text: TextConfigOut = Field(default_factory=TextConfigOut)
    tool_choice: Literal["none", "auto", "required"] | FunctionChoice = "auto"
    tools: list[FunctionTool] = Field(default_factory=list)
    top_logprobs: int | None = None
    top_p: float | None = None
    truncation: Literal["disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None

    @classmethod
    def of_request(
        cls, body: ResponseCreateRequest, *, id: str, created_at: int, status: ResponseStatus
    ) -> ResponseObject:
        """The response as it starts: what the request asked for, no output yet."""
        text = TextConfigOut()
        if body.text is not None:
            if body.text.format is not None:
                text.format = body.text.format.model_dump(by_alias=True, exclude_none=True)
            text.verbosity = body.text.verbosity
        return cls(
            id=id,
            created_at=created_at,
            status=status,
            background=bool(body.background),
            instructions=body.instructions,
            max_output_tokens=body.max_output_tokens,
            metadata=body.metadata or {},
            model=body.model,
            parallel_tool_calls=body.parallel_tool_calls is not False,
            previous_response_id=body.previous_response_id,
            reasoning=ReasoningOut(effort=body.reasoning.effort if body.reasoning else None),
            store=body.stored,
            temperature=body.temperature,
            text=text,
            tool_choice="auto"
            if body.tool_choice is None or isinstance(body.tool_choice, OtherChoice)
            else body.tool_choice,
            tools=[tool for tool in body.tools or [] if isinstance(tool, FunctionTool)],
            top_logprobs=body.top_logprobs,
            top_p=body.top_p,
            user=body.user,
        )

    def completed(self, completion: Completion, *, at: int) -> ResponseObject:
        """This response with the model's answer: its output items, status and usage."""
        choice = completion.choices[0]
        incomplete = incomplete_details(choice.finish_reason)
        return self.model_copy(
            update={
                "status": "incomplete" if incomplete else "completed",
                "completed_at": None if incomplete else at,
                "incomplete_details": incomplete,
                "model": completion.model,
                "output": output_of(choice, "incomplete" if incomplete else "completed"),
                "usage": ResponseUsage.of(completion.usage),
            }
        )

    def failed(self, message: str, *, rate_limited: bool = False) -> ResponseObject:
        code: Literal["server_error", "rate_limit_exceeded"] = (
            "rate_limit_exceeded" if rate_limited else "server_error"
        )
        return self.model_copy(
            update={"status": "failed", "error": ResponseError(code=code, message=message)}
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def incomplete_details(reason: FinishReason) -> IncompleteDetails | None:
    if reason == "length":
        return IncompleteDetails(reason="max_output_tokens")
    if reason == "content_filter":
        return IncompleteDetails(reason="content_filter")
    return None


def output_of(choice: Choice, status: ItemStatus) -> list[OutputItem]:
    """A message (unless the model only called functions), then one item per call."""
    items: list[OutputItem] = []
    if choice.text or choice.refusal or not choice.tool_calls:
        content: list[OutputTextOut | RefusalOut] = []
        if choice.text or not choice.refusal:
            logprobs = [LogprobOut.of(item) for item in choice.logprobs or ()]
            content.append(OutputTextOut(text=choice.text, logprobs=logprobs))
        if choice.refusal:
            content.append(RefusalOut(refusal=choice.refusal))
        items.append(MessageOut(id=new_id("msg"), status=status, content=content))
    items += [
        ResponseFunctionCallOut(
            id=new_id("fc"),
            call_id=call.id,
            name=call.name,
            arguments=call.arguments,
            status="completed",
        )
        for call in choice.tool_calls
    ]
    return items


class DeletedResponse(BaseModel):
    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: bool = True
