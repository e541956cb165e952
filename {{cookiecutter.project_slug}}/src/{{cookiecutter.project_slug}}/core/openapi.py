"""The OpenAPI document as the service answers: `/v1` refuses bad requests with 400,
as OpenAI does, so its operations document no 422 (FastAPI adds one to every route
that validates input)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

OPENAI_PREFIX = "/v1/"


def without_validation_422(document: dict[str, Any]) -> dict[str, Any]:
    for path, operations in document.get("paths", {}).items():
        if path.startswith(OPENAI_PREFIX):
            for operation in operations.values():
                if isinstance(operation, dict):
                    operation.get("responses", {}).pop("422", None)
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = without_validation_422(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
