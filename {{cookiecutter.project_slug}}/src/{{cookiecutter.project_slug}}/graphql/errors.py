"""GraphQL errors in the service's terms: OpenAI's `code`, `type` and `param` as extensions.

An error raised on purpose (an `APIError`, or a model-layer error `as_api_error` knows)
keeps its message; anything else is logged with its traceback and reaches the client
only as "The request failed unexpectedly.". Errors GraphQL finds itself (syntax, unknown
fields, arguments of the wrong type) are `invalid_query`. Over HTTP, an error's headers
(`Retry-After`, `x-ratelimit-*`, `WWW-Authenticate`) reach the response too.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from pydantic import ValidationError
from starlette.responses import Response
from strawberry import Schema
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from ..core.errors import APIError, as_api_error, error_type
from ..core.logging import get_logger

logger = get_logger(__name__)
UNEXPECTED = APIError(500, "The request failed unexpectedly.", code="internal_error")
# The most argument problems one error message lists.
MAX_LISTED_PROBLEMS = 5


def argument_name(param: str) -> str:
    """A parameter as the schema spells its argument: `max_tokens` -> `maxTokens`."""
    first, *rest = param.split("_")
    return first + "".join(word.capitalize() for word in rest)


def invalid_arguments(exc: ValidationError) -> APIError:
    """Arguments GraphQL's types admit but the service does not (`maxTokens: 0`)."""
    problems = [
        (".".join(argument_name(str(part)) for part in error["loc"]), error["msg"])
        for error in exc.errors()
    ]
    message = "; ".join(f"{name}: {text}" for name, text in problems[:MAX_LISTED_PROBLEMS])
    return APIError(422, message, code="invalid_value", param=problems[0][0] if problems else None)


def extensions_of(error: APIError) -> dict[str, Any]:
    extensions: dict[str, Any] = {
        "code": error.code,
        "type": error_type(error.status_code),
        "param": argument_name(error.param) if error.param else None,
        "status": error.status_code,  # what the REST API would have answered
    }
    retry_after = error.headers.get("Retry-After")
    if retry_after is not None:
        extensions["retryAfter"] = int(retry_after)  # WebSocket clients see no headers
    return extensions


def service_error(error: GraphQLError) -> APIError | None:
    """What the client is told; None for an error of GraphQL's own (no exception behind it)."""
    if error.original_error is None:
        return None
    shown = as_api_error(error.original_error)
    if shown is None:
        logger.error("graphql operation failed", path=error.path, exc_info=error.original_error)
        return UNEXPECTED
    return shown


class ServiceErrors(MaskErrors):
    """Every error in the service's terms: an unexpected one masked, the others explained."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        shown = service_error(error)
        if shown is None:
            message = error.message
            extensions = {
                "code": "invalid_query",
                "type": "invalid_request_error",
                "param": None,
                "status": 400,
            }
        else:
            message, extensions = shown.message, extensions_of(shown)
            response = getattr(self.execution_context.context, "response", None)
            if shown.headers and isinstance(response, Response):
                response.headers.update(shown.headers)
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=extensions,
        )


class ServiceSchema(Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Nothing here: ServiceErrors logs the unexpected errors as it masks them (Strawberry
        would log every error, a refused rate limit too, with its traceback)."""
