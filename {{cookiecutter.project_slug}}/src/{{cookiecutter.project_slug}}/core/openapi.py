"""The OpenAPI document as the service answers.

Each operation's id is its function's name (`generate`, `list_models`), which generated
clients name their functions after. `/v1` refuses bad requests with 400, as OpenAI
does, so its operations document no 422 (FastAPI adds one to every route that
validates input). The operations that authenticate their caller declare the security
schemes, so that /docs' Authorize dialog offers them; the check itself is one plain
dependency, not FastAPI's security classes, which a hot route would pay for on every
request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import BaseRoute

OPENAI_PREFIX = "/v1/"


@dataclass(frozen=True)
class Security:
    """How callers authenticate: the schemes, and the dependencies that check them."""

    schemes: Mapping[str, dict[str, Any]]
    dependencies: tuple[Callable[..., Any], ...]


def without_validation_422(document: dict[str, Any]) -> dict[str, Any]:
    for path, operations in document.get("paths", {}).items():
        if path.startswith(OPENAI_PREFIX):
            for operation in operations.values():
                if isinstance(operation, dict):
                    operation.get("responses", {}).pop("422", None)
    return document


def depends_on(dependant: Dependant, calls: tuple[Callable[..., Any], ...]) -> bool:
    return any(d.call in calls or depends_on(d, calls) for d in dependant.dependencies)


def with_security(
    document: dict[str, Any], routes: Sequence[BaseRoute | RouteContext], security: Security
) -> dict[str, Any]:
    if not security.schemes:
        return document
    document.setdefault("components", {})["securitySchemes"] = dict(security.schemes)
    # Alternatives: any one of the schemes will do.
    requirement: list[dict[str, list[str]]] = [{name: []} for name in security.schemes]
    paths = document.get("paths", {})
    for context in iter_route_contexts(routes):  # included routers' routes too
        route = context.original_route
        if isinstance(route, APIRoute) and depends_on(route.dependant, security.dependencies):
            for method in context.methods or ():
                operation = paths.get(context.path_format, {}).get(method.lower())
                if operation is not None:
                    operation["security"] = requirement
    return document


def operation_id(route: APIRoute) -> str:
    """`generate`, where FastAPI would say `generate_api_v1_generate_post`."""
    return route.name


def install_openapi(app: FastAPI, security: Security) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document = with_security(document, app.routes, security)
            app.openapi_schema = without_validation_422(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
