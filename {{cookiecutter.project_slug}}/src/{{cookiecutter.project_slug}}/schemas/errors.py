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


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        401: "Missing or invalid credentials",
        413: "Request body too large",
        422: "Invalid request; `param` names the field",
        500: "Unexpected server error",
    }.items()
}
