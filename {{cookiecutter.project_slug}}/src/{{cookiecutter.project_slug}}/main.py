"""Application factory: `create_app(settings)` wires routers, middleware and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from . import DESCRIPTION, PROJECT_NAME, __version__
from .api import generate, health, root
from .core.errors import install_error_handlers
from .core.lifecycle import Lifecycle
from .core.logging import configure_logging, get_logger
from .llm.factory import build_provider
from .middleware.access_log import AccessLogMiddleware
from .middleware.body_limit import BodyLimitMiddleware
from .middleware.errors import UnhandledErrorMiddleware
from .middleware.https_redirect import HTTPSRedirectMiddleware
from .middleware.request_id import REQUEST_ID_HEADER, RequestIdMiddleware
from .middleware.security_headers import SecurityHeadersMiddleware
from .settings import Settings, get_settings

logger = get_logger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    settings: Settings = app.state.settings
    lifecycle: Lifecycle = app.state.lifecycle
    lifecycle.drain_on_signals()
    provider = build_provider(settings)
    lifecycle.add_check("provider", provider.readiness)
    if not settings.auth_enabled:
        logger.warning("authentication is off: set API_KEYS to require a key")
    logger.info("started", environment=settings.environment, provider=provider.name)
    try:
        yield {"provider": provider}
    finally:
        await provider.aclose()
        logger.info("stopped")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)

    app = FastAPI(
        title=PROJECT_NAME,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.lifecycle = Lifecycle()

    install_error_handlers(app)
    app.include_router(root.router)
    app.include_router(health.router)
    app.include_router(generate.router)

    # add_middleware wraps: the last one added runs first on the way in.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.force_https)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After"],
        )
    if settings.force_https:
        app.add_middleware(HTTPSRedirectMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


app = create_app()
