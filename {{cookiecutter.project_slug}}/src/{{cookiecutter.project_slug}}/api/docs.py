"""`/docs` (Swagger UI) and `/redoc` (ReDoc) with their scripts, styles and icon served here.

FastAPI's own pages load them from a CDN, so on a private network or offline they stay
blank. The files come from the fastapi-offline package and are served under
`/docs/assets/`; the pages name nothing outside this service.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

ASSETS_PATH = "/docs/assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")
# Swagger UI would otherwise show a badge fetched from validator.swagger.io.
SWAGGER_UI_PARAMETERS: dict[str, Any] = {"validatorUrl": None}


def under_root(request: Request, path: str) -> str:
    """`path` as the browser must ask for it, behind a proxy that serves a root path."""
    return f"{request.scope.get('root_path', '').rstrip('/')}{path}"


def install_docs(app: FastAPI) -> None:
    """Serve the pages at the app's `docs_url` and `redoc_url`, in place of FastAPI's."""
    cdn_pages = {app.docs_url, app.redoc_url}
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if not (isinstance(route, Route) and route.path in cdn_pages)
    ]
    app.mount(ASSETS_PATH, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")
    openapi_url = app.openapi_url or ""
    redirect_url = app.swagger_ui_oauth2_redirect_url

    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=under_root(request, openapi_url),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=under_root(request, f"{ASSETS_PATH}/swagger-ui-bundle.js"),
            swagger_css_url=under_root(request, f"{ASSETS_PATH}/swagger-ui.css"),
            swagger_favicon_url=under_root(request, f"{ASSETS_PATH}/favicon.png"),
            oauth2_redirect_url=under_root(request, redirect_url) if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters={**SWAGGER_UI_PARAMETERS, **(app.swagger_ui_parameters or {})},
        )

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=under_root(request, openapi_url),
            title=f"{app.title} - ReDoc",
            redoc_js_url=under_root(request, f"{ASSETS_PATH}/redoc.standalone.js"),
            redoc_favicon_url=under_root(request, f"{ASSETS_PATH}/favicon.png"),
            with_google_fonts=False,
        )

    if openapi_url and app.docs_url:
        app.add_route(app.docs_url, swagger_ui, include_in_schema=False)
    if openapi_url and app.redoc_url:
        app.add_route(app.redoc_url, redoc, include_in_schema=False)
