"""The GraphQL types: the native API's fields, named the GraphQL way (camelCase)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from ..llm.base import Completion, Usage
from ..llm.models import ModelRoute


@strawberry.type(description="A model this service serves, as `GET /v1/models` lists it.")
class Model:
    id: str
    kind: str = strawberry.field(description="`chat` or `embedding`.")
    owned_by: str
    created: int = strawberry.field(description="When the service registered it (Unix time).")
    aliases: list[str] = strawberry.field(description="Other names that reach it.")

    @classmethod
    def of(cls, route: ModelRoute) -> Model:
        return cls(
            id=route.name,
            kind=route.kind,
            owned_by=route.owned_by,
            created=route.created,
            aliases=list(route.aliases),
        )


@strawberry.type(description="The tokens a generation used.")
class TokenUsage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int = strawberry.field(
        description="Of the prompt, served from the model's prompt cache."
    )
    reasoning_tokens: int = strawberry.field(
        description="Of the completion, spent on hidden reasoning."
    )

    @classmethod
    def of(cls, usage: Usage) -> TokenUsage:
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        )


@strawberry.type(description="One answer, as `POST /api/v1/generate` gives it.")
class GenerateResult:
    id: str
    text: str
    tokens_used: int = strawberry.field(description="Completion tokens produced.")
    model: str
    finish_reason: str = strawberry.field(
        description="`stop`, `length`, `tool_calls` or `content_filter`."
    )
    usage: TokenUsage
    cached: bool = strawberry.field(description="Served from the response cache.")

    @classmethod
    def of(cls, completion: Completion, *, id: str, cached: bool) -> GenerateResult:
        return cls(
            id=id,
            text=completion.text,
            tokens_used=completion.usage.completion_tokens,
            model=completion.model,
            finish_reason=completion.finish_reason,
            usage=TokenUsage.of(completion.usage),
            cached=cached,
        )


@strawberry.type(description="A piece of the answer, as the model writes it.")
class GenerateDelta:
    text: str


@strawberry.type(description="The end of a streamed answer: why it ended and what it used.")
class GenerateDone:
    id: str
    model: str
    finish_reason: str = strawberry.field(
        description="`stop`, `length`, `tool_calls` or `content_filter`."
    )
    tokens_used: int = strawberry.field(description="Completion tokens produced.")
    usage: TokenUsage | None = strawberry.field(description="Null if the model reported none.")


GenerateEvent = Annotated[
    GenerateDelta | GenerateDone,
    strawberry.union("GenerateEvent", description="`GenerateDelta`s, then one `GenerateDone`."),
]
