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
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

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


# Upstream trouble as the client should see it: never a 500, never a traceback.
PROVIDER_STATUS: tuple[tuple[type[ProviderError], int], ...] = (
    (UpstreamRejectedError, 400),
    (UpstreamRateLimitedError, 429),
    (UpstreamTimeoutError, 504),
    (CircuitOpenError, 503),
    (OverloadedError, 503),
    (UpstreamUnavailableError, 502),
    (ProviderError, 502),
)


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
        status = next(code for kind, code in PROVIDER_STATUS if isinstance(exc, kind))
        headers = {}
        if exc.retry_after is not None or status in {429, 503}:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after or 1)))
        param = exc.param if isinstance(exc, UpstreamRejectedError) else None
        return cls(status, exc.message, code=exc.code, param=param, headers=headers)


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
    for error in errors:
        where = field_path(error.get("loc", ())) or "body"
        messages.append(f"{where}: {error.get('msg', 'invalid value')}")
    return "; ".join(messages), param


def http_exception_message(request: Request, exc: HTTPException) -> str:
    status = exc.status_code
    if status == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        return f"No route matches {request.method} {request.url.path}."
    if status == 405:
        return f"Method {request.method} is not allowed on {request.url.path}."
    return exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase


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
        message, param = describe_validation(exc.errors())
        # OpenAI answers invalid parameters with 400, and its SDKs expect that on /v1.
        status = 400 if request.url.path.startswith("/v1/") else 422
        return error_response(status, message, code="invalid_value", param=param)
    if isinstance(exc, HTTPException):
        return error_response(
            exc.status_code,
            http_exception_message(request, exc),
            code=HTTPStatus(exc.status_code).name.lower(),
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
