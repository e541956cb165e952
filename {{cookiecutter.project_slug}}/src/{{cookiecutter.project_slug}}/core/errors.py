"""One error shape for every route: `{"error": {"message", "type", "param", "code"}}`.

It is the shape OpenAI's API uses, so the official SDKs raise the right exception
classes against this service.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..llm.errors import (
    CircuitOpenError,
    OverloadedError,
    ProviderError,
    UnknownModelError,
    UnsupportedParameterError,
    UpstreamBadResponseError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from .logging import get_logger

logger = get_logger("errors")

ERROR_TYPES: dict[int, str] = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


def error_type(status_code: int) -> str:
    if status_code in ERROR_TYPES:
        return ERROR_TYPES[status_code]
    return "server_error" if status_code >= 500 else "invalid_request_error"


# Upstream trouble as the client sees it: a status and one fixed sentence per class, never
# the upstream's own words (they can name hosts and settings, or echo its error body).
PROVIDER_ERRORS: tuple[tuple[type[ProviderError], int, str], ...] = (
    (UpstreamRejectedError, 400, "The model server rejected the request."),
    (UpstreamRateLimitedError, 429, "The model server is rate limiting requests; retry later."),
    (UpstreamTimeoutError, 504, "The model server did not answer in time."),
    (CircuitOpenError, 503, "The model server is failing; requests pause while it recovers."),
    (OverloadedError, 503, "The service is at its limit of model calls; try again shortly."),
    (UpstreamUnavailableError, 502, "The model server is unavailable."),
    (UpstreamBadResponseError, 502, "The model server sent an invalid answer."),
    (ProviderError, 502, "The model server could not complete the request."),
)
# The most validation problems one error message lists (a huge body can hold thousands).
MAX_LISTED_PROBLEMS = 5


class APIError(Exception):
    """An error the service reports to its client, with the status it deserves."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    @classmethod
    def from_provider(cls, exc: ProviderError) -> APIError:
        """The client's view of a failed model call; the details are logged (with the
        request id the log context carries), not sent."""
        status, message = next((s, m) for kind, s, m in PROVIDER_ERRORS if isinstance(exc, kind))
        logger.warning(
            "model call failed",
            error=type(exc).__name__,
            code=exc.code,
            status=status,
            detail=exc.message,
        )
        headers = {}
        if exc.retry_after is not None or status in {429, 503}:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after or 1)))
        param = exc.param if isinstance(exc, UpstreamRejectedError) else None
        return cls(status, message, code=exc.code, param=param, headers=headers)


def error_detail(
    status_code: int, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"message": message, "type": error_type(status_code), "param": param, "code": code}


def error_body(
    status_code: int, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": error_detail(status_code, message, code=code, param=param)}


def error_response(
    status_code: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status_code, message, code=code, param=param),
        status_code=status_code,
        headers=dict(headers) if headers else None,
    )


def field_path(loc: Sequence[int | str]) -> str | None:
    """`("body", "messages", 0, "content")` -> `messages[0].content`."""
    parts = list(loc[1:] if loc and loc[0] in {"body", "query", "path", "header"} else loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or None


def describe_validation(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    param = field_path(first.get("loc", ()))
    messages = []
    for error in errors[:MAX_LISTED_PROBLEMS]:
        where = field_path(error.get("loc", ())) or "body"
        messages.append(f"{where}: {error.get('msg', 'invalid value')}")
    if len(errors) > MAX_LISTED_PROBLEMS:
        messages.append(f"and {len(errors) - MAX_LISTED_PROBLEMS} more problems")
    return "; ".join(messages), param


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def invalid_request_status(request: Request, native: int) -> int:
    """OpenAI answers every invalid request with 400, and its SDKs expect that on /v1."""
    return 400 if request.url.path.startswith("/v1/") else native


# Pydantic's error types for a body that is JSON but not an object (an array, a number).
NOT_AN_OBJECT = {"model_attributes_type", "model_type", "dict_type"}


def whole_body_problem(request: Request, error: Mapping[str, Any]) -> tuple[int, str, str] | None:
    """What is wrong with a body refused as a whole, not field by field: the status
    (off /v1), message and code; None when pydantic's own words say it better."""
    if error.get("type") == "missing":
        message = "The request needs a JSON body, sent with Content-Type: application/json."
        return 422, message, "missing_body"
    if not is_json(request.headers.get("content-type")):
        message = "The request body must be JSON, sent with Content-Type: application/json."
        return 415, message, "unsupported_media_type"
    if error.get("type") in NOT_AN_OBJECT:
        return 422, "The request body must be a JSON object.", "invalid_value"
    return None


def validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return error_response(400, "The request body is not valid JSON.", code="invalid_json")
    if tuple(first.get("loc", ())) == ("body",):
        problem = whole_body_problem(request, first)
        if problem is not None:
            status, message, code = problem
            return error_response(invalid_request_status(request, status), message, code=code)
    message, param = describe_validation(errors)
    status = invalid_request_status(request, 422)
    return error_response(status, message, code="invalid_value", param=param)


# FastAPI's one message for a body it could not read, and what its cause really was.
UNPARSEABLE_BODY = "There was an error parsing the body"
UNPARSEABLE_BECAUSE: tuple[tuple[type[BaseException], str], ...] = (
    (UnicodeDecodeError, "The request body is not valid UTF-8."),
    (RecursionError, "The request body is nested too deeply."),
)


def http_exception_message(request: Request, exc: HTTPException) -> str:
    status = exc.status_code
    if status == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        return f"No route matches {request.method} {request.url.path}."
    if status == 405:
        return f"Method {request.method} is not allowed on {request.url.path}."
    if status == 400 and exc.detail == UNPARSEABLE_BODY:
        cause = exc.__cause__
        reasons = (reason for kind, reason in UNPARSEABLE_BECAUSE if isinstance(cause, kind))
        return next(reasons, "The request body is not valid JSON.")
    return exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase


def http_exception_code(exc: HTTPException) -> str:
    if exc.status_code == 413:
        return "request_too_large"  # one code, whichever layer noticed the size
    if exc.status_code == 400 and exc.detail == UNPARSEABLE_BODY:
        return "invalid_json"
    return HTTPStatus(exc.status_code).name.lower()


def as_api_error(exc: BaseException) -> APIError | None:
    """The client's view of an error from the model layer (None: not one of those)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, ProviderError):
        return APIError.from_provider(exc)
    if isinstance(exc, UnknownModelError):
        return APIError(404, exc.message, code="model_not_found", param="model")
    if isinstance(exc, UnsupportedParameterError):
        return APIError(400, exc.message, code="unsupported_parameter", param=exc.param)
    return None


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """Exception handler for the kinds of errors a route can raise on purpose."""
    exc = as_api_error(exc) or exc
    if isinstance(exc, APIError):
        return error_response(
            exc.status_code, exc.message, code=exc.code, param=exc.param, headers=exc.headers
        )
    if isinstance(exc, RequestValidationError):
        return validation_response(request, exc)
    if isinstance(exc, HTTPException):
        return error_response(
            exc.status_code,
            http_exception_message(request, exc),
            code=http_exception_code(exc),
            headers=exc.headers,
        )
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    for exc_class in (
        APIError,
        ProviderError,
        UnknownModelError,
        UnsupportedParameterError,
        HTTPException,
        RequestValidationError,
    ):
        app.add_exception_handler(exc_class, handle_error)
