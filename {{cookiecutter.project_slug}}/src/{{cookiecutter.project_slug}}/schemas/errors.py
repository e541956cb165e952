from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    message: str = Field(examples=["prompt: Field required"])
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = Field(default=None, examples=["prompt"])
    code: str | None = Field(default=None, examples=["invalid_value"])


class ErrorResponse(BaseModel):
    """The body of every error, on every route (the OpenAI error shape)."""

    error: ErrorDetail


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error statuses, each with the error body."""
    return {
        status: {"model": ErrorResponse, "description": description}
        for status, description in descriptions.items()
    }


# What any API route may answer, whatever it does.
ERROR_RESPONSES = error_responses(
    {
        400: "The body is not JSON (or not UTF-8), or the Host is not a trusted one",
        401: "Missing or invalid credentials",
        413: "Request body too large",
        422: "Invalid request; `param` names the field",
        500: "Unexpected server error",
    }
)
# Routes that take a JSON body.
JSON_BODY_RESPONSES = error_responses({415: "The body was not sent as application/json"})
# Routes counted by the caller's rate limits (RATE_LIMIT_RPM / RATE_LIMIT_TPM).
LIMITED_RESPONSES = error_responses(
    {
        429: "Over the caller's rate limit (or the model server's); see Retry-After",
        503: "The shared rate limiter is unreachable and RATE_LIMIT_FAIL_OPEN is off",
    }
)
# Routes that call the model: its failures, each with a fixed message.
MODEL_RESPONSES = error_responses(
    {
        404: "No such model (`param` is `model`)",
        429: "The model server is rate limiting; see Retry-After",
        502: "The model server failed or sent an invalid answer",
        503: "The model server is paused by the circuit breaker, or every slot is busy",
        504: "The model server did not answer in time",
    }
)
# The OpenAI-compatible routes: OpenAI's statuses (invalid input is 400, never 422).
OPENAI_RESPONSES = error_responses(
    {
        400: "Invalid request, or a parameter the model cannot honour; `param` names it",
        401: "Missing or invalid credentials",
        404: "No such model",
        413: "Request body too large",
        415: "The body was not sent as application/json",
        500: "Unexpected server error",
    }
)
