"""The GraphQL schema: the models, a generation and a streamed one{% if cookiecutter.database != "none" %}, the caller's history{% endif %}.

Resolvers call the service the REST routes call, through the same rate limits: each
generation counts as a request and reserves its tokens when admitted, and is settled
to what it used when it ends (api/limits.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Iterator
from typing import Annotated

import strawberry
from graphql import ExecutionResult, GraphQLError
from pydantic import ValidationError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from ..api.limits import RateLimit
from ..api.streaming import cancel_on_disconnect, wants_fresh
from ..core.context import RequestContext
from ..core.errors import APIError
from ..llm.base import FinishReason, Usage
from ..llm.service import CachePolicy
from ..schemas.generate import GenerateRequest, check_prompt_length
from .context import GraphQLContext, ServiceInfo
from .errors import ServiceErrors, ServiceSchema, invalid_arguments
{%- if cookiecutter.database != "none" %}
from .history import HistoryQuery
{%- endif %}
from .types import GenerateDelta, GenerateDone, GenerateEvent, GenerateResult, Model, TokenUsage

Prompt = Annotated[str, strawberry.argument(description="The text to continue.")]
MaxTokens = Annotated[int, strawberry.argument(description="Upper bound on output tokens.")]
Temperature = Annotated[float, strawberry.argument(description="Sampling temperature, 0 to 2.")]
ModelName = Annotated[
    str | None,
    strawberry.argument(description="A model of `models` (by default the service's LLM_MODEL)."),
]
Cache = Annotated[
    bool | None,
    strawberry.argument(
        description="Cache the answer: by default only at temperature 0; true opts in, false out."
    ),
]


def generate_request(context: GraphQLContext, **arguments: object) -> GenerateRequest:
    """The arguments, checked as the native API checks its body."""
    try:
        body = GenerateRequest.model_validate(arguments)
    except ValidationError as exc:
        raise invalid_arguments(exc) from None
    check_prompt_length(body.prompt, context.settings.max_prompt_chars)
    return body


def rate_limit(context: GraphQLContext, caller: RequestContext) -> RateLimit:
    services = context.services
    return RateLimit(
        services.rate_limiter,
        context.settings,
        caller.principal,
        context.http_response,  # gets the x-ratelimit-* headers when admitted
        services.observer,
    )


async def list_models(info: ServiceInfo) -> list[Model]:
    await info.context.principal()
    return [Model.of(route) for route in info.context.services.models.routes]


async def generate(
    info: ServiceInfo,
    prompt: Prompt,
    max_tokens: MaxTokens = 200,
    temperature: Temperature = 0.7,
    model: ModelName = None,
    cache: Cache = None,
) -> GenerateResult:
    context = info.context
    caller = await context.caller()
    body = generate_request(
        context,
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=temperature,
        model=model,
        cache=cache,
    )
    generation = body.to_generation(context.settings.llm_model)
    request = context.http_request
    policy = CachePolicy.for_request(
        generation, opt_in=body.cache, no_cache=request is not None and wants_fresh(request)
    )
    limit = rate_limit(context, caller)
    with context.work():
        await limit.admit(generation)
        try:
            work = context.services.generation.complete(generation, caller, policy)
            # Over HTTP a client that leaves cancels the model call; over a WebSocket,
            # Strawberry cancels the operation when the socket closes.
            completion, cached = await (cancel_on_disconnect(request, work) if request else work)
            limit.used(completion.usage, cached=cached)
        finally:
            await limit.settle()
    return GenerateResult.of(completion, id=f"gen-{uuid.uuid4().hex}", cached=cached)


async def generate_stream(
    info: ServiceInfo,
    prompt: Prompt,
    max_tokens: MaxTokens = 200,
    temperature: Temperature = 0.7,
    model: ModelName = None,
) -> AsyncGenerator[GenerateEvent, None]:
    context = info.context
    caller = await context.caller()
    body = generate_request(
        context, prompt=prompt, max_tokens=max_tokens, temperature=temperature, model=model
    )
    generation = body.to_generation(context.settings.llm_model)
    reply_id, answered_by = f"gen-{uuid.uuid4().hex}", generation.model
    reason: FinishReason = "stop"
    usage: Usage | None = None
    limit = rate_limit(context, caller)
    with context.work():
        await limit.admit(generation)
        try:
            chunks = limit.metered(context.services.generation.stream(generation, caller))
            async for chunk in chunks:
                if chunk.text:
                    yield GenerateDelta(text=chunk.text)
                answered_by = chunk.model or answered_by
                reason = chunk.finish_reason or reason
                usage = chunk.usage or usage
        finally:
            await limit.settle()
    yield GenerateDone(
        id=reply_id,
        model=answered_by,
        finish_reason=reason,
        tokens_used=usage.completion_tokens if usage else 0,
        usage=TokenUsage.of(usage) if usage else None,
    )


@strawberry.type
class ModelQuery:
    models: list[Model] = strawberry.field(
        resolver=list_models, description="The models this service serves."
    )


@strawberry.type
class Query(
{%- if cookiecutter.database != "none" %}
    HistoryQuery,
{%- endif %}
    ModelQuery,
):
    """Every query: a part per module."""


@strawberry.type
class Mutation:
    generate: GenerateResult = strawberry.mutation(
        resolver=generate, description="Generate text from a prompt, as POST /api/v1/generate."
    )


@strawberry.type
class Subscription:
    generate_stream: AsyncGenerator[GenerateEvent, None] = strawberry.subscription(
        resolver=generate_stream,
        description="Generate text as it is written: `GenerateDelta`s, then a `GenerateDone`.",
    )


class SubscriptionsOverWebSocket(SchemaExtension):
    """A subscription POSTed over HTTP is refused (Strawberry would run it as a query)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        over_http = isinstance(context.context, GraphQLContext) and context.context.http_request
        if context.operation_type is OperationType.SUBSCRIPTION and over_http:
            refusal = APIError(
                400,
                "Subscriptions run over a WebSocket at this path (graphql-transport-ws).",
                code="unsupported_transport",
            )
            error = GraphQLError(refusal.message, original_error=refusal)
            context.result = ExecutionResult(None, [error])
        yield


schema = ServiceSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[SubscriptionsOverWebSocket, ServiceErrors],
)
